//! Running a shell or command for a session channel: on pipes (stdout and
//! stderr apart) or on a pseudo-terminal, with the channel's stdin, signals
//! and window changes delivered while it runs, and its exit reported as
//! `exit-status` or `exit-signal`.
//!
//! Every child leads a session and process group of its own, as under sshd
//! (which calls `setsid()` for each): `kill 0` in a command reaches only what
//! the command started, never the server. Signal requests go to the whole
//! group, and a child still running when its channel goes away (client gone,
//! channel closed, server stopping) is killed with its whole group.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal as nix_signal;
use nix::unistd::Pid;
use process_wrap::tokio::{CommandWrapper, ProcessSession};
use rustix::termios::{self, ControlModes, InputModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex};
use ssh_framework::channel::{Events, Output, Stdin};
use ssh_framework::{ChannelEvent, ChannelIo, ExitStatus, PtyRequest, Signal, WindowSize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

/// Read buffer for child output: large, so bulk transfers take few system calls and packets.
const BUFFER: usize = 256 << 10;
/// Pipe capacity asked of the kernel (Linux allows up to 1 MiB unprivileged); 64 KiB otherwise.
const PIPE_SIZE: usize = 1 << 20;
/// After the child exits, its pty output is read until this long passes without any:
/// a background process may keep the terminal open forever.
const PTY_DRAIN_IDLE: Duration = Duration::from_millis(100);

/// What to run: a program with its `argv[0]`, arguments, environment and directory.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The executable.
    pub(crate) program: PathBuf,
    /// `argv[0]`: `-sh` makes a login shell, as sshd does for `shell` requests.
    pub(crate) argv0: String,
    /// The arguments after `argv[0]`.
    pub(crate) args: Vec<String>,
    /// The whole environment (nothing is inherited from the server).
    pub(crate) env: Vec<(String, String)>,
    /// The working directory.
    pub(crate) dir: PathBuf,
}

impl Launch {
    /// The command, without a new session yet: the pty path gets one (with the
    /// terminal as its controlling terminal) from pty-process, the pipe path
    /// from [`Launch::piped_command`].
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg0(&self.argv0)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            // The channel may go away at any time (client gone, body aborted): never leave the child behind.
            .kill_on_drop(true);
        command
    }

    /// The command in a session and process group of its own, without a controlling terminal.
    fn piped_command(&self) -> io::Result<tokio::process::Command> {
        let mut command = self.command();
        // process-wrap's `ProcessSession` is used for its pre-spawn hook alone:
        // `setsid()` in the child between fork and exec, a step that needs
        // `unsafe` (`pre_exec`), which this workspace forbids, while std's
        // `CommandExt::setsid` is unstable. Its child wrapper is not used: it
        // would wait for the whole group, where sshd waits for the child only.
        let unused = process_wrap::tokio::CommandWrap::from(tokio::process::Command::new(&self.program));
        ProcessSession.pre_spawn(&mut command, &unused)?;
        Ok(command)
    }
}

/// The process group a child leads (its id is the child's pid).
///
/// The group is signalled only while the child is not reaped: until then its
/// pid, and so the group id, cannot name another process or group. Dropped
/// before that (the channel went away), it kills the whole group, which the
/// child's own kill-on-drop would not reach.
#[derive(Debug)]
struct ProcessGroup {
    id: Option<Pid>,
    reaped: AtomicBool,
}

