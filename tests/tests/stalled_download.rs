//! A client that stops reading for 30 s in the middle of a 1 GiB download,
//! then resumes: every byte arrives, in order, and the server holds no more
//! than the channel window plus a small constant meanwhile.
//!
//! mini-sshd runs in a child process (this binary again, running only the
//! ignored [`mini_sshd_child`]) and the figure is its resident set alone.

use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ssh_framework_tests::memory::MIB;
use ssh_framework_tests::mini_sshd::{self, MiniSshd, MiniSshdProcess};
use ssh_framework_tests::openssh::Ssh;
use tokio::io::AsyncReadExt;

/// The download: `yes` output, "x\n" repeated.
const SIZE: usize = 1 << 30;
/// How long the client stops reading.
const STALL: Duration = Duration::from_secs(30);
/// The channel window (the framework's default) and the slack allowed above it.
const WINDOW: usize = 8 * MIB;
const SLACK: usize = 8 * MIB;

/// The server of the test below, when it starts this binary as its child.
#[test]
#[ignore = "the mini-sshd child process of the test below; not a test by itself"]
fn mini_sshd_child() {
    mini_sshd::child_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_gets_every_byte_and_the_server_holds_a_window() {
    let base = MiniSshd::base();
    std::fs::create_dir(base.path().join("root")).unwrap();
    let sshd = MiniSshdProcess::start("mini_sshd_child", base, &["--user=bob:pw"], None).await;
    let idle = sshd.rss();
    let bob = Ssh::new(sshd.addr().port(), "bob").password("pw");
    let mut ssh = bob.command(&format!("yes x | head -c {SIZE}"));
    let mut child = ssh.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();

    let mut hasher = Sha256::new();
    let mut received = 0;
    let mut buffer = vec![0; 256 << 10];
    // Read a quarter, so the transfer is in full flow, then stop.
    while received < SIZE / 4 {
        let n = stdout.read(&mut buffer).await.unwrap();
        assert_ne!(n, 0, "the download ended after {received} bytes");
        hasher.update(&buffer[..n]);
        received += n;
    }
    let mut peak = sshd.rss();
    let stalled = Instant::now();
    while stalled.elapsed() < STALL {
        peak = peak.max(sshd.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // From before the login: the transfer's buffers, in flight when the client stopped, count.
    let growth = peak.saturating_sub(idle);
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stdout.read(&mut buffer)).await.expect("reading resumed").unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        received += n;
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("ssh exits").unwrap();

    assert!(status.success(), "{status:?}");
    assert_eq!(received, SIZE);
    let expected = {
        let mut expected = Sha256::new();
        let block = b"x\n".repeat(1 << 19);
        for _ in 0..SIZE / block.len() {
            expected.update(&block);
        }
        expected.finalize()
    };
    assert_eq!(hasher.finalize(), expected, "the bytes that arrived are not the bytes sent");
    assert!(growth <= WINDOW + SLACK, "the server grew by {} KiB while the client did not read", growth >> 10);
    assert!(started.elapsed() > STALL);
}
