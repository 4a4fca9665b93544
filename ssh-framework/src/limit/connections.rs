//! [`MaxConnections`]: a cap on all connections of the server at once.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::sealed::Apply;
use crate::connection::Connection;

/// Connections of any kind, authenticated or not, open at once on the whole
/// server (default 10,000; OpenSSH has no such cap).
///
/// An idle authenticated session with a shell open costs the server about 56
/// KiB of resident memory (measured with the benchmark's `idle-sessions`:
/// 10,000 of them, 48 KiB of that russh's own), so the default bounds idle
/// sessions to about 550 MiB; each connection is also at least one file
/// descriptor. Past the cap a new connection is closed before the version
/// exchange. The count is shared by every clone of this value.
#[derive(Debug, Clone)]
pub struct MaxConnections {
    max: usize,
    open: Arc<Semaphore>,
}

impl MaxConnections {
    /// At most `n` connections at once.
    pub fn new(n: usize) -> Self {
        MaxConnections { max: n, open: Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))) }
    }

    /// The cap.
    pub fn get(&self) -> usize {
        self.max
    }
}

impl Default for MaxConnections {
    fn default() -> Self {
        MaxConnections::new(10_000)
    }
}

impl Apply for MaxConnections {
    fn apply_limit(&self, connection: &Connection) -> bool {
        match self.open.clone().try_acquire_owned() {
            Ok(permit) => {
                connection.on_close(move |_, _| drop(permit));
                true
            }
            Err(_) => {
                tracing::info!(max = self.max, "connection limit reached; dropped");
                false
            }
        }
    }
}

super::limit_layer!(MaxConnections);
