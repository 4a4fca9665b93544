//! Timeouts for what a logged-in client leaves idle: channels without traffic
//! ([`ChannelTimeout`]) and connections without channels
//! ([`UnusedConnectionTimeout`]), as OpenSSH 9.2+ defines them.
//!
//! Traffic is counted where the framework reads and writes channel data
//! (`crate::idle::Activity`: one relaxed atomic add per packet or write, no clock read,
//! no lock); a watcher per channel samples the count every eighth of the
//! interval, so an idle channel is closed between one interval and one and
//! an eighth intervals after its last byte.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::sealed::Apply;
use crate::connection::Connection;

/// The longest interval accepted (OpenSSH's limit: `INT_MAX` seconds).
const MAX_SECONDS: u64 = i32::MAX as u64;

/// Closes channels that carried no data, in either direction, for an interval
/// chosen by channel type (OpenSSH's `ChannelTimeout`; not installed by
/// default, as in OpenSSH).
///
/// Channel types are OpenSSH's names:
///
/// | type | channels |
/// |---|---|
/// | `session` | every session channel (OpenSSH 9.5+) |
/// | `session:shell`, `session:command`, `session:subsystem:NAME` | one kind of session (OpenSSH 9.2+; `session:subsystem:sftp`) |
/// | `direct-tcpip`, `direct-streamlocal@openssh.com` | local forwards (`ssh -L`, `-D`) |
/// | `forwarded-tcpip`, `forwarded-streamlocal@openssh.com` | connections to remote-forward listeners (`ssh -R`) |
/// | `x11-connection` | X11 connections |
/// | `agent-connection` | connections to the client's agent |
/// | `global` | all channels taken together: traffic on any channel resets it; when it expires every open channel is closed. Never matched by a wildcard. |
///
/// A type may hold `*` and `?` wildcards (`session:*`, `*`); the first entry
/// that matches a channel decides its interval, and an interval of zero
/// disables the timeout for the channels it matches. A session channel is
/// watched from the moment its shell, command or subsystem starts; a closed
/// session gets no exit status (OpenSSH's `ssh` then exits with 255).
///
/// Written in OpenSSH's syntax, it parses with [`FromStr`] and prints with
/// [`Display`](fmt::Display):
///
/// ```
/// use std::time::Duration;
/// use ssh_framework::limit::ChannelTimeout;
///
/// let parsed: ChannelTimeout = "session=5m direct-tcpip=30s".parse().unwrap();
/// let built = ChannelTimeout::new()
///     .channel("session", Duration::from_secs(300))
///     .channel("direct-tcpip", Duration::from_secs(30));
/// assert_eq!(parsed, built);
/// assert_eq!(built.to_string(), "session=5m direct-tcpip=30s");
/// assert_eq!(built.interval_for("session:subsystem:sftp"), Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTimeout {
    entries: Vec<(String, Duration)>,
}

impl ChannelTimeout {
    /// No timeouts yet.
    pub fn new() -> Self {
        ChannelTimeout::default()
    }

    /// Adds a timeout for channels whose type matches `pattern` (after the
    /// entries already added, which win when both match). An interval of
    /// zero disables the timeout for those channels; intervals are counted in
    /// whole seconds, rounded up.
    pub fn channel(mut self, pattern: impl Into<String>, interval: Duration) -> Self {
        let whole = interval.as_secs().saturating_add(u64::from(interval.subsec_nanos() > 0)).min(MAX_SECONDS);
        self.entries.push((pattern.into(), Duration::from_secs(whole)));
        self
    }

    /// Adds the `global` timeout: all channels of a connection taken together.
    pub fn global(self, interval: Duration) -> Self {
        self.channel(crate::idle::GLOBAL, interval)
    }

    /// The entries, in order: type pattern and interval.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Duration)> {
        self.entries.iter().map(|(p, d)| (p.as_str(), *d))
    }

    /// The interval after which an idle channel of `channel_type` is closed
    /// (an OpenSSH type name, such as `session:shell` or `direct-tcpip`), or
    /// `None` when no entry applies or the first that matches is zero.
    pub fn interval_for(&self, channel_type: &str) -> Option<Duration> {
        crate::idle::interval_for(&self.entries, channel_type)
    }
}


