//! [`CatchPanicLayer`]: a panicking shell, exec or subsystem body tells the client.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::{Described, SessionKinds, for_terminal, has_pty, tell};
use crate::channel::ExitStatus;
use crate::request::{Request, Response};

/// `EX_SOFTWARE` from `sysexits.h`: an internal software error.
const EX_SOFTWARE: u32 = 70;

/// Applies [`CatchPanic`]: when a shell, exec or subsystem body panics, the
/// client reads a line on stderr and exit status 70 (`EX_SOFTWARE`), and the
/// panic is logged at `error` with the user and the request.
///
/// Without it the runtime still contains the panic (the channel closes, the
/// connection and the server go on), but the client gets no exit status and
/// no word of why: `ssh` exits 255 with nothing printed.
///
/// ```no_run
/// use ssh_framework::middleware::CatchPanicLayer;
/// # struct App;
/// # #[ssh_framework::server] impl App {}
/// let builder = ssh_framework::Server::builder()
///     .handlers(App)
///     .layer(CatchPanicLayer::new().message("something broke; we are on it\n").exit_code(70));
/// ```
#[derive(Debug, Clone)]
pub struct CatchPanicLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    message: Cow<'static, str>,
    exit_code: u32,
}

impl CatchPanicLayer {
    /// Writes `internal error` and exits 70.
    pub fn new() -> Self {
        CatchPanicLayer { config: Arc::new(Config { message: Cow::Borrowed("internal error\n"), exit_code: EX_SOFTWARE }) }
    }

    /// The text written to the client's stderr after a panic (on a pty, each
    /// `\n` is sent as `\r\n`). Not the panic's message: that is for the log.
    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        Arc::make_mut(&mut self.config).message = message.into();
        self
    }

    /// The exit status sent after a panic (default 70, `EX_SOFTWARE`).
    pub fn exit_code(mut self, code: u32) -> Self {
        Arc::make_mut(&mut self.config).exit_code = code;
        self
    }
}

impl Default for CatchPanicLayer {
    fn default() -> Self {
        CatchPanicLayer::new()
    }
}

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner, config: self.config.clone() }
    }
}

/// Turns a panicking channel body into a message and an exit status; see [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> CatchPanic<S> {
    inner_service_accessors!();
}

impl<S> Service<Request> for CatchPanic<S>
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
        if !SessionKinds::ALL.matches(request.kind()) {
            return Box::pin(self.inner.call(request));
        }
        let described = Described::new(&request);
        let stderr = request.stderr();
        let message = for_terminal(&self.config.message, has_pty(&request));
        let code = self.config.exit_code;
        let inner = self.inner.call(request);
        Box::pin(async move {
            let body = match inner.await? {
                Response::Run(body) => body,
                // Refused: nothing runs, nothing to catch.
                other => return Ok(other),
            };
            Ok(Response::Run(Box::pin(async move {
                match AssertUnwindSafe(body).catch_unwind().await {
                    Ok(status) => status,
                    Err(panic) => {
                        let Described { user, kind, command, subsystem } = &described;
                        tracing::error!(
                            user,
                            kind,
                            command,
                            subsystem,
                            panic = %crate::lifecycle::panic_message(panic.as_ref()),
                            exit_code = code,
                            "channel handler panicked; told the client"
                        );
                        if let Some(mut stderr) = stderr {
                            tell(&mut stderr, &message).await;
                        }
                        ExitStatus::Code(code)
                    }
                }
            })))
        })
    }
}
