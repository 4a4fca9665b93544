//! A `tower` middleware that records every decision as a `tracing` event.
//!
//! The runtime itself opens a span per connection (fields `id`, `peer` and,
//! once authenticated, `user`) and a span per channel (`id`, `kind`); requests
//! are decided inside those spans. [`Trace`] adds one span per request with its
//! kind, and an event with the outcome and how long the decision took, so a
//! subscriber sees which layer or handler allowed or refused what.
//!
//! An accepted shell, exec or subsystem is logged once more when its body
//! ends, at `info`: the user, the kind, the command line or subsystem name,
//! the exit code (`code`) or signal (`signal`) and how long the session ran
//! (`millis`). A body that ends without an exit status (it panicked, the
//! client closed the channel, a channel timeout dropped it) is logged as
//! such. The channel's data is not touched: the layer only wraps the body's
//! future.
//!
//! ```no_run
//! # struct App;
//! # #[ssh_framework::server] impl App {}
//! let builder = ssh_framework::Server::builder()
//!     .handlers(App)
//!     .layer(ssh_framework::trace::TraceLayer::new());
//! ```

mod future;
mod layer;

pub use self::future::ResponseFuture;
use self::future::SessionRecord;
pub use self::layer::TraceLayer;

use std::task::{Context, Poll};

use tower::Service;

use crate::request::{Request, Response};

/// Records each request's decision; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Trace { inner }
    }

    inner_service_accessors!();
}

impl<S> Service<Request> for Trace<S>
where
    S: Service<Request, Response = Response>,
    S::Error: std::fmt::Display,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let kind = request.kind().name();
        let span = tracing::info_span!("request", kind, user = request.kind().auth_user().unwrap_or(""));
        let session = SessionRecord::of(&request);
        let inner = {
            let _guard = span.enter();
            self.inner.call(request)
        };
        ResponseFuture::new(inner, span, kind, session)
    }
}
