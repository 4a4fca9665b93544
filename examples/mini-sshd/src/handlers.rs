//! The SSH handlers: every decision mini-sshd makes, as one `#[server]` impl block.

use std::path::PathBuf;
use std::sync::Arc;

use ssh_framework::extract::{AgentForwarded, Environment, Extension, Pty, User};
use ssh_framework::forward::{Client, Forward, ListenTarget, OpenFailure, TcpTarget, X11Request};
use ssh_framework::auth::TrustedUserCaKeys;
use ssh_framework::keys::{Certificate, PublicKey};
use ssh_framework::scp::Scp;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{
    Auth, ChannelIo, Command, Connection, ExitStatus, Factors, Method, MethodSet, OriginalCommand, Prompt, Prompter, PtyRequest,
};

use crate::accounts::{Accounts, KeyEnvironment};
use crate::forwarding::{ForwardingPolicy, SessionForwards};
use crate::glob;
use crate::process::{self, Launch};

/// How sessions run: the shell, its directory and what of the client's environment it sees.
#[derive(Debug)]
pub(crate) struct SessionConfig {
    /// Working directory and `HOME`, absolute.
    pub(crate) root: PathBuf,
    /// The shell for `shell` requests and `SHELL -c COMMAND` for `exec`.
    pub(crate) shell: PathBuf,
    /// `AcceptEnv` globs.
    pub(crate) accept_env: Vec<String>,
    /// `PATH` for sessions: the server's own.
    pub(crate) path: String,
}

impl SessionConfig {
    /// Whether the client may set variable `name` (with `value`).
    fn accepts_env(&self, name: &str, value: &str) -> bool {
        // `=` or NUL in a name, or NUL in a value, could not be passed to exec faithfully.
        let well_formed = !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0');
        well_formed && self.accept_env.iter().any(|pattern| glob::matches(pattern, name))
    }

    /// The program, arguments and environment of a session, as sshd builds them:
    /// a login shell (`argv[0]` `-sh`) for `shell`, `sh -c COMMAND` for `exec`.
    fn launch(
        &self,
        user: &str,
        connection: &Connection,
        pty: Option<&PtyRequest>,
        accepted: Vec<(String, String)>,
        command: Option<&Command>,
    ) -> Launch {
        let name = self.shell.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sh".into());
        let (argv0, args) = match command {
            Some(command) => (name, vec!["-c".to_owned(), command.as_str().to_owned()]),
            None => (format!("-{name}"), Vec::new()),
        };
        let mut env = vec![
            ("USER".to_owned(), user.to_owned()),
            ("LOGNAME".to_owned(), user.to_owned()),
            ("HOME".to_owned(), self.root.display().to_string()),
            ("SHELL".to_owned(), self.shell.display().to_string()),
            ("PATH".to_owned(), self.path.clone()),
        ];
        if let Some(pty) = pty.filter(|p| !p.term.is_empty()) {
            env.push(("TERM".to_owned(), pty.term.clone()));
        }
        // Accepted client variables come after the defaults and may replace them, as in sshd.
        env.extend(accepted);
        if let (Some(peer), Some(local)) = (connection.peer_addr(), connection.local_addr()) {
            env.push(("SSH_CLIENT".to_owned(), format!("{} {} {}", peer.ip(), peer.port(), local.port())));
            env.push((
                "SSH_CONNECTION".to_owned(),
                format!("{} {} {} {}", peer.ip(), peer.port(), local.ip(), local.port()),
            ));
        }
        Launch { program: self.shell.clone(), argv0, args, env, dir: self.root.clone() }
    }
}

/// What `xauth` may be given of an `x11-req`, as sshd checks it: the protocol
/// and cookie go into a script of xauth commands, so no spaces or newlines.
fn xauth_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
}

/// mini-sshd's handlers: accounts for authentication, a session config for channels.
#[derive(Debug)]
pub(crate) struct MiniSshd {
    pub(crate) accounts: Accounts,
    pub(crate) sessions: SessionConfig,
    /// `--root` as a jail for SFTP and SCP.
    pub(crate) files: FsBackend,
    /// What may be forwarded.
    pub(crate) forwarding: ForwardingPolicy,
    /// `--trusted-user-ca-keys`: certificate logins, for any user name a certificate names.
    pub(crate) certificates: Option<TrustedUserCaKeys>,
}

impl MiniSshd {
    /// Runs a shell (`command` `None`) or command with the client's agent and
    /// X display offered on the way, when this channel allowed them; both
    /// close when it ends.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        user: &str,
        client: &Client,
        pty: Option<&PtyRequest>,
        env: Vec<(String, String)>,
        command: Option<&Command>,
        agent: AgentForwarded,
        x11: Option<&X11Request>,
        io: ChannelIo,
    ) -> ExitStatus {
        let mut env = env;
        // `environment=` of the login's authorized_keys line (--permit-user-environment):
        // after the client's variables, which it may replace, before SSH_CLIENT and the like.
        if let Some(KeyEnvironment(vars)) = client.connection().extension::<KeyEnvironment>() {
            env.extend(vars);
        }
        let forwards = SessionForwards::open(client, agent.0, x11, &self.sessions.root, &self.sessions.path).await;
        let mut launch = self.sessions.launch(user, client.connection(), pty, env, command);
        // After the client's variables, which may not replace them, as in sshd.
        launch.env.extend(forwards.env());
        let status = process::run(&launch, pty, io).await;
        drop(forwards);
        status
    }
}

