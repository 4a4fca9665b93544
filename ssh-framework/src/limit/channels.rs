//! Caps on what one connection, or one user, may hold open: session channels
//! ([`MaxSessions`]), channels of every kind ([`MaxChannels`]), remote-forward
//! listeners ([`MaxListeners`]) and one user's session channels across all of
//! their connections ([`MaxSessionsPerUser`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::sealed::Apply;
use crate::connection::{Connection, Held};

/// Session channels open at once on one connection (OpenSSH's `MaxSessions`;
/// default 10, as OpenSSH). Past it, a session channel open is refused with
/// `resource shortage`; a channel whose command finished no longer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSessions(usize);

impl MaxSessions {
    /// At most `n` session channels per connection.
    pub fn new(n: usize) -> Self {
        MaxSessions(n)
    }

    /// The cap.
    pub fn get(&self) -> usize {
        self.0
    }
}

impl Default for MaxSessions {
    fn default() -> Self {
        MaxSessions(10)
    }
}

impl Apply for MaxSessions {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().max_sessions = Some(self.0);
        true
    }
}

/// Channels of every kind open at once on one connection: sessions, local and
/// remote forwards, X11 and agent connections (default 256).
///
/// OpenSSH allows 16,384 channels per connection; each of ours may buffer up
/// to a window of data (see [`ServerBuilder::max_channel_buffers_per_connection`](crate::ServerBuilder::max_channel_buffers_per_connection)
/// for the budget they share), and 256 is more than any interactive client
/// opens. Past it a channel open is refused with `resource shortage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxChannels(usize);

impl MaxChannels {
    /// At most `n` channels per connection.
    pub fn new(n: usize) -> Self {
        MaxChannels(n)
    }

    /// The cap.
    pub fn get(&self) -> usize {
        self.0
    }
}

impl Default for MaxChannels {
    fn default() -> Self {
        MaxChannels(256)
    }
}

impl Apply for MaxChannels {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().max_channels = Some(self.0);
        true
    }
}

/// Remote-forward listeners (`ssh -R`, TCP and Unix sockets) one connection
/// may hold (default 16; OpenSSH has no cap). Past it a `tcpip-forward` or
/// `streamlocal-forward` request is refused; every listener closes when its
/// connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxListeners(usize);

impl MaxListeners {
    /// At most `n` listeners per connection.
    pub fn new(n: usize) -> Self {
        MaxListeners(n)
    }

    /// The cap.
    pub fn get(&self) -> usize {
        self.0
    }
}

impl Default for MaxListeners {
    fn default() -> Self {
        MaxListeners(16)
    }
}

impl Apply for MaxListeners {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().max_listeners = Some(self.0);
        true
    }
}

/// Session channels one user may have open at once across all of their
/// connections (not installed by default: OpenSSH has no such cap, and an
/// account many people share, such as `git`, would hit it).
///
/// Past it a session channel open is refused with `resource shortage`. The
/// count is kept server-wide by every clone of this value, in a table that
/// holds only users with open sessions.
#[derive(Debug, Clone)]
pub struct MaxSessionsPerUser(UserSessions);

/// The server-wide count of open session channels per user.
#[derive(Debug, Clone)]
struct UserSessions {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One session channel's place in [`UserSessions`]; freed when dropped.
#[derive(Debug)]
struct UserSessionSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl MaxSessionsPerUser {
    /// At most `n` session channels per user.
    pub fn new(n: usize) -> Self {
        MaxSessionsPerUser(UserSessions { max: n, open: Arc::default() })
    }

    /// The cap.
    pub fn get(&self) -> usize {
        self.0.max
    }
}

impl Apply for MaxSessionsPerUser {
    fn apply_limit(&self, connection: &Connection) -> bool {
        let table = self.0.clone();
        connection.limits().user_sessions =
            Some(Arc::new(move |user: &str| table.acquire(user).map(|slot| Box::new(slot) as Held)));
        true
    }
}

impl UserSessions {
    /// Takes a place for one more session of `user`, or `None` at the cap.
    fn acquire(&self, user: &str) -> Option<UserSessionSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(user.to_owned()).or_insert(0);
        if *count >= self.max {
            tracing::info!(max = self.max, user, "session limit per user reached; channel refused");
            if *count == 0 {
                open.remove(user);
            }
            return None;
        }
        *count += 1;
        Some(UserSessionSlot { open: self.open.clone(), user: user.to_owned() })
    }
}

impl Drop for UserSessionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

super::limit_layer!(MaxSessions, MaxChannels, MaxListeners, MaxSessionsPerUser);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_past_the_cap_is_refused_others_are_not_and_the_table_empties() {
        let limit = MaxSessionsPerUser::new(2);
        let a = limit.0.acquire("alice").unwrap();
        let b = limit.0.acquire("alice").unwrap();
        assert!(limit.0.acquire("alice").is_none());
        let c = limit.0.acquire("bob").unwrap();
        drop(a);
        let d = limit.0.acquire("alice").unwrap();
        drop((b, c, d));
        assert!(limit.0.open.lock().unwrap().is_empty());
        let none = MaxSessionsPerUser::new(0);
        assert!(none.0.acquire("alice").is_none());
        assert!(none.0.open.lock().unwrap().is_empty(), "a refused user leaves no entry");
    }
}
