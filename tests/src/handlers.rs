//! Small `#[ssh_framework::server]` types the tests compose on one builder:
//! logins that record what they saw, session channels alone, and a tiny
//! command language for exec.

use std::sync::{Arc, Mutex};

use ssh_framework::extract::Environment;
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Password authentication for one user and password, recording every attempt the handler saw.
#[derive(Debug, Clone)]
pub struct PasswordLogin {
    user: String,
    password: String,
    attempts: Arc<Mutex<Vec<(String, String)>>>,
}

impl PasswordLogin {
    /// Accepts exactly `user` with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        PasswordLogin { user: user.to_owned(), password: password.to_owned(), attempts: Arc::default() }
    }

    /// The `(user, password)` pairs the handler was called with, in order.
    pub fn attempts(&self) -> Vec<(String, String)> {
        self.attempts.lock().expect("not poisoned").clone()
    }
}

#[ssh_framework::server]
impl PasswordLogin {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        self.attempts.lock().expect("not poisoned").push((user.to_owned(), password.to_owned()));
        Auth::from_bool(user == self.user && password == self.password)
    }
}

/// Publickey authentication: accepts `alice` with any key of the set,
/// comparing key data (not comments), recording every verified call.
#[derive(Debug, Clone)]
pub struct AuthorizedKeys {
    keys: Vec<PublicKey>,
    calls: Arc<Mutex<Vec<(String, PublicKey)>>>,
}

impl AuthorizedKeys {
    /// Accepts `alice` with any of `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        AuthorizedKeys { keys, calls: Arc::default() }
    }

    /// Accepts `alice` with `key`.
    pub fn alice(key: &PublicKey) -> Self {
        AuthorizedKeys::new(vec![key.clone()])
    }

    /// The `(user, key)` pairs the handler was called with, in order.
    pub fn calls(&self) -> Vec<(String, PublicKey)> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

#[ssh_framework::server]
impl AuthorizedKeys {
    #[auth(publickey)]
    async fn login(&self, user: &str, key: &PublicKey) -> Auth {
        self.calls.lock().expect("not poisoned").push((user.to_owned(), key.clone()));
        Auth::from_bool(user == "alice" && self.keys.iter().any(|k| k.key_data() == key.key_data()))
    }
}

/// Session channels, but nothing may run on them (unless another type on the builder allows it).
#[derive(Debug, Clone, Copy)]
pub struct SessionOnly;

#[ssh_framework::server]
impl SessionOnly {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

/// Session channels with a tiny command language for exec, and an env policy.
///
/// | command | does |
/// |---|---|
/// | `echo WORDS` | prints `WORDS` and a newline |
/// | `exit N` | exits with code `N` |
/// | `kill SIG` | ends with exit-signal `SIG` |
/// | `cat` | copies stdin to stdout until EOF (`tokio::io::copy`) |
/// | `split-cat` | the same, reading stdin in its own task so a write waiting for window never stops reading |
/// | `split` | `to stdout` on stdout, `to stderr` on stderr |
/// | `env` | prints the allowed environment, `NAME=value` per line |
/// | `panic` | panics |
#[derive(Debug, Clone, Default)]
pub struct Commands {
    allowed_env: Vec<String>,
    env_requests: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Commands {
    /// Session channels allowed, no environment variable allowed.
    pub fn new() -> Self {
        Commands::default()
    }

    /// Allows these environment variable names (all others are refused).
    pub fn allow_env(mut self, names: &[&str]) -> Self {
        self.allowed_env = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The env requests seen, as `(name, allowed)`, in order.
    pub fn env_requests(&self) -> Vec<(String, bool)> {
        self.env_requests.lock().expect("not poisoned").clone()
    }
}

#[ssh_framework::server]
impl Commands {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[env]
    async fn env(&self, name: &str, _value: &str) -> bool {
        let allowed = self.allowed_env.iter().any(|n| n == name);
        self.env_requests.lock().expect("not poisoned").push((name.to_owned(), allowed));
        allowed
    }

    #[exec]
    async fn exec(&self, command: Command, env: Environment, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let args = command.args();
        Ok(match command.program() {
            "echo" => {
                io.stdout.write_all(format!("{args}\n").as_bytes()).await?;
                ExitStatus::SUCCESS
            }
            "exit" => ExitStatus::code(args.parse().unwrap_or(255)),
            "kill" => ExitStatus::signal(args),
            "cat" => {
                tokio::io::copy(&mut io.stdin, &mut io.stdout).await?;
                ExitStatus::SUCCESS
            }
            "split-cat" => {
                let (mut stdin, mut stdout, _stderr, _events) = io.split();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
                let reader = tokio::spawn(async move {
                    let mut buf = vec![0; 64 << 10];
                    loop {
                        let n = stdin.read(&mut buf).await?;
                        if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                            return std::io::Result::Ok(());
                        }
                    }
                });
                while let Some(chunk) = rx.recv().await {
                    stdout.write_all(&chunk).await?;
                }
                reader.await.map_err(std::io::Error::other)??;
                ExitStatus::SUCCESS
            }
            "split" => {
                io.stdout.write_all(b"to stdout\n").await?;
                io.stderr.write_all(b"to stderr\n").await?;
                ExitStatus::SUCCESS
            }
            "env" => {
                for (name, value) in env.0 {
                    io.stdout.write_all(format!("{name}={value}\n").as_bytes()).await?;
                }
                ExitStatus::SUCCESS
            }
            "panic" => panic!("the panic command panics"),
            other => {
                io.stderr.write_all(format!("unknown command {other:?}\n").as_bytes()).await?;
                ExitStatus::code(127)
            }
        })
    }
}

/// Allows every session, every env request and every window change; counts the env requests it sees.
#[derive(Debug, Clone, Default)]
pub struct AnyEnv {
    env_calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl AnyEnv {
    /// How many env requests reached the handler.
    pub fn env_calls(&self) -> usize {
        self.env_calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[ssh_framework::server]
impl AnyEnv {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[env]
    async fn env(&self, _name: &str, _value: &str) -> bool {
        self.env_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    }

    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }
}
