//! Per-source penalties: OpenSSH 9.8's `PerSourcePenalties` and
//! `PerSourcePenaltyExemptList` as a limit ([`Penalties`], installed by
//! default with OpenSSH's settings).
//!
//! A source that behaves like an attacker (its connection ended after failed
//! authentication attempts, without trying to authenticate, or past the login
//! grace time) accrues penalty time; once a source's outstanding penalty
//! exceeds `min`, new connections from its address block are refused, before
//! key exchange, until the penalty expires. Penalties from one block add up, to
//! at most `max`. Connections already in progress are never cut.
//!
//! ```no_run
//! use ssh_framework::limit::{Penalties, PerSourcePenalties};
//! # struct App;
//! # #[ssh_framework::server] impl App {}
//! let penalties: PerSourcePenalties = "authfail:5s noauth:1s max:10m".parse().unwrap();
//! let builder = ssh_framework::Server::builder()
//!     .handlers(App)
//!     .limit(Penalties::new(penalties.exempt_list("10.0.0.0/8,192.0.2.7".parse().unwrap())));
//! ```
//!
//! # Defaults, beside OpenSSH's
//!
//! | setting | here | OpenSSH 9.8 sshd |
//! |---|---|---|
//! | enabled | yes | yes |
//! | `authfail` | 5 s | 5 s |
//! | `noauth` | 1 s | 1 s |
//! | `grace-exceeded` | 10 s | 10 s |
//! | `max` | 10 min | 10 min |
//! | `min` | 15 s | 15 s |
//! | `max-sources4`, `max-sources6` | 65536 | 65536 |
//! | `overflow`, `overflow6` | `permissive` | `permissive` |
//! | exempt list | none | none |
//! | net block size (`PerSourceNetBlockSize`) | 32 / 128 | 32 / 128 |
//!
//! OpenSSH's `crash` (a pre-authentication process crashed), `invaliduser`
//! (the user does not exist) and `refuseconnection` (`RefuseConnection` in a
//! `Match` block) have no analogue here: a panicking handler is contained and
//! refuses only its request, the framework does not know which users exist,
//! and a policy that refuses connections is a layer of its own. Those keywords
//! are refused by the parser rather than silently ignored.
//!
//! # What is penalised
//!
//! When a connection that was let in (by this and every other limit and
//! layer) ends without having authenticated:
//!
//! - it ended because the login grace time ran out: `grace-exceeded`;
//! - otherwise, if at least one authentication attempt failed
//!   ([`Connection::auth_failures`](crate::Connection::auth_failures): the
//!   client's first `none` probe is free, as in sshd): `authfail`;
//! - otherwise: `noauth`.
//!
//! An authenticated connection is never penalised. A penalty of 0 s disables
//! that kind. A new source's penalty is enforced at once if it is longer than
//! `min`; otherwise it is recorded, and later penalties from the same block
//! extend its expiry until the time outstanding exceeds `min`. One difference
//! from sshd: a single penalty longer than `max` is capped at `max` (sshd caps
//! only accumulated penalties), as `max` is documented.
//!
//! # The table and its overflow policy
//!
//! Sources are tracked per address block (the first 32 bits of an IPv4
//! address and all 128 of an IPv6 one by default, see
//! [`net_block_size`](PerSourcePenalties::net_block_size)), IPv4 and IPv6 in
//! separate tables of at most `max-sources4` and `max-sources6` blocks; blocks
//! below `min` count too. Expired entries are removed in order of expiry (each
//! removal costs O(log n), never a scan). When a table is full:
//!
//! - `permissive` (the default): a new penalty is recorded and the entries
//!   closest to expiry are forgotten early to make room, so a flood of
//!   sources can shorten other sources' penalties but never refuses anyone
//!   who has not earned it;
//! - `deny-all`: every new connection of that address family, other than
//!   exempt ones, is refused until an entry expires, and no new penalty is
//!   recorded meanwhile.
//!
//! Exempt sources ([`exempt_list`](PerSourcePenalties::exempt_list)) are
//! never refused and never penalised.

mod limit;
mod table;

pub use self::limit::Penalties;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

pub use ipnet::IpNet;

/// What the server does when a source table is full; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// Refuse every new connection of the address family (except exempt ones)
    /// until an entry expires (`deny-all`).
    DenyAll,
    /// Forget the penalties closest to expiry to make room (`permissive`, the default).
    #[default]
    Permissive,
}