#[ssh_framework::server]
impl MiniSshd {
    /// Each user is offered only what they can use: the first method of their
    /// chain, or the methods they have credentials for.
    #[allowed_auths]
    async fn allowed_auths(&self, user: &str) -> MethodSet {
        let mut allowed = self.accounts.allowed(user);
        if self.certificates.is_some() {
            allowed.insert(Method::PublicKey);
        }
        allowed
    }

    /// A certificate signed by a `--trusted-user-ca-keys` CA for one of the
    /// user's principals, or by a CA of a `cert-authority` line of the user's
    /// authorized_keys (whose `principals=`, `from=`, `expiry-time=` and other
    /// options apply, as in sshd): a login on its own (it takes no part in
    /// `--require` chains). A revoked key or CA (`--revoked-keys`) is refused.
    #[auth(certificate)]
    async fn certificate(&self, user: &str, certificate: &Certificate, connection: Arc<Connection>) -> Auth {
        if self.accounts.revoked().revokes_certificate(certificate) {
            tracing::info!(user, key_id = certificate.key_id(), "certificate refused: its key or its CA is revoked");
            return Auth::Reject;
        }
        if let Some(trusted) = &self.certificates
            && trusted.check(user, certificate).is_ok()
        {
            return Auth::Accept;
        }
        let peer = connection.peer_addr().map(|p| p.ip());
        let named = certificate.valid_principals();
        for line in self.accounts.authorities(user, certificate.signature_key()) {
            if let Some(reason) = line.refusal(peer, std::time::SystemTime::now()) {
                tracing::info!(user, file = %line.file, reason, "cert-authority line passed over");
                continue;
            }
            let principal = match &line.entry.options.principals {
                Some(allowed) => named.iter().any(|p| allowed.contains(p)),
                None => named.iter().any(|p| p == user),
            };
            if !principal {
                tracing::info!(user, file = %line.file, "cert-authority line passed over: no principal matches");
                continue;
            }
            // The line's options restrict the login beside the certificate's own.
            if !connection.restrict(line.restrictions.clone()) {
                tracing::info!(user, "certificate refused: two different forced commands");
                return Auth::Reject;
            }
            return Auth::Accept;
        }
        tracing::info!(user, key_id = certificate.key_id(), "certificate refused: no trusted CA for this user");
        Auth::Reject
    }

    /// `none` passes only where a `--require` chain starts with it.
    #[auth(none)]
    async fn none(&self, user: &str, passed: Factors) -> Auth {
        self.accounts.decide(user, Method::None, passed.as_slice(), |_| true)
    }

    #[auth(password)]
    async fn password(&self, user: &str, password: &str, passed: Factors) -> Auth {
        self.accounts.decide(user, Method::Password, passed.as_slice(), |a| a.password_is(password))
    }

    /// The key's signature was verified by the framework; its key data picks
    /// the authorized_keys line, whose options (`from=`, `command=`,
    /// `restrict`, ...) then go with the login as `Restrictions`, enforced by
    /// the framework on every later request.
    #[auth(publickey)]
    async fn publickey(&self, user: &str, key: &PublicKey, passed: Factors, connection: Arc<Connection>) -> Auth {
        let peer = connection.peer_addr().map(|p| p.ip());
        let (auth, line) = self.accounts.publickey(user, key.key_data(), peer, passed.as_slice());
        let Some(line) = line else { return auth };
        // With those an earlier factor put on the login.
        if !connection.restrict(line.restrictions.clone()) {
            tracing::info!(user, "publickey refused: two different forced commands");
            return Auth::Reject;
        }
        if !line.environment().is_empty() {
            connection.insert_extension(KeyEnvironment(line.environment().to_vec()));
        }
        auth
    }

    /// One hidden prompt. Unknown users are asked too, so the exchange does not reveal who exists.
    #[auth(keyboard_interactive)]
    async fn keyboard_interactive(&self, user: &str, prompter: &mut Prompter, passed: Factors) -> Auth {
        match prompter.ask_one(Prompt::hidden("Verification code: ")).await {
            Ok(code) => self.accounts.decide(user, Method::KeyboardInteractive, passed.as_slice(), |a| a.code_is(&code)),
            Err(_) => Auth::Reject,
        }
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    /// Any terminal is allowed; the request is applied when the shell or command starts.
    #[pty]
    async fn pty(&self) -> bool {
        true
    }

    /// `AcceptEnv`: names matching a `--accept-env` glob.
    #[env]
    async fn env(&self, name: &str, value: &str) -> bool {
        let accepted = self.sessions.accepts_env(name, value);
        tracing::debug!(name, accepted, "env request");
        accepted
    }

    /// Resizes reach the running body as `ChannelEvent::WindowChange`.
    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }

