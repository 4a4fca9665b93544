//! Abuse control: OpenSSH's protections as `tower` layers, with defaults
//! sized for an async server.
//!
//! Every protection is a value with its own configuration and a `Default`,
//! and each is a [`tower::Layer`] over the service [`Stack`](crate::Stack)
//! that acts on the [`Connect`](crate::RequestKind::Connect) request, before
//! key exchange and before any handler of yours runs: it refuses the
//! connection (the framework then drops it at once) or sets what the
//! connection may do from then on.
//!
//! | limit | OpenSSH | default here | default in OpenSSH |
//! |---|---|---|---|
//! | [`Penalties`] | `PerSourcePenalties`, `PerSourcePenaltyExemptList` | OpenSSH's (see [`penalty`]) | authfail 5 s, noauth 1 s, grace-exceeded 10 s, min 15 s, max 10 min |
//! | [`MaxConnections`] | (none) | 10,000 | (none) |
//! | [`Startups`] | `MaxStartups`, `PerSourceMaxStartups`, `PerSourceNetBlockSize` | `100:30:1000`, no per-source cap, /32 and /128 | `10:30:100`, none, /32 and /128 |
//! | [`LoginGraceTime`] | `LoginGraceTime` | 120 s | 120 s |
//! | [`MaxAuthTries`] | `MaxAuthTries` | 6 | 6 |
//! | [`MaxAuthRequests`] | (none) | 128 | (none) |
//! | [`MaxSessions`] | `MaxSessions` | 10 | 10 |
//! | [`MaxChannels`] | (channels per connection) | 256 | 16,384 |
//! | [`MaxListeners`] | (none) | 16 | (none) |
//! | [`MaxSessionsPerUser`] | (none; `pam_limits` `maxlogins`) | not installed | (none) |
//! | [`ChannelTimeout`] | `ChannelTimeout` | not installed | none |
//! | [`UnusedConnectionTimeout`] | `UnusedConnectionTimeout` | not installed | none |
//!
//! # Composing, replacing, removing
//!
//! A [`ServerBuilder`](crate::ServerBuilder) starts with every default limit
//! above installed, outermost in the stack, so they act before any layer or
//! handler of yours. [`ServerBuilder::limit`](crate::ServerBuilder::limit)
//! replaces the default of the same type (or adds one that is not a
//! default); [`ServerBuilder::without_limit`](crate::ServerBuilder::without_limit)
//! removes it:
//!
//! ```no_run
//! use std::time::Duration;
//! use ssh_framework::limit::{LoginGraceTime, MaxSessionsPerUser, Startups};
//! use ssh_framework::Server;
//!
//! let builder = Server::builder()
//!     .limit(LoginGraceTime::new(Duration::from_secs(30)))
//!     .limit(MaxSessionsPerUser::new(20))
//!     .without_limit::<Startups>();
//! ```
//!
//! Because each limit is also a `tower::Layer`, it can be put anywhere in
//! your own stack; a per-connection limit applied after the default one (by
//! a layer of yours, which runs after the defaults) overrides it for that
//! connection, so a layer can give one network or one kind of client other
//! limits:
//!
//! ```no_run
//! use ssh_framework::limit::MaxSessions;
//! use ssh_framework::tower::ServiceBuilder;
//! use ssh_framework::Server;
//!
//! // Every connection may open 50 sessions instead of 10.
//! let builder = Server::builder().layer(MaxSessions::new(50));
//! ```
//!
//! Settings that russh fixes for the whole server are set on the builder
//! instead: keepalives ([`keepalive_interval`](crate::ServerBuilder::keepalive_interval),
//! [`keepalive_count_max`](crate::ServerBuilder::keepalive_count_max)), the
//! inactivity timeout, and the channel buffer and open-file budgets.

mod channels;
mod connections;
mod login;
pub mod penalty;
mod startups;
mod timeout;

use std::any::{Any, TypeId};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

pub use self::channels::{MaxChannels, MaxListeners, MaxSessions, MaxSessionsPerUser};
pub use self::connections::MaxConnections;
pub use self::login::{LoginGraceTime, MaxAuthRequests, MaxAuthTries};
pub use self::penalty::{ExemptList, IpNet, Overflow, Penalties, PerSourcePenalties};
pub use self::startups::{MaxStartups, ParseMaxStartupsError, Startups};
pub use self::timeout::{ChannelTimeout, ParseTimeoutError, UnusedConnectionTimeout};
use crate::connection::Connection;
use crate::request::{Request, RequestKind, Response};

/// A protection that acts on the `Connect` request: implemented by every type
/// of this module, which the builder's [`limit`](crate::ServerBuilder::limit)
/// and [`without_limit`](crate::ServerBuilder::without_limit) take.
///
/// Sealed: write a policy of your own as an ordinary `tower::Layer`, which
/// may [`apply`](Limit::apply) any of these to the connections it chooses.
pub trait Limit: sealed::Apply + fmt::Debug + Clone + Send + Sync + 'static {
    /// Applies this limit to `connection`, as its layer does on the `Connect`
    /// request: `false` means the connection is refused (and the reason was
    /// logged); a per-connection limit replaces what an earlier one set.
    ///
    /// Only a `Connect` request's connection is affected: the framework reads
    /// a connection's limits once its `Connect` request is allowed.
    fn apply(&self, connection: &Connection) -> bool {
        sealed::Apply::apply_limit(self, connection)
    }
}