impl Overflow {
    /// The keyword in OpenSSH's syntax: `deny-all` or `permissive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DenyAll => "deny-all",
            Overflow::Permissive => "permissive",
        }
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-source penalties, OpenSSH's `PerSourcePenalties`; see the [module docs](self).
///
/// `FromStr` and `Display` use OpenSSH's syntax for the value, as one string:
/// keywords separated by whitespace (`"authfail:5s noauth:1s max:10m"`),
/// or `no` (disabled) or `yes` (the defaults) alone. Keywords not given keep
/// their defaults. The exempt list and the net block size are separate sshd
/// options and are not part of that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerSourcePenalties {
    enabled: bool,
    authfail: Duration,
    noauth: Duration,
    grace_exceeded: Duration,
    max: Duration,
    min: Duration,
    max_sources4: u32,
    max_sources6: u32,
    overflow: Overflow,
    /// `None`: the same as `overflow`.
    overflow6: Option<Overflow>,
    exempt: ExemptList,
    net_block: (u8, u8),
}

impl Default for PerSourcePenalties {
    /// OpenSSH's defaults: enabled, `authfail:5s noauth:1s grace-exceeded:10s
    /// max:10m min:15s max-sources4:65536 max-sources6:65536
    /// overflow:permissive`, nothing exempt, blocks of 32 and 128 bits.
    fn default() -> Self {
        PerSourcePenalties {
            enabled: true,
            authfail: Duration::from_secs(5),
            noauth: Duration::from_secs(1),
            grace_exceeded: Duration::from_secs(10),
            max: Duration::from_secs(600),
            min: Duration::from_secs(15),
            max_sources4: 65536,
            max_sources6: 65536,
            overflow: Overflow::Permissive,
            overflow6: None,
            exempt: ExemptList::default(),
            net_block: (32, 128),
        }
    }
}

impl PerSourcePenalties {
    /// Penalties off (OpenSSH's `PerSourcePenalties no`): the layer lets every
    /// request through and keeps no table.
    pub fn disabled() -> Self {
        PerSourcePenalties { enabled: false, ..PerSourcePenalties::default() }
    }

    /// Whether penalties are on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Penalty for a connection that ended after a failed authentication attempt (`authfail`).
    #[must_use]
    pub fn authfail(mut self, penalty: Duration) -> Self {
        self.authfail = penalty;
        self
    }

    /// Penalty for a connection that ended without attempting authentication (`noauth`).
    #[must_use]
    pub fn noauth(mut self, penalty: Duration) -> Self {
        self.noauth = penalty;
        self
    }

    /// Penalty for a connection dropped at the login grace time (`grace-exceeded`).
    #[must_use]
    pub fn grace_exceeded(mut self, penalty: Duration) -> Self {
        self.grace_exceeded = penalty;
        self
    }

    /// The longest a block is refused for; penalties add up to this (`max`).
    #[must_use]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The penalty time that must be outstanding before a block is refused (`min`).
    #[must_use]
    pub fn min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// How many IPv4 blocks the table tracks (`max-sources4`).
    #[must_use]
    pub fn max_sources4(mut self, n: u32) -> Self {
        self.max_sources4 = n;
        self
    }

    /// How many IPv6 blocks the table tracks (`max-sources6`).
    #[must_use]
    pub fn max_sources6(mut self, n: u32) -> Self {
        self.max_sources6 = n;
        self
    }

    /// What to do when the IPv4 table is full, and the IPv6 one unless
    /// [`overflow6`](Self::overflow6) says otherwise (`overflow`).
    #[must_use]
    pub fn overflow(mut self, mode: Overflow) -> Self {
        self.overflow = mode;
        self
    }

    /// What to do when the IPv6 table is full (`overflow6`).
    #[must_use]
    pub fn overflow6(mut self, mode: Overflow) -> Self {
        self.overflow6 = Some(mode);
        self
    }

    /// Adds address blocks whose sources are never penalised nor refused
    /// (OpenSSH's `PerSourcePenaltyExemptList`).
    #[must_use]
    pub fn exempt(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.exempt.entries.extend(nets.into_iter().map(|net| ExemptEntry { net: net.trunc(), negated: false }));
        self
    }

    /// Replaces the exempt list (OpenSSH's `PerSourcePenaltyExemptList`).
    #[must_use]
    pub fn exempt_list(mut self, list: ExemptList) -> Self {
        self.exempt = list;
        self
    }

    /// The prefix lengths that group sources into blocks (OpenSSH's
    /// `PerSourceNetBlockSize`, default 32 and 128); larger values mean 32 and 128.
    #[must_use]
    pub fn net_block_size(mut self, ipv4: u8, ipv6: u8) -> Self {
        self.net_block = (ipv4.min(32), ipv6.min(128));
        self
    }

