//! Keepalives (`--client-alive-interval`, `--client-alive-count-max`): a
//! client that stops answering is dropped, one that answers is kept.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ssh_framework_tests::within;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{group_and_session, with_bob};

#[tokio::test]
async fn a_frozen_client_is_dropped_after_its_unanswered_keepalives() {
    let (interval, count) = (1, 2);
    let sshd = with_bob(&[&format!("--client-alive-interval={interval}"), &format!("--client-alive-count-max={count}")]).await;
    // Kept alive while ssh runs: it owns the askpass script.
    let bob = sshd.ssh("bob").password("pw");
    let mut ssh = bob.command("echo $$; exec sleep 60");
    ssh.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut child = ssh.spawn().expect("ssh runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    within("the remote shell's pid", stdout.read_line(&mut line)).await.unwrap();
    let remote: u32 = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));
    assert!(group_and_session(remote).is_some());

    // SIGSTOP: the client's kernel still acknowledges, but nothing answers.
    let client = Pid::from_raw(i32::try_from(child.id().expect("running")).unwrap());
    kill(client, Signal::SIGSTOP).unwrap();
    let frozen = Instant::now();
    // The server drops the connection, and with it the command (killed with its group).
    let bound = Duration::from_secs(interval * (count as u64 + 1) + 2);
    while group_and_session(remote).is_some() {
        assert!(frozen.elapsed() < bound, "still connected {:?} after the client froze", frozen.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dropped = frozen.elapsed();
    kill(client, Signal::SIGKILL).unwrap();
    let _ = child.wait().await;

    assert!(dropped >= Duration::from_secs(interval * count as u64), "dropped after {dropped:?}, before the keepalives ran out");
}

#[tokio::test]
async fn a_client_that_answers_keepalives_stays_connected() {
    let sshd = with_bob(&["--client-alive-interval=1", "--client-alive-count-max=1"]).await;
    // Five seconds of silence both ways: only keepalives and their answers pass.
    let out = sshd.ssh("bob").password("pw").run("sleep 5; echo survived").await;

    out.ok();
    assert_eq!(out.stdout_text(), "survived\n");
}
