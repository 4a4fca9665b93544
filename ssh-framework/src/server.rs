//! The server runtime: builder, listeners, limits, host keys and graceful shutdown.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::keys::{Algorithm, HashAlg, PrivateKey};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use crate::connection::ConnectionHandler;
use crate::request::{Connection, Request, RequestKind, Response};
use crate::routes::{Handlers, RouteConflict, Routes};

/// The error type of layers in the service stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service stack after type erasure: what each connection calls.
pub(crate) type BoxedService = BoxCloneSyncService<Request, Response, BoxError>;

/// Errors from building or running a server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error (binding a listener, reading a host key).
    Io(io::Error),
    /// A host key could not be read, generated or written.
    HostKey(String),
    /// Two registered handlers claim the same decision.
    Conflict(RouteConflict),
    /// The builder has no listen address.
    NoListenAddress,
    /// A protocol error on a connection.
    Ssh(russh::Error),
    /// The client sent more authentication requests than any honest client does.
    TooManyAuthRequests,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::HostKey(e) => write!(f, "host key: {e}"),
            Error::Conflict(e) => e.fmt(f),
            Error::NoListenAddress => f.write_str("no listen address was given"),
            Error::Ssh(e) => write!(f, "SSH protocol error: {e}"),
            Error::TooManyAuthRequests => f.write_str("too many authentication requests"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Conflict(e) => Some(e),
            Error::Ssh(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<russh::Error> for Error {
    fn from(e: russh::Error) -> Self {
        Error::Ssh(e)
    }
}

impl From<RouteConflict> for Error {
    fn from(e: RouteConflict) -> Self {
        Error::Conflict(e)
    }
}

/// The server's limits. Defaults follow OpenSSH's sshd.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_auth_tries: u32,
    pub(crate) login_grace_time: Duration,
    pub(crate) rejection_delay: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) max_startups: MaxStartups,
    pub(crate) inactivity_timeout: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) max_listeners: usize,
    pub(crate) max_forward_channels: usize,
    pub(crate) gateway_ports: crate::forward::GatewayPorts,
    pub(crate) allow_privileged_ports: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_auth_tries: 6,
            login_grace_time: Duration::from_secs(120),
            rejection_delay: Duration::from_secs(1),
            max_sessions: 10,
            max_startups: MaxStartups::default(),
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: None,
            max_listeners: 16,
            max_forward_channels: 256,
            gateway_ports: crate::forward::GatewayPorts::No,
            allow_privileged_ports: false,
        }
    }
}

/// OpenSSH's `MaxStartups start:rate:full`: from `start` unauthenticated
/// connections on, new ones are dropped with a probability rising linearly from
/// `rate`% to 100% at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    /// Unauthenticated connections before random early drop begins.
    pub start: usize,
    /// Drop probability in percent at `start`.
    pub rate: u8,
    /// Unauthenticated connections at which every new one is dropped.
    pub full: usize,
}

impl Default for MaxStartups {
    fn default() -> Self {
        MaxStartups { start: 10, rate: 30, full: 100 }
    }
}

impl MaxStartups {
    fn admits(&self, unauthenticated: usize) -> bool {
        if unauthenticated >= self.full {
            return false;
        }
        if unauthenticated < self.start {
            return true;
        }
        let span = (self.full - self.start).max(1) as f64;
        let p = f64::from(self.rate) + (100.0 - f64::from(self.rate)) * (unauthenticated - self.start) as f64 / span;
        rand::random_range(0.0..100.0) >= p
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) routes: Routes,
    pub(crate) service: BoxedService,
    pub(crate) limits: Limits,
    config: Arc<russh::server::Config>,
    startups: Arc<Semaphore>,
    next_id: AtomicU64,
}

type LayerFn = Box<dyn FnOnce(BoxedService) -> BoxedService + Send>;

enum HostKeySource {
    Key(Box<PrivateKey>),
    File(PathBuf),
}

/// Builds a [`Server`]: handlers, tower layers, listen addresses, host keys and limits.
///
/// ```no_run
/// # struct App;
/// # #[ssh_framework::server] impl App {}
/// # async fn run() -> Result<(), ssh_framework::Error> {
/// let server = ssh_framework::Server::builder()
///     .handlers(App)
///     .listen("127.0.0.1:2222".parse().unwrap())
///     .host_key_file("host_ed25519_key")
///     .build()
///     .await?;
/// server.run().await
/// # }
/// ```
#[must_use]
pub struct ServerBuilder {
    routes: Routes,
    conflicts: Vec<RouteConflict>,
    layers: Vec<LayerFn>,
    listen: Vec<SocketAddr>,
    host_keys: Vec<HostKeySource>,
    limits: Limits,
    server_id: Option<String>,
    window_size: u32,
    max_packet_size: u32,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("routes", &self.routes)
            .field("layers", &self.layers.len())
            .field("listen", &self.listen)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            routes: Routes::new(),
            conflicts: Vec::new(),
            layers: Vec::new(),
            listen: Vec::new(),
            host_keys: Vec::new(),
            limits: Limits::default(),
            server_id: None,
            window_size: 8 << 20,
            max_packet_size: 32 << 10,
        }
    }
}

