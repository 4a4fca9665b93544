//! OpenSSH forwarding sessions and echo servers shared by the forwarding tests.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::{ClientKey, within};

/// What a finished `ssh` did, as text.
#[derive(Debug)]
pub struct TextOutput {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Stdout, lossily decoded.
    pub stdout: String,
    /// Stderr, lossily decoded.
    pub stderr: String,
}

/// An `ssh` command line against a test server, isolated from the user's
/// config, agent and known hosts, authenticating with one key.
#[derive(Debug)]
pub struct OpenSsh {
    cmd: tokio::process::Command,
}

impl OpenSsh {
    /// `ssh -p PORT -l alice -i KEY` with batch mode, no host key checks and `ExitOnForwardFailure`.
    pub fn new(port: u16, key: &ClientKey) -> Self {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &port.to_string(), "-l", "alice", "-i"]).arg(&key.path);
        for option in [
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "ExitOnForwardFailure=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=20",
        ] {
            cmd.arg("-o").arg(option);
        }
        cmd.env_remove("SSH_AUTH_SOCK").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        OpenSsh { cmd }
    }

    /// Adds arguments before the host.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for ssh.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(name, value);
        self
    }

    /// Runs `ssh ARGS 127.0.0.1 COMMAND...` to completion under [`within`]'s timeout.
    pub async fn run(mut self, command: &[&str]) -> std::process::Output {
        self.cmd.arg("127.0.0.1").args(command);
        let child = self.cmd.spawn().expect("ssh is installed");
        within("ssh to finish", child.wait_with_output()).await.expect("waiting for ssh")
    }

    /// Runs `ssh ARGS 127.0.0.1 COMMAND` to completion and returns its output as text.
    pub async fn run_text(self, command: &str) -> TextOutput {
        let output = self.run(&[command]).await;
        TextOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `ssh -v ARGS -N 127.0.0.1` and keeps it running (killed on drop).
    pub fn spawn_forwarding(mut self) -> Running {
        self.cmd.args(["-v", "-N", "127.0.0.1"]);
        let mut child = self.cmd.spawn().expect("ssh is installed");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(String::new()));
        let log_writer = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                log_writer.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Running { child, lines, log }
    }
}

/// A running `ssh -v -N`, with its stderr as lines.
#[derive(Debug)]
pub struct Running {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<String>>,
}

impl Running {
    /// Waits for a stderr line containing `needle` and returns it.
    pub async fn line(&mut self, needle: &str) -> String {
        let found = within(&format!("ssh to print {needle:?}"), async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        found.unwrap_or_else(|| panic!("ssh exited before printing {needle:?}; stderr:\n{}", self.stderr()))
    }

    /// The port of ssh's "Allocated port N for remote forward to ..." message.
    pub async fn allocated_port(&mut self) -> u16 {
        let line = self.line("Allocated port ").await;
        line.split("Allocated port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"))
    }

    /// Everything ssh printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether ssh is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("polling ssh").is_none()
    }

    /// Stops ssh.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A TCP echo server on 127.0.0.1; each connection echoes until EOF, then closes.
pub async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A port of 127.0.0.1 that was free a moment ago (for `-L` and fixed `-R` ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The SHA-256 of `data` in hex.
pub fn sha256(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// `len` bytes of a fixed pseudo-random sequence (xorshift), so a shifted or
/// repeated block cannot hash equal.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
