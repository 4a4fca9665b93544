//! Run with: cargo run -p example-production
//!
//! A server set up for the open internet: public-key logins only, the
//! framework's limits tuned and extended, a layer that gives private networks
//! more room, logs at `info` by default, and a graceful stop on SIGTERM.
//! Keys allowed to log in are read from `./authorized_keys` (OpenSSH's
//! format); try it with `cp ~/.ssh/id_ed25519.pub authorized_keys` and
//! `ssh -p 2222 127.0.0.1 uptime`. Certificates signed by a CA in
//! `./trusted_user_ca_keys` log in too, and `./production_host_ed25519_key-cert.pub`,
//! when present, is served as the host certificate (see the book's
//! "Certificates" chapter).

use std::net::IpAddr;
use std::time::Duration;

use ssh_framework::auth::TrustedUserCaKeys;
use ssh_framework::keys::{Certificate, PublicKey};
use ssh_framework::keys::ssh_key::authorized_keys::AuthorizedKeys;
use ssh_framework::limit::{
    ChannelTimeout, Limit, LoginGraceTime, MaxConnections, MaxSessions, MaxSessionsPerUser, Penalties, PerSourcePenalties,
    Startups, UnusedConnectionTimeout,
};
use ssh_framework::tower::filter::FilterLayer;
use ssh_framework::{Auth, BoxError, ChannelIo, Command, ExitStatus, Request, RequestKind, Server};
use tokio::io::AsyncWriteExt;
use tracing_subscriber::EnvFilter;

// ANCHOR: app
/// The keys that may log in, for any user name, and the CAs whose
/// certificates may.
struct App {
    keys: Vec<PublicKey>,
    trusted: TrustedUserCaKeys,
}

#[ssh_framework::server]
impl App {
    #[auth(publickey)]
    async fn key(&self, _user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(self.keys.iter().any(|allowed| allowed.key_data() == key.key_data()))
    }

    /// A certificate from a trusted CA naming the user as a principal; the
    /// framework already checked its signatures, validity, type and critical
    /// options, and enforces its `force-command` and `permit-*` extensions.
    #[auth(certificate)]
    async fn certificate(&self, user: &str, certificate: &Certificate) -> Auth {
        self.trusted.decide(user, certificate)
    }
    // ANCHOR_END: app

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec("uptime")]
    async fn uptime(&self, mut io: ChannelIo) -> ExitStatus {
        let text = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
        let seconds = text.split_whitespace().next().unwrap_or("?");
        match io.stdout.write_all(format!("up {seconds} s\n").as_bytes()).await {
            Ok(()) => ExitStatus::SUCCESS,
            Err(_) => ExitStatus::FAILURE,
        }
    }

    #[exec]
    async fn unknown(&self, command: Command, mut io: ChannelIo) -> ExitStatus {
        let _ = io.stderr.write_all(format!("unknown command `{}`\n", command.program()).as_bytes()).await;
        ExitStatus::code(127)
    }
}

// ANCHOR: private_networks
/// Connections from private networks (10/8, 172.16/12, 192.168/16, loopback)
/// may open 50 sessions each instead of the default 10: the layer runs after
/// the default limits and applies another `MaxSessions` to the connections
/// it picks.
fn private_networks_get_more_sessions() -> FilterLayer<impl Fn(Request) -> Result<Request, BoxError> + Clone> {
    FilterLayer::new(|request: Request| {
        let private = match request.connection().peer_addr().map(|peer| peer.ip()) {
            Some(IpAddr::V4(ip)) => ip.is_private() || ip.is_loopback(),
            Some(IpAddr::V6(ip)) => ip.is_loopback(),
            None => false,
        };
        if matches!(request.kind(), RequestKind::Connect) && private {
            MaxSessions::new(50).apply(request.connection());
        }
        Ok(request)
    })
}
// ANCHOR_END: private_networks

fn authorized_keys(path: &str) -> Result<Vec<PublicKey>, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut keys = Vec::new();
    for entry in AuthorizedKeys::new(&text) {
        keys.push(entry?.public_key().clone());
    }
    Ok(keys)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // ANCHOR: logging
    // `info` unless RUST_LOG says otherwise: every refusal by a limit is logged at info.
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    // ANCHOR_END: logging
    let keys = authorized_keys("authorized_keys")?;
    // ANCHOR: trusted
    let trusted = match TrustedUserCaKeys::read("trusted_user_ca_keys") {
        Ok(trusted) => trusted,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TrustedUserCaKeys::new(),
        Err(e) => return Err(format!("trusted_user_ca_keys: {e}").into()),
    };
    // ANCHOR_END: trusted
    // ANCHOR: limits
    let server = Server::builder()
        .handlers(App { keys, trusted })
        // Tighter than the defaults: logins must finish in 30 s, and one
        // address may hold 10 unauthenticated connections at most.
        .limit(LoginGraceTime::new(Duration::from_secs(30)))
        .limit(Startups::new("100:30:1000".parse()?).per_source(Some(10)))
        // Not installed by default: a cap on one user's sessions, server-wide.
        .limit(MaxSessionsPerUser::new(20))
        // Fewer connections than the default 10,000 for a small machine.
        .limit(MaxConnections::new(2_000))
        // A dead client (a laptop that went to sleep) is found within about 4 minutes.
        .keepalive_interval(Some(Duration::from_secs(60)))
        .keepalive_count_max(3)
        .layer(private_networks_get_more_sessions())
        // ANCHOR_END: limits
        // ANCHOR: penalties
        // OpenSSH's penalties, harsher on password guessing, and never for
        // the monitoring host that probes the port every few seconds.
        .limit(Penalties::new(
            "authfail:30s noauth:1s max:1h".parse::<PerSourcePenalties>()?.exempt_list("192.0.2.10".parse()?),
        ))
        // ANCHOR_END: penalties
        // ANCHOR: timeouts
        // Commands idle for an hour and forwards idle for 10 minutes are
        // closed; a connection left with no channel goes after 5 minutes.
        .limit("session:command=1h direct-tcpip=10m".parse::<ChannelTimeout>()?)
        .limit(UnusedConnectionTimeout::new(Duration::from_secs(300)))
        // ANCHOR_END: timeouts
        .listen("0.0.0.0:2222".parse()?)
        .host_key_file("production_host_ed25519_key");
    // ANCHOR: host_certificate
    let server = if std::path::Path::new("production_host_ed25519_key-cert.pub").exists() {
        server.host_certificate_file("production_host_ed25519_key-cert.pub")
    } else {
        server
    };
    // ANCHOR_END: host_certificate
    let server = server.build().await?;
    tracing::info!(addrs = ?server.local_addrs(), fingerprints = ?server.host_key_fingerprints(), "listening");
    // ANCHOR: run
    // SIGTERM or Ctrl-C: stop accepting, let sessions finish for up to 30 s, then disconnect.
    server.run().await?;
    // ANCHOR_END: run
    Ok(())
}
