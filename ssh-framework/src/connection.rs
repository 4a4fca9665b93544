//! One client connection: the `russh` handler that turns protocol events into
//! [`Request`]s, keeps the authentication record, and runs channel bodies.
//!
//! russh awaits these callbacks inline on the connection's event loop, so a
//! decision is awaited here but a channel body (shell, exec, subsystem) is
//! spawned. Channel requests are answered inside their callback because russh
//! keeps one "wants reply" flag per channel: a deferred answer could be sent
//! for the wrong request when the client pipelines them, as OpenSSH does.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use russh::keys::PublicKey;
use russh::server::{self, Msg};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

use crate::auth::{Auth, Factors, Method, MethodSet, PromptRound, Prompter};
use crate::channel::{ChannelEvent, ChannelIo, Command, Events, ExitStatus, PtyRequest, Signal, Stdin, WindowSize};
use crate::request::{Connection, Request, RequestKind, Response, Secret, SessionInfo};
use crate::forward::{Client, Forward, GatewayPorts, ListenTarget, OpenFailure, TcpTarget, X11Request};
use crate::server::Shared;

/// Keyboard-interactive rounds one handler may ask before it is cut off.
const MAX_PROMPT_ROUNDS: usize = 16;
/// Authentication requests of any kind on one connection (partial successes and probes
/// included); past this the client is disconnected. Go's x/crypto uses the same cap.
const MAX_AUTH_REQUESTS: u32 = 128;
/// Bytes a client may send on a session channel before a shell, exec or subsystem starts.
const MAX_EARLY_DATA: usize = 1 << 20;
/// Environment variables kept per channel.
const MAX_ENV_VARS: usize = 256;
/// Events queued for a running body that does not read them; older ones are dropped.
const EVENT_QUEUE: usize = 64;

pub(crate) type HandleCell = Arc<OnceLock<server::Handle>>;

/// How long the built-in forwarder waits for a destination to accept.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection's count of forwarding channels, shared with its listener tasks.
#[derive(Clone)]
struct ForwardSlots {
    open: Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
}

impl ForwardSlots {
    /// Takes a slot, or `None` at the limit.
    fn acquire(&self) -> Option<ForwardSlot> {
        let mut current = self.open.load(Ordering::Acquire);
        loop {
            if current >= self.max {
                tracing::info!(max = self.max, "forwarding channel limit reached");
                return None;
            }
            match self.open.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(ForwardSlot(self.open.clone())),
                Err(now) => current = now,
            }
        }
    }
}

/// One forwarding channel's place in [`ForwardSlots`]; freed when dropped.
struct ForwardSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for ForwardSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Remote-forward listeners of one connection; closed when it ends.
#[derive(Default)]
struct Listeners {
    tcp: HashMap<(String, u32), JoinHandle<()>>,
    unix: HashMap<String, JoinHandle<()>>,
}

impl Listeners {
    fn len(&self) -> usize {
        self.tcp.len() + self.unix.len()
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, task) in self.tcp.drain() {
            task.abort();
        }
        for (path, task) in self.unix.drain() {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Default)]
struct AuthState {
    user: Option<String>,
    factors: Factors,
    /// After a partial success: the methods the chain continues with.
    next: Option<MethodSet>,
    failures: u32,
    requests: u32,
    none_probed: bool,
    rejected_keys: HashSet<PublicKey>,
    kbd: Option<KeyboardInteractive>,
}

struct KeyboardInteractive {
    rounds: mpsc::Receiver<PromptRound>,
    answer: Option<oneshot::Sender<Vec<String>>>,
    task: JoinHandle<Auth>,
}

impl Drop for KeyboardInteractive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct SessionChannel {
    read: Option<ChannelReadHalf>,
    write: Option<ChannelWriteHalf<Msg>>,
    early: Vec<Bytes>,
    early_len: usize,
    early_eof: bool,
    info: SessionInfo,
    events: Option<mpsc::Sender<ChannelEvent>>,
    body: Option<JoinHandle<()>>,
    /// Tells a finished body's report apart from a later channel with the same id.
    token: u64,
    span: tracing::Span,
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
        true
    }
}

impl Drop for SessionChannel {
    fn drop(&mut self) {
        // The client closed the channel: the body has nobody to talk to.
        if let Some(body) = self.body.take() {
            body.abort();
        }
    }
}

