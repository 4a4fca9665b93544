//! The options field of an `authorized_keys` line (sshd(8), "AUTHORIZED_KEYS
//! FILE FORMAT"): parsed into [`KeyOptions`], printed back by its `Display`.
//!
//! The grammar is OpenSSH's: comma-separated options, names matched without
//! regard to case, values in double quotes where `\"` stands for a quote and
//! every other byte (a backslash included) stands for itself.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::expiry;
use super::pattern::HostPattern;

/// At most this many `permitopen=` (and, separately, `permitlisten=`) options
/// on one line, as OpenSSH (`SSH_AUTHOPT_PERMIT_MAX`).
pub const MAX_PERMITS: usize = 4096;

/// At most this many distinct `environment=` options on one line, as OpenSSH
/// (`SSH_AUTHOPT_ENV_MAX`).
pub const MAX_ENVIRONMENT: usize = 1024;

/// The options of one `authorized_keys` line, typed.
///
/// Obtained by parsing (from a line, or with [`str::parse`] from the options
/// field alone); `Display` prints an options field that parses back to an
/// equal value. The `allows_*` methods and [`from_allows`](Self::from_allows),
/// [`expired`](Self::expired), [`permits_open`](Self::permits_open) and
/// [`permits_listen`](Self::permits_listen) compute what sshd would allow.
///
/// The permission flags are `Option<bool>`: `Some(true)` for `pty`,
/// `Some(false)` for `no-pty`, `None` when the line says neither (after its
/// last `restrict`: `pty,restrict` leaves no pty, as in OpenSSH, and parses as
/// `restrict`).
///
/// ```
/// use ssh_framework::authorized_keys::KeyOptions;
///
/// let options: KeyOptions = r#"restrict,pty,command="echo \"hi\"""#.parse().unwrap();
/// assert!(options.allows_pty());
/// assert!(!options.allows_port_forwarding());
/// assert_eq!(options.command.as_deref(), Some(r#"echo "hi""#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyOptions {
    /// `from="pattern-list"`: the client addresses this key may log in from.
    pub from: Option<Vec<HostPattern>>,
    /// `command="..."`: the command run whatever the client asked for.
    pub command: Option<String>,
    /// `restrict`: every permission off unless the line turns it back on.
    pub restrict: bool,
    /// `pty` (`Some(true)`) or `no-pty` (`Some(false)`).
    pub pty: Option<bool>,
    /// `port-forwarding` or `no-port-forwarding`.
    pub port_forwarding: Option<bool>,
    /// `agent-forwarding` or `no-agent-forwarding`.
    pub agent_forwarding: Option<bool>,
    /// `x11-forwarding` or `no-x11-forwarding`.
    pub x11_forwarding: Option<bool>,
    /// `user-rc` or `no-user-rc`.
    pub user_rc: Option<bool>,
    /// `permitopen="host:port"`, in line order: the only `ssh -L`
    /// destinations allowed when not empty.
    pub permitopen: Vec<PermitOpen>,
    /// `permitlisten="[host:]port"`, in line order: the only `ssh -R`
    /// listeners allowed when not empty.
    pub permitlisten: Vec<PermitListen>,
    /// `environment="NAME=value"`, in line order, the first of a name winning
    /// (as in OpenSSH). sshd honours these only with `PermitUserEnvironment`;
    /// the caller decides.
    pub environment: Vec<(String, String)>,
    /// `expiry-time="YYYYMMDD[HHMM[SS]][Z]"`, the earliest when given twice.
    ///
    /// A time without `Z` (or `UTC`) is local time in OpenSSH; it is read as
    /// UTC here (the standard library cannot convert local time and the
    /// crate takes no time-zone dependency for this), so write `Z`.
    pub expiry_time: Option<SystemTime>,
    /// `principals="a,b"`: with `cert-authority`, the certificate principals
    /// accepted for this account instead of the account name.
    pub principals: Option<Vec<String>>,
    /// `cert-authority`: the key is a CA trusted to sign user certificates
    /// for this account, not a key to log in with.
    pub cert_authority: bool,
    /// `no-touch-required`: a FIDO key's signature need not assert user
    /// presence.
    pub no_touch_required: bool,
    /// `verify-required`: a FIDO key's signature must assert user
    /// verification (a PIN or biometric).
    pub verify_required: bool,
}

/// The port of a [`PermitOpen`] or [`PermitListen`]: a number or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermitPort {
    /// `*`: any port.
    Any,
    /// One port (1 to 65535).
    Port(u16),
}

impl PermitPort {
    /// Whether `port` is this one.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PermitPort::Any => true,
            PermitPort::Port(p) => p == port,
        }
    }
}

