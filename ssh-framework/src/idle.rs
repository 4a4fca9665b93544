//! Channel inactivity, for OpenSSH's `ChannelTimeout`
//! ([`limit::ChannelTimeout`](crate::limit::ChannelTimeout) configures it): the
//! per-channel traffic count the data path bumps ([`Activity`]), what watches
//! one channel ([`ChannelWatch`]) and one connection's timeouts
//! ([`ChannelTimeouts`]). A leaf: channels, forwards and the connection hold
//! these without depending on the limit layers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// The interval of the first entry whose pattern `applies`, unless it is zero.
fn first_interval(entries: &[(String, Duration)], applies: impl Fn(&str) -> bool) -> Option<Duration> {
    let (_, interval) = entries.iter().find(|(pattern, _)| applies(pattern))?;
    (!interval.is_zero()).then_some(*interval)
}

/// The interval after which an idle channel of `channel_type` is closed,
/// under `entries`, or `None`.
pub(crate) fn interval_for(entries: &[(String, Duration)], channel_type: &str) -> Option<Duration> {
    first_interval(entries, |pattern| type_matches(pattern, channel_type))
}

/// The `global` interval of `entries`, if set and not zero.
pub(crate) fn global_interval(entries: &[(String, Duration)]) -> Option<Duration> {
    first_interval(entries, |pattern| pattern == GLOBAL)
}

/// The name of the timeout for all channels taken together.
pub(crate) const GLOBAL: &str = "global";

/// Whether `pattern` matches `channel_type`: an OpenSSH wildcard match
/// (`*` any run of characters, `?` one), plus `session` for every session type. `global` is not a
/// channel type and matches nothing here.
pub(crate) fn type_matches(pattern: &str, channel_type: &str) -> bool {
    if pattern == GLOBAL || channel_type == GLOBAL {
        return false;
    }
    wildmatch::WildMatch::new(pattern).matches(channel_type)
        || (pattern == "session" && channel_type.starts_with("session:"))
}


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
    entries: Vec<(String, Duration)>,
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
    /// Timeouts from `ChannelTimeout`'s entries: type pattern and interval,
    /// the first match winning, zero meaning none.
    pub(crate) fn new(entries: Vec<(String, Duration)>) -> Self {
        let global = global_interval(&entries).map(|interval| Global {
            interval,
            traffic: Arc::default(),
            expired: watch::Sender::new(0),
        });
        ChannelTimeouts { entries, global }
    }

    /// The watch for a new channel of `channel_type`; opening it counts as
    /// traffic for the `global` timeout.
    pub(crate) fn watch(&self, channel_type: impl Into<String>) -> ChannelWatch {
        let channel_type = channel_type.into();
        let interval = interval_for(&self.entries, &channel_type);
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


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_openssh() {
        assert!(type_matches("*", "x11-connection"));
        assert!(type_matches("direct-*", "direct-streamlocal@openssh.com"));
        assert!(!type_matches("direct-*", "forwarded-tcpip"));
        assert!(type_matches("session:?hell", "session:shell"));
        assert!(!type_matches("session:?", "session:shell"));
        assert!(type_matches("session", "session:subsystem:sftp"));
        assert!(!type_matches("*", GLOBAL), "global is not a channel type");
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
        let timeouts = ChannelTimeouts::new(vec![(GLOBAL.to_owned(), Duration::from_secs(1))]);
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
}
