//! The `mini-sshd` binary stops the way `Server::run` promises: at SIGTERM it
//! stops accepting and lets running sessions finish (ten transfers complete,
//! every byte); a second SIGTERM disconnects at once, and a transfer it cuts
//! never reports success. Driven with russh's client against the real binary.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use russh::client;
use russh::{ChannelMsg, client::Handle};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

struct TrustAnyHost;

impl client::Handler for TrustAnyHost {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Starts the binary on a free port with user alice:pw; returns it and its port.
async fn start(dir: &tempfile::TempDir) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-sshd"))
        .args(["--listen", "127.0.0.1:0", "--user", "alice:pw", "--host-key"])
        .arg(dir.path().join("host_key"))
        .arg("--root")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mini-sshd starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    timeout(LIMIT, BufReader::new(stdout).read_line(&mut line)).await.expect("a startup line").expect("readable");
    let port = line
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in the startup line: {line:?}"));
    (child, port)
}

async fn login(port: u16) -> Handle<TrustAnyHost> {
    let config = Arc::new(client::Config::default());
    let mut handle = timeout(LIMIT, client::connect(config, ("127.0.0.1", port), TrustAnyHost))
        .await
        .expect("in time")
        .expect("connects");
    let auth = timeout(LIMIT, handle.authenticate_password("alice", "pw")).await.expect("in time").expect("replied");
    assert!(auth.success(), "{auth:?}");
    handle
}

/// Runs `command`; stdout and exit status once the channel closes.
async fn run_to_close(mut channel: russh::Channel<client::Msg>) -> (String, Option<u32>) {
    let (mut out, mut status) = (Vec::new(), None);
    while let Some(msg) = timeout(LIMIT, channel.wait()).await.expect("the channel ends in time") {
        match msg {
            ChannelMsg::Data { data } => out.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), status)
}

/// Waits until connections to `port` are refused: the server stopped accepting.
async fn listener_closed(port: u16) {
    let refused = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    timeout(LIMIT, refused).await.expect("the listener closes after SIGTERM");
}

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id().expect("running")).expect("a pid");
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("signal sent");
}

#[tokio::test]
async fn sigterm_lets_a_running_session_finish_then_the_server_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start(&dir).await;
    let handle = login(port).await;
    let channel = handle.channel_open_session().await.expect("session");
    // The command waits for a file that appears only after the signal.
    let flag = dir.path().join("signalled");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done; echo finished", flag.display());
    channel.exec(true, script).await.expect("exec sent");

    sigterm(&child);
    listener_closed(port).await;
    std::fs::write(&flag, b"").unwrap();

    let (out, status) = run_to_close(channel).await;
    assert_eq!((out.as_str(), status), ("finished\n", Some(0)));
    drop(handle);
    let exit = timeout(LIMIT, child.wait()).await.expect("the server exits after the drain").unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn a_second_sigterm_disconnects_running_sessions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start(&dir).await;
    let handle = login(port).await;
    let channel = handle.channel_open_session().await.expect("session");
    channel.exec(true, "sleep 600").await.expect("exec sent");
    // The exec reply means the child runs.
    let mut channel = channel;
    while let Some(msg) = timeout(LIMIT, channel.wait()).await.expect("a reply") {
        if matches!(msg, ChannelMsg::Success) {
            break;
        }
    }

    sigterm(&child);
    // The first signal has been handled once the listener is gone.
    listener_closed(port).await;
    sigterm(&child);

    let exit = timeout(Duration::from_secs(10), child.wait()).await.expect("exits well before the 30 s drain").unwrap();
    assert!(exit.success(), "{exit}");
}

/// Transfers running at once when the signal comes.
const TRANSFERS: usize = 10;
/// Each sends 40 × 256 KiB of zeros over about two seconds.
const TRANSFER_BYTES: usize = 40 * 256 * 1024;
const TRANSFER: &str = "i=0; while [ $i -lt 40 ]; do head -c 262144 /dev/zero; sleep 0.05; i=$((i+1)); done";

/// What one transfer's client saw: the bytes (all zeros?) and the exit status.
struct Received {
    bytes: usize,
    zeros: bool,
    status: Option<u32>,
}

/// Starts [`TRANSFERS`] downloads, each on a connection of its own, and
/// returns once every one has received its first bytes.
async fn start_transfers(port: u16) -> Vec<tokio::task::JoinHandle<Received>> {
    let mut transfers = Vec::new();
    let mut started = Vec::new();
    for _ in 0..TRANSFERS {
        let handle = login(port).await;
        let mut channel = handle.channel_open_session().await.expect("session");
        channel.exec(true, TRANSFER).await.expect("exec sent");
        let (first, first_rx) = tokio::sync::oneshot::channel();
        started.push(first_rx);
        transfers.push(tokio::spawn(async move {
            let _handle = handle;
            let mut first = Some(first);
            let mut received = Received { bytes: 0, zeros: true, status: None };
            while let Some(msg) = timeout(LIMIT, channel.wait()).await.expect("the transfer ends in time") {
                match msg {
                    ChannelMsg::Data { data } => {
                        received.bytes += data.len();
                        received.zeros &= data.iter().all(|&b| b == 0);
                        if let Some(first) = first.take() {
                            let _ = first.send(());
                        }
                    }
                    ChannelMsg::ExitStatus { exit_status } => received.status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            received
        }));
    }
    for first in started {
        timeout(LIMIT, first).await.expect("every transfer starts").expect("a first chunk");
    }
    transfers
}

#[tokio::test]
async fn sigterm_lets_ten_running_transfers_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start(&dir).await;
    let transfers = start_transfers(port).await;

    sigterm(&child);
    listener_closed(port).await;

    for transfer in transfers {
        let received = transfer.await.unwrap();
        assert_eq!((received.bytes, received.zeros, received.status), (TRANSFER_BYTES, true, Some(0)));
    }
    let exit = timeout(LIMIT, child.wait()).await.expect("the server exits after the drain").unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn transfers_cut_by_a_second_sigterm_fail_loudly_never_short_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start(&dir).await;
    let transfers = start_transfers(port).await;

    sigterm(&child);
    listener_closed(port).await;
    sigterm(&child);

    let mut cut = 0;
    for transfer in transfers {
        let received = transfer.await.unwrap();
        assert!(received.zeros);
        if received.status == Some(0) {
            assert_eq!(received.bytes, TRANSFER_BYTES, "a transfer reported success with part of its data");
        } else {
            cut += 1;
        }
    }
    assert!(cut > 0, "no transfer was cut: the second signal came too late to test anything");
    let exit = timeout(Duration::from_secs(10), child.wait()).await.expect("exits well before the 30 s drain").unwrap();
    assert!(exit.success(), "{exit}");
}