impl ServerBuilder {
    /// Registers the handlers of a `#[server]` type. Call it once per type; a
    /// decision claimed twice fails [`build`](ServerBuilder::build) with [`Error::Conflict`].
    pub fn handlers<H: Handlers>(mut self, handlers: H) -> Self {
        if let Err(conflict) = self.routes.add(handlers) {
            self.conflicts.push(conflict);
        }
        self
    }

    /// Wraps the service stack in a `tower` layer. Layers added later run first
    /// (they wrap everything added before them), as in axum.
    ///
    /// A layer's error refuses the request and is logged.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxedService> + Send + 'static,
        L::Service: Service<Request, Response = Response> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |inner: BoxedService| {
            BoxCloneSyncService::new(layer.layer(inner).map_err(Into::into))
        }));
        self
    }

    /// Adds a listen address (repeatable; port 0 picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Adds a host key.
    pub fn host_key(mut self, key: PrivateKey) -> Self {
        self.host_keys.push(HostKeySource::Key(Box::new(key)));
        self
    }

    /// Adds a host key from an OpenSSH private key file; when the file does not
    /// exist, an ed25519 key is generated and saved there with mode 0600 (and
    /// its public half beside it as `.pub`), then reused on later starts.
    pub fn host_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.host_keys.push(HostKeySource::File(path.into()));
        self
    }

    /// Failed authentication attempts before disconnect (OpenSSH `MaxAuthTries`, default 6).
    pub fn max_auth_tries(mut self, n: u32) -> Self {
        self.limits.max_auth_tries = n.max(1);
        self
    }

    /// Time allowed from connect to successful authentication (OpenSSH `LoginGraceTime`, default 120 s).
    pub fn login_grace_time(mut self, d: Duration) -> Self {
        self.limits.login_grace_time = d;
        self
    }

    /// Minimum time before a failed password or keyboard-interactive attempt is answered (default 1 s).
    pub fn rejection_delay(mut self, d: Duration) -> Self {
        self.limits.rejection_delay = d;
        self
    }

    /// Session channels open at once on one connection (OpenSSH `MaxSessions`, default 10).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.limits.max_sessions = n;
        self
    }

    /// Unauthenticated connection limits (OpenSSH `MaxStartups`, default 10:30:100).
    pub fn max_startups(mut self, m: MaxStartups) -> Self {
        self.limits.max_startups = m;
        self
    }

    /// Disconnects a connection with no traffic for this long (default 600 s; `None` never).
    pub fn inactivity_timeout(mut self, d: Option<Duration>) -> Self {
        self.limits.inactivity_timeout = d;
        self
    }

    /// Sends keepalives after this long without traffic (default off).
    pub fn keepalive_interval(mut self, d: Option<Duration>) -> Self {
        self.limits.keepalive_interval = d;
        self
    }

    /// Remote-forward listeners (TCP and Unix) one connection may hold (default 16).
    pub fn max_listeners(mut self, n: usize) -> Self {
        self.limits.max_listeners = n;
        self
    }

    /// Forwarding channels (local and remote) open at once on one connection (default 256).
    pub fn max_forward_channels(mut self, n: usize) -> Self {
        self.limits.max_forward_channels = n;
        self
    }

    /// Which addresses remote forwards bind (OpenSSH `GatewayPorts`, default loopback only).
    pub fn gateway_ports(mut self, policy: crate::forward::GatewayPorts) -> Self {
        self.limits.gateway_ports = policy;
        self
    }

    /// Whether remote forwards may listen on ports below 1024 (default no).
    pub fn allow_privileged_ports(mut self, allow: bool) -> Self {
        self.limits.allow_privileged_ports = allow;
        self
    }

    /// The software version in the identification string (`SSH-2.0-<id>`).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// The channel window the client may fill before waiting (default 8 MiB).
    pub fn window_size(mut self, bytes: u32) -> Self {
        self.window_size = bytes;
        self
    }

    /// The largest data packet the client may send (default 32 KiB).
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Loads host keys, builds the service stack and binds the listeners.
    pub async fn build(self) -> Result<Server, Error> {
        if let Some(conflict) = self.conflicts.into_iter().next() {
            return Err(Error::Conflict(conflict));
        }
        let mut keys = Vec::new();
        for source in self.host_keys {
            keys.push(match source {
                HostKeySource::Key(k) => *k,
                HostKeySource::File(path) => load_or_generate_host_key(&path)?,
            });
        }
        if keys.is_empty() {
            return Err(Error::HostKey("no host key was given (use host_key or host_key_file)".into()));
        }
        let mut service: BoxedService = BoxCloneSyncService::new(self.routes.clone().map_err(|e| match e {}));
        for layer in self.layers {
            service = layer(service);
        }
        let config = russh_config(&self.limits, keys, self.server_id, self.window_size, self.max_packet_size);
        let mut listeners = Vec::new();
        for addr in &self.listen {
            listeners.push(TcpListener::bind(addr).await?);
        }
        let (shutdown, _) = watch::channel(Phase::Running);
        Ok(Server {
            shared: Arc::new(Shared {
                routes: self.routes,
                service,
                startups: Arc::new(Semaphore::new(self.limits.max_startups.full)),
                limits: self.limits,
                config: Arc::new(config),
                next_id: AtomicU64::new(1),
            }),
            listeners,
            shutdown,
            tracker: TaskTracker::new(),
        })
    }
}