    /// The exempt list.
    pub fn exempt_sources(&self) -> &ExemptList {
        &self.exempt
    }
}

/// The keywords `FromStr` accepts, for error messages.
const KEYWORDS: &str = "authfail:DURATION, noauth:DURATION, grace-exceeded:DURATION, max:DURATION, min:DURATION, \
     max-sources4:N, max-sources6:N, overflow:deny-all|permissive, overflow6:deny-all|permissive; \
     or `no` or `yes` alone";

/// A `PerSourcePenalties` value that does not parse; its `Display` names the
/// offending token and lists the accepted keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePenaltiesError(String);

impl fmt::Display for ParsePenaltiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParsePenaltiesError {}

impl FromStr for PerSourcePenalties {
    type Err = ParsePenaltiesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |token: &str, why: &str| {
            ParsePenaltiesError(format!("invalid PerSourcePenalties `{}`: {why} (accepted: {KEYWORDS})", token.escape_debug()))
        };
        let tokens: Vec<&str> = s.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(err(s, "no keyword given"));
        }
        let mut p = PerSourcePenalties::default();
        for token in &tokens {
            if token.eq_ignore_ascii_case("no") || token.eq_ignore_ascii_case("yes") {
                if tokens.len() > 1 {
                    return Err(err(token, "must appear alone"));
                }
                p.enabled = token.eq_ignore_ascii_case("yes");
                continue;
            }
            let Some((keyword, value)) = token.split_once(':') else {
                return Err(err(token, "not KEYWORD:VALUE"));
            };
            let time = || parse_time(value).ok_or_else(|| err(token, "invalid duration (e.g. 30, 5s, 10m, 1h30m, 1.5s)"));
            let count = || match value.parse::<u32>() {
                Ok(n) if n <= i32::MAX as u32 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(err(token, "not a number from 0 to 2147483647")),
            };
            let mode = || match value {
                "deny-all" => Ok(Overflow::DenyAll),
                "permissive" => Ok(Overflow::Permissive),
                _ => Err(err(token, "the mode is deny-all or permissive")),
            };
            match keyword {
                "authfail" => p.authfail = time()?,
                "noauth" => p.noauth = time()?,
                "grace-exceeded" => p.grace_exceeded = time()?,
                "max" => p.max = time()?,
                "min" => p.min = time()?,
                "max-sources4" => p.max_sources4 = count()?,
                "max-sources6" => p.max_sources6 = count()?,
                "overflow" => p.overflow = mode()?,
                "overflow6" => p.overflow6 = Some(mode()?),
                "crash" => return Err(err(token, "not supported: a panicking handler refuses only its request here, nothing crashes")),
                "invaliduser" => return Err(err(token, "not supported: the framework does not know which users exist")),
                "refuseconnection" => {
                    return Err(err(token, "not supported: there is no RefuseConnection; refusing connections is a layer of its own"));
                }
                _ => return Err(err(token, "unknown keyword")),
            }
        }
        Ok(p)
    }
}

impl fmt::Display for PerSourcePenalties {
    /// OpenSSH's syntax, every keyword spelt out (`no` when disabled).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            return f.write_str("no");
        }
        write!(
            f,
            "authfail:{} noauth:{} grace-exceeded:{} max:{} min:{} max-sources4:{} max-sources6:{} overflow:{}",
            Time(self.authfail),
            Time(self.noauth),
            Time(self.grace_exceeded),
            Time(self.max),
            Time(self.min),
            self.max_sources4,
            self.max_sources6,
            self.overflow,
        )?;
        if let Some(mode) = self.overflow6 {
            write!(f, " overflow6:{mode}")?;
        }
        Ok(())
    }
}

