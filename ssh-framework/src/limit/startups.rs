//! [`Startups`]: admission of unauthenticated connections, OpenSSH's
//! `MaxStartups` (a server-wide count with random early drop, [`MaxStartups`])
//! and `PerSourceMaxStartups` (a count per source address block,
//! `PerSourceNetBlockSize`).
//!
//! A connection holds its [`Startup`] from accept until it authenticates or
//! ends. The per-source table holds an entry only while a source has
//! unauthenticated connections, so it never has more entries than
//! `MaxStartups` allows connections: it needs no eviction policy.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::block_of;
use super::sealed::Apply;
use crate::connection::Connection;

/// OpenSSH's `MaxStartups start:rate:full`: from `start` unauthenticated
/// connections on, new ones are dropped with a probability rising linearly from
/// `rate`% to 100% at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    /// Unauthenticated connections before random early drop begins.
    pub start: usize,
    /// Drop probability in percent at `start`.
    pub rate: u8,
    /// Unauthenticated connections at which every new one is dropped.
    pub full: usize,
}

/// `100:30:1000`, ten times OpenSSH's `10:30:100`.
///
/// OpenSSH's numbers are sized for a server that forks a process of several
/// MB for each unauthenticated connection; here one costs a task and about
/// 50 KiB (measured: mini-sshd's RSS grew by 49.8 KiB per connection over
/// 1,000 connections that sent their version line, and by 54.6 KiB per
/// connection over 200 OpenSSH clients waiting at the password prompt after
/// key exchange), so the 1,000 allowed at most hold about 55 MB. With
/// OpenSSH's numbers, 17 of 50 OpenSSH clients logging in at once were
/// dropped; with these, none are. Key exchange still costs CPU (about 1 ms per
/// handshake), so a flood is shed by the random early drop from 100 on, by the
/// login grace time, and by the cap at 1,000.
impl Default for MaxStartups {
    fn default() -> Self {
        MaxStartups { start: 100, rate: 30, full: 1000 }
    }
}

impl MaxStartups {
    pub(crate) fn admits(&self, unauthenticated: usize) -> bool {
        if unauthenticated >= self.full {
            return false;
        }
        if unauthenticated < self.start {
            return true;
        }
        let span = (self.full - self.start).max(1) as f64;
        let p = f64::from(self.rate) + (100.0 - f64::from(self.rate)) * (unauthenticated - self.start) as f64 / span;
        rand::random_range(0.0..100.0) >= p
    }
}

/// `start:rate:full`, as OpenSSH writes `MaxStartups`.
impl fmt::Display for MaxStartups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.rate, self.full)
    }
}

/// A `MaxStartups` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMaxStartupsError(String);

impl fmt::Display for ParseMaxStartupsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseMaxStartupsError {}

/// Reads OpenSSH's syntax: `start:rate:full` (e.g. `10:30:100`), or one number
/// `N`, meaning `N:100:N` (every connection past `N` is dropped).
impl FromStr for MaxStartups {
    type Err = ParseMaxStartupsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| ParseMaxStartupsError(format!("invalid MaxStartups `{s}`: {why} (expected START:RATE:FULL, e.g. 10:30:100, or N)"));
        let number = |part: &str| part.trim().parse::<usize>().map_err(|_| err("not a number"));
        let parts: Vec<&str> = s.split(':').collect();
        let m = match parts[..] {
            [n] => {
                let n = number(n)?;
                MaxStartups { start: n, rate: 100, full: n }
            }
            [start, rate, full] => {
                let rate = u8::try_from(number(rate)?).ok().filter(|r| (1..=100).contains(r)).ok_or_else(|| err("RATE must be 1 to 100"))?;
                MaxStartups { start: number(start)?, rate, full: number(full)? }
            }
            _ => return Err(err("one or three numbers")),
        };
        if m.full == 0 || m.start > m.full {
            return Err(err("FULL must be at least 1 and at least START"));
        }
        Ok(m)
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past `MaxStartups` (or dropped early on the way to it).
    MaxStartups { unauthenticated: usize },
    /// Its source block already has `PerSourceMaxStartups` unauthenticated connections.
    PerSource { unauthenticated: usize },
}

/// Admission of unauthenticated connections (OpenSSH's `MaxStartups`,
/// `PerSourceMaxStartups` and `PerSourceNetBlockSize`; default
/// [`MaxStartups`]'s `100:30:1000`, no per-source cap, every address a source
/// of its own).
///
/// A connection counts from accept until it authenticates or ends. Past the
/// global count (or dropped early on the way to it) or past its source's cap,
/// a new connection is closed before the version exchange, while other
/// sources are still admitted. The counts are shared by every clone of this
/// value.
#[doc(alias = "MaxStartups")]
#[doc(alias = "PerSourceMaxStartups")]
#[derive(Debug, Clone)]
pub struct Startups {
    max: MaxStartups,
    per_source_max: Option<usize>,
    net_block: (u8, u8),
    startups: Arc<Semaphore>,
    per_source: Option<Arc<PerSource>>,
}