    /// Signals reach the running body as `ChannelEvent::Signal`, which sends them to the child's process group.
    #[signal]
    async fn signal(&self) -> bool {
        true
    }

    /// `--allow-agent-forwarding`: `ssh -A`.
    #[agent]
    async fn agent(&self, user: User) -> bool {
        tracing::debug!(%user, allowed = self.forwarding.agent, "agent forwarding request");
        self.forwarding.agent
    }

    /// `--allow-x11-forwarding`: `ssh -X`, with a protocol and cookie xauth can take.
    #[x11]
    async fn x11(&self, request: X11Request, user: User) -> bool {
        let allowed = self.forwarding.x11 && xauth_safe(&request.auth_protocol) && xauth_safe(&request.auth_cookie);
        tracing::debug!(%user, allowed, protocol = %request.auth_protocol, "x11 forwarding request");
        allowed
    }

    /// `ssh -L`: with `--allow-tcp-forwarding`, to destinations `--permit-open` lists.
    #[channel(direct_tcpip)]
    async fn local_forward(&self, target: TcpTarget, user: User) -> Forward {
        let allowed = self.forwarding.allows_local(&target.host, target.port);
        tracing::info!(%user, host = %target.host, port = target.port, allowed, "direct-tcpip");
        if allowed { Forward::Connect } else { Forward::Refuse(OpenFailure::AdministrativelyProhibited) }
    }

    /// `ssh -R`: with `--allow-tcp-forwarding`. The framework has already
    /// refused privileged ports and listeners past its cap, and binds loopback.
    #[tcpip_forward]
    async fn remote_forward(&self, target: ListenTarget, user: User) -> bool {
        tracing::info!(%user, address = %target.address, port = target.port, allowed = self.forwarding.tcp, "tcpip-forward");
        self.forwarding.tcp
    }

    /// The user's shell: on the pty if one was requested, on pipes otherwise (`ssh -T`, scripts).
    #[allow(clippy::too_many_arguments)]
    #[shell]
    async fn shell(
        &self,
        user: User,
        client: Client,
        pty: Pty,
        env: Environment,
        agent: AgentForwarded,
        x11: Option<X11Request>,
        io: ChannelIo,
    ) -> ExitStatus {
        self.run(&user, &client, pty.0.as_ref(), env.0, None, agent, x11.as_ref(), io).await
    }

    /// SFTP, jailed to `--root` (read-only with `--sftp-read-only`).
    #[subsystem("sftp")]
    async fn sftp(&self, user: User, io: ChannelIo) -> std::io::Result<()> {
        tracing::info!(%user, "sftp session");
        Sftp::new(self.files.clone()).serve(io).await
    }

    /// Legacy `scp -t` / `scp -f` (`scp -O`), over the same jail as SFTP.
    #[exec("scp")]
    async fn scp(&self, command: Command, io: ChannelIo) -> ExitStatus {
        Scp::new(self.files.clone()).serve(&command, io).await
    }

    /// `SHELL -c COMMAND`.
    #[allow(clippy::too_many_arguments)]
    #[exec]
    async fn exec(
        &self,
        user: User,
        client: Client,
        command: Command,
        pty: Pty,
        env: Environment,
        agent: AgentForwarded,
        x11: Option<X11Request>,
        original: Option<Extension<OriginalCommand>>,
        io: ChannelIo,
    ) -> ExitStatus {
        let mut env = env.0;
        // A forced command ran instead of the client's: the client's, as sshd passes it.
        if let Some(Extension(OriginalCommand(Some(original)))) = original {
            env.push(("SSH_ORIGINAL_COMMAND".to_owned(), original));
        }
        self.run(&user, &client, pty.0.as_ref(), env, Some(&command), agent, x11.as_ref(), io).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_must_match_a_glob_and_be_well_formed() {
        let config = SessionConfig {
            root: "/".into(),
            shell: "/bin/sh".into(),
            accept_env: vec!["LANG".into(), "LC_*".into()],
            path: String::new(),
        };
        assert!(config.accepts_env("LANG", "C"));
        assert!(config.accepts_env("LC_ALL", "C.UTF-8"));
        assert!(!config.accepts_env("FOO", "bar"));
        assert!(!config.accepts_env("LANG", "C\0"));
        let everything = SessionConfig { accept_env: vec!["*".into()], ..config };
        assert!(!everything.accepts_env("A=B", "c"));
        assert!(!everything.accepts_env("", "c"));
    }

    #[test]
    fn x11_cookies_with_spaces_or_newlines_cannot_reach_xauth() {
        assert!(xauth_safe("MIT-MAGIC-COOKIE-1"));
        assert!(xauth_safe("0123456789abcdef"));
        assert!(!xauth_safe("abc\nremove *"));
        assert!(!xauth_safe("a b"));
        assert!(!xauth_safe(""));
    }
}
