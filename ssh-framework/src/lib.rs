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
//! timeouts and limits, [`trace::TraceLayer`], or your own policy, which runs
//! before any handler; a layer wraps a [`Stack`], and [`tower`] is re-exported
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
//!    admission under `MaxStartups`, the `Connect` decision, the russh
//!    handshake, login grace, graceful shutdown, the disconnect hook.
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
//! OpenSSH's: 6 failed attempts then disconnect, 120 s to log in, 10 sessions
//! per connection, `MaxStartups 10:30:100`, and a 1 s delay before answering a
//! wrong password. Public keys reach a handler only after the client proved
//! possession with a signature.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
pub mod channel;
mod connection;
mod error;
mod extensions;
pub mod extract;
pub mod forward;
pub mod handler;
mod lifecycle;
mod limits;
mod quickack;
pub mod request;
mod routes;
pub mod scp;
mod server;
pub mod sftp;
mod stack;
pub mod trace;

pub use crate::auth::{Auth, Factors, Method, MethodSet, Prompt, Prompter};
pub use crate::channel::{ChannelEvent, ChannelIo, Command, ExitStatus, PtyRequest, Signal, WindowSize};
pub use crate::connection::Connection;
pub use crate::error::{BoxError, ConnectionError, ConnectionErrorKind, Error, ErrorKind};
pub use crate::extensions::Extensions;
pub use crate::limits::MaxStartups;
pub use crate::request::{Request, RequestKind, Response};
pub use crate::routes::{Handlers, RouteConflict, Routes};
pub use crate::server::{Server, ServerBuilder, ShutdownHandle, load_or_generate_host_key};
pub use crate::stack::Stack;

/// `tower`, re-exported for writing layers ([`ServerBuilder::layer`]) with the version this crate uses.
pub use tower;

/// Re-exported key types: [`PublicKey`](keys::PublicKey) for publickey handlers,
/// [`PrivateKey`](keys::PrivateKey) for host keys.
pub mod keys {
    pub use russh::keys::{PrivateKey, PublicKey, ssh_key};
}

pub use ssh_framework_macros::{
    agent, allowed_auths, auth, banner, cancel_streamlocal_forward, cancel_tcpip_forward, channel, exec, global_request,
    pty, server, shell, signal, streamlocal_forward, subsystem, tcpip_forward, window_change, x11,
};

