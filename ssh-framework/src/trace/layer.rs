use tower::Layer;

use super::Trace;

/// Applies [`Trace`] to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer {
    _priv: (),
}

impl TraceLayer {
    /// A new tracing layer.
    pub fn new() -> Self {
        TraceLayer { _priv: () }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace::new(inner)
    }
}
