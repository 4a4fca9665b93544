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
//! before any handler. A layer that refuses [`RequestKind::Connect`] drops the
//! connection before key exchange.
//!
//! # Handler arguments
//!
//! Authentication and `#[env]` handlers take fixed leading arguments (see each
//! attribute); after them, and for every other handler, arguments are
//! [extractors](extract): [`ChannelIo`], [`Command`], [`extract::User`],
//! [`extract::PeerAddr`], [`extract::Pty`], [`extract::Environment`],
//! [`Factors`], [`Prompter`] and more.
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
mod quickack;
pub mod extract;
pub mod forward;
pub mod request;
pub mod routes;
pub mod scp;
mod server;
pub mod sftp;
pub mod trace;

pub use crate::auth::{Auth, Factors, Method, MethodSet, Prompt, Prompter};
pub use crate::channel::{ChannelEvent, ChannelIo, Command, ExitStatus, PtyRequest, Signal, WindowSize};
pub use crate::request::{Connection, Request, RequestKind, Response};
pub use crate::routes::{Handlers, RouteConflict, Routes};
pub use crate::server::{
    BoxError, Error, MaxStartups, Server, ServerBuilder, ShutdownHandle, load_or_generate_host_key,
};

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
    pub use crate::auth::{IntoAuth, IntoBanner};
    pub use crate::channel::{IntoDecision, IntoExitStatus};
    pub use crate::extract::{FromRequest, Rejection};
    pub use crate::forward::IntoForward;
    pub use crate::request::{Request, RequestKind, Response};
    pub use crate::routes::{Handlers, Route, RouteConflict, Routes, Slot};
    pub use crate::{Auth, ExitStatus, MethodSet};
    pub use futures_util::future::BoxFuture;
    pub use std::boxed::Box;
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::string::String;
    pub use std::sync::Arc;
    pub use tracing;

    /// Logs an extractor failure and refuses the request.
    pub fn rejected(handler: &'static str, rejection: Rejection) -> Response {
        tracing::warn!(handler, %rejection, "handler argument unavailable; request refused");
        Response::Reject
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
