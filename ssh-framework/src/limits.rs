//! The server's limits, shared by the accept loop, every connection and the
//! forwarding runtime. Defaults follow OpenSSH's sshd.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The server's limits. Defaults follow OpenSSH's sshd where it has one.
///
/// Memory a client can make the server hold, with the defaults:
///
/// - channel buffers (what a client sent that a body, a forwarded destination
///   or a client-opened channel's reader has not taken yet, on every channel
///   kind): at most `max_channel_buffers_per_connection` (64 MiB) per
///   connection plus one packet (256 KiB), at most `8 MiB + 2 × window + 1
///   MiB` (25 MiB) per channel, and at most `max_channel_buffers` (1 GiB) for
///   the whole server plus one packet per connection; see `FlowControl` in
///   `channel.rs` for how (a trickle window, then no reading at all);
/// - data sent on a session channel before its body starts: 1 MiB per channel;
/// - environment variables: `max_env_bytes` (64 KiB) per session channel,
///   names up to 256 bytes, values up to 32 KiB, at most 256 of them.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_auth_tries: u32,
    pub(crate) login_grace_time: Duration,
    pub(crate) rejection_delay: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) max_startups: MaxStartups,
    pub(crate) per_source_max_startups: Option<usize>,
    pub(crate) per_source_net_block_size: (u8, u8),
    pub(crate) inactivity_timeout: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_count_max: usize,
    pub(crate) max_listeners: usize,
    pub(crate) max_forward_channels: usize,
    pub(crate) gateway_ports: GatewayPorts,
    pub(crate) allow_privileged_ports: bool,
    /// Permission bits cleared on the sockets of remote Unix-socket forwards
    /// (OpenSSH's `StreamLocalBindMask`).
    pub(crate) stream_local_bind_mask: u32,
    /// `None`: derived from the open-file limit ([`Limits::open_files`]).
    pub(crate) max_open_files: Option<usize>,
    /// `None`: derived from `max_open_files` ([`Limits::open_files`]).
    pub(crate) max_open_files_per_user: Option<usize>,
    pub(crate) max_env_bytes: usize,
    pub(crate) max_channel_buffers_per_connection: usize,
    pub(crate) max_channel_buffers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_auth_tries: 6,
            login_grace_time: Duration::from_secs(120),
            rejection_delay: Duration::from_secs(1),
            max_sessions: 10,
            max_startups: MaxStartups::default(),
            per_source_max_startups: None,
            per_source_net_block_size: (32, 128),
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: None,
            keepalive_count_max: 3,
            max_listeners: 16,
            max_forward_channels: 256,
            gateway_ports: GatewayPorts::No,
            allow_privileged_ports: false,
            // Owner read and write only (0600), as OpenSSH.
            stream_local_bind_mask: 0o177,
            max_open_files: None,
            max_open_files_per_user: None,
            max_env_bytes: 64 << 10,
            max_channel_buffers_per_connection: 64 << 20,
            max_channel_buffers: 1 << 30,
        }
    }
}

impl Limits {
    /// The budget of files and directories SFTP and SCP sessions may hold open,
    /// server-wide and per user, for a process allowed `nofile` descriptors.
    ///
    /// By default half the descriptors go to open files; the other half stays
    /// for what a budget cannot count: sockets of connections and forwards,
    /// pipes and terminals of child processes, listeners and the runtime's own.
    /// A user may hold a quarter of the files, so no one user can stop the
    /// others from opening any. With the common limit of 1,024 that is 512 and
    /// 128 (OpenSSH's client holds one handle per transfer); with 524,288 (the
    /// usual hard limit, which the server raises its soft limit to at start-up)
    /// 262,144 and 65,536.
    pub(crate) fn open_files(&self, nofile: u64) -> (usize, usize) {
        let derived = usize::try_from(nofile / 2).unwrap_or(usize::MAX).max(1);
        let max = self.max_open_files.unwrap_or(derived).max(1);
        let per_user = self.max_open_files_per_user.unwrap_or(max / 4).clamp(1, max);
        (max, per_user)
    }
}

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

/// Which addresses remote forwards may bind (OpenSSH's `GatewayPorts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GatewayPorts {
    /// Loopback only, whatever the client asks (OpenSSH's default, `no`).
    #[default]
    No,
    /// The address the client asks for.
    ClientSpecified,
    /// All interfaces, whatever the client asks.
    Yes,
}


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
}
