use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use crate::channel::ExitStatus;
use crate::request::{ChannelBody, Request, RequestKind, Response};

/// The response future of [`Trace`](super::Trace).
#[derive(Debug)]
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    span: tracing::Span,
    kind: &'static str,
    started: Instant,
    /// Who asked for what, for the log line when a shell, exec or subsystem ends.
    session: Option<SessionRecord>,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: tracing::Span, kind: &'static str, session: Option<SessionRecord>) -> Self {
        ResponseFuture { inner: Box::pin(inner), span, kind, started: Instant::now(), session }
    }
}

/// What the log line at the end of a shell, exec or subsystem says, and when it started.
#[derive(Debug)]
pub(crate) struct SessionRecord {
    user: String,
    kind: &'static str,
    command: Option<String>,
    subsystem: Option<String>,
    /// Set at the start of the body; `None` until then.
    started: Option<Instant>,
    /// Whether the body returned an exit status (the record was logged).
    ended: bool,
}

impl SessionRecord {
    /// The record of a shell, exec or subsystem request; `None` for other requests.
    pub(crate) fn of(request: &Request) -> Option<Self> {
        let (command, subsystem) = match request.kind() {
            RequestKind::Shell => (None, None),
            RequestKind::Exec(command) => (Some(command.as_str().to_owned()), None),
            RequestKind::Subsystem(name) => (None, Some(name.clone())),
            _ => return None,
        };
        Some(SessionRecord {
            user: request.connection().user().unwrap_or_default().to_owned(),
            kind: request.kind().name(),
            command,
            subsystem,
            started: None,
            ended: false,
        })
    }

    /// `body`, logging how it ended and how long it ran.
    fn wrap(mut self, body: ChannelBody) -> ChannelBody {
        Box::pin(async move {
            self.started = Some(Instant::now());
            let status = body.await;
            self.ended = true;
            let millis = self.millis();
            let SessionRecord { user, kind, command, subsystem, .. } = &self;
            match &status {
                ExitStatus::Code(code) => tracing::info!(user, kind, command, subsystem, code, millis, "session ended"),
                ExitStatus::Signal { signal, .. } => {
                    tracing::info!(user, kind, command, subsystem, signal = signal.name(), millis, "session ended")
                }
            }
            status
        })
    }

    fn millis(&self) -> u64 {
        self.started.map_or(0, |started| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

impl Drop for SessionRecord {
    /// A body dropped before it returned: it panicked, or its channel was
    /// closed or timed out. (A record never started is a refused request.)
    fn drop(&mut self) {
        if self.started.is_some() && !self.ended {
            let millis = self.millis();
            let SessionRecord { user, kind, command, subsystem, .. } = &*self;
            tracing::info!(user, kind, command, subsystem, millis, "session ended without an exit status");
        }
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
        let mut result = ready!(this.inner.as_mut().poll(cx));
        let micros = this.started.elapsed().as_micros() as u64;
        match &result {
            Ok(response) => {
                tracing::info!(kind = this.kind, allowed = response.is_allowed(), response = ?response, micros, "decided")
            }
            Err(error) => tracing::warn!(kind = this.kind, %error, micros, "failed"),
        }
        if let (Ok(Response::Run(_)), Some(session)) = (&result, this.session.take())
            && let Ok(Response::Run(body)) = std::mem::replace(&mut result, Ok(Response::Reject))
        {
            result = Ok(Response::Run(session.wrap(body)));
        }
        Poll::Ready(result)
    }
}
