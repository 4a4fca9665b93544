//! `--channel-timeout` and `--unused-connection-timeout` (OpenSSH's
//! `ChannelTimeout` and `UnusedConnectionTimeout`), driven by OpenSSH's `ssh`:
//! an idle channel is closed and a busy one is not; a connection without
//! channels is dropped and one with a running session is not. Every wait is
//! bounded and every figure measured.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::net::{connect, free_port, localhost, tcp_echo};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::within;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

/// Waits for `child` to exit, at most `bound`; its exit code and how long that took.
async fn exit_within(child: &mut Child, bound: Duration, what: &str) -> (Option<i32>, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(bound, child.wait()).await {
        Ok(status) => (status.expect("waiting for ssh").code(), start.elapsed()),
        Err(_) => panic!("{what}: ssh still running after {bound:?}"),
    }
}

/// Reads `child`'s stderr lines until one contains `needle`.
async fn stderr_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>, needle: &str) {
    within(&format!("ssh to print {needle:?}"), async {
        while let Some(line) = lines.next_line().await.expect("reading ssh's stderr") {
            if line.contains(needle) {
                return;
            }
        }
        panic!("ssh exited before printing {needle:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_closed_after_its_channel_timeout() {
    let sshd = MiniSshd::with_alice_key(&["--channel-timeout", "session=2"]).await;
    let alice = sshd.alice();
    let mut cmd = alice.command("echo started; exec sleep 30");
    cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut ssh = cmd.spawn().expect("ssh runs");
    let mut stdout = BufReader::new(ssh.stdout.take().expect("piped"));
    let mut line = String::new();
    within("the session to start", stdout.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "started\n");

    // The last byte was that line: the channel is closed 2 s (plus at most an eighth) later.
    let (code, idle) = exit_within(&mut ssh, Duration::from_secs(3), "ssh sleep 30 under session=2").await;
    assert_eq!(code, Some(255), "closed without an exit status, as by OpenSSH");
    assert!(idle >= Duration::from_millis(1900) && idle <= Duration::from_secs(3), "closed {idle:?} after the last byte");
    eprintln!("idle session closed {idle:?} after its last byte (bound 2 s .. 3 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_traffic_every_half_second_outlives_its_channel_timeout() {
    let sshd = MiniSshd::with_alice_key(&["--channel-timeout", "session=2"]).await;
    let start = Instant::now();
    // Not `... | head -n 12`: head's stdout is a pipe, so it buffers all 12 lines
    // until it exits and the channel carries nothing for 6 s. The shell's echo
    // writes each line as it goes.
    let out = sshd.alice().run("i=0; while [ $i -lt 12 ]; do echo x; sleep 0.5; i=$((i+1)); done").await;
    let took = start.elapsed();

    out.ok();
    assert_eq!(out.stdout_text().lines().count(), 12, "{out:?}");
    assert!(took >= Duration::from_secs(5), "the session ran {took:?}, more than twice its timeout");
    eprintln!("busy session ran {took:?} under session=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_channels_is_dropped_after_the_unused_connection_timeout() {
    let sshd = MiniSshd::with_alice_key(&["--unused-connection-timeout", "2"]).await;
    let alice = sshd.alice().args(["-v", "-N"]);
    let mut cmd = alice.command("");
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    let spawned = Instant::now();
    let mut ssh = cmd.spawn().expect("ssh -N runs");
    let mut lines = BufReader::new(ssh.stderr.take().expect("piped")).lines();
    stderr_line(&mut lines, "Entering interactive session").await;
    let authenticated = Instant::now();
    // Drain the rest of -v's output so ssh never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (code, _) = exit_within(&mut ssh, Duration::from_secs(4), "ssh -N under --unused-connection-timeout 2").await;
    let (since_auth, since_spawn) = (authenticated.elapsed(), spawned.elapsed());
    assert_eq!(code, Some(255), "disconnected by the server");
    assert!(since_auth >= Duration::from_millis(1500), "dropped {since_auth:?} after the login, before the timeout");
    assert!(since_spawn <= Duration::from_secs(4), "dropped {since_spawn:?} after ssh started (bound 2 s + 2 s)");
    eprintln!("unused connection dropped {since_auth:?} after login, {since_spawn:?} after ssh started (bound 4 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_running_a_session_outlives_the_unused_connection_timeout() {
    let sshd = MiniSshd::with_alice_key(&["--unused-connection-timeout", "2"]).await;
    let start = Instant::now();
    let out = sshd.alice().run("sleep 5; echo done").await;
    let took = start.elapsed();

    out.ok();
    assert_eq!(out.stdout_text(), "done\n");
    assert!(took >= Duration::from_millis(4900), "ran {took:?}");
    eprintln!("a 5 s session under --unused-connection-timeout 2 ran {took:?} and exited 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_local_forward_is_closed_while_its_connections_session_goes_on() {
    let echo = tcp_echo().await;
    let sshd = MiniSshd::with_alice_key(&["--allow-tcp-forwarding", "--channel-timeout", "direct-tcpip=2"]).await;
    let local = localhost(free_port());
    let alice = sshd.alice().option("ExitOnForwardFailure=yes").args(["-v", "-L", &format!("{local}:{echo}")]);
    let mut cmd = alice.command("sleep 6; echo session done");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let started = Instant::now();
    let mut ssh = cmd.spawn().expect("ssh -L runs");
    let mut lines = BufReader::new(ssh.stderr.take().expect("piped")).lines();
    stderr_line(&mut lines, "Entering interactive session").await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // One round trip through the forward, then silence.
    let mut socket = connect(local).await;
    socket.write_all(b"ping").await.unwrap();
    let mut back = [0; 4];
    within("the echo through the forward", socket.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping");
    let last_byte = Instant::now();

    let mut rest = Vec::new();
    let eof = tokio::time::timeout(Duration::from_secs(3), socket.read_to_end(&mut rest)).await;
    let idle = last_byte.elapsed();
    assert!(matches!(eof, Ok(Ok(0))), "the forward was not closed with EOF within 3 s: {eof:?}");
    assert!(idle >= Duration::from_millis(1900), "closed {idle:?} after the last byte, before the timeout");
    eprintln!("idle direct-tcpip closed {idle:?} after its last byte (bound 2 s .. 3 s)");

    // The session on the same connection is untouched (no timeout for sessions).
    let mut stdout = ssh.stdout.take().expect("piped");
    let (code, _) = exit_within(&mut ssh, Duration::from_secs(8), "the session after the forward closed").await;
    let mut text = String::new();
    stdout.read_to_string(&mut text).await.unwrap();
    assert_eq!((code, text.as_str()), (Some(0), "session done\n"));
    assert!(started.elapsed() >= Duration::from_secs(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unused_connection_timer_starts_again_when_the_last_channel_closes() {
    let sshd = MiniSshd::with_alice_key(&["--unused-connection-timeout", "2"]).await;
    // russh's client keeps the connection after its session ends, as a multiplexing ssh does.
    let mut client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let mut channel = client.exec("sleep 3; echo done").await;
    let transcript = read_to_close(&mut channel).await;
    let closed = Instant::now();
    assert!(transcript.ending().contains(&"exit-status 0"), "{:?}", transcript.ending());

    let message = client.disconnected().await;
    let unused = closed.elapsed();
    assert_eq!(message.as_deref(), Some("Unused connection timeout"));
    assert!(unused >= Duration::from_millis(1900) && unused <= Duration::from_secs(3), "dropped {unused:?} after the last channel closed");
    eprintln!("dropped {unused:?} after the last channel closed (bound 2 s .. 3 s)");
}

#[tokio::test]
async fn a_session_that_never_starts_a_command_is_closed_after_its_channel_timeout_and_frees_the_connection() {
    // With both: the idle channel is closed at 2 s, then the connection, left
    // without a channel, at 2 s more.
    let sshd = MiniSshd::with_alice_key(&["--channel-timeout", "session=2", "--unused-connection-timeout", "2"]).await;
    let mut client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let opened = Instant::now();
    let mut channel = client.session().await;

    // No shell, command or subsystem: the server closes it.
    let transcript = read_to_close(&mut channel).await;
    let closed = opened.elapsed();
    assert_eq!(transcript.ending(), ["close"], "{transcript:?}");
    assert!(closed >= Duration::from_millis(1900) && closed <= Duration::from_secs(3), "closed after {closed:?}");

    // Its places were given back: the unused-connection timer ran.
    let message = client.disconnected().await;
    let dropped = opened.elapsed();
    assert_eq!(message.as_deref(), Some("Unused connection timeout"));
    assert!(dropped >= closed + Duration::from_millis(1900) && dropped <= closed + Duration::from_secs(3), "dropped after {dropped:?}");
    eprintln!("idle session closed after {closed:?}, connection dropped after {dropped:?} (bounds 2..3 s each)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_channel_timeout_closes_every_channel_once_none_has_traffic() {
    // Two idle sessions on one connection (OpenSSH's ssh multiplexes them only
    // with a control master, so russh's client opens both).
    let sshd = MiniSshd::with_alice_key(&["--channel-timeout", "global=2"]).await;
    let client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let started = Instant::now();
    let mut one = client.exec("exec sleep 30").await;
    let mut two = client.exec("exec sleep 30").await;

    let (first, second) = tokio::join!(read_to_close(&mut one), read_to_close(&mut two));
    let closed = started.elapsed();
    for transcript in [&first, &second] {
        assert!(!transcript.ending().iter().any(|e| e.starts_with("exit-status")), "closed without an exit status: {transcript:?}");
    }
    assert!(closed >= Duration::from_millis(1900) && closed <= Duration::from_secs(3), "closed after {closed:?}");
    eprintln!("both idle sessions closed by global=2 after {closed:?} (bound 2 s .. 3 s)");
}
