//! The OpenSSH client side: every measurement is one or more `ssh`
//! invocations, each with a timeout, killed if it overruns.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinSet;

/// How to run `ssh` against one server.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) key: PathBuf,
    pub(crate) user: String,
    pub(crate) port: u16,
    /// `-c CIPHER`; `None` leaves the client's default order (chacha20-poly1305 first).
    pub(crate) cipher: Option<String>,
}

/// One timed transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    /// Bytes moved.
    pub(crate) bytes: u64,
    /// The data phase: exec request sent to exit-status received.
    pub(crate) data: Duration,
    /// From spawning ssh to its exit.
    pub(crate) wall: Duration,
}

impl Transfer {
    pub(crate) fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / 1048576.0 / self.data.as_secs_f64()
    }
}

/// The outcome of a login loop.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Logins {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) elapsed: Duration,
}

impl Logins {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

impl Client {
    fn command(&self, remote: &str, verbose: bool) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg("/dev/null");
        c.arg("-i").arg(&self.key);
        for option in [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "ConnectTimeout=10",
        ] {
            c.arg("-o").arg(option);
        }
        c.arg("-o").arg(if verbose { "LogLevel=DEBUG1" } else { "LogLevel=ERROR" });
        if let Some(cipher) = &self.cipher {
            c.arg("-c").arg(cipher);
        }
        c.arg("-p").arg(self.port.to_string());
        c.arg(format!("{}@127.0.0.1", self.user));
        c.arg(remote);
        c.kill_on_drop(true);
        c
    }

