//! [`Penalties`]: the limit that keeps the table and acts on connections.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::PerSourcePenalties;
use super::table::{Kind, Refusal, Rules, Table};
use crate::connection::Connection;
use crate::error::ConnectionErrorKind;
use crate::limit::sealed::Apply;

/// Per-source penalties: refuses connections from penalised sources and
/// penalises sources whose connections end unauthenticated; see the
/// [module docs](super). Every clone shares one table.
#[derive(Clone)]
pub struct Penalties {
    /// `None`: penalties are off.
    shared: Option<Arc<Shared>>,
}

impl Penalties {
    /// Enforces `penalties` (lets everything through when they are
    /// [disabled](PerSourcePenalties::disabled)), with a table of its own.
    pub fn new(penalties: PerSourcePenalties) -> Self {
        let shared = penalties.enabled.then(|| {
            Arc::new(Shared { table: Mutex::new(Table::new(Rules::new(&penalties))), penalties })
        });
        Penalties { shared }
    }

    /// The configuration enforced, if penalties are on.
    pub fn penalties(&self) -> Option<&PerSourcePenalties> {
        self.shared.as_ref().map(|shared| &shared.penalties)
    }
}

impl Default for Penalties {
    /// OpenSSH's defaults ([`PerSourcePenalties::default`]).
    fn default() -> Self {
        Penalties::new(PerSourcePenalties::default())
    }
}

impl fmt::Debug for Penalties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Penalties").field("penalties", &self.shared.as_ref().map(|s| s.penalties.to_string())).finish()
    }
}

/// What every clone shares.
#[derive(Debug)]
struct Shared {
    penalties: PerSourcePenalties,
    table: Mutex<Table>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent between statements: a panic elsewhere leaves it usable.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Apply for Penalties {
    fn apply_limit(&self, connection: &Connection) -> bool {
        let Some(shared) = &self.shared else { return true };
        let Some(ip) = connection.peer_addr().map(|a| a.ip().to_canonical()) else { return true };
        if shared.penalties.exempt.contains(ip) {
            return true;
        }
        if let Err(refusal) = shared.table().check(ip, tokio::time::Instant::now()) {
            match refusal {
                Refusal::Penalised { kind, remaining } => {
                    tracing::info!(reason = kind.reason(), seconds_left = remaining.as_secs_f64(), "source penalised; refused");
                }
                Refusal::TableFull => tracing::info!("too many penalised addresses (overflow:deny-all); refused"),
            }
            return false;
        }
        watch(connection, ip, shared.clone());
        true
    }
}

/// Penalises the source of a connection that was let in and ends
/// unauthenticated, by how it ended.
fn watch(connection: &Connection, ip: IpAddr, shared: Arc<Shared>) {
    connection.on_close(move |connection, error| {
        // Refused by a later limit or layer: it never got to try.
        if !connection.was_admitted() || connection.is_authenticated() {
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

crate::limit::limit_layer!(Penalties);
