//! The crate's error types: [`Error`] for building and running a server,
//! [`ConnectionError`] for how one connection ended.
//!
//! Both are opaque: match on their [`kind`](Error::kind), read the message with
//! `Display`, and walk the cause with [`std::error::Error::source`]. Neither
//! names a `russh` type, so upgrading the protocol library is not a breaking
//! change for users.

use std::fmt;

/// The error type of layers in the service stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong while building or running a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O error: binding a listener, reading or writing a host key file.
    Io,
    /// A host key could not be read, generated or encoded, or none was given;
    /// or a host certificate could not be read or cannot be served (a user
    /// certificate, for none of the host keys, expired, a bad signature).
    HostKey,
    /// Two registered handlers claim the same decision (the source is a
    /// [`RouteConflict`](crate::RouteConflict)).
    RouteConflict,
    /// The builder has no listen address.
    NoListenAddress,
}

/// An error from building or running a server.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    pub(crate) fn with_source(kind: ErrorKind, message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error { kind, message: message.into(), source: Some(source.into()) }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("kind", &self.kind).field("message", &self.message).field("source", &self.source).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) if self.message.is_empty() => source.fmt(f),
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::with_source(ErrorKind::Io, "I/O error", e)
    }
}

/// Why a connection ended other than by a clean disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionErrorKind {
    /// The peer broke the SSH protocol, or key exchange failed.
    Protocol,
    /// The transport failed (reset, broken pipe).
    Io,
    /// The client sent more authentication requests than any honest client does.
    TooManyAuthRequests,
    /// The client did not authenticate within the login grace time (OpenSSH's `LoginGraceTime`).
    LoginGraceTimeExceeded,
    /// An authenticated connection had no open channel for the unused
    /// connection timeout (OpenSSH's `UnusedConnectionTimeout`).
    UnusedConnectionTimeout,
}

/// How one connection ended, when it did not end cleanly; returned by
/// [`Server::serve_connection`](crate::Server::serve_connection).
pub struct ConnectionError {
    kind: ConnectionErrorKind,
    source: Option<BoxError>,
}

impl ConnectionError {
    pub(crate) fn new(kind: ConnectionErrorKind, source: Option<BoxError>) -> Self {
        ConnectionError { kind, source }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ConnectionErrorKind {
        self.kind
    }
}

impl fmt::Debug for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionError").field("kind", &self.kind).field("source", &self.source).finish()
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ConnectionErrorKind::Protocol => "SSH protocol error",
            ConnectionErrorKind::Io => "connection I/O error",
            ConnectionErrorKind::TooManyAuthRequests => "too many authentication requests",
            ConnectionErrorKind::LoginGraceTimeExceeded => "login grace time exceeded",
            ConnectionErrorKind::UnusedConnectionTimeout => "no open channel for the unused connection timeout",
        };
        match &self.source {
            Some(source) => write!(f, "{what}: {source}"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
