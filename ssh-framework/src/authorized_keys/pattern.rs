//! One entry of a `from="..."` pattern list: a network or a wildcard, maybe
//! negated (sshd(8), PATTERNS in ssh_config(5)).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One entry of a `from=` pattern list.
///
/// An entry that reads as an address or a CIDR network (`192.0.2.0/24`,
/// `2001:db8::/32`, `10.1.2.3`) is a [`Network`](HostPattern::Network); a
/// network with host bits set (`10.0.0.1/8`) is refused, as by OpenSSH.
/// Anything else is a [`Wildcard`](HostPattern::Wildcard) (`*` any run, `?`
/// one character), matched without regard to case against the client's
/// address written out (`10.0.0.*`); host-name patterns are kept but match no
/// address, since no name is looked up (OpenSSH's `UseDNS no`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostPattern {
    /// An address or CIDR network.
    Network {
        /// The network (an address is a /32 or /128).
        net: IpNet,
        /// `!`: a match refuses.
        negated: bool,
    },
    /// A wildcard pattern.
    Wildcard {
        /// The pattern as written, without its `!`.
        pattern: String,
        /// `!`: a match refuses.
        negated: bool,
    },
}

impl HostPattern {
    /// Parse one entry (no comma).
    pub(crate) fn parse(entry: &str) -> Result<Self, &'static str> {
        let (negated, body) = match entry.strip_prefix('!') {
            Some(body) => (true, body),
            None => (false, entry),
        };
        if body.is_empty() {
            return Err("empty entry in pattern list");
        }
        let net = match body.split_once('/') {
            None => body.parse::<IpAddr>().ok().map(IpNet::from),
            // Only an address with a numeric length is a network; OpenSSH
            // refuses one whose length is too long rather than reading it
            // as a wildcard.
            Some((addr, len)) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
                match addr.parse::<IpAddr>() {
                    Ok(addr) => Some(
                        len.parse::<u8>()
                            .ok()
                            .and_then(|len| IpNet::new(addr, len).ok())
                            .ok_or("inconsistent mask length for network")?,
                    ),
                    Err(_) => None,
                }
            }
            Some(_) => None,
        };
        match net {
            Some(net) if net.trunc() != net => Err("inconsistent mask length for network"),
            Some(net) => Ok(HostPattern::Network { net, negated }),
            None => Ok(HostPattern::Wildcard { pattern: body.to_owned(), negated }),
        }
    }

    /// Whether this entry starts with `!`.
    pub fn is_negated(&self) -> bool {
        match self {
            HostPattern::Network { negated, .. } | HostPattern::Wildcard { negated, .. } => *negated,
        }
    }

    /// Whether `addr` (whose text is `text`) matches, negation aside.
    pub(crate) fn matches(&self, addr: IpAddr, text: &str) -> bool {
        match self {
            HostPattern::Network { net, .. } => net.contains(&addr),
            HostPattern::Wildcard { pattern, .. } => wildmatch::WildMatch::new_case_insensitive(pattern).matches(text),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_negated() {
            f.write_str("!")?;
        }
        match self {
            HostPattern::Network { net, .. } => write!(f, "{net}"),
            HostPattern::Wildcard { pattern, .. } => f.write_str(pattern),
        }
    }
}
