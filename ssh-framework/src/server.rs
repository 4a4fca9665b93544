//! The server runtime: builder, listeners, limits, host keys and graceful shutdown.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use russh::keys::{Algorithm, Certificate, HashAlg, PrivateKey};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::{Layer, Service};

use crate::connection::Connection;
use crate::error::{BoxError, ConnectionError, Error, ErrorKind};
use crate::lifecycle::{self, DisconnectHook, Phase, Shared};
use crate::limit::{self, LimitSet, MaxStartups};
use crate::limits::{GatewayPorts, Limits};
use crate::request::{Request, Response};
use crate::routes::{Handlers, RouteConflict, Routes};
use crate::open_files::OpenFiles;
use crate::stack::Stack;
use crate::threads::ConnectionThreads;

type LayerFn = Box<dyn FnOnce(Stack) -> Stack + Send>;

enum HostKeySource {
    Key(Box<PrivateKey>),
    File(PathBuf),
}

enum HostCertificateSource {
    Certificate(Box<Certificate>),
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
    host_certificates: Vec<HostCertificateSource>,
    limits: Limits,
    limits_set: LimitSet,
    server_id: Option<String>,
    window_size: u32,
    max_packet_size: u32,
    connection_threads: Option<usize>,
    on_disconnect: Option<DisconnectHook>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("routes", &self.routes)
            .field("layers", &self.layers.len())
            .field("listen", &self.listen)
            .field("limits", &self.limits)
            .field("limit_layers", &self.limits_set)
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
            host_certificates: Vec::new(),
            limits: Limits::default(),
            limits_set: LimitSet::default(),
            server_id: None,
            window_size: 8 << 20,
            max_packet_size: 32 << 10,
            connection_threads: None,
            on_disconnect: None,
        }
    }
}

impl ServerBuilder {
    /// Registers the handlers of a `#[server]` type. Call it once per type; a
    /// decision claimed twice fails [`build`](ServerBuilder::build) with an [`Error`] of kind [`ErrorKind::RouteConflict`].
    pub fn handlers<H: Handlers>(mut self, handlers: H) -> Self {
        if let Err(conflict) = self.routes.add(handlers) {
            self.conflicts.push(conflict);
        }
        self
    }

