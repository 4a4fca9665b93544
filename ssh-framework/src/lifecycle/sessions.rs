//! The session channels of one connection: the table of open channels, what
//! each has been allowed (pty, env, x11, agent), and the shell, exec or
//! subsystem body running on it.
//!
//! Channel requests are decided and answered inside russh's callback: russh
//! keeps one "wants reply" flag per channel, so a deferred answer could be
//! sent for the wrong request when the client pipelines them, as OpenSSH
//! does. Only the body runs on a task of its own; a panic in it closes that
//! channel, not the connection.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::FutureExt;
use russh::server::{self, Msg};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::Decider;
use crate::channel::{ChannelEvent, ChannelIo, Events, ExitStatus, Stdin, Writers};
use crate::request::{ChannelBody, RequestKind, Response, SessionInfo};
use crate::forward::slots::{ForwardSlot, ForwardSlots};
use crate::connection::{Held, SessionPlaces};
use crate::idle::ChannelWatch;
use crate::open_files::OpenFiles;

/// Bytes a client may send on a session channel before a shell, exec or subsystem starts.
const MAX_EARLY_DATA: usize = 1 << 20;
/// Environment variables kept per channel.
const MAX_ENV_VARS: usize = 256;
/// The longest environment variable name accepted.
pub(crate) const MAX_ENV_NAME: usize = 256;
/// The longest environment variable value accepted.
pub(crate) const MAX_ENV_VALUE: usize = 32 << 10;
/// Events queued for a running body that does not read them; older ones are dropped.
const EVENT_QUEUE: usize = 64;

struct SessionChannel {
    read: Option<ChannelReadHalf>,
    write: Option<ChannelWriteHalf<Msg>>,
    early: Vec<Bytes>,
    early_len: usize,
    early_eof: bool,
    info: SessionInfo,
    events: Option<crate::event_queue::Sender<ChannelEvent>>,
    body: Option<JoinHandle<()>>,
    /// Tells a finished body's report apart from a later channel with the same id.
    token: u64,
    span: tracing::Span,
    /// Its places under `MaxChannels` and `MaxSessionsPerUser`: freed with it,
    /// or by its body when the body finishes (a finished body's channel is
    /// only reaped at the next open, and `UnusedConnectionTimeout` must see
    /// the last channel close when it closes), or when `ChannelTimeout` closes
    /// it before a body started.
    slots: Arc<Mutex<Option<Slots>>>,
    /// Closes the channel if it stays idle past its `ChannelTimeout` before
    /// a body starts (the body has a watch of its own).
    waiting: Option<JoinHandle<()>>,
}

impl SessionChannel {
    /// Takes messages russh queued for this channel before a body reads them, so
    /// the queue never fills (a full queue would stall the whole connection).
    fn drain_early(&mut self) -> bool {
        let Some(read) = self.read.as_mut() else { return true };
        while let Some(Some(msg)) = read.wait().now_or_never() {
            match msg {
                ChannelMsg::Data { data } => {
                    self.early_len += data.len();
                    if self.early_len > MAX_EARLY_DATA {
                        return false;
                    }
                    self.early.push(data);
                }
                ChannelMsg::Eof => self.early_eof = true,
                _ => {}
            }
        }
        // Still false after an earlier call found too much.
        self.early_len <= MAX_EARLY_DATA
    }
}

impl Drop for SessionChannel {
    fn drop(&mut self) {
        // The client closed the channel: the body has nobody to talk to.
        if let Some(body) = self.body.take() {
            body.abort();
        }
        if let Some(waiting) = self.waiting.take() {
            waiting.abort();
        }
    }
}

/// The session channels of one connection.
pub(crate) struct Sessions {
    decider: Decider,
    max_sessions: usize,
    /// The connection's count of channels of every kind (`MaxChannels`).
    all_channels: ForwardSlots,
    /// The server-wide count per user (`MaxSessionsPerUser`), when installed.
    user_sessions: Option<SessionPlaces>,
    channels: HashMap<ChannelId, SessionChannel>,
    /// Bodies report here when they closed their channel: russh forgets a
    /// channel the server closed and never calls `channel_close` for it.
    finished: Finished,
    next_token: u64,
    /// The server's budget of open files, handed to bodies with their [`ChannelIo`].
    open_files: Arc<OpenFiles>,
}

