//! Abuse control: OpenSSH's protections as `tower` layers.
//!
//! Every protection here is a value with its own configuration and a default,
//! and a [`tower::Layer`] over the server's service [`Stack`](crate::Stack).
//!
//! - [`penalty`]: OpenSSH's `PerSourcePenalties` and `PerSourcePenaltyExemptList`
//!   ([`PenaltyLayer`]).

pub mod penalty;

pub use self::penalty::{ExemptList, IpNet, Overflow, Penalty, PenaltyLayer, PerSourcePenalties};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address block `ip` belongs to: its first `v4_prefix` or `v6_prefix`
/// bits (an IPv4-mapped IPv6 address counts as IPv4). OpenSSH's
/// `PerSourceNetBlockSize` groups sources this way.
pub(crate) fn block_of(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4_prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6_prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_of_masks_prefixes_at_the_edges() {
        assert_eq!(block_of("10.1.2.3".parse().unwrap(), 0, 128), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(block_of("10.1.2.3".parse().unwrap(), 32, 128), "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(block_of("2001:db8::1".parse().unwrap(), 32, 0), "::".parse::<IpAddr>().unwrap());
        assert_eq!(block_of("2001:db8::1".parse().unwrap(), 32, 128), "2001:db8::1".parse::<IpAddr>().unwrap());
    }
}