    /// Wraps the service stack in a `tower` layer. Layers added later run first
    /// (they wrap everything added before them), as in axum.
    ///
    /// The layer wraps a [`Stack`], the stack built so far; a layer's error
    /// refuses the request and is logged.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Stack> + Send + 'static,
        L::Service: Service<Request, Response = Response> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |inner: Stack| Stack::new(layer.layer(inner))));
        self
    }

    /// Runs `hook` when a connection ends, with everything known about it
    /// (the authenticated user, the methods passed, the extensions handlers
    /// attached), inside the connection's span.
    pub fn on_disconnect<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Connection) + Send + Sync + 'static,
    {
        self.on_disconnect = Some(Arc::new(hook));
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

    /// Serves an OpenSSH host certificate for one of the host keys (OpenSSH's
    /// `HostCertificate`; repeatable, one per key). See
    /// [`host_certificate_file`](ServerBuilder::host_certificate_file).
    pub fn host_certificate(mut self, certificate: Certificate) -> Self {
        self.host_certificates.push(HostCertificateSource::Certificate(Box::new(certificate)));
        self
    }

    /// Serves the OpenSSH host certificate in `path` (OpenSSH's
    /// `HostCertificate`; repeatable, one per key), so that clients trusting
    /// the CA that signed it connect without a trust-on-first-use prompt.
    ///
    /// As with sshd, a certificate is served only when named: a `KEY-cert.pub`
    /// beside a [`host_key_file`](ServerBuilder::host_key_file) is not picked
    /// up by itself. [`build`](ServerBuilder::build) fails with an [`Error`] of
    /// kind [`ErrorKind::HostKey`] when the file cannot be read, or the
    /// certificate is a user certificate, certifies none of the host keys, is
    /// expired or has a signature that does not verify. Clients see the
    /// certificate under its algorithm's `-cert-v01@openssh.com` name, offered
    /// before the plain key.
    ///
    /// Sign the host key's public half with a CA key, naming the host names
    /// clients use as principals (`-V` sets a validity period; without it the
    /// certificate never expires):
    ///
    /// ```text
    /// ssh-keygen -t ed25519 -f host_ca                  # once: the CA
    /// ssh-keygen -s host_ca -h -I host1 -n host1.example.com,host1 -V +52w host_ed25519_key.pub
    /// # writes host_ed25519_key-cert.pub
    /// ```
    ///
    /// and give clients the CA's public key (`host_ca.pub`) in `known_hosts`,
    /// with the host names (patterns) it may vouch for:
    ///
    /// ```text
    /// @cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...
    /// ```
    ///
    /// On a port other than 22 OpenSSH's `ssh` (9.2 here) takes an
    /// `@cert-authority` pattern naming the bare host (`*.example.com`) or the
    /// host and port (`[*.example.com]:2222`); it matches the principals
    /// against the bare host name.
    pub fn host_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.host_certificates.push(HostCertificateSource::File(path.into()));
        self
    }

    /// Failed authentication attempts before disconnect (OpenSSH `MaxAuthTries`,
    /// default 6): installs [`MaxAuthTries`](crate::limit::MaxAuthTries).
    pub fn max_auth_tries(self, n: u32) -> Self {
        self.limit(limit::MaxAuthTries::new(n))
    }

    /// Time allowed from connect to successful authentication (OpenSSH
    /// `LoginGraceTime`, default 120 s): installs [`LoginGraceTime`](crate::limit::LoginGraceTime).
    pub fn login_grace_time(self, d: Duration) -> Self {
        self.limit(limit::LoginGraceTime::new(d))
    }

    /// Minimum time before a failed password or keyboard-interactive attempt is answered (default 1 s).
    pub fn rejection_delay(mut self, d: Duration) -> Self {
        self.limits.rejection_delay = d;
        self
    }

    /// Session channels open at once on one connection (OpenSSH `MaxSessions`,
    /// default 10): installs [`MaxSessions`](crate::limit::MaxSessions).
    pub fn max_sessions(self, n: usize) -> Self {
        self.limit(limit::MaxSessions::new(n))
    }

    /// Unauthenticated connection limits (OpenSSH `MaxStartups`; default
    /// 100:30:1000, see [`MaxStartups`]'s `Default`): sets them in the
    /// installed [`Startups`](crate::limit::Startups) limit.
    pub fn max_startups(self, m: MaxStartups) -> Self {
        let startups = self.limits_set.get::<limit::Startups>().cloned().unwrap_or_default();
        let per_source = startups.per_source_max();
        let (v4, v6) = startups.net_block();
        self.limit(limit::Startups::new(m).per_source(per_source).net_block_size(v4, v6))
    }

    /// Unauthenticated connections one source may hold at once (OpenSSH's
    /// `PerSourceMaxStartups`; default none, as OpenSSH): sets it in the
    /// installed [`Startups`](crate::limit::Startups) limit.
    #[doc(alias = "PerSourceMaxStartups")]
    pub fn per_source_max_startups(self, n: Option<usize>) -> Self {
        let startups = self.limits_set.get::<limit::Startups>().cloned().unwrap_or_default();
        self.limit(startups.per_source(n))
    }

    /// The prefix lengths that group client addresses into one source
    /// (OpenSSH's `PerSourceNetBlockSize`; default 32 and 128): sets them in
    /// the installed [`Startups`](crate::limit::Startups) and, as in OpenSSH,
    /// [`Penalties`](crate::limit::Penalties) limits.
    #[doc(alias = "PerSourceNetBlockSize")]
    pub fn per_source_net_block_size(mut self, ipv4: u8, ipv6: u8) -> Self {
        let startups = self.limits_set.get::<limit::Startups>().cloned().unwrap_or_default();
        if let Some(penalties) = self.limits_set.get::<limit::Penalties>().and_then(|p| p.penalties().cloned()) {
            self = self.limit(limit::Penalties::new(penalties.net_block_size(ipv4, ipv6)));
        }
        self.limit(startups.net_block_size(ipv4, ipv6))
    }

    /// Disconnects a connection with no traffic for this long (default 600 s; `None` never).
    pub fn inactivity_timeout(mut self, d: Option<Duration>) -> Self {
        self.limits.inactivity_timeout = d;
        self
    }

    /// Sends a keepalive request after this long without anything from the
    /// client (OpenSSH's `ClientAliveInterval`; default off). A client that
    /// answers none of [`keepalive_count_max`](ServerBuilder::keepalive_count_max)
    /// of them in a row is disconnected: a dead peer or a frozen client is
    /// dropped after about `interval × (count max + 1)`.
    #[doc(alias = "ClientAliveInterval")]
    pub fn keepalive_interval(mut self, d: Option<Duration>) -> Self {
        self.limits.keepalive_interval = d;
        self
    }

    /// Keepalives sent without any reply before the client is disconnected
    /// (OpenSSH's `ClientAliveCountMax`, default 3; 0 never disconnects).
    /// Only with a [`keepalive_interval`](ServerBuilder::keepalive_interval).
    #[doc(alias = "ClientAliveCountMax")]
    pub fn keepalive_count_max(mut self, n: usize) -> Self {
        self.limits.keepalive_count_max = n;
        self
    }

    /// Remote-forward listeners (TCP and Unix) one connection may hold
    /// (default 16): installs [`MaxListeners`](crate::limit::MaxListeners).
    pub fn max_listeners(self, n: usize) -> Self {
        self.limit(limit::MaxListeners::new(n))
    }

    /// Channels of every kind open at once on one connection (default 256):
    /// installs [`MaxChannels`](crate::limit::MaxChannels).
    pub fn max_channels(self, n: usize) -> Self {
        self.limit(limit::MaxChannels::new(n))
    }

    /// Installs a limit, replacing the installed one of the same type (every
    /// default of [`limit`](crate::limit) is installed from the start).
    ///
    /// Installed limits run before any layer added with
    /// [`layer`](ServerBuilder::layer), in the order they were first
    /// installed, on each connection's `Connect` request.
    pub fn limit<L: limit::Limit>(mut self, limit: L) -> Self {
        self.limits_set.insert(limit);
        self
    }

    /// Removes the installed limit of type `L`: connections are no longer
    /// held to it.
    pub fn without_limit<L: limit::Limit>(mut self) -> Self {
        self.limits_set.remove::<L>();
        self
    }

    /// Which addresses remote forwards bind (OpenSSH `GatewayPorts`, default loopback only).
    pub fn gateway_ports(mut self, policy: GatewayPorts) -> Self {
        self.limits.gateway_ports = policy;
        self
    }

    /// Whether remote forwards may listen on ports below 1024 (default no).
    pub fn allow_privileged_ports(mut self, allow: bool) -> Self {
        self.limits.allow_privileged_ports = allow;
        self
    }

    /// Permission bits cleared on the socket a remote Unix-socket forward
    /// (`ssh -R /path:...`) creates, as OpenSSH's `StreamLocalBindMask`
    /// (default `0o177`: only the server's user may connect). The socket gets
    /// the mode before it exists in the filesystem (the process umask, shared
    /// by every thread, is left alone) and may end up stricter under a stricter
    /// umask; a platform where that cannot be done refuses the forward rather
    /// than expose the socket.
    pub fn stream_local_bind_mask(mut self, mask: u32) -> Self {
        self.limits.stream_local_bind_mask = mask & 0o777;
        self
    }

    /// Files and directories the built-in SFTP and SCP servers may hold open
    /// at once for all clients together (default: half the process's
    /// open-file limit, the other half staying for connections and child
    /// processes). An open beyond it is refused with "Too many open files".
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.limits.max_open_files = Some(n.max(1));
        self
    }

    /// Files and directories the built-in SFTP and SCP servers may hold open
    /// for one user, over all their sessions (default: a quarter of
    /// [`max_open_files`](ServerBuilder::max_open_files)), so that one user
    /// cannot stop others from opening files.
    pub fn max_open_files_per_user(mut self, n: usize) -> Self {
        self.limits.max_open_files_per_user = Some(n.max(1));
        self
    }

    /// Bytes one connection may hold in the buffers of its channels (session
    /// stdin and every forwarding channel) before it stops reading from the
    /// client (default 64 MiB; from half of it the client is held to a
    /// trickle). A connection that has to wait for 60 seconds without any of
    /// its buffers draining is disconnected. Keep it above what one channel
    /// may buffer, `8 MiB + 2 × window + 1 MiB` (25 MiB with the default
    /// window): below, one channel whose body waits for the client before
    /// reading more could stop its own connection.
    pub fn max_channel_buffers_per_connection(mut self, bytes: usize) -> Self {
        self.limits.max_channel_buffers_per_connection = bytes;
        self
    }

    /// Bytes all connections together may hold in channel buffers before each
    /// of them stops reading from its client (default 1 GiB; from half of it
    /// every client is held to a trickle).
    pub fn max_channel_buffers(mut self, bytes: usize) -> Self {
        self.limits.max_channel_buffers = bytes;
        self
    }

    /// Bytes of environment variables (names and values) one session channel
    /// may hold (default 64 KiB). Beyond it, and for a name over 256 bytes, a
    /// value over 32 KiB or a 257th variable, `env` requests are refused
    /// before any handler sees them. OpenSSH bounds them only by its packet
    /// size; the bound here keeps a channel's environment cheap to hold.
    pub fn max_env_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_env_bytes = bytes;
        self
    }

    /// The software version in the identification string (`SSH-2.0-<id>`).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// The channel window the client may fill before waiting (default 8 MiB).
    ///
    /// Every channel is opened with a full window, which a client may fill
    /// without waiting for anything: with many channels that is more than a
    /// connection's channel budget
    /// ([`max_channel_buffers_per_connection`](ServerBuilder::max_channel_buffers_per_connection)),
    /// past which the connection stops reading instead.
    pub fn window_size(mut self, bytes: u32) -> Self {
        self.window_size = bytes;
        self
    }

    /// The largest data packet the client may send (default 32 KiB).
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// The threads that serve connections (default: one per CPU, as
    /// [`std::thread::available_parallelism`] counts them).
    ///
    /// Each connection runs, with every task it spawns (its channel bodies
    /// included), on one of these threads, in a current-thread runtime of
    /// its own: the tasks of one connection hand each other data without
    /// waking another thread, as in sshd's one process per connection. A new
    /// connection goes to the thread serving the fewest. Handlers therefore
    /// run on these threads, not on the runtime that called
    /// [`run`](Server::run); what they share with it (channels, locks,
    /// sockets) works across runtimes as usual.
    ///
    /// `0` serves every connection as tasks on the runtime that runs the
    /// server instead, stealing work among its workers.
    /// [`Server::serve_connection`] always serves on the caller's runtime.
    pub fn connection_threads(mut self, n: usize) -> Self {
        self.connection_threads = Some(n);
        self
    }

    /// Loads host keys, builds the service stack and binds the listeners.
    pub async fn build(self) -> Result<Server, Error> {
        if let Some(conflict) = self.conflicts.into_iter().next() {
            return Err(conflict.into());
        }
        let mut keys = Vec::new();
        for source in self.host_keys {
            keys.push(match source {
                HostKeySource::Key(k) => *k,
                HostKeySource::File(path) => load_or_generate_host_key(&path)?,
            });
        }
        if keys.is_empty() {
            return Err(Error::new(ErrorKind::HostKey, "no host key was given (use host_key or host_key_file)"));
        }
        let certificates = load_host_certificates(self.host_certificates, &keys)?;
        let mut stack = Stack::new(self.routes.clone());
        for layer in self.layers {
            stack = layer(stack);
        }
        // Outermost: the limits act on a connection before any layer of the user's.
        let stack = Stack::new(tower::Layer::layer(&self.limits_set, stack));
        let mut config = russh_config(&self.limits, keys, self.server_id, self.window_size, self.max_packet_size);
        // The list russh sends before any handler gave one (a signed request
        // refused before ours is asked): the methods with a handler, never
        // russh's default of every method it knows.
        config.methods = self.routes.methods().to_russh();
        config.certificates = certificates;
        let mut listeners = Vec::new();
        for addr in &self.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| Error::with_source(ErrorKind::Io, format!("binding {addr}"), e))?;
            listeners.push(listener);
        }
        let nofile = raise_open_file_limit();
        let (max_open_files, max_open_files_per_user) = self.limits.open_files(nofile);
        tracing::info!(nofile, max_open_files, max_open_files_per_user, "open-file limit and the SFTP and SCP budget");
        let (shutdown, _) = watch::channel(Phase::Running);
        Ok(Server {
            shared: Arc::new(Shared {
                routes: self.routes,
                stack,
                buffers: Arc::new(crate::channel::BufferPool::new(self.limits.max_channel_buffers)),
                limits: self.limits,
                config: Arc::new(config),
                next_id: AtomicU64::new(1),
                on_disconnect: self.on_disconnect,
                open_files: OpenFiles::new(max_open_files, max_open_files_per_user),
            }),
            listeners,
            shutdown,
            tracker: TaskTracker::new(),
            connection_threads: self
                .connection_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)),
        })
    }
}