impl ProcessGroup {
    fn new(pid: Option<u32>) -> Self {
        ProcessGroup { id: pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw), reaped: AtomicBool::new(false) }
    }

    /// The child was reaped: from now on the group is never signalled.
    fn reaped(&self) {
        self.reaped.store(true, Ordering::Relaxed);
    }

    /// Sends `signal` to every process of the group, unless the child was reaped.
    fn signal(&self, signal: nix_signal::Signal) -> nix::Result<()> {
        match self.id {
            Some(id) if !self.reaped.load(Ordering::Relaxed) => nix_signal::killpg(id, signal),
            _ => Ok(()),
        }
    }

    /// Delivers a client's `signal` request to the group.
    fn deliver(&self, signal: &Signal) {
        match format!("SIG{}", signal.name()).parse::<nix_signal::Signal>() {
            Ok(sig) => {
                tracing::debug!(pgid = ?self.id, %signal, "delivering signal to the process group");
                if let Err(error) = self.signal(sig) {
                    tracing::debug!(pgid = ?self.id, %signal, %error, "signal not delivered");
                }
            }
            Err(_) => tracing::debug!(%signal, "unknown signal; ignored"),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // ESRCH (the group is already gone) is the usual answer once the child exited.
        if !self.reaped.load(Ordering::Relaxed) && self.signal(nix_signal::Signal::SIGKILL).is_ok() {
            tracing::debug!(pgid = ?self.id, "session gone; process group killed");
        }
    }
}

/// Runs `launch` on the channel, on a pty when one was allowed, and returns how it ended.
pub(crate) async fn run(launch: &Launch, pty: Option<&PtyRequest>, io: ChannelIo) -> ExitStatus {
    let result = match pty {
        None => run_piped(launch, io).await,
        Some(pty) => run_on_pty(launch, pty, io).await,
    };
    result.unwrap_or_else(|error| {
        tracing::warn!(%error, "session I/O failed");
        ExitStatus::FAILURE
    })
}

/// Tells the client why nothing runs, the way a shell does for a missing command.
async fn report_spawn_failure(output: &mut Output, launch: &Launch, error: &io::Error) -> io::Result<ExitStatus> {
    tracing::warn!(program = %launch.program.display(), %error, "cannot start the session's program");
    let message = format!("mini-sshd: {}: {error}\r\n", launch.program.display());
    let _ = output.write_all(message.as_bytes()).await;
    let _ = output.flush().await;
    Ok(ExitStatus::Code(127))
}

/// Pipes: stdin, stdout and stderr kept apart; the child's stdin closes at the client's EOF.
async fn run_piped(launch: &Launch, io: ChannelIo) -> io::Result<ExitStatus> {
    let (stdin, mut stdout, mut stderr, mut events) = io.split();
    let spawned = launch.piped_command().and_then(|mut command| {
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return report_spawn_failure(&mut stderr, launch, &error).await,
    };
    let pid = child.id();
    // Declared after `child`, so dropped before it: the group is killed while the child's pid still holds its id.
    let group = ProcessGroup::new(pid);
    tracing::debug!(pid, "started on pipes");
    let (Some(child_stdin), Some(child_stdout), Some(child_stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("the child's pipes are missing"));
    };
    for pipe in [child_stdin.as_fd(), child_stdout.as_fd(), child_stderr.as_fd()] {
        // Larger pipes mean fewer wake-ups per megabyte; the default still works.
        let _ = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_SIZE);
    }

    // Dropping the pipe at the end closes it: the child reads EOF, as the client sent.
    let input = feed(stdin, child_stdin);
    let output = async {
        let (out, err) =
            tokio::join!(pump(child_stdout, &mut stdout), pump(child_stderr, &mut stderr));
        // A failed write means the client is gone; the child is killed when dropped.
        out?;
        err?;
        let status = child.wait().await;
        group.reaped();
        status
    };
    // Without a pty there is no terminal to resize: only signals matter.
    supervise(output, input, &mut events, |event| {
        if let ChannelEvent::Signal(signal) = event {
            group.deliver(&signal);
        }
    })
    .await
}

/// Copies the client's stdin to the child until EOF, without copying the
/// data again. A child that reads slowly holds the client back through the
/// framework's channel buffer. Once the child takes no more input (it closed
/// stdin or exited) the rest is read and dropped, so the client is never left
/// waiting on a reader that is gone.
async fn feed(mut stdin: Stdin, mut sink: impl AsyncWrite + Unpin) -> io::Result<u64> {
    let mut written = 0u64;
    let result = loop {
        let chunk = stdin.fill_buf().await?;
        if chunk.is_empty() {
            break sink.flush().await.map(|()| written);
        }
        let n = chunk.len();
        if let Err(error) = sink.write_all(chunk).await {
            break Err(error);
        }
        stdin.consume(n);
        written += n as u64;
    };
    if result.is_err() {
        let _ = tokio::io::copy(&mut stdin, &mut tokio::io::sink()).await;
    }
    tracing::debug!(written, "stdin done");
    result
}

