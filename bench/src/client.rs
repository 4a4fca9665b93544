//! The OpenSSH client side: every measurement is one or more `ssh` (or `sftp`)
//! invocations, each with a timeout, killed if it overruns.
//!
//! Transfers are timed by the bench itself, over the data phase: a download
//! from the first byte on ssh's stdout to its EOF; an upload from the moment
//! ssh has read from its stdin (the bench writes through a pipe shrunk to one
//! page, so the second page written can only be accepted once ssh read the
//! first) to ssh's exit. Everything before is setup, reported apart.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinSet;

use crate::cpu;

/// The pipe's capacity until ssh has read from it: one page.
const SMALL_PIPE: usize = 4096;
/// The pipe's capacity for the rest of an upload: Linux's default, what
/// `head -c N /dev/zero | ssh ...` gets.
const PIPE: usize = 64 << 10;
/// What the pty upload's remote command prints once the terminal is raw.
const READY: &[u8] = b"READY";

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
    /// From spawning the client to the start of the data phase.
    pub(crate) setup: Duration,
    /// The data phase.
    pub(crate) data: Duration,
    /// Server CPU seconds over the data phase, its whole process tree.
    pub(crate) server_cpu: Option<f64>,
    /// Client CPU seconds over the data phase (ssh, or sftp and its ssh).
    pub(crate) client_cpu: Option<f64>,
}

impl Transfer {
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.data.as_secs_f64()
    }
    fn gib(&self) -> f64 {
        self.bytes as f64 / (1u64 << 30) as f64
    }
    pub(crate) fn server_cpu_per_gib(&self) -> Option<f64> {
        self.server_cpu.map(|c| c / self.gib())
    }
    pub(crate) fn client_cpu_per_gib(&self) -> Option<f64> {
        self.client_cpu.map(|c| c / self.gib())
    }
}

/// The outcome of a login loop.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Logins {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) elapsed: Duration,
    /// Server CPU milliseconds per successful login (tree-sampled around the loop).
    pub(crate) cpu_ms: Option<f64>,
}

impl Logins {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Up to `count` runs of `login`, one after another, none started after
    /// `budget`; with the server's tree CPU per successful login. `client`
    /// names the client in the first failure's message.
    pub(crate) async fn sequential<F, Fut>(count: usize, budget: Duration, server: Option<u32>, client: &str, mut login: F) -> Logins
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let baseline = server.map(cpu::descendants).unwrap_or(0);
        let before = server.and_then(cpu::tree);
        let start = Instant::now();
        let mut result = Logins::default();
        for _ in 0..count {
            if start.elapsed() > budget {
                break;
            }
            match login().await {
                Ok(()) => result.ok += 1,
                Err(e) => {
                    if result.failed == 0 {
                        eprintln!("    first failure ({client}): {e}");
                    }
                    result.failed += 1;
                }
            }
        }
        result.elapsed = start.elapsed();
        if let Some(pid) = server {
            cpu::settle(pid, baseline).await;
        }
        let used = server.and_then(cpu::tree).zip(before).map(|(a, b)| a - b);
        result.cpu_ms = used.filter(|_| result.ok > 0).map(|c| c * 1e3 / result.ok as f64);
        result
    }
}

/// CPU bookkeeping of one transfer: the server's tree and the client's.
struct Meter {
    server: Option<u32>,
    baseline: usize,
    reaped_before: f64,
}

/// CPU readings at the start of the data phase.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    server: Option<f64>,
    client: Option<f64>,
}

impl Meter {
    fn new(server: Option<u32>) -> Meter {
        Meter { server, baseline: server.map(cpu::descendants).unwrap_or(0), reaped_before: cpu::reaped_children() }
    }

    fn mark(server: Option<u32>, client: Option<u32>) -> Mark {
        Mark { at: Instant::now(), server: server.and_then(cpu::tree), client: client.and_then(cpu::tree) }
    }

    /// After the client exited and was reaped: the server's CPU since `mark`
    /// (once the connection's processes are reaped) and the client's.
    async fn finish(&self, mark: &Mark) -> (Option<f64>, Option<f64>) {
        if let Some(pid) = self.server {
            cpu::settle(pid, self.baseline).await;
        }
        let server = self.server.and_then(cpu::tree).zip(mark.server).map(|(a, b)| a - b);
        let client = mark.client.map(|at_start| cpu::reaped_children() - self.reaped_before - at_start);
        (server, client)
    }
}