/// Raises the soft limit on open files to the hard limit, as far as the
/// kernel allows, and returns the soft limit now in force.
///
/// Every connection, forward, child process pipe and SFTP handle is a
/// descriptor of this one process; the common soft limit of 1,024 is a
/// default kept for programs using `select(2)`, which this server does not.
/// Children inherit the raised limit.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    /// Linux's default `fs.nr_open`: the most a soft limit may be when the hard one is unlimited.
    const NR_OPEN: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(NR_OPEN);
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: limit.maximum }) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            hard
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-file limit; keeping it");
            soft
        }
    }
}

fn russh_config(
    limits: &Limits,
    keys: Vec<PrivateKey>,
    server_id: Option<String>,
    window_size: u32,
    max_packet_size: u32,
) -> russh::server::Config {
    use russh::{cipher, kex};
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
        // russh's safe list less DH groups 15 and 17, which OpenSSH's sshd does not offer.
        kex: std::borrow::Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::DH_GEX_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
            kex::DH_G14_SHA256,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        // Compression only after authentication, as OpenSSH since 7.4: RFC 4253's
        // `zlib` would run the decompressor on unauthenticated input.
        compression: std::borrow::Cow::Borrowed(&[russh::compression::NONE, russh::compression::ZLIB_LEGACY]),
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
        keepalive_max: limits.keepalive_count_max,
        nodelay: true,
        preferred,
        ..Default::default()
    }
}

