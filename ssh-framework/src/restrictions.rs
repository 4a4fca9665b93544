//! [`Restrictions`]: what a login may do once authenticated, as an
//! `authorized_keys` line's options or a certificate's critical options and
//! extensions say, enforced by the framework on every later request.
//!
//! An authentication handler (or the framework, for a certificate) attaches
//! them to the connection as an extension
//! ([`Connection::insert_extension`](crate::Connection::insert_extension)); a
//! rejected attempt's restrictions are rolled back with its other extensions.
//! Before any layer or handler sees a later request, the framework refuses
//! what they forbid (a pty, port forwarding, agent or X11 forwarding, a
//! destination or listen port not permitted) and replaces a shell, command or
//! subsystem with the forced command, handing the client's original to the
//! handler as [`OriginalCommand`].

use std::fmt;
use std::sync::Arc;

use crate::channel::Command;
use crate::forward::PermitOpen;
use crate::keys::Certificate;
use crate::request::{Request, RequestKind};

/// What a login may do; nothing is restricted by default.
///
/// Build one from an `authorized_keys` line's options or from a certificate
/// ([`Restrictions::from_certificate`]); combine two with
/// [`Restrictions::and`]. Cloning is cheap.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Restrictions(Arc<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    force_command: Option<String>,
    pty: bool,
    port_forwarding: bool,
    agent_forwarding: bool,
    x11_forwarding: bool,
    user_rc: bool,
    permit_open: Option<PermitOpen>,
    permit_listen: Option<PermitOpen>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            force_command: None,
            pty: true,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            user_rc: true,
            permit_open: None,
            permit_listen: None,
        }
    }
}

impl fmt::Debug for Restrictions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The client's own command when a forced command replaced it, for the
/// handler that runs the forced one (OpenSSH's `SSH_ORIGINAL_COMMAND`): the
/// command of an `exec`, the name of a `subsystem`, `None` for a `shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalCommand(pub Option<String>);

/// A certificate the framework will not honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedCertificate(String);

impl fmt::Display for UnsupportedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnsupportedCertificate {}

impl Restrictions {
    /// Nothing restricted.
    pub fn new() -> Self {
        Restrictions::default()
    }