impl Client {
    fn command(&self, remote: &str, tty: bool, verbose: bool) -> Command {
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
            "EscapeChar=none",
        ] {
            c.arg("-o").arg(option);
        }
        c.arg("-o").arg(if verbose { "LogLevel=DEBUG1" } else { "LogLevel=ERROR" });
        if tty {
            c.arg("-tt");
        }
        if let Some(cipher) = &self.cipher {
            c.arg("-c").arg(cipher);
        }
        c.arg("-p").arg(self.port.to_string());
        c.arg(format!("{}@127.0.0.1", self.user));
        c.arg(remote);
        c.kill_on_drop(true);
        c
    }

    /// Runs `ssh REMOTE` with stdin and stdout `/dev/null`; Ok if it exits 0.
    async fn run(&self, remote: &str, timeout: Duration) -> Result<(), String> {
        let child = self
            .command(remote, false, false)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning ssh: {e}"))?;
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("ssh {remote:?} timed out after {timeout:?}"))?
            .map_err(|e| format!("waiting for ssh: {e}"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("ssh {remote:?}: {} {}", output.status, stderr.trim()));
        }
        Ok(())
    }

    /// `ssh [-tt] REMOTE`, where REMOTE writes `bytes` bytes: drains ssh's
    /// stdout (a plain pipe, as `ssh ... > file` would write to a file),
    /// checks the count, times first byte to EOF.
    pub(crate) async fn download(
        &self,
        remote: &str,
        bytes: u64,
        tty: bool,
        server: Option<u32>,
        timeout: Duration,
    ) -> Result<Transfer, String> {
        let meter = Meter::new(server);
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let start = Instant::now();
        // On a pty, stdin stays open (and silent) until ssh exits: an EOF
        // would reach the terminal as a character. The command, and with it
        // the parent's copy of the write end, is dropped once spawned.
        let mut child = {
            let mut command = self.command(remote, tty, false);
            command
                .stdin(if tty { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::from(write_end))
                .stderr(Stdio::piped());
            command.spawn().map_err(|e| format!("spawning ssh: {e}"))?
        };
        let ssh = child.id();
        let stdin = child.stdin.take();
        let mut stderr = child.stderr.take().ok_or("ssh has no stderr")?;
        // Ends at EOF: when ssh exits, or is killed on a timeout.
        let reader = tokio::task::spawn_blocking(move || drain(read_end, server, ssh));
        let work = async {
            let mut messages = String::new();
            let (drained, _) = tokio::join!(reader, stderr.read_to_string(&mut messages));
            let status = child.wait().await;
            (drained, status, messages)
        };
        let (drained, status, messages) =
            tokio::time::timeout(timeout, work).await.map_err(|_| format!("ssh {remote:?} timed out after {timeout:?}"))?;
        drop(stdin);
        let (got, mark, eof) = drained.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())).map_err(|e| format!("reading ssh's stdout: {e}"))?;
        let status = status.map_err(|e| format!("waiting for ssh: {e}"))?;
        if !status.success() {
            return Err(format!("ssh {remote:?}: {status} {}", messages.trim()));
        }
        if got != bytes {
            return Err(format!("ssh {remote:?}: received {got} bytes instead of {bytes}"));
        }
        let mark = mark.ok_or_else(|| format!("ssh {remote:?}: no data"))?;
        let (server_cpu, client_cpu) = meter.finish(&mark).await;
        Ok(Transfer { bytes, setup: mark.at - start, data: eof - mark.at, server_cpu, client_cpu })
    }

    /// Writes `bytes` zero bytes to `ssh [-tt] REMOTE`'s stdin and checks its
    /// exit status. REMOTE prints `READY` once it runs (on a pty, once the
    /// terminal is raw) and nothing is written before: the server's session
    /// setup (sshd's fork, login, shell) stays out of the data phase, as it
    /// does for downloads, which start at the first byte.
    pub(crate) async fn upload(
        &self,
        remote: &str,
        bytes: u64,
        tty: bool,
        server: Option<u32>,
        timeout: Duration,
    ) -> Result<Transfer, String> {
        let meter = Meter::new(server);
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        rustix::pipe::fcntl_setpipe_size(&write_end, SMALL_PIPE).map_err(|e| format!("F_SETPIPE_SZ: {e}"))?;
        let start = Instant::now();
        // The command (and with it the parent's copy of the read end) is
        // dropped once spawned, so a dead ssh makes the writer's write fail.
        let mut child = {
            let mut command = self.command(remote, tty, false);
            command.stdin(Stdio::from(read_end)).stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().map_err(|e| format!("spawning ssh: {e}"))?
        };
        let ssh = child.id();
        let (go, ready) = std::sync::mpsc::channel::<()>();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (marked, mark) = tokio::sync::oneshot::channel::<Mark>();
        // The writer starts once the remote command printed READY.
        let writer = std::thread::spawn(move || write_zeros(write_end, bytes, ready, tty, stopped, server, ssh, marked));
        let mut go = Some(go);
        let mut stdout = child.stdout.take().ok_or("ssh has no stdout")?;
        let mut stderr = child.stderr.take().ok_or("ssh has no stderr")?;
        let work = async {
            let read = async {
                let mut buf = vec![0u8; 64 << 10];
                let mut seen = Vec::new();
                loop {
                    match stdout.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if go.is_some() && seen.len() < 4096 {
                                // READY, possibly after a login banner or the shell's noise.
                                seen.extend_from_slice(&buf[..n]);
                                if seen.windows(READY.len()).any(|w| w == READY) {
                                    let _ = go.take().map(|go| go.send(()));
                                }
                            }
                        }
                    }
                }
            };
            let mut messages = String::new();
            let ((), _) = tokio::join!(read, stderr.read_to_string(&mut messages));
            let status = child.wait().await;
            (Instant::now(), status, messages)
        };
        let outcome = tokio::time::timeout(timeout, work).await;
        if outcome.is_err() {
            // A writer blocked on a full pipe fails once ssh is gone.
            let _ = child.start_kill();
        }
        drop(go);
        drop(stop);
        // The writer ends: it never got `go`, ssh is gone (its write fails) or `stop` dropped.
        let written = tokio::task::spawn_blocking(move || writer.join()).await.ok().and_then(|r| r.ok()).unwrap_or(0);
        let (exit, status, messages) = outcome.map_err(|_| format!("ssh {remote:?} timed out after {timeout:?}"))?;
        let status = status.map_err(|e| format!("waiting for ssh: {e}"))?;
        if !status.success() {
            return Err(format!("ssh {remote:?}: {status} {}", messages.trim()));
        }
        if written != bytes {
            return Err(format!("ssh {remote:?}: accepted {written} bytes of {bytes}"));
        }
        let mark = mark.await.map_err(|_| format!("ssh {remote:?}: never read its stdin"))?;
        let (server_cpu, client_cpu) = meter.finish(&mark).await;
        Ok(Transfer { bytes, setup: mark.at - start, data: exit - mark.at, server_cpu, client_cpu })
    }

    /// Runs `ssh -v REMOTE`, counts stdout bytes, and returns them with the
    /// negotiated key exchange, host key and cipher from the client's debug output.
    pub(crate) async fn probe(&self, remote: &str, timeout: Duration) -> Result<(u64, String), String> {
        let child = self
            .command(remote, false, true)
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

    /// Up to `count` logins (`ssh REMOTE`, usually `true`) one after another,
    /// stopping after `budget`; the server's tree CPU per login.
    pub(crate) async fn logins_sequential(
        &self,
        remote: &str,
        count: usize,
        budget: Duration,
        timeout: Duration,
        server: Option<u32>,
    ) -> Logins {
        Logins::sequential(count, budget, server, "ssh", || self.run(remote, timeout)).await
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
        let record = |r: Result<Result<(), String>, tokio::task::JoinError>, result: &mut Logins| match r {
            Ok(Ok(())) => result.ok += 1,
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
            running.spawn(async move { client.run(&remote, timeout).await });
        }
        while let Some(r) = running.join_next().await {
            record(r, &mut result);
        }
        result.elapsed = start.elapsed();
        result
    }

    /// `sftp -b BATCH` with this client's key, cipher and port; the caller
    /// reads its stdout (where it echoes each command as it starts it).
    pub(crate) fn sftp(&self, batch: &std::path::Path) -> Command {
        let mut c = Command::new("sftp");
        c.arg("-b").arg(batch);
        c.arg("-F").arg("/dev/null");
        c.arg("-i").arg(&self.key);
        for option in [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "ConnectTimeout=10",
            "LogLevel=ERROR",
        ] {
            c.arg("-o").arg(option);
        }
        if let Some(cipher) = &self.cipher {
            c.arg("-c").arg(cipher);
        }
        c.arg("-P").arg(self.port.to_string());
        c.arg(format!("{}@127.0.0.1", self.user));
        c.kill_on_drop(true);
        c
    }

    /// Runs the sftp batch `COMMAND` then `pwd`, timing from sftp's echo of
    /// `COMMAND` (printed, line-buffered, as it starts it) to its echo of
    /// `pwd` (printed once COMMAND is done): the data phase, without login
    /// and subsystem start. Server CPU is sampled at the same two moments
    /// (the server's processes are still alive then).
    pub(crate) async fn sftp_transfer(
        &self,
        batch: &std::path::Path,
        command: &str,
        bytes: u64,
        server: Option<u32>,
        timeout: Duration,
    ) -> Result<Transfer, String> {
        let mut file = std::fs::File::create(batch).map_err(|e| e.to_string())?;
        writeln!(file, "{command}\npwd").map_err(|e| e.to_string())?;
        drop(file);
        let reaped_before = cpu::reaped_children();
        let start = Instant::now();
        let mut child = self
            .sftp(batch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning sftp: {e}"))?;
        let sftp = child.id();
        let stdout = child.stdout.take().ok_or("sftp has no stdout")?;
        let mut stderr = child.stderr.take().ok_or("sftp has no stderr")?;
        let first_word = command.split_whitespace().next().unwrap_or("").to_owned();
        let work = async {
            let read = async {
                let mut lines = BufReader::new(stdout).lines();
                let (mut begin, mut end) = (None, None);
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with(&format!("sftp> {first_word}")) && begin.is_none() {
                        begin = Some(Meter::mark(server, sftp));
                    } else if line == "sftp> pwd" && end.is_none() {
                        end = Some(Meter::mark(server, sftp));
                    }
                }
                (begin, end)
            };
            let mut messages = String::new();
            let ((begin, end), _) = tokio::join!(read, stderr.read_to_string(&mut messages));
            let status = child.wait().await;
            (begin, end, status, messages)
        };
        let (begin, end, status, messages) =
            tokio::time::timeout(timeout, work).await.map_err(|_| format!("sftp {command:?} timed out after {timeout:?}"))?;
        let status = status.map_err(|e| format!("waiting for sftp: {e}"))?;
        if !status.success() {
            return Err(format!("sftp {command:?}: {status} {}", messages.trim()));
        }
        let (Some(begin), Some(end)) = (begin, end) else {
            return Err(format!("sftp {command:?}: no command echo on its stdout"));
        };
        let server_cpu = end.server.zip(begin.server).map(|(a, b)| a - b);
        // The client's whole run minus what it had used before the transfer
        // began; the little it used after `pwd` is in, too.
        let client_cpu = begin.client.map(|at_begin| cpu::reaped_children() - reaped_before - at_begin);
        Ok(Transfer { bytes, setup: begin.at - start, data: end.at - begin.at, server_cpu, client_cpu })
    }
}