/// Reads the host certificates and checks each one against the host keys and the clock.
fn load_host_certificates(sources: Vec<HostCertificateSource>, keys: &[PrivateKey]) -> Result<Vec<Certificate>, Error> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut certificates = Vec::with_capacity(sources.len());
    for source in sources {
        let (certificate, origin) = match source {
            HostCertificateSource::Certificate(c) => {
                let origin = format!("host certificate {:?}", c.key_id());
                (*c, origin)
            }
            HostCertificateSource::File(path) => {
                let origin = format!("host certificate {}", path.display());
                let certificate =
                    Certificate::read_file(&path).map_err(|e| Error::with_source(ErrorKind::HostKey, format!("reading {origin}"), e))?;
                (certificate, origin)
            }
        };
        check_host_certificate(&certificate, keys, now).map_err(|why| Error::new(ErrorKind::HostKey, format!("{origin}: {why}")))?;
        tracing::info!(
            key_id = certificate.key_id(),
            serial = certificate.serial(),
            principals = ?certificate.valid_principals(),
            ca = %certificate.signature_key().fingerprint(HashAlg::Sha256),
            valid_before = certificate.valid_before(),
            "serving host certificate"
        );
        if now < certificate.valid_after() {
            tracing::warn!(
                key_id = certificate.key_id(),
                valid_after = certificate.valid_after(),
                "host certificate is not valid yet: clients refuse it until then"
            );
        }
        certificates.push(certificate);
    }
    Ok(certificates)
}

