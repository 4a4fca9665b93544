//! A byte stream the connection's task can cut from outside russh.
//!
//! Why: [`russh::server::run_stream`] moves the stream into a task of its own
//! and hands back a future that only waits for that task; dropping the future
//! detaches the task, it does not stop it. A disconnect queued through the
//! session's handle is sent by that same task, and not before the key
//! exchange has finished: a client that sends its version line and then
//! stays silent would keep its socket (and its `MaxStartups` slot) for ever.
//! Cutting the stream makes the next read end of file and the next write
//! fail, so russh's loop ends and drops the socket, whatever state the
//! handshake is in.
//!
//! The cost on the data path is one atomic load per read or write that
//! completes; only a read or write that would wait also registers its waker.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Default)]
struct State {
    cut: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl State {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }
}

/// Cuts its [`Severable`] stream when dropped (or when [`Cut::now`] is called).
#[derive(Debug)]
pub(crate) struct Cut {
    state: Arc<State>,
}

impl Cut {
    /// Cuts the stream: a read that waits, or the next one, sees end of file;
    /// a write fails with `BrokenPipe`.
    pub(crate) fn now(&self) {
        if !self.state.cut.swap(true, Ordering::AcqRel) {
            self.state.reader.wake();
            self.state.writer.wake();
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.now();
    }
}

/// A stream that a [`Cut`] can end from another task.
#[derive(Debug)]
pub(crate) struct Severable<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> Severable<S> {
    /// Wraps `inner`; the stream is cut when the returned [`Cut`] is dropped.
    pub(crate) fn new(inner: S) -> (Self, Cut) {
        let state = Arc::new(State::default());
        (Severable { inner, state: state.clone() }, Cut { state })
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection cut by the server")
}

impl<S: AsyncRead + Unpin> AsyncRead for Severable<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.state.is_cut() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => {
                // Registered before the second look, so a cut in between is not missed.
                self.state.reader.register(cx.waker());
                if self.state.is_cut() { Poll::Ready(Ok(())) } else { Poll::Pending }
            }
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> Severable<S> {
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.state.is_cut() {
            return Poll::Ready(Err(broken_pipe()));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Pending => {
                self.state.writer.register(cx.waker());
                if self.state.is_cut() { Poll::Ready(Err(broken_pipe())) } else { Poll::Pending }
            }
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Severable<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(cx, |inner, cx| inner.poll_shutdown(cx))
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_cut_ends_a_waiting_read_and_fails_later_writes() {
        let (near, mut far) = tokio::io::duplex(64);
        let (mut stream, cut) = Severable::new(near);
        far.write_all(b"before").await.unwrap();
        let mut buf = [0; 6];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"before");

        let reader = tokio::spawn(async move {
            let mut rest = Vec::new();
            let n = stream.read_to_end(&mut rest).await.unwrap();
            (n, stream)
        });
        tokio::task::yield_now().await;
        drop(cut);
        let (n, mut stream) = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await.unwrap().unwrap();
        assert_eq!(n, 0);
        let error = stream.write_all(b"after").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