/// The upload writer, on a thread of its own with blocking writes: one page
/// (fills the one-page pipe), a second page (accepted only once ssh has read
/// the first: the data phase starts, `marked` gets the CPU readings), then
/// the pipe grows to 64 KiB and the rest goes in 64 KiB writes. Returns the
/// bytes accepted. Waits for `ready` first; on a pty, keeps the pipe open
/// until `stop` is dropped (an EOF would reach the terminal as a character).
#[allow(clippy::too_many_arguments)]
fn write_zeros(
    fd: OwnedFd,
    bytes: u64,
    ready: std::sync::mpsc::Receiver<()>,
    tty: bool,
    stop: std::sync::mpsc::Receiver<()>,
    server: Option<u32>,
    ssh: Option<u32>,
    marked: tokio::sync::oneshot::Sender<Mark>,
) -> u64 {
    if ready.recv().is_err() {
        return 0;
    }
    let buf = vec![0u8; PIPE];
    let mut sent = 0u64;
    let mut marked = Some(marked);
    while sent < bytes {
        let chunk = if marked.is_some() { SMALL_PIPE } else { PIPE };
        let n = (bytes - sent).min(chunk as u64) as usize;
        match rustix::io::write(&fd, &buf[..n]) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n as u64,
        }
        if sent > SMALL_PIPE as u64
            && let Some(marked) = marked.take()
        {
            let _ = marked.send(Meter::mark(server, ssh));
            let _ = rustix::pipe::fcntl_setpipe_size(&fd, PIPE);
        }
    }
    if let Some(marked) = marked.take() {
        // A transfer of one page or less: it started when it was accepted.
        let _ = marked.send(Meter::mark(server, ssh));
    }
    if tty {
        // Until the caller drops `stop`, which it does once ssh has exited.
        let _ = stop.recv();
    }
    drop(fd);
    sent
}

/// Moves everything from `fd` (ssh's stdout) to /dev/null with splice(2):
/// the bench costs the transfer no copy of its own. Returns the byte count,
/// the readings at the first byte and the time of EOF.
fn drain(fd: OwnedFd, server: Option<u32>, ssh: Option<u32>) -> std::io::Result<(u64, Option<Mark>, Instant)> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let (mut got, mut mark) = (0u64, None);
    let mut buf = Vec::new();
    loop {
        let moved = match rustix::pipe::splice(&fd, None, &null, None, 1 << 20, rustix::pipe::SpliceFlags::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            // No splice to /dev/null here: read instead.
            Err(rustix::io::Errno::INVAL) => {
                buf.resize(256 << 10, 0);
                match rustix::io::read(&fd, &mut buf) {
                    Err(rustix::io::Errno::INTR) => continue,
                    other => other?,
                }
            }
            other => other?,
        };
        if moved == 0 {
            break;
        }
        if mark.is_none() {
            mark = Some(Meter::mark(server, ssh));
        }
        got += moved as u64;
    }
    Ok((got, mark, Instant::now()))
}