/// Copies one of the child's outputs to the channel until the child closes it.
async fn pump(reader: impl AsyncRead + Unpin, writer: &mut Output) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(BUFFER, reader);
    let mut copied = 0u64;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        writer.write_all(chunk).await?;
        reader.consume(n);
        copied += n as u64;
    }
    writer.flush().await?;
    Ok(copied)
}

/// A pseudo-terminal: TERM, size and modes from the request; output and errors share the terminal.
async fn run_on_pty(launch: &Launch, request: &PtyRequest, io: ChannelIo) -> io::Result<ExitStatus> {
    let (stdin, mut stdout, mut stderr, mut events) = io.split();
    let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
    let _ = pty.resize(pty_size(request.size));
    if let Err(error) = apply_modes(&pts, &request.modes) {
        tracing::debug!(%error, "terminal modes not applied");
    }
    let mut launch = launch.clone();
    if let Ok(name) = rustix::pty::ptsname(&pty, Vec::new()) {
        launch.env.push(("SSH_TTY".into(), name.to_string_lossy().into_owned()));
    }
    let command = pty_process::Command::from(launch.command());
    let mut child = match command.spawn(pts) {
        Ok(child) => child,
        Err(error) => return report_spawn_failure(&mut stderr, &launch, &io::Error::other(error)).await,
    };
    let pid = child.id();
    // pty-process made the child a session leader; see `run_piped` for the drop order.
    let group = ProcessGroup::new(pid);
    tracing::debug!(pid, term = %request.term, "started on a pty");
    let master = OwnedFd::from(pty);
    // A descriptor of the terminal's master side for resizing, one for reading and one for writing.
    let resizer = master.try_clone()?;
    let (mut reader, writer) = terminal_halves(master)?;

    // A terminal has no half-close: at the client's EOF input just stops, as with OpenSSH.
    let input = feed(stdin, writer);
    // Output goes on draining after the child is reaped; its pid may be reused by then.
    let output = async {
        let mut buffer = vec![0u8; BUFFER];
        let mut status = None;
        loop {
            let n = tokio::select! {
                biased;
                read = reader.read(&mut buffer) => match read {
                    Ok(n) => n,
                    // Linux answers EIO once the last process holding the terminal closed it.
                    Err(error) if error.raw_os_error() == Some(nix::errno::Errno::EIO as i32) => 0,
                    Err(error) => return Err(error),
                },
                exited = child.wait(), if status.is_none() => {
                    group.reaped();
                    status = Some(exited?);
                    continue;
                }
                () = tokio::time::sleep(PTY_DRAIN_IDLE), if status.is_some() => 0,
            };
            if n == 0 {
                break;
            }
            stdout.write_all(&buffer[..n]).await?;
        }
        stdout.flush().await?;
        match status {
            Some(status) => Ok(status),
            None => {
                let status = child.wait().await;
                group.reaped();
                status
            }
        }
    };
    supervise(output, input, &mut events, |event| match event {
        ChannelEvent::Signal(signal) => group.deliver(&signal),
        ChannelEvent::WindowChange(size) => {
            if let Err(error) = termios::tcsetwinsize(&resizer, pty_winsize(size)) {
                tracing::debug!(%error, "resize failed");
            }
        }
        _ => {}
    })
    .await
}

