//! The ready middleware (`ssh_framework::middleware`, and `TraceLayer`'s
//! session log) driven by OpenSSH `ssh` and russh's client: what the client
//! sees (stderr text, exit status, output order) and what the server logs.

mod access;
mod catch_panic;
mod motd;
mod require_pty;
mod trace_sessions;

use ssh_framework::extract::Pty;
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, ExitStatus, PtyRequest};
use tokio::io::AsyncWriteExt;

/// The password every test user logs in with.
const PASSWORD: &str = "pw";

/// Logins and a shell for the middleware tests; exec comes from the
/// harness's `Commands` (session channels, `echo`, `panic`, ...).
///
/// - password `pw` for any user name;
/// - publickey for `alice` with any of `keys`;
/// - pty allowed; the shell prints `shell on a pty: TERM` (or `shell without a pty`) and exits 0,
///   or panics for user `boom`;
/// - subsystem `hello` prints `hello from a subsystem`.
#[derive(Clone, Default)]
struct App {
    keys: Vec<PublicKey>,
}

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn password(&self, _user: &str, password: &str) -> Auth {
        Auth::from_bool(password == PASSWORD)
    }

    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(user == "alice" && self.keys.iter().any(|k| k.key_data() == key.key_data()))
    }

    #[pty]
    async fn pty(&self, _pty: &PtyRequest) -> bool {
        true
    }

    #[shell]
    async fn shell(&self, user: ssh_framework::extract::User, pty: Pty, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        assert_ne!(user.0, "boom", "a bug in the shell handler");
        let line = match pty.0 {
            Some(pty) => format!("shell on a pty: {}\r\n", pty.term),
            None => "shell without a pty\n".to_owned(),
        };
        io.stdout.write_all(line.as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }

    #[subsystem("hello")]
    async fn hello(&self, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        io.stdout.write_all(b"hello from a subsystem\n").await?;
        Ok(ExitStatus::SUCCESS)
    }
}
