//! The command line: sshd_config's most used options as flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ssh_framework::Method;
use ssh_framework::limit::{ChannelTimeout, MaxStartups, UnusedConnectionTimeout};
use ssh_framework::forward::PermitOpen;
use ssh_framework::limit::{ExemptList, PerSourcePenalties};

/// mini-sshd's command line.
///
/// Per-user options take `NAME:VALUE` and may be repeated; a user is anyone
/// named by at least one of `--user`, `--authorized-keys`, `--kbd-interactive`
/// or `--require`. With none of the first three, user `demo` gets a random
/// password, printed at startup.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "mini-sshd", version, about = "A small OpenSSH-compatible SSH server built on ssh-framework")]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2222")]
    pub listen: SocketAddr,

    /// Host key file; an ed25519 key is generated there (mode 0600) when missing, and reused after.
    #[arg(long, value_name = "PATH", default_value = "./mini-sshd_host_ed25519_key")]
    pub host_key: PathBuf,

    /// An OpenSSH host certificate for the host key, served to clients that trust its CA
    /// (`@cert-authority` in known_hosts), as sshd's HostCertificate (repeatable; never
    /// loaded unless named). Make one with `ssh-keygen -s CA -h -I ID -n HOSTNAMES KEY.pub`.
    #[arg(long = "host-certificate", value_name = "PATH")]
    pub host_certificates: Vec<PathBuf>,

    /// A user who may log in with a password (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<UserSecret>,

    /// An OpenSSH authorized_keys file for a user (repeatable; several files per user add up).
    /// Keys match by key data; the first line of the key whose `from=` allows the client and
    /// which has not expired (`expiry-time=`) wins, and its options restrict the login as
    /// sshd's do (`command=`, `restrict`, `no-pty`, `pty`, `no-port-forwarding`,
    /// `permitopen=`, `permitlisten=`, ...), within what the other flags allow. Lines with an
    /// option mini-sshd cannot honour are skipped with a warning: an unknown one,
    /// `no-touch-required` and `verify-required` (no security-key flags reach it), `environment=`
    /// without --permit-user-environment, a `permitlisten=` host pattern other than `*`.
    #[arg(long = "authorized-keys", value_name = "NAME:PATH")]
    pub authorized_keys: Vec<UserFile>,

    /// CA keys trusted to sign user certificates, as sshd's `TrustedUserCAKeys`:
    /// a file of public keys. A certificate login is allowed for any user name the
    /// certificate names as a principal (or that --authorized-principals lists).
    #[arg(long, value_name = "PATH")]
    pub trusted_user_ca_keys: Option<PathBuf>,

    /// The principals a user's certificate must name instead of the user's own
    /// name, as sshd's `AuthorizedPrincipalsFile`: one per line (repeatable).
    #[arg(long = "authorized-principals", value_name = "NAME:PATH", requires = "trusted_user_ca_keys")]
    pub authorized_principals: Vec<UserFile>,

    /// A keyboard-interactive code for a user, asked as "Verification code: " (repeatable).
    #[arg(long = "kbd-interactive", value_name = "NAME:CODE")]
    pub kbd_interactive: Vec<UserSecret>,

    /// Methods a user must pass in this order, like OpenSSH's AuthenticationMethods
    /// (repeatable; methods: none, password, publickey, keyboard-interactive).
    #[arg(long = "require", value_name = "NAME:M1,M2[,...]")]
    pub require: Vec<UserChain>,

    /// Working directory (and HOME) for shells and commands, and the jail SFTP
    /// and SCP serve [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Serve SFTP and SCP read-only.
    #[arg(long)]
    pub sftp_read_only: bool,

    /// The shell that runs sessions and `-c COMMAND` for exec requests.
    #[arg(long, value_name = "PATH", default_value = "/bin/sh")]
    pub shell: PathBuf,

    /// Glob (`*`, `?`) of environment variable names clients may set (repeatable; replaces the default).
    #[arg(long = "accept-env", value_name = "PATTERN", default_values = ["LANG", "LC_*"])]
    pub accept_env: Vec<String>,

    /// Failed authentication attempts before disconnect.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub max_auth_tries: u32,

    /// Seconds from connect to successful authentication.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub login_grace_time: u64,

    /// Seconds without anything from the client before a keepalive is sent, as sshd's
    /// `ClientAliveInterval` (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub client_alive_interval: u64,

    /// Unanswered keepalives in a row before the client is disconnected, as sshd's
    /// `ClientAliveCountMax` (0: never disconnect).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub client_alive_count_max: usize,

    /// Session channels open at once on one connection.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_sessions: usize,

    /// Disconnect a logged-in client that has had no open channel for this long, as sshd's
    /// `UnusedConnectionTimeout` (seconds, or sshd's time format: 30s, 5m, 1h30m) [default: never].
    #[arg(long, value_name = "SECS")]
    pub unused_connection_timeout: Option<UnusedConnectionTimeout>,

    /// Close channels of TYPE that carried no data for this long, as sshd's `ChannelTimeout`
    /// (repeatable; TYPE is sshd's channel type, wildcards allowed, e.g. session, session:shell,
    /// direct-tcpip, forwarded-*, global; SECS in seconds or sshd's time format; the first
    /// matching entry wins).
    #[arg(long, value_name = "TYPE=SECS")]
    pub channel_timeout: Vec<ChannelTimeout>,

    /// Unauthenticated connections, as sshd's `MaxStartups`: from START on, new ones are
    /// dropped with a probability rising from RATE% to 100% at FULL; a single N means N:100:N.
    #[arg(long, value_name = "START:RATE:FULL", default_value_t = MaxStartups::default())]
    pub max_startups: MaxStartups,

    /// Unauthenticated connections one source address may hold at once, as sshd's
    /// `PerSourceMaxStartups` [default: no limit].
    #[arg(long, value_name = "N")]
    pub per_source_max_startups: Option<usize>,

    /// Connections of any kind open at once on the whole server; past it a new
    /// one is closed before the version exchange.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Channels of every kind (sessions, forwards, X11, agent) open at once on
    /// one connection.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_channels: usize,

    /// Remote-forward listeners (`ssh -R`) one connection may hold.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_listeners: usize,

    /// Per-source penalties, as sshd's `PerSourcePenalties`: its value as one
    /// argument (`'authfail:5s noauth:1s max:10m'`; keywords not given keep
    /// sshd's defaults), or `no`. A source whose connections end without
    /// authenticating accrues penalty time and is refused once more than `min`
    /// is outstanding.
    #[arg(long, value_name = "SPEC", default_value_t = PerSourcePenalties::default())]
    pub per_source_penalties: PerSourcePenalties,

    /// Sources never penalised nor refused by --per-source-penalties, as sshd's
    /// `PerSourcePenaltyExemptList`: comma-separated ADDRESS or ADDRESS/MASKLEN
    /// entries (`!` negates one), or `none`.
    #[arg(long, value_name = "LIST", default_value_t = ExemptList::new())]
    pub per_source_penalty_exempt_list: ExemptList,

    /// Milliseconds before a wrong password or code is answered.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub rejection_delay_ms: u64,

    /// Allow TCP forwarding: `ssh -L` (direct-tcpip channels, to any destination
    /// unless --permit-open limits them) and `ssh -R` (listeners on loopback, on
    /// ports 1024 and up, at most --max-listeners per connection; clients may cancel them).
    /// Off, both are refused, like sshd's `AllowTcpForwarding no`.
    #[arg(long)]
    pub allow_tcp_forwarding: bool,

    /// A destination `ssh -L` may reach, like sshd's `PermitOpen` (repeatable;
    /// `*` matches any host or port, IPv6 in brackets: `[::1]:22`). Hosts compare
    /// as the client sent them, without resolving; others are refused as
    /// administratively prohibited [default: any destination].
    #[arg(long = "permit-open", value_name = "HOST:PORT", value_parser = permit_open_entry, requires = "allow_tcp_forwarding")]
    pub permit_open: Vec<String>,

    /// Allow agent forwarding (`ssh -A`): shells and commands get `SSH_AUTH_SOCK`,
    /// a socket in a fresh 0700 directory under the temp dir that reaches the
    /// client's agent while the session runs.
    #[arg(long)]
    pub allow_agent_forwarding: bool,

    /// Allow X11 forwarding (`ssh -X`, `ssh -Y`): shells and commands get
    /// `DISPLAY=localhost:N.SCREEN`, a display on 127.0.0.1 port 6000+N (N from
    /// 10 up) whose connections go to the client's X server; with `xauth`
    /// installed the client's cookie is added to `ROOT/.Xauthority`, as sshd does.
    #[arg(long)]
    pub allow_x11_forwarding: bool,

    /// A file of revoked public keys (one OpenSSH public key or certificate a line), refused
    /// whatever authorized_keys says, as sshd's `RevokedKeys`; read once at startup. OpenSSH
    /// KRL files are not supported (a startup error).
    #[arg(long, value_name = "PATH")]
    pub revoked_keys: Option<PathBuf>,

    /// Honour `environment="NAME=value"` in authorized_keys lines, setting the variables in the
    /// login's sessions, as sshd's `PermitUserEnvironment yes`. Off, such lines are skipped.
    #[arg(long)]
    pub permit_user_environment: bool,
}