/// Why a [`ChannelTimeout`] or [`UnusedConnectionTimeout`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTimeoutError(String);

impl fmt::Display for ParseTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseTimeoutError {}

/// Parses OpenSSH's time format: a sequence of `<number>[smhdw]` (either
/// case), summed; a bare number is seconds. `"1h30m"` is 5400 s.
fn parse_time(s: &str) -> Result<Duration, ParseTimeoutError> {
    let error = || ParseTimeoutError(format!("{s:?} is not a time (use seconds or 30s, 5m, 1h, 1d, 1w, 1h30m)"));
    if s.is_empty() {
        return Err(error());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(error());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| error())?;
        rest = &rest[digits..];
        let unit = match rest.chars().next() {
            None => 1,
            Some(c) => {
                rest = &rest[c.len_utf8()..];
                match c.to_ascii_lowercase() {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    'd' => 86400,
                    'w' => 604_800,
                    _ => return Err(error()),
                }
            }
        };
        total = number.checked_mul(unit).and_then(|n| total.checked_add(n)).filter(|&n| n <= MAX_SECONDS).ok_or_else(error)?;
    }
    Ok(Duration::from_secs(total))
}

/// Writes whole seconds in the largest unit that divides them (`5m`, `90s`).
fn fmt_time(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let secs = d.as_secs();
    match secs {
        0 => f.write_str("0"),
        s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
        s if s % 60 == 0 => write!(f, "{}m", s / 60),
        s => write!(f, "{s}s"),
    }
}

impl FromStr for ChannelTimeout {
    type Err = ParseTimeoutError;

    /// OpenSSH's `ChannelTimeout` value: `type=interval` pairs separated by whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut timeout = ChannelTimeout::new();
        for pair in s.split_ascii_whitespace() {
            let Some((pattern, interval)) = pair.split_once('=') else {
                return Err(ParseTimeoutError(format!("{pair:?} is not type=interval")));
            };
            if pattern.is_empty() {
                return Err(ParseTimeoutError(format!("{pair:?} has no channel type")));
            }
            timeout.entries.push((pattern.to_owned(), parse_time(interval)?));
        }
        if timeout.entries.is_empty() {
            return Err(ParseTimeoutError("no type=interval pair".into()));
        }
        Ok(timeout)
    }
}

impl fmt::Display for ChannelTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (pattern, interval)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{pattern}=")?;
            fmt_time(*interval, f)?;
        }
        Ok(())
    }
}

impl Apply for ChannelTimeout {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().channel_timeouts = Some(self.entries.clone());
        true
    }
}

/// Disconnects an authenticated connection that has had no open channel for
/// this long (OpenSSH's `UnusedConnectionTimeout`; not installed by default,
/// as in OpenSSH).
///
/// The timer starts when authentication succeeds and again whenever the last
/// channel closes; any open channel (a session, a forwarded connection, X11
/// or agent) stops it. As in OpenSSH, a remote-forward listener (`ssh -R`) is
/// not a channel and does not keep the connection. The connection ends with
/// [`ConnectionErrorKind::UnusedConnectionTimeout`](crate::ConnectionErrorKind::UnusedConnectionTimeout).
/// Parses from OpenSSH's time format (`30`, `30s`, `5m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnusedConnectionTimeout(Duration);

impl UnusedConnectionTimeout {
    /// A timeout of `time`.
    pub fn new(time: Duration) -> Self {
        UnusedConnectionTimeout(time)
    }

    /// The timeout.
    pub fn time(&self) -> Duration {
        self.0
    }
}

impl FromStr for UnusedConnectionTimeout {
    type Err = ParseTimeoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_time(s).map(UnusedConnectionTimeout)
    }
}

impl fmt::Display for UnusedConnectionTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_time(Duration::from_secs(self.0.as_secs()), f)
    }
}

impl Apply for UnusedConnectionTimeout {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().unused_connection_timeout = Some(self.0);
        true
    }
}

