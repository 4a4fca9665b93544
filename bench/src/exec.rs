//! What an exec request runs, shared by the framework server and the raw russh
//! server so that both do exactly the same work per byte.
//!
//! In-process commands: `sink` prints READY, then reads stdin to EOF and discards it, `source N`
//! writes N bytes from a pre-filled 256 KiB buffer, `true` returns 0.
//! The spawning variant runs `sh -c COMMAND` with pipes, or on a pty when the
//! client asked for one, as mini-sshd does.

use std::process::Stdio;
use std::sync::OnceLock;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// How a server runs exec requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecMode {
    /// `sink`, `source N` and `true` handled inside the server.
    InProcess,
    /// `sh -c COMMAND` with stdin, stdout and stderr piped.
    Spawn,
}

/// The buffer `source` sends from.
const SOURCE_BUFFER: usize = 256 << 10;
/// Read size for `sink` and for the pipes of spawned processes.
const COPY_BUFFER: usize = 64 << 10;

fn source_buffer() -> &'static [u8] {
    static BUFFER: OnceLock<Vec<u8>> = OnceLock::new();
    BUFFER.get_or_init(|| vec![0u8; SOURCE_BUFFER])
}

/// Runs `sink`, `source N` or `true`; returns the exit code (127 for anything else).
pub(crate) async fn in_process<R, W>(command: &str, mut stdin: R, mut stdout: W) -> u32
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut words = command.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("true"), None, None) => 0,
        (Some("sink"), None, None) => {
            // As `echo READY; cat > /dev/null`: the bench starts writing when it sees this.
            if stdout.write_all(b"READY\n").await.is_err() || stdout.flush().await.is_err() {
                return 1;
            }
            let mut buf = vec![0u8; COPY_BUFFER];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) => return 0,
                    Ok(_) => {}
                    Err(_) => return 1,
                }
            }
        }
        (Some("source"), Some(n), None) => {
            let Ok(mut left) = n.parse::<u64>() else { return 2 };
            let buf = source_buffer();
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                if stdout.write_all(&buf[..n]).await.is_err() {
                    return 1;
                }
                left -= n as u64;
            }
            if stdout.flush().await.is_err() {
                return 1;
            }
            0
        }
        _ => 127,
    }
}

/// Runs `sh -c COMMAND` with its stdin fed from `stdin` and its stdout and
/// stderr copied to `stdout` and `stderr`; returns its exit code.
pub(crate) async fn spawn<R, W, E>(command: &str, stdin: R, mut stdout: W, mut stderr: E) -> u32
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(_) => return 127,
    };
    let (Some(child_in), Some(child_out), Some(child_err)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
        return 127;
    };
    let to_child = async move {
        let mut child_in = child_in;
        let mut stdin = BufReader::with_capacity(COPY_BUFFER, stdin);
        let _ = tokio::io::copy_buf(&mut stdin, &mut child_in).await;
        // Closing the pipe is the child's EOF; then wait for the outputs to end.
        drop(child_in);
        std::future::pending::<()>().await
    };
    let from_child = async {
        let mut out = BufReader::with_capacity(COPY_BUFFER, child_out);
        let mut err = BufReader::with_capacity(COPY_BUFFER, child_err);
        let _ = tokio::join!(tokio::io::copy_buf(&mut out, &mut stdout), tokio::io::copy_buf(&mut err, &mut stderr));
        let _ = stdout.flush().await;
        let _ = stderr.flush().await;
    };
    tokio::select! {
        () = from_child => {}
        () = to_child => {}
    }
    exit_code(child.wait().await)
}

/// How long pty output is still read after the child exited, once none comes:
/// a background process may hold the terminal open forever.
const PTY_DRAIN_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `sh -c COMMAND` on a new pseudo-terminal of `rows` x `cols`, the
/// channel's data written to the terminal and the terminal's output copied to
/// `stdout`; returns the exit code.
pub(crate) async fn spawn_pty<R, W>(command: &str, rows: u16, cols: u16, stdin: R, mut stdout: W) -> u32
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Ok((pty, pts)) = pty_process::open() else { return 127 };
    let _ = pty.resize(pty_process::Size::new(rows.max(1), cols.max(1)));
    let Ok(mut child) = pty_process::Command::new("sh").arg("-c").arg(command).kill_on_drop(true).spawn(pts) else {
        return 127;
    };
    let (mut reader, mut writer) = pty.into_split();
    // A terminal has no half-close: at the client's EOF input just stops.
    let input = async {
        let mut stdin = BufReader::with_capacity(COPY_BUFFER, stdin);
        let _ = tokio::io::copy_buf(&mut stdin, &mut writer).await;
        std::future::pending::<()>().await
    };
    let output = async {
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut status = None;
        loop {
            tokio::select! {
                biased;
                read = reader.read(&mut buf) => match read {
                    // Linux answers EIO once the last process holding the terminal closed it.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stdout.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                },
                exited = child.wait(), if status.is_none() => status = Some(exited),
                () = tokio::time::sleep(PTY_DRAIN_IDLE), if status.is_some() => break,
            }
        }
        let _ = stdout.flush().await;
        match status {
            Some(status) => status,
            None => child.wait().await,
        }
    };
    let status = tokio::select! {
        status = output => status,
        () = input => unreachable!("input never ends"),
    };
    exit_code(status)
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> u32 {
    match status {
        Ok(status) => match status.code() {
            Some(code) => code as u32,
            None => {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0) as u32
            }
        },
        Err(_) => 1,
    }
}