/// Checks one `--permit-open` entry the way [`PermitOpen`] will read it.
fn permit_open_entry(s: &str) -> Result<String, String> {
    PermitOpen::none().allow(s).map(|_| s.to_owned()).map_err(|e| e.to_string())
}

/// Splits `NAME:VALUE` at the first colon.
fn split_user(s: &str, what: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((user, value)) if !user.is_empty() => Ok((user.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME:{what}, got `{s}`")),
    }
}

/// `NAME:SECRET`: a password or keyboard-interactive code. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct UserSecret {
    /// The user name.
    pub user: String,
    /// The password or code.
    pub secret: String,
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSecret").field("user", &self.user).field("secret", &"***").finish()
    }
}

impl FromStr for UserSecret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user, secret) = split_user(s, "SECRET")?;
        if secret.is_empty() {
            return Err(format!("the secret of `{user}` is empty"));
        }
        Ok(UserSecret { user, secret })
    }
}

/// `NAME:PATH`: a file that belongs to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFile {
    /// The user name.
    pub user: String,
    /// The file.
    pub path: PathBuf,
}

impl FromStr for UserFile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user, path) = split_user(s, "PATH")?;
        if path.is_empty() {
            return Err(format!("the path of `{user}` is empty"));
        }
        Ok(UserFile { user, path: path.into() })
    }
}