impl Sessions {
    pub(crate) fn new(
        decider: Decider,
        max_sessions: usize,
        all_channels: ForwardSlots,
        user_sessions: Option<SessionPlaces>,
        open_files: Arc<OpenFiles>,
    ) -> Self {
        Sessions {
            decider,
            max_sessions,
            all_channels,
            user_sessions,
            channels: HashMap::new(),
            finished: Finished::default(),
            next_token: 0,
            open_files,
        }
    }

    /// Forgets session channels whose body finished and closed them.
    fn reap_finished(&mut self) {
        for (id, token) in self.finished.take() {
            if self.channels.get(&id).is_some_and(|c| c.token == token) {
                self.channels.remove(&id);
            }
        }
    }

    /// A client asks for a session channel: within `MaxSessions`, `MaxChannels`
    /// and `MaxSessionsPerUser`, if the stack allows it.
    pub(crate) async fn open(&mut self, channel: Channel<Msg>, reply: server::ChannelOpenHandle) {
        let id = channel.id();
        self.reap_finished();
        let parent = self.decider.span();
        if self.channels.len() >= self.max_sessions {
            tracing::info!(parent: parent, max = self.max_sessions, "session limit reached; channel refused");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return;
        }
        let user = self.decider.connection().user().unwrap_or_default();
        let user_slot = match &self.user_sessions {
            Some(places) => match parent.in_scope(|| places(user)) {
                Some(slot) => Some(slot),
                None => {
                    reply.reject(ChannelOpenFailure::ResourceShortage).await;
                    return;
                }
            },
            None => None,
        };
        let Some(slot) = parent.in_scope(|| self.all_channels.acquire()) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return;
        };
        let span = tracing::info_span!(parent: parent, "channel", id = %id, kind = "session");
        let request = self.decider.request(RequestKind::ChannelOpenSession);
        if !self.decider.decide(request, &span).await.is_allowed() {
            tracing::debug!(parent: &span, "session refused");
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return;
        }
        let (read, write) = channel.split();
        self.next_token += 1;
        let channel = SessionChannel {
            read: Some(read),
            write: Some(write),
            early: Vec::new(),
            early_len: 0,
            early_eof: false,
            info: SessionInfo { channel: u32::from(id), ..SessionInfo::default() },
            events: None,
            body: None,
            token: self.next_token,
            span,
            slots: Arc::new(Mutex::new(Some((slot, user_slot)))),
            waiting: None,
        };
        let channel = self.watch_until_started(id, channel);
        self.channels.insert(id, channel);
        reply.accept().await;
    }

    /// Until a body starts, the channel is a plain `session` to
    /// `ChannelTimeout`: idle past its interval, it is closed and its places
    /// are given back.
    fn watch_until_started(&self, id: ChannelId, mut channel: SessionChannel) -> SessionChannel {
        let connection = self.decider.connection();
        let watch = connection.channel_watch("session");
        if !watch.is_watched() {
            return channel;
        }
        let slots = channel.slots.clone();
        let handle = connection.handle().cloned();
        let (finished, token) = (self.finished.clone(), channel.token);
        let waiting = async move {
            watch.expired().await;
            drop(slots.lock().unwrap_or_else(PoisonError::into_inner).take());
            if let Some(handle) = handle {
                let _ = handle.close(id).await;
            }
            finished.report(id, token);
        };
        channel.waiting = Some(tokio::spawn(waiting.instrument(channel.span.clone())));
        channel
    }

    /// The client closed a channel; a body still running is aborted.
    pub(crate) fn close(&mut self, id: ChannelId) {
        self.channels.remove(&id);
    }

    /// Data arrived before a body started: keep it (bounded) for the body's stdin.
    pub(crate) fn data(&mut self, id: ChannelId, session: &mut server::Session) {
        if let Some(ch) = self.channels.get_mut(&id)
            && ch.write.is_some()
            && !ch.drain_early()
        {
            tracing::warn!(parent: &ch.span, "too much data before the channel started; closing it");
            let _ = session.close(id);
            self.channels.remove(&id);
        }
    }

    /// Whether `name=value` may join the channel's environment: names up to
    /// 256 bytes, values up to 32 KiB, at most 256 variables and `max_bytes`
    /// of names and values in all. Refused before any handler sees it.
    pub(crate) fn env_fits(&mut self, id: ChannelId, name: &str, value: &str, max_bytes: usize) -> bool {
        let Some(channel) = self.channels.get_mut(&id) else { return true };
        // russh queued a copy of the request for the channel: take it out now, as
        // `request` does, or refused requests would fill the queue and stall the
        // connection. Too much early data is `request`'s to report.
        if !channel.drain_early() {
            return true;
        }
        let env = &channel.info.env;
        let held: usize = env.iter().map(|(n, v)| n.len() + v.len()).sum();
        let fits = name.len() <= MAX_ENV_NAME
            && value.len() <= MAX_ENV_VALUE
            && env.len() < MAX_ENV_VARS
            && held + name.len() + value.len() <= max_bytes;
        if !fits {
            tracing::debug!(parent: &channel.span, name_len = name.len(), value_len = value.len(), vars = env.len(), held, "environment limit reached; env request refused");
        }
        fits
    }

    /// Decides one channel request and replies to it.
    pub(crate) async fn request(&mut self, id: ChannelId, kind: RequestKind, session: &mut server::Session) -> Option<Response> {
        let Some(channel) = self.channels.get_mut(&id) else {
            let _ = session.channel_failure(id);
            return None;
        };
        if !channel.drain_early() {
            tracing::warn!(parent: &channel.span, "too much data before the channel started; closing it");
            let _ = session.channel_failure(id);
            let _ = session.close(id);
            self.channels.remove(&id);
            return None;
        }
        let span = channel.span.clone();
        let request = self.decider.request(kind).with_session(channel.info.clone());
        let response = self.decider.decide(request, &span).await;
        let allowed = response.is_allowed();
        tracing::debug!(parent: &span, allowed, "channel request decided");
        if allowed {
            let _ = session.channel_success(id);
        } else {
            let _ = session.channel_failure(id);
        }
        allowed.then_some(response)
    }

    /// Decides a channel request and, when allowed, records it on the channel
    /// (where extractors such as `Pty` and `Environment` find it later).
    pub(crate) async fn record_if_allowed(
        &mut self,
        id: ChannelId,
        kind: RequestKind,
        session: &mut server::Session,
        record: impl FnOnce(&mut SessionInfo),
    ) -> bool {
        let allowed = self.request(id, kind, session).await.is_some();
        if allowed && let Some(ch) = self.channels.get_mut(&id) {
            record(&mut ch.info);
        }
        allowed
    }

    /// Shell, exec and subsystem: decide with the channel stream attached, then run the body.
    pub(crate) async fn start_body(&mut self, id: ChannelId, kind: RequestKind, session: &mut server::Session) {
        let Some(channel) = self.channels.get_mut(&id) else {
            let _ = session.channel_failure(id);
            return;
        };
        let (Some(write), true) = (channel.write.take(), channel.drain_early()) else {
            // A body already ran (or was refused) on this channel, or too much early data.
            let _ = session.channel_failure(id);
            return;
        };
        let (events_tx, events_rx) = crate::event_queue::bounded(EVENT_QUEUE);
        let flow = self.decider.connection().flow().clone();
        // OpenSSH's names for `ChannelTimeout`.
        let channel_type = match &kind {
            RequestKind::Shell => "session:shell".to_owned(),
            RequestKind::Subsystem(name) => format!("session:subsystem:{name}"),
            _ => "session:command".to_owned(),
        };
        let watch = self.decider.connection().channel_watch(&channel_type);
        let activity = watch.activity();
        let stdin = Stdin::new(std::mem::take(&mut channel.early), channel.early_eof, channel.read.take(), flow, activity.clone());
        let mut io = ChannelIo::new(stdin, &write, Events::new(events_rx), activity.clone());
        let write = Arc::new(write);
        let writers = Writers::new(write.clone(), activity);
        io.open_files = Some(self.open_files.for_user(self.decider.connection().user().unwrap_or_default()));
        channel.events = Some(events_tx);
        let span = channel.span.clone();
        let token = channel.token;
        let request = self.decider.request(kind).with_session(channel.info.clone()).with_io(io, writers);
        let Response::Run(body) = self.decider.decide(request, &span).await else {
            tracing::debug!(parent: &span, "refused");
            let _ = session.channel_failure(id);
            return;
        };
        let _ = session.channel_success(id);
        let handle = self.decider.connection().handle().cloned();
        let finished = (self.finished.clone(), id, token);
        let slots = self.channels.get_mut(&id).and_then(|c| {
            if let Some(waiting) = c.waiting.take() {
                waiting.abort();
            }
            c.slots.lock().unwrap_or_else(PoisonError::into_inner).take()
        });
        let task = tokio::spawn(run_body(body, write, handle, (finished, slots), watch).instrument(span));
        if let Some(channel) = self.channels.get_mut(&id) {
            channel.body = Some(task);
        }
    }

    /// Hands a window-change or signal to the channel's running body.
    pub(crate) fn deliver(&mut self, id: ChannelId, event: ChannelEvent) {
        if let Some(tx) = self.channels.get(&id).and_then(|c| c.events.as_ref())
            && tx.try_send(event).is_err()
        {
            tracing::debug!(parent: self.decider.span(), "channel body is not reading events; one dropped");
        }
    }
}

