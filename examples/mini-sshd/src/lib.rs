//! mini-sshd: a small SSH server that OpenSSH's `ssh` treats like sshd, built
//! only on ssh-framework's public API.
//!
//! It puts every kind of handler to work:
//!
//! | what | how |
//! |---|---|
//! | password, publickey, keyboard-interactive, none | `--user`, `--authorized-keys` (OpenSSH files), `--kbd-interactive`, `--require NAME:none` |
//! | multi-factor chains | `--require NAME:M1,M2`: each method but the last answers `Auth::Partial(next)`, checked against `Factors` |
//! | per-user method lists | `#[allowed_auths]`: the first method of the chain, or the methods the user has |
//! | shell and exec | the user's shell (`-sh`, a login shell) or `SHELL -c COMMAND`, in `--root`, with a fresh environment |
//! | pipes | without a pty stdin, stdout and stderr stay apart; stdin closes at the client's EOF |
//! | pseudo-terminal | `#[pty]` allows it; TERM, size and modes from the request, `window-change` resizes it |
//! | env | `#[env]` accepts names matching `--accept-env` globs (default `LANG`, `LC_*`) |
//! | signals | `#[signal]` allows them; the child's process group gets them (every child leads a session of its own, as under sshd), and its death by one is reported as `exit-signal` |
//! | TCP forwarding | `--allow-tcp-forwarding`: `#[channel(direct_tcpip)]` answers `ssh -L` within a `PermitOpen` list (`--permit-open`), `#[tcpip_forward]` allows `ssh -R` within the framework's limits |
//! | agent forwarding | `--allow-agent-forwarding`: `#[agent]` allows `ssh -A`; children get `SSH_AUTH_SOCK`, an `AgentListener` made with the `Client` extractor |
//! | X11 forwarding | `--allow-x11-forwarding`: `#[x11]` allows `ssh -X`; children get `DISPLAY`, a TCP display on every loopback address whose connections `Client::open_x11` carries to the client |
//!
//! [`build`] makes the server and its startup line; the `mini-sshd` binary
//! prints that line and serves until Ctrl-C or SIGTERM. The same works
//! in-process, as tests do:
//!
//! ```no_run
//! use clap::Parser;
//! use example_mini_sshd::{Args, build};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let args = Args::parse_from(["mini-sshd", "--listen", "127.0.0.1:0", "--user", "alice:secret"]);
//! let (server, line) = build(args).await?;
//! println!("{line}"); // mini-sshd listening on 127.0.0.1:PORT (host key SHA256:...)
//! tokio::spawn(server.run());
//! # Ok(())
//! # }
//! ```

mod accounts;
pub mod args;
mod forwarding;
mod glob;
mod handlers;
mod process;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use rand::RngExt;
use ssh_framework::limit::ChannelTimeout;
use ssh_framework::auth::TrustedUserCaKeys;
use ssh_framework::{Server, ServerBuilder};
use ssh_framework::forward::PermitOpen;
use ssh_framework::limit::{MaxConnections, Penalties};
use ssh_framework::sftp::FsBackend;

pub use crate::args::Args;
use crate::accounts::Accounts;
use crate::forwarding::ForwardingPolicy;
use crate::handlers::{MiniSshd, SessionConfig};

