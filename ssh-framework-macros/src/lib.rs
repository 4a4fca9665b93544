//! Procedural macros of [ssh-framework](https://docs.rs/ssh-framework). Use them
//! through the `ssh_framework` crate, which re-exports them.

mod server;

use proc_macro::TokenStream;

/// Turns the annotated methods of an `impl` block into SSH request handlers.
///
/// The macro strips the handler attributes, keeps the methods as written, and
/// implements `ssh_framework::Handlers` for the type so it can be registered
/// with `ServerBuilder::handlers`. Several types may be registered on one
/// server; two handlers for the same decision in one block are a compile
/// error, across blocks a `RouteConflict` when the server is built.
///
/// ```
/// use ssh_framework::{Auth, ChannelIo, Command, ExitStatus};
///
/// struct App;
///
/// #[ssh_framework::server]
/// impl App {
///     #[auth(password)]
///     async fn login(&self, user: &str, password: &str) -> Auth {
///         Auth::from_bool(user == "demo" && password == "secret")
///     }
///
///     #[channel(session)]
///     async fn session(&self) -> bool {
///         true
///     }
///
///     #[exec("hello")]
///     async fn hello(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
///         ExitStatus::SUCCESS
///     }
/// }
/// ```
///
/// # Grammar
///
/// ```text
/// #[server] impl Type { (handler | other item)* }
/// handler  := attribute "async fn" name "(&self" fixed-args ("," extractor)* ")" "->" return
/// attribute := #[auth(none | password | publickey | keyboard_interactive)]
///            | #[allowed_auths] | #[banner]
///            | #[channel(session)] | #[pty] | #[env] | #[window_change] | #[signal]
///            | #[shell] | #[exec] | #[exec("program")] | #[subsystem("name")]
/// ```
///
/// # Handlers
///
/// | attribute | fixed arguments | returns | decides |
/// |---|---|---|---|
/// | `#[auth(none)]` | `user: &str` | `Auth` | a login without credentials |
/// | `#[auth(password)]` | `user: &str, password: &str` | `Auth` | a password |
/// | `#[auth(publickey)]` | `user: &str, key: &PublicKey` | `Auth` | a key whose signature was verified |
/// | `#[auth(keyboard_interactive)]` | `user: &str` (take a `&mut Prompter`) | `Auth` | prompts, any number of rounds |
/// | `#[allowed_auths]` | `user: &str` | `MethodSet` | the methods listed to this user |
/// | `#[banner]` | none | `Option<String>` or `String` | the pre-auth banner |
/// | `#[channel(session)]` | none | `bool` | opening a session channel |
/// | `#[pty]` | none (take `&PtyRequest`) | `bool` | a pseudo-terminal |
/// | `#[env]` | `name: &str, value: &str` | `bool` | one environment variable |
/// | `#[window_change]` | none (take `WindowSize`) | `bool` | delivering a resize to the running body |
/// | `#[signal]` | none (take `Signal`) | `bool` | delivering a signal to the running body |
/// | `#[shell]` | none (take `ChannelIo`) | `ExitStatus` | runs the shell |
/// | `#[exec]`, `#[exec("prog")]` | none (take `Command`, `ChannelIo`) | `ExitStatus` | runs a command; the named form routes on the first word |
/// | `#[subsystem("name")]` | none (take `ChannelIo`) | `ExitStatus` | runs a subsystem |
///
/// Arguments after the fixed ones are extractors (`ssh_framework::extract`);
/// `&T` and `&mut T` extract `T` and lend it. `bool` answers may also be
/// `Result<bool, E>`, `Auth` answers `bool` or `Result<Auth, E>`, and
/// `ExitStatus` answers `u32`, `()` or `Result<_, E>`; an `Err` is logged and
/// refuses (exit code 1 for bodies).
///
/// Requests that no handler allows are refused.
#[proc_macro_attribute]
pub fn server(attr: TokenStream, item: TokenStream) -> TokenStream {
    server::server(attr.into(), item.into()).into()
}
