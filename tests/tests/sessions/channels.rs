//! Session channels: window-change events, concurrent bodies, panics, the
//! session limit, and requests no handler allows.

use std::sync::Arc;

use russh::ChannelOpenFailure;
use ssh_framework::extract::Pty;
use ssh_framework::trace::TraceLayer;
use ssh_framework::{ChannelEvent, ChannelIo, Command, ExitStatus, ServerBuilder};
use ssh_framework_tests::handlers::{Commands, PasswordLogin, SessionOnly};
use ssh_framework_tests::russh_client::{Transcript, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::AsyncWriteExt;
use tokio::sync::Barrier;

use crate::logged_in;

/// A server where alice logs in with password `pw`, configured further by `configure`.
async fn alice(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
    TestServer::start(|b| configure(b.handlers(PasswordLogin::new("alice", "pw")))).await
}

/// A shell that prints its pty, then the first window-change it hears, and exits
/// (with [`SessionOnly`] for the channel).
struct Terminal;

#[ssh_framework::server]
impl Terminal {
    #[pty]
    async fn pty(&self) -> bool {
        true
    }

    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }

    #[shell]
    async fn shell(&self, pty: Pty, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let pty = pty.0.expect("a pty was allowed");
        io.stdout.write_all(format!("pty {} {}x{}\n", pty.term, pty.size.cols, pty.size.rows).as_bytes()).await?;
        while let Some(event) = io.events.recv().await {
            if let ChannelEvent::WindowChange(size) = event {
                io.stdout.write_all(format!("resized {}x{}\n", size.cols, size.rows).as_bytes()).await?;
                return Ok(ExitStatus::SUCCESS);
            }
        }
        Ok(ExitStatus::FAILURE)
    }
}

#[tokio::test]
async fn shell_body_sees_window_change() {
    let server = alice(|b| b.handlers(SessionOnly).handlers(Terminal).layer(TraceLayer::new())).await;
    let client = logged_in(&server).await;
    let mut channel = within("open", client.handle.channel_open_session()).await.unwrap();
    let mut transcript = Transcript::default();

    channel.request_pty(true, "xterm-256color", 80, 24, 0, 0, &[]).await.unwrap();
    assert!(transcript.read_until(&mut channel, |e| e == "success" || e == "failure").await);
    channel.request_shell(true).await.unwrap();
    assert!(transcript.read_until(&mut channel, |e| e == "success" || e == "failure").await);
    assert_eq!(transcript.events, ["success", "success"], "pty and shell allowed");
    channel.window_change(132, 43, 0, 0).await.unwrap();
    transcript.read_until(&mut channel, |e| e == "close").await;

    assert_eq!(String::from_utf8_lossy(&transcript.stdout), "pty xterm-256color 80x24\nresized 132x43\n");
    assert_eq!(transcript.ending(), ["exit-status 0", "eof", "close"]);
}

/// `meet` waits at a two-party barrier: it returns only when two bodies run at once
/// (with [`SessionOnly`] for the channel).
struct Rendezvous {
    barrier: Arc<Barrier>,
}

#[ssh_framework::server]
impl Rendezvous {
    #[exec("meet")]
    async fn meet(&self, mut io: ChannelIo) -> std::io::Result<()> {
        self.barrier.wait().await;
        io.stdout.write_all(b"met\n").await
    }
}

#[tokio::test]
async fn two_execs_on_one_connection_run_at_once() {
    let server = alice(|b| b.handlers(SessionOnly).handlers(Rendezvous { barrier: Arc::new(Barrier::new(2)) })).await;
    let client = logged_in(&server).await;

    // The first body is parked at the barrier before the second channel opens:
    // if a running body blocked the connection, the second exec would never start.
    let mut first = client.exec("meet").await;
    let mut first_transcript = Transcript::default();
    assert!(first_transcript.read_until(&mut first, |e| e == "success").await);
    let mut second = client.exec("meet").await;
    let (first_rest, second_transcript) = tokio::join!(read_to_close(&mut first), read_to_close(&mut second));

    assert_eq!(first_rest.stdout, b"met\n");
    assert_eq!(second_transcript.stdout, b"met\n");
    assert_eq!(first_rest.ending(), ["exit-status 0", "eof", "close"]);
    assert_eq!(second_transcript.ending(), ["exit-status 0", "eof", "close"]);
}

