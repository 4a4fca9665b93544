//! A client for testing an app in-process: no socket, no `ssh` binary.
//!
//! [`TestClient::connect`] serves one connection of a built [`Server`] over an
//! in-memory stream and speaks SSH to it with russh's client: key exchange,
//! authentication, channels and their requests all go through the same code
//! a connection from `ssh` goes through, so a test sees what a user would
//! see, including every layer and limit of the server. Nothing listens, so
//! tests run in parallel without ports.
//!
//! Enable it in your tests with the crate's `testing` feature:
//!
//! ```toml
//! [dev-dependencies]
//! ssh-framework = { version = "0.1", features = ["testing"] }
//! ```
//!
//! A typical test logs in, runs a command and opens a shell on a pty whose
//! screen (a [`vt100`] terminal) it asserts on:
//!
//! ```
//! use ssh_framework::testing::{self, TestClient};
//! use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};
//! use tokio::io::AsyncWriteExt;
//!
//! struct App;
//!
//! #[ssh_framework::server]
//! impl App {
//!     #[auth(password)]
//!     async fn login(&self, user: &str, password: &str) -> Auth {
//!         Auth::from_bool(user == "alice" && password == "secret")
//!     }
//!     #[channel(session)]
//!     async fn session(&self) -> bool {
//!         true
//!     }
//!     #[pty]
//!     async fn pty(&self) -> bool {
//!         true
//!     }
//!     #[exec]
//!     async fn exec(&self, command: Command, mut io: ChannelIo) -> ExitStatus {
//!         let _ = io.stdout.write_all(format!("you ran {command}\n").as_bytes()).await;
//!         ExitStatus::SUCCESS
//!     }
//!     #[shell]
//!     async fn shell(&self, mut io: ChannelIo) -> ExitStatus {
//!         let _ = io.stdout.write_all(b"welcome, alice\r\n").await;
//!         ExitStatus::SUCCESS
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder().handlers(App).host_key(testing::ed25519_key()).build().await?;
//! let mut client = TestClient::connect(&server).await?;
//! assert!(client.login_password("alice", "secret").await?.is_accepted());
//!
//! let output = client.exec("date").await?;
//! assert_eq!(output.stdout_text(), "you ran date\n");
//! assert!(output.success());
//!
//! let mut shell = client.shell(80, 24).await?;
//! shell.wait_for("welcome, alice").await?;
//! assert_eq!(shell.screen().contents(), "welcome, alice");
//! # Ok(())
//! # }
//! ```
//!
//! Every wait is bounded by the client's [timeout](TestClient::set_timeout)
//! (10 seconds unless set), so a test fails with the step it was waiting for
//! instead of hanging.

mod process;

