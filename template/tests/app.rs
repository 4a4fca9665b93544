//! The app's tests: a real SSH conversation with the server in this process,
//! through `ssh_framework::testing::TestClient` (no socket, no `ssh` binary).

use std::path::Path;

use app::{App, Config};
use ssh_framework::Server;
use ssh_framework::keys::PrivateKey;
use ssh_framework::testing::{self, TestClient};
use tokio::io::AsyncWriteExt;

// ANCHOR: fixture
/// A server with one password user (alice) and one key user (bob), in a temp dir.
struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
    bob_key: PrivateKey,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bob_key = testing::ed25519_key();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/bob"), bob_key.public_key().to_openssh().unwrap()).unwrap();
    let config = Config {
        passwords: [("alice".to_owned(), "secret".to_owned())].into(),
        keys_dir: dir.path().join("keys"),
        data_dir: dir.path().join("data"),
    };
    let builder = Server::builder().handlers(App::new(config).unwrap()).host_key(testing::ed25519_key());
    let server = app::layers(builder).build().await.unwrap();
    Fixture { server, dir, bob_key }
}
// ANCHOR_END: fixture

async fn alice(f: &Fixture) -> TestClient {
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(client.login_password("alice", "secret").await.unwrap().is_accepted());
    client
}

// ANCHOR: exec
#[tokio::test]
async fn a_password_user_runs_a_command() {
    let f = start().await;
    let client = alice(&f).await;
    let output = client.exec("whoami").await.unwrap();
    assert_eq!(output.stdout_text(), "alice\n");
    assert!(output.success());
}
// ANCHOR_END: exec

// ANCHOR: refused
#[tokio::test]
async fn a_wrong_password_or_an_unknown_key_is_refused() {
    let f = start().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(!client.login_password("alice", "guess").await.unwrap().is_accepted());
    assert!(!client.login_password("mallory", "secret").await.unwrap().is_accepted());
    assert!(!client.login_key("bob", &testing::ed25519_key()).await.unwrap().is_accepted());
    assert!(!client.login_key("alice", &f.bob_key).await.unwrap().is_accepted(), "bob's key is not alice's");
}
// ANCHOR_END: refused

#[tokio::test]
async fn a_key_user_logs_in_with_the_key_in_their_file() {
    let f = start().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(client.login_key("bob", &f.bob_key).await.unwrap().is_accepted());
    assert_eq!(client.exec("whoami").await.unwrap().stdout_text(), "bob\n");
}

#[tokio::test]
async fn an_unknown_command_exits_127_with_a_message() {
    let f = start().await;
    let output = alice(&f).await.exec("rm -rf /").await.unwrap();
    assert_eq!((output.code(), output.stderr_text()), (Some(127), "unknown command: rm -rf /\n".to_owned()));
}

// ANCHOR: shell
#[tokio::test]
async fn the_shell_greets_answers_follows_resizes_and_quits() {
    let f = start().await;
    let client = alice(&f).await;
    let mut shell = client.shell(80, 24).await.unwrap();
    shell.wait_for("Your terminal is 80x24").await.unwrap();

    shell.send("size\r").await.unwrap();
    shell.wait_for("> size\n80x24").await.unwrap();

    shell.resize(100, 30).await.unwrap();
    shell.wait_for("[terminal resized to 100x30]").await.unwrap();

    // Backspace edits the line; arrow keys are ignored.
    shell.send("whoamx\x7fi\x1b[A\r").await.unwrap();
    shell.wait_for("> whoami\nalice").await.unwrap();

    shell.send("quit\r").await.unwrap();
    shell.wait_for("Bye!").await.unwrap();
    assert!(shell.wait().await.unwrap().success());
}
// ANCHOR_END: shell

#[tokio::test]
async fn ctrl_c_leaves_the_shell() {
    let f = start().await;
    let client = alice(&f).await;
    let mut shell = client.shell(80, 24).await.unwrap();
    shell.wait_for("> ").await.unwrap();
    shell.send([3u8]).await.unwrap();
    let output = shell.wait().await.unwrap();
    assert!(output.success());
    assert!(output.stdout_text().ends_with("Bye!\r\n"));
}

#[tokio::test]
async fn a_shell_without_a_terminal_is_told_to_use_ssh_t() {
    let f = start().await;
    let client = alice(&f).await;
    let output = client.session().shell().await.unwrap().wait().await.unwrap();
    assert_eq!(output.code(), Some(1));
    assert!(output.stderr_text().contains("ssh -t"), "{}", output.stderr_text());
}

// ANCHOR: sftp
#[tokio::test]
async fn sftp_keeps_each_user_in_their_own_folder() {
    let f = start().await;
    let sftp = alice(&f).await.sftp().await.unwrap();
    let mut file = sftp.create("notes.txt").await.unwrap();
    file.write_all(b"hello").await.unwrap();
    file.shutdown().await.unwrap();
    let on_disk: &Path = &f.dir.path().join("data/alice/notes.txt");
    assert_eq!(std::fs::read(on_disk).unwrap(), b"hello");

    // The folder is the whole world: `..` does not lead out of it.
    sftp.create("../escaped.txt").await.ok();
    assert!(!f.dir.path().join("data/escaped.txt").exists());
    assert!(!f.dir.path().join("escaped.txt").exists());
}
// ANCHOR_END: sftp
