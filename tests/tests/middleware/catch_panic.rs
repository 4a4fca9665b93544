//! `CatchPanicLayer`: a panicking body tells the client (stderr line, exit
//! status 70), logs at `error` with the user and request, and the server goes
//! on serving.

use ssh_framework::middleware::CatchPanicLayer;
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::log::with_log;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close, request_reply};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

use super::{App, PASSWORD};

#[test]
fn a_panicking_exec_sends_internal_error_and_exit_70_and_the_server_serves_on() {
    with_log(tracing::Level::INFO, |captured| async move {
        let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(CatchPanicLayer::new())).await;
        let client = RusshClient::login_password(server.addr(), "alice", PASSWORD).await;
        let mut channel = client.exec("panic now").await;
        let transcript = read_to_close(&mut channel).await;
        assert_eq!(transcript.stderr, b"internal error\n");
        assert_eq!(transcript.ending(), ["exit-status 70", "eof", "close"], "{transcript:?}");

        // The same connection and a new one both still serve.
        let mut again = client.exec("echo still here").await;
        assert_eq!(read_to_close(&mut again).await.stdout, b"still here\n");
        let other = RusshClient::login_password(server.addr(), "bob", PASSWORD).await;
        let mut channel = other.exec("echo and here").await;
        assert_eq!(read_to_close(&mut channel).await.stdout, b"and here\n");

        let log = captured.text();
        let line = log.lines().find(|l| l.contains("channel handler panicked; told the client")).unwrap_or_else(|| panic!("no panic logged:\n{log}"));
        for needle in ["ERROR", "user=\"alice\"", "kind=\"exec\"", "command=\"panic now\"", "the panic command panics", "exit_code=70"] {
            assert!(line.contains(needle), "{needle:?} missing from {line}");
        }
    });
}

#[tokio::test]
async fn openssh_exits_with_the_configured_code_and_prints_the_configured_message() {
    let layer = CatchPanicLayer::new().message("sorry, that broke\n").exit_code(99);
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
    let out = server.ssh("alice").password(PASSWORD).run("panic").await;
    assert_eq!(out.code, Some(99), "{out:?}");
    assert!(out.stderr.contains("sorry, that broke\n"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    // Next connection, same server.
    let out = server.ssh("alice").password(PASSWORD).run("echo next").await;
    assert_eq!(out.ok().stdout_text(), "next\n");
}

#[tokio::test]
async fn a_panicking_shell_on_a_pty_gets_the_message_with_a_carriage_return() {
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(CatchPanicLayer::new())).await;
    let client = RusshClient::login_password(server.addr(), "boom", PASSWORD).await;
    let mut channel = client.session().await;
    within("pty-req", channel.request_pty(true, "xterm", 80, 24, 0, 0, &[])).await.expect("pty-req sent");
    assert!(request_reply(&mut channel).await, "pty refused");
    within("shell", channel.request_shell(true)).await.expect("shell sent");
    let transcript = read_to_close(&mut channel).await;
    assert_eq!(transcript.stderr, b"internal error\r\n");
    assert_eq!(transcript.ending(), ["exit-status 70", "eof", "close"], "{transcript:?}");
}

#[tokio::test]
async fn without_the_layer_a_panic_closes_the_channel_with_no_exit_status() {
    // What the layer adds: the runtime alone closes the channel silently.
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new())).await;
    let client = RusshClient::login_password(server.addr(), "alice", PASSWORD).await;
    let mut channel = client.exec("panic").await;
    let transcript = read_to_close(&mut channel).await;
    assert!(transcript.stderr.is_empty(), "{transcript:?}");
    assert_eq!(transcript.ending(), ["eof", "close"], "{transcript:?}");
}
