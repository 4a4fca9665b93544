//! Timeouts for what a logged-in client leaves idle: channels without traffic
//! ([`ChannelTimeout`]) and connections without channels
//! ([`UnusedConnectionTimeout`]), as OpenSSH 9.2+ defines them.
//!
//! Traffic is counted where the framework reads and writes channel data
//! ([`Activity`]: one relaxed atomic add per packet or write, no clock read,
//! no lock); a watcher per channel samples the count every eighth of the
//! interval, so an idle channel is closed between one interval and one and
//! an eighth intervals after its last byte.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

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
        self.channel(GLOBAL, interval)
    }

    /// The entries, in order: type pattern and interval.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Duration)> {
        self.entries.iter().map(|(p, d)| (p.as_str(), *d))
    }

    /// The interval after which an idle channel of `channel_type` is closed
    /// (an OpenSSH type name, such as `session:shell` or `direct-tcpip`), or
    /// `None` when no entry applies or the first that matches is zero.
    pub fn interval_for(&self, channel_type: &str) -> Option<Duration> {
        let (_, interval) = self.entries.iter().find(|(pattern, _)| type_matches(pattern, channel_type))?;
        (!interval.is_zero()).then_some(*interval)
    }

    /// The `global` interval, when set and not zero.
    fn global_interval(&self) -> Option<Duration> {
        let (_, interval) = self.entries.iter().find(|(pattern, _)| pattern == GLOBAL)?;
        (!interval.is_zero()).then_some(*interval)
    }
}

/// The name of the timeout for all channels taken together.
const GLOBAL: &str = "global";

/// Whether `pattern` matches `channel_type`: an OpenSSH wildcard match
/// (`*`, `?`), plus `session` for every session type. `global` is not a
/// channel type and matches nothing here.
fn type_matches(pattern: &str, channel_type: &str) -> bool {
    if pattern == GLOBAL || channel_type == GLOBAL {
        return false;
    }
    wildcard_match(pattern.as_bytes(), channel_type.as_bytes())
        || (pattern == "session" && channel_type.starts_with("session:"))
}

/// `*` matches any run of bytes, `?` any one byte; linear backtracking to the
/// last star, so no input costs more than `pattern.len() * text.len()` steps.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
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
        connection.limits().channel_timeout = Some(self.clone());
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

/// A channel's count of bytes moved, both ways (and its connection's, when a
/// `global` timeout watches all channels together). Bumped on the data path:
/// one or two relaxed atomic adds, nothing else.
#[derive(Debug, Clone, Default)]
pub(crate) struct Activity {
    channel: Arc<AtomicU64>,
    connection: Option<Arc<AtomicU64>>,
}