impl fmt::Display for PermitPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermitPort::Any => f.write_str("*"),
            PermitPort::Port(p) => write!(f, "{p}"),
        }
    }
}

/// One `permitopen="host:port"`: an `ssh -L` destination allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermitOpen {
    /// The host as the client must name it (compared exactly, as OpenSSH
    /// does), or `*` for any host. Brackets around an IPv6 address are
    /// removed.
    pub host: String,
    /// The port.
    pub port: PermitPort,
}

impl PermitOpen {
    /// Whether a `direct-tcpip` request to `host`:`port` is this one.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.matches(port) && (self.host == "*" || self.host == host)
    }
}

/// One `permitlisten="[host:]port"`: an `ssh -R` listener allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermitListen {
    /// The listen-address pattern (`*` and `?` wildcards), `None` when only a
    /// port was given (any address, as OpenSSH's `*`).
    pub host: Option<String>,
    /// The port.
    pub port: PermitPort,
}

impl PermitListen {
    /// Whether a `tcpip-forward` request for `host`:`port` is this one (the
    /// host lowercased, then matched against the pattern, as OpenSSH).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.matches(port)
            && match &self.host {
                None => true,
                Some(pattern) => wildmatch::WildMatch::new(pattern).matches(&host.to_ascii_lowercase()),
            }
    }
}

/// Why an options field did not parse: the option and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    option: String,
    reason: &'static str,
}

impl OptionError {
    fn new(option: &str, reason: &'static str) -> Self {
        // Bounded: a hostile line cannot make an error message large.
        let option = option.chars().take(64).collect();
        Self { option, reason }
    }

    /// The option's name as written (at most 64 characters), or the text
    /// where a name was expected.
    pub fn option(&self) -> &str {
        &self.option
    }

    /// Why it was refused, in OpenSSH's words where it has some.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "option `{}`: {}", self.option.escape_debug(), self.reason)
    }
}

impl std::error::Error for OptionError {}

impl KeyOptions {
    /// Whether a pty may be allocated (`pty`, `no-pty`, `restrict`).
    pub fn allows_pty(&self) -> bool {
        self.pty.unwrap_or(!self.restrict)
    }

    /// Whether `ssh -L` and `ssh -R` are allowed at all (`port-forwarding`,
    /// `no-port-forwarding`, `restrict`); see also
    /// [`permits_open`](Self::permits_open).
    pub fn allows_port_forwarding(&self) -> bool {
        self.port_forwarding.unwrap_or(!self.restrict)
    }

    /// Whether agent forwarding is allowed.
    pub fn allows_agent_forwarding(&self) -> bool {
        self.agent_forwarding.unwrap_or(!self.restrict)
    }

    /// Whether X11 forwarding is allowed.
    pub fn allows_x11_forwarding(&self) -> bool {
        self.x11_forwarding.unwrap_or(!self.restrict)
    }

    /// Whether `~/.ssh/rc` may run.
    pub fn allows_user_rc(&self) -> bool {
        self.user_rc.unwrap_or(!self.restrict)
    }

    /// Whether a client at `peer` may use this line (`from=`; true without
    /// one).
    ///
    /// Matches as sshd with `UseDNS no`: each pattern is a CIDR network or
    /// address, or a `*`/`?` wildcard matched against the address's text; a
    /// host name pattern never matches (no name is looked up); a negated
    /// (`!`) pattern that matches refuses, whatever else matches. An
    /// IPv4-mapped IPv6 peer is matched as its IPv4 address.
    pub fn from_allows(&self, peer: IpAddr) -> bool {
        let Some(patterns) = &self.from else {
            return true;
        };
        let peer = peer.to_canonical();
        let text = peer.to_string();
        let mut positive = false;
        for pattern in patterns {
            if pattern.matches(peer, &text) {
                if pattern.is_negated() {
                    return false;
                }
                positive = true;
            }
        }
        positive
    }

    /// Whether `expiry-time=` has passed at `now` (false without one). As in
    /// OpenSSH the line is still valid during the second it names.
    pub fn expired(&self, now: SystemTime) -> bool {
        match self.expiry_time {
            None => false,
            Some(expiry) => now >= expiry + Duration::from_secs(1),
        }
    }

    /// Whether an `ssh -L` to `host`:`port` is allowed: port forwarding on,
    /// and no `permitopen=` or one that matches.
    pub fn permits_open(&self, host: &str, port: u16) -> bool {
        self.allows_port_forwarding()
            && (self.permitopen.is_empty() || self.permitopen.iter().any(|p| p.matches(host, port)))
    }

    /// Whether an `ssh -R` listening on `host`:`port` is allowed: port
    /// forwarding on, and no `permitlisten=` or one that matches.
    pub fn permits_listen(&self, host: &str, port: u16) -> bool {
        self.allows_port_forwarding()
            && (self.permitlisten.is_empty() || self.permitlisten.iter().any(|p| p.matches(host, port)))
    }

