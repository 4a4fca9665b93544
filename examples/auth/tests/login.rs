//! The auth example driven by OpenSSH's `ssh`: each method logs in, wrong
//! secrets and missing factors are refused, and the refusals are logged.

use example_auth::App;
use ssh_framework::authorized_keys::AuthorizedKeys;
use ssh_framework_tests::log::with_log;
use ssh_framework_tests::openssh::{Askpass, ClientKey, keygen};
use ssh_framework_tests::server::TestServer;

const CODES: &[&str] = &["314159", "271828"];

/// The example's accounts, bob's key read from the authorized_keys `line` of
/// a fresh key (`{key}` stands for the key), and the key.
async fn start_with(line: &str) -> (TestServer, ClientKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "bob").await;
    let public = std::fs::read_to_string(key.public_file()).unwrap();
    let keys = AuthorizedKeys::parse(&line.replace("{key}", public.trim())).unwrap();
    let app = App::new().with_password("alice", "alice-pw").with_key_and_code("bob", keys, CODES).with_guest("guest");
    let server = TestServer::start_in(dir, |b| b.handlers(app)).await;
    (server, key)
}

async fn start() -> (TestServer, ClientKey) {
    start_with("{key}").await
}

/// bob's login: his key, then whatever askpass answers to the code prompt.
async fn bob(server: &TestServer, key: &ClientKey, code: &str) -> (ssh_framework_tests::openssh::SshOutput, Vec<String>) {
    let askpass = Askpass::new(server.dir(), &[], code);
    let out = server
        .ssh("bob")
        .identity(&key.path)
        .askpass(&askpass)
        .option("PreferredAuthentications=publickey,keyboard-interactive")
        .option("NumberOfPasswordPrompts=1")
        .run("whoami")
        .await;
    (out, askpass.prompts())
}

#[test]
fn alice_logs_in_with_her_password_and_sees_the_banner() {
    with_log(tracing::Level::INFO, |log| async move {
        let (server, _) = start().await;
        let out = server.ssh("alice").password("alice-pw").run("whoami").await;
        out.ok();
        assert_eq!(out.stdout_text(), "alice via password\n");
        assert!(out.stderr.contains("Authorized users only."), "stderr: {}", out.stderr);
        assert_eq!(log.text().matches("authenticated method=\"password\" user=\"alice\"").count(), 1, "{}", log.text());
    });
}

#[test]
fn a_wrong_password_is_refused_and_logged() {
    with_log(tracing::Level::INFO, |log| async move {
        let (server, _) = start().await;
        let out = server.ssh("alice").password("guess").run("whoami").await;
        assert_eq!(out.code, Some(255), "{out:?}");
        assert!(out.stderr.contains("Permission denied (password)"), "stderr: {}", out.stderr);
        assert!(out.stdout.is_empty());
        let text = log.text();
        assert!(text.contains("authentication failed method=\"password\" user=\"alice\" failures=1"), "{text}");
        assert!(!text.contains("authenticated method"), "{text}");
    });
}

#[tokio::test]
async fn an_unknown_user_is_offered_a_password_like_alice() {
    let (server, _) = start().await;
    let out = server.ssh("mallory").password("alice-pw").run("whoami").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied (password)"), "stderr: {}", out.stderr);
}

#[tokio::test]
async fn alices_password_does_not_let_bob_in() {
    let (server, _) = start().await;
    let out = server.ssh("bob").password("alice-pw").run("whoami").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    // bob is offered his key only.
    assert!(out.stderr.contains("Permission denied (publickey)"), "stderr: {}", out.stderr);
}

#[tokio::test]
async fn bob_logs_in_with_his_key_then_a_code() {
    let (server, key) = start().await;
    let (out, prompts) = bob(&server, &key, CODES[0]).await;
    out.ok();
    assert_eq!(out.stdout_text(), "bob via publickey + keyboard-interactive\n");
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].contains("One-time code: "), "{prompts:?}");
}

#[tokio::test]
async fn bobs_key_alone_is_not_enough() {
    let (server, key) = start().await;
    let out = server
        .ssh("bob")
        .identity(&key.path)
        .option("BatchMode=yes")
        .option("PreferredAuthentications=publickey")
        .run("whoami")
        .await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied (keyboard-interactive)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_code_without_the_key_is_never_asked_for() {
    let (server, _) = start().await;
    let askpass = Askpass::new(server.dir(), &[], CODES[0]);
    let out = server.ssh("bob").askpass(&askpass).keyboard_interactive_only().run("whoami").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(askpass.prompts().is_empty(), "{:?}", askpass.prompts());
}

#[tokio::test]
async fn a_wrong_code_is_refused() {
    let (server, key) = start().await;
    let (out, prompts) = bob(&server, &key, "000000").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(prompts.len(), 1, "{prompts:?}");
}

#[tokio::test]
async fn each_code_works_once() {
    let (server, key) = start().await;
    bob(&server, &key, CODES[1]).await.0.ok();
    let (again, _) = bob(&server, &key, CODES[1]).await;
    assert_eq!(again.code, Some(255), "{again:?}");
    // The other code still works.
    bob(&server, &key, CODES[0]).await.0.ok();
}

#[tokio::test]
async fn a_key_not_on_bobs_list_is_refused() {
    let (server, _) = start().await;
    let other = keygen(server.dir(), "other").await;
    let (out, prompts) = bob(&server, &other, CODES[0]).await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(prompts.is_empty(), "no code is asked after a wrong key: {prompts:?}");
}

#[tokio::test]
async fn a_key_line_for_another_network_is_refused() {
    let (server, key) = start_with("from=\"192.0.2.0/24\" {key}").await;
    let (out, prompts) = bob(&server, &key, CODES[0]).await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(prompts.is_empty(), "{prompts:?}");
}

#[tokio::test]
async fn a_key_line_with_an_option_the_server_cannot_honour_is_refused() {
    let (server, key) = start_with("command=\"date\" {key}").await;
    let (out, _) = bob(&server, &key, CODES[0]).await;
    assert_eq!(out.code, Some(255), "{out:?}");
}

#[tokio::test]
async fn a_key_line_from_loopback_works() {
    let (server, key) = start_with("from=\"127.0.0.1\" {key}").await;
    bob(&server, &key, CODES[0]).await.0.ok();
}

#[tokio::test]
async fn the_guest_needs_no_credentials() {
    let (server, _) = start().await;
    let out = server.ssh("guest").option("BatchMode=yes").run("whoami").await;
    out.ok();
    assert_eq!(out.stdout_text(), "guest via none\n");
}