pub(crate) mod sealed {
    use crate::connection::Connection;

    /// What a limit does to a new connection.
    pub trait Apply {
        /// Applies the limit to a connection being accepted: `false` refuses it
        /// (the limit logs why).
        fn apply_limit(&self, connection: &Connection) -> bool;
    }
}

/// The service a [`Limit`] used as a layer wraps around `S`.
#[derive(Debug, Clone)]
pub struct Limited<S, L> {
    inner: S,
    limit: L,
}

impl<S, L> Limited<S, L> {
    /// Wraps `inner` in `limit`.
    pub fn new(inner: S, limit: L) -> Self {
        Limited { inner, limit }
    }

    inner_service_accessors!();
}

impl<S, L> Service<Request> for Limited<S, L>
where
    S: Service<Request, Response = Response>,
    L: Limit,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let limit = &self.limit;
        on_connect(&mut self.inner, request, |connection| Limit::apply(limit, connection))
    }
}

/// Passes `request` to `inner`, unless it is a `Connect` that `admit`
/// refuses: then the answer is `Reject` (the framework drops the connection).
fn on_connect<S>(
    inner: &mut S,
    request: Request,
    admit: impl FnOnce(&Connection) -> bool,
) -> Either<Ready<Result<Response, S::Error>>, S::Future>
where
    S: Service<Request, Response = Response>,
{
    if matches!(request.kind(), RequestKind::Connect) && !admit(request.connection()) {
        return Either::Left(ready(Ok(Response::Reject)));
    }
    Either::Right(inner.call(request))
}

/// Implements `tower::Layer` and [`Limit`] for a limit type.
macro_rules! limit_layer {
    ($($limit:ty),* $(,)?) => {$(
        impl<S> tower::Layer<S> for $limit {
            type Service = $crate::limit::Limited<S, $limit>;

            fn layer(&self, inner: S) -> Self::Service {
                $crate::limit::Limited::new(inner, self.clone())
            }
        }

        impl $crate::limit::Limit for $limit {}
    )*};
}
pub(crate) use limit_layer;

/// A limit with its type erased, as the builder keeps it.
trait AnyLimit: Send + Sync {
    fn apply(&self, connection: &Connection) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn debug(&self) -> &dyn fmt::Debug;
}

impl<L: Limit> AnyLimit for L {
    fn apply(&self, connection: &Connection) -> bool {
        Limit::apply(self, connection)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn debug(&self) -> &dyn fmt::Debug {
        self
    }
}

/// The limits a builder installs, in order, one of each type.
#[derive(Clone)]
pub(crate) struct LimitSet(Vec<(TypeId, Arc<dyn AnyLimit>)>);

impl fmt::Debug for LimitSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(_, limit)| limit.debug())).finish()
    }
}

impl Default for LimitSet {
    /// The defaults of the table in the module docs, admission first.
    fn default() -> Self {
        let mut set = LimitSet(Vec::new());
        // Penalised sources first: they take no other limit's place.
        set.insert(Penalties::default());
        set.insert(MaxConnections::default());
        set.insert(Startups::default());
        set.insert(LoginGraceTime::default());
        set.insert(MaxAuthTries::default());
        set.insert(MaxAuthRequests::default());
        set.insert(MaxSessions::default());
        set.insert(MaxChannels::default());
        set.insert(MaxListeners::default());
        set
    }
}

impl LimitSet {
    /// Replaces the limit of `L`'s type in place, or appends `limit`.
    pub(crate) fn insert<L: Limit>(&mut self, limit: L) {
        let id = TypeId::of::<L>();
        let limit: Arc<dyn AnyLimit> = Arc::new(limit);
        match self.0.iter_mut().find(|(t, _)| *t == id) {
            Some(entry) => entry.1 = limit,
            None => self.0.push((id, limit)),
        }
    }

    pub(crate) fn remove<L: Limit>(&mut self) {
        self.0.retain(|(t, _)| *t != TypeId::of::<L>());
    }

    /// The installed limit of type `L`.
    pub(crate) fn get<L: Limit>(&self) -> Option<&L> {
        self.0.iter().find_map(|(_, limit)| limit.as_any().downcast_ref::<L>())
    }
}

impl<S> Layer<S> for LimitSet {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Limits<S> {
        Limits { inner, set: Arc::new(self.clone()) }
    }
}

/// Every installed limit in one service: the builder's default stack.
#[derive(Clone)]
pub(crate) struct Limits<S> {
    inner: S,
    set: Arc<LimitSet>,
}

impl<S> Service<Request> for Limits<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let set = &self.set;
        on_connect(&mut self.inner, request, |connection| set.0.iter().all(|(_, limit)| limit.apply(connection)))
    }
}

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
