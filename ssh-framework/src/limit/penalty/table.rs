//! The penalty table: one per address family, indexed by block and by expiry
//! (OpenSSH keeps the same two red-black trees), so expired entries and the
//! entries an overflow evicts are found in O(log n) each, never by a scan.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{Overflow, PerSourcePenalties};
use crate::limit::block_of;

/// Why a source is penalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The connection ended after a failed authentication attempt.
    AuthFail,
    /// The connection ended without an authentication attempt.
    NoAuth,
    /// The connection was dropped at the login grace time.
    GraceExceeded,
}

impl Kind {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Kind::AuthFail => "penalty: failed authentication",
            Kind::NoAuth => "penalty: connections without attempting authentication",
            Kind::GraceExceeded => "penalty: exceeded LoginGraceTime",
        }
    }
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The source's block is penalised for `remaining` more.
    Penalised { kind: Kind, remaining: Duration },
    /// The family's table is full under `overflow:deny-all`.
    TableFull,
}

/// The longest any duration counts for: keeps `now + duration` far from overflow.
const CEILING: Duration = Duration::from_secs(100 * 365 * 86400);

/// The table's settings, with durations kept under [`CEILING`].
#[derive(Debug, Clone)]
pub(super) struct Rules {
    authfail: Duration,
    noauth: Duration,
    grace_exceeded: Duration,
    max: Duration,
    min: Duration,
    max_sources: [usize; 2],
    overflow: [Overflow; 2],
    net_block: (u8, u8),
}

impl Rules {
    pub(super) fn new(p: &PerSourcePenalties) -> Self {
        Rules {
            authfail: p.authfail.min(CEILING),
            noauth: p.noauth.min(CEILING),
            grace_exceeded: p.grace_exceeded.min(CEILING),
            max: p.max.min(CEILING),
            min: p.min.min(CEILING),
            max_sources: [p.max_sources4 as usize, p.max_sources6 as usize],
            overflow: [p.overflow, p.overflow6.unwrap_or(p.overflow)],
            net_block: p.net_block,
        }
    }

    fn penalty(&self, kind: Kind) -> Duration {
        match kind {
            Kind::AuthFail => self.authfail,
            Kind::NoAuth => self.noauth,
            Kind::GraceExceeded => self.grace_exceeded,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    expiry: Instant,
    active: bool,
    kind: Kind,
}

/// The penalised blocks of one address family.
#[derive(Debug, Default)]
struct Family {
    by_block: HashMap<IpAddr, Entry>,
    by_expiry: BTreeSet<(Instant, IpAddr)>,
}

impl Family {
    fn len(&self) -> usize {
        self.by_block.len()
    }

    /// Removes every entry that expired before `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(expiry, block)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.by_block.remove(&block);
        }
    }

    /// Removes the entries closest to expiry until at most `max` remain.
    fn evict_to(&mut self, max: usize) {
        while self.len() > max {
            let Some((_, block)) = self.by_expiry.pop_first() else { break };
            tracing::debug!(%block, "penalty table full; entry dropped early");
            self.by_block.remove(&block);
        }
    }
}

/// Both families' penalties.
#[derive(Debug)]
pub(super) struct Table {
    rules: Rules,
    families: [Family; 2],
}

impl Table {
    pub(super) fn new(rules: Rules) -> Self {
        Table { rules, families: [Family::default(), Family::default()] }
    }

    fn block(&self, ip: IpAddr) -> (IpAddr, usize) {
        let block = block_of(ip, self.rules.net_block.0, self.rules.net_block.1);
        let family = usize::from(block.is_ipv6());
        (block, family)
    }

    /// Whether a connection from `ip` (not exempt) may proceed at `now`
    /// (OpenSSH's `srclimit_penalty_check_allow`).
    pub(super) fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let (block, f) = self.block(ip);
        for family in &mut self.families {
            family.expire(now);
        }
        let family = &self.families[f];
        if family.len() >= self.rules.max_sources[f] && self.rules.overflow[f] == Overflow::DenyAll {
            return Err(Refusal::TableFull);
        }
        match family.by_block.get(&block) {
            Some(entry) if entry.active => Err(Refusal::Penalised { kind: entry.kind, remaining: entry.expiry - now }),
            _ => Ok(()),
        }
    }

    /// Penalises `ip`'s block for `kind` at `now` (OpenSSH's `srclimit_penalise`).
    pub(super) fn penalise(&mut self, ip: IpAddr, kind: Kind, now: Instant) {
        let secs = self.rules.penalty(kind);
        if secs.is_zero() {
            return;
        }
        let (block, f) = self.block(ip);
        for family in &mut self.families {
            family.expire(now);
        }
        let (max, min) = (self.rules.max, self.rules.min);
        let max_sources = self.rules.max_sources[f];
        let family = &mut self.families[f];
        if family.len() >= max_sources && self.rules.overflow[f] == Overflow::DenyAll {
            tracing::info!(%block, reason = kind.reason(), "penalty table full; cannot penalise");
            return;
        }
        match family.by_block.get_mut(&block) {
            None => {
                let expiry = now + secs.min(max);
                let active = secs > min;
                family.by_block.insert(block, Entry { expiry, active, kind });
                family.by_expiry.insert((expiry, block));
                let state = if active { "active" } else { "deferred" };
                tracing::info!(%block, seconds = secs.min(max).as_secs_f64(), reason = kind.reason(), "new {state} penalty");
                // Permissive: room is made by forgetting the entries closest to expiry.
                family.evict_to(max_sources);
            }
            Some(entry) => {
                family.by_expiry.remove(&(entry.expiry, block));
                entry.expiry = (entry.expiry + secs).min(now + max);
                if !entry.active && entry.expiry - now > min {
                    entry.active = true;
                    tracing::info!(%block, seconds = (entry.expiry - now).as_secs_f64(), reason = kind.reason(), "penalty activated");
                }
                entry.kind = kind;
                family.by_expiry.insert((entry.expiry, block));
            }
        }
    }

    /// How many blocks each family's table holds (IPv4, IPv6).
    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        (self.families[0].len(), self.families[1].len())
    }
}
