use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::table::{Kind, Refusal, Rules, Table};
use super::*;
use crate::auth::{Factors, Method};
use crate::channel::{BufferPool, FlowControl};
use crate::connection::Connection;
use crate::error::{ConnectionError, ConnectionErrorKind};
use crate::request::{Request, RequestKind, Response, Secret};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn table(spec: &str) -> Table {
    Table::new(Rules::new(&spec.parse::<PerSourcePenalties>().unwrap()))
}

fn remaining(t: &mut Table, source: &str, now: Instant) -> Option<Duration> {
    match t.check(ip(source), now) {
        Ok(()) => None,
        Err(Refusal::Penalised { remaining, .. }) => Some(remaining),
        Err(Refusal::TableFull) => panic!("table full"),
    }
}

// ---- parsing -------------------------------------------------------------

#[test]
fn defaults_are_openssh_defaults() {
    let d = PerSourcePenalties::default();
    assert!(d.is_enabled());
    assert_eq!((d.authfail, d.noauth, d.grace_exceeded, d.max, d.min), (secs(5), secs(1), secs(10), secs(600), secs(15)));
    assert_eq!((d.max_sources4, d.max_sources6), (65536, 65536));
    assert_eq!((d.overflow, d.overflow6), (Overflow::Permissive, None));
    assert_eq!(d.net_block, (32, 128));
    assert!(d.exempt.is_empty());
    assert_eq!(
        d.to_string(),
        "authfail:5s noauth:1s grace-exceeded:10s max:10m min:15s max-sources4:65536 max-sources6:65536 overflow:permissive"
    );
    assert_eq!("yes".parse::<PerSourcePenalties>().unwrap(), d);
    assert_eq!(d.to_string().parse::<PerSourcePenalties>().unwrap(), d);
}

#[test]
fn no_disables_and_round_trips() {
    let p: PerSourcePenalties = "no".parse().unwrap();
    assert!(!p.is_enabled());
    assert_eq!(p, PerSourcePenalties::disabled());
    assert_eq!(p.to_string(), "no");
    assert_eq!("NO".parse::<PerSourcePenalties>().unwrap(), p);
}

#[test]
fn keywords_set_their_fields_and_keep_the_rest() {
    let p: PerSourcePenalties =
        "authfail:1h30m noauth:90 grace-exceeded:1.5s max:1w2d min:0 max-sources4:7 max-sources6:0 overflow:deny-all overflow6:permissive"
            .parse()
            .unwrap();
    assert_eq!(p.authfail, secs(5400));
    assert_eq!(p.noauth, secs(90));
    assert_eq!(p.grace_exceeded, Duration::from_millis(1500));
    assert_eq!(p.max, secs(9 * 86400));
    assert_eq!(p.min, secs(0));
    assert_eq!((p.max_sources4, p.max_sources6), (7, 0));
    assert_eq!((p.overflow, p.overflow6), (Overflow::DenyAll, Some(Overflow::Permissive)));
    assert_eq!(
        p.to_string(),
        "authfail:1h30m noauth:1m30s grace-exceeded:1.5s max:1w2d min:0s max-sources4:7 max-sources6:0 overflow:deny-all overflow6:permissive"
    );
    let q: PerSourcePenalties = "  authfail:5s\tmax:10m ".parse().unwrap();
    assert_eq!(q, PerSourcePenalties::default());
    let r: PerSourcePenalties = "min:10s".parse().unwrap();
    assert_eq!(r, PerSourcePenalties::default().min(secs(10)));
}

