//! One connection from accept to disconnect: the `Connect` decision (where
//! the limit layers admit it and set its limits, see `crate::limit`), the
//! handshake and login grace, the russh event loop driving
//! [`handler::ConnectionHandler`], the unused-connection and global channel
//! timeouts, graceful shutdown, and the close and disconnect hooks.
//!
//! The pieces of a connection's state live apart: [`auth::Authentication`]
//! (the authentication state machine), [`sessions::Sessions`] (the session
//! channel table and the bodies running on it), and the forwarding runtime in
//! `crate::forward` (listeners and local forwards). [`handler`] is the thin
//! adapter that russh calls and that delegates to them.

mod auth;
mod cut;
mod handler;
mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::Instrument;

use crate::connection::Connection;
use crate::error::{ConnectionError, ConnectionErrorKind};
use crate::limits::Limits;
use crate::request::{Request, RequestKind, Response};
use crate::routes::Routes;
use crate::stack::Stack;

/// A callback run when a connection ends, with everything known about it.
pub(crate) type DisconnectHook = Arc<dyn Fn(&Connection) + Send + Sync>;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) routes: Routes,
    pub(crate) stack: Stack,
    pub(crate) limits: Limits,
    pub(crate) config: Arc<russh::server::Config>,
    pub(crate) next_id: AtomicU64,
    pub(crate) on_disconnect: Option<DisconnectHook>,
    /// What SFTP and SCP sessions may hold open, server-wide and per user.
    pub(crate) open_files: Arc<crate::open_files::OpenFiles>,
    /// The server-wide budget for bytes buffered on channels.
    pub(crate) buffers: Arc<crate::channel::BufferPool>,
}

/// Where a server is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Stop accepting; unauthenticated connections are dropped, sessions may finish.
    Draining,
    /// Disconnect everyone.
    Disconnect,
}

/// The errors russh's handler may return; never public (russh's error type
/// would leak into the API): [`serve`] turns them into a [`ConnectionError`].
#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    TooManyAuthRequests,
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl From<HandlerError> for ConnectionError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::TooManyAuthRequests => ConnectionError::new(ConnectionErrorKind::TooManyAuthRequests, None),
            HandlerError::Ssh(russh::Error::IO(io)) => ConnectionError::new(ConnectionErrorKind::Io, Some(io.into())),
            HandlerError::Ssh(other) => ConnectionError::new(ConnectionErrorKind::Protocol, Some(other.into())),
        }
    }
}

/// What a connection's parts need to decide: the stack, the connection and its span.
#[derive(Clone)]
pub(crate) struct Decider {
    stack: Stack,
    connection: Arc<Connection>,
    span: tracing::Span,
}

impl Decider {
    /// Sends `kind` through the service stack, inside `span` (the connection's
    /// or a channel's); a layer error refuses.
    pub(crate) fn decide(&self, request: Request, span: &tracing::Span) -> impl Future<Output = Response> + Send + 'static {
        let name = request.kind().name();
        let stack = self.stack.clone();
        // What the login's restrictions forbid is refused before any layer sees it.
        let checked = crate::restrictions::enforce(request);
        async move {
            let request = match checked {
                Ok(request) => request,
                Err(reason) => {
                    tracing::info!(request = name, reason, "refused by the login's restrictions");
                    return Response::Reject;
                }
            };
            // A handler or layer that panics refuses its request; the connection goes on.
            match AssertUnwindSafe(stack.oneshot(request)).catch_unwind().await {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => {
                    tracing::warn!(request = name, %error, "service error; refused");
                    Response::Reject
                }
                Err(panic) => {
                    tracing::error!(request = name, panic = %panic_message(panic.as_ref()), "handler panicked; refused");
                    Response::Reject
                }
            }
        }
        .instrument(span.clone())
    }

    pub(crate) fn request(&self, kind: RequestKind) -> Request {
        Request::new(self.connection.clone(), kind)
    }

    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Queues a disconnect with `message`; russh sends it from its own loop.
    pub(crate) fn disconnect(&self, reason: russh::Disconnect, message: &'static str) {
        if let Some(handle) = self.connection.handle().cloned() {
            tokio::spawn(async move {
                let _ = handle.disconnect(reason, message.into(), String::new()).await;
            });
        }
    }
}

/// The message a panic carried, when it was a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("")
}

/// Serves one accepted TCP connection.
pub(crate) async fn serve_tcp(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<Phase>,
) -> Result<(), ConnectionError> {
    let _ = socket.set_nodelay(true);
    let local = socket.local_addr().ok();
    serve(shared, crate::quickack::QuickAck::new(socket), Some(peer), local, shutdown).await
}

/// Serves one connection over any byte stream, from accept to disconnect.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    shutdown: watch::Receiver<Phase>,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let peer_field = peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let span = tracing::info_span!("connection", id, peer = %peer_field, user = tracing::field::Empty, certificate = tracing::field::Empty);
    let flow = crate::channel::FlowControl::new(
        shared.config.window_size,
        shared.limits.max_channel_buffers_per_connection,
        shared.buffers.clone(),
    );
    let connection = Arc::new(Connection::new(id, peer, local, flow));
    let result = run(shared.clone(), stream, connection.clone(), shutdown, span.clone()).instrument(span.clone()).await;
    let _guard = span.enter();
    connection.closed(result.as_ref().err());
    if let Some(hook) = &shared.on_disconnect {
        hook(&connection);
    }
    result
}

