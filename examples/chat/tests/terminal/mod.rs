//! What the chat tests share: the chat server on a free port, and an
//! interactive `ssh -tt` whose keystrokes the test types and whose screen
//! output it reads until a marker shows up.

#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

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
