//! [`MotdLayer`]: a message of the day on the client's stdout before the handler runs.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::{SessionKinds, for_terminal, has_pty, tell};
use crate::request::{Request, Response};

type Text = Arc<dyn Fn(&Request) -> Option<String> + Send + Sync>;

/// Applies [`Motd`]: when a handler accepts a shell (or exec, subsystem:
/// see [`on`](MotdLayer::on)), a message is written to the client's stdout
/// before the handler's body runs, as sshd prints `/etc/motd` at login.
///
/// The text may depend on the request (the user, the pty): the closure runs
/// once per accepted request and returns `None` for no message. On a pty
/// each `\n` is sent as `\r\n`. This is not the SSH authentication banner
/// (sent before login, shown by `ssh` on stderr): that is
/// [`#[banner]`](macro@crate::banner).
///
/// A refused request gets no message. A session that a layer below answers
/// itself does: layers added later run first, so add `MotdLayer` before a
/// [`RequirePtyLayer`](super::RequirePtyLayer) for no welcome without a terminal.
///
/// ```no_run
/// use ssh_framework::middleware::MotdLayer;
/// # struct App;
/// # #[ssh_framework::server] impl App {}
/// let builder = ssh_framework::Server::builder()
///     .handlers(App)
///     .layer(MotdLayer::new(|request| {
///         let user = request.connection().user()?;
///         Some(format!("Welcome, {user}. Type `help` for commands.\n"))
///     }));
/// ```
#[derive(Clone)]
pub struct MotdLayer {
    text: Text,
    kinds: SessionKinds,
}

impl fmt::Debug for MotdLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MotdLayer").field("kinds", &self.kinds).finish_non_exhaustive()
    }
}

impl MotdLayer {
    /// The text `text` returns for each accepted shell (`None`: no message).
    pub fn new<F>(text: F) -> Self
    where
        F: Fn(&Request) -> Option<String> + Send + Sync + 'static,
    {
        MotdLayer { text: Arc::new(text), kinds: SessionKinds::SHELL }
    }

    /// The same text for everyone.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        MotdLayer::new(move |_| Some(text.clone()))
    }

    /// Which accepted requests get the message (default shell only: an exec's
    /// output is usually read by a program).
    pub fn on(mut self, kinds: SessionKinds) -> Self {
        self.kinds = kinds;
        self
    }
}

impl<S> Layer<S> for MotdLayer {
    type Service = Motd<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Motd { inner, layer: self.clone() }
    }
}

/// Writes a message before the handler's body; see [`MotdLayer`].
#[derive(Clone)]
pub struct Motd<S> {
    inner: S,
    layer: MotdLayer,
}

impl<S: fmt::Debug> fmt::Debug for Motd<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Motd").field("inner", &self.inner).field("layer", &self.layer).finish()
    }
}

impl<S> Motd<S> {
    inner_service_accessors!();
}

impl<S> Service<Request> for Motd<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !self.layer.kinds.matches(request.kind()) {
            return Box::pin(self.inner.call(request));
        }
        let pty = has_pty(&request);
        let motd = (self.layer.text)(&request).filter(|text| !text.is_empty()).map(|text| for_terminal(&text, pty));
        let (Some(motd), Some(mut stdout)) = (motd, request.stdout()) else {
            return Box::pin(self.inner.call(request));
        };
        let inner = self.inner.call(request);
        Box::pin(async move {
            let body = match inner.await? {
                Response::Run(body) => body,
                other => return Ok(other),
            };
            // Written from the body, not while deciding: the write may wait for
            // the client's window, and a decision holds up the connection.
            Ok(Response::Run(Box::pin(async move {
                tell(&mut stdout, &motd).await;
                drop(stdout);
                body.await
            })))
        })
    }
}
