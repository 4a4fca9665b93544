//! Remote forwarding (`ssh -R`): the listeners one connection holds, the bind
//! policy (`GatewayPorts`, privileged ports, a cap per connection), and the
//! task per listener that turns each accepted connection into a channel to the
//! client. Listeners close on cancel and when the connection ends.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use russh::Channel;
use russh::server::Msg;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::slots::ForwardSlots;
use crate::connection::Connection;
use crate::limits::{GatewayPorts, Limits};

/// Remote-forward listeners of one connection; closed when it ends.
pub(crate) struct Listeners {
    tcp: HashMap<(String, u32), JoinHandle<()>>,
    unix: HashMap<String, JoinHandle<()>>,
    /// At most this many at once ([`MaxListeners`](crate::limit::MaxListeners)).
    max: usize,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, task) in self.tcp.drain() {
            task.abort();
        }
        for (path, task) in self.unix.drain() {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Listeners {
    pub(crate) fn new(max: usize) -> Self {
        Listeners { tcp: HashMap::new(), unix: HashMap::new(), max }
    }

    /// Whether another listener would exceed the cap.
    pub(crate) fn full(&self) -> bool {
        let full = self.tcp.len() + self.unix.len() >= self.max;
        if full {
            tracing::info!(max = self.max, "listener limit reached; forward refused");
        }
        full
    }

    /// The address and port a `tcpip-forward` may bind under the server's
    /// policy, checked before any handler runs.
    pub(crate) fn tcp_bind_target(address: &str, port: u32, limits: &Limits) -> Option<(IpAddr, u16)> {
        let requested = u16::try_from(port).ok()?;
        if requested != 0 && requested < 1024 && !limits.allow_privileged_ports {
            tracing::info!(port = requested, "privileged port refused");
            return None;
        }
        let Some(ip) = bind_address(address, limits.gateway_ports) else {
            tracing::info!(address, "bind address not allowed or not an address");
            return None;
        };
        Some((ip, requested))
    }

    /// Binds an allowed `tcpip-forward` and starts its listener; sets `port`
    /// to the bound port when the client asked for 0.
    pub(crate) async fn listen_tcp(
        &mut self,
        address: &str,
        (ip, requested): (IpAddr, u16),
        port: &mut u32,
        connection: &Arc<Connection>,
        slots: &ForwardSlots,
        span: &tracing::Span,
    ) -> bool {
        let listener = match tokio::net::TcpListener::bind((ip, requested)).await {
            Ok(l) => l,
            Err(error) => {
                tracing::info!(parent: span, %error, "tcpip-forward bind failed");
                return false;
            }
        };
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(requested);
        if *port == 0 {
            *port = u32::from(bound);
        }
        let Some(handle) = connection.handle().cloned() else { return false };
        tracing::info!(parent: span, address, port = bound, %ip, "remote forward listening");
        let connected_address = address.to_owned();
        let open: OpenToClient = Box::new(move |origin, origin_port| {
            let (handle, connected_address) = (handle.clone(), connected_address.clone());
            Box::pin(async move { handle.channel_open_forwarded_tcpip(connected_address, u32::from(bound), origin, origin_port).await })
        });
        let task = spawn_listener(listener, slots.clone(), connection, open, span, "forwarded-tcpip");
        if let Some(old) = self.tcp.insert((address.to_owned(), u32::from(bound)), task) {
            old.abort();
        }
        true
    }

    /// Whether this connection holds the TCP listener it asks to cancel.
    pub(crate) fn owns_tcp(&self, address: &str, port: u32) -> bool {
        self.tcp.contains_key(&(address.to_owned(), port))
    }

    /// Closes a TCP listener; the port is free again when this returns.
    pub(crate) async fn cancel_tcp(&mut self, address: &str, port: u32) {
        if let Some(task) = self.tcp.remove(&(address.to_owned(), port)) {
            task.abort();
            // The task owns the socket: wait until it is dropped so the port is
            // closed (and free to bind again) before the client hears success.
            let _ = task.await;
            tracing::info!(address, port, "remote forward cancelled");
        }
    }

    /// Binds an allowed `streamlocal-forward@openssh.com`, its socket without
    /// the permission bits of `mask`, and starts its listener.
    pub(crate) fn listen_unix(
        &mut self,
        path: &str,
        mask: u32,
        connection: &Arc<Connection>,
        slots: &ForwardSlots,
        span: &tracing::Span,
    ) -> bool {
        let listener = match bind_unix(path, mask) {
            Ok(l) => l,
            Err(error) => {
                tracing::info!(parent: span, %error, path, "streamlocal-forward bind failed");
                return false;
            }
        };
        let Some(handle) = connection.handle().cloned() else { return false };
        let socket_path = path.to_owned();
        let open: OpenToClient = Box::new(move |_, _| {
            let (handle, path) = (handle.clone(), socket_path.clone());
            Box::pin(async move { handle.channel_open_forwarded_streamlocal(path).await })
        });
        let task = spawn_listener(listener, slots.clone(), connection, open, span, "forwarded-streamlocal@openssh.com");
        if let Some(old) = self.unix.insert(path.to_owned(), task) {
            old.abort();
        }
        true
    }

    /// Whether this connection holds the socket listener it asks to cancel.
    pub(crate) fn owns_unix(&self, path: &str) -> bool {
        self.unix.contains_key(path)
    }

    /// Closes a socket listener and removes the socket file.
    pub(crate) async fn cancel_unix(&mut self, path: &str) {
        if let Some(task) = self.unix.remove(path) {
            task.abort();
            let _ = task.await;
            let _ = std::fs::remove_file(path);
            tracing::info!(path, "remote socket forward cancelled");
        }
    }
}

/// A remote-forward listener: TCP for `tcpip-forward`, Unix for `streamlocal-forward@openssh.com`.
trait ForwardListener: Send + 'static {
    type Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection and its origin (address and port; empty and 0 for Unix sockets).
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Socket, String, u32)>> + Send;
}

