//! Session channels: the stream a shell, exec or subsystem handler works on,
//! and the requests that shape it (pty, env, window-change, signal).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use russh::{ChannelMsg, ChannelWriteHalf};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::io::StreamReader;

use crate::idle::Activity;
use crate::open_files::UserFiles;

/// A POSIX signal name as carried by SSH `signal` and `exit-signal` messages
/// (RFC 4254 §6.9, §6.10), without the `SIG` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signal(String);

impl Signal {
    /// `SIGINT`.
    pub const INT: &'static str = "INT";
    /// `SIGTERM`.
    pub const TERM: &'static str = "TERM";
    /// `SIGKILL`.
    pub const KILL: &'static str = "KILL";
    /// `SIGHUP`.
    pub const HUP: &'static str = "HUP";

    /// A signal from its name, with or without the `SIG` prefix (`"TERM"`, `"SIGTERM"`).
    pub fn new(name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        Signal(name.strip_prefix("SIG").unwrap_or(name).to_owned())
    }

    /// The name without the `SIG` prefix, as on the wire.
    pub fn name(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_russh(sig: &russh::Sig) -> Self {
        let name = match sig {
            russh::Sig::ABRT => "ABRT",
            russh::Sig::ALRM => "ALRM",
            russh::Sig::FPE => "FPE",
            russh::Sig::HUP => "HUP",
            russh::Sig::ILL => "ILL",
            russh::Sig::INT => "INT",
            russh::Sig::KILL => "KILL",
            russh::Sig::PIPE => "PIPE",
            russh::Sig::QUIT => "QUIT",
            russh::Sig::SEGV => "SEGV",
            russh::Sig::TERM => "TERM",
            russh::Sig::USR1 => "USR1",
            russh::Sig::Custom(name) => name,
        };
        Signal::new(name)
    }

    pub(crate) fn to_russh(&self) -> russh::Sig {
        match self.0.as_str() {
            "ABRT" => russh::Sig::ABRT,
            "ALRM" => russh::Sig::ALRM,
            "FPE" => russh::Sig::FPE,
            "HUP" => russh::Sig::HUP,
            "ILL" => russh::Sig::ILL,
            "INT" => russh::Sig::INT,
            "KILL" => russh::Sig::KILL,
            "PIPE" => russh::Sig::PIPE,
            "QUIT" => russh::Sig::QUIT,
            "SEGV" => russh::Sig::SEGV,
            "TERM" => russh::Sig::TERM,
            "USR1" => russh::Sig::USR1,
            other => russh::Sig::Custom(other.to_owned()),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a shell, exec or subsystem ended, reported to the client before EOF and close.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ExitStatus {
    /// `exit-status` with this code (0 is success).
    Code(u32),
    /// `exit-signal`: the process was killed by a signal.
    Signal {
        /// The signal's name.
        signal: Signal,
        /// Whether the process dumped core.
        core_dumped: bool,
        /// A human-readable message, may be empty.
        message: String,
    },
}

impl ExitStatus {
    /// Exit code 0.
    pub const SUCCESS: ExitStatus = ExitStatus::Code(0);
    /// Exit code 1.
    pub const FAILURE: ExitStatus = ExitStatus::Code(1);

    /// An `exit-status` with `code`.
    pub fn code(code: u32) -> Self {
        ExitStatus::Code(code)
    }

    /// An `exit-signal` with the signal's name and no core dump.
    pub fn signal(signal: impl AsRef<str>) -> Self {
        ExitStatus::Signal { signal: Signal::new(signal), core_dumped: false, message: String::new() }
    }
}

impl From<u32> for ExitStatus {
    fn from(code: u32) -> Self {
        ExitStatus::Code(code)
    }
}

/// A terminal size in characters and pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
    /// Width in pixels (0 when unknown).
    pub pix_width: u32,
    /// Height in pixels (0 when unknown).
    pub pix_height: u32,
}

/// A `pty-req` (RFC 4254 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyRequest {
    /// The `TERM` value, such as `xterm-256color`.
    pub term: String,
    /// The initial size.
    pub size: WindowSize,
    /// Encoded terminal modes (opcode, value) as sent by the client.
    pub modes: Vec<(u8, u32)>,
}

/// The command of an `exec` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(String);

impl Command {
    pub(crate) fn new(raw: &[u8]) -> Self {
        Command(String::from_utf8_lossy(raw).into_owned())
    }

    /// The whole command line as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first word, which `#[exec("name")]` routes on (`git-upload-pack` in
    /// `git-upload-pack '/repo.git'`).
    pub fn program(&self) -> &str {
        self.0.split_ascii_whitespace().next().unwrap_or("")
    }

    /// The rest after the first word, with leading spaces removed.
    pub fn args(&self) -> &str {
        // The same ASCII whitespace `program` splits on: a Unicode space
        // before the first word belongs to the word, so the slice below is
        // always on a character boundary.
        let ascii_space = |c: char| c.is_ascii_whitespace();
        let trimmed = self.0.trim_start_matches(ascii_space);
        trimmed[self.program().len()..].trim_start_matches(ascii_space)
    }

    /// The command line split into words as a POSIX shell splits them (quotes
    /// and backslashes, no expansion): `git-upload-pack '/my repo.git'` is
    /// `["git-upload-pack", "/my repo.git"]`. Fails on an unclosed quote.
    pub fn argv(&self) -> Result<Vec<String>, ArgvError> {
        shell_words::split(&self.0).map_err(|_| ArgvError(()))
    }
}

/// The error of [`Command::argv`]: the command line has an unclosed quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgvError(());

impl fmt::Display for ArgvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the command line has an unclosed quote")
    }
}