/// The per-connection russh handler.
pub(crate) struct ConnectionHandler {
    shared: Arc<Shared>,
    service: crate::server::BoxedService,
    connection: Arc<Connection>,
    handle: HandleCell,
    authenticated: Arc<AtomicBool>,
    /// Held while unauthenticated; counts toward `max_startups`.
    startup_permit: Option<OwnedSemaphorePermit>,
    auth: AuthState,
    channels: HashMap<ChannelId, SessionChannel>,
    forward_slots: ForwardSlots,
    listeners: Listeners,
    /// Bodies report here when they closed their channel: russh forgets a
    /// channel the server closed and never calls `channel_close` for it.
    finished_tx: mpsc::UnboundedSender<(ChannelId, u64)>,
    finished_rx: mpsc::UnboundedReceiver<(ChannelId, u64)>,
    next_token: u64,
    span: tracing::Span,
}

impl ConnectionHandler {
    pub(crate) fn new(
        shared: Arc<Shared>,
        connection: Arc<Connection>,
        handle: HandleCell,
        authenticated: Arc<AtomicBool>,
        startup_permit: Option<OwnedSemaphorePermit>,
        span: tracing::Span,
    ) -> Self {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        ConnectionHandler {
            forward_slots: ForwardSlots { open: Arc::default(), max: shared.limits.max_forward_channels },
            service: shared.service.clone(),
            shared,
            connection,
            handle,
            authenticated,
            startup_permit,
            auth: AuthState::default(),
            channels: HashMap::new(),
            listeners: Listeners::default(),
            finished_tx,
            finished_rx,
            next_token: 0,
            span,
        }
    }

    /// Forgets session channels whose body finished and closed them.
    fn reap_finished(&mut self) {
        while let Ok((id, token)) = self.finished_rx.try_recv() {
            if self.channels.get(&id).is_some_and(|c| c.token == token) {
                self.channels.remove(&id);
            }
        }
    }

    fn client(&self) -> Option<Client> {
        self.handle.get().map(|h| Client::new(h.clone(), self.connection.clone()))
    }

    fn forward_slot(&self) -> Option<ForwardSlot> {
        let _span = self.span.enter();
        self.forward_slots.acquire()
    }

