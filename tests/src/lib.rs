//! Shared helpers of the integration tests: a server on a free port of
//! 127.0.0.1, the OpenSSH client (`ssh`, `sshpass`, `SSH_ASKPASS`) and russh's
//! client driven against it, and small handler types the tests compose.
//!
//! Every client runs under a timeout and every server owns its temp dir, so
//! tests can run in parallel and none can hang.

pub mod forwarding;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::{Channel, ChannelMsg};
use ssh_framework::extract::Environment;
use ssh_framework::keys::{PrivateKey, PublicKey};
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server, ServerBuilder, ShutdownHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one client (an `ssh` process, a russh exchange) may take before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs a `tracing` subscriber writing to the test's captured output,
/// filtered by `RUST_LOG` (silent when it is unset). Safe to call repeatedly.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`CLIENT_TIMEOUT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(CLIENT_TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {CLIENT_TIMEOUT:?}: {what}"),
    }
}

/// A server under test, listening on a free port of 127.0.0.1, served by a spawned task.
pub struct TestServer {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    task: Option<JoinHandle<Result<(), ssh_framework::Error>>>,
    dir: tempfile::TempDir,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).field("dir", &self.dir.path()).finish()
    }
}

impl TestServer {
    /// Builds and spawns a server. `configure` receives a builder that already
    /// listens on `127.0.0.1:0`, has a fresh ed25519 host key in the server's
    /// temp dir and a 10 ms rejection delay; it adds handlers, layers, limits.
    pub async fn start(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        init_tracing();
        let dir = tempfile::tempdir().expect("a temp dir");
        let builder = Server::builder()
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .host_key_file(dir.path().join("host_ed25519_key"))
            .rejection_delay(Duration::from_millis(10));
        let server = configure(builder).build().await.expect("the server builds");
        let addr = server.local_addrs()[0];
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(server.run());
        TestServer { addr, shutdown, task: Some(task), dir }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// This server's temp dir, for client keys and askpass scripts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A handle that starts a graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// An OpenSSH client command for `user` against this server.
    pub fn ssh(&self, user: &str) -> Ssh {
        Ssh::new(self.port(), user)
    }

    /// Waits for `Server::run` to return (after a shutdown) and gives its result.
    pub async fn stopped(&mut self) -> Result<(), ssh_framework::Error> {
        let task = self.task.take().expect("the server task is awaited once");
        within("the server to stop", task).await.expect("the server task did not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What an `ssh` process did.
#[derive(Debug, Clone)]
pub struct SshOutput {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
}

impl SshOutput {
    /// Stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// An OpenSSH `ssh` invocation, isolated from the user's config, agent, keys and known hosts.
#[derive(Debug, Clone)]
pub struct Ssh {
    port: u16,
    user: String,
    options: Vec<String>,
    defaults: Vec<String>,
    env: Vec<(String, String)>,
    password: Option<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Ssh {
    /// `ssh -p PORT USER@127.0.0.1`, with no config file, agent or known hosts.
    pub fn new(port: u16, user: &str) -> Self {
        let defaults = [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "LogLevel=INFO",
            "ConnectTimeout=20",
            "IdentityAgent=none",
            "ControlMaster=no",
            "ControlPath=none",
        ];
        Ssh {
            port,
            user: user.to_owned(),
            options: Vec::new(),
            defaults: defaults.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            password: None,
            stdin: None,
            timeout: CLIENT_TIMEOUT,
        }
    }

    /// Adds `-o OPTION` (`Name=value`). Explicit options win over the defaults
    /// that [`password`](Ssh::password) and friends add (ssh keeps the first value).
    pub fn option(mut self, option: &str) -> Self {
        self.options.push(option.to_owned());
        self
    }

    /// Answers the password prompt with `sshpass`, trying only password
    /// authentication, once.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self.defaults.extend(
            ["PreferredAuthentications=password", "PubkeyAuthentication=no", "NumberOfPasswordPrompts=1"]
                .map(str::to_owned),
        );
        self
    }

    /// Offers only this private key file (`-i`, `IdentitiesOnly=yes`).
    pub fn identity(mut self, key: &Path) -> Self {
        self.options.push(format!("IdentityFile={}", key.display()));
        self.defaults.push("IdentitiesOnly=yes".to_owned());
        self
    }

    /// Answers every prompt (password and keyboard-interactive) with this askpass script.
    pub fn askpass(mut self, askpass: &Askpass) -> Self {
        self.env.push(("SSH_ASKPASS".into(), askpass.script.display().to_string()));
        self.env.push(("SSH_ASKPASS_REQUIRE".into(), "force".into()));
        self.env.push(("DISPLAY".into(), ":0".into()));
        self
    }

    /// Feeds `data` to ssh's stdin (otherwise stdin is `/dev/null`).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// Overrides [`CLIENT_TIMEOUT`] for this invocation.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `ssh ... command` to completion, killing it after the timeout (which fails the test).
    pub async fn run(self, command: &str) -> SshOutput {
        let mut cmd = match &self.password {
            Some(password) => {
                let mut cmd = tokio::process::Command::new("sshpass");
                cmd.arg("-e").env("SSHPASS", password).arg("ssh");
                cmd
            }
            None => tokio::process::Command::new("ssh"),
        };
        cmd.args(["-F", "/dev/null", "-T", "-p", &self.port.to_string(), "-l", &self.user]);
        for option in self.options.iter().chain(&self.defaults) {
            cmd.arg("-o").arg(option);
        }
        cmd.arg("127.0.0.1").arg(command);
        cmd.env_remove("SSH_AUTH_SOCK").env_remove("SSH_ASKPASS").env_remove("SSH_ASKPASS_REQUIRE");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("ssh (and sshpass) are installed");
        if let (Some(data), Some(mut stdin)) = (self.stdin, child.stdin.take()) {
            tokio::spawn(async move {
                // ssh may exit before reading everything; that is the test's to judge.
                let _ = stdin.write_all(&data).await;
                let _ = stdin.shutdown().await;
            });
        }
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(output) => output.expect("waiting for ssh"),
            Err(_) => panic!("ssh {command:?} timed out after {:?}", self.timeout),
        };
        SshOutput {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// An `SSH_ASKPASS` script that answers prompts by their text and logs every prompt it was shown.
#[derive(Debug, Clone)]
pub struct Askpass {
    script: PathBuf,
    log: PathBuf,
}

impl Askpass {
    /// Writes the script into `dir`. Each prompt is answered with the answer
    /// of the first `(needle, answer)` whose needle occurs in the prompt text,
    /// or with `fallback`. Needles and answers may not contain `'`.
    pub fn new(dir: &Path, answers: &[(&str, &str)], fallback: &str) -> Askpass {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let script = dir.join(format!("askpass-{n}.sh"));
        let log = dir.join(format!("askpass-{n}.log"));
        let quote = |s: &str| {
            assert!(!s.contains('\''), "askpass text may not contain a single quote: {s:?}");
            format!("'{s}'")
        };
        let mut text = format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\ncase \"$1\" in\n", quote(&log.display().to_string()));
        for (needle, answer) in answers {
            text += &format!("  *{}*) printf '%s\\n' {} ;;\n", quote(needle), quote(answer));
        }
        text += &format!("  *) printf '%s\\n' {} ;;\nesac\n", quote(fallback));
        std::fs::write(&script, text).expect("writing the askpass script");
        set_mode(&script, 0o755);
        Askpass { script, log }
    }

    /// The prompts shown so far, one per call.
    pub fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A client key pair made by `ssh-keygen`.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key file (for `ssh -i`).
    pub path: PathBuf,
    /// The private key (for russh's client).
    pub private: Arc<PrivateKey>,
    /// The public key (for the server's authorized set).
    pub public: PublicKey,
}

/// Generates an ed25519 key with `ssh-keygen` as `dir/name`.
pub async fn keygen(dir: &Path, name: &str) -> ClientKey {
    let path = dir.join(name);
    let status = within(
        "ssh-keygen",
        tokio::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("ssh-keygen is installed");
    assert!(status.success(), "ssh-keygen failed: {status}");
    let private = PrivateKey::read_openssh_file(&path).expect("ssh-keygen wrote a readable key");
    let public = private.public_key().clone();
    ClientKey { path, private: Arc::new(private), public }
}

/// russh's client handler for tests: trusts any host key and reports the server's disconnect message.
#[derive(Debug)]
pub struct TestClient {
    disconnect: Option<oneshot::Sender<String>>,
}

impl client::Handler for TestClient {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn disconnected(&mut self, reason: client::DisconnectReason<Self::Error>) -> Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                if let Some(tx) = self.disconnect.take() {
                    let _ = tx.send(info.message);
                }
                Ok(())
            }
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}

/// A russh client connection (key exchange done, not yet authenticated).
pub struct RusshClient {
    /// The connection handle: authenticate and open channels with it.
    pub handle: client::Handle<TestClient>,
    disconnect: Option<oneshot::Receiver<String>>,
}

impl fmt::Debug for RusshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RusshClient").field("closed", &self.handle.is_closed()).finish()
    }
}

impl RusshClient {
    /// Connects and completes key exchange.
    pub async fn connect(addr: SocketAddr) -> RusshClient {
        let (tx, rx) = oneshot::channel();
        let config = Arc::new(client::Config::default());
        let handle = within("russh connect", client::connect(config, addr, TestClient { disconnect: Some(tx) }))
            .await
            .expect("russh connects");
        RusshClient { handle, disconnect: Some(rx) }
    }

    /// Waits for the server to end the connection; its disconnect message, or
    /// `None` when it closed without one.
    pub async fn disconnected(&mut self) -> Option<String> {
        let rx = self.disconnect.take().expect("disconnected is awaited once");
        within("the server to disconnect", rx).await.ok()
    }

    /// Opens a session channel and runs `command` on it, asking for a reply.
    pub async fn exec(&self, command: &str) -> Channel<client::Msg> {
        let channel = within("channel open", self.handle.channel_open_session()).await.expect("session channel opens");
        channel.exec(true, command).await.expect("exec request sent");
        channel
    }
}

/// Everything a client channel received until the server closed it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Data on the channel.
    pub stdout: Vec<u8>,
    /// Extended data (type 1, stderr).
    pub stderr: Vec<u8>,
    /// Control messages in arrival order: `success`, `failure`, `data`
    /// (one per run of data), `exit-status N`, `exit-signal NAME`, `eof`, `close`.
    pub events: Vec<String>,
}

impl Transcript {
    /// The control messages other than data and request replies, in order.
    pub fn ending(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(String::as_str)
            .filter(|e| !matches!(*e, "data" | "success" | "failure"))
            .collect()
    }
}

impl Transcript {
    /// Reads `channel` into this transcript until an event for which `stop`
    /// is true (`"success"`, `"close"`, ...); false if the channel ended first.
    /// Fails the test after [`CLIENT_TIMEOUT`].
    pub async fn read_until(&mut self, channel: &mut Channel<client::Msg>, stop: impl Fn(&str) -> bool) -> bool {
        within("a channel message", async {
            while let Some(msg) = channel.wait().await {
                let event = match msg {
                    ChannelMsg::Data { data } => {
                        self.stdout.extend_from_slice(&data);
                        "data".to_owned()
                    }
                    ChannelMsg::ExtendedData { data, .. } => {
                        self.stderr.extend_from_slice(&data);
                        "data".to_owned()
                    }
                    ChannelMsg::Success => "success".to_owned(),
                    ChannelMsg::Failure => "failure".to_owned(),
                    ChannelMsg::ExitStatus { exit_status } => format!("exit-status {exit_status}"),
                    ChannelMsg::ExitSignal { signal_name, .. } => format!("exit-signal {signal_name:?}"),
                    ChannelMsg::Eof => "eof".to_owned(),
                    ChannelMsg::Close => "close".to_owned(),
                    _ => continue,
                };
                let done = stop(&event);
                if !(event == "data" && self.events.last().is_some_and(|e| e == "data")) {
                    self.events.push(event);
                }
                if done {
                    return true;
                }
            }
            false
        })
        .await
    }
}

/// Reads `channel` until the server closes it (fails the test after [`CLIENT_TIMEOUT`]).
pub async fn read_to_close(channel: &mut Channel<client::Msg>) -> Transcript {
    let mut transcript = Transcript::default();
    transcript.read_until(channel, |e| e == "close").await;
    transcript
}

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

/// Deterministic pseudo-random bytes (splitmix64): incompressible, reproducible.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
