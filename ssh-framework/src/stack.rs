//! [`Stack`]: the service stack as a layer sees it.
//!
//! Every decision is a [`Request`] sent through a `tower::Service` stack whose
//! innermost service is the routing table. [`ServerBuilder::layer`](crate::ServerBuilder::layer)
//! wraps the stack built so far, which is a [`Stack`]: a cloneable, type-erased
//! `Service<Request, Response = Response, Error = BoxError>`. Write a layer as
//! `impl Layer<Stack>` (or generically over any such service), exactly as for
//! axum or tonic.

use std::fmt;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::error::BoxError;
use crate::request::{Request, Response};

/// The service stack below a layer: cloneable, `Send + Sync`, type-erased.
#[derive(Clone)]
pub struct Stack(BoxCloneSyncService<Request, Response, BoxError>);

impl Stack {
    /// Erases the type of `service`.
    pub fn new<S>(service: S) -> Self
    where
        S: Service<Request, Response = Response> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        Stack(BoxCloneSyncService::new(service.map_err(Into::into)))
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack").finish_non_exhaustive()
    }
}

impl Service<Request> for Stack {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.0.call(request)
    }
}