async fn run<S>(
    shared: Arc<Shared>,
    stream: S,
    connection: Arc<Connection>,
    mut shutdown: watch::Receiver<Phase>,
    span: tracing::Span,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let decider = Decider { stack: shared.stack.clone(), connection: connection.clone(), span };
    // This future lives as long as the connection, at the size of its largest
    // state: what only the start needs (the decision, the handshake) is boxed
    // and freed once done.
    if !Box::pin(decider.decide(decider.request(RequestKind::Connect), decider.span())).await.is_allowed() {
        tracing::info!("connection refused by policy");
        return Ok(());
    }
    connection.set_admitted();
    tracing::debug!("connected");
    // russh runs the session in a task of its own that outlives a dropped
    // future; `_cut` ends its stream on every return from here (see `cut`).
    let (stream, _cut) = cut::Severable::new(stream);
    // The limits and the handler (about 1 KiB) move into the boxed handshake
    // inside this block: a local they were moved out of would keep its room
    // in this future, allocated once for the connection's life.
    let (start, channels_empty, login_grace_time, unused_timeout, channel_timeouts) = {
        // What the limit layers set on `Connect`; later changes are not looked at.
        let mut limits = std::mem::take(&mut *connection.limits());
        let channel_timeouts = limits.channel_timeouts.take().map(|entries| Arc::new(crate::idle::ChannelTimeouts::new(entries)));
        if let Some(timeouts) = &channel_timeouts {
            connection.set_channel_timeouts(timeouts.clone());
        }
        let (login_grace_time, unused_timeout) = (limits.login_grace_time, limits.unused_connection_timeout);
        let handler = handler::ConnectionHandler::new(shared.clone(), decider, limits);
        let empty = handler.channels_empty();
        let start = Box::pin(russh::server::run_stream(shared.config.clone(), stream, handler));
        (start, empty, login_grace_time, unused_timeout, channel_timeouts)
    };
    // The timers that are not configured take no room at all.
    let mut unused = unused_timeout.map(|timeout| Box::pin(unused_connection(connection.clone(), channels_empty, timeout)));
    let grace = async move {
        match login_grace_time {
            Some(time) => tokio::time::sleep(time).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(grace);
    let session = tokio::select! {
        s = start => s.map_err(ConnectionError::from)?,
        () = &mut grace => {
            tracing::info!("login grace time exceeded before the version exchange; dropped");
            return Err(ConnectionError::new(ConnectionErrorKind::LoginGraceTimeExceeded, None));
        }
    };
    let handle = session.handle();
    connection.set_handle(handle.clone());
    tokio::pin!(session);
    let mut grace_done = false;
    let mut global_expired = channel_timeouts.map(|timeouts| {
        Box::pin(async move {
            loop {
                timeouts.global_expired().await;
            }
        })
    });
    loop {
        tokio::select! {
            result = &mut session => {
                tracing::debug!("disconnected");
                return result.map_err(ConnectionError::from);
            }
            () = &mut grace, if !grace_done => {
                grace_done = true;
                if !connection.is_authenticated() {
                    tracing::info!("login grace time exceeded; disconnecting");
                    // Sent only once key exchange is over; a client stalled in it gets the cut.
                    disconnect_then_cut(&handle, "Login grace time exceeded", &mut session).await;
                    return Err(ConnectionError::new(ConnectionErrorKind::LoginGraceTimeExceeded, None));
                }
            }
            Some(()) = OptionFuture::from(unused.as_mut()), if unused.is_some() => {
                tracing::info!(timeout_secs = unused_timeout.unwrap_or_default().as_secs(), "unused connection timeout: no open channel; disconnecting");
                disconnect_then_cut(&handle, "Unused connection timeout", &mut session).await;
                return Err(ConnectionError::new(ConnectionErrorKind::UnusedConnectionTimeout, None));
            }
            Some(()) = OptionFuture::from(global_expired.as_mut()), if global_expired.is_some() => {}
            changed = shutdown.changed() => {
                let phase = if changed.is_ok() { *shutdown.borrow_and_update() } else { Phase::Disconnect };
                let unauthenticated = !connection.is_authenticated();
                if phase == Phase::Disconnect || changed.is_err() || (phase == Phase::Draining && unauthenticated) {
                    disconnect_then_cut(&handle, "Server shutting down", &mut session).await;
                    return Ok(());
                }
            }
        }
    }
}

/// Resolves when the connection, once authenticated, has had no open channel
/// for `timeout`: OpenSSH's `UnusedConnectionTimeout`.
async fn unused_connection(connection: Arc<Connection>, mut empty: watch::Receiver<bool>, timeout: Duration) {
    connection.authenticated().await;
    loop {
        // The sender lives as long as the connection's handler: an error means it is ending.
        if empty.wait_for(|empty| *empty).await.map(drop).is_err() {
            return std::future::pending().await;
        }
        let busy = tokio::select! {
            () = tokio::time::sleep(timeout) => return,
            busy = empty.wait_for(|empty| !*empty) => busy.map(drop),
        };
        if busy.is_err() {
            return std::future::pending().await;
        }
    }
}

/// How long a queued disconnect may take to reach the client before the
/// connection is cut without it.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// Queues a disconnect with `message` and waits a moment for russh to send it
/// and end the session; the caller's return then cuts the stream regardless.
async fn disconnect_then_cut<F: Future + Unpin>(handle: &russh::server::Handle, message: &str, session: &mut F) {
    // Boxed: taken once at most, and inline it would widen the connection's
    // task (allocated once, at its largest state) for the connection's life.
    let _ = Box::pin(tokio::time::timeout(DISCONNECT_GRACE, async {
        let _ = handle.disconnect(russh::Disconnect::ByApplication, message.into(), String::new()).await;
        session.await;
    }))
    .await;
}