type FinishedReport = (Finished, ChannelId, u64);

/// Where bodies report that they closed their channel (id and token), until
/// the next open reaps them. A list, not a channel: a channel allocates its
/// first block of slots when made, on every connection; the list only when a
/// body reports.
#[derive(Debug, Clone, Default)]
struct Finished(Arc<Mutex<Vec<(ChannelId, u64)>>>);

impl Finished {
    fn report(&self, id: ChannelId, token: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((id, token));
    }

    fn take(&self) -> Vec<(ChannelId, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
/// A session channel's places under `MaxChannels` and `MaxSessionsPerUser`.
type Slots = (ForwardSlot, Option<Held>);

/// Runs an accepted body, then sends exit-status (or exit-signal), EOF and
/// close, in that order. A body whose channel times out (`watch`) is dropped
/// and the channel closed without an exit status, as OpenSSH does.
async fn run_body(
    body: ChannelBody,
    write: Arc<ChannelWriteHalf<Msg>>,
    handle: Option<server::Handle>,
    (finished, slots): (FinishedReport, Option<Slots>),
    watch: ChannelWatch,
) {
    // This task is allocated once at its largest state and lives as long as
    // the body: the timeout watch takes room only when one applies, and the
    // ending (its messages to russh) is boxed.
    let outcome = if watch.is_watched() {
        tokio::select! {
            outcome = AssertUnwindSafe(body).catch_unwind() => Some(outcome),
            () = Box::pin(watch.expired()) => None,
        }
    } else {
        Some(AssertUnwindSafe(body).catch_unwind().await)
    };
    Box::pin(end_body(outcome, write, handle)).await;
    drop(slots);
    let (finished, id, token) = finished;
    finished.report(id, token);
}

/// Sends what ends a body's channel: its exit status or signal (none after a
/// timeout or a panic), EOF, close.
async fn end_body(
    outcome: Option<std::thread::Result<ExitStatus>>,
    write: Arc<ChannelWriteHalf<Msg>>,
    handle: Option<server::Handle>,
) {
    match outcome {
        None => {}
        Some(Ok(ExitStatus::Code(code))) => {
            tracing::debug!(code, "channel body finished");
            let _ = write.exit_status(code).await;
        }
        Some(Ok(ExitStatus::Signal { signal, core_dumped, message })) => {
            tracing::debug!(%signal, "channel body finished by signal");
            if let Some(handle) = handle {
                let _ = handle.exit_signal_request(write.id(), signal.to_russh(), core_dumped, message, String::new()).await;
            }
        }
        Some(Err(panic)) => {
            tracing::error!(panic = %super::panic_message(panic.as_ref()), "channel handler panicked; closing its channel");
        }
    }
    let _ = write.eof().await;
    let _ = write.close().await;
}