    /// OpenSSH's `restrict`: no pty, no port, agent or X11 forwarding, no
    /// `~/.ssh/rc`.
    pub fn restrict() -> Self {
        Restrictions(Arc::new(Inner {
            pty: false,
            port_forwarding: false,
            agent_forwarding: false,
            x11_forwarding: false,
            user_rc: false,
            ..Inner::default()
        }))
    }

    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.0));
        self
    }

    /// Runs `command` instead of any shell, command or subsystem the client asks for.
    #[must_use]
    pub fn force_command(self, command: impl Into<String>) -> Self {
        let command = command.into();
        self.with(|r| r.force_command = Some(command))
    }

    /// Whether a pty may be allocated (`pty`, `no-pty`; a certificate's `permit-pty`).
    #[must_use]
    pub fn pty(self, allowed: bool) -> Self {
        self.with(|r| r.pty = allowed)
    }

    /// Whether `ssh -L` and `ssh -R` are allowed (`port-forwarding`, `no-port-forwarding`).
    #[must_use]
    pub fn port_forwarding(self, allowed: bool) -> Self {
        self.with(|r| r.port_forwarding = allowed)
    }

    /// Whether agent forwarding is allowed (`agent-forwarding`, `no-agent-forwarding`).
    #[must_use]
    pub fn agent_forwarding(self, allowed: bool) -> Self {
        self.with(|r| r.agent_forwarding = allowed)
    }

    /// Whether X11 forwarding is allowed (`X11-forwarding`, `no-X11-forwarding`).
    #[must_use]
    pub fn x11_forwarding(self, allowed: bool) -> Self {
        self.with(|r| r.x11_forwarding = allowed)
    }

    /// Whether `~/.ssh/rc` may run (`user-rc`, `no-user-rc`); the framework runs
    /// no rc file, so this is for servers that do.
    #[must_use]
    pub fn user_rc(self, allowed: bool) -> Self {
        self.with(|r| r.user_rc = allowed)
    }

    /// The only `ssh -L` destinations allowed (`permitopen="host:port"`).
    #[must_use]
    pub fn permit_open(self, destinations: PermitOpen) -> Self {
        self.with(|r| r.permit_open = Some(destinations))
    }

    /// The only `ssh -R` listen addresses allowed (`permitlisten="[host:]port"`,
    /// written here as `host:port`, `*` for either).
    #[must_use]
    pub fn permit_listen(self, listens: PermitOpen) -> Self {
        self.with(|r| r.permit_listen = Some(listens))
    }

    /// The forced command, if any.
    pub fn forced_command(&self) -> Option<&str> {
        self.0.force_command.as_deref()
    }

    /// Whether a pty may be allocated.
    pub fn allows_pty(&self) -> bool {
        self.0.pty
    }

    /// Whether port forwarding is allowed.
    pub fn allows_port_forwarding(&self) -> bool {
        self.0.port_forwarding
    }

    /// Whether agent forwarding is allowed.
    pub fn allows_agent_forwarding(&self) -> bool {
        self.0.agent_forwarding
    }

    /// Whether X11 forwarding is allowed.
    pub fn allows_x11_forwarding(&self) -> bool {
        self.0.x11_forwarding
    }

    /// Whether `~/.ssh/rc` may run.
    pub fn allows_user_rc(&self) -> bool {
        self.0.user_rc
    }

    /// What both allow, as sshd combines a certificate's restrictions with
    /// its `authorized_keys` line's; `None` when both force a command and the
    /// commands differ (sshd then refuses the login).
    pub fn and(&self, other: &Restrictions) -> Option<Restrictions> {
        let (a, b) = (&*self.0, &*other.0);
        let force_command = match (&a.force_command, &b.force_command) {
            (Some(x), Some(y)) if x != y => return None,
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        let both = |x: &Option<PermitOpen>, y: &Option<PermitOpen>| match (x, y) {
            (Some(x), Some(y)) if x == y => Some(x.clone()),
            // Two different lists: their overlap is not computed entry by entry; allow nothing.
            (Some(_), Some(_)) => Some(PermitOpen::none()),
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        Some(Restrictions(Arc::new(Inner {
            force_command,
            pty: a.pty && b.pty,
            port_forwarding: a.port_forwarding && b.port_forwarding,
            agent_forwarding: a.agent_forwarding && b.agent_forwarding,
            x11_forwarding: a.x11_forwarding && b.x11_forwarding,
            user_rc: a.user_rc && b.user_rc,
            permit_open: both(&a.permit_open, &b.permit_open),
            permit_listen: both(&a.permit_listen, &b.permit_listen),
        })))
    }

    /// The restrictions of an OpenSSH user certificate (PROTOCOL.certkeys):
    /// what its extensions do not permit is refused (`permit-pty`,
    /// `permit-port-forwarding`, `permit-agent-forwarding`,
    /// `permit-X11-forwarding`, `permit-user-rc`), and its `force-command`
    /// critical option is forced. Its `source-address` option is checked
    /// against the peer at login, not here. Any other critical option makes
    /// the certificate unsupported, as in OpenSSH.
    pub fn from_certificate(certificate: &Certificate) -> Result<Restrictions, UnsupportedCertificate> {
        let options = certificate.critical_options();
        if let Some(unknown) = options.keys().find(|name| !matches!(name.as_str(), "force-command" | "source-address")) {
            return Err(UnsupportedCertificate(format!("unsupported critical option `{unknown}`")));
        }
        let extensions = certificate.extensions();
        let permits = |name: &str| extensions.contains_key(name);
        let mut restrictions = Restrictions::new()
            .pty(permits("permit-pty"))
            .port_forwarding(permits("permit-port-forwarding"))
            .agent_forwarding(permits("permit-agent-forwarding"))
            .x11_forwarding(permits("permit-X11-forwarding"))
            .user_rc(permits("permit-user-rc"));
        if let Some(command) = options.get("force-command") {
            restrictions = restrictions.force_command(command.clone());
        }
        Ok(restrictions)
    }

    /// Applies these restrictions to a request: `Err` with the reason when
    /// they forbid it, or the request (a shell, command or subsystem
    /// rewritten to the forced command).
    pub(crate) fn check(&self, mut request: Request) -> Result<Request, &'static str> {
        let r = &*self.0;
        let forbidden = match request.kind() {
            RequestKind::Pty(_) if !r.pty => Some("pty not permitted"),
            RequestKind::X11(_) if !r.x11_forwarding => Some("X11 forwarding not permitted"),
            RequestKind::AgentForward if !r.agent_forwarding => Some("agent forwarding not permitted"),
            RequestKind::DirectTcpip(_)
            | RequestKind::DirectStreamlocal { .. }
            | RequestKind::TcpipForward(_)
            | RequestKind::StreamlocalForward { .. }
                if !r.port_forwarding =>
            {
                Some("port forwarding not permitted")
            }
            RequestKind::DirectTcpip(target) if r.permit_open.as_ref().is_some_and(|p| !p.allows(&target.host, target.port)) => {
                Some("destination not in permitopen")
            }
            RequestKind::DirectStreamlocal { .. } if r.permit_open.is_some() => Some("socket destinations not in permitopen"),
            RequestKind::TcpipForward(target)
                if r.permit_listen.as_ref().is_some_and(|p| !p.allows(listen_host(&target.address), target.port)) =>
            {
                Some("listen address not in permitlisten")
            }
            RequestKind::StreamlocalForward { .. } if r.permit_listen.is_some() => Some("socket listeners not in permitlisten"),
            _ => None,
        };
        if let Some(reason) = forbidden {
            return Err(reason);
        }
        if let Some(forced) = &r.force_command {
            let original = match request.kind() {
                RequestKind::Shell => Some(None),
                RequestKind::Exec(command) => Some(Some(command.as_str().to_owned())),
                RequestKind::Subsystem(name) => Some(Some(name.clone())),
                _ => None,
            };
            if let Some(original) = original {
                request.set_kind(RequestKind::Exec(Command::new(forced.as_bytes())));
                request.extensions_mut().insert(OriginalCommand(original));
            }
        }
        Ok(request)
    }
}