    /// Runs `ssh REMOTE` with stdin from `stdin`, stdout discarded; returns the wall time.
    async fn run(&self, remote: &str, stdin: Stdio, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let child = self
            .command(remote, false)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning ssh: {e}"))?;
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("ssh {remote:?} timed out after {timeout:?}"))?
            .map_err(|e| format!("waiting for ssh: {e}"))?;
        let elapsed = start.elapsed();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("ssh {remote:?}: {} {}", output.status, stderr.trim()));
        }
        Ok(elapsed)
    }

    /// Runs `ssh -o LogLevel=DEBUG1 REMOTE` with stdout discarded and times the
    /// data phase from the client's own log: from "Sending command" (the exec
    /// request leaves) to the arrival of the exit-status, which the server sends
    /// after the last byte. Login time, which varies by tens of milliseconds
    /// from one connection to the next, stays out.
    async fn transfer(&self, remote: &str, bytes: u64, stdin: Stdio, timeout: Duration) -> Result<Transfer, String> {
        let start = Instant::now();
        let mut child = self
            .command(remote, true)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning ssh: {e}"))?;
        let stderr = child.stderr.take().ok_or("ssh has no stderr")?;
        let log = async move {
            let mut lines = BufReader::new(stderr).lines();
            let (mut command, mut exit, mut messages) = (None, None, Vec::new());
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("debug1: Sending command:") {
                    command = Some(Instant::now());
                } else if line.contains("rtype exit-status") {
                    exit = Some(Instant::now());
                } else if !line.starts_with("debug") {
                    messages.push(line);
                }
            }
            (command, exit, messages)
        };
        let ((command, exit, messages), status) = tokio::time::timeout(timeout, async { tokio::join!(log, child.wait()) })
            .await
            .map_err(|_| format!("ssh {remote:?} timed out after {timeout:?}"))?;
        let status = status.map_err(|e| format!("waiting for ssh: {e}"))?;
        if !status.success() {
            return Err(format!("ssh {remote:?}: {status} {}", messages.join(" ")));
        }
        let (Some(command), Some(exit)) = (command, exit) else {
            return Err(format!("ssh {remote:?}: no command or exit-status in the client's log"));
        };
        Ok(Transfer { bytes, data: exit - command, wall: start.elapsed() })
    }

    /// `head -c BYTES /dev/zero | ssh REMOTE`.
    pub(crate) async fn upload(&self, remote: &str, bytes: u64, timeout: Duration) -> Result<Transfer, String> {
        let mut head = Command::new("head")
            .arg("-c")
            .arg(bytes.to_string())
            .arg("/dev/zero")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawning head: {e}"))?;
        let pipe: Stdio = head.stdout.take().ok_or("head has no stdout")?.try_into().map_err(|e: std::io::Error| e.to_string())?;
        let result = self.transfer(remote, bytes, pipe, timeout).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), head.wait()).await;
        result
    }

    /// `ssh REMOTE > /dev/null` with stdin `/dev/null`; REMOTE writes `bytes` bytes.
    pub(crate) async fn download(&self, remote: &str, bytes: u64, timeout: Duration) -> Result<Transfer, String> {
        self.transfer(remote, bytes, Stdio::null(), timeout).await
    }

    /// Runs `ssh -v REMOTE`, counts stdout bytes, and returns them with the
    /// negotiated key exchange, host key and cipher from the client's debug output.
    pub(crate) async fn probe(&self, remote: &str, timeout: Duration) -> Result<(u64, String), String> {
        let child = self
            .command(remote, true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning ssh: {e}"))?;
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("ssh {remote:?} timed out"))?
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let last: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("debug")).collect();
            return Err(format!("ssh {remote:?}: {} {}", output.status, last.join(" ")));
        }
        let mut kex = String::new();
        let mut host_key = String::new();
        let mut cipher = String::new();
        for line in stderr.lines() {
            if let Some(v) = line.strip_prefix("debug1: kex: algorithm: ") {
                kex = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("debug1: kex: host key algorithm: ") {
                host_key = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("debug1: kex: server->client cipher: ") {
                cipher = v.split_whitespace().next().unwrap_or("").to_owned();
            }
        }
        Ok((output.stdout.len() as u64, format!("{kex}, {host_key}, {cipher}")))
    }

    /// Up to `count` logins (`ssh REMOTE`, usually `true`) one after another, stopping after `budget`.
    pub(crate) async fn logins_sequential(&self, remote: &str, count: usize, budget: Duration, timeout: Duration) -> Logins {
        let start = Instant::now();
        let mut result = Logins::default();
        for _ in 0..count {
            if start.elapsed() > budget {
                break;
            }
            match self.run(remote, Stdio::null(), timeout).await {
                Ok(_) => result.ok += 1,
                Err(e) => {
                    if result.failed == 0 {
                        eprintln!("    first failure: {e}");
                    }
                    result.failed += 1;
                }
            }
        }
        result.elapsed = start.elapsed();
        result
    }

    /// `total` logins with at most `parallel` in flight; no new one starts after `budget`.
    pub(crate) async fn logins_parallel(
        self: &Arc<Self>,
        remote: &str,
        total: usize,
        parallel: usize,
        budget: Duration,
        timeout: Duration,
    ) -> Logins {
        let start = Instant::now();
        let mut result = Logins::default();
        let mut running = JoinSet::new();
        let record = |r: Result<Result<Duration, String>, tokio::task::JoinError>, result: &mut Logins| match r {
            Ok(Ok(_)) => result.ok += 1,
            Ok(Err(e)) => {
                if result.failed == 0 {
                    eprintln!("    first failure: {e}");
                }
                result.failed += 1;
            }
            Err(_) => result.failed += 1,
        };
        for _ in 0..total {
            if start.elapsed() > budget {
                break;
            }
            while running.len() >= parallel.max(1) {
                if let Some(r) = running.join_next().await {
                    record(r, &mut result);
                }
            }
            let client = self.clone();
            let remote = remote.to_owned();
            running.spawn(async move { client.run(&remote, Stdio::null(), timeout).await });
        }
        while let Some(r) = running.join_next().await {
            record(r, &mut result);
        }
        result.elapsed = start.elapsed();
        result
    }
}
