//! What the chat tests share: the chat server on a free port, and an
//! interactive `ssh -tt` whose keystrokes the test types and whose screen
//! output it reads until a marker shows up.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use russh::{ChannelId, ChannelMsg, ChannelWriteHalf, client};

use example_chat::{Chat, Settings, Users};
use ssh_framework_tests::openssh::Ssh;
use ssh_framework_tests::server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

/// How long a test waits for a marker on a terminal.
pub const WAIT: Duration = Duration::from_secs(15);

/// The chat with `users` and `settings`, on 127.0.0.1.
pub async fn chat_server(users: Users, settings: Settings) -> TestServer {
    TestServer::start(|builder| builder.handlers(Chat::new(users, settings))).await
}

/// A running `ssh -tt` session: what the test types goes to its stdin, what
/// the server draws arrives on its stdout.
pub struct Terminal {
    child: Child,
    stdin: ChildStdin,
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    /// Everything the terminal received so far.
    pub seen: Vec<u8>,
    /// Where the next [`expect`](Terminal::expect) starts looking.
    cursor: usize,
    _ssh: Ssh,
}

impl Terminal {
    /// Starts `ssh` (configured with `-tt` and a login) with no command: the shell.
    pub fn start(ssh: Ssh) -> Terminal {
        let ssh = ssh.tty();
        let mut command = ssh.command("");
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("ssh starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (tx, chunks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { child, stdin, chunks, seen: Vec::new(), cursor: 0, _ssh: ssh }
    }

    /// Types `keys`.
    pub async fn send(&mut self, keys: &[u8]) {
        self.stdin.write_all(keys).await.expect("ssh reads its stdin");
        self.stdin.flush().await.expect("flushed");
    }

    /// Waits until `needle` appears after the last match, and moves past it.
    pub async fn expect(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(at) = find(&self.seen[self.cursor..], needle.as_bytes()) {
                self.cursor += at + needle.len();
                return;
            }
            match tokio::time::timeout_at(deadline, self.chunks.recv()).await {
                Ok(Some(chunk)) => self.seen.extend_from_slice(&chunk),
                Ok(None) => panic!("ssh ended before {needle:?} appeared; it showed {:?}", self.text()),
                Err(_) => panic!("{needle:?} did not appear within {WAIT:?}; the terminal showed {:?}", self.text()),
            }
        }
    }

    /// Waits for ssh to exit, reading what is left; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.expect("ssh exits").expect("ssh ran");
        while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(2), self.chunks.recv()).await {
            self.seen.extend_from_slice(&chunk);
        }
        status.code()
    }

    /// What the terminal received, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// russh's client handler for the chat tests: trusts the test server's host
/// key and, until [`Gate::open`], stops its whole connection at the first data
/// from the server (its event loop waits inside `data`: it reads nothing more
/// from the socket and grants no more window). An open gate never stops it.
#[derive(Debug)]
pub struct GatedClient {
    gate: Gate,
}

/// Holds a [`GatedClient`] at its first data until opened.
#[derive(Debug, Clone)]
pub struct Gate {
    open: Arc<tokio::sync::Semaphore>,
    reached: Arc<tokio::sync::Notify>,
}

impl Gate {
    /// A closed gate.
    pub fn closed() -> Gate {
        Gate { open: Arc::new(tokio::sync::Semaphore::new(0)), reached: Arc::default() }
    }

    /// An open gate.
    pub fn opened() -> Gate {
        let gate = Gate::closed();
        gate.open();
        gate
    }

    /// Lets the client go on, now and from now on.
    pub fn open(&self) {
        self.open.add_permits(1);
    }

    /// Waits until the client reached the gate (received its first data).
    pub async fn reached(&self) {
        tokio::time::timeout(WAIT, self.reached.notified()).await.expect("the client received data");
    }
}