/// What generated code names; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::marker::PhantomData;

    pub use crate::extract::{Consuming, FromRequest, Rejection, Repeatable};
    pub use crate::forward::Forward;
    pub use crate::handler::slot::Slot;
    pub use crate::handler::{self as kind, IntoResponse, Kind};
    pub use crate::request::{ChannelBody, Request, RequestKind, Response};
    pub use crate::routes::{AllowedAuthsRoute, BannerRoute, Handlers, Route, RouteConflict, Routes};
    pub use crate::{Auth, ExitStatus, MethodSet};
    pub use futures_util::future::BoxFuture;
    pub use std::boxed::Box;
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::string::String;
    pub use std::sync::Arc;
    pub use tracing;

    /// Registers the handler of a slot.
    pub fn register(routes: &mut Routes, slot: Slot, route: Route) -> Result<(), RouteConflict> {
        routes.slot(slot, route)
    }

    /// Registers an exec handler for one program name, or for any command.
    pub fn register_exec(routes: &mut Routes, program: Option<&str>, route: Route) -> Result<(), RouteConflict> {
        routes.exec(program, route)
    }

    /// Registers a subsystem handler.
    pub fn register_subsystem(routes: &mut Routes, name: &str, route: Route) -> Result<(), RouteConflict> {
        routes.subsystem(name, route)
    }

    /// Registers the `#[allowed_auths]` handler.
    pub fn register_allowed_auths(routes: &mut Routes, route: AllowedAuthsRoute) -> Result<(), RouteConflict> {
        routes.allowed_auths(route)
    }

    /// Registers the `#[banner]` handler.
    pub fn register_banner(routes: &mut Routes, route: BannerRoute) -> Result<(), RouteConflict> {
        routes.banner(route)
    }

    /// Logs an extractor failure and refuses the request.
    pub fn rejected(handler: &'static str, rejection: Rejection) -> Response {
        tracing::warn!(handler, %rejection, "handler argument unavailable; request refused");
        Response::Reject
    }

    /// Before any consuming extractor of a handler.
    #[derive(Debug)]
    pub struct Fresh;
    /// After its consuming extractor.
    #[derive(Debug)]
    pub struct Taken;

    /// Allows an argument in state `S`: any repeatable extractor, and a
    /// consuming one only if none came before.
    pub trait Then<S> {}

    impl<S> Then<S> for Repeatable {}

    impl Then<Fresh> for Consuming {}

    // Never satisfied: a second consuming extractor is reported with the
    // message of `OneConsumingExtractor`, at that argument.
    impl<S: OneConsumingExtractor> Then<S> for Consuming {}

    /// Implemented by nothing: a second consuming extractor in one handler.
    #[diagnostic::on_unimplemented(
        message = "a handler takes at most one consuming extractor, and an earlier argument already took the request's stream",
        label = "this argument consumes the request too",
        note = "`ChannelIo` and `Prompter` take a part out of the request, so each handler can have one of them, once; split a `ChannelIo` with `ChannelIo::split` to share it"
    )]
    pub trait OneConsumingExtractor {}

    /// The state after an argument; always defined, so that a refused
    /// argument is reported once, at itself, and not again at the next.
    pub trait Next<S> {
        /// The state after this argument.
        type After;
    }

    impl<S> Next<S> for Repeatable {
        type After = S;
    }

    impl<S> Next<S> for Consuming {
        type After = Taken;
    }

    /// The state after extracting a `T` in state `S`.
    pub type After<K, T, S> = PhantomData<<<T as FromRequest<K>>::Access as Next<S>>::After>;

    /// Builds one argument of a `K` handler; `S` tracks whether a consuming
    /// extractor already ran, so a second one fails to compile.
    pub fn extract<K, T, S>(request: &mut Request, _state: PhantomData<S>) -> (Result<T, Rejection>, After<K, T, S>)
    where
        K: Kind,
        T: FromRequest<K>,
        T::Access: Then<S> + Next<S>,
    {
        (T::from_request(request), PhantomData)
    }

    /// The state before a handler's first argument.
    pub fn fresh() -> PhantomData<Fresh> {
        PhantomData
    }

    /// The handler's future, required to be `Send` where the handler is called,
    /// so that a non-`Send` future is reported at the handler.
    pub fn assert_send<F: std::future::Future + Send>(future: F) -> F {
        future
    }

    /// A decision handler's answer as a response.
    pub fn decision(allowed: bool) -> Response {
        if allowed { Response::Accept } else { Response::Reject }
    }

    /// The user name of an authentication request (generated auth handlers borrow it).
    pub fn auth_user(request: &Request) -> String {
        request.kind().auth_user().unwrap_or_default().to_owned()
    }

    /// The password of a password request.
    pub fn password(request: &Request) -> String {
        match request.kind() {
            RequestKind::AuthPassword { password, .. } => password.expose().to_owned(),
            _ => String::new(),
        }
    }

    /// The verified key of a publickey request.
    pub fn public_key(request: &Request) -> Option<crate::keys::PublicKey> {
        match request.kind() {
            RequestKind::AuthPublicKey { key, .. } => Some(key.clone()),
            _ => None,
        }
    }

    /// The name and value of an env request.
    pub fn env(request: &Request) -> (String, String) {
        match request.kind() {
            RequestKind::Env { name, value } => (name.clone(), value.clone()),
            _ => (String::new(), String::new()),
        }
    }
}
