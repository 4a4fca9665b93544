//! The requests that pass through the server's `tower::Service` stack, and their responses.
//!
//! Every decision the server makes is one [`Request`]: a new connection, each
//! authentication attempt, each channel open, each channel request. Layers
//! see it before any handler does and may refuse it by returning
//! [`Response::Reject`] or an error.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::auth::{Auth, Factors, Prompter};
use crate::channel::{ChannelIo, Command, Output, PtyRequest, Signal, WindowSize, Writers};
use crate::connection::Connection;
use crate::extensions::Extensions;
use crate::forward::{Client, Forward, ListenTarget, OpenFailure, TcpTarget, X11Request};

/// Facts about the session channel a channel request arrived on.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// The channel number on this connection.
    pub channel: u32,
    /// The pty requested on this channel, if one was allowed.
    pub pty: Option<PtyRequest>,
    /// The environment variables allowed on this channel, in arrival order.
    ///
    /// Shared, not copied, by every request of the channel: cloning a
    /// `SessionInfo` costs the same whatever the environment holds. The
    /// framework bounds it per channel (see
    /// [`ServerBuilder::max_env_bytes`](crate::ServerBuilder::max_env_bytes)).
    pub env: Arc<Vec<(String, String)>>,
    /// The X11 forwarding allowed on this channel, if any.
    pub x11: Option<X11Request>,
    /// Whether agent forwarding was allowed on this channel.
    pub agent: bool,
}

/// What is being decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum RequestKind {
    /// A client connected (before key exchange). Refusing drops the TCP connection.
    Connect,
    /// `none` authentication.
    AuthNone {
        /// The user name.
        user: String,
    },
    /// `password` authentication.
    AuthPassword {
        /// The user name.
        user: String,
        /// The password (never logged by the framework).
        password: Secret,
    },
    /// `publickey` authentication, after the signature was verified.
    AuthPublicKey {
        /// The user name.
        user: String,
        /// The verified key.
        key: russh::keys::PublicKey,
    },
    /// `publickey` authentication with an OpenSSH user certificate, after
    /// the client's signature, the certificate's own signature, its validity
    /// window, its type (user) and its critical options were checked.
    AuthCertificate {
        /// The user name.
        user: String,
        /// The certificate.
        certificate: Box<russh::keys::Certificate>,
    },
    /// `keyboard-interactive` authentication.
    AuthKeyboardInteractive {
        /// The user name.
        user: String,
        /// The submethods hint sent by the client (usually empty).
        submethods: String,
    },
    /// A client asks to open a `session` channel.
    ChannelOpenSession,
    /// `pty-req`.
    Pty(PtyRequest),
    /// `env`.
    Env {
        /// Variable name.
        name: String,
        /// Variable value.
        value: String,
    },
    /// `shell`; accepted, the body runs with the channel stream ([`Request::take_io`]).
    Shell,
    /// `exec` of a command; accepted, the body runs with the channel stream.
    Exec(Command),
    /// `subsystem` by name; accepted, the body runs with the channel stream.
    Subsystem(String),
    /// `window-change`.
    WindowChange(WindowSize),
    /// `signal`.
    Signal(Signal),
    /// `x11-req` on a session channel.
    X11(X11Request),
    /// `auth-agent-req@openssh.com` on a session channel.
    AgentForward,
    /// A `direct-tcpip` channel open (`ssh -L`).
    DirectTcpip(TcpTarget),
    /// A `direct-streamlocal@openssh.com` channel open (`ssh -L` to a Unix socket).
    DirectStreamlocal {
        /// The socket path on the server.
        path: String,
    },
    /// A `tcpip-forward` global request (`ssh -R`).
    TcpipForward(ListenTarget),
    /// A `cancel-tcpip-forward` global request.
    CancelTcpipForward(ListenTarget),
    /// A `streamlocal-forward@openssh.com` global request (`ssh -R` of a Unix socket).
    StreamlocalForward {
        /// The socket path to listen on.
        path: String,
    },
    /// A `cancel-streamlocal-forward@openssh.com` global request.
    CancelStreamlocalForward {
        /// The socket path.
        path: String,
    },
}

