//! Moves bytes between an SSH channel and a socket, both ways, with half-close.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use russh::server::Msg;
use russh::{Channel, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use std::sync::Arc;
use std::time::Duration;

use crate::channel::{Closed, FlowControl, Stdin};
use crate::idle::{Activity, ChannelWatch};

/// Buffer per direction: large enough to fill a 32 KiB packet twice over.
const BUFFER: usize = 64 << 10;
/// How long a forwarded connection may go on after its channel closed (to
/// hand the destination what the client sent before closing); then it is
/// dropped with what the destination did not take.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// A channel as a byte stream that never stalls its connection.
///
/// russh's own `ChannelStream` reads straight from the channel's bounded
/// queue, which the connection's event loop fills after granting the client
/// window. A copy that waits for window on its write side stops reading, the
/// queue fills, the loop blocks on it and never reads the window adjust it
/// waits for: with an echo-like peer (`ssh -L` to an echo server, 16 MiB
/// each way) the connection hung about once in fifteen runs. Reading through
/// [`Stdin`] instead empties the queue from a task of its own into a bounded
/// buffer, as session channels do. Writing respects the client's window;
/// shutting down sends EOF; dropping closes the channel.
pub(crate) struct ChannelDuplex {
    read: Stdin,
    write: Pin<Box<dyn AsyncWrite + Send + Sync>>,
    close: Option<ChannelWriteHalf<Msg>>,
    closed: Closed,
    activity: Activity,
}

impl ChannelDuplex {
    /// Data moved either way counts as `activity` (for [`ChannelTimeout`](crate::limit::ChannelTimeout)).
    pub(crate) fn new(channel: Channel<Msg>, flow: Arc<FlowControl>, activity: Activity) -> Self {
        let (read, write) = channel.split();
        let closed = Closed::default();
        ChannelDuplex {
            read: Stdin::with_close(Vec::new(), false, Some(read), flow, closed.clone(), activity.clone()),
            write: Box::pin(write.make_writer()),
            close: Some(write),
            closed,
            activity,
        }
    }
}

impl fmt::Debug for ChannelDuplex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDuplex").finish_non_exhaustive()
    }
}

impl Drop for ChannelDuplex {
    fn drop(&mut self) {
        if let (Some(write), Ok(runtime)) = (self.close.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                let _ = write.close().await;
            });
        }
    }
}

impl AsyncRead for ChannelDuplex {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChannelDuplex {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = self.write.as_mut().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.activity.bump(n);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.as_mut().poll_flush(cx)
    }

    /// Sends EOF on the channel.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.as_mut().poll_shutdown(cx)
    }
}

/// Copies until both directions reached EOF; EOF on one side is passed on as
/// EOF (or `shutdown(SHUT_WR)`) to the other, and the channel closes when done.
///
/// When the client closes the channel (or the connection ends) first, the
/// copy gets [`CLOSE_GRACE`] to finish, then it is dropped with whatever the
/// destination did not read: a destination that never reads must not hold
/// the channel's buffer (and the connection's budget) forever.
///
/// A channel idle past its [`ChannelTimeout`](crate::limit::ChannelTimeout)
/// (`watch`) is closed: the copy is dropped, and with it the socket.
pub(crate) async fn pump<S>(channel: Channel<Msg>, mut socket: S, flow: Arc<FlowControl>, watch: ChannelWatch)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = ChannelDuplex::new(channel, flow, watch.activity());
    let closed = stream.closed.clone();
    let gone = async move {
        closed.wait().await;
        tokio::time::sleep(CLOSE_GRACE).await;
    };
    tokio::select! {
        result = tokio::io::copy_bidirectional_with_sizes(&mut stream, &mut socket, BUFFER, BUFFER) => match result {
            Ok((to_socket, to_client)) => tracing::debug!(to_socket, to_client, "forwarded connection finished"),
            Err(error) => tracing::debug!(%error, "forwarded connection ended with an error"),
        },
        () = gone => tracing::debug!("channel closed and the destination did not finish; dropping the forwarded connection"),
        () = watch.expired() => {}
    }
}
