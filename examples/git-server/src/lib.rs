//! Git hosting over SSH, built on ssh-framework: `git clone`, `git fetch`,
//! `git push` and `git archive --remote` against bare repositories under one
//! root directory, with per-repository read and write rights decided by the
//! key the client logged in with (see [`access`] for the file that says who
//! may do what).
//!
//! Clients log in as `git` with a public key listed in the access file; the
//! key names the user. There is no shell: `ssh git@host` greets the user and
//! exits 1, as GitHub does.

pub mod access;
pub mod path;

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use ssh_framework::extract::{Environment, Extension, Pty};
use ssh_framework::keys::PublicKey;
use ssh_framework::keys::ssh_key::HashAlg;
use ssh_framework::{Auth, ChannelIo, Command, Connection, ExitStatus};
use tokio::io::AsyncWriteExt;

pub use crate::access::{Access, AccessError, Right};
pub use crate::path::{InvalidPath, RepoPath};

/// The one login name: the key, not the name, says who the user is.
pub const LOGIN: &str = "git";

/// The exit code git-daemon and gitolite use for a refused or unknown repository.
const REFUSED: u32 = 128;

/// The server's state, shared by every connection: where the repositories
/// are and who may do what. Read-only after start, so no lock.
#[derive(Debug)]
pub struct GitHost {
    /// The root, canonical: every repository resolves inside it.
    root: PathBuf,
    access: Access,
}

impl GitHost {
    /// Serves the bare repositories under `root` (which must exist) with the rights in `access`.
    pub fn new(root: &Path, access: Access) -> io::Result<GitHost> {
        let root = std::fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is not a directory", root.display())));
        }
        Ok(GitHost { root, access })
    }
}

// ANCHOR: account
/// Who logged in: attached to the connection by the key handler, extracted
/// by every later handler as `Extension<Account>`.
#[derive(Debug, Clone)]
struct Account {
    user: Arc<str>,
    /// The key's SHA-256 fingerprint, for the logs.
    fingerprint: Arc<str>,
}
// ANCHOR_END: account

// ANCHOR: service
/// The git programs this server runs, each named by the program git asks for.
#[derive(Debug, Clone, Copy)]
enum Service {
    /// `git clone`, `git fetch`.
    UploadPack,
    /// `git push`.
    ReceivePack,
    /// `git archive --remote`.
    UploadArchive,
}

impl Service {
    /// The right the service needs.
    fn needs(self) -> Right {
        match self {
            Service::UploadPack | Service::UploadArchive => Right::Read,
            Service::ReceivePack => Right::Write,
        }
    }

    /// The `git` subcommand and its options, before the repository's path.
    /// `--strict` keeps upload-pack from trying `path/.git`.
    fn git_args(self) -> &'static [&'static str] {
        match self {
            Service::UploadPack => &["upload-pack", "--strict"],
            Service::ReceivePack => &["receive-pack"],
            Service::UploadArchive => &["upload-archive"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
            Service::UploadArchive => "git-upload-archive",
        }
    }
}
// ANCHOR_END: service

#[ssh_framework::server]
impl GitHost {
    // ANCHOR: login
    /// Public keys only, and only those in the access file: the key names the
    /// user. No other method is offered, so passwords are never asked for.
    #[auth(publickey)]
    async fn key(&self, login: &str, key: &PublicKey, connection: Arc<Connection>) -> Auth {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if login != LOGIN {
            tracing::info!(login, %fingerprint, "refused: log in as `{LOGIN}`");
            return Auth::Reject;
        }
        let Some(user) = self.access.user_for(key) else {
            tracing::info!(%fingerprint, "refused: key not in the access file");
            return Auth::Reject;
        };
        tracing::info!(user, %fingerprint, "logged in");
        connection.insert_extension(Account { user: user.into(), fingerprint: fingerprint.into() });
        Auth::Accept
    }
    // ANCHOR_END: login

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    /// Allowed so that `ssh -t git@host` gets the greeting rather than an error.
    #[pty]
    async fn pty(&self) -> bool {
        true
    }

