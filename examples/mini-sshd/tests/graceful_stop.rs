//! The `mini-sshd` binary stops the way `Server::run` promises: at SIGTERM it
//! stops accepting and lets a running session finish; a second SIGTERM
//! disconnects at once. Driven with russh's client against the real binary.

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