pub use self::process::{Output, Process, SessionBuilder};
/// The SFTP client that [`TestClient::sftp`] returns (the `russh-sftp` crate).
pub use russh_sftp;
/// The terminal emulator behind [`Process::screen`] (the `vt100` crate).
pub use vt100;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{Algorithm, Certificate, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{Channel, ChannelStream, client};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::{MethodSet, Prompt};
use crate::error::{BoxError, ConnectionError};
use crate::server::Server;

/// How long any one step may take unless [`TestClient::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh Ed25519 key, for a test server's host key or a test user's key.
pub fn ed25519_key() -> PrivateKey {
    // Generation from the OS's randomness fails only when the OS has none.
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("the OS random source works")
}

/// An SSH client connected in-process to one connection of a [`Server`].
///
/// What it returns (a [`Process`], an SFTP client, a [`ForwardStream`])
/// keeps the connection open after the `TestClient` itself is dropped; the
/// connection ends when the last of them is gone, or at
/// [`disconnect`](Self::disconnect). See the [module docs](self).
pub struct TestClient {
    handle: client::Handle<ClientHandler>,
    forwarded: mpsc::UnboundedReceiver<Forwarded>,
    banners: Arc<Mutex<Vec<String>>>,
    host_key: Arc<Mutex<Option<PublicKey>>>,
    server: Option<JoinHandle<Result<(), ConnectionError>>>,
    timeout: Duration,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("closed", &self.handle.is_closed())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// Connects to `server` over an in-memory stream and completes key
    /// exchange. The server sees no peer address ([`PeerAddr`](crate::extract::PeerAddr) is `None`).
    pub async fn connect(server: &Server) -> Result<TestClient, Error> {
        TestClient::connect_inner(server, None).await
    }

    /// Connects as [`connect`](Self::connect) does, with `peer` as the
    /// client's address the server sees (for apps and limits that decide by address).
    pub async fn connect_from(server: &Server, peer: SocketAddr) -> Result<TestClient, Error> {
        TestClient::connect_inner(server, Some(peer)).await
    }

    async fn connect_inner(server: &Server, peer: Option<SocketAddr>) -> Result<TestClient, Error> {
        // Each direction buffers up to this much before the writer waits,
        // as a socket's buffers would.
        const PIPE_BYTES: usize = 256 * 1024;
        let (client_end, server_end) = tokio::io::duplex(PIPE_BYTES);
        let server_task = tokio::spawn(server.serve_connection(server_end, peer));
        let (forwarded_tx, forwarded) = mpsc::unbounded_channel();
        let banners = Arc::new(Mutex::new(Vec::new()));
        let host_key = Arc::new(Mutex::new(None));
        let handler =
            ClientHandler { forwarded: forwarded_tx, banners: banners.clone(), host_key: host_key.clone() };
        let config = Arc::new(client::Config::default());
        let timeout = DEFAULT_TIMEOUT;
        let handle = match within(timeout, "key exchange", client::connect_stream(config, client_end, handler)).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                let served = server_task.await;
                let why = match served {
                    Ok(Err(server)) => format!("the server ended the connection: {server}"),
                    _ => "key exchange failed".to_owned(),
                };
                return Err(Error::new(ErrorKind::Connection, why).with_source(e));
            }
            Err(e) => {
                server_task.abort();
                return Err(e);
            }
        };
        Ok(TestClient { handle, forwarded, banners, host_key, server: Some(server_task), timeout })
    }

    /// Sets how long any one later step (a login, a channel request, a wait
    /// for output) may take before it fails with [`Error::is_timeout`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The server's host key, as received in key exchange.
    pub fn host_key(&self) -> Option<PublicKey> {
        self.host_key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The authentication banners the server sent (`#[banner]`), in order.
    pub fn banners(&self) -> Vec<String> {
        self.banners.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Tries the `none` method.
    pub async fn login_none(&mut self, user: &str) -> Result<Login, Error> {
        let result = within(self.timeout, "none authentication", self.handle.authenticate_none(user)).await?;
        Login::from_russh(result)
    }

    /// Tries the `password` method.
    pub async fn login_password(&mut self, user: &str, password: &str) -> Result<Login, Error> {
        let result =
            within(self.timeout, "password authentication", self.handle.authenticate_password(user, password)).await?;
        Login::from_russh(result)
    }

    /// Tries the `publickey` method with `key`, signing as OpenSSH's client does.
    pub async fn login_key(&mut self, user: &str, key: &PrivateKey) -> Result<Login, Error> {
        let hash = if key.algorithm().is_rsa() {
            within(self.timeout, "the server's RSA signature algorithms", self.handle.best_supported_rsa_hash())
                .await?
                .map_err(|e| Error::new(ErrorKind::Connection, "asking for the server's algorithms").with_source(e))?
                .flatten()
        } else {
            None
        };
        let signed = PrivateKeyWithHashAlg::new(Arc::new(key.clone()), hash);
        let result =
            within(self.timeout, "publickey authentication", self.handle.authenticate_publickey(user, signed)).await?;
        Login::from_russh(result)
    }

    /// Tries the `publickey` method with an OpenSSH user certificate for `key`.
    pub async fn login_certificate(
        &mut self,
        user: &str,
        key: &PrivateKey,
        certificate: &Certificate,
    ) -> Result<Login, Error> {
        let attempt = self.handle.authenticate_openssh_cert(user, Arc::new(key.clone()), certificate.clone());
        let result = within(self.timeout, "certificate authentication", attempt).await?;
        Login::from_russh(result)
    }

    /// Tries the `keyboard-interactive` method, answering each round of
    /// prompts with `respond` (one answer per prompt, in order).
    ///
    /// ```no_run
    /// # async fn f(client: &mut ssh_framework::testing::TestClient) -> Result<(), ssh_framework::testing::Error> {
    /// let login = client.login_keyboard_interactive("bob", |prompts| {
    ///     prompts.iter().map(|p| if p.text.contains("code") { "123456".into() } else { "hunter2".into() }).collect()
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn login_keyboard_interactive<F>(&mut self, user: &str, mut respond: F) -> Result<Login, Error>
    where
        F: FnMut(&[Prompt]) -> Vec<String>,
    {
        let what = "keyboard-interactive authentication";
        let kbd_error = |e: russh::Error| Error::new(ErrorKind::Connection, what).with_source(e);
        let mut reply = within(self.timeout, what, self.handle.authenticate_keyboard_interactive_start(user, None))
            .await?
            .map_err(kbd_error)?;
        // A server may send any number of rounds; a bound keeps a broken one from looping forever.
        for _ in 0..64 {
            match reply {
                client::KeyboardInteractiveAuthResponse::Success => return Ok(Login::Accepted),
                client::KeyboardInteractiveAuthResponse::Failure { remaining_methods, partial_success } => {
                    return Ok(Login::failure(&remaining_methods, partial_success));
                }
                client::KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let prompts: Vec<Prompt> =
                        prompts.into_iter().map(|p| Prompt { text: p.prompt, echo: p.echo }).collect();
                    let answers = respond(&prompts);
                    reply = within(self.timeout, what, self.handle.authenticate_keyboard_interactive_respond(answers))
                        .await?
                        .map_err(kbd_error)?;
                }
            }
        }
        Err(Error::new(ErrorKind::Protocol, "the server sent more than 64 rounds of keyboard-interactive prompts"))
    }

    /// Runs `command` with no input and returns what it wrote and how it ended.
    pub async fn exec(&self, command: &str) -> Result<Output, Error> {
        self.session().exec(command).await?.wait().await
    }

    /// Runs `command` with `input` on its stdin (then EOF) and returns what
    /// it wrote and how it ended.
    pub async fn exec_with_input(&self, command: &str, input: impl AsRef<[u8]>) -> Result<Output, Error> {
        let mut process = self.session().exec(command).await?;
        process.send(input).await?;
        process.send_eof().await?;
        process.wait().await
    }

    /// Opens a shell on a `cols` x `rows` pty (terminal `xterm-256color`);
    /// read its [`screen`](Process::screen).
    pub async fn shell(&self, cols: u16, rows: u16) -> Result<Process, Error> {
        self.session().pty(cols, rows).shell().await
    }

    /// A session channel to set up (pty, environment) before its shell,
    /// command or subsystem starts.
    pub fn session(&self) -> SessionBuilder<'_> {
        SessionBuilder::new(self)
    }

    /// Starts the `sftp` subsystem and returns an SFTP client on it.
    pub async fn sftp(&self) -> Result<russh_sftp::client::SftpSession, Error> {
        let channel = self.session().subsystem_channel("sftp").await?;
        let sftp = russh_sftp::client::SftpSession::new(channel.into_stream());
        within(self.timeout, "the SFTP handshake", sftp)
            .await?
            .map_err(|e| Error::new(ErrorKind::Protocol, "SFTP handshake").with_source(e))
    }

    /// Opens a `direct-tcpip` channel (what `ssh -L` opens) to `host:port`
    /// and returns its byte stream.
    pub async fn forward_local(&self, host: &str, port: u16) -> Result<ForwardStream, Error> {
        let open = self.handle.channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0);
        let channel = within(self.timeout, "the direct-tcpip channel open", open)
            .await?
            .map_err(|e| Error::refused_or(e, format!("direct-tcpip to {host}:{port}")))?;
        Ok(ForwardStream(channel.into_stream()))
    }

    /// Asks the server to listen on `address:port` for this client (what
    /// `ssh -R` sends) and returns the port it listens on (the one it chose
    /// when `port` is 0). Take the connections with [`accept_forwarded`](Self::accept_forwarded).
    pub async fn forward_remote(&self, address: &str, port: u16) -> Result<u16, Error> {
        let asked = self.handle.tcpip_forward(address, u32::from(port));
        let bound = within(self.timeout, "the tcpip-forward reply", asked)
            .await?
            .map_err(|e| Error::refused_or(e, format!("tcpip-forward on {address}:{port}")))?;
        let bound = if bound == 0 { u32::from(port) } else { bound };
        u16::try_from(bound).map_err(|_| Error::new(ErrorKind::Protocol, format!("the server listens on port {bound}")))
    }

    /// Cancels a listener from [`forward_remote`](Self::forward_remote).
    pub async fn cancel_forward_remote(&self, address: &str, port: u16) -> Result<(), Error> {
        let asked = self.handle.cancel_tcpip_forward(address, u32::from(port));
        within(self.timeout, "the cancel-tcpip-forward reply", asked)
            .await?
            .map_err(|e| Error::refused_or(e, format!("cancel-tcpip-forward on {address}:{port}")))
    }

    /// The next connection the server forwards from a listener of
    /// [`forward_remote`](Self::forward_remote).
    pub async fn accept_forwarded(&mut self) -> Result<Forwarded, Error> {
        within(self.timeout, "a forwarded connection", self.forwarded.recv())
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Connection, "the connection closed"))
    }

    /// Sends a disconnect and waits for the server to end the connection;
    /// returns how the server's side ended.
    pub async fn disconnect(mut self) -> Result<Result<(), ConnectionError>, Error> {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "test done", "en").await;
        self.server_side().await
    }

    /// Waits for the server to end the connection by itself (a timeout,
    /// a limit, a shutdown); returns how its side ended.
    pub async fn closed(mut self) -> Result<Result<(), ConnectionError>, Error> {
        self.server_side().await
    }

    async fn server_side(&mut self) -> Result<Result<(), ConnectionError>, Error> {
        let Some(task) = self.server.take() else {
            return Err(Error::new(ErrorKind::Connection, "the server's side was already awaited"));
        };
        match within(self.timeout, "the server to end the connection", task).await? {
            Ok(result) => Ok(result),
            Err(join) => Err(Error::new(ErrorKind::Connection, "the server's connection task failed").with_source(join)),
        }
    }

    async fn open_session(&self) -> Result<Channel<client::Msg>, Error> {
        within(self.timeout, "the session channel open", self.handle.channel_open_session())
            .await?
            .map_err(|e| Error::refused_or(e, "session channel".to_owned()))
    }
}