impl std::error::Error for ArgvError {}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a running shell, exec or subsystem hears from the client besides stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// The terminal was resized (`window-change`, allowed by a `#[window_change]` handler).
    WindowChange(WindowSize),
    /// The client asked to deliver a signal (allowed by a `#[signal]` handler).
    Signal(Signal),
}

type DataStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// The client's stdin on a session channel: an [`AsyncRead`] that ends at the client's EOF.
pub struct Stdin {
    inner: StreamReader<DataStream, Bytes>,
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stdin").finish_non_exhaustive()
    }
}

/// Inbound flow control of one connection, layered on russh.
///
/// russh grants the client window as soon as data arrives, not when a body
/// consumes it, and then waits for room in the channel's small queue on the
/// connection's event loop. Each channel's reader task therefore empties that
/// queue into a buffer of its own (so the loop never blocks while a body waits
/// for the client's window adjust). Every byte in those buffers, on every
/// channel kind (session stdin, `direct-tcpip`, `direct-streamlocal`,
/// `forwarded-tcpip`, `forwarded-streamlocal`, `x11`, agent), counts against
/// three budgets:
///
/// - the channel's: past its high-water mark (8 MiB) the channel is congested;
/// - the connection's (default 64 MiB): past half of it the connection is congested;
/// - the server's (default 1 GiB, [`BufferPool`]): past half of it every connection is congested.
///
/// While anything is congested, the connection's window target drops to 2
/// bytes through russh's `Handler::adjust_window` hook: the client is held to
/// a trickle until the buffers drain, and the target goes back up on the next
/// packet. A client may still fill the window each channel was opened with
/// (russh grants it in full on open, without asking): 256 forwarding channels
/// could carry 2 GiB that way. So past the connection's or the server's
/// budget the connection stops reading: `Handler::data` waits until its
/// buffers drain below both budgets, and TCP holds the client back. A
/// connection that waits there for 60 seconds while none of its own buffers
/// drains is disconnected (its forwarded destinations are not reading: nothing
/// else would end it).
///
/// Bound: what one connection buffers stays below its budget plus one packet
/// (256 KiB); what one channel buffers below `8 MiB + 2 × window + 1 MiB` (25
/// MiB with the default 8 MiB window) whatever the client does; what the
/// server buffers below its budget plus one packet per connection. Data a
/// client sends on a session channel before its shell, exec or subsystem
/// starts is bounded apart (1 MiB per channel).
#[derive(Debug)]
pub(crate) struct FlowControl {
    congested: AtomicUsize,
    window: u32,
    /// Bytes buffered on all channels of this connection.
    buffered: AtomicUsize,
    /// This connection's budget.
    limit: usize,
    pool: Arc<BufferPool>,
}

/// The server-wide budget for bytes buffered on channels, shared by every connection.
#[derive(Debug)]
pub(crate) struct BufferPool {
    buffered: AtomicUsize,
    limit: usize,
    /// Connections waiting in `FlowControl::room`; releases notify only when there are some.
    waiters: AtomicUsize,
    drained: Notify,
}

impl BufferPool {
    pub(crate) fn new(limit: usize) -> Self {
        BufferPool { buffered: AtomicUsize::new(0), limit, waiters: AtomicUsize::new(0), drained: Notify::new() }
    }
}