fn russh_config(
    limits: &Limits,
    keys: Vec<PrivateKey>,
    server_id: Option<String>,
    window_size: u32,
    max_packet_size: u32,
) -> russh::server::Config {
    use russh::cipher;
    let preferred = russh::Preferred {
        // aes128-gcm is russh's fastest cipher here but not offered by default.
        cipher: std::borrow::Cow::Owned(vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_128_CTR,
            cipher::AES_192_CTR,
            cipher::AES_256_CTR,
        ]),
        ..russh::Preferred::default()
    };
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-{}", server_id.unwrap_or_else(|| format!("ssh-framework_{}", env!("CARGO_PKG_VERSION")))).into(),
        ),
        // The framework answers failures itself (delay only for guessable secrets,
        // never for the client's first `none` probe or a partial success).
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        // Counted by the framework with OpenSSH's rules.
        max_auth_attempts: 0,
        keys,
        window_size,
        maximum_packet_size: max_packet_size,
        inactivity_timeout: limits.inactivity_timeout,
        keepalive_interval: limits.keepalive_interval,
        nodelay: true,
        preferred,
        ..Default::default()
    }
}

/// Reads an OpenSSH private key, or generates and saves an ed25519 key when the file is missing.
pub fn load_or_generate_host_key(path: &Path) -> Result<PrivateKey, Error> {
    match PrivateKey::read_openssh_file(path) {
        Ok(key) => return Ok(key),
        Err(e) if path.exists() => return Err(Error::HostKey(format!("{}: {e}", path.display()))),
        Err(_) => {}
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Error::HostKey(format!("generating an ed25519 key: {e}")))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| Error::HostKey(format!("encoding the key: {e}")))?;
    write_private(path, text.as_bytes())?;
    if let Ok(public) = key.public_key().to_openssh() {
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        std::fs::write(PathBuf::from(pub_path), format!("{public}\n"))?;
    }
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "generated host key");
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Disconnect,
}

/// A running SSH server: listeners plus the shared service stack.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    shutdown: watch::Sender<Phase>,
    tracker: TaskTracker,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .field("routes", &self.shared.routes)
            .finish_non_exhaustive()
    }
}

/// Asks a running server to shut down gracefully; cloneable, usable from any task.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: watch::Sender<Phase>,
}