/// How an authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Login {
    /// Logged in.
    Accepted,
    /// This method passed, but the server wants another factor, one of `remaining`.
    Partial {
        /// The methods the server lets the client continue with.
        remaining: MethodSet,
    },
    /// Refused; the client may try one of `remaining`.
    Refused {
        /// The methods the server lets the client continue with.
        remaining: MethodSet,
    },
}

impl Login {
    /// Whether the client is now logged in.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Login::Accepted)
    }

    fn failure(remaining: &russh::MethodSet, partial: bool) -> Login {
        let remaining = MethodSet::from_russh(remaining);
        if partial { Login::Partial { remaining } } else { Login::Refused { remaining } }
    }

    fn from_russh(result: Result<russh::client::AuthResult, russh::Error>) -> Result<Login, Error> {
        match result {
            Ok(russh::client::AuthResult::Success) => Ok(Login::Accepted),
            Ok(russh::client::AuthResult::Failure { remaining_methods, partial_success }) => {
                Ok(Login::failure(&remaining_methods, partial_success))
            }
            Err(e) => Err(Error::new(ErrorKind::Connection, "authentication").with_source(e)),
        }
    }
}

/// A connection the server forwarded from a [`forward_remote`](TestClient::forward_remote) listener.
#[non_exhaustive]
pub struct Forwarded {
    /// The connection's bytes.
    pub stream: ForwardStream,
    /// The address of the listener it arrived on, as the server reported it.
    pub connected_address: String,
    /// The port of the listener it arrived on.
    pub connected_port: u32,
    /// The address of whoever connected to the listener.
    pub originator_address: String,
    /// Their port.
    pub originator_port: u32,
}