    async fn decide(&self, request: Request) -> Response {
        let request = request.with_client(self.client());
        let name = request.kind().name();
        match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(parent: &self.span, request = name, %error, "service error; refused");
                Response::Reject
            }
        }
    }

    fn disconnect(&self, reason: russh::Disconnect, message: &'static str) {
        if let Some(handle) = self.handle.get().cloned() {
            tokio::spawn(async move {
                let _ = handle.disconnect(reason, message.into(), String::new()).await;
            });
        }
    }

    /// Starts an authentication request: resets the record when the user changes
    /// (RFC 4252 §5) and enforces the total request cap.
    fn begin_auth(&mut self, user: &str) -> Result<(), crate::Error> {
        if self.auth.user.as_deref() != Some(user) {
            let failures = self.auth.failures;
            let requests = self.auth.requests;
            let none_probed = self.auth.none_probed;
            self.auth = AuthState { user: Some(user.to_owned()), failures, requests, none_probed, ..AuthState::default() };
        }
        self.auth.requests += 1;
        if self.auth.requests > MAX_AUTH_REQUESTS {
            tracing::warn!(parent: &self.span, "too many authentication requests; disconnecting");
            return Err(crate::Error::TooManyAuthRequests);
        }
        Ok(())
    }

    async fn allowed(&self, user: &str) -> MethodSet {
        match self.auth.next {
            Some(next) => next,
            None => self.shared.routes.allowed_methods(user).await,
        }
    }

    fn russh_reject(&self, allowed: MethodSet, partial: bool) -> server::Auth {
        server::Auth::Reject { proceed_with_methods: Some(allowed.to_russh()), partial_success: partial }
    }

    /// Records a failure, disconnects once `max_auth_tries` is reached, and
    /// waits out the rejection delay for guessable secrets.
    async fn fail(&mut self, method: Method, allowed: MethodSet, started: Instant) -> server::Auth {
        // The client's first `none` probe (OpenSSH always sends one) is free, as in sshd.
        let counted = method != Method::None || self.auth.none_probed;
        if method == Method::None {
            self.auth.none_probed = true;
        }
        if counted {
            self.auth.failures += 1;
            tracing::info!(parent: &self.span, method = method.as_str(), user = self.auth.user.as_deref().unwrap_or(""), failures = self.auth.failures, "authentication failed");
        }
        if self.auth.failures >= self.shared.limits.max_auth_tries {
            tracing::warn!(parent: &self.span, "maximum authentication attempts exceeded; disconnecting");
            self.disconnect(russh::Disconnect::NoMoreAuthMethodsAvailable, "Too many authentication failures");
        } else if matches!(method, Method::Password | Method::KeyboardInteractive) {
            tokio::time::sleep_until(started + self.shared.limits.rejection_delay).await;
        }
        self.russh_reject(allowed, false)
    }

    fn succeed(&mut self, method: Method, user: &str) -> server::Auth {
        self.auth.factors.push(method);
        self.connection.set_user(user);
        self.authenticated.store(true, Ordering::Release);
        self.startup_permit = None;
        self.span.record("user", user);
        tracing::info!(parent: &self.span, method = method.as_str(), user, "authenticated");
        server::Auth::Accept
    }

    /// Applies a handler's answer to the authentication record.
    async fn conclude(&mut self, method: Method, user: &str, allowed: MethodSet, answer: Auth, started: Instant) -> server::Auth {
        match answer {
            Auth::Accept => self.succeed(method, user),
            Auth::Partial(next) => {
                self.auth.factors.push(method);
                let next = next.intersection(self.shared.routes.methods());
                if next.is_empty() {
                    tracing::warn!(parent: &self.span, "partial success names no method with a handler; rejecting");
                    return self.fail(method, allowed, started).await;
                }
                self.auth.next = Some(next);
                tracing::info!(parent: &self.span, method = method.as_str(), user, next = %next, "partial success");
                self.russh_reject(next, true)
            }
            Auth::Reject => self.fail(method, allowed, started).await,
        }
    }

    fn auth_answer(response: Response) -> Auth {
        match response {
            Response::Auth(a) => a,
            Response::Accept => Auth::Accept,
            _ => Auth::Reject,
        }
    }

    /// The common path of `none`, `password` and verified `publickey` attempts.
    async fn authenticate(&mut self, method: Method, user: &str, kind: RequestKind) -> Result<server::Auth, crate::Error> {
        let started = Instant::now();
        self.begin_auth(user)?;
        self.auth.kbd = None;
        let allowed = self.allowed(user).await;
        if !allowed.contains(method) {
            return Ok(self.fail(method, allowed, started).await);
        }
        let request = Request::new(self.connection.clone(), kind).with_factors(self.auth.factors.clone());
        let answer = Self::auth_answer(self.decide(request).await);
        Ok(self.conclude(method, user, allowed, answer, started).await)
    }

    async fn keyboard_interactive_step(&mut self, user: &str, started: Instant) -> server::Auth {
        let allowed = self.allowed(user).await;
        let Some(kbd) = self.auth.kbd.as_mut() else {
            return self.fail(Method::KeyboardInteractive, allowed, started).await;
        };
        let round = tokio::select! {
            biased;
            round = kbd.rounds.recv() => round,
            answer = &mut kbd.task => {
                let answer = answer.unwrap_or(Auth::Reject);
                self.auth.kbd = None;
                return self.conclude(Method::KeyboardInteractive, user, allowed, answer, started).await;
            }
        };
        match round {
            Some(round) => {
                kbd.answer = Some(round.answers);
                let prompts: Vec<(std::borrow::Cow<'static, str>, bool)> =
                    round.prompts.into_iter().map(|p| (p.text.into(), p.echo)).collect();
                server::Auth::Partial {
                    name: round.name.into(),
                    instructions: round.instructions.into(),
                    prompts: prompts.into(),
                }
            }
            None => {
                // The handler finished without another round: take its answer.
                let answer = (&mut kbd.task).await.unwrap_or(Auth::Reject);
                self.auth.kbd = None;
                self.conclude(Method::KeyboardInteractive, user, allowed, answer, started).await
            }
        }
    }

    fn session_info(&self, id: ChannelId) -> SessionInfo {
        self.channels.get(&id).map(|c| c.info.clone()).unwrap_or_default()
    }

    /// Decides one channel request and replies to it.
    async fn channel_request(&mut self, id: ChannelId, kind: RequestKind, session: &mut server::Session) -> Option<Response> {
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
        let request = Request::new(self.connection.clone(), kind).with_session(self.session_info(id));
        let response = self.decide(request).instrument(span.clone()).await;
        let allowed = response.is_allowed();
        tracing::debug!(parent: &span, allowed, "channel request decided");
        if allowed {
            let _ = session.channel_success(id);
        } else {
            let _ = session.channel_failure(id);
        }
        allowed.then_some(response)
    }

    /// Shell, exec and subsystem: decide with the channel stream attached, then run the body.
    async fn start_body(&mut self, id: ChannelId, kind: RequestKind, session: &mut server::Session) {
        let Some(channel) = self.channels.get_mut(&id) else {
            let _ = session.channel_failure(id);
            return;
        };
        let (Some(write), true) = (channel.write.take(), channel.drain_early()) else {
            // A body already ran (or was refused) on this channel, or too much early data.
            let _ = session.channel_failure(id);
            return;
        };
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let stdin = Stdin::new(
            std::mem::take(&mut channel.early),
            channel.early_eof,
            channel.read.take(),
            self.connection.flow().clone(),
        );
        let io = ChannelIo::new(stdin, &write, Events::new(events_rx));
        channel.events = Some(events_tx);
        let span = channel.span.clone();
        let request = Request::new(self.connection.clone(), kind)
            .with_session(channel.info.clone())
            .with_io(io);
        let response = self.decide(request).instrument(span.clone()).await;
        let Response::Run(body) = response else {
            tracing::debug!(parent: &span, "refused");
            let _ = session.channel_failure(id);
            return;
        };
        let _ = session.channel_success(id);
        let handle = self.handle.get().cloned();
        let finished = (self.finished_tx.clone(), id, channel_token(&self.channels, id));
        let task = tokio::spawn(run_body(body, write, handle, finished).instrument(span));
        if let Some(channel) = self.channels.get_mut(&id) {
            channel.body = Some(task);
        }
    }

    /// Decides a channel request and, when allowed, records it on the channel
    /// (where extractors such as `Pty` and `Environment` find it later).
    async fn record_if_allowed(
        &mut self,
        id: ChannelId,
        kind: RequestKind,
        session: &mut server::Session,
        record: impl FnOnce(&mut SessionInfo),
    ) -> bool {
        let allowed = self.channel_request(id, kind, session).await.is_some();
        if allowed && let Some(ch) = self.channels.get_mut(&id) {
            record(&mut ch.info);
        }
        allowed
    }

    fn deliver(&mut self, id: ChannelId, event: ChannelEvent) {
        if let Some(tx) = self.channels.get(&id).and_then(|c| c.events.as_ref())
            && tx.try_send(event).is_err()
        {
            tracing::debug!(parent: &self.span, "channel body is not reading events; one dropped");
        }
    }
}

