//! Extractors: the arguments a handler may ask for besides the fixed ones.
//!
//! Any handler argument after the fixed leading ones (such as `user: &str,
//! password: &str` of a password handler) is an extractor: a type that
//! implements [`FromRequest`] and is built from the request being decided.
//! Ask for what you need, in any order:
//!
//! ```
//! use ssh_framework::extract::{PeerAddr, User};
//! use ssh_framework::{ChannelIo, Command, ExitStatus};
//!
//! struct App;
//!
//! #[ssh_framework::server]
//! impl App {
//!     #[exec]
//!     async fn exec(&self, user: User, peer: PeerAddr, command: Command, io: ChannelIo) -> ExitStatus {
//!         let _ = (user, peer, command, io);
//!         ExitStatus::SUCCESS
//!     }
//! }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::auth::{Factors, Prompter};
use crate::channel::{ChannelIo, Command, PtyRequest, Signal, WindowSize};
use crate::request::{Connection, Request, RequestKind};

/// Why an extractor could not be built for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(&'static str);

impl Rejection {
    /// A rejection with a static reason.
    pub const fn new(reason: &'static str) -> Self {
        Rejection(reason)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Rejection {}

/// A type a handler can take as an argument, built from the request.
///
/// When extraction fails the handler does not run and the request is refused.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler argument",
    label = "this argument is not an extractor",
    note = "after the fixed leading arguments a handler may take: `User`, `PeerAddr`, `Arc<Connection>`, `Factors`, `Pty`, `Environment`, `PtyRequest`, `WindowSize`, `Signal`, `Command`, `ChannelIo`, `Prompter`, `SubsystemName`, `Client`, `TcpTarget`, `ListenTarget`, `SocketPath`, `X11Request`, `AgentForwarded`, or any type implementing `ssh_framework::extract::FromRequest`"
)]
pub trait FromRequest: Sized {
    /// Builds the value from the request; may take parts out of it (such as the channel stream).
    fn from_request(request: &mut Request) -> Result<Self, Rejection>;
}

/// The user name: the authenticated user, or the one being authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

impl Deref for User {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for User {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        request
            .kind()
            .auth_user()
            .or_else(|| request.connection().user())
            .map(|u| User(u.to_owned()))
            .ok_or(Rejection::new("no user is known before authentication"))
    }
}

/// The client's socket address (`None` for connections without one, such as in-memory streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl FromRequest for PeerAddr {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(PeerAddr(request.connection().peer_addr()))
    }
}

impl FromRequest for Arc<Connection> {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(request.connection().clone())
    }
}

impl FromRequest for Factors {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(request.factors().clone())
    }
}

/// The pty allowed on this session channel, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pty(pub Option<PtyRequest>);

impl FromRequest for Pty {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(Pty(request.session().and_then(|s| s.pty.clone())))
    }
}

/// The environment variables allowed on this session channel, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment(pub Vec<(String, String)>);

impl FromRequest for Environment {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(Environment(request.session().map(|s| s.env.clone()).unwrap_or_default()))
    }
}

/// The name of a requested subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsystemName(pub String);

impl FromRequest for SubsystemName {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Subsystem(name) => Ok(SubsystemName(name.clone())),
            _ => Err(Rejection::new("SubsystemName is only available to #[subsystem] handlers")),
        }
    }
}

impl FromRequest for PtyRequest {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Pty(pty) => Ok(pty.clone()),
            _ => request
                .session()
                .and_then(|s| s.pty.clone())
                .ok_or(Rejection::new("no pty was requested on this channel")),
        }
    }
}

impl FromRequest for WindowSize {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::WindowChange(size) => Ok(*size),
            RequestKind::Pty(pty) => Ok(pty.size),
            _ => Err(Rejection::new("WindowSize is only available to #[pty] and #[window_change] handlers")),
        }
    }
}

impl FromRequest for Signal {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Signal(sig) => Ok(sig.clone()),
            _ => Err(Rejection::new("Signal is only available to #[signal] handlers")),
        }
    }
}

impl FromRequest for Command {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Exec(command) => Ok(command.clone()),
            _ => Err(Rejection::new("Command is only available to #[exec] handlers")),
        }
    }
}

impl FromRequest for ChannelIo {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        request.take_io().ok_or(Rejection::new(
            "ChannelIo is only available to #[shell], #[exec] and #[subsystem] handlers, once",
        ))
    }
}

impl FromRequest for Prompter {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        request
            .take_prompter()
            .ok_or(Rejection::new("Prompter is only available to #[auth(keyboard_interactive)] handlers, once"))
    }
}

impl FromRequest for crate::forward::TcpTarget {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::DirectTcpip(target) => Ok(target.clone()),
            _ => Err(Rejection::new("TcpTarget is only available to #[channel(direct_tcpip)] handlers")),
        }
    }
}

impl FromRequest for crate::forward::ListenTarget {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::TcpipForward(target) | RequestKind::CancelTcpipForward(target) => Ok(target.clone()),
            _ => Err(Rejection::new("ListenTarget is only available to #[tcpip_forward] and #[cancel_tcpip_forward] handlers")),
        }
    }
}

/// The Unix socket path of a streamlocal request (`direct-streamlocal`, `streamlocal-forward` or its cancel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPath(pub String);

impl FromRequest for SocketPath {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::DirectStreamlocal { path }
            | RequestKind::StreamlocalForward { path }
            | RequestKind::CancelStreamlocalForward { path } => Ok(SocketPath(path.clone())),
            _ => Err(Rejection::new("SocketPath is only available to streamlocal handlers")),
        }
    }
}

impl FromRequest for crate::forward::X11Request {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::X11(x11) => Ok(x11.clone()),
            _ => request
                .session()
                .and_then(|s| s.x11.clone())
                .ok_or(Rejection::new("no X11 forwarding was allowed on this channel")),
        }
    }
}

/// Whether agent forwarding was allowed on this session channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentForwarded(pub bool);

impl FromRequest for AgentForwarded {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(AgentForwarded(request.session().is_some_and(|s| s.agent)))
    }
}

impl<T: FromRequest> FromRequest for Option<T> {
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        Ok(T::from_request(request).ok())
    }
}
