//! User-written `tower` layers decide before any handler; the `TraceLayer` records without changing decisions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use ssh_framework::trace::TraceLayer;
use ssh_framework::{BoxError, Request, RequestKind, Response};
use ssh_framework_tests::handlers::{Commands, PasswordLogin};
use ssh_framework_tests::log::Captured;
use ssh_framework_tests::server::TestServer;
use tower::{Layer, Service};

/// Refuses connections from loopback addresses, counting refusals.
#[derive(Clone, Default)]
struct RefuseLoopbackLayer {
    refused: Arc<AtomicUsize>,
}

impl<S> Layer<S> for RefuseLoopbackLayer {
    type Service = RefuseLoopback<S>;

    fn layer(&self, inner: S) -> RefuseLoopback<S> {
        RefuseLoopback { inner, refused: self.refused.clone() }
    }
}

#[derive(Clone)]
struct RefuseLoopback<S> {
    inner: S,
    refused: Arc<AtomicUsize>,
}

impl<S> Service<Request> for RefuseLoopback<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let from_loopback = request.connection().peer_addr().is_some_and(|a| a.ip().is_loopback());
        if matches!(request.kind(), RequestKind::Connect) && from_loopback {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Box::pin(async { Ok(Response::Reject) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[tokio::test]
async fn a_layer_refusing_connect_runs_before_any_auth_handler() {
    let login = PasswordLogin::new("alice", "pw");
    let layer = RefuseLoopbackLayer::default();
    let server = TestServer::start(|b| {
        b.handlers(login.clone()).handlers(Commands::new()).layer(layer.clone()).layer(TraceLayer::new())
    })
    .await;

    let out = server.ssh("alice").password("pw").run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(layer.refused.load(Ordering::SeqCst), 1);
    assert!(login.attempts().is_empty(), "no auth handler ran: {:?}", login.attempts());
}

/// Fails every exec request with an error (as a timeout or limit layer would).
#[derive(Clone)]
struct FailExecLayer;

impl<S> Layer<S> for FailExecLayer {
    type Service = FailExec<S>;

    fn layer(&self, inner: S) -> FailExec<S> {
        FailExec { inner }
    }
}

#[derive(Clone)]
struct FailExec<S> {
    inner: S,
}

impl<S> Service<Request> for FailExec<S>
where
    S: Service<Request, Response = Response, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if matches!(request.kind(), RequestKind::Exec(_)) {
            return Box::pin(async { Err("no exec today".into()) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[tokio::test]
async fn a_layer_error_refuses_only_that_request() {
    let server =
        TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).handlers(Commands::new()).layer(FailExecLayer))
            .await;

    let out = server.ssh("alice").password("pw").run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("exec request failed"), "stderr: {}", out.stderr);
}

#[tokio::test]
async fn a_layer_can_wrap_the_session_body_and_see_how_it_ended() {
    let ended = Arc::new(Mutex::new(Vec::new()));
    let record = ended.clone();
    // `tower`'s own `MapResponseLayer`, through the re-export: no bound to read out of rustdoc.
    let layer = ssh_framework::tower::util::MapResponseLayer::new(move |response: Response| match response {
        Response::Run(body) => {
            let record = record.clone();
            Response::Run(Box::pin(async move {
                let started = std::time::Instant::now();
                let status = body.await;
                record.lock().unwrap().push((status.clone(), started.elapsed()));
                status
            }))
        }
        other => other,
    });
    let server =
        TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).handlers(Commands::new()).layer(layer)).await;

    let out = server.ssh("alice").password("pw").run("exit 3").await;

    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    let ended = ended.lock().unwrap().clone();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, ssh_framework::ExitStatus::Code(3));
}

// The server's connection threads log to the dispatcher that was the default
// where it started: this test's scoped subscriber.
#[tokio::test(flavor = "current_thread")]
async fn trace_layer_records_decisions_without_changing_them() {
    let (captured, _guard) = Captured::start(tracing::Level::DEBUG);
    let server = TestServer::start(|b| {
        b.handlers(PasswordLogin::new("alice", "pw")).handlers(Commands::new()).layer(TraceLayer::new())
    })
    .await;

    let out = server.ssh("alice").password("pw").run("echo traced").await;
    let refused = server.ssh("alice").password("nope").run("echo traced").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "traced\n");
    assert_eq!(refused.code, Some(255));
    let log = captured.text();
    let decided = |kind: &str, allowed: bool| {
        log.lines().any(|l| l.contains("decided") && l.contains(&format!("kind=\"{kind}\"")) && l.contains(&format!("allowed={allowed}")))
    };
    assert!(decided("connect", true), "{log}");
    assert!(decided("auth-password", true), "{log}");
    assert!(decided("auth-password", false), "{log}");
    assert!(decided("channel-open-session", true), "{log}");
    assert!(decided("exec", true), "{log}");
    assert!(!log.contains("nope"), "passwords are never logged: {log}");
}