/// Answers a local-forwarding channel open: connect and pump, serve in-process, or refuse.
fn open_forward<S, C>(
    response: Response,
    channel: Channel<Msg>,
    reply: server::ChannelOpenHandle,
    slot: ForwardSlot,
    span: tracing::Span,
    flow: Arc<crate::channel::FlowControl>,
    connect: C,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    C: std::future::Future<Output = std::io::Result<S>> + Send + 'static,
{
    let task = async move {
        match response {
            Response::Forward(Forward::Connect) | Response::Accept => {
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(Ok(socket)) => {
                        reply.accept().await;
                        crate::forward::pump(channel, socket, flow).await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(%error, "forward destination refused");
                        reply.reject(OpenFailure::ConnectFailed.to_russh()).await;
                    }
                    Err(_) => {
                        tracing::info!("forward destination timed out");
                        reply.reject(OpenFailure::ConnectFailed.to_russh()).await;
                    }
                }
            }
            Response::Forward(Forward::Serve(serve)) => {
                reply.accept().await;
                let (read, write) = channel.split();
                let (_events_tx, events_rx) = mpsc::channel(1);
                let io = ChannelIo::new(Stdin::new(Vec::new(), false, Some(read), flow), &write, Events::new(events_rx));
                if AssertUnwindSafe(serve(io)).catch_unwind().await.is_err() {
                    tracing::error!("forwarding handler panicked; closing its channel");
                }
                let _ = write.eof().await;
                let _ = write.close().await;
            }
            other => {
                let reason = other.open_failure().unwrap_or(OpenFailure::AdministrativelyProhibited);
                tracing::debug!(?reason, "forward refused");
                reply.reject(reason.to_russh()).await;
            }
        }
        drop(slot);
    };
    tokio::spawn(task.instrument(span));
}

/// A remote-forward listener: TCP for `tcpip-forward`, Unix for `streamlocal-forward@openssh.com`.
trait ForwardListener: Send + 'static {
    type Socket: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// The next connection and its origin (address and port; empty and 0 for Unix sockets).
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<(Self::Socket, String, u32)>> + Send;
}

