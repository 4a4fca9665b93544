//! A TCP stream that sets `TCP_QUICKACK` after each of its first reads, so
//! the server acknowledges the client's key-exchange packets at once.
//!
//! Why: the OpenSSH client leaves Nagle's algorithm on for non-interactive
//! sessions. When the server's KEXINIT has already left before the client's
//! KEXINIT arrives, the server has nothing to send back, so Linux delays its
//! ACK (about 40 ms) and the client's small KEX_ECDH_INIT waits for that ACK.
//! Every such login costs 40 ms more. Quick ACKs during the handshake remove
//! the wait: measured with the benchmark in `bench/`, sequential OpenSSH
//! logins went from 31.7/s to 82.5/s, with the same CPU per login.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads after which the wrapper stops setting `TCP_QUICKACK` (the handshake,
/// authentication and channel setup are done by then).
const HANDSHAKE_READS: u32 = 32;

/// A [`TcpStream`] that acknowledges the first reads immediately.
#[derive(Debug)]
pub(crate) struct QuickAck {
    inner: TcpStream,
    reads_left: u32,
}

impl QuickAck {
    pub(crate) fn new(inner: TcpStream) -> Self {
        QuickAck { inner, reads_left: HANDSHAKE_READS }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before && self.reads_left > 0 {
            self.reads_left -= 1;
            // Leaves delayed-ACK (pingpong) mode and sends a pending ACK now.
            let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
        }
        result
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