    /// git asks for protocol v2 through `GIT_PROTOCOL`; nothing else is taken.
    #[env]
    async fn env(&self, name: &str, value: &str) -> bool {
        name == "GIT_PROTOCOL"
            && value.len() <= 64
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b':' | b'.' | b'_' | b'-'))
    }

    // ANCHOR: shell
    /// `ssh git@host`: a greeting that proves the key works, and exit 1.
    #[shell]
    async fn shell(&self, Extension(account): Extension<Account>, pty: Pty, mut io: ChannelIo) -> ExitStatus {
        // On a pty the client's terminal is raw: a line ends with "\r\n".
        let newline = if pty.0.is_some() { "\r\n" } else { "\n" };
        let greeting = format!(
            "Hi {}! You've successfully authenticated, but this server does not provide shell access.{newline}",
            account.user
        );
        let _ = io.stderr.write_all(greeting.as_bytes()).await;
        ExitStatus::FAILURE
    }
    // ANCHOR_END: shell

    // ANCHOR: exec
    /// `git clone` and `git fetch` run `git-upload-pack '<path>'`.
    #[exec("git-upload-pack")]
    async fn upload_pack(&self, account: Extension<Account>, command: Command, env: Environment, io: ChannelIo) -> ExitStatus {
        self.serve(Service::UploadPack, &account, &command, &env, io).await
    }

    /// `git push` runs `git-receive-pack '<path>'`.
    #[exec("git-receive-pack")]
    async fn receive_pack(&self, account: Extension<Account>, command: Command, env: Environment, io: ChannelIo) -> ExitStatus {
        self.serve(Service::ReceivePack, &account, &command, &env, io).await
    }

    /// `git archive --remote=...` runs `git-upload-archive '<path>'`.
    #[exec("git-upload-archive")]
    async fn upload_archive(&self, account: Extension<Account>, command: Command, env: Environment, io: ChannelIo) -> ExitStatus {
        self.serve(Service::UploadArchive, &account, &command, &env, io).await
    }

    /// Any other command.
    #[exec]
    async fn other(&self, Extension(account): Extension<Account>, command: Command, mut io: ChannelIo) -> ExitStatus {
        tracing::info!(user = &*account.user, program = command.program(), "refused: not a git command");
        let message = format!(
            "Hi {}! This server runs git-upload-pack, git-receive-pack and git-upload-archive only, not `{}`.\n",
            account.user,
            command.program()
        );
        let _ = io.stderr.write_all(message.as_bytes()).await;
        ExitStatus::code(127)
    }
    // ANCHOR_END: exec
}

