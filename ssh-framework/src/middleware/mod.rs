//! Ready `tower` layers for app servers: what most apps put around their
//! handlers, each a [`Layer`](tower::Layer) over the [`Stack`](crate::Stack)
//! added with [`ServerBuilder::layer`](crate::ServerBuilder::layer).
//!
//! | layer | does |
//! |---|---|
//! | [`CatchPanicLayer`] | a shell, exec or subsystem body that panics tells the client (a line on stderr, exit status 70) and is logged at `error` |
//! | [`RequirePtyLayer`] | a shell or exec without a pty is answered with "this app needs a terminal" and exit status 1 instead of running the handler |
//! | [`AccessControlLayer`] | which user or key may run which command (by program name) and subsystem; deny by default |
//! | [`MotdLayer`] | a message written to the client's stdout before the handler runs, per user |
//!
//! Request logging with timing is [`TraceLayer`](crate::trace::TraceLayer):
//! it logs each decision with its latency, and when an accepted shell, exec
//! or subsystem ends, who ran what, how it ended and for how long. tower's own
//! layers fit the stack as they are: `TimeoutLayer` bounds each decision,
//! `ConcurrencyLimitLayer` the decisions in flight.
//!
//! Layers run outermost first: the last one added sees a request first.
//!
//! ```no_run
//! use ssh_framework::middleware::{AccessControlLayer, CatchPanicLayer, MotdLayer, RequirePtyLayer, Rule};
//! # struct App;
//! # #[ssh_framework::server] impl App {}
//!
//! let builder = ssh_framework::Server::builder()
//!     .handlers(App)
//!     .layer(RequirePtyLayer::new())
//!     .layer(MotdLayer::text("Welcome!\n"))
//!     .layer(CatchPanicLayer::new())
//!     .layer(AccessControlLayer::new().allow(Rule::user("alice").exec("git-*").subsystem("sftp")))
//!     .layer(ssh_framework::trace::TraceLayer::new());
//! ```

mod access;
mod catch_panic;
mod motd;
mod require_pty;

pub use self::access::{AccessControl, AccessControlLayer, Rule};
pub use self::catch_panic::{CatchPanic, CatchPanicLayer};
pub use self::motd::{Motd, MotdLayer};
pub use self::require_pty::{RequirePty, RequirePtyLayer};

use std::fmt;
use std::ops::BitOr;

use tokio::io::AsyncWriteExt;

use crate::channel::Output;
use crate::request::{Request, RequestKind};

/// Which session requests a layer applies to: any union of
/// [`SHELL`](SessionKinds::SHELL), [`EXEC`](SessionKinds::EXEC) and
/// [`SUBSYSTEM`](SessionKinds::SUBSYSTEM), joined with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKinds(u8);

impl SessionKinds {
    /// None of them.
    pub const NONE: SessionKinds = SessionKinds(0);
    /// `shell` requests.
    pub const SHELL: SessionKinds = SessionKinds(1);
    /// `exec` requests.
    pub const EXEC: SessionKinds = SessionKinds(2);
    /// `subsystem` requests.
    pub const SUBSYSTEM: SessionKinds = SessionKinds(4);
    /// All three.
    pub const ALL: SessionKinds = SessionKinds(7);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: SessionKinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// The kind of `request` if it is a shell, exec or subsystem request and in `self`.
    fn matches(self, request: &RequestKind) -> bool {
        SessionKinds::of(request).is_some_and(|kind| self.contains(kind))
    }

    /// The kind of a shell, exec or subsystem request.
    fn of(request: &RequestKind) -> Option<SessionKinds> {
        match request {
            RequestKind::Shell => Some(SessionKinds::SHELL),
            RequestKind::Exec(_) => Some(SessionKinds::EXEC),
            RequestKind::Subsystem(_) => Some(SessionKinds::SUBSYSTEM),
            _ => None,
        }
    }
}

impl BitOr for SessionKinds {
    type Output = SessionKinds;

    fn bitor(self, other: SessionKinds) -> SessionKinds {
        SessionKinds(self.0 | other.0)
    }
}

impl fmt::Debug for SessionKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [(SessionKinds::SHELL, "SHELL"), (SessionKinds::EXEC, "EXEC"), (SessionKinds::SUBSYSTEM, "SUBSYSTEM")];
        let mut set = f.debug_set();
        for (kind, name) in names {
            if self.contains(kind) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// What a log line says about a session request: the user and, for exec and
/// subsystem, the command line or subsystem name.
#[derive(Debug, Clone)]
struct Described {
    user: String,
    kind: &'static str,
    command: Option<String>,
    subsystem: Option<String>,
}

impl Described {
    fn new(request: &Request) -> Self {
        let (command, subsystem) = match request.kind() {
            RequestKind::Exec(command) => (Some(command.as_str().to_owned()), None),
            RequestKind::Subsystem(name) => (None, Some(name.clone())),
            _ => (None, None),
        };
        Described {
            user: request.connection().user().unwrap_or_default().to_owned(),
            kind: request.kind().name(),
            command,
            subsystem,
        }
    }
}

/// `text` as a terminal shows it: on a pty the client's terminal is raw, so
/// a lone `\n` becomes `\r\n`.
fn for_terminal(text: &str, pty: bool) -> Vec<u8> {
    if !pty {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len() + 8);
    let mut previous = 0;
    for &byte in text.as_bytes() {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// Writes `text` to the client on `out` (stdout or stderr) and flushes it.
/// A client that is gone already reads nothing either way, so errors are
/// ignored: the exit status, or the handler, comes next regardless.
async fn tell(out: &mut Output, text: &[u8]) {
    let _ = out.write_all(text).await;
    let _ = out.flush().await;
}

/// Whether the session of `request` has a pty.
fn has_pty(request: &Request) -> bool {
    request.session().is_some_and(|session| session.pty.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_kinds_combine_and_contain() {
        let kinds = SessionKinds::SHELL | SessionKinds::EXEC;
        assert!(kinds.contains(SessionKinds::EXEC) && !kinds.contains(SessionKinds::SUBSYSTEM));
        assert!(SessionKinds::ALL.contains(kinds));
        assert_eq!(format!("{kinds:?}"), "{SHELL, EXEC}");
    }

    #[test]
    fn a_terminal_gets_carriage_returns_once() {
        assert_eq!(for_terminal("a\nb\r\nc", true), b"a\r\nb\r\nc");
        assert_eq!(for_terminal("a\nb", false), b"a\nb");
    }
}