impl Default for Startups {
    fn default() -> Self {
        Startups::new(MaxStartups::default())
    }
}

impl Startups {
    /// Admission under `max`, with no per-source cap.
    pub fn new(max: MaxStartups) -> Self {
        Startups { max, per_source_max: None, net_block: (32, 128), startups: Arc::new(Semaphore::new(max.full)), per_source: None }
            .with_tables()
    }

    /// Unauthenticated connections one source may hold at once (OpenSSH's
    /// `PerSourceMaxStartups`; default none, as OpenSSH). Sources are grouped
    /// by [`net_block_size`](Startups::net_block_size).
    #[doc(alias = "PerSourceMaxStartups")]
    pub fn per_source(mut self, n: Option<usize>) -> Self {
        self.per_source_max = n.map(|n| n.max(1));
        self.with_tables()
    }

    /// The prefix lengths that group client addresses into one source
    /// (OpenSSH's `PerSourceNetBlockSize`; default 32 for IPv4 and 128 for
    /// IPv6: every address is a source of its own). An IPv4-mapped IPv6
    /// address counts as IPv4.
    #[doc(alias = "PerSourceNetBlockSize")]
    pub fn net_block_size(mut self, ipv4: u8, ipv6: u8) -> Self {
        self.net_block = (ipv4.min(32), ipv6.min(128));
        self.with_tables()
    }

    /// The global count's setting.
    pub fn max_startups(&self) -> MaxStartups {
        self.max
    }

    /// The per-source cap, if any.
    pub fn per_source_max(&self) -> Option<usize> {
        self.per_source_max
    }

    /// The prefix lengths that group addresses into sources, IPv4 then IPv6.
    pub fn net_block(&self) -> (u8, u8) {
        self.net_block
    }

    /// Fresh counts for the current settings (settings are only changed
    /// while building, before any connection counts).
    fn with_tables(mut self) -> Self {
        self.startups = Arc::new(Semaphore::new(self.max.full.min(Semaphore::MAX_PERMITS)));
        let (v4_prefix, v6_prefix) = self.net_block;
        self.per_source = self
            .per_source_max
            .map(|max| Arc::new(PerSource { max, v4_prefix, v6_prefix, counts: Mutex::new(HashMap::new()) }));
        self
    }

    /// Admits a connection from `peer`, or says why not.
    fn admit(&self, peer: Option<SocketAddr>) -> Result<Startup, Refusal> {
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

impl Apply for Startups {
    fn apply_limit(&self, connection: &Connection) -> bool {
        match self.admit(connection.peer_addr()) {
            Ok(startup) => {
                connection.limits().startup = Some(Box::new(startup));
                true
            }
            Err(Refusal::MaxStartups { unauthenticated }) => {
                tracing::info!(unauthenticated, "too many unauthenticated connections; dropped");
                false
            }
            Err(Refusal::PerSource { unauthenticated }) => {
                tracing::info!(unauthenticated, "too many unauthenticated connections from this source; dropped");
                false
            }
        }
    }
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
struct Startup {
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


super::limit_layer!(Startups);

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn max_startups_parses_any_text_or_refuses_it(text in "\\PC{0,32}") {
            let _ = text.parse::<MaxStartups>();
        }

        #[test]
        fn max_startups_round_trips(start in 0usize..10_000, rate in 1u8..=100, extra in 0usize..10_000) {
            let m = MaxStartups { start, rate, full: start.max(1) + extra };
            proptest::prop_assert_eq!(m.to_string().parse::<MaxStartups>(), Ok(m));
        }
    }

    #[test]
    fn max_startups_reads_openssh_syntax() {
        assert_eq!("10:30:100".parse(), Ok(MaxStartups { start: 10, rate: 30, full: 100 }));
        assert_eq!("20".parse(), Ok(MaxStartups { start: 20, rate: 100, full: 20 }));
        assert_eq!(MaxStartups { start: 10, rate: 30, full: 100 }.to_string(), "10:30:100");
        for bad in ["", "10:30", "a:30:100", "10:0:100", "10:101:100", "100:30:10", "0", "1:2:3:4", "-1"] {
            let error = bad.parse::<MaxStartups>().unwrap_err().to_string();
            assert!(error.contains("expected START:RATE:FULL"), "{bad}: {error}");
        }
    }


    fn admission(per_source: usize, blocks: (u8, u8)) -> Startups {
        Startups::new(MaxStartups { start: 100, rate: 30, full: 100 }).per_source(Some(per_source)).net_block_size(blocks.0, blocks.1)
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
