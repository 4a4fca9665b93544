//! The app: who may log in, what a session offers, and the layers around it.
//!
//! One [`App`] value serves every connection, so what it holds is shared by
//! all users; what changes while the server runs belongs behind a `Mutex`
//! or an atomic.

mod shell;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use ssh_framework::authorized_keys::{AuthorizedKeys, KeyOptions};
use ssh_framework::extract::{Pty, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::middleware::{CatchPanicLayer, RequirePtyLayer, SessionKinds};
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::trace::TraceLayer;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, ServerBuilder};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;

/// What the app needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Users who may log in with a password, and their passwords.
    pub passwords: HashMap<String, String>,
    /// A folder with one `authorized_keys` file per user, named after the
    /// user (`keys/alice`), read at each login so edits apply at once.
    pub keys_dir: PathBuf,
    /// The folder under which each user gets a private SFTP folder.
    pub data_dir: PathBuf,
}

/// The app's handlers and what they share.
#[derive(Debug)]
pub struct App {
    config: Config,
    /// The root of the users' folders; each user is jailed in a subfolder.
    files: FsBackend,
}

impl App {
    /// The app for `config`; creates the data folder when missing.
    pub fn new(config: Config) -> io::Result<App> {
        std::fs::create_dir_all(&config.data_dir)?;
        let files = FsBackend::open(&config.data_dir)?;
        Ok(App { config, files })
    }

    /// Whether `key` is in `user`'s `authorized_keys` file. Lines with
    /// options (`from=`, `command=`, ...) are skipped: this app does not
    /// enforce them, and accepting them would give more than they allow.
    fn authorized(&self, user: &str, key: &PublicKey) -> bool {
        // A user name is a file name here: refuse anything that could name another path.
        if user.is_empty() || user.starts_with('.') || user.contains(['/', '\\', '\0']) {
            return false;
        }
        let path = self.config.keys_dir.join(user);
        let keys = match AuthorizedKeys::read(&path) {
            Ok(keys) => keys,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return false,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read authorized keys");
                return false;
            }
        };
        for error in keys.errors() {
            tracing::warn!(path = %path.display(), %error, "line skipped");
        }
        keys.matching(key.key_data()).any(|entry| {
            let plain = entry.options == KeyOptions::default();
            if !plain {
                tracing::warn!(path = %path.display(), line = entry.line, "key options are not supported; line skipped");
            }
            plain
        })
    }
}

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        // Compared in constant time, so timing tells nothing about the password.
        let matches = self.config.passwords.get(user).is_some_and(|known| bool::from(known.as_bytes().ct_eq(password.as_bytes())));
        Auth::from_bool(matches)
    }

    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(self.authorized(user, key))
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[pty]
    async fn pty(&self) -> bool {
        true
    }

    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }

    /// `ssh host`: the interactive shell (a pty is required by [`layers`]).
    #[shell]
    async fn shell(&self, user: User, pty: Pty, io: ChannelIo) -> ExitStatus {
        let size = pty.0.map(|pty| pty.size).unwrap_or_default();
        shell::run(&user, size, io).await
    }

    /// `ssh host whoami`.
    #[exec("whoami")]
    async fn whoami(&self, user: User, mut io: ChannelIo) -> io::Result<ExitStatus> {
        io.stdout.write_all(format!("{user}\n").as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }

    /// Any other command: refused with a message, as a shell would.
    #[exec]
    async fn unknown(&self, command: Command, mut io: ChannelIo) -> ExitStatus {
        let _ = io.stderr.write_all(format!("unknown command: {command}\n").as_bytes()).await;
        ExitStatus::Code(127)
    }

    /// `sftp host`: the user's own folder under the data folder, and nothing outside it.
    #[subsystem("sftp")]
    async fn sftp(&self, user: User, io: ChannelIo) -> io::Result<()> {
        Sftp::new(self.files.create_subdir(&*user)?).serve(io).await
    }
}

/// The layers around the handlers: the last added sees a request first.
///
/// - [`RequirePtyLayer`]: `ssh -T host` gets "this app needs a terminal"
///   instead of a shell that cannot draw;
/// - [`CatchPanicLayer`]: a handler that panics tells its client "internal
///   error" (exit status 70) and is logged, and the server goes on;
/// - [`TraceLayer`]: every decision, and every session's end with its status
///   and duration, logged.
pub fn layers(builder: ServerBuilder) -> ServerBuilder {
    builder
        .layer(RequirePtyLayer::new().on(SessionKinds::SHELL))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new())
}