/// Why `certificate` cannot be served at unix time `now` beside `keys`, if it cannot.
fn check_host_certificate(certificate: &Certificate, keys: &[PrivateKey], now: u64) -> Result<(), String> {
    if !certificate.cert_type().is_host() {
        return Err("a user certificate, not a host certificate (sign with ssh-keygen -h)".to_owned());
    }
    if !keys.iter().any(|k| k.public_key().key_data() == certificate.public_key()) {
        let certified = certificate.public_key().fingerprint(HashAlg::Sha256);
        let ours: Vec<String> = keys.iter().map(|k| k.fingerprint(HashAlg::Sha256).to_string()).collect();
        return Err(format!("certifies key {certified}, which is none of the host keys ({})", ours.join(", ")));
    }
    if now >= certificate.valid_before() {
        return Err(format!("expired (valid before unix time {}, now {now})", certificate.valid_before()));
    }
    // ssh-key verifies a signature only together with a trusted CA and a
    // time: the CA is the one that signed it (whether to trust it is each
    // client's decision), the time one inside its validity period.
    let ca = certificate.signature_key().fingerprint(HashAlg::Sha256);
    certificate
        .validate_at(now.max(certificate.valid_after()), [&ca])
        .map_err(|_| "its signature does not verify, or its validity period is empty".to_owned())
}

