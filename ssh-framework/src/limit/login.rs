//! Limits on the way to a login: how long it may take ([`LoginGraceTime`])
//! and how many attempts may fail ([`MaxAuthTries`]).

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
/// OpenSSH. Independently of it, a connection that sends far more
/// authentication requests than any honest client (partial-success rounds and
/// `publickey` probes included) is disconnected
/// ([`ConnectionErrorKind::TooManyAuthRequests`](crate::ConnectionErrorKind::TooManyAuthRequests)).
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

super::limit_layer!(LoginGraceTime, MaxAuthTries);