impl fmt::Debug for Forwarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarded")
            .field("connected_address", &self.connected_address)
            .field("connected_port", &self.connected_port)
            .field("originator_address", &self.originator_address)
            .field("originator_port", &self.originator_port)
            .finish_non_exhaustive()
    }
}

/// The bytes of a forwarded connection: a channel the client opened
/// ([`TestClient::forward_local`]) or the server opened ([`Forwarded`]).
pub struct ForwardStream(ChannelStream<client::Msg>);

impl fmt::Debug for ForwardStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardStream").finish_non_exhaustive()
    }
}

impl AsyncRead for ForwardStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ForwardStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Why a step of a [`TestClient`] failed.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Timeout,
    Refused,
    Connection,
    Protocol,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A refusal when russh says so, a connection error otherwise.
    fn refused_or(error: russh::Error, what: String) -> Self {
        match error {
            russh::Error::RequestDenied | russh::Error::ChannelOpenFailure(_) => {
                Error::new(ErrorKind::Refused, format!("{what} refused")).with_source(error)
            }
            other => Error::new(ErrorKind::Connection, what).with_source(other),
        }
    }

    /// Whether the step took longer than the client's timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the server refused the request (a channel open, a shell,
    /// exec or subsystem request, a forward).
    pub fn is_refused(&self) -> bool {
        self.kind == ErrorKind::Refused
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Timeout => write!(f, "timed out waiting for {}", self.message),
            _ => f.write_str(&self.message),
        }?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Awaits `future` for at most `timeout`.
async fn within<F: Future>(timeout: Duration, what: &str, future: F) -> Result<F::Output, Error> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, format!("{what} ({timeout:?})")))
}

/// russh's client callbacks: trusts the in-process server's key (recording
/// it), records banners and hands forwarded connections to the test.
struct ClientHandler {
    forwarded: mpsc::UnboundedSender<Forwarded>,
    banners: Arc<Mutex<Vec<String>>>,
    host_key: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(certificate) => {
                PublicKey::new(certificate.public_key().clone(), certificate.comment())
            }
        };
        *self.host_key.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        Ok(true)
    }

    async fn auth_banner(&mut self, banner: &str, _session: &mut client::Session) -> Result<(), Self::Error> {
        self.banners.lock().unwrap_or_else(|e| e.into_inner()).push(banner.to_owned());
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.forwarded.send(Forwarded {
            stream: ForwardStream(channel.into_stream()),
            connected_address: connected_address.to_owned(),
            connected_port,
            originator_address: originator_address.to_owned(),
            originator_port,
        });
        Ok(())
    }
}
