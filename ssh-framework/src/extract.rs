//! Extractors: the arguments a handler may ask for besides the fixed ones.
//!
//! Any handler argument after the fixed leading ones (such as `user: &str,
//! password: &str` of a password handler) is an extractor, built from the
//! request being decided. The contract is axum's:
//!
//! - [`FromRequestParts<K>`] extractors only read the request; a handler may
//!   take any number of them, in any order: [`User`], [`PeerAddr`],
//!   [`Factors`], [`Extension<T>`], [`Pty`], [`Command`], ...
//! - [`FromRequest<K>`] extractors that are not `FromRequestParts` consume a part of the
//!   request: [`ChannelIo`] (the channel stream of a shell,
//!   exec or subsystem) and [`Prompter`] (the prompts of a
//!   keyboard-interactive exchange). A handler takes at most one; a second is a
//!   compile error at that argument.
//!
//! `K` is the [handler kind](crate::handler): an extractor a kind never
//! receives (a [`WindowSize`] in `#[shell]`) is a compile
//! error that names the kinds that do.
//!
//! ```
//! use ssh_framework::extract::{Extension, PeerAddr, User};
//! use ssh_framework::{ChannelIo, Command, ExitStatus};
//!
//! #[derive(Clone)]
//! struct Role(&'static str);
//!
//! struct App;
//!
//! #[ssh_framework::server]
//! impl App {
//!     #[exec]
//!     async fn exec(&self, user: User, peer: PeerAddr, role: Option<Extension<Role>>, command: Command, io: ChannelIo) -> ExitStatus {
//!         let _ = (user, peer, role, command, io);
//!         ExitStatus::SUCCESS
//!     }
//! }
//! ```
//!
//! # Extensions
//!
//! [`Extension<T>`] finds a value of type `T` that a layer inserted into the
//! request ([`Request::extensions_mut`]) or, failing that, one attached to the
//! connection ([`Connection::insert_extension`]): an authentication handler
//! attaches the account it looked up, and every later handler of that
//! connection extracts it.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::auth::{Factors, Prompter};
use crate::channel::{ChannelIo, Command, PtyRequest, Signal, WindowSize};
use crate::connection::Connection;
use crate::forward::{Client, ListenTarget, TcpTarget, X11Request};
use crate::handler::{
    self, HasCommand, HasListenTarget, HasSignal, HasSocketPath, HasSubsystemName, HasTcpTarget, HasWindowSize,
    Kind, OnSessionChannel,
};
use crate::request::{Request, RequestKind};

/// Why an extractor could not be built for a request. The handler does not
/// run, the request is refused, and the reason is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(Cow<'static, str>);

impl Rejection {
    /// A rejection with a static reason.
    pub const fn new(reason: &'static str) -> Self {
        Rejection(Cow::Borrowed(reason))
    }

    /// A rejection with a reason built at run time.
    pub fn with_reason(reason: impl Into<String>) -> Self {
        Rejection(Cow::Owned(reason.into()))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejection {}

/// An extractor that reads the request; a handler may take any number.
///
/// `K` is the handler kind; implement it for every kind with
/// `impl<K: Kind> FromRequestParts<K> for MyType`, or bound `K` by a group
/// such as [`OnSessionChannel`].
#[diagnostic::on_unimplemented(
    message = "`{K}` handlers cannot take `{Self}` as an argument",
    label = "not an extractor for `{K}` handlers",
    note = "after the fixed leading arguments a handler may take: `User`, `PeerAddr`, `Arc<Connection>`, `Factors`, `Client`, `Extension<T>`, `Option<T>` of an extractor, and by kind: `Pty`, `PtyRequest`, `Environment`, `X11Request`, `AgentForwarded` (session channel requests), `WindowSize` (#[pty], #[window_change]), `Signal` (#[signal]), `Command` (#[exec]), `SubsystemName` (#[subsystem]), `ChannelIo` (#[shell], #[exec], #[subsystem]), `Prompter` (#[auth(keyboard_interactive)]), `TcpTarget`, `ListenTarget`, `SocketPath` (forwarding); or any type implementing `ssh_framework::extract::FromRequestParts<K>`"
)]
pub trait FromRequestParts<K: Kind>: Sized {
    /// Builds the value from the request.
    fn from_request_parts(request: &Request) -> Result<Self, Rejection>;
}