impl ForwardListener for tokio::net::TcpListener {
    type Socket = tokio::net::TcpStream;

    async fn accept(&self) -> std::io::Result<(Self::Socket, String, u32)> {
        let (socket, peer) = tokio::net::TcpListener::accept(self).await?;
        let _ = socket.set_nodelay(true);
        Ok((socket, peer.ip().to_string(), u32::from(peer.port())))
    }
}

impl ForwardListener for tokio::net::UnixListener {
    type Socket = tokio::net::UnixStream;

    async fn accept(&self) -> std::io::Result<(Self::Socket, String, u32)> {
        let (socket, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((socket, String::new(), 0))
    }
}

/// Opens the channel to the client for one accepted connection, given its origin.
type OpenToClient = Box<dyn Fn(String, u32) -> BoxFuture<'static, Result<Channel<Msg>, russh::Error>> + Send + Sync>;

/// Accepts until aborted; each connection, within the connection's forwarding
/// channel limit, becomes a channel to the client pumped both ways.
fn spawn_listener<L: ForwardListener>(
    listener: L,
    slots: ForwardSlots,
    connection: &Arc<Connection>,
    open: OpenToClient,
    span: &tracing::Span,
    channel_type: &'static str,
) -> JoinHandle<()> {
    let open = Arc::new(open);
    let flow = connection.flow().clone();
    let connection = connection.clone();
    let task = async move {
        loop {
            let (socket, origin, origin_port) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    super::accept_failed(error).await;
                    continue;
                }
            };
            let Some(slot) = slots.acquire() else { continue };
            let (open, flow) = (open.clone(), flow.clone());
            let watch = connection.channel_watch(channel_type);
            tokio::spawn(
                async move {
                    match open(origin, origin_port).await {
                        Ok(channel) => super::pump(channel, socket, flow, watch).await,
                        Err(error) => tracing::debug!(%error, "client refused the forwarded channel"),
                    }
                    drop(slot);
                }
                .in_current_span(),
            );
        }
    };
    tokio::spawn(task.instrument(span.clone()))
}

/// Listens on a new Unix socket at `path` with mode `0o777 & !mask` (less the
/// process umask) from the moment the file exists.
///
/// OpenSSH sets the umask around `bind`; the umask is per process, and here
/// other threads create files meanwhile. Linux instead takes the new file's
/// mode from the socket's own inode, less the umask, so the mode is set on
/// the socket before `bind`. Where a platform ignores that, the check after
/// `bind` removes the socket and refuses the forward.
fn bind_unix(path: &str, mask: u32) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;

    use socket2::{Domain, SockAddr, Socket, Type};

    let mode = 0o777 & !mask;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    rustix::fs::fchmod(&socket, rustix::fs::Mode::from_raw_mode(mode))?;
    socket.bind(&SockAddr::unix(path)?)?;
    let created = std::fs::symlink_metadata(path).map(|m| m.permissions().mode() & 0o777);
    if !created.as_ref().is_ok_and(|created| created & !mode == 0) {
        let _ = std::fs::remove_file(path);
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the socket was not created with mode {mode:o} or stricter ({created:?})"),
        ));
    }
    // OpenSSH's listen backlog for forwarded sockets.
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(std::os::fd::OwnedFd::from(socket).into())
}

/// The address a remote forward binds, under the `GatewayPorts` policy.
fn bind_address(requested: &str, policy: GatewayPorts) -> Option<IpAddr> {
    let loopback = if requested.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6() && a.is_loopback()) {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    match policy {
        GatewayPorts::No => Some(loopback),
        GatewayPorts::Yes => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        GatewayPorts::ClientSpecified => match requested {
            "" | "*" | "0.0.0.0" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            "localhost" => Some(loopback),
            other => other.parse().ok(),
        },
    }
}