#[test]
fn time_format_follows_convtime() {
    let t = |s: &str| parse_time(s);
    assert_eq!(t("30"), Some(secs(30)));
    assert_eq!(t("30s"), Some(secs(30)));
    assert_eq!(t("30S"), Some(secs(30)));
    assert_eq!(t("10m"), Some(secs(600)));
    assert_eq!(t("1h30m"), Some(secs(5400)));
    assert_eq!(t("1h30"), Some(secs(3630)));
    assert_eq!(t("2d"), Some(secs(172_800)));
    assert_eq!(t("1W"), Some(secs(604_800)));
    assert_eq!(t("0.25s"), Some(Duration::from_millis(250)));
    assert_eq!(t(".5"), Some(Duration::from_millis(500)));
    assert_eq!(t("1.0000000019"), Some(Duration::new(1, 1)));
    for bad in ["", "s", "m", ".", "5.", "1.5m", "1..5", "1.2.3", "5s5", "5s5s", "-5", "+5", "5x", "5 m", "1e3", "0x10", "18446744073709551616", "9999999999999999999999w"] {
        assert_eq!(t(bad), None, "{bad:?}");
    }
    assert_eq!(t("18446744073709551615"), Some(Duration::from_secs(u64::MAX)));
    for (d, s) in [(secs(0), "0s"), (secs(90), "1m30s"), (secs(3600), "1h"), (secs(8 * 86400 + 1), "1w1d1s"), (Duration::from_millis(1500), "1.5s"), (Duration::new(60, 5), "1m0.000000005s")] {
        assert_eq!(Time(d).to_string(), s);
        assert_eq!(parse_time(s), Some(d));
    }
}

#[test]
fn errors_name_the_token_and_list_keywords() {
    let err = |s: &str| s.parse::<PerSourcePenalties>().unwrap_err().to_string();
    for (spec, token, why) in [
        ("crash:2m", "crash:2m", "not supported"),
        ("invaliduser:5s", "invaliduser:5s", "not supported"),
        ("refuseconnection:10s", "refuseconnection:10s", "not supported"),
        ("authfail:5s bogus:1", "bogus:1", "unknown keyword"),
        ("authfail", "authfail", "not KEYWORD:VALUE"),
        ("authfail:", "authfail:", "invalid duration"),
        ("max:1.5m", "max:1.5m", "invalid duration"),
        ("no authfail:5s", "no", "must appear alone"),
        ("authfail:5s yes", "yes", "must appear alone"),
        ("max-sources4:-1", "max-sources4:-1", "not a number"),
        ("max-sources6:2147483648", "max-sources6:2147483648", "not a number"),
        ("max-sources6:+5", "max-sources6:+5", "not a number"),
        ("overflow:maybe", "overflow:maybe", "deny-all or permissive"),
        ("Authfail:5s", "Authfail:5s", "unknown keyword"),
        ("", "", "no keyword"),
        ("   ", "   ", "no keyword"),
    ] {
        let message = err(spec);
        assert!(message.contains(&format!("`{token}`")), "{message}");
        assert!(message.contains(why), "{message}");
        assert!(message.contains("authfail:DURATION") && message.contains("overflow6:deny-all|permissive"), "{message}");
    }
}

#[test]
fn exempt_list_parses_openssh_syntax() {
    let list: ExemptList = "127.0.0.3/32,10.0.0.0/8,!10.1.0.0/16,2001:db8::/32,192.0.2.7".parse().unwrap();
    assert!(list.contains(ip("127.0.0.3")));
    assert!(!list.contains(ip("127.0.0.2")));
    assert!(list.contains(ip("10.200.0.1")));
    assert!(!list.contains(ip("10.1.2.3")), "a negated entry wins");
    assert!(list.contains(ip("2001:db8:ffff::1")));
    assert!(!list.contains(ip("2001:db9::1")));
    assert!(list.contains(ip("192.0.2.7")) && !list.contains(ip("192.0.2.8")));
    assert!(list.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped addresses match as IPv4");
    assert_eq!(list.to_string(), "127.0.0.3/32,10.0.0.0/8,!10.1.0.0/16,2001:db8::/32,192.0.2.7/32");
    assert_eq!(list.to_string().parse::<ExemptList>().unwrap(), list);
    assert_eq!("none".parse::<ExemptList>().unwrap(), ExemptList::new());
    assert_eq!(ExemptList::new().to_string(), "none");
    for (bad, why) in [
        ("192.0.2.0/33", "too long"),
        ("192.0.2.0/8", "host bits"),
        ("192.168.*", "wildcard"),
        ("", "empty entry"),
        ("10.0.0.0/8,", "empty entry"),
        ("!", "empty entry"),
        ("example.com", "not an IP address"),
        ("10.0.0.0/", "mask length"),
        ("10.0.0.0/+8", "mask length"),
        ("::/129", "too long"),
    ] {
        let message = bad.parse::<ExemptList>().unwrap_err().to_string();
        assert!(message.contains(why) && message.contains("ADDRESS/MASKLEN"), "{bad:?}: {message}");
    }
    let built = PerSourcePenalties::default().exempt(["10.0.0.9/8".parse::<IpNet>().unwrap()]);
    assert_eq!(built.exempt_sources().to_string(), "10.0.0.0/8");
}

// ---- the table ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn penalties_accrue_activate_past_min_and_stop_at_max() {
    let mut t = table("authfail:5s noauth:1s min:15s max:30s");
    let start = Instant::now();
    // 5 + 5 + 5 = 15 s is not more than min: recorded, not enforced.
    for _ in 0..3 {
        t.penalise(ip("192.0.2.1"), Kind::AuthFail, Instant::now());
        assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), None);
    }
    t.penalise(ip("192.0.2.1"), Kind::AuthFail, Instant::now());
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), Some(secs(20)));
    assert_eq!(remaining(&mut t, "192.0.2.2", Instant::now()), None, "another source is not affected");
    // Enforced until it expires, even once less than min is left.
    tokio::time::advance(secs(19)).await;
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), Some(secs(1)));
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), None);
    assert_eq!(t.len(), (0, 0), "the expired entry is gone");
    // Accrual stops at max.
    for _ in 0..20 {
        t.penalise(ip("192.0.2.1"), Kind::AuthFail, Instant::now());
    }
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), Some(secs(30)));
    assert!(Instant::now() - start < secs(25));
}

