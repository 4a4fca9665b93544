use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::table::{Kind, Refusal, Rules, Table};
use super::{ExemptList, PerSourcePenalties};
use crate::error::ConnectionErrorKind;
use crate::request::{Request, RequestKind, Response};

/// Applies [`Penalty`] to a service; every service it makes shares one table.
#[derive(Clone)]
pub struct PenaltyLayer {
    /// `None`: penalties are off.
    shared: Option<Arc<Shared>>,
}

impl PenaltyLayer {
    /// A layer enforcing `penalties` (one that lets everything through when
    /// they are [disabled](PerSourcePenalties::disabled)).
    pub fn new(penalties: PerSourcePenalties) -> Self {
        let shared = penalties.enabled.then(|| {
            Arc::new(Shared {
                exempt: penalties.exempt.clone(),
                table: Mutex::new(Table::new(Rules::new(&penalties))),
                penalties,
            })
        });
        PenaltyLayer { shared }
    }
}

impl Default for PenaltyLayer {
    /// OpenSSH's defaults ([`PerSourcePenalties::default`]).
    fn default() -> Self {
        PenaltyLayer::new(PerSourcePenalties::default())
    }
}

impl fmt::Debug for PenaltyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PenaltyLayer").field("penalties", &self.shared.as_ref().map(|s| s.penalties.to_string())).finish()
    }
}

impl<S> Layer<S> for PenaltyLayer {
    type Service = Penalty<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Penalty { inner, shared: self.shared.clone() }
    }
}

/// Refuses connections from penalised sources and penalises sources whose
/// connections end unauthenticated; see the [module docs](super).
#[derive(Clone)]
pub struct Penalty<S> {
    inner: S,
    shared: Option<Arc<Shared>>,
}

impl<S: fmt::Debug> fmt::Debug for Penalty<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Penalty").field("inner", &self.inner).field("enabled", &self.shared.is_some()).finish_non_exhaustive()
    }
}

impl<S> Penalty<S> {
    /// Wraps `inner` with a table of its own for `penalties`.
    pub fn new(inner: S, penalties: PerSourcePenalties) -> Self {
        PenaltyLayer::new(penalties).layer(inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// What every clone of the service shares.
#[derive(Debug)]
pub(super) struct Shared {
    penalties: PerSourcePenalties,
    exempt: ExemptList,
    table: Mutex<Table>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent between statements: a panic elsewhere leaves it usable.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<S> Service<Request> for Penalty<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(shared) = &self.shared else { return ResponseFuture::inner(self.inner.call(request), Then::Nothing) };
        match request.kind() {
            RequestKind::Connect => {
                let Some(ip) = request.connection().peer_addr().map(|a| a.ip().to_canonical()) else {
                    return ResponseFuture::inner(self.inner.call(request), Then::Nothing);
                };
                if shared.exempt.contains(ip) {
                    return ResponseFuture::inner(self.inner.call(request), Then::Nothing);
                }
                if let Err(refusal) = shared.table().check(ip, tokio::time::Instant::now()) {
                    match refusal {
                        Refusal::Penalised { kind, remaining } => {
                            tracing::info!(reason = kind.reason(), seconds_left = remaining.as_secs_f64(), "source penalised; refused");
                        }
                        Refusal::TableFull => tracing::info!("too many penalised addresses (overflow:deny-all); refused"),
                    }
                    return ResponseFuture::refused();
                }
                let connection = request.connection().clone();
                let shared = shared.clone();
                ResponseFuture::inner(self.inner.call(request), Then::Watch(Box::new(move || watch(&connection, ip, shared))))
            }
            _ => ResponseFuture::inner(self.inner.call(request), Then::Nothing),
        }
    }
}

/// Once a connection is let in: penalises its source when it ends
/// unauthenticated, by how it ended.
fn watch(connection: &crate::Connection, ip: IpAddr, shared: Arc<Shared>) {
    connection.on_close(move |connection, error| {
        if connection.is_authenticated() {
            return;
        }
        // Counted by the framework as sshd counts them: every failed attempt,
        // whether or not it reached a layer, the client's first `none` probe free.
        let failed = connection.auth_failures();
        let kind = if error.is_some_and(|e| e.kind() == ConnectionErrorKind::LoginGraceTimeExceeded) {
            Kind::GraceExceeded
        } else if failed > 0 {
            Kind::AuthFail
        } else {
            Kind::NoAuth
        };
        tracing::debug!(failed, reason = kind.reason(), "unauthenticated connection ended");
        shared.table().penalise(ip, kind, tokio::time::Instant::now());
    });
}

/// What to do with the inner service's answer.
pub(super) enum Then {
    /// Nothing.
    Nothing,
    /// If the connection is let in, start watching it.
    Watch(Box<dyn FnOnce() + Send>),
}

impl fmt::Debug for Then {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Then::Nothing => "Nothing",
            Then::Watch(_) => "Watch",
        })
    }
}

impl Then {
    /// Applies the follow-up to an answer (`None`: the service failed, which
    /// the framework treats as a refusal).
    pub(super) fn apply(self, response: Option<&Response>) {
        let allowed = response.is_some_and(Response::is_allowed);
        match self {
            Then::Nothing => {}
            Then::Watch(watch) => {
                if allowed {
                    watch();
                }
            }
        }
    }
}