/// Any extractor: the repeatable ones (every [`FromRequestParts`]) and the
/// consuming ones ([`ChannelIo`], [`Prompter`]).
#[diagnostic::on_unimplemented(
    message = "`{K}` handlers cannot take `{Self}` as an argument",
    label = "not an extractor for `{K}` handlers",
    note = "`ChannelIo` is an argument of #[shell], #[exec] and #[subsystem] handlers; `Prompter` of #[auth(keyboard_interactive)] handlers"
)]
pub trait FromRequest<K: Kind>: Sized {
    /// [`Repeatable`] or [`Consuming`].
    type Access: Access;

    /// Builds the value, taking parts out of the request if it consumes.
    fn from_request(request: &mut Request) -> Result<Self, Rejection>;
}

mod sealed {
    pub trait Sealed {}
}

/// Whether an extractor only reads the request or consumes part of it. Sealed.
pub trait Access: sealed::Sealed {}

/// The access of extractors that only read: any number per handler.
#[derive(Debug)]
pub enum Repeatable {}

/// The access of extractors that take a part of the request: one per handler.
#[derive(Debug)]
pub enum Consuming {}

impl sealed::Sealed for Repeatable {}
impl Access for Repeatable {}
impl sealed::Sealed for Consuming {}
impl Access for Consuming {}

impl<K: Kind, T: FromRequestParts<K>> FromRequest<K> for T {
    type Access = Repeatable;

    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        T::from_request_parts(request)
    }
}

impl FromRequest<handler::Shell> for ChannelIo {
    type Access = Consuming;
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        take_io(request)
    }
}

impl FromRequest<handler::Exec> for ChannelIo {
    type Access = Consuming;
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        take_io(request)
    }
}

impl FromRequest<handler::Subsystem> for ChannelIo {
    type Access = Consuming;
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        take_io(request)
    }
}

fn take_io(request: &mut Request) -> Result<ChannelIo, Rejection> {
    request.take_io().ok_or(Rejection::new("the channel stream was already taken"))
}

impl FromRequest<handler::AuthKeyboardInteractive> for Prompter {
    type Access = Consuming;
    fn from_request(request: &mut Request) -> Result<Self, Rejection> {
        request.take_prompter().ok_or(Rejection::new("the prompter was already taken"))
    }
}

/// The user name: the one being authenticated in an authentication handler,
/// the authenticated user everywhere else.
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

impl<K: Kind> FromRequestParts<K> for User {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
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

impl fmt::Display for PeerAddr {
    /// The address as `ip:port`, or `-` when there is none (as in log lines).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl<K: Kind> FromRequestParts<K> for PeerAddr {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(PeerAddr(request.connection().peer_addr()))
    }
}

impl<K: Kind> FromRequestParts<K> for Arc<Connection> {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(request.connection().clone())
    }
}

impl<K: Kind> FromRequestParts<K> for Factors {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(request.factors().clone())
    }
}

impl<K: Kind> FromRequestParts<K> for Client {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        request.client().ok_or(Rejection::new("the client handle is not available before key exchange"))
    }
}

/// A value of type `T` that a layer inserted into the request or that a
/// handler attached to the connection (request extensions first).
///
/// Take `Option<Extension<T>>` when the value may be missing; a plain
/// `Extension<T>` refuses the request when it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extension<T>(pub T);

