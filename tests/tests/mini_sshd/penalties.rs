//! Per-source penalties (`--per-source-penalties`, OpenSSH's
//! `PerSourcePenalties`): failed OpenSSH logins from one loopback source get it
//! refused before the version exchange while other sources log in, until the
//! penalty expires; an exempt source is never refused; a raw connection that
//! leaves without authenticating earns `noauth`. Each test waits for the
//! server's log line of the penalty rather than sleeping; the server's
//! connection threads log under the subscriber that was the test's default
//! where it started.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ssh_framework_tests::log::Captured;
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::net::closed_without_data;
use ssh_framework_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::with_bob;

/// Connects from `source`, a loopback address of its own.
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::from(source), 0).into()).unwrap();
    within("connect", socket.connect(addr)).await.unwrap()
}

/// Whether the server answers a connection from `source` with its version
/// line (`false`: closed before the version exchange). The connection then
/// leaves without authenticating.
async fn greeted(source: [u8; 4], addr: SocketAddr) -> bool {
    let mut socket = connect_from(source, addr).await;
    let _ = socket.write_all(b"SSH-2.0-Penalties_1.0\r\n").await;
    let mut greeting = [0; 8];
    within("the server's first bytes", socket.read_exact(&mut greeting)).await.is_ok() && &greeting == b"SSH-2.0-"
}

/// Waits (at most 5 s) until the log holds `needle` `count` times.
async fn logged(captured: &Captured, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while captured.text().matches(needle).count() < count {
        assert!(Instant::now() < deadline, "`{needle}` not logged {count} times in 5 s:\n{}", captured.text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `seconds_left` of the last refusal logged.
fn seconds_left(captured: &Captured) -> f64 {
    let log = captured.text();
    let line = log.lines().rfind(|l| l.contains("source penalised; refused")).unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    let value = line.split("seconds_left=").nth(1).and_then(|v| v.split_whitespace().next()).expect("seconds_left in the line");
    value.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// One wrong password from `source` (ssh asks once); asserts that the server
/// got as far as refusing the password.
async fn wrong_password(sshd: &MiniSshd, source: &str) {
    let out = sshd.ssh("bob").password("wrong").option(&format!("BindAddress={source}")).run("true").await;
    out.failed();
    assert!(out.stderr.contains("Permission denied"), "{source}: not refused by authentication: {}", out.stderr);
}

/// Runs `test` with what the server logs at info.
fn with_log<F: Future<Output = ()>>(test: impl FnOnce(Captured) -> F) {
    ssh_framework_tests::log::with_log(tracing::Level::INFO, test);
}

#[test]
fn two_failed_logins_refuse_a_source_for_seven_seconds_while_another_logs_in() {
    // At debug: the probe's penalty is added to the deferred entry without an
    // info line, so the test waits for the server's debug line of the probe's end.
    ssh_framework_tests::log::with_log(tracing::Level::DEBUG, |captured| async move {
        // Two failures (3 s each) and one probe without authentication (1 s,
        // noauth's default): 7 s is more than min (4 s), enforced until 7 s
        // after the first, if the second failure ends within 3 s of the first.
        let sshd = with_bob(&["--per-source-penalties=authfail:3s min:4s max:30s"]).await;
        let started = Instant::now();
        wrong_password(&sshd, "127.0.0.2").await;
        let first_done = started.elapsed();
        logged(&captured, "new deferred penalty", 1).await;
        assert!(greeted([127, 0, 0, 2], sshd.addr()).await, "3 s is not enforced");
        // The probe's 1 s is penalised in its connection's close hook, which
        // may run on another thread than the next login's: it must be in the
        // table before the second failure is, or that failure alone activates
        // the entry, at about 6 s (the hook logs this line, then penalises).
        logged(&captured, "unauthenticated connection ended", 2).await;
        wrong_password(&sshd, "127.0.0.2").await;
        logged(&captured, "penalty activated", 1).await;

        // Refused before the version exchange, even with the right password.
        assert!(closed_without_data(connect_from([127, 0, 0, 2], sshd.addr()).await).await);
        let left = seconds_left(&captured);
        eprintln!("authfail: refused with {left} s left");
        assert!(left <= 7.0 && left > 7.0 - started.elapsed().as_secs_f64(), "{left} s left");
        let out = sshd.ssh("bob").password("pw").option("BindAddress=127.0.0.2").run("true").await;
        out.failed();
        assert!(!out.stderr.contains("Permission denied"), "{}", out.stderr);
        // Another source logs in meanwhile.
        sshd.ssh("bob").password("pw").run("true").await.ok();

        // Let in again once the penalty expires: probe every 100 ms (a refused probe adds nothing).
        let deadline = started + Duration::from_secs(10);
        while !greeted([127, 0, 0, 2], sshd.addr()).await {
            assert!(Instant::now() < deadline, "still refused 10 s after the first failure");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let refused_until = started.elapsed();
        eprintln!("127.0.0.2 refused until {refused_until:?} after its first failure (which took {first_done:?})");
        assert!(refused_until >= Duration::from_secs(7), "{refused_until:?}");
        assert!(refused_until <= Duration::from_secs(7) + first_done + Duration::from_millis(600), "{refused_until:?}");
        sshd.ssh("bob").password("pw").option("BindAddress=127.0.0.2").run("true").await.ok();
    });
}

#[test]
fn an_exempt_source_is_never_refused_after_the_same_failures() {
    with_log(|captured| async move {
        // Two failures: 8 s is more than min (5 s) if the second ends within 3 s of the first.
        let sshd = with_bob(&["--per-source-penalties=authfail:4s min:5s max:30s", "--per-source-penalty-exempt-list=127.0.0.3/32"])
            .await;
        for _ in 0..4 {
            wrong_password(&sshd, "127.0.0.3").await;
        }
        // The same failures from a source not exempt get it refused.
        wrong_password(&sshd, "127.0.0.2").await;
        wrong_password(&sshd, "127.0.0.2").await;
        logged(&captured, "penalty activated", 1).await;
        assert!(closed_without_data(connect_from([127, 0, 0, 2], sshd.addr()).await).await);

        assert!(greeted([127, 0, 0, 3], sshd.addr()).await);
        sshd.ssh("bob").password("pw").option("BindAddress=127.0.0.3").run("true").await.ok();
        let log = captured.text();
        assert_eq!(log.matches("penalty activated").count() + log.matches("new active penalty").count(), 1, "{log}");
    });
}

#[test]
fn one_connection_without_authentication_earns_a_noauth_penalty() {
    with_log(|captured| async move {
        let sshd = with_bob(&["--per-source-penalties=noauth:10s min:5s"]).await;
        // One connection that exchanges versions and leaves.
        assert!(greeted([127, 0, 0, 4], sshd.addr()).await);
        logged(&captured, "new active penalty", 1).await;

        assert!(closed_without_data(connect_from([127, 0, 0, 4], sshd.addr()).await).await);
        let left = seconds_left(&captured);
        eprintln!("noauth: refused with {left} s left");
        assert!(left > 9.0 && left <= 10.0, "{left} s left");
        assert!(greeted([127, 0, 0, 1], sshd.addr()).await, "another source is let in");
    });
}