impl GitHost {
    // ANCHOR: serve
    /// Checks the path and the user's right, then runs git on the repository
    /// with the channel as its stdin, stdout and stderr. Every refusal is
    /// logged and told to the client on stderr, with exit code 128.
    async fn serve(&self, service: Service, account: &Account, command: &Command, env: &Environment, mut io: ChannelIo) -> ExitStatus {
        let (user, fingerprint) = (&*account.user, &*account.fingerprint);
        // git quotes the path as a POSIX shell would: `git-upload-pack '/project.git'`.
        let requested = match command.argv().as_deref() {
            Ok([_, path]) => path.clone(),
            _ => {
                tracing::info!(user, %fingerprint, command = %command, "refused: not one repository path");
                return refuse(&mut io, format!("usage: {} '<repository>.git'", service.name())).await;
            }
        };
        let repo = match RepoPath::parse(&requested) {
            Ok(repo) => repo,
            Err(reason) => {
                tracing::info!(user, %fingerprint, requested, %reason, "refused: invalid repository path");
                return refuse(&mut io, format!("invalid repository path {requested:?}: {reason}")).await;
            }
        };
        let needs = service.needs();
        // Rights come from the access file alone, so a refusal says nothing
        // about whether the repository exists.
        if self.access.right(user, &repo) < Some(needs) {
            tracing::info!(user, %fingerprint, %repo, %needs, service = service.name(), "refused: no access");
            return refuse(&mut io, format!("{user} has no {needs} access to {repo}")).await;
        }
        let Some(dir) = self.resolve(&repo).await else {
            tracing::info!(user, %fingerprint, %repo, "refused: no such repository");
            return refuse(&mut io, format!("repository {repo} not found")).await;
        };
        tracing::info!(user, %fingerprint, %repo, service = service.name(), "serving");
        let mut git = tokio::process::Command::new("git");
        git.args(service.git_args()).arg(&dir).env_clear();
        // Only what git needs from the server's environment, and the client's protocol version.
        for name in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(name) {
                git.env(name, value);
            }
        }
        if let Some((_, protocol)) = env.0.iter().find(|(name, _)| name == "GIT_PROTOCOL") {
            git.env("GIT_PROTOCOL", OsString::from(protocol));
        }
        let status = run(git, io).await;
        tracing::info!(user, %repo, service = service.name(), ?status, "done");
        status
    }
    // ANCHOR_END: serve

    // ANCHOR: resolve
    /// The repository's directory: inside the root even after symbolic links
    /// are followed, and a bare repository (`HEAD` and `objects/`).
    async fn resolve(&self, repo: &RepoPath) -> Option<PathBuf> {
        let dir = tokio::fs::canonicalize(self.root.join(repo.as_str())).await.ok()?;
        let bare = tokio::fs::metadata(dir.join("HEAD")).await.is_ok_and(|m| m.is_file())
            && tokio::fs::metadata(dir.join("objects")).await.is_ok_and(|m| m.is_dir());
        (dir.starts_with(&self.root) && bare).then_some(dir)
    }
    // ANCHOR_END: resolve
}

/// Tells the client why, the way git-daemon does: one line on stderr, exit 128.
async fn refuse(io: &mut ChannelIo, message: String) -> ExitStatus {
    let _ = io.stderr.write_all(format!("{message}\n").as_bytes()).await;
    ExitStatus::code(REFUSED)
}

// ANCHOR: run
/// Runs `git` with the channel as its stdin, stdout and stderr, and returns
/// its exit status. The client's EOF closes git's stdin; once git has exited
/// and its output is sent, the handler returns whether or not the client
/// closed its side. A client that goes away drops the child, which kills it.
async fn run(mut git: tokio::process::Command, io: ChannelIo) -> ExitStatus {
    let (mut stdin, mut stdout, mut stderr, _events) = io.split();
    git.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = match git.spawn() {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!(%error, "cannot start git");
            let _ = stderr.write_all(format!("git-server: cannot start git: {error}\n").as_bytes()).await;
            return ExitStatus::code(REFUSED);
        }
    };
    let (Some(mut child_in), Some(mut child_out), Some(mut child_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return ExitStatus::FAILURE;
    };
    let input = async move {
        let copied = tokio::io::copy(&mut stdin, &mut child_in).await;
        // Dropping the pipe closes it: git reads EOF, as the client sent.
        drop(child_in);
        copied
    };
    let output = async {
        let (out, err) = tokio::join!(tokio::io::copy(&mut child_out, &mut stdout), tokio::io::copy(&mut child_err, &mut stderr));
        out?;
        err?;
        child.wait().await
    };
    tokio::pin!(input, output);
    let mut input_done = false;
    loop {
        tokio::select! {
            biased;
            status = &mut output => return match status {
                Ok(status) => exit_status(status),
                Err(error) => {
                    tracing::info!(%error, "client gone while git ran");
                    ExitStatus::FAILURE
                }
            },
            copied = &mut input, if !input_done => {
                input_done = true;
                if let Err(error) = copied {
                    // git closed its stdin (it is done reading); what it writes still goes out.
                    tracing::debug!(%error, "stdin not delivered in full");
                }
            }
        }
    }
}
// ANCHOR_END: run

/// git's exit code, or 128 + the signal number when a signal ended it, as a shell reports it.
fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::code(u32::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitStatus::code(128 + u32::try_from(signal).unwrap_or(0)),
        (None, None) => ExitStatus::FAILURE,
    }
}
