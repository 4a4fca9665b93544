//! The SSH handlers: every decision mini-sshd makes, as one `#[server]` impl block.

use std::path::PathBuf;
use std::sync::Arc;

use ssh_framework::extract::{Environment, Pty, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::scp::Scp;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{Auth, ChannelIo, Command, Connection, ExitStatus, Factors, Method, MethodSet, Prompt, Prompter, PtyRequest};

use crate::accounts::Accounts;
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

/// mini-sshd's handlers: accounts for authentication, a session config for channels.
#[derive(Debug)]
pub(crate) struct MiniSshd {
    pub(crate) accounts: Accounts,
    pub(crate) sessions: SessionConfig,
    /// `--root` as a jail for SFTP and SCP.
    pub(crate) files: FsBackend,
}

#[ssh_framework::server]
impl MiniSshd {
    /// Each user is offered only what they can use: the first method of their
    /// chain, or the methods they have credentials for.
    #[allowed_auths]
    async fn allowed_auths(&self, user: &str) -> MethodSet {
        self.accounts.allowed(user)
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

    /// The key's signature was verified by the framework; only its key data is compared.
    #[auth(publickey)]
    async fn publickey(&self, user: &str, key: &PublicKey, passed: Factors) -> Auth {
        self.accounts.decide(user, Method::PublicKey, passed.as_slice(), |a| a.authorizes(key.key_data()))
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

    /// Signals reach the running body as `ChannelEvent::Signal`, which sends them to the child.
    #[signal]
    async fn signal(&self) -> bool {
        true
    }

    /// The user's shell: on the pty if one was requested, on pipes otherwise (`ssh -T`, scripts).
    #[shell]
    async fn shell(&self, user: User, connection: Arc<Connection>, pty: Pty, env: Environment, io: ChannelIo) -> ExitStatus {
        let launch = self.sessions.launch(&user, &connection, pty.0.as_ref(), env.0, None);
        process::run(&launch, pty.0.as_ref(), io).await
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
    #[exec]
    async fn exec(
        &self,
        user: User,
        connection: Arc<Connection>,
        command: Command,
        pty: Pty,
        env: Environment,
        io: ChannelIo,
    ) -> ExitStatus {
        let launch = self.sessions.launch(&user, &connection, pty.0.as_ref(), env.0, Some(&command));
        process::run(&launch, pty.0.as_ref(), io).await
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
}