impl RequestKind {
    /// A short name for logs and metrics (`auth-password`, `exec`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            RequestKind::Connect => "connect",
            RequestKind::AuthNone { .. } => "auth-none",
            RequestKind::AuthPassword { .. } => "auth-password",
            RequestKind::AuthPublicKey { .. } => "auth-publickey",
            RequestKind::AuthCertificate { .. } => "auth-certificate",
            RequestKind::AuthKeyboardInteractive { .. } => "auth-keyboard-interactive",
            RequestKind::ChannelOpenSession => "channel-open-session",
            RequestKind::Pty(_) => "pty-req",
            RequestKind::Env { .. } => "env",
            RequestKind::Shell => "shell",
            RequestKind::Exec(_) => "exec",
            RequestKind::Subsystem(_) => "subsystem",
            RequestKind::WindowChange(_) => "window-change",
            RequestKind::Signal(_) => "signal",
            RequestKind::X11(_) => "x11-req",
            RequestKind::AgentForward => "auth-agent-req",
            RequestKind::DirectTcpip(_) => "direct-tcpip",
            RequestKind::DirectStreamlocal { .. } => "direct-streamlocal",
            RequestKind::TcpipForward(_) => "tcpip-forward",
            RequestKind::CancelTcpipForward(_) => "cancel-tcpip-forward",
            RequestKind::StreamlocalForward { .. } => "streamlocal-forward",
            RequestKind::CancelStreamlocalForward { .. } => "cancel-streamlocal-forward",
        }
    }

    /// The user name of an authentication request.
    pub fn auth_user(&self) -> Option<&str> {
        match self {
            RequestKind::AuthNone { user }
            | RequestKind::AuthPassword { user, .. }
            | RequestKind::AuthPublicKey { user, .. }
            | RequestKind::AuthCertificate { user, .. }
            | RequestKind::AuthKeyboardInteractive { user, .. } => Some(user),
            _ => None,
        }
    }
}

/// A secret string (a password) whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(s: &str) -> Self {
        Secret(s.to_owned())
    }

    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One decision passing through the service stack.
///
/// A request carries what is being decided ([`kind`](Request::kind)), the
/// [`Connection`] it arrived on (with the connection's extensions), the
/// session channel's state for channel requests, and extensions of its own
/// that layers fill for the handler ([`extensions_mut`](Request::extensions_mut)).
#[derive(Debug)]
pub struct Request {
    kind: RequestKind,
    connection: Arc<Connection>,
    /// The record of an authentication request; other requests read the connection's.
    factors: Option<Factors>,
    session: Option<SessionInfo>,
    extensions: Extensions,
    io: Option<ChannelIo>,
    writers: Option<Writers>,
    prompter: Option<Prompter>,
}

impl Request {
    pub(crate) fn new(connection: Arc<Connection>, kind: RequestKind) -> Self {
        Request { kind, connection, factors: None, session: None, extensions: Extensions::new(), io: None, writers: None, prompter: None }
    }

    /// Replaces what is being decided (a forced command replacing the client's).
    pub(crate) fn set_kind(&mut self, kind: RequestKind) {
        self.kind = kind;
    }

    pub(crate) fn with_factors(mut self, factors: Factors) -> Self {
        self.factors = Some(factors);
        self
    }

    pub(crate) fn with_io(mut self, io: ChannelIo, writers: Writers) -> Self {
        self.io = Some(io);
        self.writers = Some(writers);
        self
    }

    pub(crate) fn with_prompter(mut self, prompter: Prompter) -> Self {
        self.prompter = Some(prompter);
        self
    }

    pub(crate) fn with_session(mut self, session: SessionInfo) -> Self {
        self.session = Some(session);
        self
    }