/// The window target while a buffer is over its high-water mark. russh sends an
/// adjust when the client's window falls below half the target, so 1 would
/// never reopen it; 2 keeps one trickle packet flowing, which is what lets the
/// target be raised again.
const TRICKLE_WINDOW: u32 = 2;
/// Buffered bytes at which a channel counts as congested.
const HIGH_WATER: usize = 8 << 20;
/// Buffered bytes below which it no longer does.
const LOW_WATER: usize = 2 << 20;
/// How long a connection over its budget may wait without any of its buffers draining.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a connection stopped waiting for its buffers to drain: it waited too long.
#[derive(Debug)]
pub(crate) struct Stalled {
    /// What the connection had buffered when it gave up.
    pub(crate) buffered: usize,
}

impl FlowControl {
    pub(crate) fn new(window: u32, limit: usize, pool: Arc<BufferPool>) -> Self {
        FlowControl { congested: AtomicUsize::new(0), window, buffered: AtomicUsize::new(0), limit, pool }
    }

    /// The window target russh should use from now on.
    pub(crate) fn target(&self) -> u32 {
        let congested = self.congested.load(Ordering::Acquire) > 0
            || self.buffered.load(Ordering::Relaxed) >= self.limit / 2
            || self.pool.buffered.load(Ordering::Relaxed) >= self.pool.limit / 2;
        if congested { TRICKLE_WINDOW } else { self.window }
    }

