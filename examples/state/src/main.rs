//! Run with: cargo run -p example-state
//!
//! A key-value store over SSH that shows the three places state lives:
//! the handler type (the store, shared by every connection), the connection
//! (the account the password handler looked up), and the request (an id a
//! layer assigns to each command). Users: `alice` (password `alice-pw`, an
//! admin) and `bob` (`bob-pw`, a reader):
//!
//! ```text
//! ssh -p 2222 alice@127.0.0.1 set color blue
//! ssh -p 2222 bob@127.0.0.1 get color
//! ssh -p 2222 bob@127.0.0.1 set color red      # permission denied
//! ssh -p 2222 bob@127.0.0.1 whoami
//! ```
//!
//! Another address: `cargo run -p example-state -- 127.0.0.1:2300`.

// ANCHOR: all
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use ssh_framework::extract::{Extension, PeerAddr};
use ssh_framework::tower::{Layer, Service};
use ssh_framework::{
    Auth, BoxError, ChannelIo, Command, Connection, ExitStatus, Factors, Request, RequestKind, Response, Server, Stack,
};
use tokio::io::AsyncWriteExt;
use tracing_subscriber::EnvFilter;

// ANCHOR: account
/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reads and writes.
    Admin,
    /// Reads only.
    Reader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
        })
    }
}

/// The account a login found: attached to the connection by the password
/// handler, extracted by every later handler as `Extension<Account>`.
/// Extensions are looked up by type, and must be `Clone + Send + Sync + 'static`.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    role: Role,
    /// Commands run on this connection. Extracting an extension clones it, so
    /// what handlers change is shared through an `Arc`.
    commands: Arc<AtomicU64>,
}
// ANCHOR_END: account

// ANCHOR: app_state
/// The application state: the one value of the handler type, shared by every
/// connection (handlers take `&self`). It must be `Send + Sync`; what changes
/// lives behind a `Mutex` or in an atomic.
struct Store {
    /// Read-only after start: no lock needed.
    users: HashMap<&'static str, (&'static str, Role)>,
    /// Changed by `set` and `del` from any connection.
    values: Mutex<BTreeMap<String, String>>,
    /// Counted by every connection.
    commands: AtomicU64,
}

impl Store {
    fn new() -> Self {
        Store {
            users: HashMap::from([("alice", ("alice-pw", Role::Admin)), ("bob", ("bob-pw", Role::Reader))]),
            values: Mutex::new(BTreeMap::from([("motd".to_owned(), "hello from the store".to_owned())])),
            commands: AtomicU64::new(0),
        }
    }

    /// The values, locked. The guard is not `Send`: hold it only in code
    /// without `.await` (see `run`).
    fn values(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
// ANCHOR_END: app_state

// ANCHOR: request_id
/// A number the layer below gives each exec request, for logs and replies.
#[derive(Debug, Clone, Copy)]
struct RequestId(u64);

/// A `tower` layer over the framework's `Stack`: it inserts a `RequestId`
/// into the extensions of every exec request, before any handler runs.
#[derive(Debug, Clone, Default)]
struct RequestIdLayer {
    next: Arc<AtomicU64>,
}

impl Layer<Stack> for RequestIdLayer {
    type Service = RequestIdService;

    fn layer(&self, inner: Stack) -> RequestIdService {
        RequestIdService { inner, next: self.next.clone() }
    }
}

/// The service the layer wraps around the stack.
#[derive(Debug, Clone)]
struct RequestIdService {
    inner: Stack,
    next: Arc<AtomicU64>,
}

impl Service<Request> for RequestIdService {
    type Response = Response;
    type Error = BoxError;
    type Future = <Stack as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if matches!(request.kind(), RequestKind::Exec(_)) {
            let id = RequestId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
            request.extensions_mut().insert(id);
        }
        self.inner.call(request)
    }
}
// ANCHOR_END: request_id

#[ssh_framework::server]
impl Store {
    // ANCHOR: login
    /// Checks the password and attaches the account to the connection. The
    /// password is compared in constant time and never logged.
    #[auth(password)]
    async fn login(&self, user: &str, password: &str, connection: Arc<Connection>) -> Auth {
        // Unknown users take the same steps and fail on `known`; every
        // rejection is answered after the framework's delay.
        let (expected, role) = self.users.get(user).copied().unwrap_or(("", Role::Reader));
        let known = self.users.contains_key(user);
        if !(constant_time_eq(expected.as_bytes(), password.as_bytes()) && known) {
            tracing::info!(user, "password rejected");
            return Auth::Reject;
        }
        // Kept only because this attempt succeeds: what a rejected attempt
        // attached is rolled back.
        connection.insert_extension(Account { name: user.to_owned(), role, commands: Arc::default() });
        tracing::info!(%role, "logged in");
        Auth::Accept
    }
    // ANCHOR_END: login

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: exec
    /// Runs one command. Every argument after `&self` is an extractor: any
    /// number that read the request (`Command`, `Extension<T>`, `Factors`,
    /// `PeerAddr`), and one that consumes it (`ChannelIo`).
    #[exec]
    async fn exec(
        &self,
        command: Command,
        account: Extension<Account>,
        request: Option<Extension<RequestId>>,
        factors: Factors,
        peer: PeerAddr,
        mut io: ChannelIo,
    ) -> std::io::Result<ExitStatus> {
        // `None` only if the server was built without `RequestIdLayer`.
        let RequestId(id) = request.map_or(RequestId(0), |Extension(id)| id);
        let caller = Caller { account: &account, factors: &factors, peer, request: id };
        let reply = match command.argv() {
            Ok(argv) => self.run(&caller, &argv),
            Err(error) => Reply::error(2, format!("{error}\n")),
        };
        tracing::info!(request = id, program = command.program(), code = reply.code, "command");
        // No lock is held here: `run` returned, and its guard with it.
        io.stdout.write_all(reply.stdout.as_bytes()).await?;
        io.stderr.write_all(reply.stderr.as_bytes()).await?;
        Ok(ExitStatus::code(reply.code))
    }
    // ANCHOR_END: exec
}

/// Compares secrets without an early exit on the first differing byte
/// (`subtle`, whose comparison the optimizer cannot turn back into one).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Who runs a command: what the exec handler extracted.
struct Caller<'a> {
    account: &'a Account,
    factors: &'a Factors,
    peer: PeerAddr,
    request: u64,
}