    /// What is being decided.
    pub fn kind(&self) -> &RequestKind {
        &self.kind
    }

    /// The connection this request arrived on.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// The connected client, to open channels back to it (absent only before key exchange).
    pub fn client(&self) -> Option<Client> {
        self.connection.handle().map(|handle| Client::new(handle.clone(), self.connection.clone()))
    }

    /// The methods that passed: before this attempt for an authentication
    /// request, all of them once the connection is authenticated.
    pub fn factors(&self) -> &Factors {
        static NONE: Factors = Factors::new();
        self.factors.as_ref().or(self.connection.factors()).unwrap_or(&NONE)
    }

    /// The session channel of a channel request.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// This request's extensions: what layers attached for the handler.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// This request's extensions, mutably: a layer inserts here what a
    /// handler takes with [`Extension<T>`](crate::extract::Extension).
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Takes the channel stream of a shell, exec or subsystem request (once),
    /// for a layer that serves the request itself.
    pub fn take_io(&mut self) -> Option<ChannelIo> {
        self.io.take()
    }

    /// A new writer to the client's stdout on the channel of a shell, exec or
    /// subsystem request, beside the handler's own (`None` on other requests).
    ///
    /// For a layer that writes to the client around the handler: a banner
    /// before the body runs, a message after it ended. Write from the body
    /// (wrap [`Response::Run`]), not while deciding: a write waits for the
    /// client's window, and a decision holds up the whole connection. What
    /// one writer finished writing reaches the client before what another
    /// writes afterwards; writes in flight at the same time may interleave.
    pub fn stdout(&self) -> Option<Output> {
        self.writers.as_ref().map(|w| w.output(None))
    }

    /// A new writer to the client's stderr (extended data type 1) on the
    /// channel of a shell, exec or subsystem request; as [`stdout`](Request::stdout).
    pub fn stderr(&self) -> Option<Output> {
        self.writers.as_ref().map(|w| w.output(Some(1)))
    }

    /// Takes the prompter of a keyboard-interactive request (once).
    pub fn take_prompter(&mut self) -> Option<Prompter> {
        self.prompter.take()
    }
}

/// A channel body ready to run: the accepted shell, exec or subsystem.
pub type ChannelBody = BoxFuture<'static, crate::channel::ExitStatus>;

/// The answer to a [`Request`].
#[non_exhaustive]
pub enum Response {
    /// Allowed (connect, channel open, pty, env, window-change, signal).
    Accept,
    /// Refused. For authentication requests this is a failed attempt.
    Reject,
    /// An authentication result.
    Auth(Auth),
    /// Accepted shell, exec or subsystem: the framework replies success and runs the body.
    ///
    /// The body has not started yet: a layer may wrap it (to time the whole
    /// session, bound it with a timeout, count running sessions) by returning
    /// `Response::Run` with a future that awaits the original.
    Run(ChannelBody),
    /// The answer to a local-forwarding channel open.
    Forward(Forward),
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Accept => f.write_str("Accept"),
            Response::Reject => f.write_str("Reject"),
            Response::Auth(a) => f.debug_tuple("Auth").field(a).finish(),
            Response::Run(_) => f.write_str("Run(..)"),
            Response::Forward(fwd) => f.debug_tuple("Forward").field(fwd).finish(),
        }
    }
}

impl Response {
    /// Whether this response allows the request.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self,
            Response::Accept
                | Response::Run(_)
                | Response::Auth(Auth::Accept | Auth::Partial(_))
                | Response::Forward(Forward::Connect | Forward::Serve(_))
        )
    }

    /// The channel-open failure this response means, if it refuses a channel.
    pub fn open_failure(&self) -> Option<OpenFailure> {
        match self {
            Response::Forward(Forward::Refuse(reason)) => Some(*reason),
            r if r.is_allowed() => None,
            _ => Some(OpenFailure::AdministrativelyProhibited),
        }
    }
}