    /// Bytes buffered on all channels of this connection.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered.load(Ordering::SeqCst)
    }

    fn over_budget(&self) -> bool {
        self.buffered.load(Ordering::SeqCst) > self.limit || self.pool.buffered.load(Ordering::SeqCst) > self.pool.limit
    }

    /// Waits while this connection or the server is over its budget (at once
    /// when neither is). Called on the connection's event loop for every data
    /// packet, so that waiting stops reading from the client. Fails when none
    /// of this connection's buffers drained for [`STALL_TIMEOUT`].
    pub(crate) async fn room(&self) -> Result<(), Stalled> {
        if !self.over_budget() {
            return Ok(());
        }
        tracing::debug!(buffered = self.buffered(), server = self.pool.buffered.load(Ordering::Relaxed), "channel buffers over budget; not reading from the client");
        self.pool.waiters.fetch_add(1, Ordering::SeqCst);
        let result = self.wait_for_room().await;
        self.pool.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn wait_for_room(&self) -> Result<(), Stalled> {
        let mut lowest = self.buffered();
        let mut deadline = tokio::time::Instant::now() + STALL_TIMEOUT;
        loop {
            let drained = self.pool.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if !self.over_budget() {
                return Ok(());
            }
            let now = self.buffered();
            if now < lowest {
                lowest = now;
                deadline = tokio::time::Instant::now() + STALL_TIMEOUT;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() && self.buffered() >= lowest {
                return Err(Stalled { buffered: self.buffered() });
            }
        }
    }

    fn charge(&self, n: usize) {
        self.buffered.fetch_add(n, Ordering::SeqCst);
        self.pool.buffered.fetch_add(n, Ordering::SeqCst);
    }

    fn release(&self, n: usize) {
        self.buffered.fetch_sub(n, Ordering::SeqCst);
        self.pool.buffered.fetch_sub(n, Ordering::SeqCst);
        if self.pool.waiters.load(Ordering::SeqCst) > 0 {
            self.pool.drained.notify_waiters();
        }
    }

    /// The most one channel may hold. After the high-water mark a client may
    /// still send what is left of its window and, because russh lowers the
    /// target only after it has sent one more full adjust, one more window:
    /// at most two windows, plus slack for trickle packets.
    fn hard_limit(&self) -> usize {
        HIGH_WATER + 2 * self.window as usize + (1 << 20)
    }
}

/// One channel's buffer accounting.
#[derive(Debug)]
struct Budget {
    permits: Arc<Semaphore>,
    hard: usize,
    congested: AtomicBool,
    flow: Arc<FlowControl>,
}

impl Budget {
    fn update(&self) {
        let buffered = self.hard - self.permits.available_permits();
        if buffered >= HIGH_WATER {
            if !self.congested.swap(true, Ordering::AcqRel) {
                self.flow.congested.fetch_add(1, Ordering::AcqRel);
            }
        } else if buffered <= LOW_WATER && self.congested.swap(false, Ordering::AcqRel) {
            self.flow.congested.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        if *self.congested.get_mut() {
            self.flow.congested.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One buffered chunk's share of the channel's, the connection's and the
/// server's budgets, given back when the chunk is read or dropped.
struct Charge {
    _permit: OwnedSemaphorePermit,
    len: usize,
    flow: Arc<FlowControl>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.flow.release(self.len);
    }
}

/// Fires when a channel is closed by the client or its connection is gone:
/// whoever forwards its data then has nobody left to answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Closed(Arc<Notify>, Arc<AtomicBool>);

impl Closed {
    fn fire(&self) {
        self.1.store(true, Ordering::Release);
        self.0.notify_waiters();
    }

    /// Resolves once the channel is closed.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.0.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.1.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Stdin {
    /// Builds stdin from data that arrived before the handler started and the
    /// channel's queue, emptied by a task of its own (see [`FlowControl`]). The
    /// data moves as the `Bytes` russh decrypted into: no copy.
    pub(crate) fn new(
        early: Vec<Bytes>,
        early_eof: bool,
        read: Option<russh::ChannelReadHalf>,
        flow: Arc<FlowControl>,
        activity: Activity,
    ) -> Self {
        Stdin::with_close(early, early_eof, read, flow, Closed::default(), activity)
    }

    /// As [`Stdin::new`], and fires `closed` when the client closes the channel
    /// or the connection ends. Every data packet counts as `activity`.
    pub(crate) fn with_close(
        early: Vec<Bytes>,
        early_eof: bool,
        read: Option<russh::ChannelReadHalf>,
        flow: Arc<FlowControl>,
        closed: Closed,
        activity: Activity,
    ) -> Self {
        let early = futures_util::stream::iter(early.into_iter().map(Ok));
        // Bounded by the budget's permits, not by a count; allocated only while data waits.
        let (tx, rx) = crate::event_queue::bounded::<(Bytes, Charge)>(usize::MAX);
        let hard = flow.hard_limit();
        let budget = Arc::new(Budget {
            permits: Arc::new(Semaphore::new(hard)),
            hard,
            congested: AtomicBool::new(false),
            flow,
        });
        if let Some(mut read) = read.filter(|_| !early_eof) {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut tx = Some(tx);
                while let Some(msg) = read.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => {
                            activity.bump(data.len());
                            let Some(sender) = tx.as_ref() else { continue };
                            let need = u32::try_from(data.len().min(budget.hard)).unwrap_or(u32::MAX);
                            // Only a client that ignores its window gets here with a full
                            // buffer; then, and only then, its connection waits. A reader
                            // that goes away drops what it had not read, which gives the
                            // permits back.
                            let Ok(permit) = budget.permits.clone().acquire_many_owned(need).await else { return };
                            budget.flow.charge(data.len());
                            let charge = Charge { _permit: permit, len: data.len(), flow: budget.flow.clone() };
                            if sender.try_send((data, charge)).is_err() {
                                tx = None;
                                continue;
                            }
                            budget.update();
                        }
                        // EOF ends stdin; the channel is watched on for its close.
                        ChannelMsg::Eof => tx = None,
                        ChannelMsg::Close => break,
                        // Requests are answered by the connection; extended data from a client has no meaning.
                        _ => {}
                    }
                }
                closed.fire();
            });
        }
        // The charge is given back when the reader takes the chunk.
        let rest = futures_util::stream::unfold((rx, budget), |(mut rx, budget)| async move {
            let (data, charge) = rx.recv().await?;
            drop(charge);
            budget.update();
            Some((Ok(data), (rx, budget)))
        });
        let stream: DataStream = Box::pin(futures_util::StreamExt::chain(early, rest));
        Stdin { inner: StreamReader::new(stream) }
    }
}

impl AsyncRead for Stdin {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncBufRead for Stdin {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

/// A writer to the client's stdout or stderr, respecting the peer's window.
pub struct Output {
    inner: Pin<Box<dyn AsyncWrite + Send + Sync>>,
    activity: Activity,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl AsyncWrite for Output {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = self.inner.as_mut().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.activity.bump(n);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }

