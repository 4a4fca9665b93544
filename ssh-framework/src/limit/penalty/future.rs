use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::layer::Then;
use crate::request::Response;

/// The response future of [`Penalty`](super::Penalty).
pub struct ResponseFuture<F> {
    state: State<F>,
}

enum State<F> {
    /// Refused by the layer itself.
    Refused,
    /// Waiting for the inner service; then applies the follow-up.
    Inner { future: Pin<Box<F>>, then: Option<Then> },
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Refused => f.write_str("ResponseFuture::Refused"),
            State::Inner { then, .. } => f.debug_struct("ResponseFuture").field("then", then).finish_non_exhaustive(),
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn refused() -> Self {
        ResponseFuture { state: State::Refused }
    }

    pub(super) fn inner(future: F, then: Then) -> Self {
        ResponseFuture { state: State::Inner { future: Box::pin(future), then: Some(then) } }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Refused => Poll::Ready(Ok(Response::Reject)),
            State::Inner { future, then } => {
                let result = ready!(future.as_mut().poll(cx));
                if let Some(then) = then.take() {
                    then.apply(result.as_ref().ok());
                }
                Poll::Ready(result)
            }
        }
    }
}
