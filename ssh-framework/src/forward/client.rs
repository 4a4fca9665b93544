//! Channels the server opens back to the client: forwarded connections, X11 and the agent.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use russh::server::Handle;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixListener;

use super::pump::ChannelDuplex;
use crate::connection::{Connection, Held};

/// The connected client, for opening channels back to it.
///
/// Take it as a handler argument. Opening a channel waits for the client's
/// confirmation, so call these from a channel body or a spawned task, not
/// from a decision that the connection awaits.
#[derive(Clone)]
pub struct Client {
    handle: Handle,
    connection: Arc<Connection>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("connection", &self.connection.id()).finish_non_exhaustive()
    }
}

fn open_error(e: russh::Error) -> io::Error {
    match e {
        russh::Error::ChannelOpenFailure(reason) => {
            io::Error::new(io::ErrorKind::ConnectionRefused, format!("the client refused the channel: {reason:?}"))
        }
        other => io::Error::new(io::ErrorKind::BrokenPipe, other.to_string()),
    }
}

impl Client {
    pub(crate) fn new(handle: Handle, connection: Arc<Connection>) -> Self {
        Client { handle, connection }
    }

    /// The connection this client is on.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// Opens an `x11` channel (after an allowed `x11-req`) for one X11 client connection.
    pub async fn open_x11(&self, originator_address: &str, originator_port: u32) -> io::Result<ClientChannel> {
        let place = self.channel_place()?;
        let channel = self.handle.channel_open_x11(originator_address, originator_port).await.map_err(open_error)?;
        Ok(self.client_channel(channel, "x11-connection", place))
    }

    /// Opens an `auth-agent@openssh.com` channel to the client's agent (after an allowed agent request).
    pub async fn open_agent(&self) -> io::Result<ClientChannel> {
        let place = self.channel_place()?;
        let channel = self.handle.channel_open_agent().await.map_err(open_error)?;
        Ok(self.client_channel(channel, "agent-connection", place))
    }

    /// Opens a `forwarded-tcpip` channel for a connection accepted on a remote-forward listener.
    pub async fn open_forwarded_tcpip(
        &self,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
    ) -> io::Result<ClientChannel> {
        let place = self.channel_place()?;
        let channel = self
            .handle
            .channel_open_forwarded_tcpip(connected_address, connected_port, originator_address, originator_port)
            .await
            .map_err(open_error)?;
        Ok(self.client_channel(channel, "forwarded-tcpip", place))
    }

    /// Opens a `forwarded-streamlocal@openssh.com` channel for a connection accepted on a forwarded socket.
    pub async fn open_forwarded_streamlocal(&self, socket_path: &str) -> io::Result<ClientChannel> {
        let place = self.channel_place()?;
        let channel = self.handle.channel_open_forwarded_streamlocal(socket_path).await.map_err(open_error)?;
        Ok(self.client_channel(channel, "forwarded-streamlocal@openssh.com", place))
    }

    /// A place under the connection's [`MaxChannels`](crate::limit::MaxChannels), or an error at the cap.
    fn channel_place(&self) -> io::Result<Option<Held>> {
        self.connection.channel_place().ok_or_else(|| {
            tracing::info!("channel limit reached; channel to the client not opened");
            io::Error::new(io::ErrorKind::QuotaExceeded, "too many channels open on this connection")
        })
    }

    /// Wraps an opened channel, watched by the connection's [`ChannelTimeout`](crate::limit::ChannelTimeout).
    fn client_channel(&self, channel: russh::Channel<russh::server::Msg>, channel_type: &str, place: Option<Held>) -> ClientChannel {
        let watch = self.connection.channel_watch(channel_type);
        let duplex = ChannelDuplex::new(channel, self.connection.flow().clone(), watch.activity());
        let expired: Option<Pin<Box<dyn Future<Output = ()> + Send>>> =
            watch.is_watched().then(|| Box::pin(watch.expired()) as _);
        ClientChannel { duplex, expired, timed_out: false, _place: place }
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// A channel opened to the client, as a byte stream. Dropping it closes the channel.
///
/// What the client sends is buffered by a task of its own, so a writer
/// waiting for the client's window never stalls the connection; the buffer
/// counts against the connection's and the server's channel budgets (see
/// [`ServerBuilder::max_channel_buffers_per_connection`](crate::ServerBuilder::max_channel_buffers_per_connection)).
///
/// Under a [`ChannelTimeout`](crate::limit::ChannelTimeout) for its type, a
/// channel idle for its interval fails every later read and write with
/// [`io::ErrorKind::TimedOut`]: drop it to close the channel.
pub struct ClientChannel {
    duplex: ChannelDuplex,
    /// Resolves when the channel timed out; polled with reads (only when a timeout applies).
    expired: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    timed_out: bool,
    /// Its place under `MaxChannels`, given back when it is dropped.
    _place: Option<Held>,
}

impl ClientChannel {
    /// Whether the channel's timeout expired: `Err(TimedOut)` once it has.
    fn check_timeout(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.timed_out
            && let Some(expired) = self.expired.as_mut()
            && expired.as_mut().poll(cx).is_ready()
        {
            self.timed_out = true;
            self.expired = None;
        }
        if self.timed_out { Err(io::Error::new(io::ErrorKind::TimedOut, "channel timeout: no traffic")) } else { Ok(()) }
    }
}

impl fmt::Debug for ClientChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientChannel").finish_non_exhaustive()
    }
}

impl AsyncRead for ClientChannel {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_timeout(cx)?;
        Pin::new(&mut self.duplex).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientChannel {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check_timeout(cx)?;
        Pin::new(&mut self.duplex).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.duplex).poll_flush(cx)
    }

    /// Sends EOF on the channel.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.duplex).poll_shutdown(cx)
    }
}

/// Offers the client's forwarded agent on a Unix socket, as OpenSSH's sshd does
/// for `SSH_AUTH_SOCK`: each connection to the socket opens an
/// `auth-agent@openssh.com` channel to the client.
///
/// The socket lives in a fresh directory with mode 0700; both are removed when
/// the listener is dropped.
#[derive(Debug)]
pub struct AgentListener {
    dir: PathBuf,
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl AgentListener {
    /// Binds a socket in a new directory under `parent` (usually `std::env::temp_dir()`).
    pub fn bind(client: Client, parent: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let suffix: u64 = rand::random();
        let dir = parent.join(format!("ssh-framework-agent-{}-{suffix:016x}", client.connection.id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("agent.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let task = tokio::spawn(async move {
            loop {
                let socket = match listener.accept().await {
                    Ok((socket, _)) => socket,
                    Err(error) => {
                        super::accept_failed(error).await;
                        continue;
                    }
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let watch = client.connection.channel_watch("agent-connection");
                    match client.handle().channel_open_agent().await {
                        Ok(channel) => super::pump(channel, socket, client.connection.flow().clone(), watch).await,
                        Err(error) => tracing::debug!(%error, "client refused the agent channel"),
                    }
                });
            }
        });
        Ok(AgentListener { dir, path, task })
    }

    /// The socket's path: set `SSH_AUTH_SOCK` to it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentListener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
