//! [`RequirePtyLayer`]: interactive apps answer a session without a terminal with a clear message.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::{Described, SessionKinds, has_pty, tell};
use crate::channel::ExitStatus;
use crate::request::{Request, Response};

/// Applies [`RequirePty`]: a shell or exec on a session without a pty is
/// accepted and answered with a line on stderr ("this app needs a terminal:
/// connect with `ssh -t`") and exit status 1; the handler does not run.
///
/// For apps that draw on a terminal: `ssh host cmd` and `ssh host` with its
/// stdin not a terminal ask for no pty, and the app would otherwise run
/// blind. Accepting and explaining is kinder than refusing: a refused
/// request leaves `ssh` printing only "exec request failed".
///
/// ```no_run
/// use ssh_framework::middleware::{RequirePtyLayer, SessionKinds};
/// # struct App;
/// # #[ssh_framework::server] impl App {}
/// let builder = ssh_framework::Server::builder()
///     .handlers(App)
///     // Only the shell draws; exec commands work without a terminal.
///     .layer(RequirePtyLayer::new().on(SessionKinds::SHELL));
/// ```
#[derive(Debug, Clone)]
pub struct RequirePtyLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    kinds: SessionKinds,
    message: Cow<'static, str>,
    exit_code: u32,
}

impl RequirePtyLayer {
    /// Requires a pty for shell and exec, with the default message and exit status 1.
    pub fn new() -> Self {
        RequirePtyLayer {
            config: Arc::new(Config {
                kinds: SessionKinds::SHELL | SessionKinds::EXEC,
                message: Cow::Borrowed("this app needs a terminal: connect with `ssh -t`\n"),
                exit_code: 1,
            }),
        }
    }

    /// Which requests need a pty (default shell and exec).
    pub fn on(mut self, kinds: SessionKinds) -> Self {
        Arc::make_mut(&mut self.config).kinds = kinds;
        self
    }

    /// The text written to the client's stderr instead of running the handler.
    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        Arc::make_mut(&mut self.config).message = message.into();
        self
    }

    /// The exit status sent with it (default 1).
    pub fn exit_code(mut self, code: u32) -> Self {
        Arc::make_mut(&mut self.config).exit_code = code;
        self
    }
}

impl Default for RequirePtyLayer {
    fn default() -> Self {
        RequirePtyLayer::new()
    }
}

impl<S> Layer<S> for RequirePtyLayer {
    type Service = RequirePty<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePty { inner, config: self.config.clone() }
    }
}

/// Answers sessions without a pty itself; see [`RequirePtyLayer`].
#[derive(Debug, Clone)]
pub struct RequirePty<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> RequirePty<S> {
    inner_service_accessors!();
}

impl<S> Service<Request> for RequirePty<S>
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
        if !self.config.kinds.matches(request.kind()) || has_pty(&request) {
            return Box::pin(self.inner.call(request));
        }
        let Some(mut stderr) = request.stderr() else {
            return Box::pin(self.inner.call(request));
        };
        let Described { user, kind, command, .. } = Described::new(&request);
        tracing::info!(user, kind, command, "no pty on this session; told the client to connect with a terminal");
        let config = self.config.clone();
        // The request (and its channel stream) is dropped here: the handler never sees it.
        drop(request);
        let body = async move {
            tell(&mut stderr, config.message.as_bytes()).await;
            ExitStatus::Code(config.exit_code)
        };
        Box::pin(async move { Ok(Response::Run(Box::pin(body))) })
    }
}