#[tokio::test]
async fn a_panicking_exec_closes_only_its_channel() {
    let server = alice(|b| b.handlers(Commands::new())).await;
    let client = logged_in(&server).await;

    let mut panicking = client.exec("panic").await;
    let transcript = read_to_close(&mut panicking).await;
    assert_eq!(transcript.ending(), ["eof", "close"], "no exit status after a panic: {transcript:?}");

    let mut next = client.exec("echo still here").await;
    let transcript = read_to_close(&mut next).await;
    assert_eq!(transcript.stdout, b"still here\n");
    assert_eq!(transcript.ending(), ["exit-status 0", "eof", "close"]);
}

#[tokio::test]
async fn refuses_sessions_beyond_max_sessions() {
    let server = alice(|b| b.handlers(Commands::new()).max_sessions(2)).await;
    let client = logged_in(&server).await;

    let one = within("open 1", client.handle.channel_open_session()).await.expect("first session");
    let _two = within("open 2", client.handle.channel_open_session()).await.expect("second session");
    let three = within("open 3", client.handle.channel_open_session()).await;
    assert!(
        matches!(three, Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ResourceShortage))),
        "{:?}",
        three.map(|c| c.id())
    );

    // Closing one makes room again. No wait is needed (or possible: russh's
    // client drops the server's answering close): the server handles the
    // close before the next open, which it receives after it.
    one.close().await.unwrap();
    let mut four = within("open 4", client.handle.channel_open_session()).await.expect("a session after one closed");
    four.exec(true, "echo room").await.unwrap();
    assert_eq!(read_to_close(&mut four).await.stdout, b"room\n");
}

#[tokio::test]
async fn sessions_whose_exec_finished_do_not_count_toward_max_sessions() {
    let server = alice(|b| b.handlers(Commands::new()).max_sessions(2)).await;
    let client = logged_in(&server).await;

    // Each exec ends with the server's close; five in a row on one connection.
    for n in 0..5 {
        let mut channel = within("open", client.handle.channel_open_session()).await.unwrap_or_else(|e| {
            panic!("session {n} refused after {n} finished sessions with max_sessions(2): {e:?}")
        });
        channel.exec(true, format!("echo {n}")).await.unwrap();
        let transcript = read_to_close(&mut channel).await;
        assert_eq!(transcript.stdout, format!("{n}\n").as_bytes());
    }
}

#[tokio::test]
async fn refuses_session_channels_without_a_session_handler() {
    let server = alice(|b| b).await;

    let out = server.ssh("alice").password("pw").run("echo in").await;
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("open failed"), "stderr: {}", out.stderr);

    let client = logged_in(&server).await;
    let open = within("open", client.handle.channel_open_session()).await;
    assert!(
        matches!(open, Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::AdministrativelyProhibited))),
        "{:?}",
        open.map(|c| c.id())
    );
}

#[tokio::test]
async fn refuses_exec_without_an_exec_handler() {
    let server = alice(|b| b.handlers(SessionOnly)).await;

    let out = server.ssh("alice").password("pw").run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("exec request failed"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

/// Exec routed by program name: `Command` carries the full line (with [`SessionOnly`] for the channel).
struct Named;

#[ssh_framework::server]
impl Named {
    #[exec("greet")]
    async fn greet(&self, command: Command, mut io: ChannelIo) -> std::io::Result<()> {
        io.stdout.write_all(format!("hello {}\n", command.args()).as_bytes()).await
    }
}

#[tokio::test]
async fn exec_routes_on_the_program_and_refuses_others() {
    let server = alice(|b| b.handlers(SessionOnly).handlers(Named)).await;

    let out = server.ssh("alice").password("pw").run("greet  world").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "hello world\n");

    let out = server.ssh("alice").password("pw").run("greeting world").await;
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("exec request failed"), "stderr: {}", out.stderr);
}