/// The error of [`build`]: a bad option, an unreadable file, or a port already in use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `PATH` for sessions when the server itself has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Builds and binds the server described by `args`, and returns it with the
/// line to print at startup: where it listens, the host key fingerprint, and,
/// when no credentials were given, the `ssh` command and random password of
/// user `demo`.
pub async fn build(args: Args) -> Result<(Server, String), BoxError> {
    let demo_password = (args.users.is_empty() && args.authorized_keys.is_empty() && args.kbd_interactive.is_empty())
        .then(random_password);
    let accounts = Accounts::from_args(&args, demo_password.as_deref())?;

    let root = match &args.root {
        Some(root) => root.clone(),
        None => std::env::current_dir()?,
    };
    let root = root.canonicalize().map_err(|e| format!("--root {}: {e}", root.display()))?;
    if !root.is_dir() {
        return Err(format!("--root {}: not a directory", root.display()).into());
    }
    tracing::info!(users = ?accounts.names(), root = %root.display(), shell = %args.shell.display(), "configured");
    let files = FsBackend::open(&root).map_err(|e| format!("--root {}: {e}", root.display()))?.read_only(args.sftp_read_only);
    let sessions = SessionConfig {
        root,
        shell: args.shell.clone(),
        accept_env: args.accept_env.clone(),
        path: std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()),
    };
    // Like sshd's PermitOpen: no list means any destination.
    let permit_open = if args.permit_open.is_empty() {
        PermitOpen::any()
    } else {
        args.permit_open.iter().try_fold(PermitOpen::none(), |policy, entry| policy.allow(entry))?
    };
    let forwarding = ForwardingPolicy {
        tcp: args.allow_tcp_forwarding,
        permit_open,
        agent: args.allow_agent_forwarding,
        x11: args.allow_x11_forwarding,
    };
    tracing::info!(?forwarding, "forwarding");
    let certificates = match &args.trusted_user_ca_keys {
        Some(path) => {
            let mut trusted = TrustedUserCaKeys::read(path).map_err(|e| format!("--trusted-user-ca-keys {}: {e}", path.display()))?;
            for entry in &args.authorized_principals {
                trusted = trusted
                    .principals_file(&entry.user, &entry.path)
                    .map_err(|e| format!("--authorized-principals {}:{}: {e}", entry.user, entry.path.display()))?;
            }
            Some(trusted)
        }
        None => None,
    };
    tracing::info!(penalties = %args.per_source_penalties, exempt = %args.per_source_penalty_exempt_list, "per-source penalties");

    let server = Server::builder()
        .handlers(MiniSshd { accounts, sessions, files, forwarding, certificates })
        .listen(args.listen)
        .host_key_file(&args.host_key)
        .server_id(concat!("mini-sshd_", env!("CARGO_PKG_VERSION")))
        .max_auth_tries(args.max_auth_tries)
        .login_grace_time(Duration::from_secs(args.login_grace_time))
        .max_sessions(args.max_sessions)
        .max_startups(args.max_startups)
        .per_source_max_startups(args.per_source_max_startups)
        .limit(MaxConnections::new(args.max_connections))
        .max_channels(args.max_channels)
        .max_listeners(args.max_listeners)
        .keepalive_interval((args.client_alive_interval > 0).then(|| Duration::from_secs(args.client_alive_interval)))
        .keepalive_count_max(args.client_alive_count_max)
        .rejection_delay(Duration::from_millis(args.rejection_delay_ms))
        // On by default, as in sshd.
        .limit(Penalties::new(args.per_source_penalties.clone().exempt_list(args.per_source_penalty_exempt_list.clone())));
    let server = args.host_certificates.iter().fold(server, |server, path| server.host_certificate_file(path));
    let server = with_timeouts(server, &args).build().await?;

    let addr = server.local_addrs().first().copied().ok_or("the server has no listening address")?;
    let fingerprints = server.host_key_fingerprints().join(", ");
    let mut line = format!("mini-sshd listening on {addr} (host key {fingerprints})");
    if let Some(password) = demo_password {
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        line.push_str(&format!("; try: ssh -p {} demo@{host} (password: {password})", addr.port()));
    }
    Ok((server, line))
}

/// Adds `--unused-connection-timeout` and `--channel-timeout` (all entries, in order) as limits.
fn with_timeouts(mut builder: ServerBuilder, args: &Args) -> ServerBuilder {
    if let Some(timeout) = args.unused_connection_timeout {
        builder = builder.limit(timeout);
    }
    if !args.channel_timeout.is_empty() {
        let all = args.channel_timeout.iter().flat_map(ChannelTimeout::entries);
        builder = builder.limit(all.fold(ChannelTimeout::new(), |timeout, (pattern, interval)| timeout.channel(pattern, interval)));
    }
    builder
}

/// 16 alphanumeric characters from the thread's cryptographic generator (about 95 bits).
fn random_password() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(16).map(char::from).collect()
}
