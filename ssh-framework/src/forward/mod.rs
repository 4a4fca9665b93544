//! Port and socket forwarding, X11 and agent channels: the types handlers use to
//! decide, and the built-in forwarders that move the bytes.
//!
//! - Local forwarding (`ssh -L`, `direct-tcpip` and `direct-streamlocal@openssh.com`
//!   channels): a `#[channel(direct_tcpip)]` handler returns a [`Forward`]:
//!   [`Forward::Connect`] lets the built-in forwarder connect to the destination
//!   and pump bytes both ways (with backpressure and half-close),
//!   [`Forward::Refuse`] answers with a typed [`OpenFailure`], and
//!   [`Forward::serve`] hands the channel stream to your own code.
//!   [`PermitOpen`] is a ready policy like OpenSSH's `PermitOpen`.
//! - Remote forwarding (`ssh -R`, `tcpip-forward` and
//!   `streamlocal-forward@openssh.com`): when a `#[tcpip_forward]` handler
//!   allows it, the framework binds the listener (port 0 picks a free one and
//!   reports it), opens a `forwarded-tcpip` channel per accepted connection, and
//!   closes it on cancel or disconnect. Bind address policy, privileged ports
//!   and a per-connection listener cap are enforced before any handler runs.
//! - X11 and agent forwarding: `#[x11]` and `#[agent]` decide the requests;
//!   the [`Client`] extractor opens `x11` and `auth-agent@openssh.com` channels
//!   back to the client, and [`AgentListener`] offers the client's agent on a
//!   Unix socket (what `SSH_AUTH_SOCK` points at).
//!
//! # What russh answers before any handler
//!
//! russh 0.65 decides some messages itself; no handler, layer or log line of
//! ours ever sees them:
//!
//! - **Global requests** other than `tcpip-forward`, `cancel-tcpip-forward`,
//!   `streamlocal-forward@openssh.com` and
//!   `cancel-streamlocal-forward@openssh.com` are answered with
//!   `SSH_MSG_REQUEST_FAILURE` (russh `src/server/encrypted.rs`, the `_ =>`
//!   arm of the `msg::GLOBAL_REQUEST` match). Hence:
//!   - custom global requests cannot be handled, and `#[global_request]` is a
//!     compile error saying so;
//!   - `keepalive@openssh.com` (OpenSSH's `ServerAliveInterval`) is answered
//!     with that failure, which OpenSSH clients accept as a keepalive reply:
//!     any reply proves the server alive;
//!   - `no-more-sessions@openssh.com` is answered with failure and therefore
//!     not enforced: a client that sent it can still open session channels.
//!     Cap sessions with [`ServerBuilder::max_sessions`](crate::ServerBuilder::max_sessions)
//!     or decide them in `#[channel(session)]`.
//! - **Client-opened `auth-agent@openssh.com` and
//!   `forwarded-streamlocal@openssh.com` channels** are refused with
//!   `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED` ("Unsupported channel type") in
//!   russh's `server_handle_channel_open`. Both are channel types only a
//!   server opens, so a well-behaved client never sends them. Client-opened
//!   `x11` and `forwarded-tcpip` channels (also server-to-client types) do
//!   reach the connection and are refused there, administratively
//!   prohibited; channel types russh does not know get
//!   `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`.
//!
//! The four forwarding global requests, `direct-tcpip` and
//! `direct-streamlocal@openssh.com` channels, and the `x11-req` and
//! `auth-agent-req@openssh.com` channel requests all pass through the
//! service stack as [`RequestKind`](crate::RequestKind)s, so layers see them
//! before any handler does.

mod client;
pub(crate) mod local;
mod pump;
pub(crate) mod remote;
pub(crate) mod slots;

pub use self::client::{AgentListener, Client, ClientChannel};
pub use crate::limits::GatewayPorts;
pub(crate) use self::pump::pump;

/// Waits out a failed `accept` on a forwarding listener. ECONNABORTED (a
/// peer that gave up before we accepted) and EMFILE are transient: ending
/// the accept loop on them would silently close a client's forward.
pub(crate) async fn accept_failed(error: std::io::Error) {
    tracing::debug!(%error, "accept on a forwarding listener failed; retrying");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

use std::fmt;

use futures_util::future::BoxFuture;

use crate::channel::ChannelIo;

/// Why a channel open is refused (RFC 4254 §5.1 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED`: policy says no.
    AdministrativelyProhibited,
    /// `SSH_OPEN_CONNECT_FAILED`: the destination could not be reached.
    ConnectFailed,
    /// `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`.
    UnknownChannelType,
    /// `SSH_OPEN_RESOURCE_SHORTAGE`: a limit was reached.
    ResourceShortage,
}

impl OpenFailure {
    pub(crate) fn to_russh(self) -> russh::ChannelOpenFailure {
        match self {
            OpenFailure::AdministrativelyProhibited => russh::ChannelOpenFailure::AdministrativelyProhibited,
            OpenFailure::ConnectFailed => russh::ChannelOpenFailure::ConnectFailed,
            OpenFailure::UnknownChannelType => russh::ChannelOpenFailure::UnknownChannelType,
            OpenFailure::ResourceShortage => russh::ChannelOpenFailure::ResourceShortage,
        }
    }
}

