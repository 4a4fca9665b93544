//! The git host through `ssh_framework::testing::TestClient`: who gets in,
//! what a refusal says, with no socket and no git client (tests/git.rs
//! drives the real git).

use example_git_server::{Access, GitHost, LOGIN};
use ssh_framework::Server;
use ssh_framework::keys::PrivateKey;
use ssh_framework::testing::{self, TestClient};

struct Fixture {
    server: Server,
    alice: PrivateKey,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let alice = testing::ed25519_key();
    let access = Access::parse(&format!(
        "[users.alice]\nkeys = [\"{}\"]\n[repos.\"project.git\"]\nalice = \"read\"\n",
        alice.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    let host = GitHost::new(dir.path(), access).unwrap();
    let server = Server::builder().handlers(host).host_key(testing::ed25519_key()).build().await.unwrap();
    Fixture { server, alice, _dir: dir }
}

#[tokio::test]
async fn the_key_decides_who_logs_in_and_only_as_git() {
    let f = start().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(!client.login_key(LOGIN, &testing::ed25519_key()).await.unwrap().is_accepted());
    assert!(!client.login_password(LOGIN, "anything").await.unwrap().is_accepted());
    assert!(!client.login_key("alice", &f.alice).await.unwrap().is_accepted(), "the login name is always git");
    assert!(client.login_key(LOGIN, &f.alice).await.unwrap().is_accepted());
}

#[tokio::test]
async fn a_shell_is_greeted_by_name_and_a_push_without_write_access_is_refused() {
    let f = start().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(client.login_key(LOGIN, &f.alice).await.unwrap().is_accepted());

    let mut shell = client.shell(80, 24).await.unwrap();
    shell.wait_for("Hi alice!").await.unwrap();
    assert_eq!(shell.wait().await.unwrap().code(), Some(1));

    let push = client.exec("git-receive-pack 'project.git'").await.unwrap();
    assert_eq!(push.code(), Some(128));
    assert!(push.stderr_text().contains("alice has no write access to project.git"), "{}", push.stderr_text());
    assert!(push.stdout.is_empty());

    let escape = client.exec("git-upload-pack '../etc.git'").await.unwrap();
    assert_eq!(escape.code(), Some(128));
    assert!(escape.stderr_text().contains("invalid repository path"), "{}", escape.stderr_text());
}
