//! Faults contained: a handler that panics while deciding refuses its own
//! request, logs the panic inside the connection's span, and leaves the
//! connection (and every other one) serving.

use ssh_framework::Auth;
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::log::Captured;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

/// Accepts alice/pw; panics for user `boom`.
#[derive(Clone)]
struct Fragile;

#[ssh_framework::server]
impl Fragile {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        assert_ne!(user, "boom", "a bug in the password handler");
        Auth::from_bool(user == "alice" && password == "pw")
    }
}

// The server's connection threads log to the dispatcher that was the default
// where it started: this test's scoped subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_panicking_auth_handler_refuses_that_attempt_and_the_connection_goes_on() {
    let (captured, _guard) = Captured::start(tracing::Level::INFO);
    let server = TestServer::start(|b| b.handlers(Fragile).handlers(Commands::new())).await;
    let other = RusshClient::login_password(server.addr(), "alice", "pw").await;

    let mut client = RusshClient::connect(server.addr()).await;
    let boom = within("the panicking attempt", client.handle.authenticate_password("boom", "x")).await.unwrap();
    assert!(!boom.success(), "{boom:?}");
    let alice = within("the next attempt", client.handle.authenticate_password("alice", "pw")).await.unwrap();
    assert!(alice.success(), "the connection did not survive the panic: {alice:?}");

    for client in [&client, &other] {
        let mut channel = client.exec("echo still here").await;
        let transcript = read_to_close(&mut channel).await;
        assert_eq!(transcript.stdout, b"still here\n");
    }
    let log = captured.text();
    let line = log.lines().find(|l| l.contains("handler panicked; refused")).unwrap_or_else(|| panic!("no panic logged:\n{log}"));
    assert!(line.contains("ERROR") && line.contains("connection{") && line.contains("request=\"auth-password\""), "{line}");
    assert!(line.contains("a bug in the password handler"), "{line}");
}