/// Reads OpenSSH's time format (`convtime_double`): one or more `NUMBER[UNIT]`
/// with units `s`, `m`, `h`, `d`, `w` in either case, a number without a unit
/// meaning seconds (once only); decimals only for seconds (`1.5s`), kept to
/// the nanosecond. `None` when invalid or beyond `u64::MAX` seconds.
fn parse_time(s: &str) -> Option<Duration> {
    const NANOS: u128 = 1_000_000_000;
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut seen_seconds = false;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (number, None),
        };
        // strtod's decimal form: digits, at most one point, a digit somewhere,
        // and (OpenSSH's rule) a digit last.
        if whole.is_empty() && fraction.is_none_or(str::is_empty) {
            return None;
        }
        if fraction.is_some_and(|f| f.is_empty() || f.contains('.')) {
            return None;
        }
        let multiplier: u128 = match bytes.get(i).map(u8::to_ascii_lowercase) {
            None | Some(b's') => {
                if seen_seconds {
                    return None;
                }
                seen_seconds = true;
                1
            }
            Some(b'm') => 60,
            Some(b'h') => 3600,
            Some(b'd') => 86400,
            Some(b'w') => 604_800,
            Some(_) => return None,
        };
        if fraction.is_some() && multiplier > 1 {
            return None;
        }
        let mut nanos: u128 = 0;
        for d in whole.bytes() {
            nanos = nanos.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
            if nanos > u128::from(u64::MAX) {
                return None;
            }
        }
        nanos *= NANOS;
        if let Some(fraction) = fraction {
            let mut scale = NANOS / 10;
            for d in fraction.bytes() {
                // Digits past the nanosecond are dropped.
                nanos += u128::from(d - b'0') * scale;
                scale /= 10;
            }
        }
        total = total.checked_add(nanos.checked_mul(multiplier)?)?;
        if total / NANOS > u128::from(u64::MAX) {
            return None;
        }
        if i < bytes.len() {
            i += 1;
        }
    }
    Some(Duration::new(u64::try_from(total / NANOS).ok()?, (total % NANOS) as u32))
}

/// A duration in OpenSSH's time format: `0s`, `90s` as `1m30s`, `1h`, `1.5s`.
struct Time(Duration);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [('w', 604_800), ('d', 86400), ('h', 3600), ('m', 60)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            write!(f, "{secs}.{}s", fraction.trim_end_matches('0'))?;
        } else if secs != 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

/// Address blocks exempt from penalties, OpenSSH's `PerSourcePenaltyExemptList`.
///
/// `FromStr` reads OpenSSH's syntax: a comma-separated list of addresses and
/// `address/masklen` blocks (`192.0.2.0/24,2001:db8::/32,10.1.2.3`), an entry
/// may be negated with `!` (a source matching a negated entry is not exempt,
/// whatever else matches), and `none` is the empty list. As in sshd, a mask
/// longer than the address or host bits set after the mask are errors.
/// sshd's wildcard patterns (`192.168.*`) are refused: write the block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExemptList {
    entries: Vec<ExemptEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExemptEntry {
    net: IpNet,
    negated: bool,
}

impl ExemptList {
    /// The empty list: nothing exempt.
    pub fn new() -> Self {
        ExemptList::default()
    }

    /// Whether nothing is exempt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `ip` is exempt: some entry holds it and no negated entry does
    /// (an IPv4-mapped IPv6 address is matched as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let mut exempt = false;
        for entry in &self.entries {
            if entry.net.contains(&ip) {
                if entry.negated {
                    return false;
                }
                exempt = true;
            }
        }
        exempt
    }
}

/// An `ExemptList` value that does not parse; its `Display` names the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseExemptListError(String);

impl fmt::Display for ParseExemptListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseExemptListError {}

impl FromStr for ExemptList {
    type Err = ParseExemptListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(ExemptList::new());
        }
        let err = |entry: &str, why: &str| {
            ParseExemptListError(format!(
                "invalid PerSourcePenaltyExemptList entry `{}`: {why} (expected a comma-separated list of ADDRESS or \
                 ADDRESS/MASKLEN, each optionally negated with `!`, or `none`)",
                entry.escape_debug()
            ))
        };
        let mut entries = Vec::new();
        for entry in s.split(',') {
            let (negated, text) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            if text.is_empty() {
                return Err(err(entry, "empty entry"));
            }
            if text.contains(['*', '?']) {
                return Err(err(entry, "wildcard patterns are not supported; write the block as ADDRESS/MASKLEN"));
            }
            let net = match text.split_once('/') {
                Some((addr, len)) => {
                    let addr: IpAddr = addr.parse().map_err(|_| err(entry, "not an IP address"))?;
                    let len: u8 = (!len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| len.parse().ok())
                        .flatten()
                        .ok_or_else(|| err(entry, "the mask length is not a number"))?;
                    let net = IpNet::new(addr, len).map_err(|_| err(entry, "the mask length is too long for the address"))?;
                    if net.trunc() != net {
                        return Err(err(entry, "host bits are set after the mask length"));
                    }
                    net
                }
                None => IpNet::from(text.parse::<IpAddr>().map_err(|_| err(entry, "not an IP address"))?),
            };
            entries.push(ExemptEntry { net, negated });
        }
        Ok(ExemptList { entries })
    }
}

impl fmt::Display for ExemptList {
    /// OpenSSH's syntax (`none` when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("none");
        }
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if entry.negated {
                f.write_str("!")?;
            }
            write!(f, "{}", entry.net)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