/// `NAME:M1,M2,...`: the methods a user must pass, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChain {
    /// The user name.
    pub user: String,
    /// The methods, in the order they must pass; never empty, no method twice.
    pub methods: Vec<Method>,
}

impl FromStr for UserChain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user, list) = split_user(s, "M1,M2")?;
        let mut methods = Vec::new();
        for name in list.split(',') {
            let method: Method = name.trim().parse().map_err(|e| format!("{e}"))?;
            if methods.contains(&method) {
                return Err(format!("`{method}` is listed twice for `{user}`"));
            }
            // Clients try `none` only as their first request, never after a partial success.
            if method == Method::None && !methods.is_empty() {
                return Err(format!("`none` can only come first (in the chain of `{user}`)"));
            }
            methods.push(method);
        }
        Ok(UserChain { user, methods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_match_openssh() {
        let args = Args::parse_from(["mini-sshd"]);
        assert_eq!(args.listen, "127.0.0.1:2222".parse().unwrap());
        assert_eq!(args.accept_env, ["LANG", "LC_*"]);
        assert_eq!((args.max_auth_tries, args.login_grace_time, args.max_sessions), (6, 120, 10));
        assert_eq!(args.rejection_delay_ms, 1000);
        assert!(!args.allow_tcp_forwarding && !args.allow_agent_forwarding && !args.allow_x11_forwarding);
        assert!(args.permit_open.is_empty());
        assert_eq!(args.per_source_penalties, PerSourcePenalties::default());
        assert!(args.per_source_penalty_exempt_list.is_empty());
        assert!(args.unused_connection_timeout.is_none() && args.channel_timeout.is_empty());
    }

    #[test]
    fn per_source_penalties_take_openssh_values() {
        let args = Args::parse_from([
            "mini-sshd",
            "--per-source-penalties",
            "authfail:5s min:10s max:30s",
            "--per-source-penalty-exempt-list",
            "127.0.0.3/32,10.0.0.0/8",
        ]);
        assert_eq!(
            args.per_source_penalties,
            PerSourcePenalties::default().min(std::time::Duration::from_secs(10)).max(std::time::Duration::from_secs(30))
        );
        assert_eq!(args.per_source_penalty_exempt_list.to_string(), "127.0.0.3/32,10.0.0.0/8");
        assert!(!Args::parse_from(["mini-sshd", "--per-source-penalties=no"]).per_source_penalties.is_enabled());
        let err = Args::try_parse_from(["mini-sshd", "--per-source-penalties", "crash:2m"]).unwrap_err().to_string();
        assert!(err.contains("crash:2m") && err.contains("not supported"), "{err}");
    }

    #[test]
    fn timeouts_take_seconds_or_sshd_time_format() {
        let args = Args::parse_from([
            "mini-sshd",
            "--unused-connection-timeout",
            "1m30s",
            "--channel-timeout",
            "session=2",
            "--channel-timeout",
            "direct-tcpip=5m",
        ]);
        assert_eq!(args.unused_connection_timeout.unwrap().time().as_secs(), 90);
        let types: Vec<String> = args.channel_timeout.iter().map(ToString::to_string).collect();
        assert_eq!(types, ["session=2s", "direct-tcpip=5m"]);
        assert!(Args::try_parse_from(["mini-sshd", "--channel-timeout", "session"]).is_err());
        assert!(Args::try_parse_from(["mini-sshd", "--unused-connection-timeout", "soon"]).is_err());
    }

    #[test]
    fn permit_open_entries_parse_and_need_tcp_forwarding() {
        let args = Args::parse_from(["mini-sshd", "--allow-tcp-forwarding", "--permit-open", "localhost:80", "--permit-open", "[::1]:*"]);
        assert_eq!(args.permit_open, ["localhost:80", "[::1]:*"]);
        assert!(Args::try_parse_from(["mini-sshd", "--allow-tcp-forwarding", "--permit-open", "localhost"]).is_err());
        assert!(Args::try_parse_from(["mini-sshd", "--permit-open", "localhost:80"]).is_err());
    }

    #[test]
    fn per_user_options_split_at_the_first_colon() {
        let args = Args::parse_from(["mini-sshd", "--user", "alice:pa:ss", "--require", "alice:password,keyboard-interactive"]);
        assert_eq!(args.users, [UserSecret { user: "alice".into(), secret: "pa:ss".into() }]);
        assert_eq!(args.require[0].methods, [Method::Password, Method::KeyboardInteractive]);
        assert!(!format!("{:?}", args.users).contains("pa:ss"));
    }

    #[test]
    fn chains_refuse_repeats_and_late_none() {
        assert!("a:password,password".parse::<UserChain>().is_err());
        assert!("a:password,none".parse::<UserChain>().is_err());
        assert!("a:hostbased".parse::<UserChain>().is_err());
        assert!("a:none,password".parse::<UserChain>().is_ok());
        assert!(":password".parse::<UserChain>().is_err());
    }
}