impl Activity {
    /// Counts `n` bytes moved.
    #[inline]
    pub(crate) fn bump(&self, n: usize) {
        self.channel.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(connection) = &self.connection {
            connection.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Resolves once `counter` has not moved for `interval`, sampling it every
/// eighth of the interval (no clock read on the data path).
async fn idle(counter: &AtomicU64, interval: Duration) {
    let tick = (interval / 8).max(Duration::from_millis(10));
    let mut last = counter.load(Ordering::Relaxed);
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = tokio::time::Instant::now();
        let count = counter.load(Ordering::Relaxed);
        if count != last {
            last = count;
            since = now;
        } else if now.duration_since(since) >= interval {
            return;
        }
    }
}

/// One connection's channel timeouts, as the lifecycle installs them.
#[derive(Debug)]
pub(crate) struct ChannelTimeouts {
    config: ChannelTimeout,
    global: Option<Global>,
}

/// The `global` timeout's state: the connection's traffic count and the
/// signal that closes every channel.
#[derive(Debug)]
struct Global {
    interval: Duration,
    traffic: Arc<AtomicU64>,
    expired: watch::Sender<u64>,
}

impl ChannelTimeouts {
    pub(crate) fn new(config: ChannelTimeout) -> Self {
        let global = config.global_interval().map(|interval| Global {
            interval,
            traffic: Arc::default(),
            expired: watch::Sender::new(0),
        });
        ChannelTimeouts { config, global }
    }

    /// The watch for a new channel of `channel_type`; opening it counts as
    /// traffic for the `global` timeout.
    pub(crate) fn watch(&self, channel_type: impl Into<String>) -> ChannelWatch {
        let channel_type = channel_type.into();
        let interval = self.config.interval_for(&channel_type);
        let mut activity = Activity::default();
        let mut global = None;
        if let Some(g) = &self.global {
            g.traffic.fetch_add(1, Ordering::Relaxed);
            activity.connection = Some(g.traffic.clone());
            global = Some(g.expired.subscribe());
        }
        ChannelWatch { activity, interval, global, channel_type }
    }

    /// Resolves each time the `global` timeout expires (never without one);
    /// every open channel is then closed.
    pub(crate) async fn global_expired(&self) {
        let Some(global) = &self.global else { return std::future::pending().await };
        idle(&global.traffic, global.interval).await;
        // Receivers are the open channels' watches; with none there is nothing to close.
        if global.expired.receiver_count() > 0 {
            tracing::info!(interval_secs = global.interval.as_secs(), "global channel timeout: no traffic on any channel; closing them all");
        }
        global.expired.send_modify(|generation| *generation += 1);
    }
}

/// What watches one channel for inactivity.
#[derive(Debug)]
pub(crate) struct ChannelWatch {
    activity: Activity,
    interval: Option<Duration>,
    global: Option<watch::Receiver<u64>>,
    channel_type: String,
}

impl ChannelWatch {
    /// A watch that never expires, for connections without `ChannelTimeout`.
    pub(crate) fn unwatched() -> Self {
        ChannelWatch { activity: Activity::default(), interval: None, global: None, channel_type: String::new() }
    }

    /// The counter to bump where the channel's data moves.
    pub(crate) fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// Whether any timeout applies to the channel.
    pub(crate) fn is_watched(&self) -> bool {
        self.interval.is_some() || self.global.is_some()
    }

    /// Resolves when the channel has been idle for its interval, or the
    /// `global` timeout closed every channel; logs which. Never resolves when
    /// no timeout applies.
    pub(crate) async fn expired(mut self) {
        let own = async {
            match self.interval {
                Some(interval) => {
                    idle(&self.activity.channel, interval).await;
                    tracing::info!(channel_type = %self.channel_type, interval_secs = interval.as_secs(), "channel timeout: no traffic; closing the channel");
                }
                None => std::future::pending().await,
            }
        };
        let global = async {
            let closed = match self.global.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => false,
            };
            if closed {
                tracing::info!(channel_type = %self.channel_type, "closing the channel: global channel timeout");
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = own => {}
            () = global => {}
        }
    }
}

impl Connection {
    /// The watch for a new channel of `channel_type` (an OpenSSH type name).
    pub(crate) fn channel_watch(&self, channel_type: &str) -> ChannelWatch {
        match self.channel_timeouts() {
            Some(timeouts) => timeouts.watch(channel_type),
            None => ChannelWatch::unwatched(),
        }
    }
}

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
        assert_eq!(session.global_interval(), None);
        assert_eq!(t.global_interval(), Some(Duration::from_secs(50)));
    }

    #[test]
    fn wildcards_match_like_openssh() {
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"a*b*c", b"aXXbYYbc"));
        assert!(!wildcard_match(b"a*b*c", b"aXXbYYb"));
        assert!(wildcard_match(b"?", b"x"));
        assert!(!wildcard_match(b"?", b""));
        assert!(!wildcard_match(b"", b"x"));
    }

    #[test]
    fn builder_rounds_up_to_whole_seconds() {
        let t = ChannelTimeout::new().channel("session", Duration::from_millis(1500)).global(Duration::from_secs(7200));
        assert_eq!(t.to_string(), "session=2s global=2h");
    }

    #[tokio::test]
    async fn idle_waits_for_the_counter_to_stop_then_one_interval() {
        let activity = Activity::default();
        let bumper = activity.clone();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            for _ in 0..10 {
                bumper.bump(1);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        idle(&activity.channel, Duration::from_millis(200)).await;
        let took = start.elapsed();
        // Last bump at about 450 ms: idle from then on for 200 ms, sampled every
        // 25 ms (about 700 ms; the upper bound leaves room for a loaded machine).
        assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1500), "{took:?}");
    }

    #[tokio::test]
    async fn the_global_timeout_closes_every_channel_open_when_it_expires_not_later_ones() {
        let timeouts = ChannelTimeouts::new(ChannelTimeout::new().global(Duration::from_secs(1)));
        let (a, b) = (timeouts.watch("session:shell"), timeouts.watch("direct-tcpip"));
        assert!(a.is_watched() && b.interval.is_none(), "global alone sets no channel's own interval");
        let start = tokio::time::Instant::now();
        let global = async {
            timeouts.global_expired().await;
            std::future::pending::<()>().await
        };
        let both = async { tokio::join!(a.expired(), b.expired()) };
        tokio::select! {
            _ = both => {}
            () = global => unreachable!(),
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(2000), "{took:?}");
        // A channel opened after the expiry waits for the next one.
        let later = timeouts.watch("session:shell");
        assert!(tokio::time::timeout(Duration::from_millis(300), later.expired()).await.is_err());
        assert!(!ChannelWatch::unwatched().is_watched());
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
                let _ = wildcard_match(input.as_bytes(), b"session:subsystem:sftp");
            }
        }
    }
}