super::limit_layer!(ChannelTimeout, UnusedConnectionTimeout);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_openssh_syntax_and_prints_it_back() {
        let t: ChannelTimeout = "session=5m direct-tcpip=30 x11-connection=1h30m global=90s agent-connection=0".parse().unwrap();
        let entries: Vec<_> = t.entries().map(|(p, d)| (p.to_owned(), d.as_secs())).collect();
        assert_eq!(
            entries,
            [
                ("session".to_owned(), 300),
                ("direct-tcpip".to_owned(), 30),
                ("x11-connection".to_owned(), 5400),
                ("global".to_owned(), 90),
                ("agent-connection".to_owned(), 0)
            ]
        );
        assert_eq!(t.to_string(), "session=5m direct-tcpip=30s x11-connection=90m global=90s agent-connection=0");
        assert_eq!(t.to_string().parse::<ChannelTimeout>().unwrap(), t);
        assert_eq!("2W1d1H1M1S".parse::<UnusedConnectionTimeout>().unwrap().time().as_secs(), 2 * 604_800 + 86400 + 3661);
    }

    #[test]
    fn refuses_what_openssh_refuses() {
        for bad in ["", "   ", "session=5\u{e9}", "session=5\u{1F600}", "session", "=5", "session=", "session=5x", "session=-1", "session=m", "session=5m=1", "session=99999999999999999999", "session=9999999999w"] {
            assert!(bad.parse::<ChannelTimeout>().is_err(), "{bad:?} parsed");
        }
        assert!("".parse::<UnusedConnectionTimeout>().is_err());
        assert!("1.5".parse::<UnusedConnectionTimeout>().is_err());
    }

    #[test]
    fn first_matching_entry_wins_and_zero_disables() {
        let t: ChannelTimeout = "session:subsystem:sftp=0 session:*=10 direct-*=20 forwarded-stream?ocal@openssh.com=30 *=40 global=50".parse().unwrap();
        let secs = |ty: &str| t.interval_for(ty).map(|d| d.as_secs());
        assert_eq!(secs("session:subsystem:sftp"), None);
        assert_eq!(secs("session:shell"), Some(10));
        assert_eq!(secs("session:command"), Some(10));
        assert_eq!(secs("direct-tcpip"), Some(20));
        assert_eq!(secs("direct-streamlocal@openssh.com"), Some(20));
        assert_eq!(secs("forwarded-streamlocal@openssh.com"), Some(30));
        assert_eq!(secs("x11-connection"), Some(40));
        assert_eq!(secs("global"), None, "global is not a channel type and no wildcard matches it");
        let session: ChannelTimeout = "session=7".parse().unwrap();
        assert_eq!(session.interval_for("session:subsystem:sftp"), Some(Duration::from_secs(7)));
        assert_eq!(session.interval_for("sessions:shell"), None);
        assert_eq!(crate::idle::global_interval(&session.entries), None);
        assert_eq!(crate::idle::global_interval(&t.entries), Some(Duration::from_secs(50)));
    }

    #[test]
    fn builder_rounds_up_to_whole_seconds() {
        let t = ChannelTimeout::new().channel("session", Duration::from_millis(1500)).global(Duration::from_secs(7200));
        assert_eq!(t.to_string(), "session=2s global=2h");
    }

    /// Matching any text as a pattern neither panics nor loops.
    fn parsed_interval(pattern: &str) -> Option<Duration> {
        crate::idle::interval_for(&[(pattern.to_owned(), Duration::from_secs(1))], "session:subsystem:sftp")
    }

    proptest! {
        // Any string parses or is refused, never panics; what parses prints back to itself.
        #[test]
        fn any_string_parses_or_errors(s in "\\PC{0,64}", t in "[a-z*?:@.=0-9smhdwSMHDW \t-]{0,48}") {
            for input in [s.as_str(), t.as_str()] {
                if let Ok(parsed) = input.parse::<ChannelTimeout>() {
                    let printed = parsed.to_string();
                    prop_assert_eq!(printed.parse::<ChannelTimeout>().unwrap(), parsed);
                }
                let _ = input.parse::<UnusedConnectionTimeout>();
                let _ = parsed_interval(input);
            }
        }
    }
}
