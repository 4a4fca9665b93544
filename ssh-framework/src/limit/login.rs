//! Limits on the way to a login: how long it may take ([`LoginGraceTime`]),
//! how many attempts may fail ([`MaxAuthTries`]) and how many requests a
//! connection may send in all ([`MaxAuthRequests`]).

use std::time::Duration;

use super::sealed::Apply;
use crate::connection::Connection;

/// Time allowed from connect to successful authentication, key exchange
/// included (OpenSSH's `LoginGraceTime`; default 120 s, as OpenSSH).
///
/// A connection still unauthenticated then is disconnected, or cut without
/// a message when it is stalled in key exchange, and ends with
/// [`ConnectionErrorKind::LoginGraceTimeExceeded`](crate::ConnectionErrorKind::LoginGraceTimeExceeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginGraceTime(Duration);

impl LoginGraceTime {
    /// A grace time of `time`.
    pub fn new(time: Duration) -> Self {
        LoginGraceTime(time)
    }

    /// The grace time.
    pub fn time(&self) -> Duration {
        self.0
    }
}

impl Default for LoginGraceTime {
    fn default() -> Self {
        LoginGraceTime(Duration::from_secs(120))
    }
}

impl Apply for LoginGraceTime {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().login_grace_time = Some(self.0);
        true
    }
}

/// Failed authentication attempts before the client is disconnected
/// (OpenSSH's `MaxAuthTries`; default 6, as OpenSSH).
///
/// Counted across user names; a client's first `none` probe is free, as in
/// OpenSSH. Requests that are not failures (partial-success rounds,
/// `publickey` probes) are held to [`MaxAuthRequests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAuthTries(u32);

impl MaxAuthTries {
    /// At most `n` failed attempts (at least 1).
    pub fn new(n: u32) -> Self {
        MaxAuthTries(n.max(1))
    }

    /// The number of attempts.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl Default for MaxAuthTries {
    fn default() -> Self {
        MaxAuthTries(6)
    }
}

impl Apply for MaxAuthTries {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().max_auth_tries = Some(self.0);
        true
    }
}

/// Authentication requests of any kind one connection may send, successes,
/// partial-success rounds, `publickey` probes and keyboard-interactive answers
/// included (default 128; OpenSSH has no such cap beyond `MaxAuthTries`).
///
/// A client that cycles through keys or methods, or a multi-factor chain that
/// never ends, fails no counted attempt; this bounds them. Past it the client
/// is disconnected and the connection ends with
/// [`ConnectionErrorKind::TooManyAuthRequests`](crate::ConnectionErrorKind::TooManyAuthRequests).
/// An honest OpenSSH client sends a few per key it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAuthRequests(u32);

impl MaxAuthRequests {
    /// At most `n` requests (at least 1).
    pub fn new(n: u32) -> Self {
        MaxAuthRequests(n.max(1))
    }

    /// The number of requests.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl Default for MaxAuthRequests {
    fn default() -> Self {
        MaxAuthRequests(128)
    }
}

impl Apply for MaxAuthRequests {
    fn apply_limit(&self, connection: &Connection) -> bool {
        connection.limits().max_auth_requests = Some(self.0);
        true
    }
}

super::limit_layer!(LoginGraceTime, MaxAuthTries, MaxAuthRequests);
