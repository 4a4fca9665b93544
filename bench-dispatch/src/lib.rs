//! The two servers of the dispatch benchmark and the client that drives them.
//!
//! The framework has no public entry point that calls its service stack with a
//! [`Request`] built outside it (`Request::new` and
//! `Connection::new` are crate-private), and a russh [`Handler`](russh::server::Handler)
//! method needs a russh `Session`, which only russh builds. So both are driven
//! the same way: a whole connection over [`tokio::io::duplex`], served by
//! [`Server::serve_connection`] on one side and by [`russh::server::run_stream`]
//! with a hand-written handler on the other, and spoken to by the same russh
//! client. One decision costs the same russh work (packets, encryption, the
//! client) on both sides; what differs is the server's code between russh and
//! the answer: for the framework the `Request`, the default limit layers, the
//! routing table and the generated handler; for the baseline one `match`.
//!
//! Everything runs on one current-thread runtime, so a decision's wall time is
//! the CPU time of the client and the server together.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::server::{self as rserver, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg, client};

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
use ssh_framework::{Auth, ExitStatus, Request, Server, tower};
use tokio::task::JoinHandle;

/// The user both servers accept.
pub const USER: &str = "bench";
/// The password both servers accept for [`USER`].
pub const PASSWORD: &str = "correct horse battery staple";
/// Bytes each direction of the in-memory connection buffers, as `TestClient` does.
const PIPE_BYTES: usize = 256 * 1024;

/// The keys of one benchmark run: the server's host key and the one user key both servers accept.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The servers' host key.
    pub host: PrivateKey,
    /// The key the user logs in with.
    pub user: Arc<PrivateKey>,
}

impl Keys {
    /// Fresh Ed25519 keys.
    pub fn generate() -> Keys {
        let key = || PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).expect("the OS random source works");
        Keys { host: key(), user: Arc::new(key()) }
    }
}

/// The framework app: the same decisions as [`Baseline`], as `#[server]` handlers.
#[derive(Debug)]
pub struct App {
    authorized: PublicKey,
}

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == USER && password == PASSWORD)
    }

    #[auth(publickey)]
    async fn publickey(&self, user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(user == USER && key.key_data() == self.authorized.key_data())
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec]
    async fn exec(&self) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `#[server]` handlers behind the framework's default stack.
    Framework,
    /// The same with a [`DecisionClock`] layer around the routing table.
    FrameworkClocked,
    /// A hand-written `russh::server::Handler`.
    Russh,
}

impl Which {
    /// The benchmark's name for this server.
    pub fn name(self) -> &'static str {
        match self {
            Which::Framework => "framework",
            Which::FrameworkClocked => "framework-clocked",
            Which::Russh => "russh",
        }
    }
}

/// A layer that adds up the time its inner service (the routing table and
/// the generated handlers) takes to answer, from `call` to the response.
///
/// The decisions benchmarked answer without waiting on anything (an exec's
/// body is returned, not run), so this is CPU time of the routing table, the
/// generated handler and the two boxed futures between them.
#[derive(Debug, Clone, Default)]
pub struct DecisionClock {
    nanos: Arc<AtomicU64>,
    decisions: Arc<AtomicU64>,
}

impl DecisionClock {
    /// Time spent inside the inner service since the last `take`, and the number of decisions.
    pub fn take(&self) -> (Duration, u64) {
        (Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed)), self.decisions.swap(0, Ordering::Relaxed))
    }
}

impl<S> tower::Layer<S> for DecisionClock {
    type Service = Clocked<S>;

    fn layer(&self, inner: S) -> Clocked<S> {
        Clocked { inner, clock: self.clone() }
    }
}

/// The service of [`DecisionClock`].
#[derive(Debug, Clone)]
pub struct Clocked<S> {
    inner: S,
    clock: DecisionClock,
}

impl<S> tower::Service<Request> for Clocked<S>
where
    S: tower::Service<Request>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = Instant::now();
        let future = self.inner.call(request);
        let clock = self.clock.clone();
        Box::pin(async move {
            let response = future.await;
            clock.nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            clock.decisions.fetch_add(1, Ordering::Relaxed);
            response
        })
    }
}