/// A function that serves a forwarded channel in-process.
pub type ServeFn = Box<dyn FnOnce(ChannelIo) -> BoxFuture<'static, ()> + Send>;

/// The answer of a `#[channel(direct_tcpip)]` or `#[channel(direct_streamlocal)]` handler.
#[must_use]
pub enum Forward {
    /// Connect to the destination and pump bytes both ways.
    Connect,
    /// Refuse the channel with this reason.
    Refuse(OpenFailure),
    /// Accept the channel and serve it in-process (an in-process service behind `-L`).
    Serve(ServeFn),
}

impl Forward {
    /// Accepts and serves the channel with `f` instead of connecting anywhere.
    pub fn serve<F, Fut>(f: F) -> Self
    where
        F: FnOnce(ChannelIo) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Forward::Serve(Box::new(move |io| Box::pin(f(io))))
    }
}

impl fmt::Debug for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forward::Connect => f.write_str("Connect"),
            Forward::Refuse(r) => f.debug_tuple("Refuse").field(r).finish(),
            Forward::Serve(_) => f.write_str("Serve(..)"),
        }
    }
}

/// Where a `direct-tcpip` channel wants to go, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpTarget {
    /// Destination host as the client sent it (name or address).
    pub host: String,
    /// Destination port.
    pub port: u32,
    /// The address of the client-side connection that was forwarded.
    pub originator_host: String,
    /// Its port.
    pub originator_port: u32,
}

/// A `tcpip-forward` (or its cancel) request: the address and port to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenTarget {
    /// The bind address the client asked for (`""`, `localhost`, `0.0.0.0`, ...).
    pub address: String,
    /// The port (0: the server picks one).
    pub port: u32,
}

/// An `x11-req` (RFC 4254 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X11Request {
    /// Only one X11 connection should be forwarded.
    pub single_connection: bool,
    /// The X11 authentication protocol, such as `MIT-MAGIC-COOKIE-1`.
    pub auth_protocol: String,
    /// The (fake) authentication cookie, hex-encoded.
    pub auth_cookie: String,
    /// The X11 screen number.
    pub screen: u32,
}

/// A list of allowed `host:port` destinations, like OpenSSH's `PermitOpen`.
///
/// Entries are `host:port`, with `*` as a wildcard for either part, and IPv6
/// addresses in brackets (`[::1]:22`). Host names compare case-insensitively
/// and exactly as the client sent them (no resolution).
///
/// ```
/// use ssh_framework::forward::PermitOpen;
///
/// let policy: PermitOpen = "localhost:8080,*:5432".parse().unwrap();
/// assert!(policy.allows("localhost", 8080));
/// assert!(policy.allows("db.internal", 5432));
/// assert!(!policy.allows("localhost", 22));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermitOpen {
    entries: Vec<(Option<String>, Option<u32>)>,
    any: bool,
}

/// A `PermitOpen` entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPermitOpen(pub String);

impl fmt::Display for InvalidPermitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid permit-open entry `{}` (expected HOST:PORT, `*` allowed for either)", self.0)
    }
}

impl std::error::Error for InvalidPermitOpen {}

impl PermitOpen {
    /// Allows every destination.
    pub fn any() -> Self {
        PermitOpen { entries: Vec::new(), any: true }
    }

    /// Allows nothing until entries are added.
    pub fn none() -> Self {
        PermitOpen::default()
    }

    /// Adds one `host:port` entry.
    pub fn allow(mut self, entry: &str) -> Result<Self, InvalidPermitOpen> {
        let bad = || InvalidPermitOpen(entry.to_owned());
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
            (host, rest.strip_prefix(':').ok_or_else(bad)?)
        } else {
            entry.rsplit_once(':').ok_or_else(bad)?
        };
        if host.is_empty() {
            return Err(bad());
        }
        let host = (host != "*").then(|| host.to_ascii_lowercase());
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| bad())?.into()),
        };
        self.entries.push((host, port));
        Ok(self)
    }

    /// Whether `host:port` is allowed.
    pub fn allows(&self, host: &str, port: u32) -> bool {
        self.any
            || self.entries.iter().any(|(h, p)| {
                h.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(host)) && p.is_none_or(|p| p == port)
            })
    }
}

impl std::str::FromStr for PermitOpen {
    type Err = InvalidPermitOpen;

    /// Parses a comma- or space-separated list; `any` allows everything, `none` nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut policy = PermitOpen::none();
        for entry in s.split([',', ' ']).filter(|e| !e.is_empty()) {
            match entry {
                "any" => policy.any = true,
                "none" => {}
                e => policy = policy.allow(e)?,
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permit_open_matches_host_and_port_wildcards() {
        let p: PermitOpen = "localhost:80 *:5432 [::1]:*".parse().unwrap();
        assert!(p.allows("LOCALHOST", 80));
        assert!(!p.allows("localhost", 81));
        assert!(p.allows("anything", 5432));
        assert!(p.allows("::1", 1));
        assert!(!p.allows("127.0.0.1", 80));
        assert!("nohost".parse::<PermitOpen>().is_err());
        assert!("h:99999".parse::<PermitOpen>().is_err());
        assert!(PermitOpen::any().allows("x", 1));
    }
}
