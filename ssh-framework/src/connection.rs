//! [`Connection`]: what is known about one client connection, shared by every
//! request, handler and channel of it.
//!
//! Besides the transport facts (id, addresses), a connection carries the
//! result of authentication (the user, the methods passed, the key used) and
//! a map of [`Extensions`] that handlers and layers fill: what an
//! authentication handler attaches (the account it looked up, a role) is
//! there for every later handler of the same connection.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::auth::Factors;
use crate::channel::FlowControl;
use crate::error::ConnectionError;
use crate::extensions::Extensions;
use crate::idle::{ChannelTimeouts, ChannelWatch};
use russh::keys::PublicKey;

/// Facts about one client connection, shared by all of its requests.
pub struct Connection {
    id: u64,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    authenticated: OnceLock<Authenticated>,
    extensions: Mutex<Extensions>,
    flow: Arc<FlowControl>,
    handle: OnceLock<russh::server::Handle>,
    on_close: Mutex<Vec<CloseHook>>,
    auth_failures: AtomicU32,
    admitted: AtomicBool,
    limits: Mutex<ConnectionLimits>,
    channel_timeouts: OnceLock<Arc<ChannelTimeouts>>,
    /// Takes a place under `MaxChannels` for a channel opened to the client.
    channel_places: OnceLock<ChannelPlaces>,
    /// Woken when authentication succeeds.
    authenticated_now: tokio::sync::Notify,
}

/// Something a connection holds until a point in its life (an admission
/// place until authentication, a session's place under a per-user cap);
/// dropping it gives it back.
pub(crate) type Held = Box<dyn Send + Sync>;

/// Takes a place for one more session of a user, or `None` at the cap.
pub(crate) type SessionPlaces = Arc<dyn Fn(&str) -> Option<Held> + Send + Sync>;

/// Takes a place for one more channel of the connection, or `None` at the cap.
pub(crate) type ChannelPlaces = Box<dyn Fn() -> Option<Held> + Send + Sync>;

/// What the limit layers (`crate::limit`) set for one connection on its
/// `Connect` request; the connection's parts read it once the connection is
/// allowed. `None` is no limit. Its types need nothing of `limit`, so the
/// connection holds it without depending on the layers.
#[derive(Default)]
pub(crate) struct ConnectionLimits {
    pub(crate) login_grace_time: Option<Duration>,
    pub(crate) max_auth_tries: Option<u32>,
    pub(crate) max_auth_requests: Option<u32>,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) max_channels: Option<usize>,
    pub(crate) max_listeners: Option<usize>,
    pub(crate) user_sessions: Option<SessionPlaces>,
    /// The admission place held until authentication (`limit::Startups`).
    pub(crate) startup: Option<Held>,
    /// `ChannelTimeout`'s entries: type pattern and interval.
    pub(crate) channel_timeouts: Option<Vec<(String, Duration)>>,
    pub(crate) unused_connection_timeout: Option<Duration>,
}

/// A callback run once when its connection ends.
type CloseHook = Box<dyn FnOnce(&Connection, Option<&ConnectionError>) + Send>;

/// The outcome of a successful authentication.
#[derive(Debug, Clone)]
struct Authenticated {
    user: String,
    factors: Factors,
    key: Option<PublicKey>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(id: u64, peer: Option<SocketAddr>, local: Option<SocketAddr>, flow: FlowControl) -> Self {
        Connection {
            id,
            peer,
            local,
            authenticated: OnceLock::new(),
            extensions: Mutex::new(Extensions::new()),
            flow: Arc::new(flow),
            handle: OnceLock::new(),
            on_close: Mutex::new(Vec::new()),
            auth_failures: AtomicU32::new(0),
            admitted: AtomicBool::new(false),
            limits: Mutex::default(),
            channel_timeouts: OnceLock::new(),
            channel_places: OnceLock::new(),
            authenticated_now: tokio::sync::Notify::new(),
        }
    }

    /// A number unique to this connection within the server process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address, when the transport has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The server's address the client connected to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The authenticated user, once authentication has succeeded.
    pub fn user(&self) -> Option<&str> {
        self.authenticated.get().map(|a| a.user.as_str())
    }