    /// Parse an options field (the text before the key, no unquoted blank).
    pub(crate) fn parse(mut rest: &str) -> Result<Self, OptionError> {
        let mut options = KeyOptions::default();
        if rest.is_empty() {
            return Ok(options);
        }
        loop {
            let end = rest.find([',', '=']).unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            let lower = name.to_ascii_lowercase();
            if let Some(after_eq) = after.strip_prefix('=') {
                let (value, after_value) = dequote(name, after_eq)?;
                options.set_value(name, &lower, value)?;
                rest = after_value;
            } else {
                options.set_flag(name, &lower)?;
                rest = after;
            }
            match rest.strip_prefix(',') {
                None if rest.is_empty() => return Ok(options),
                None => return Err(OptionError::new(name, "unknown key option")),
                Some("") => return Err(OptionError::new(name, "unexpected end-of-options")),
                Some(next) => rest = next,
            }
        }
    }

    fn set_flag(&mut self, name: &str, lower: &str) -> Result<(), OptionError> {
        let (negated, base) = match lower.strip_prefix("no-") {
            Some(base) => (true, base),
            None => (false, lower),
        };
        let flag = match base {
            "restrict" if !negated => {
                self.restrict = true;
                // What came before is overridden, as sshd's parser clears
                // every permission at this point.
                self.pty = None;
                self.port_forwarding = None;
                self.agent_forwarding = None;
                self.x11_forwarding = None;
                self.user_rc = None;
                return Ok(());
            }
            "cert-authority" if !negated => {
                self.cert_authority = true;
                return Ok(());
            }
            "touch-required" => {
                self.no_touch_required = negated;
                return Ok(());
            }
            "verify-required" => {
                self.verify_required = !negated;
                return Ok(());
            }
            "pty" => &mut self.pty,
            "port-forwarding" => &mut self.port_forwarding,
            "agent-forwarding" => &mut self.agent_forwarding,
            "x11-forwarding" => &mut self.x11_forwarding,
            "user-rc" => &mut self.user_rc,
            "command" | "principals" | "from" | "expiry-time" | "environment" | "permitopen" | "permitlisten"
            | "tunnel"
                if !negated =>
            {
                return Err(OptionError::new(name, "missing value"));
            }
            _ => return Err(OptionError::new(name, "unknown key option")),
        };
        *flag = Some(!negated);
        Ok(())
    }

    fn set_value(&mut self, name: &str, lower: &str, value: String) -> Result<(), OptionError> {
        match lower {
            "command" => {
                if self.command.is_some() {
                    return Err(OptionError::new(name, "multiple \"command\" clauses"));
                }
                self.command = Some(value);
            }
            "principals" => {
                if self.principals.is_some() {
                    return Err(OptionError::new(name, "multiple \"principals\" clauses"));
                }
                self.principals = Some(value.split(',').map(str::to_owned).collect());
            }
            "from" => {
                if self.from.is_some() {
                    return Err(OptionError::new(name, "multiple \"from\" clauses"));
                }
                let patterns = value
                    .split(',')
                    .map(HostPattern::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|reason| OptionError::new(name, reason))?;
                self.from = Some(patterns);
            }
            "expiry-time" => {
                let at = expiry::parse(&value).ok_or(OptionError::new(name, "invalid expires time"))?;
                self.expiry_time = Some(match self.expiry_time {
                    Some(earlier) if earlier < at => earlier,
                    _ => at,
                });
            }
            "environment" => {
                let (var, val) = value
                    .split_once('=')
                    .filter(|(var, _)| !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                    .ok_or(OptionError::new(name, "invalid environment string"))?;
                if !self.environment.iter().any(|(existing, _)| existing == var) {
                    if self.environment.len() >= MAX_ENVIRONMENT {
                        return Err(OptionError::new(name, "too many environment strings"));
                    }
                    self.environment.push((var.to_owned(), val.to_owned()));
                }
            }
            "permitopen" => {
                if self.permitopen.len() >= MAX_PERMITS {
                    return Err(OptionError::new(name, "too many permission directives"));
                }
                let (host, port) = parse_permit(&value).map_err(|reason| OptionError::new(name, reason))?;
                self.permitopen.push(PermitOpen { host, port });
            }
            "permitlisten" => {
                if self.permitlisten.len() >= MAX_PERMITS {
                    return Err(OptionError::new(name, "too many permission directives"));
                }
                let permit = if value.contains(':') {
                    let (host, port) = parse_permit(&value).map_err(|reason| OptionError::new(name, reason))?;
                    PermitListen { host: Some(host), port }
                } else {
                    PermitListen {
                        host: None,
                        port: parse_port(&value).map_err(|reason| OptionError::new(name, reason))?,
                    }
                };
                self.permitlisten.push(permit);
            }
            "tunnel" => {
                return Err(OptionError::new(name, "not supported (no tun forwarding)"));
            }
            _ => return Err(OptionError::new(name, "unknown key option")),
        }
        Ok(())
    }
}

/// Read a quoted value at the start of `s`: the value and what follows the
/// closing quote.
fn dequote<'a>(name: &str, s: &'a str) -> Result<(String, &'a str), OptionError> {
    let Some(body) = s.strip_prefix('"') else {
        return Err(OptionError::new(name, "missing start quote"));
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' if body[i + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            c => value.push(c),
        }
    }
    Err(OptionError::new(name, "missing end quote"))
}