impl crate::connection::Connection {
    /// Adds `restrictions` to those already on this login, keeping what both
    /// allow ([`Restrictions::and`]): how a certificate's combine with its
    /// `authorized_keys` line's, or one factor's with another's. `false`, and
    /// nothing changes, when both force different commands (sshd then refuses
    /// the login). Like every extension set during authentication, they are
    /// rolled back if the attempt is rejected.
    pub fn restrict(&self, restrictions: Restrictions) -> bool {
        let combined = match self.extension::<Restrictions>() {
            Some(earlier) => earlier.and(&restrictions),
            None => Some(restrictions),
        };
        match combined {
            Some(combined) => {
                self.insert_extension(combined);
                true
            }
            None => false,
        }
    }
}

/// The host a listen request names, as `permitlisten` compares it: an empty
/// address is `localhost`, as OpenSSH reads it.
fn listen_host(address: &str) -> &str {
    if address.is_empty() { "localhost" } else { address }
}

/// Applies the connection's restrictions, if any, to a request about to be decided.
pub(crate) fn enforce(request: Request) -> Result<Request, &'static str> {
    let restricted = matches!(
        request.kind(),
        RequestKind::Pty(_)
            | RequestKind::X11(_)
            | RequestKind::AgentForward
            | RequestKind::DirectTcpip(_)
            | RequestKind::DirectStreamlocal { .. }
            | RequestKind::TcpipForward(_)
            | RequestKind::StreamlocalForward { .. }
            | RequestKind::Shell
            | RequestKind::Exec(_)
            | RequestKind::Subsystem(_)
    );
    if !restricted {
        return Ok(request);
    }
    match request.connection().extension::<Restrictions>() {
        Some(restrictions) => restrictions.check(request),
        None => Ok(request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_keeps_what_both_allow_and_refuses_two_different_forced_commands() {
        let key = Restrictions::new().pty(false).force_command("backup");
        let cert = Restrictions::new().agent_forwarding(false);
        let both = key.and(&cert).unwrap();
        assert!(!both.allows_pty() && !both.allows_agent_forwarding() && both.allows_port_forwarding());
        assert_eq!(both.forced_command(), Some("backup"));
        assert!(key.and(&Restrictions::new().force_command("other")).is_none());
        assert_eq!(key.and(&Restrictions::new().force_command("backup")).unwrap().forced_command(), Some("backup"));
        let restrict = Restrictions::restrict();
        assert!(!restrict.allows_pty() && !restrict.allows_port_forwarding() && !restrict.allows_x11_forwarding());
        assert!(!restrict.allows_user_rc() && !restrict.allows_agent_forwarding());
    }

    #[test]
    fn two_different_permitopen_lists_allow_nothing() {
        let a = Restrictions::new().permit_open("localhost:80".parse().unwrap());
        let b = Restrictions::new().permit_open("localhost:81".parse().unwrap());
        let both = a.and(&b).unwrap();
        assert_eq!(both.0.permit_open, Some(PermitOpen::none()));
        assert_eq!(a.and(&a).unwrap().0.permit_open, a.0.permit_open);
        assert_eq!(a.and(&Restrictions::new()).unwrap().0.permit_open, a.0.permit_open);
    }
}