impl client::Handler for GatedClient {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn data(&mut self, _channel: ChannelId, _data: &[u8], _session: &mut client::Session) -> Result<(), Self::Error> {
        self.gate.reached.notify_one();
        // The permit goes back at once: an open gate stays open.
        let _ = self.gate.open.acquire().await;
        Ok(())
    }
}

/// A shell on a pty opened with russh's client: the test writes keys and
/// window changes, a task reads what the server draws.
pub struct RusshTerminal {
    /// The connection.
    pub handle: client::Handle<GatedClient>,
    /// The channel's write half.
    pub input: ChannelWriteHalf<client::Msg>,
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    /// What arrived and has not been matched yet (at most [`TAIL`] bytes are kept).
    pub tail: Vec<u8>,
}

/// How much unmatched output a [`RusshTerminal`] keeps: a flood must not fill the test's memory.
pub const TAIL: usize = 256 * 1024;

impl RusshTerminal {
    /// Logs in with a password and opens a shell on an `xterm` pty of `cols` columns,
    /// with `window` bytes of receive window.
    pub async fn open(addr: SocketAddr, user: &str, password: &str, cols: u32, window: u32, gate: Gate) -> RusshTerminal {
        let config = client::Config { window_size: window, ..Default::default() };
        let mut handle = tokio::time::timeout(WAIT, client::connect(Arc::new(config), addr, GatedClient { gate }))
            .await
            .expect("russh connects in time")
            .expect("russh connects");
        let auth = handle.authenticate_password(user, password).await.expect("auth runs");
        assert!(auth.success(), "{user} logs in");
        let channel = handle.channel_open_session().await.expect("a session");
        channel.request_pty(false, "xterm", cols, 24, 0, 0, &[]).await.expect("pty sent");
        channel.request_shell(false).await.expect("shell sent");
        let (mut read, input) = channel.split();
        let (tx, chunks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(message) = read.wait().await {
                if let ChannelMsg::Data { data } = message
                    && tx.send(data.to_vec()).is_err()
                {
                    break;
                }
            }
        });
        RusshTerminal { handle, input, chunks, tail: Vec::new() }
    }

    /// Types `keys`.
    pub async fn send(&self, keys: &[u8]) {
        self.input.data(keys).await.expect("the channel is open");
    }

    /// The next chunk of output, `None` when the channel is gone.
    pub async fn chunk(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(WAIT, self.chunks.recv()).await.expect("output arrives in time")
    }

    /// Waits until `needle` appears, and drops the output up to its end.
    pub async fn expect(&mut self, needle: &str) {
        self.expect_within(needle, WAIT).await;
    }

    /// As [`expect`](RusshTerminal::expect) with a deadline of its own.
    pub async fn expect_within(&mut self, needle: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        // Each byte is searched once (a flood passes through here).
        let mut from = 0;
        loop {
            if let Some(at) = find(&self.tail[from..], needle.as_bytes()) {
                self.tail.drain(..from + at + needle.len());
                return;
            }
            from = self.tail.len().saturating_sub(needle.len() - 1);
            if self.tail.len() > TAIL {
                self.tail.drain(..from);
                from = 0;
            }
            match tokio::time::timeout_at(deadline, self.chunks.recv()).await {
                Ok(Some(chunk)) => self.tail.extend_from_slice(&chunk),
                Ok(None) => panic!("the channel closed before {needle:?}"),
                Err(_) => panic!(
                    "{needle:?} did not arrive within {wait:?}; last output {:?}",
                    String::from_utf8_lossy(&self.tail[self.tail.len().saturating_sub(2000)..])
                ),
            }
        }
    }

    /// From now on the output is read and thrown away (the test will not look at it again).
    pub fn discard_output(&mut self) {
        let (_, empty) = mpsc::unbounded_channel();
        let mut chunks = std::mem::replace(&mut self.chunks, empty);
        tokio::spawn(async move { while chunks.recv().await.is_some() {} });
    }
}