/// `host:port`, `host/port` or `[v6]:port`, as OpenSSH's `hpdelim2`.
fn parse_permit(value: &str) -> Result<(String, PermitPort), &'static str> {
    let (host, port) = if let Some(bracketed) = value.strip_prefix('[') {
        let close = bracketed.find(']').ok_or("invalid permission hostname")?;
        let after = &bracketed[close + 1..];
        let port = after.strip_prefix([':', '/']).ok_or(if after.is_empty() {
            "invalid permission port"
        } else {
            "invalid permission hostname"
        })?;
        (&bracketed[..close], port)
    } else {
        let at = value.find([':', '/']).ok_or("invalid permission port")?;
        (&value[..at], &value[at + 1..])
    };
    // NI_MAXHOST
    if host.len() >= 1025 {
        return Err("invalid permission hostname");
    }
    Ok((host.to_owned(), parse_port(port)?))
}

/// `*` or 1 to 65535. OpenSSH also takes service names from
/// `/etc/services`; those are refused here.
fn parse_port(port: &str) -> Result<PermitPort, &'static str> {
    if port == "*" {
        return Ok(PermitPort::Any);
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(PermitPort::Port(p)),
        _ => Err("invalid permission port"),
    }
}

impl FromStr for KeyOptions {
    type Err = OptionError;

    /// Parse an options field alone (`restrict,pty,command="..."`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyOptions::parse(s)
    }
}

/// Write `"value"` with `"` escaped. A value ending in a backslash cannot be
/// written so that OpenSSH reads it back (its `\"` would be read as a quote);
/// parsing never produces one.
fn quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    f.write_str(&value.replace('"', "\\\""))?;
    f.write_str("\"")
}

fn host_for_permit(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

impl fmt::Display for KeyOptions {
    /// The options field in canonical order (`restrict` first, so the flags
    /// after it keep their meaning); empty without options.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut item = |f: &mut fmt::Formatter<'_>, text: &str| -> fmt::Result {
            f.write_str(sep)?;
            sep = ",";
            f.write_str(text)
        };
        if self.restrict {
            item(f, "restrict")?;
        }
        if self.cert_authority {
            item(f, "cert-authority")?;
        }
        for (name, flag) in [
            ("pty", self.pty),
            ("port-forwarding", self.port_forwarding),
            ("agent-forwarding", self.agent_forwarding),
            ("x11-forwarding", self.x11_forwarding),
            ("user-rc", self.user_rc),
        ] {
            match flag {
                Some(true) => item(f, name)?,
                Some(false) => item(f, &format!("no-{name}"))?,
                None => {}
            }
        }
        if self.no_touch_required {
            item(f, "no-touch-required")?;
        }
        if self.verify_required {
            item(f, "verify-required")?;
        }
        if let Some(command) = &self.command {
            item(f, "command=")?;
            quoted(f, command)?;
        }
        if let Some(principals) = &self.principals {
            item(f, "principals=")?;
            quoted(f, &principals.join(","))?;
        }
        if let Some(from) = &self.from {
            item(f, "from=")?;
            let list: Vec<String> = from.iter().map(ToString::to_string).collect();
            quoted(f, &list.join(","))?;
        }
        if let Some(expiry) = self.expiry_time {
            item(f, "expiry-time=")?;
            quoted(f, &expiry::format(expiry))?;
        }
        for (var, val) in &self.environment {
            item(f, "environment=")?;
            quoted(f, &format!("{var}={val}"))?;
        }
        for permit in &self.permitopen {
            item(f, "permitopen=")?;
            quoted(f, &format!("{}:{}", host_for_permit(&permit.host), permit.port))?;
        }
        for permit in &self.permitlisten {
            item(f, "permitlisten=")?;
            match &permit.host {
                Some(host) => quoted(f, &format!("{}:{}", host_for_permit(host), permit.port))?,
                None => quoted(f, &permit.port.to_string())?,
            }
        }
        Ok(())
    }
}