/// The reading and the writing half of a terminal's master side.
///
/// A terminal hands its output over 4 KiB at a time: the kernel's flush
/// worker moves what the child wrote into the line discipline's 4 KiB
/// buffer, and a read of the master that finds that buffer empty waits for
/// the worker, even on a non-blocking descriptor. So the master is read only
/// after the kernel said there is something to read, once per wake-up, and
/// what was read goes out while the worker refills the buffer. tokio's pipe
/// ends read that way (a read shorter than the buffer clears the readiness,
/// as does a short write); pty-process's own halves read again at once and
/// so wait for the worker, holding up the connection's thread. In the
/// benchmark this took `ssh -tt` downloads from 0.68x sshd's throughput to
/// 1.00x, at the same CPU per GiB.
///
/// The halves are two descriptors of the same terminal, non-blocking as
/// pty-process opened it; tokio's pipe ends take any such descriptor and do
/// no more than `read` and `write` on it.
fn terminal_halves(master: OwnedFd) -> io::Result<(pipe::Receiver, pipe::Sender)> {
    let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
    let writer = pipe::Sender::from_owned_fd_unchecked(master)?;
    Ok((reader, writer))
}

/// Drives a running child: `output` (drain, then wait) decides when it is over;
/// `input` and channel events are served meanwhile and never hold it up.
async fn supervise(
    output: impl Future<Output = io::Result<std::process::ExitStatus>>,
    input: impl Future<Output = io::Result<u64>>,
    events: &mut Events,
    mut on_event: impl FnMut(ChannelEvent),
) -> io::Result<ExitStatus> {
    tokio::pin!(output, input);
    let mut input_done = false;
    let mut events_open = true;
    loop {
        tokio::select! {
            // Output first: once it has reaped the child no signal may follow (the pid may be reused).
            biased;
            status = &mut output => {
                let status = exit_status(status?);
                tracing::debug!(?status, "exited");
                return Ok(status);
            }
            event = events.recv(), if events_open => match event {
                Some(event) => on_event(event),
                None => events_open = false,
            },
            copied = &mut input, if !input_done => {
                input_done = true;
                if let Err(error) = copied {
                    // Usually EPIPE: the child exited or closed its stdin; what it wrote still drains.
                    tracing::debug!(%error, "stdin not delivered in full");
                }
            }
        }
    }
}

/// Maps a child's end to SSH: `exit-status` with the code, or `exit-signal`
/// with the signal's name (without `SIG`) when a signal killed it.
pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    if let Some(code) = status.code() {
        return ExitStatus::Code(code as u32);
    }
    match status.signal() {
        Some(number) => match nix_signal::Signal::try_from(number) {
            Ok(signal) => ExitStatus::Signal {
                signal: Signal::new(signal.as_str()),
                core_dumped: status.core_dumped(),
                message: String::new(),
            },
            // A signal with no portable name (a real-time one): report it the way shells do.
            Err(_) => ExitStatus::Code(128 + number as u32),
        },
        None => ExitStatus::FAILURE,
    }
}