/// Reads an OpenSSH private key, or generates and saves an ed25519 key when the file is missing.
pub fn load_or_generate_host_key(path: &Path) -> Result<PrivateKey, Error> {
    match PrivateKey::read_openssh_file(path) {
        Ok(key) => return Ok(key),
        Err(e) if path.exists() => {
            return Err(Error::with_source(ErrorKind::HostKey, format!("reading {}", path.display()), e));
        }
        Err(_) => {}
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Error::with_source(ErrorKind::HostKey, "generating an ed25519 key", e))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| Error::with_source(ErrorKind::HostKey, "encoding the key", e))?;
    write_new(path, text.as_bytes(), 0o600)?;
    if let Ok(public) = key.public_key().to_openssh() {
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        let pub_path = PathBuf::from(pub_path);
        // A stale `.pub` (or a symlink planted there) is removed, never
        // written through: the new file is created exclusively.
        if std::fs::symlink_metadata(&pub_path).is_ok() {
            std::fs::remove_file(&pub_path)
                .map_err(|e| Error::with_source(ErrorKind::HostKey, format!("removing {}", pub_path.display()), e))?;
        }
        write_new(&pub_path, format!("{public}\n").as_bytes(), 0o644)?;
    }
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "generated host key");
    Ok(key)
}

/// Writes a file that must not exist yet (`O_CREAT | O_EXCL`, so a symlink at
/// `path`, even a dangling one, is refused rather than followed).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|e| Error::with_source(ErrorKind::HostKey, format!("writing {}", path.display()), e))
}