/// Both servers, built once, each serving any number of in-memory connections.
#[derive(Debug)]
pub struct Servers {
    framework: Server,
    framework_clocked: Server,
    clock: DecisionClock,
    russh: Arc<rserver::Config>,
    authorized: Arc<PublicKey>,
    keys: Keys,
}

impl Servers {
    /// Builds both servers with `keys`; call inside a Tokio runtime.
    pub async fn new(keys: Keys) -> Servers {
        let authorized = keys.user.public_key().clone();
        let builder = || {
            Server::builder()
                .handlers(App { authorized: authorized.clone() })
                .host_key(keys.host.clone())
                // The refusals benchmarked are not guesses at a secret.
                .rejection_delay(Duration::ZERO)
        };
        let framework = builder().build().await.expect("the framework server builds");
        let clock = DecisionClock::default();
        let framework_clocked = builder().layer(clock.clone()).build().await.expect("the framework server builds");
        Servers {
            framework,
            framework_clocked,
            clock,
            russh: Arc::new(baseline_config(keys.host.clone())),
            authorized: Arc::new(authorized),
            keys,
        }
    }

    /// The clock of [`Which::FrameworkClocked`].
    pub fn clock(&self) -> &DecisionClock {
        &self.clock
    }

    /// Connects a client to a new connection of `which` (key exchange done, not authenticated).
    pub async fn connect(&self, which: Which) -> Connected {
        let (client_end, server_end) = tokio::io::duplex(PIPE_BYTES);
        let server: JoinHandle<()> = match which {
            Which::Framework | Which::FrameworkClocked => {
                let server = if which == Which::Framework { &self.framework } else { &self.framework_clocked };
                let serve = server.serve_connection(server_end, None);
                tokio::spawn(async move {
                    let _ = serve.await;
                })
            }
            Which::Russh => {
                let handler = Baseline { authorized: self.authorized.clone(), channels: HashSet::new() };
                let config = self.russh.clone();
                tokio::spawn(async move {
                    if let Ok(running) = rserver::run_stream(config, server_end, handler).await {
                        let _ = running.await;
                    }
                })
            }
        };
        let handle = client::connect_stream(Arc::new(client_config()), client_end, ClientHandler)
            .await
            .expect("the client connects");
        Connected { handle, server, user_key: self.keys.user.clone() }
    }

    /// A new connection of `which`, logged in with the password.
    pub async fn logged_in(&self, which: Which) -> Connected {
        let mut connected = self.connect(which).await;
        assert!(connected.login_password().await, "{} refused the password", which.name());
        connected
    }
}

/// One client connection and the server task serving it.
pub struct Connected {
    handle: client::Handle<ClientHandler>,
    server: JoinHandle<()>,
    user_key: Arc<PrivateKey>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected").field("closed", &self.handle.is_closed()).finish_non_exhaustive()
    }
}

impl Connected {
    /// Logs in with the password; whether the server accepted.
    pub async fn login_password(&mut self) -> bool {
        let result = self.handle.authenticate_password(USER, PASSWORD).await.expect("password authentication runs");
        result.success()
    }

    /// Logs in with the user key; whether the server accepted.
    pub async fn login_publickey(&mut self) -> bool {
        let key = PrivateKeyWithHashAlg::new(self.user_key.clone(), None);
        let result = self.handle.authenticate_publickey(USER, key).await.expect("publickey authentication runs");
        result.success()
    }

    /// Opens a session channel; `None` if the server refused it.
    pub async fn open_session(&self) -> Option<Channel<client::Msg>> {
        self.handle.channel_open_session().await.ok()
    }

    /// Disconnects and waits until the server's side of the connection has ended.
    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "").await;
        drop(self.handle);
        let _ = self.server.await;
    }
}

/// Closes `channel` without waiting for the server's close.
///
/// russh's client forgets a channel when it sends its close, so the server's
/// answering close never reaches [`Channel::wait`]. The server handles
/// messages in order: a request sent after this one finds the channel closed.
pub async fn close_channel(channel: Channel<client::Msg>) {
    let _ = channel.close().await;
}