fn clamp(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn pty_size(size: WindowSize) -> pty_process::Size {
    pty_process::Size::new_with_pixel(clamp(size.rows), clamp(size.cols), clamp(size.pix_width), clamp(size.pix_height))
}

fn pty_winsize(size: WindowSize) -> termios::Winsize {
    termios::Winsize {
        ws_row: clamp(size.rows),
        ws_col: clamp(size.cols),
        ws_xpixel: clamp(size.pix_width),
        ws_ypixel: clamp(size.pix_height),
    }
}

/// Applies the encoded terminal modes of a `pty-req` (RFC 4254 §8), as sshd does.
fn apply_modes(pts: impl AsFd, modes: &[(u8, u32)]) -> io::Result<()> {
    if modes.is_empty() {
        return Ok(());
    }
    let mut t = termios::tcgetattr(&pts)?;
    for &(opcode, value) in modes {
        let on = value != 0;
        let special = match opcode {
            1 => Some(SpecialCodeIndex::VINTR),
            2 => Some(SpecialCodeIndex::VQUIT),
            3 => Some(SpecialCodeIndex::VERASE),
            4 => Some(SpecialCodeIndex::VKILL),
            5 => Some(SpecialCodeIndex::VEOF),
            6 => Some(SpecialCodeIndex::VEOL),
            7 => Some(SpecialCodeIndex::VEOL2),
            8 => Some(SpecialCodeIndex::VSTART),
            9 => Some(SpecialCodeIndex::VSTOP),
            10 => Some(SpecialCodeIndex::VSUSP),
            12 => Some(SpecialCodeIndex::VREPRINT),
            13 => Some(SpecialCodeIndex::VWERASE),
            14 => Some(SpecialCodeIndex::VLNEXT),
            18 => Some(SpecialCodeIndex::VDISCARD),
            _ => None,
        };
        if let Some(index) = special {
            // 255 means "disabled" on the wire; Linux spells that 0 (_POSIX_VDISABLE).
            t.special_codes[index] = if value == 255 { 0 } else { value as u8 };
            continue;
        }
        match opcode {
            30 => t.input_modes.set(InputModes::IGNPAR, on),
            31 => t.input_modes.set(InputModes::PARMRK, on),
            32 => t.input_modes.set(InputModes::INPCK, on),
            33 => t.input_modes.set(InputModes::ISTRIP, on),
            34 => t.input_modes.set(InputModes::INLCR, on),
            35 => t.input_modes.set(InputModes::IGNCR, on),
            36 => t.input_modes.set(InputModes::ICRNL, on),
            37 => t.input_modes.set(InputModes::IUCLC, on),
            38 => t.input_modes.set(InputModes::IXON, on),
            39 => t.input_modes.set(InputModes::IXANY, on),
            40 => t.input_modes.set(InputModes::IXOFF, on),
            41 => t.input_modes.set(InputModes::IMAXBEL, on),
            42 => t.input_modes.set(InputModes::IUTF8, on),
            50 => t.local_modes.set(LocalModes::ISIG, on),
            51 => t.local_modes.set(LocalModes::ICANON, on),
            52 => t.local_modes.set(LocalModes::XCASE, on),
            53 => t.local_modes.set(LocalModes::ECHO, on),
            54 => t.local_modes.set(LocalModes::ECHOE, on),
            55 => t.local_modes.set(LocalModes::ECHOK, on),
            56 => t.local_modes.set(LocalModes::ECHONL, on),
            57 => t.local_modes.set(LocalModes::NOFLSH, on),
            58 => t.local_modes.set(LocalModes::TOSTOP, on),
            59 => t.local_modes.set(LocalModes::IEXTEN, on),
            60 => t.local_modes.set(LocalModes::ECHOCTL, on),
            61 => t.local_modes.set(LocalModes::ECHOKE, on),
            62 => t.local_modes.set(LocalModes::PENDIN, on),
            70 => t.output_modes.set(OutputModes::OPOST, on),
            71 => t.output_modes.set(OutputModes::OLCUC, on),
            72 => t.output_modes.set(OutputModes::ONLCR, on),
            73 => t.output_modes.set(OutputModes::OCRNL, on),
            74 => t.output_modes.set(OutputModes::ONOCR, on),
            75 => t.output_modes.set(OutputModes::ONLRET, on),
            90 | 91 if on => {
                t.control_modes.remove(ControlModes::CSIZE);
                t.control_modes.insert(if opcode == 90 { ControlModes::CS7 } else { ControlModes::CS8 });
            }
            92 => t.control_modes.set(ControlModes::PARENB, on),
            93 => t.control_modes.set(ControlModes::PARODD, on),
            // Speeds (128, 129) mean nothing on a pseudo-terminal; unknown opcodes are ignored (RFC 4254 §8).
            _ => {}
        }
    }
    Ok(termios::tcsetattr(&pts, OptionalActions::Now, &t)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_reported_by_name_without_sig() {
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(exit_status(killed), ExitStatus::signal("KILL"));
        let exited = std::process::ExitStatus::from_raw(23 << 8);
        assert_eq!(exit_status(exited), ExitStatus::Code(23));
    }
}