impl<T> Deref for Extension<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Extension<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<K: Kind, T: Clone + Send + Sync + 'static> FromRequestParts<K> for Extension<T> {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        if let Some(value) = request.extensions().get::<T>() {
            return Ok(Extension(value.clone()));
        }
        request.connection().extension::<T>().map(Extension).ok_or_else(|| {
            Rejection::with_reason(format!(
                "no extension of type `{}` on the request or its connection",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// The pty allowed on this session channel, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pty(pub Option<PtyRequest>);

impl<K: OnSessionChannel> FromRequestParts<K> for Pty {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(Pty(request.session().and_then(|s| s.pty.clone())))
    }
}

/// The environment variables allowed on this session channel, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment(pub Vec<(String, String)>);

impl<K: OnSessionChannel> FromRequestParts<K> for Environment {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(Environment(request.session().map(|s| s.env.as_ref().clone()).unwrap_or_default()))
    }
}

/// Whether agent forwarding was allowed on this session channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentForwarded(pub bool);

impl<K: OnSessionChannel> FromRequestParts<K> for AgentForwarded {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(AgentForwarded(request.session().is_some_and(|s| s.agent)))
    }
}

/// The name of a requested subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsystemName(pub String);

impl<K: HasSubsystemName> FromRequestParts<K> for SubsystemName {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Subsystem(name) => Ok(SubsystemName(name.clone())),
            _ => Err(Rejection::new("not a subsystem request")),
        }
    }
}

impl<K: OnSessionChannel> FromRequestParts<K> for PtyRequest {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Pty(pty) => Ok(pty.clone()),
            _ => request
                .session()
                .and_then(|s| s.pty.clone())
                .ok_or(Rejection::new("no pty was requested on this channel")),
        }
    }
}

impl<K: HasWindowSize> FromRequestParts<K> for WindowSize {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::WindowChange(size) => Ok(*size),
            RequestKind::Pty(pty) => Ok(pty.size),
            _ => Err(Rejection::new("not a pty or window-change request")),
        }
    }
}

impl<K: HasSignal> FromRequestParts<K> for Signal {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Signal(sig) => Ok(sig.clone()),
            _ => Err(Rejection::new("not a signal request")),
        }
    }
}

impl<K: HasCommand> FromRequestParts<K> for Command {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::Exec(command) => Ok(command.clone()),
            _ => Err(Rejection::new("not an exec request")),
        }
    }
}

impl<K: HasTcpTarget> FromRequestParts<K> for TcpTarget {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::DirectTcpip(target) => Ok(target.clone()),
            _ => Err(Rejection::new("not a direct-tcpip channel open")),
        }
    }
}

impl<K: HasListenTarget> FromRequestParts<K> for ListenTarget {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::TcpipForward(target) | RequestKind::CancelTcpipForward(target) => Ok(target.clone()),
            _ => Err(Rejection::new("not a tcpip-forward request")),
        }
    }
}

/// The Unix socket path of a streamlocal request (`direct-streamlocal`, `streamlocal-forward` or its cancel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPath(pub String);

impl<K: HasSocketPath> FromRequestParts<K> for SocketPath {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::DirectStreamlocal { path }
            | RequestKind::StreamlocalForward { path }
            | RequestKind::CancelStreamlocalForward { path } => Ok(SocketPath(path.clone())),
            _ => Err(Rejection::new("not a streamlocal request")),
        }
    }
}

impl<K: OnSessionChannel> FromRequestParts<K> for X11Request {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        match request.kind() {
            RequestKind::X11(x11) => Ok(x11.clone()),
            _ => request
                .session()
                .and_then(|s| s.x11.clone())
                .ok_or(Rejection::new("no X11 forwarding was allowed on this channel")),
        }
    }
}

impl<K: Kind, T: FromRequestParts<K>> FromRequestParts<K> for Option<T> {
    fn from_request_parts(request: &Request) -> Result<Self, Rejection> {
        Ok(T::from_request_parts(request).ok())
    }
}
