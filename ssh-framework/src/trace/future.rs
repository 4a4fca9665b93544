use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use crate::request::Response;

/// The response future of [`Trace`](super::Trace).
#[derive(Debug)]
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    span: tracing::Span,
    kind: &'static str,
    started: Instant,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: tracing::Span, kind: &'static str) -> Self {
        ResponseFuture { inner: Box::pin(inner), span, kind, started: Instant::now() }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
    E: std::fmt::Display,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _guard = this.span.enter();
        let result = ready!(this.inner.as_mut().poll(cx));
        let micros = this.started.elapsed().as_micros() as u64;
        match &result {
            Ok(response) => {
                tracing::info!(kind = this.kind, allowed = response.is_allowed(), response = ?response, micros, "decided")
            }
            Err(error) => tracing::warn!(kind = this.kind, %error, micros, "failed"),
        }
        Poll::Ready(result)
    }
}