#[tokio::test(start_paused = true)]
async fn a_single_penalty_past_min_is_enforced_at_once_and_capped_at_max() {
    let mut t = table("grace-exceeded:20s noauth:0 min:15s max:18s");
    t.penalise(ip("192.0.2.1"), Kind::GraceExceeded, Instant::now());
    assert_eq!(t.check(ip("192.0.2.1"), Instant::now()), Err(Refusal::Penalised { kind: Kind::GraceExceeded, remaining: secs(18) }));
    // A zero penalty is no penalty.
    t.penalise(ip("192.0.2.2"), Kind::NoAuth, Instant::now());
    assert_eq!(t.len(), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn penalties_expire_below_min_without_ever_being_enforced() {
    let mut t = table("noauth:10s min:15s");
    t.penalise(ip("192.0.2.1"), Kind::NoAuth, Instant::now());
    tokio::time::advance(Duration::from_millis(10_001)).await;
    // The first penalty expired: this one starts afresh at 10 s.
    t.penalise(ip("192.0.2.1"), Kind::NoAuth, Instant::now());
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), None);
    t.penalise(ip("192.0.2.1"), Kind::NoAuth, Instant::now());
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), Some(secs(20)));
}

#[tokio::test(start_paused = true)]
async fn permissive_overflow_forgets_the_entries_closest_to_expiry() {
    let mut t = table("authfail:20s min:15s max-sources4:3 max-sources6:2");
    for (i, source) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"].into_iter().enumerate() {
        t.penalise(ip(source), Kind::AuthFail, Instant::now());
        assert_eq!(t.len().0, (i + 1).min(3));
        tokio::time::advance(secs(1)).await;
    }
    assert_eq!(remaining(&mut t, "192.0.2.1", Instant::now()), None, "evicted first");
    assert_eq!(remaining(&mut t, "192.0.2.2", Instant::now()), None, "evicted second");
    assert_eq!(remaining(&mut t, "192.0.2.3", Instant::now()), Some(secs(17)));
    assert_eq!(remaining(&mut t, "192.0.2.5", Instant::now()), Some(secs(19)));
    // IPv6 has its own table and bound.
    for n in 0..10u16 {
        t.penalise(IpAddr::from([0x2001, 0xdb8, n, 0, 0, 0, 0, 1]), Kind::AuthFail, Instant::now());
    }
    assert_eq!(t.len(), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn deny_all_overflow_refuses_everyone_of_the_family_until_an_entry_expires() {
    let mut t = table("noauth:5s min:15s max-sources4:2 overflow:deny-all overflow6:permissive max-sources6:1");
    t.penalise(ip("192.0.2.1"), Kind::NoAuth, Instant::now());
    assert_eq!(t.check(ip("192.0.2.9"), Instant::now()), Ok(()));
    t.penalise(ip("192.0.2.2"), Kind::NoAuth, Instant::now());
    // Full: nobody of the family gets in, penalised or not, and nothing new is recorded.
    assert_eq!(t.check(ip("192.0.2.9"), Instant::now()), Err(Refusal::TableFull));
    assert_eq!(t.check(ip("192.0.2.1"), Instant::now()), Err(Refusal::TableFull));
    t.penalise(ip("192.0.2.3"), Kind::NoAuth, Instant::now());
    assert_eq!(t.len(), (2, 0));
    // IPv6 is separate, and permissive.
    assert_eq!(t.check(ip("2001:db8::1"), Instant::now()), Ok(()));
    t.penalise(ip("2001:db8::1"), Kind::NoAuth, Instant::now());
    t.penalise(ip("2001:db8::2"), Kind::NoAuth, Instant::now());
    assert_eq!(t.len(), (2, 1));
    assert_eq!(t.check(ip("2001:db8::3"), Instant::now()), Ok(()));
    tokio::time::advance(Duration::from_millis(5001)).await;
    assert_eq!(t.check(ip("192.0.2.9"), Instant::now()), Ok(()));
    assert_eq!(t.len(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn sources_are_grouped_by_net_block() {
    let p = PerSourcePenalties::default().authfail(secs(20)).net_block_size(24, 64);
    let mut t = Table::new(Rules::new(&p));
    t.penalise(ip("10.0.0.1"), Kind::AuthFail, Instant::now());
    t.penalise(ip("2001:db8:0:1::1"), Kind::AuthFail, Instant::now());
    assert_eq!(t.len(), (1, 1));
    assert!(remaining(&mut t, "10.0.0.200", Instant::now()).is_some());
    assert!(remaining(&mut t, "::ffff:10.0.0.7", Instant::now()).is_some(), "IPv4-mapped counts as IPv4");
    assert!(remaining(&mut t, "10.0.1.1", Instant::now()).is_none());
    assert!(remaining(&mut t, "2001:db8:0:1:ffff::9", Instant::now()).is_some());
    assert!(remaining(&mut t, "2001:db8:0:2::1", Instant::now()).is_none());
    let host = Table::new(Rules::new(&PerSourcePenalties::default().authfail(secs(20))));
    let mut host = host;
    host.penalise(ip("10.0.0.1"), Kind::AuthFail, Instant::now());
    assert!(remaining(&mut host, "10.0.0.2", Instant::now()).is_none(), "32 bits by default");
}

#[tokio::test(start_paused = true)]
async fn huge_durations_do_not_overflow_the_clock() {
    let mut t = table("authfail:18446744073709551615 max:18446744073709551615 min:0");
    t.penalise(ip("192.0.2.1"), Kind::AuthFail, Instant::now());
    t.penalise(ip("192.0.2.1"), Kind::AuthFail, Instant::now());
    assert!(remaining(&mut t, "192.0.2.1", Instant::now()).unwrap() > secs(50 * 365 * 86400));
}

/// A flood of distinct sources against a full table: each penalty costs
/// O(log n), so 200,000 of them on a 65,536-entry table take well under a second.
#[tokio::test(start_paused = true)]
async fn a_flood_of_sources_stays_bounded_and_cheap() {
    let mut t = table("noauth:10s min:15s");
    let started = std::time::Instant::now();
    for n in 0..200_000u32 {
        t.penalise(IpAddr::from((0x0a00_0000 + n).to_be_bytes()), Kind::NoAuth, Instant::now());
        if n % 1000 == 0 {
            tokio::time::advance(Duration::from_millis(1)).await;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(t.len(), (65536, 0));
    assert!(elapsed < secs(5), "{elapsed:?}");
    eprintln!("200000 penalties on a full table: {elapsed:?}");
}

// ---- the service ------------------------------------------------------------

/// A stack that accepts connections, refuses password and `none`
/// authentication and accepts publickey.
fn app() -> impl Service<Request, Response = Response, Error = crate::BoxError, Future: Send> + Clone {
    tower::service_fn(|request: Request| async move {
        Ok::<_, crate::BoxError>(match request.kind() {
            RequestKind::AuthPassword { .. } | RequestKind::AuthNone { .. } => Response::Reject,
            RequestKind::AuthPublicKey { .. } => Response::Auth(crate::Auth::Accept),
            _ => Response::Accept,
        })
    })
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn connection(peer: &str) -> Arc<Connection> {
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    let flow = FlowControl::new(1 << 20, 1 << 20, Arc::new(BufferPool::new(1 << 20)));
    Arc::new(Connection::new(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed), Some(peer), None, flow))
}

async fn decide<S>(service: &mut S, connection: &Arc<Connection>, kind: RequestKind) -> bool
where
    S: Service<Request, Response = Response, Error = crate::BoxError>,
{
    service.ready().await.unwrap().call(Request::new(connection.clone(), kind)).await.unwrap().is_allowed()
}

fn password() -> RequestKind {
    RequestKind::AuthPassword { user: "u".into(), password: Secret::new("wrong") }
}

/// One connection from `peer` that fails `failures` authentication attempts
/// (as the framework counts them) and ends with `error`; whether it was let in.
async fn session<S>(service: &mut S, peer: &str, failures: u32, error: Option<ConnectionErrorKind>) -> bool
where
    S: Service<Request, Response = Response, Error = crate::BoxError>,
{
    let c = connection(peer);
    if !decide(service, &c, RequestKind::Connect).await {
        return false;
    }
    // As the lifecycle does once the whole stack let it in.
    c.set_admitted();
    for _ in 0..failures {
        c.count_auth_failure();
    }
    c.closed(error.map(|kind| ConnectionError::new(kind, None)).as_ref());
    true
}

#[tokio::test(start_paused = true)]
async fn failed_logins_refuse_the_source_until_the_penalty_expires() {
    let mut service = Penalties::new("authfail:5s min:10s max:30s".parse().unwrap()).layer(app());
    // Two connections with failures: 10 s is not more than min; the third makes 15 s.
    for _ in 0..3 {
        assert!(session(&mut service, "127.0.0.2", 2, None).await);
    }
    assert!(!session(&mut service, "127.0.0.2", 0, None).await, "refused after 3 failing connections");
    // A clone of the service (another connection's) shares the table.
    let mut clone = service.clone();
    assert!(!decide(&mut clone, &connection("127.0.0.2"), RequestKind::Connect).await);
    assert!(decide(&mut clone, &connection("127.0.0.1"), RequestKind::Connect).await, "another source gets in");
    tokio::time::advance(Duration::from_millis(15_001)).await;
    assert!(decide(&mut service, &connection("127.0.0.2"), RequestKind::Connect).await);
}

#[tokio::test(start_paused = true)]
async fn the_kind_of_penalty_follows_how_the_connection_ended() {
    let spec = "authfail:20s noauth:3s grace-exceeded:40s min:15s max:10m";
    // authfail: one failed attempt is enough.
    let mut s = Penalties::new(spec.parse().unwrap()).layer(app());
    assert!(session(&mut s, "127.0.0.2", 1, None).await);
    assert!(!decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
    tokio::time::advance(Duration::from_millis(20_001)).await;
    assert!(decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
    // noauth: 5 x 3 s is not more than 15 s, 6 x 3 s is.
    let mut s = Penalties::new(spec.parse().unwrap()).layer(app());
    for _ in 0..5 {
        assert!(session(&mut s, "127.0.0.2", 0, Some(ConnectionErrorKind::Io)).await);
    }
    assert!(session(&mut s, "127.0.0.2", 0, None).await, "15 s is not more than min");
    assert!(!decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
    tokio::time::advance(Duration::from_millis(18_001)).await;
    assert!(decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
    // grace-exceeded wins over failed attempts.
    let mut s = Penalties::new(spec.parse().unwrap()).layer(app());
    assert!(session(&mut s, "127.0.0.2", 3, Some(ConnectionErrorKind::LoginGraceTimeExceeded)).await);
    tokio::time::advance(Duration::from_millis(39_000)).await;
    assert!(!decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
    tokio::time::advance(Duration::from_millis(1_001)).await;
    assert!(decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
}

#[tokio::test(start_paused = true)]
async fn authenticated_connections_are_never_penalised() {
    let mut s = Penalties::new("authfail:20s noauth:20s min:15s".parse().unwrap()).layer(app());
    for _ in 0..5 {
        let c = connection("127.0.0.2");
        assert!(decide(&mut s, &c, RequestKind::Connect).await);
        c.count_auth_failure();
        let key = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap().public_key().clone();
        assert!(decide(&mut s, &c, RequestKind::AuthPublicKey { user: "u".into(), key }).await);
        c.set_authenticated("u", Factors::from_iter([Method::PublicKey]), None);
        c.closed(None);
    }
    assert!(decide(&mut s, &connection("127.0.0.2"), RequestKind::Connect).await);
}

#[tokio::test(start_paused = true)]
async fn exempt_sources_are_never_refused() {
    let p: PerSourcePenalties = "authfail:20s min:15s".parse().unwrap();
    let mut s = Penalties::new(p.exempt_list("127.0.0.3/32".parse().unwrap())).layer(app());
    for _ in 0..10 {
        assert!(session(&mut s, "127.0.0.3", 6, None).await);
    }
    assert!(session(&mut s, "127.0.0.2", 1, None).await);
    assert!(!session(&mut s, "127.0.0.2", 0, None).await);
}

#[tokio::test(start_paused = true)]
async fn disabled_penalties_let_everything_through() {
    let mut s = Penalties::new(PerSourcePenalties::disabled().authfail(secs(100))).layer(app());
    for _ in 0..10 {
        assert!(session(&mut s, "127.0.0.2", 6, Some(ConnectionErrorKind::LoginGraceTimeExceeded)).await);
    }
    // Requests are not changed: refusals still come from the inner service.
    let c = connection("127.0.0.2");
    assert!(!decide(&mut s, &c, password()).await);
}

#[tokio::test]
async fn a_refused_connect_is_a_reject_response() {
    let mut s = Penalties::new("authfail:20s min:15s".parse().unwrap()).layer(app());
    assert!(session(&mut s, "192.0.2.1", 1, None).await);
    let response = s.ready().await.unwrap().call(Request::new(connection("192.0.2.1"), RequestKind::Connect)).await.unwrap();
    assert!(matches!(response, Response::Reject));
}

// ---- properties ---------------------------------------------------------------

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000).prop_map(Duration::from_secs),
        (0u64..100_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::from_secs(u64::MAX)),
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![Just(Overflow::DenyAll), Just(Overflow::Permissive)]
}

prop_compose! {
    fn penalties()(
        enabled in any::<bool>(),
        (authfail, noauth, grace, max, min) in (duration(), duration(), duration(), duration(), duration()),
        (s4, s6) in (0..=i32::MAX as u32, 0..=i32::MAX as u32),
        o in overflow(),
        o6 in proptest::option::of(overflow()),
    ) -> PerSourcePenalties {
        let p = PerSourcePenalties::default()
            .authfail(authfail).noauth(noauth).grace_exceeded(grace).max(max).min(min)
            .max_sources4(s4).max_sources6(s6).overflow(o);
        let p = match o6 { Some(o6) => p.overflow6(o6), None => p };
        if enabled { p } else { PerSourcePenalties::disabled() }
    }
}

proptest! {
    /// Any text parses or is refused, never panics.
    #[test]
    fn any_spec_parses_or_errors(s in "\\PC{0,64}", words in proptest::collection::vec("(authfail|noauth|max|min|max-sources4|overflow|crash|no|yes)(:[0-9.smhdwSMHDW-]{0,8})?", 0..6)) {
        let _ = s.parse::<PerSourcePenalties>();
        let _ = s.parse::<ExemptList>();
        let _ = parse_time(&s);
        let joined = words.join(" ");
        if let Ok(p) = joined.parse::<PerSourcePenalties>() {
            prop_assert_eq!(p.to_string().parse::<PerSourcePenalties>().unwrap(), p);
        }
    }

    /// Display writes what FromStr reads back.
    #[test]
    fn display_round_trips(p in penalties()) {
        prop_assert_eq!(p.to_string().parse::<PerSourcePenalties>().unwrap(), p);
    }

    /// An exempt list's Display reads back as the same list.
    #[test]
    fn exempt_list_round_trips(nets in proptest::collection::vec((any::<[u8; 4]>(), 0u8..=32, any::<bool>()), 1..5)) {
        let text: Vec<String> = nets.iter().map(|(a, len, neg)| {
            let net = IpNet::new(IpAddr::from(*a), *len).unwrap().trunc();
            format!("{}{net}", if *neg { "!" } else { "" })
        }).collect();
        let list: ExemptList = text.join(",").parse().unwrap();
        prop_assert_eq!(list.to_string().parse::<ExemptList>().unwrap(), list);
    }
}
