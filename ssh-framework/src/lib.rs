//! A declarative SSH server framework: annotate handler methods, get a hardened server.
//!
//! # A tour
//!
//! Put [`#[server]`](macro@server) on an `impl` block and mark the methods that
//! decide: authentication (`#[auth(...)]`), session channels
//! (`#[channel(session)]`), and what runs on them (`#[shell]`, `#[exec]`,
//! `#[subsystem]`, plus `#[pty]`, `#[env]`, `#[window_change]`, `#[signal]`).
//! Forwarding has its own: `#[channel(direct_tcpip)]` and
//! `#[channel(direct_streamlocal)]` for `ssh -L`, `#[tcpip_forward]` and
//! `#[streamlocal_forward]` (and their cancels) for `ssh -R`, `#[x11]` and
//! `#[agent]` (see [`forward`]). Whatever no handler allows is refused.
//!
//! ```no_run
//! use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};
//! use tokio::io::AsyncWriteExt;
//!
//! struct App;
//!
//! #[ssh_framework::server]
//! impl App {
//!     #[auth(password)]
//!     async fn login(&self, user: &str, password: &str) -> Auth {
//!         Auth::from_bool(user == "demo" && password == "hunter2")
//!     }
//!
//!     #[channel(session)]
//!     async fn session(&self) -> bool {
//!         true
//!     }
//!
//!     #[exec]
//!     async fn exec(&self, command: Command, mut io: ChannelIo) -> ExitStatus {
//!         let _ = io.stdout.write_all(format!("you ran {command}\n").as_bytes()).await;
//!         ExitStatus::SUCCESS
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), ssh_framework::Error> {
//!     Server::builder()
//!         .handlers(App)
//!         .listen("127.0.0.1:2222".parse().unwrap())
//!         .host_key_file("host_ed25519_key")
//!         .build()
//!         .await?
//!         .run()
//!         .await
//! }
//! ```
//!
//! # Decisions are `tower` requests
//!
//! Every decision (a new connection, each authentication attempt, each
//! channel open and channel request) is a [`Request`] passing through a
//! `tower::Service` stack whose innermost service is the [`Routes`] table the
//! macro fills. Add middleware with [`ServerBuilder::layer`]: `tower`'s
//! timeouts and limits, [`trace::TraceLayer`], the ready layers of
//! [`middleware`] (access control, panic recovery, require-a-pty, a message
//! of the day), or your own policy, which runs before any handler; a layer wraps a [`Stack`], and [`tower`] is re-exported
//! for writing one. A layer that refuses [`RequestKind::Connect`] drops the
//! connection before key exchange.
//!
//! # Handler arguments and state
//!
//! Authentication and `#[env]` handlers take fixed leading arguments (see each
//! attribute); after them, and for every other handler, arguments are
//! [extractors](extract): [`ChannelIo`], [`Command`], [`extract::User`],
//! [`extract::PeerAddr`], [`extract::Pty`], [`extract::Environment`],
//! [`Factors`], [`Prompter`], [`extract::Extension`] and more. The compiler
//! checks that each fits its handler's [kind](handler).
//!
//! State lives in three places: the handler type itself (one value, shared by
//! every connection: keep what changes behind a `Mutex` or an atomic), the
//! [`Connection`] (what an authentication handler attaches with
//! [`Connection::insert_extension`] is there for every later handler of that
//! connection), and the [`Request`] (what a layer inserts for the handler).
//!
//! # Architecture
//!
//! One exec request, from the socket to your handler and back:
//!
//! 1. **accept** (`server.rs`): [`Server::run`] accepts TCP connections and
//!    hands each to the per-connection **lifecycle** (`lifecycle/mod.rs`):
//!    the `Connect` decision (where the [`limit`] layers admit the connection
//!    and set its limits), the russh handshake, login grace, graceful
//!    shutdown, the close hooks and the disconnect hook.
//! 2. **connection** (`lifecycle/handler.rs`): russh calls the connection's
//!    handler, a thin adapter over its parts: authentication
//!    (`lifecycle/auth.rs`), the session-channel table
//!    (`lifecycle/sessions.rs`) and forwarding (`forward/`). Every decision
//!    runs inside the connection's tracing span.
//! 3. **request** ([`request`]): each decision becomes a [`Request`] carrying
//!    its [`RequestKind`], the [`Connection`], the channel's state and
//!    extensions.
//! 4. **stack** ([`Stack`]): the request passes through the `tower` layers
//!    added with [`ServerBuilder::layer`], outermost first.
//! 5. **routes** ([`Routes`]): the innermost service finds the handler the
//!    macro registered for the request's kind (none: refused).
//! 6. **handler** ([`handler`]): generated code builds each argument with its
//!    [extractor](extract), calls your method and converts its return value
//!    with [`handler::IntoResponse`].
//! 7. **channel stream** ([`channel`](mod@channel)): an accepted shell, exec or subsystem
//!    body runs on a task of its own with its [`ChannelIo`]; when it returns,
//!    the framework sends exit-status, EOF and close.
//!
//! # Security defaults
//!
//! OpenSSH's: 6 failed attempts then disconnect, 120 s to log in (the
//! handshake included), 10 sessions per connection, and a 1 s delay before
//! answering a wrong password. One differs: `MaxStartups` is `100:30:1000`
//! rather than `10:30:100`, because an unauthenticated connection costs a task
//! and about 50 KiB here, not a process (see [`limit::MaxStartups`]). Each
//! protection is a `tower` layer in [`limit`], installed by default and
//! replaceable or removable with [`ServerBuilder::limit`] and
//! [`ServerBuilder::without_limit`]. Public keys reach a handler only after
//! the client proved possession with a signature.
//!
//! # Algorithms
//!
//! Key exchange offers the post-quantum hybrid `mlkem768x25519-sha256` first
//! and strict key exchange (`kex-strict-s-v00@openssh.com`, the Terrapin
//! countermeasure); ciphers are ChaCha20-Poly1305, AES-GCM and AES-CTR (no
//! CBC); MACs are HMAC-SHA2 (no SHA-1, no MD5); compression is `none` or
//! `zlib@openssh.com`, which starts only after authentication (RFC 4253's
//! `zlib` would decompress unauthenticated input, and is not offered).
//! `ssh-audit` 3.9 reports no failure (CI runs it against mini-sshd) and
//! these warnings, each for an algorithm OpenSSH 9's sshd also offers by
//! default and kept so that every client sshd admits is admitted here:
//!
//! - `curve25519-sha256`, `curve25519-sha256@libssh.org` and the
//!   Diffie-Hellman exchanges (group exchange, groups 14, 16 and 18; not 15
//!   or 17, which sshd does not offer): "no protection against post-quantum
//!   attacks".
//!   Clients older than OpenSSH 9.9 (and most libraries) have no ML-KEM;
//!   clients that do get it first.
//! - `diffie-hellman-group14-sha256`: "2048-bit modulus, 112-bit strength",
//!   the one group that some embedded and older clients implement.
//! - `hmac-sha2-256`, `hmac-sha2-512`: "encrypt-and-MAC mode"; chosen only by
//!   clients that offer neither an AEAD cipher nor an EtM MAC, which are
//!   offered first.

#![cfg_attr(docsrs, feature(doc_cfg))]

/// The `get_ref`, `get_mut` and `into_inner` of a middleware service whose
/// wrapped service is its `inner` field, as tower's middleware have them.
macro_rules! inner_service_accessors {
    () => {
        /// The wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The wrapped service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub mod auth;
pub mod authorized_keys;
pub mod channel;
mod connection;
mod error;
mod event_queue;
mod extensions;
mod idle;
pub mod extract;
pub mod forward;
pub mod handler;
mod lifecycle;
pub mod limit;
pub mod middleware;
mod limits;
mod open_files;
mod quickack;
pub mod request;
mod restrictions;
pub mod revoked;
mod routes;
pub mod scp;
mod server;
pub mod sftp;
mod stack;
mod threads;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod trace;

pub use crate::auth::{Auth, Factors, Method, MethodSet, Prompt, Prompter};
pub use crate::channel::{ChannelEvent, ChannelIo, Command, ExitStatus, PtyRequest, Signal, WindowSize};
pub use crate::connection::Connection;
pub use crate::error::{BoxError, ConnectionError, ConnectionErrorKind, Error, ErrorKind};
pub use crate::extensions::Extensions;
pub use crate::request::{Request, RequestKind, Response};
pub use crate::restrictions::{OriginalCommand, Restrictions, UnsupportedCertificate};
pub use crate::routes::{Handlers, RouteConflict, Routes};
pub use crate::server::{Server, ServerBuilder, ShutdownHandle, load_or_generate_host_key};
pub use crate::stack::Stack;

/// `tower`, re-exported for writing layers ([`ServerBuilder::layer`]) with the version this crate uses.
pub use tower;

/// Re-exported key types: [`PublicKey`](keys::PublicKey) for publickey handlers,
/// [`Certificate`](keys::Certificate) for certificate handlers and host
/// certificates, [`PrivateKey`](keys::PrivateKey) for host keys.
pub mod keys {
    pub use russh::keys::{Certificate, PrivateKey, PublicKey, ssh_key};
}

pub use ssh_framework_macros::{
    agent, allowed_auths, auth, banner, cancel_streamlocal_forward, cancel_tcpip_forward, channel, exec, global_request,
    pty, server, shell, signal, streamlocal_forward, subsystem, tcpip_forward, window_change, x11,
};

/// What generated code names; not a public API.
#[doc(hidden)]
#[path = "codegen.rs"]
pub mod __private;