/// A command's output and exit code.
struct Reply {
    stdout: String,
    stderr: String,
    code: u32,
}

impl Reply {
    fn ok(stdout: String) -> Self {
        Reply { stdout, stderr: String::new(), code: 0 }
    }

    fn error(code: u32, stderr: String) -> Self {
        Reply { stdout: String::new(), stderr, code }
    }
}

const USAGE: &str = "usage: get KEY | set KEY VALUE | del KEY | list | whoami | stats\n";

// ANCHOR: commands
impl Store {
    /// Runs one command line, split into words by `Command::argv`. A plain
    /// `fn`, not `async`: a `MutexGuard` taken here cannot be held across an
    /// `.await`, and is released before the handler writes the reply.
    fn run(&self, caller: &Caller<'_>, argv: &[String]) -> Reply {
        let served = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        let account = caller.account;
        account.commands.fetch_add(1, Ordering::Relaxed);
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["get", key] => match self.values().get(*key) {
                Some(value) => Reply::ok(format!("{value}\n")),
                None => Reply::error(1, format!("no such key: {key}\n")),
            },
            ["list"] => Reply::ok(self.values().iter().map(|(k, v)| format!("{k}={v}\n")).collect()),
            [command @ ("set" | "del"), ..] if account.role != Role::Admin => Reply::error(
                1,
                format!("permission denied: `{command}` needs the admin role, and {} is a {}\n", account.name, account.role),
            ),
            ["set", key, value] => {
                self.values().insert((*key).to_owned(), (*value).to_owned());
                Reply::ok(format!("{key} = {value}\n"))
            }
            ["del", key] => match self.values().remove(*key) {
                Some(_) => Reply::ok(format!("deleted {key}\n")),
                None => Reply::error(1, format!("no such key: {key}\n")),
            },
            ["whoami"] => {
                let methods: Vec<&str> = caller.factors.as_slice().iter().map(|m| m.as_str()).collect();
                Reply::ok(format!(
                    "{} ({}), logged in with {} from {}, request {}\n",
                    account.name,
                    account.role,
                    methods.join("+"),
                    caller.peer,
                    caller.request
                ))
            }
            ["stats"] => Reply::ok(format!("commands served: {served}\nkeys stored: {}\n", self.values().len())),
            _ => Reply::error(2, USAGE.to_owned()),
        }
    }
}
// ANCHOR_END: commands

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), ssh_framework::Error> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:2222".to_owned());
    let Ok(address) = address.parse::<SocketAddr>() else {
        eprintln!("usage: example-state [ADDRESS:PORT]   (default 127.0.0.1:2222)");
        std::process::exit(2);
    };
    let server = Server::builder()
        .handlers(Store::new())
        .layer(RequestIdLayer::default())
        // Runs once per connection, after its last handler, in the
        // connection's span (which logs the peer and user): the account the
        // login attached is still there.
        .on_disconnect(|connection| match connection.extension::<Account>() {
            Some(account) => {
                let commands = account.commands.load(Ordering::Relaxed);
                tracing::info!(role = %account.role, commands, "{} left", account.name);
            }
            None => tracing::info!("left without logging in"),
        })
        .listen(address)
        .host_key_file("state_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {address}; try: ssh -p {} alice@{} set color blue (password alice-pw)", address.port(), address.ip());
    // Serves until Ctrl-C or SIGTERM, then lets running commands finish.
    server.run().await
}
// ANCHOR_END: main
// ANCHOR_END: all