    /// Whether authentication has succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.get().is_some()
    }

    /// The methods that passed, in order, once authentication has succeeded.
    pub fn factors(&self) -> Option<&Factors> {
        self.authenticated.get().map(|a| &a.factors)
    }

    /// The public key whose signature was verified, when `publickey` was one of the methods that passed.
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.authenticated.get().and_then(|a| a.key.as_ref())
    }

    /// How many authentication attempts failed on this connection so far,
    /// counted as OpenSSH counts them (across user names; a client's first
    /// `none` probe is free).
    pub fn auth_failures(&self) -> u32 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// Whether the stack allowed this connection's `Connect` request (every
    /// limit and layer let it in): a close hook tells a connection that ended
    /// having had its chance from one refused on the way in.
    pub fn was_admitted(&self) -> bool {
        self.admitted.load(Ordering::Relaxed)
    }

    pub(crate) fn set_admitted(&self) {
        self.admitted.store(true, Ordering::Relaxed);
    }

    pub(crate) fn count_auth_failure(&self) -> u32 {
        self.auth_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A clone of this connection's extension of type `T`, if one was inserted.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().get::<T>().cloned()
    }

    /// Attaches `value` to this connection for every later handler (replacing
    /// a value of the same type, which is returned).
    ///
    /// During authentication, what an attempt attached is kept only if the
    /// attempt succeeds (fully or partially): a rejected attempt's values are
    /// rolled back, and when the client changes the user name the extensions
    /// go back to what they were before the first authentication request (what
    /// a layer attached at connect stays).
    pub fn insert_extension<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock().insert(value)
    }

    /// Removes and returns this connection's extension of type `T`.
    pub fn remove_extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().remove::<T>()
    }

    /// A copy of all of this connection's extensions.
    pub fn extensions(&self) -> Extensions {
        self.lock().clone()
    }

    /// Runs `hook` once when this connection ends, with the error it ended
    /// with (`None` for a clean disconnect).
    ///
    /// A layer that keeps per-connection books registers one on the `Connect`
    /// request: it runs after the connection's last request was decided and
    /// before the server's [`on_disconnect`](crate::ServerBuilder::on_disconnect)
    /// hook, in the connection's span. Hooks registered after the connection
    /// ended never run.
    pub fn on_close<F>(&self, hook: F)
    where
        F: FnOnce(&Connection, Option<&ConnectionError>) + Send + 'static,
    {
        self.on_close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Box::new(hook));
    }

    /// Runs the close hooks, in the order they were registered.
    pub(crate) fn closed(&self, error: Option<&ConnectionError>) {
        let hooks = std::mem::take(&mut *self.on_close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for hook in hooks {
            hook(self, error);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Extensions> {
        // A handler that panicked while holding the lock left a map that is
        // still a valid map: keep serving it.
        self.extensions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn replace_extensions(&self, extensions: Extensions) {
        *self.lock() = extensions;
    }

    pub(crate) fn set_authenticated(&self, user: &str, factors: Factors, key: Option<PublicKey>) {
        debug_assert!(!factors.as_slice().is_empty(), "authenticated without a method");
        let _ = self.authenticated.set(Authenticated { user: user.to_owned(), factors, key });
        self.authenticated_now.notify_waiters();
    }

    /// Resolves once authentication has succeeded.
    pub(crate) async fn authenticated(&self) {
        loop {
            let notified = self.authenticated_now.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_authenticated() {
                return;
            }
            notified.await;
        }
    }

    /// Installs the channel timeouts set on `Connect` ([`ChannelTimeout`](crate::limit::ChannelTimeout)).
    pub(crate) fn set_channel_timeouts(&self, timeouts: Arc<ChannelTimeouts>) {
        let _ = self.channel_timeouts.set(timeouts);
    }

    pub(crate) fn channel_timeouts(&self) -> Option<&Arc<ChannelTimeouts>> {
        self.channel_timeouts.get()
    }

    /// Installs the connection's count of open channels (`MaxChannels`).
    pub(crate) fn set_channel_places(&self, places: ChannelPlaces) {
        let _ = self.channel_places.set(places);
    }

    /// A place for one more channel, `None` at the cap; one without a limit
    /// when no count is installed (a connection still being set up).
    pub(crate) fn channel_place(&self) -> Option<Option<Held>> {
        match self.channel_places.get() {
            Some(places) => places().map(Some),
            None => Some(None),
        }
    }

    /// What the limit layers set for this connection (see `crate::limit`).
    pub(crate) fn limits(&self) -> MutexGuard<'_, ConnectionLimits> {
        self.limits.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn flow(&self) -> &Arc<FlowControl> {
        &self.flow
    }

    pub(crate) fn set_handle(&self, handle: russh::server::Handle) {
        let _ = self.handle.set(handle);
    }

    pub(crate) fn handle(&self) -> Option<&russh::server::Handle> {
        self.handle.get()
    }
}

impl Connection {
    /// The watch for a new channel of `channel_type` (an OpenSSH type name).
    pub(crate) fn channel_watch(&self, channel_type: &str) -> ChannelWatch {
        match self.channel_timeouts() {
            Some(timeouts) => timeouts.watch(channel_type),
            None => ChannelWatch::unwatched(),
        }
    }
}