impl ForwardListener for tokio::net::TcpListener {
    type Socket = tokio::net::TcpStream;

    async fn accept(&self) -> std::io::Result<(Self::Socket, String, u32)> {
        let (socket, peer) = tokio::net::TcpListener::accept(self).await?;
        let _ = socket.set_nodelay(true);
        Ok((socket, peer.ip().to_string(), u32::from(peer.port())))
    }
}

impl ForwardListener for tokio::net::UnixListener {
    type Socket = tokio::net::UnixStream;

    async fn accept(&self) -> std::io::Result<(Self::Socket, String, u32)> {
        let (socket, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((socket, String::new(), 0))
    }
}

/// Opens the channel to the client for one accepted connection, given its origin.
type OpenToClient = Box<dyn Fn(String, u32) -> BoxFuture<'static, Result<Channel<Msg>, russh::Error>> + Send + Sync>;

/// Accepts until aborted; each connection, within the connection's forwarding
/// channel limit, becomes a channel to the client pumped both ways.
fn spawn_forward_listener<L: ForwardListener>(
    listener: L,
    slots: ForwardSlots,
    flow: Arc<crate::channel::FlowControl>,
    open: OpenToClient,
    span: tracing::Span,
) -> JoinHandle<()> {
    let open = Arc::new(open);
    let task = async move {
        loop {
            let (socket, origin, origin_port) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    crate::forward::accept_failed(error).await;
                    continue;
                }
            };
            let Some(slot) = slots.acquire() else { continue };
            let (open, flow) = (open.clone(), flow.clone());
            tokio::spawn(async move {
                match open(origin, origin_port).await {
                    Ok(channel) => crate::forward::pump(channel, socket, flow).await,
                    Err(error) => tracing::debug!(%error, "client refused the forwarded channel"),
                }
                drop(slot);
            });
        }
    };
    tokio::spawn(task.instrument(span))
}

/// The address a remote forward binds, under the `GatewayPorts` policy.
fn bind_address(requested: &str, policy: GatewayPorts) -> Option<std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let loopback = if requested.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6() && a.is_loopback()) {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    match policy {
        GatewayPorts::No => Some(loopback),
        GatewayPorts::Yes => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        GatewayPorts::ClientSpecified => match requested {
            "" | "*" | "0.0.0.0" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            "localhost" => Some(loopback),
            other => other.parse().ok(),
        },
    }
}

fn channel_token(channels: &HashMap<ChannelId, SessionChannel>, id: ChannelId) -> u64 {
    channels.get(&id).map_or(0, |c| c.token)
}

type FinishedReport = (mpsc::UnboundedSender<(ChannelId, u64)>, ChannelId, u64);

/// Runs an accepted body, then sends exit-status (or exit-signal), EOF and close, in that order.
async fn run_body(
    body: crate::request::ChannelBody,
    write: ChannelWriteHalf<Msg>,
    handle: Option<server::Handle>,
    finished: FinishedReport,
) {
    match AssertUnwindSafe(body).catch_unwind().await {
        Ok(ExitStatus::Code(code)) => {
            tracing::debug!(code, "channel body finished");
            let _ = write.exit_status(code).await;
        }
        Ok(ExitStatus::Signal { signal, core_dumped, message }) => {
            tracing::debug!(%signal, "channel body finished by signal");
            if let Some(handle) = handle {
                let _ = handle
                    .exit_signal_request(write.id(), signal.to_russh(), core_dumped, message, String::new())
                    .await;
            }
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "channel handler panicked; closing its channel");
        }
    }
    let _ = write.eof().await;
    let _ = write.close().await;
    let (tx, id, token) = finished;
    let _ = tx.send((id, token));
}

impl server::Handler for ConnectionHandler {
    type Error = crate::Error;

