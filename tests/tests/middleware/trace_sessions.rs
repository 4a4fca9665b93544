//! `TraceLayer` logs each shell, exec or subsystem when it ends: user, kind,
//! command, exit status or signal, and how long it ran.

use std::time::{Duration, Instant};

use ssh_framework::middleware::CatchPanicLayer;
use ssh_framework::trace::TraceLayer;
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::log::with_log;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close, request_reply};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

use super::{App, PASSWORD};

/// The lines containing `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// The value of `millis=N` in a log line.
fn millis(line: &str) -> u64 {
    let rest = line.split("millis=").nth(1).unwrap_or_else(|| panic!("no millis in {line}"));
    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no number in {line}"))
}

#[test]
fn a_session_end_is_logged_with_its_status_and_duration() {
    with_log(tracing::Level::INFO, |captured| async move {
        let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(TraceLayer::new())).await;
        let client = RusshClient::login_password(server.addr(), "alice", PASSWORD).await;

        // A session held open for a known time: `cat` runs until stdin ends.
        const HELD: Duration = Duration::from_millis(300);
        let started = Instant::now();
        let mut channel = client.exec("cat").await;
        assert!(request_reply(&mut channel).await, "cat refused");
        tokio::time::sleep(HELD).await;
        within("eof", channel.eof()).await.expect("eof sent");
        let transcript = read_to_close(&mut channel).await;
        let elapsed = started.elapsed();
        assert_eq!(transcript.ending(), ["exit-status 0", "eof", "close"]);

        let mut channel = client.exec("kill TERM").await;
        read_to_close(&mut channel).await;
        let mut channel = client.session().await;
        within("subsystem", channel.request_subsystem(true, "hello")).await.expect("subsystem sent");
        read_to_close(&mut channel).await;

        let log = captured.text();
        let ended = lines_with(&log, "session ended");
        assert_eq!(ended.len(), 3, "{log}");
        let cat = ended[0];
        for needle in [" INFO ", "user=\"alice\"", "kind=\"exec\"", "command=\"cat\"", "code=0"] {
            assert!(cat.contains(needle), "{needle:?} missing from {cat}");
        }
        let ms = millis(cat);
        println!("cat held {HELD:?}: logged {ms} ms, whole exchange {elapsed:?}");
        assert!(ms >= HELD.as_millis() as u64 && ms <= elapsed.as_millis() as u64, "{ms} ms logged, held {HELD:?}, whole exchange {elapsed:?}");
        assert!(ended[1].contains("command=\"kill TERM\"") && ended[1].contains("signal=\"TERM\""), "{}", ended[1]);
        assert!(ended[2].contains("kind=\"subsystem\"") && ended[2].contains("subsystem=\"hello\"") && ended[2].contains("code=0"), "{}", ended[2]);
    });
}

#[test]
fn a_panic_is_logged_as_no_exit_status_or_as_the_catch_panic_code() {
    with_log(tracing::Level::INFO, |captured| async move {
        // Without CatchPanicLayer: the body is dropped mid-way.
        let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(TraceLayer::new())).await;
        let client = RusshClient::login_password(server.addr(), "bob", PASSWORD).await;
        read_to_close(&mut client.exec("panic").await).await;
        // With it, inside the trace layer: the client got exit status 70, and so says the log.
        let server = TestServer::start(|b| {
            b.handlers(App::default()).handlers(Commands::new()).layer(CatchPanicLayer::new()).layer(TraceLayer::new())
        })
        .await;
        let client = RusshClient::login_password(server.addr(), "carol", PASSWORD).await;
        read_to_close(&mut client.exec("panic").await).await;

        let log = captured.text();
        let bare = lines_with(&log, "session ended without an exit status");
        assert_eq!(bare.len(), 1, "{log}");
        assert!(bare[0].contains("user=\"bob\"") && bare[0].contains("command=\"panic\""), "{}", bare[0]);
        let caught: Vec<_> = lines_with(&log, "session ended").into_iter().filter(|l| l.contains("user=\"carol\"")).collect();
        assert_eq!(caught.len(), 1, "{log}");
        assert!(caught[0].contains("code=70"), "{}", caught[0]);
    });
}