/// A running SSH server: listeners plus the shared service stack.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    shutdown: watch::Sender<Phase>,
    tracker: TaskTracker,
    connection_threads: usize,
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

    /// Serves until SIGINT (Ctrl-C), SIGTERM or a [`ShutdownHandle`] asks to
    /// stop; then stops accepting, drops unauthenticated connections, lets
    /// running sessions finish for up to 30 s and disconnects the rest. A
    /// second SIGINT or SIGTERM while draining disconnects everyone at once.
    ///
    /// Use [`run_until`](Server::run_until) for another stop signal or drain deadline.
    pub async fn run(self) -> Result<(), Error> {
        // One task watches the signals for the whole run, so a second signal
        // cannot slip by between the first one and a new watcher.
        let handle = self.shutdown_handle();
        let signals = tokio::spawn(async move {
            let Some(mut signals) = StopSignals::new() else { return };
            loop {
                let signal = signals.recv().await;
                if *handle.tx.borrow() == Phase::Running {
                    tracing::info!(signal, "stop signal received; draining (send it again to stop at once)");
                    handle.shutdown();
                } else {
                    tracing::info!(signal, "second stop signal; disconnecting every session");
                    handle.tx.send_replace(Phase::Disconnect);
                    return;
                }
            }
        });
        let mut rx = self.shutdown.subscribe();
        let stop = async move {
            let _ = rx.wait_for(|p| *p != Phase::Running).await;
        };
        let result = self.run_until(stop, Duration::from_secs(30)).await;
        signals.abort();
        result
    }

    /// Serves until `signal` completes; then stops accepting, lets sessions end
    /// within `drain`, and disconnects those still open.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send, drain: Duration) -> Result<(), Error> {
        let Server { shared, listeners, shutdown, tracker, connection_threads } = self;
        if listeners.is_empty() {
            return Err(Error::new(ErrorKind::NoListenAddress, "no listen address was given"));
        }
        // Dropped last, when this future ends or is dropped: connections still on them end too.
        let threads = match connection_threads {
            0 => None,
            n => Some(Arc::new(
                ConnectionThreads::start(n)
                    .map_err(|e| Error::with_source(ErrorKind::Io, "starting the connection threads", e))?,
            )),
        };
        let mut accepting = tokio::task::JoinSet::new();
        for listener in listeners {
            let shared = shared.clone();
            let tracker = tracker.clone();
            let shutdown = shutdown.clone();
            accepting.spawn(accept_loop(listener, shared, tracker, shutdown, threads.clone()));
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
        let mut phase = shutdown.subscribe();
        let hurried = async move {
            let _ = phase.wait_for(|p| *p == Phase::Disconnect).await;
        };
        let drained = tokio::select! {
            drained = tokio::time::timeout(drain, tracker.wait()) => drained.is_ok(),
            () = hurried => false,
        };
        if !drained {
            tracing::info!(connections = tracker.len(), "drain deadline passed; disconnecting");
            shutdown.send_replace(Phase::Disconnect);
            let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        }
        Ok(())
    }

    /// Serves one connection over any byte stream (an in-memory duplex in tests,
    /// a socket accepted elsewhere); the future ends with the connection.
    ///
    /// The future does not borrow the server, so it can be spawned; it
    /// follows the server's [`shutdown`](ShutdownHandle::shutdown) like a
    /// connection from a listener.
    pub fn serve_connection<S>(
        &self,
        stream: S,
        peer: Option<SocketAddr>,
    ) -> impl Future<Output = Result<(), ConnectionError>> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        lifecycle::serve(self.shared.clone(), stream, peer, None, self.shutdown.subscribe())
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    shutdown: watch::Sender<Phase>,
    threads: Option<Arc<ConnectionThreads>>,
) {
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
        let Some(threads) = &threads else {
            tracker.spawn(serve_tcp(shared, socket, peer, rx));
            continue;
        };
        // The socket moves to the connection's thread and registers with its runtime there.
        let socket = match socket.into_std() {
            Ok(socket) => socket,
            Err(error) => {
                tracing::debug!(%error, %peer, "accepted socket unusable; dropped");
                continue;
            }
        };
        threads.spawn(tracker.track_future(async move {
            match TcpStream::from_std(socket) {
                Ok(socket) => serve_tcp(shared, socket, peer, rx).await,
                Err(error) => tracing::debug!(%error, %peer, "accepted socket unusable; dropped"),
            }
        }));
    }
}

/// Serves one accepted connection to its end; how it ended is logged.
async fn serve_tcp(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr, rx: watch::Receiver<Phase>) {
    if let Err(error) = lifecycle::serve_tcp(shared, socket, peer, rx).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// SIGINT and SIGTERM, watched from creation on.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// `None` where signals cannot be watched (no signal driver): the server
    /// then stops by its [`ShutdownHandle`] only.
    fn new() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(interrupt), Ok(terminate)) => Some(StopSignals { interrupt, terminate }),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot watch SIGINT and SIGTERM; stop the server with its ShutdownHandle");
                None
            }
        }
    }

    /// The next signal's name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_planted_at_the_public_key_path_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep me\n").unwrap();
        let key_path = dir.path().join("host_key");
        std::os::unix::fs::symlink(&target, dir.path().join("host_key.pub")).unwrap();

        let key = load_or_generate_host_key(&key_path).unwrap();

        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
        let public = dir.path().join("host_key.pub");
        assert!(std::fs::symlink_metadata(&public).unwrap().file_type().is_file());
        let written = std::fs::read_to_string(&public).unwrap();
        assert_eq!(written.trim_end(), key.public_key().to_openssh().unwrap());
    }
}