    /// Holds the client to a trickle while a channel buffer is over its high-water mark.
    fn adjust_window(&mut self, _channel: ChannelId, _current: u32) -> u32 {
        self.connection.flow().target()
    }

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        match self.shared.routes.banner_text() {
            Some(fut) => Ok(fut.await),
            None => Ok(None),
        }
    }

    async fn auth_none(&mut self, user: &str) -> Result<server::Auth, Self::Error> {
        let kind = RequestKind::AuthNone { user: user.to_owned() };
        self.authenticate(Method::None, user, kind).await
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<server::Auth, Self::Error> {
        let kind = RequestKind::AuthPassword { user: user.to_owned(), password: Secret::new(password) };
        self.authenticate(Method::Password, user, kind).await
    }

    /// A probe proves nothing: no handler is called and nothing is recorded.
    /// Keys not yet rejected for this user get PK_OK so the client signs.
    async fn auth_publickey_offered(&mut self, user: &str, offer: server::PublicKeyOffer<'_>) -> Result<server::Auth, Self::Error> {
        let started = Instant::now();
        self.begin_auth(user)?;
        let allowed = self.allowed(user).await;
        if !allowed.contains(Method::PublicKey) || self.auth.rejected_keys.contains(offer.public_key) {
            return Ok(self.fail(Method::PublicKey, allowed, started).await);
        }
        Ok(server::Auth::Accept)
    }

    async fn auth_publickey(&mut self, user: &str, key: server::VerifiedPublicKey<'_>) -> Result<server::Auth, Self::Error> {
        let public_key = key.public_key.clone();
        let kind = RequestKind::AuthPublicKey { user: user.to_owned(), key: public_key.clone() };
        // russh's probe and the signed request are one attempt: undo the probe's count.
        self.auth.requests = self.auth.requests.saturating_sub(1);
        let result = self.authenticate(Method::PublicKey, user, kind).await?;
        if !matches!(result, server::Auth::Accept) && !self.auth.factors.contains(Method::PublicKey) {
            self.auth.rejected_keys.insert(public_key);
        }
        Ok(result)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<server::Auth, Self::Error> {
        let started = Instant::now();
        match response {
            None => {
                self.begin_auth(user)?;
                self.auth.kbd = None;
                let allowed = self.allowed(user).await;
                if !allowed.contains(Method::KeyboardInteractive) {
                    return Ok(self.fail(Method::KeyboardInteractive, allowed, started).await);
                }
                let (rounds_tx, rounds) = mpsc::channel(1);
                let request = Request::new(
                    self.connection.clone(),
                    RequestKind::AuthKeyboardInteractive { user: user.to_owned(), submethods: submethods.to_owned() },
                )
                .with_factors(self.auth.factors.clone())
                .with_prompter(Prompter::new(rounds_tx, MAX_PROMPT_ROUNDS))
                .with_client(self.client());
                let service = self.service.clone();
                let span = self.span.clone();
                let task = tokio::spawn(
                    async move {
                        match service.oneshot(request).await {
                            Ok(response) => Self::auth_answer(response),
                            Err(error) => {
                                tracing::warn!(%error, "service error; keyboard-interactive refused");
                                Auth::Reject
                            }
                        }
                    }
                    .instrument(span),
                );
                self.auth.kbd = Some(KeyboardInteractive { rounds, answer: None, task });
            }
            Some(response) => {
                let answers: Vec<String> = response.map(|b| String::from_utf8_lossy(&b).into_owned()).collect();
                match self.auth.kbd.as_mut().and_then(|k| k.answer.take()) {
                    Some(tx) => {
                        let _ = tx.send(answers);
                    }
                    None => self.auth.kbd = None,
                }
            }
        }
        Ok(self.keyboard_interactive_step(user, started).await)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        self.reap_finished();
        if self.channels.len() >= self.shared.limits.max_sessions {
            tracing::info!(parent: &self.span, max = self.shared.limits.max_sessions, "session limit reached; channel refused");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let span = tracing::info_span!(parent: &self.span, "channel", id = %id, kind = "session");
        let request = Request::new(self.connection.clone(), RequestKind::ChannelOpenSession);
        let response = self.decide(request).instrument(span.clone()).await;
        if !response.is_allowed() {
            tracing::debug!(parent: &span, "session refused");
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        let (read, write) = channel.split();
        self.next_token += 1;
        self.channels.insert(
            id,
            SessionChannel {
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
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut server::Session) -> Result<(), Self::Error> {
        // Dropping the channel aborts a body still running: nobody can read its output.
        self.channels.remove(&channel);
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, _data: &[u8], session: &mut server::Session) -> Result<(), Self::Error> {
        if let Some(ch) = self.channels.get_mut(&channel)
            && ch.write.is_some()
            && !ch.drain_early()
        {
            tracing::warn!(parent: &ch.span, "too much data before the channel started; closing it");
            let _ = session.close(channel);
            self.channels.remove(&channel);
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(russh::Pty, u32)],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let pty = PtyRequest {
            term: term.to_owned(),
            size: WindowSize { cols: col_width, rows: row_height, pix_width, pix_height },
            modes: modes.iter().map(|(op, v)| (*op as u8, *v)).collect(),
        };
        self.record_if_allowed(channel, RequestKind::Pty(pty.clone()), session, |info| info.pty = Some(pty)).await;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let full = self.channels.get(&channel).is_some_and(|c| c.info.env.len() >= MAX_ENV_VARS);
        if full {
            let _ = session.channel_failure(channel);
            return Ok(());
        }
        let kind = RequestKind::Env { name: name.to_owned(), value: value.to_owned() };
        self.record_if_allowed(channel, kind, session, |info| info.env.push((name.to_owned(), value.to_owned())))
            .await;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut server::Session) -> Result<(), Self::Error> {
        self.start_body(channel, RequestKind::Shell, session).await;
        Ok(())
    }

    async fn exec_request(&mut self, channel: ChannelId, data: &[u8], session: &mut server::Session) -> Result<(), Self::Error> {
        self.start_body(channel, RequestKind::Exec(Command::new(data)), session).await;
        Ok(())
    }

    async fn subsystem_request(&mut self, channel: ChannelId, name: &str, session: &mut server::Session) -> Result<(), Self::Error> {
        self.start_body(channel, RequestKind::Subsystem(name.to_owned()), session).await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let size = WindowSize { cols: col_width, rows: row_height, pix_width, pix_height };
        let record = |info: &mut SessionInfo| {
            if let Some(pty) = info.pty.as_mut() {
                pty.size = size;
            }
        };
        if self.record_if_allowed(channel, RequestKind::WindowChange(size), session, record).await {
            self.deliver(channel, ChannelEvent::WindowChange(size));
        }
        Ok(())
    }

    async fn signal(&mut self, channel: ChannelId, signal: russh::Sig, session: &mut server::Session) -> Result<(), Self::Error> {
        let signal = Signal::from_russh(&signal);
        if self.channel_request(channel, RequestKind::Signal(signal.clone()), session).await.is_some() {
            self.deliver(channel, ChannelEvent::Signal(signal));
        }
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        single_connection: bool,
        auth_protocol: &str,
        auth_cookie: &str,
        screen: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let x11 = X11Request {
            single_connection,
            auth_protocol: auth_protocol.to_owned(),
            auth_cookie: auth_cookie.to_owned(),
            screen,
        };
        self.record_if_allowed(channel, RequestKind::X11(x11.clone()), session, |info| info.x11 = Some(x11)).await;
        Ok(())
    }

    async fn agent_request(&mut self, channel: ChannelId, session: &mut server::Session) -> Result<bool, Self::Error> {
        // channel_request replies; russh's own reply for this request is then a no-op.
        Ok(self.record_if_allowed(channel, RequestKind::AgentForward, session, |info| info.agent = true).await)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(slot) = self.forward_slot() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let span = tracing::info_span!(parent: &self.span, "channel", id = %channel.id(), kind = "direct-tcpip", to = %format_args!("{host_to_connect}:{port_to_connect}"));
        let target = TcpTarget {
            host: host_to_connect.to_owned(),
            port: port_to_connect,
            originator_host: originator_address.to_owned(),
            originator_port,
        };
        let response = self.decide(Request::new(self.connection.clone(), RequestKind::DirectTcpip(target))).instrument(span.clone()).await;
        let host = host_to_connect.to_owned();
        let connect = async move {
            let port = u16::try_from(port_to_connect)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "port out of range"))?;
            let socket = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let _ = socket.set_nodelay(true);
            Ok(socket)
        };
        open_forward(response, channel, reply, slot, span, self.connection.flow().clone(), connect);
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(slot) = self.forward_slot() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let span = tracing::info_span!(parent: &self.span, "channel", id = %channel.id(), kind = "direct-streamlocal", to = socket_path);
        let kind = RequestKind::DirectStreamlocal { path: socket_path.to_owned() };
        let response = self.decide(Request::new(self.connection.clone(), kind)).instrument(span.clone()).await;
        let path = socket_path.to_owned();
        open_forward(response, channel, reply, slot, span, self.connection.flow().clone(), async move { tokio::net::UnixStream::connect(path).await });
        Ok(())
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, _session: &mut server::Session) -> Result<bool, Self::Error> {
        let limits = &self.shared.limits;
        if self.listeners.len() >= limits.max_listeners {
            tracing::info!(parent: &self.span, max = limits.max_listeners, "listener limit reached; tcpip-forward refused");
            return Ok(false);
        }
        let Ok(requested) = u16::try_from(*port) else { return Ok(false) };
        if requested != 0 && requested < 1024 && !limits.allow_privileged_ports {
            tracing::info!(parent: &self.span, port = requested, "privileged port refused");
            return Ok(false);
        }
        let Some(ip) = bind_address(address, limits.gateway_ports) else {
            tracing::info!(parent: &self.span, address, "bind address not allowed or not an address");
            return Ok(false);
        };
        let target = ListenTarget { address: address.to_owned(), port: *port };
        if !self.decide(Request::new(self.connection.clone(), RequestKind::TcpipForward(target))).await.is_allowed() {
            return Ok(false);
        }
        let listener = match tokio::net::TcpListener::bind((ip, requested)).await {
            Ok(l) => l,
            Err(error) => {
                tracing::info!(parent: &self.span, %error, "tcpip-forward bind failed");
                return Ok(false);
            }
        };
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(requested);
        if *port == 0 {
            *port = u32::from(bound);
        }
        let (Some(handle), key) = (self.handle.get().cloned(), (address.to_owned(), u32::from(bound))) else { return Ok(false) };
        tracing::info!(parent: &self.span, address, port = bound, %ip, "remote forward listening");
        let connected_address = address.to_owned();
        let open: OpenToClient = Box::new(move |origin, origin_port| {
            let (handle, connected_address) = (handle.clone(), connected_address.clone());
            Box::pin(async move {
                handle.channel_open_forwarded_tcpip(connected_address, u32::from(bound), origin, origin_port).await
            })
        });
        let task = spawn_forward_listener(
            listener,
            self.forward_slots.clone(),
            self.connection.flow().clone(),
            open,
            self.span.clone(),
        );
        if let Some(old) = self.listeners.tcp.insert(key, task) {
            old.abort();
        }
        Ok(true)
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _session: &mut server::Session) -> Result<bool, Self::Error> {
        let key = (address.to_owned(), port);
        if !self.listeners.tcp.contains_key(&key) {
            return Ok(false);
        }
        let target = ListenTarget { address: address.to_owned(), port };
        if !self.decide(Request::new(self.connection.clone(), RequestKind::CancelTcpipForward(target))).await.is_allowed() {
            return Ok(false);
        }
        if let Some(task) = self.listeners.tcp.remove(&key) {
            task.abort();
            // The task owns the socket: wait until it is dropped so the port is
            // closed (and free to bind again) before the client hears success.
            let _ = task.await;
            tracing::info!(parent: &self.span, address, port, "remote forward cancelled");
        }
        Ok(true)
    }

    async fn streamlocal_forward(&mut self, socket_path: &str, _session: &mut server::Session) -> Result<bool, Self::Error> {
        if self.listeners.len() >= self.shared.limits.max_listeners {
            return Ok(false);
        }
        let kind = RequestKind::StreamlocalForward { path: socket_path.to_owned() };
        if !self.decide(Request::new(self.connection.clone(), kind)).await.is_allowed() {
            return Ok(false);
        }
        let listener = match tokio::net::UnixListener::bind(socket_path) {
            Ok(l) => l,
            Err(error) => {
                tracing::info!(parent: &self.span, %error, path = socket_path, "streamlocal-forward bind failed");
                return Ok(false);
            }
        };
        let Some(handle) = self.handle.get().cloned() else { return Ok(false) };
        let path = socket_path.to_owned();
        let open: OpenToClient = Box::new(move |_, _| {
            let (handle, path) = (handle.clone(), path.clone());
            Box::pin(async move { handle.channel_open_forwarded_streamlocal(path).await })
        });
        let task = spawn_forward_listener(
            listener,
            self.forward_slots.clone(),
            self.connection.flow().clone(),
            open,
            self.span.clone(),
        );
        if let Some(old) = self.listeners.unix.insert(socket_path.to_owned(), task) {
            old.abort();
        }
        Ok(true)
    }

    async fn cancel_streamlocal_forward(&mut self, socket_path: &str, _session: &mut server::Session) -> Result<bool, Self::Error> {
        if !self.listeners.unix.contains_key(socket_path) {
            return Ok(false);
        }
        let kind = RequestKind::CancelStreamlocalForward { path: socket_path.to_owned() };
        if !self.decide(Request::new(self.connection.clone(), kind)).await.is_allowed() {
            return Ok(false);
        }
        if let Some(task) = self.listeners.unix.remove(socket_path) {
            task.abort();
            let _ = task.await;
            let _ = std::fs::remove_file(socket_path);
            tracing::info!(parent: &self.span, path = socket_path, "remote socket forward cancelled");
        }
        Ok(true)
    }

}