    /// Flushes only: EOF is sent once, by the framework, after the exit status.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }
}

/// The session channel as a stream, handed to `#[shell]`, `#[exec]` and `#[subsystem]` handlers.
///
/// `stdin` reads what the client sends; `stdout` and `stderr` write to it
/// (stderr as extended data type 1); `events` delivers window-change and
/// signal requests that a handler allowed while the body runs. When the
/// handler returns, the framework sends exit-status (or exit-signal), EOF and
/// close, in that order.
#[derive(Debug)]
#[non_exhaustive]
pub struct ChannelIo {
    /// The client's input.
    pub stdin: Stdin,
    /// Standard output to the client.
    pub stdout: Output,
    /// Standard error to the client (kept apart from stdout).
    pub stderr: Output,
    /// Window-change and signal events for the running body.
    pub events: Events,
    /// The user's share of the server's open-file budget, which the built-in
    /// SFTP and SCP servers take their handles from.
    pub(crate) open_files: Option<UserFiles>,
}

impl ChannelIo {
    /// The channel's streams; what the body writes counts as `activity`.
    pub(crate) fn new(stdin: Stdin, write: &ChannelWriteHalf<russh::server::Msg>, events: Events, activity: Activity) -> Self {
        ChannelIo {
            stdin,
            stdout: Output { inner: Box::pin(write.make_writer()), activity: activity.clone() },
            stderr: Output { inner: Box::pin(write.make_writer_ext(Some(1))), activity },
            events,
            open_files: None,
        }
    }

    /// Splits into the four parts, to move them into separate tasks.
    pub fn split(self) -> (Stdin, Output, Output, Events) {
        (self.stdin, self.stdout, self.stderr, self.events)
    }
}

/// Makes more writers on a session channel's stdout and stderr, for the
/// layers that write to the client besides the handler (see
/// [`Request::stdout`](crate::Request::stdout)). Each writer is a sender on
/// the channel's queue with the channel's shared window: no data is copied.
#[derive(Clone)]
pub(crate) struct Writers {
    write: Arc<ChannelWriteHalf<russh::server::Msg>>,
    activity: Activity,
}

impl fmt::Debug for Writers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writers").field("channel", &self.write.id()).finish_non_exhaustive()
    }
}

impl Writers {
    pub(crate) fn new(write: Arc<ChannelWriteHalf<russh::server::Msg>>, activity: Activity) -> Self {
        Writers { write, activity }
    }

    /// A new writer on stdout (`ext` `None`) or stderr (`Some(1)`).
    pub(crate) fn output(&self, ext: Option<u32>) -> Output {
        Output { inner: Box::pin(self.write.make_writer_ext(ext)), activity: self.activity.clone() }
    }
}

/// The stream of [`ChannelEvent`]s of a running channel body.
#[derive(Debug)]
pub struct Events(crate::event_queue::Receiver<ChannelEvent>);

impl Events {
    pub(crate) fn new(rx: crate::event_queue::Receiver<ChannelEvent>) -> Self {
        Events(rx)
    }

    /// The next event; `None` once the channel is gone.
    pub async fn recv(&mut self) -> Option<ChannelEvent> {
        self.0.recv().await
    }
}

impl Stream for Events {
    type Item = ChannelEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any client command, Unicode spaces and quotes included: no panic.
        #[test]
        fn any_command_splits_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..128), text in "\\PC{0,64}") {
            for command in [Command::new(&bytes), Command::new(text.as_bytes())] {
                let _ = (command.program(), command.args(), command.argv());
            }
        }
    }

    #[test]
    fn command_routes_on_first_word() {
        let c = Command::new(b"  git-upload-pack  '/repo.git'");
        assert_eq!(c.program(), "git-upload-pack");
        assert_eq!(c.args(), "'/repo.git'");
        assert_eq!(Command::new(b"").program(), "");
    }

    #[test]
    fn command_args_never_panic_on_unicode_spaces() {
        let c = Command::new("\u{2003}ls\u{2003} -l".as_bytes());
        assert_eq!(c.program(), "\u{2003}ls\u{2003}");
        assert_eq!(c.args(), "-l");
        let c = Command::new(" \t\u{a0}x y".as_bytes());
        assert_eq!((c.program(), c.args()), ("\u{a0}x", "y"));
    }

    #[test]
    fn command_splits_into_argv_like_a_shell() {
        let c = Command::new(br#"git-upload-pack '/my repo.git' "a\"b" c\ d"#);
        assert_eq!(c.argv().unwrap(), ["git-upload-pack", "/my repo.git", "a\"b", "c d"]);
        assert!(Command::new(b"echo 'open").argv().is_err());
    }

    #[test]
    fn signal_names_drop_the_sig_prefix() {
        assert_eq!(Signal::new("SIGTERM").name(), "TERM");
        assert_eq!(Signal::from_russh(&Signal::new("USR2").to_russh()).name(), "USR2");
    }
}