/// Runs `command` on a new session channel; its exit status (`None`: refused or none sent).
pub async fn exec(connected: &Connected, command: &str) -> Option<u32> {
    let mut channel = connected.open_session().await?;
    channel.exec(true, command).await.ok()?;
    let mut status = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Failure => return None,
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    status
}

/// The server's answer to a channel request sent with want-reply: `true` for success.
async fn reply(channel: &mut Channel<client::Msg>) -> bool {
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Success => return true,
            ChannelMsg::Failure => return false,
            _ => {}
        }
    }
    false
}

/// Sends an `env` request on `channel`; whether the server allowed it.
pub async fn env(channel: &mut Channel<client::Msg>) -> bool {
    channel.set_env(true, "LANG", "C.UTF-8").await.expect("the channel is open");
    reply(channel).await
}

/// Sends a request neither server has a handler for (`auth-agent-req@openssh.com`); whether it was allowed.
pub async fn unhandled(channel: &mut Channel<client::Msg>) -> bool {
    channel.agent_forward(true).await.expect("the channel is open");
    reply(channel).await
}

/// russh's client accepting any host key (the benchmark's own server).
#[derive(Debug)]
struct ClientHandler;

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// One key exchange and one cipher for both servers: curve25519 (the cheapest
/// the framework offers) and aes128-gcm.
fn client_config() -> client::Config {
    use russh::{cipher, kex};
    client::Config {
        preferred: russh::Preferred {
            kex: Cow::Borrowed(&[kex::CURVE25519, kex::EXTENSION_SUPPORT_AS_CLIENT, kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT]),
            cipher: Cow::Borrowed(&[cipher::AES_128_GCM]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The russh settings the framework uses (its `russh_config`), for the baseline.
fn baseline_config(key: PrivateKey) -> rserver::Config {
    use russh::{cipher, kex};
    rserver::Config {
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 6,
        keys: vec![key],
        window_size: 8 << 20,
        maximum_packet_size: 32 << 10,
        nodelay: true,
        methods: (&[russh::MethodKind::Password, russh::MethodKind::PublicKey][..]).into(),
        preferred: russh::Preferred {
            cipher: Cow::Borrowed(&[cipher::CHACHA20_POLY1305, cipher::AES_128_GCM, cipher::AES_256_GCM]),
            kex: Cow::Borrowed(&[
                kex::MLKEM768X25519_SHA256,
                kex::CURVE25519,
                kex::EXTENSION_SUPPORT_AS_SERVER,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
            ]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The baseline: the same decisions written directly as a russh `Handler`.
#[derive(Debug)]
pub struct Baseline {
    authorized: Arc<PublicKey>,
    /// The open session channels. Not their `Channel`s: russh queues a copy of
    /// every request to a held `Channel`, and one that nobody reads stalls the
    /// connection after 100 requests.
    channels: HashSet<ChannelId>,
}

impl rserver::Handler for Baseline {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<rserver::Auth, Self::Error> {
        Ok(if user == USER && password == PASSWORD { rserver::Auth::Accept } else { rserver::Auth::reject() })
    }

    async fn auth_publickey_offered(&mut self, _user: &str, _offer: rserver::PublicKeyOffer<'_>) -> Result<rserver::Auth, Self::Error> {
        // As the framework: every offer may be signed; the decision follows the signature.
        Ok(rserver::Auth::Accept)
    }

    async fn auth_publickey(&mut self, user: &str, key: rserver::VerifiedPublicKey<'_>) -> Result<rserver::Auth, Self::Error> {
        let accept = user == USER && key.public_key.key_data() == self.authorized.key_data();
        Ok(if accept { rserver::Auth::Accept } else { rserver::Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: rserver::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id());
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn env_request(&mut self, channel: ChannelId, _name: &str, _value: &str, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn exec_request(&mut self, channel: ChannelId, _command: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        if !self.channels.contains(&channel) {
            return session.channel_failure(channel);
        }
        session.channel_success(channel)?;
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)
    }
}