impl ShutdownHandle {
    /// Stops accepting; running sessions get the server's drain deadline.
    pub fn shutdown(&self) {
        self.tx.send_if_modified(|p| {
            let changed = *p == Phase::Running;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
    }
}

impl Server {
    /// A builder with OpenSSH's defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// The SHA-256 fingerprints of the host keys, as `ssh-keygen -l` prints them.
    pub fn host_key_fingerprints(&self) -> Vec<String> {
        self.shared.config.keys.iter().map(|k| k.fingerprint(HashAlg::Sha256).to_string()).collect()
    }

    /// A handle that starts a graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { tx: self.shutdown.clone() }
    }

    /// Serves until the process ends or a [`ShutdownHandle`] asks to stop, then drains for 30 s.
    pub async fn run(self) -> Result<(), Error> {
        let mut rx = self.shutdown.subscribe();
        let stop = async move {
            let _ = rx.wait_for(|p| *p != Phase::Running).await;
        };
        self.run_until(stop, Duration::from_secs(30)).await
    }

    /// Serves until `signal` completes; then stops accepting, lets sessions end
    /// within `drain`, and disconnects those still open.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send, drain: Duration) -> Result<(), Error> {
        let Server { shared, listeners, shutdown, tracker } = self;
        if listeners.is_empty() {
            return Err(Error::NoListenAddress);
        }
        let mut accepting = tokio::task::JoinSet::new();
        for listener in listeners {
            let shared = shared.clone();
            let tracker = tracker.clone();
            let shutdown = shutdown.clone();
            accepting.spawn(accept_loop(listener, shared, tracker, shutdown));
        }
        let mut phase = shutdown.subscribe();
        tokio::select! {
            () = signal => {}
            _ = phase.wait_for(|p| *p != Phase::Running) => {}
        }
        shutdown.send_replace(Phase::Draining);
        accepting.shutdown().await;
        tracker.close();
        tracing::info!(connections = tracker.len(), ?drain, "shutting down: draining sessions");
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::info!(connections = tracker.len(), "drain deadline passed; disconnecting");
            shutdown.send_replace(Phase::Disconnect);
            let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        }
        Ok(())
    }

    /// Serves one connection over any byte stream (an in-memory duplex in tests,
    /// a socket accepted elsewhere), returning when it ends.
    pub async fn serve_connection<S>(&self, stream: S, peer: Option<SocketAddr>) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve(self.shared.clone(), stream, peer, None, self.shutdown.subscribe()).await
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tracker: TaskTracker, shutdown: watch::Sender<Phase>) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE, ENFILE, ECONNABORTED...: the listener must survive them.
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let rx = shutdown.subscribe();
        tracker.spawn(async move {
            let local = socket.local_addr().ok();
            if let Err(error) = serve_tcp(shared, socket, peer, local, rx).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

async fn serve_tcp(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shutdown: watch::Receiver<Phase>,
) -> Result<(), Error> {
    let _ = socket.set_nodelay(true);
    serve(shared, crate::quickack::QuickAck::new(socket), Some(peer), local, shutdown).await
}

async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    mut shutdown: watch::Receiver<Phase>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let peer_field = peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let span = tracing::info_span!("connection", id, peer = %peer_field, user = tracing::field::Empty);
    async move {
        // Unauthenticated connections hold a permit until they authenticate.
        let in_use = shared.limits.max_startups.full - shared.startups.available_permits();
        let permit = match shared.startups.clone().try_acquire_owned() {
            Ok(permit) if shared.limits.max_startups.admits(in_use) => permit,
            _ => {
                tracing::info!(unauthenticated = in_use, "too many unauthenticated connections; dropped");
                return Ok(());
            }
        };
        let connection = Arc::new(Connection::new(id, peer, local, shared.config.window_size));
        let request = Request::new(connection.clone(), RequestKind::Connect);
        match shared.service.clone().oneshot(request).await {
            Ok(r) if r.is_allowed() => {}
            Ok(_) => {
                tracing::info!("connection refused by policy");
                return Ok(());
            }
            Err(error) => {
                tracing::info!(%error, "connection refused by a layer");
                return Ok(());
            }
        }
        tracing::debug!("connected");
        let handle_cell: crate::connection::HandleCell = Arc::new(OnceLock::new());
        let authenticated = Arc::new(AtomicBool::new(false));
        let handler = ConnectionHandler::new(
            shared.clone(),
            connection,
            handle_cell.clone(),
            authenticated.clone(),
            Some(permit),
            tracing::Span::current(),
        );
        let grace = tokio::time::sleep(shared.limits.login_grace_time);
        tokio::pin!(grace);
        let session = tokio::select! {
            s = russh::server::run_stream(shared.config.clone(), stream, handler) => s?,
            () = &mut grace => {
                tracing::info!("login grace time exceeded before key exchange");
                return Ok(());
            }
        };
        let handle = session.handle();
        let _ = handle_cell.set(handle.clone());
        tokio::pin!(session);
        let mut grace_done = false;
        loop {
            tokio::select! {
                result = &mut session => {
                    tracing::debug!("disconnected");
                    return result;
                }
                () = &mut grace, if !grace_done => {
                    grace_done = true;
                    if !authenticated.load(Ordering::Acquire) {
                        tracing::info!("login grace time exceeded; disconnecting");
                        let _ = handle.disconnect(russh::Disconnect::ByApplication, "Login grace time exceeded".into(), String::new()).await;
                    }
                }
                changed = shutdown.changed() => {
                    let phase = if changed.is_ok() { *shutdown.borrow_and_update() } else { Phase::Disconnect };
                    let unauthenticated = !authenticated.load(Ordering::Acquire);
                    if phase == Phase::Disconnect || (phase == Phase::Draining && unauthenticated) {
                        let _ = handle.disconnect(russh::Disconnect::ByApplication, "Server shutting down".into(), String::new()).await;
                        if phase == Phase::Disconnect || changed.is_err() {
                            // Give the disconnect a moment to be written, then drop the connection.
                            let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}
