//! The ops console of `example-middleware`: the app (handlers) and the
//! layers around it. [`configure`] adds both to a server builder; `main.rs`
//! and the tests only choose the address and host key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ssh_framework::extract::{Pty, User};
use ssh_framework::middleware::{AccessControlLayer, CatchPanicLayer, MotdLayer, RequirePtyLayer, Rule, SessionKinds};
use ssh_framework::trace::TraceLayer;
use ssh_framework::tower::filter::FilterLayer;
use ssh_framework::tower::limit::ConcurrencyLimitLayer;
use ssh_framework::tower::timeout::TimeoutLayer;
use ssh_framework::tower::{Layer, Service, ServiceBuilder};
use ssh_framework::{
    Auth, BoxError, ChannelIo, Command, ExitStatus, PtyRequest, Request, Response, ServerBuilder, Stack,
};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The app: a user list and the gauge of running sessions it reports.
#[derive(Debug)]
pub struct Console {
    users: Vec<(&'static str, &'static str)>,
    running: Arc<AtomicUsize>,
}

#[ssh_framework::server]
impl Console {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        // Checked against the list, in constant time for the password.
        let known = self.users.iter().find(|(name, _)| *name == user);
        Auth::from_bool(known.is_some_and(|(_, expected)| bool::from(expected.as_bytes().ct_eq(password.as_bytes()))))
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[pty]
    async fn pty(&self, pty: &PtyRequest) -> bool {
        pty.size.cols <= 1000 && pty.size.rows <= 1000
    }

    /// The console: `RequirePtyLayer` makes sure it only runs on a pty.
    #[shell]
    async fn shell(&self, user: User, pty: Pty, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let size = pty.0.map(|pty| pty.size).unwrap_or_default();
        let text = format!("{}, your terminal is {}x{}. Press q to quit.\r\n", user.0, size.cols, size.rows);
        io.stdout.write_all(text.as_bytes()).await?;
        let mut byte = [0];
        // Ends on `q`, Ctrl-C (a byte on a pty) or the client's EOF.
        while io.stdin.read(&mut byte).await? == 1 && !matches!(byte[0], b'q' | 3) {}
        io.stdout.write_all(b"bye\r\n").await?;
        Ok(ExitStatus::SUCCESS)
    }

    #[exec]
    async fn exec(&self, user: User, command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        match command.program() {
            "whoami" => io.stdout.write_all(format!("{}\n", user.0).as_bytes()).await?,
            "sessions" => {
                let running = self.running.load(Ordering::Relaxed);
                io.stdout.write_all(format!("{running} session{} running\n", if running == 1 { "" } else { "s" }).as_bytes()).await?
            }
            // A bug, for CatchPanicLayer to report.
            "crash" => panic!("crash: the console has a bug"),
            other => {
                io.stderr.write_all(format!("unknown command {other:?}\n").as_bytes()).await?;
                return Ok(ExitStatus::code(127));
            }
        }
        Ok(ExitStatus::SUCCESS)
    }
}

// ANCHOR: filter
/// A layer in a few lines: tower's `FilterLayer` sees each request and
/// returns it (go on) or an error (refused, and the error is logged).
fn no_root_logins() -> FilterLayer<impl Fn(Request) -> Result<Request, BoxError> + Clone> {
    FilterLayer::new(|request: Request| match request.kind().auth_user() {
        Some("root") => Err("root may not log in here".into()),
        _ => Ok(request),
    })
}
// ANCHOR_END: filter

// ANCHOR: gauge_layer
/// A full layer: counts the shell, exec and subsystem sessions running now.
///
/// The `Layer` makes a `Service` around the stack below it; the service sees
/// every request and, for an accepted session, wraps the body the handler
/// returned (`Response::Run`) so that the count goes down however it ends.
#[derive(Debug, Clone)]
pub struct SessionGaugeLayer {
    running: Arc<AtomicUsize>,
}

impl SessionGaugeLayer {
    /// Counts into `running`.
    pub fn new(running: Arc<AtomicUsize>) -> Self {
        SessionGaugeLayer { running }
    }
}

impl Layer<Stack> for SessionGaugeLayer {
    type Service = SessionGauge;

    fn layer(&self, inner: Stack) -> SessionGauge {
        SessionGauge { inner, running: self.running.clone() }
    }
}

/// The service of [`SessionGaugeLayer`].
#[derive(Debug, Clone)]
pub struct SessionGauge {
    inner: Stack,
    running: Arc<AtomicUsize>,
}

impl Service<Request> for SessionGauge {
    type Response = Response;
    type Error = BoxError;
    type Future = <Stack as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let decided = self.inner.call(request);
        let running = self.running.clone();
        Box::pin(async move {
            match decided.await? {
                Response::Run(body) => Ok(Response::Run(Box::pin(async move {
                    // Taken when the body starts, given back when it is dropped:
                    // after it returns, panics, or its channel is closed.
                    let _counted = Counted::new(running);
                    body.await
                }))),
                other => Ok(other),
            }
        })
    }
}

/// One running session in the gauge.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(running: Arc<AtomicUsize>) -> Self {
        running.fetch_add(1, Ordering::Relaxed);
        Counted(running)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: gauge_layer

/// Adds the console and its layers to `builder`.
pub fn configure(builder: ServerBuilder) -> ServerBuilder {
    let running = Arc::new(AtomicUsize::new(0));
    let console = Console { users: vec![("alice", "alice-pw"), ("bob", "bob-pw")], running: running.clone() };
    // ANCHOR: layers
    builder
        .handlers(console)
        // Innermost (added first): runs last, right before the handlers.
        .layer(SessionGaugeLayer::new(running))
        .layer(MotdLayer::new(|request| {
            let user = request.connection().user()?;
            Some(format!("Welcome to the ops console, {user}.\n"))
        }))
        // Only the console needs a terminal; `ssh host whoami` works without.
        // Added after MotdLayer, so it runs first: no welcome without a terminal.
        .layer(RequirePtyLayer::new().on(SessionKinds::SHELL))
        .layer(CatchPanicLayer::new())
        // Deny by default: alice may run anything, everyone `whoami` and `sessions`.
        .layer(
            AccessControlLayer::new()
                .allow(Rule::user("alice").exec("*"))
                .allow(Rule::user("*").exec("whoami").exec("sessions")),
        )
        .layer(no_root_logins())
        // tower's own layers, composed: a decision (not a session) may take
        // 30 s, and at most 256 are decided at once.
        .layer(ServiceBuilder::new().layer(TimeoutLayer::new(Duration::from_secs(30))).layer(ConcurrencyLimitLayer::new(256)))
        // Outermost (added last): sees every request first, and logs what
        // the layers inside decided and how each session ended.
        .layer(TraceLayer::new())
    // ANCHOR_END: layers
}

// ANCHOR: rules
/// Rules for a git host, in the order they are checked: the first that
/// matches decides, and what none matches is refused.
pub fn git_host_rules() -> AccessControlLayer {
    AccessControlLayer::new()
        .deny(Rule::user("guest").exec("git-receive-pack"))
        .allow(Rule::user("*").exec("git-*"))
        .allow(Rule::key("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").exec("backup"))
}
// ANCHOR_END: rules
