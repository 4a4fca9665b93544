//! Password authentication driven by OpenSSH's `ssh` (answered by an askpass script).

use std::time::{Duration, Instant};

use ssh_framework::trace::TraceLayer;
use ssh_framework_tests::handlers::{Commands, PasswordLogin};
use ssh_framework_tests::openssh::Askpass;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

/// alice with `correct horse`, session channels and `Commands`.
async fn alice(configure: impl FnOnce(ssh_framework::ServerBuilder) -> ssh_framework::ServerBuilder) -> (TestServer, PasswordLogin) {
    let login = PasswordLogin::new("alice", "correct horse");
    let server = TestServer::start(|b| configure(b.handlers(login.clone()).handlers(Commands::new()))).await;
    (server, login)
}

#[tokio::test]
async fn accepts_the_right_password() {
    let (server, login) = alice(|b| b.layer(TraceLayer::new())).await;

    let out = server.ssh("alice").password("correct horse").run("echo logged in").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "logged in\n");
    assert_eq!(login.attempts(), [("alice".to_owned(), "correct horse".to_owned())]);
}

#[tokio::test]
async fn refuses_a_wrong_password() {
    let (server, login) = alice(|b| b).await;

    let out = server.ssh("alice").password("battery staple").run("echo logged in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(login.attempts(), [("alice".to_owned(), "battery staple".to_owned())]);
}

#[tokio::test]
async fn refuses_the_right_password_for_another_user() {
    let (server, _login) = alice(|b| b).await;

    let out = server.ssh("mallory").password("correct horse").run("echo logged in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
}

#[tokio::test]
async fn disconnects_after_max_auth_tries() {
    let (server, login) = alice(|b| b.max_auth_tries(2)).await;
    let askpass = Askpass::new(server.dir(), &[], "wrong");

    let out = server.ssh("alice").askpass(&askpass).password_prompts(3).run("echo logged in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Too many authentication failures"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(login.attempts().len(), 2, "the handler saw exactly max_auth_tries attempts: {:?}", login.attempts());
}

#[tokio::test]
async fn a_wrong_password_is_answered_after_the_rejection_delay() {
    let delay = Duration::from_millis(500);
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).rejection_delay(delay)).await;
    let mut client = RusshClient::connect(server.addr()).await;

    // The client's first `none` probe is not a guess: it is answered at once.
    let started = Instant::now();
    let none = within("auth none", client.handle.authenticate_none("alice")).await.unwrap();
    assert!(!none.success());
    assert!(started.elapsed() < delay, "the none probe waited {:?}", started.elapsed());

    let started = Instant::now();
    let wrong = within("wrong password", client.handle.authenticate_password("alice", "guess")).await.unwrap();
    assert!(!wrong.success());
    assert!(started.elapsed() >= delay, "a wrong password was answered after {:?}", started.elapsed());

    let right = within("right password", client.handle.authenticate_password("alice", "pw")).await.unwrap();
    assert!(right.success(), "{right:?}");
}
