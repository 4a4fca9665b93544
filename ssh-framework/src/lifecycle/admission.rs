//! Admission of unauthenticated connections: OpenSSH's `MaxStartups` (a
//! server-wide count with random early drop) and `PerSourceMaxStartups` (a
//! count per source address block, `PerSourceNetBlockSize`).
//!
//! A connection holds its [`Startup`] from accept until it authenticates or
//! ends. The per-source table holds an entry only while a source has
//! unauthenticated connections, so it never has more entries than
//! `MaxStartups` allows connections: it needs no eviction policy.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limit::block_of;
use crate::limits::{Limits, MaxStartups};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past `MaxStartups` (or dropped early on the way to it).
    MaxStartups { unauthenticated: usize },
    /// Its source block already has `PerSourceMaxStartups` unauthenticated connections.
    PerSource { unauthenticated: usize },
}

/// The server's admission state.
#[derive(Debug)]
pub(crate) struct Admission {
    max: MaxStartups,
    startups: Arc<Semaphore>,
    per_source: Option<Arc<PerSource>>,
}

#[derive(Debug)]
struct PerSource {
    max: usize,
    v4_prefix: u8,
    v6_prefix: u8,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// An admitted connection's places, given back when dropped (at authentication or disconnect).
#[derive(Debug)]
pub(crate) struct Startup {
    _permit: OwnedSemaphorePermit,
    _source: Option<SourceSlot>,
}

#[derive(Debug)]
struct SourceSlot {
    table: Arc<PerSource>,
    block: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.block) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.block);
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Self {
        let per_source = limits.per_source_max_startups.map(|max| {
            let (v4_prefix, v6_prefix) = limits.per_source_net_block_size;
            Arc::new(PerSource { max, v4_prefix, v6_prefix, counts: Mutex::new(HashMap::new()) })
        });
        Admission { max: limits.max_startups, startups: Arc::new(Semaphore::new(limits.max_startups.full)), per_source }
    }

    /// Admits a connection from `peer`, or says why not.
    pub(crate) fn admit(&self, peer: Option<SocketAddr>) -> Result<Startup, Refusal> {
        let unauthenticated = self.max.full - self.startups.available_permits();
        let permit = match self.startups.clone().try_acquire_owned() {
            Ok(permit) if self.max.admits(unauthenticated) => permit,
            _ => return Err(Refusal::MaxStartups { unauthenticated }),
        };
        let source = match (&self.per_source, peer) {
            (Some(table), Some(peer)) => Some(table.take(peer.ip())?),
            _ => None,
        };
        Ok(Startup { _permit: permit, _source: source })
    }
}

impl PerSource {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Result<SourceSlot, Refusal> {
        let block = block_of(ip, self.v4_prefix, self.v6_prefix);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(block).or_insert(0);
        if *count >= self.max {
            return Err(Refusal::PerSource { unauthenticated: *count });
        }
        *count += 1;
        Ok(SourceSlot { table: self.clone(), block })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_source: usize, blocks: (u8, u8)) -> Admission {
        let limits = Limits {
            max_startups: MaxStartups { start: 100, rate: 30, full: 100 },
            per_source_max_startups: Some(per_source),
            per_source_net_block_size: blocks,
            ..Limits::default()
        };
        Admission::new(&limits)
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    #[test]
    fn a_source_past_its_cap_is_refused_while_others_are_admitted_and_a_slot_frees_on_drop() {
        let admission = admission(2, (32, 128));
        let first = admission.admit(peer("127.0.0.2")).unwrap();
        let _second = admission.admit(peer("127.0.0.2")).unwrap();
        assert_eq!(admission.admit(peer("127.0.0.2")).unwrap_err(), Refusal::PerSource { unauthenticated: 2 });
        let _other = admission.admit(peer("127.0.0.3")).unwrap();
        drop(first);
        let _again = admission.admit(peer("127.0.0.2")).unwrap();
        assert_eq!(admission.per_source.as_ref().unwrap().counts.lock().unwrap().len(), 2);
    }

    #[test]
    fn sources_group_by_net_block_and_the_table_empties() {
        let admission = admission(1, (24, 64));
        let a = admission.admit(peer("10.1.2.3")).unwrap();
        assert!(admission.admit(peer("10.1.2.200")).is_err(), "same /24");
        assert!(admission.admit(peer("::ffff:10.1.2.9")).is_err(), "IPv4-mapped counts as IPv4");
        let b = admission.admit(peer("10.1.3.3")).unwrap();
        let c = admission.admit(peer("2001:db8::1")).unwrap();
        assert!(admission.admit(peer("2001:db8::ffff:1")).is_err(), "same /64");
        drop((a, b, c));
        assert!(admission.per_source.as_ref().unwrap().counts.lock().unwrap().is_empty());
    }
}
