//! [`AccessControlLayer`]: which user or key may run which command and subsystem.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use russh::keys::HashAlg;
use tower::{Layer, Service};
use wildmatch::WildMatch;

use super::{Described, SessionKinds};
use crate::request::{Request, RequestKind, Response};

/// Applies [`AccessControl`]: rules saying which user or key may run which
/// command and subsystem (and, if guarded, the shell). Deny by default.
///
/// The layer guards exec and subsystem requests unless told otherwise
/// ([`guard`](AccessControlLayer::guard)); other requests pass through. A
/// guarded request is checked against the rules in the order they were
/// added: the first rule whose user (or key) and kind match decides, allow
/// or deny; no rule matching refuses. A refusal is logged at `info` with the
/// rule that matched, or `no rule`, and the client's request fails (`ssh`
/// prints "exec request failed on channel 0" and exits 255).
///
/// Commands match by program name: the first word of the command line
/// ([`Command::program`](crate::Command::program)), against glob patterns
/// (`*`, `?`, `[a-z]`). That is what `#[exec("name")]` routes on; a handler
/// that hands the whole line to a shell would run more than its first word,
/// so give such a handler parsed arguments ([`Command::argv`](crate::Command::argv)) instead.
///
/// ```no_run
/// use ssh_framework::middleware::{AccessControlLayer, Rule};
/// # struct App;
/// # #[ssh_framework::server] impl App {}
/// let builder = ssh_framework::Server::builder().handlers(App).layer(
///     AccessControlLayer::new()
///         .deny(Rule::user("guest").exec("git-receive-pack"))
///         .allow(Rule::user("*").exec("git-*"))
///         .allow(Rule::user("alice").subsystem("sftp"))
///         .allow(Rule::key("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").exec("backup")),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct AccessControlLayer {
    rules: Arc<Vec<(Effect, Rule)>>,
    guarded: SessionKinds,
}

/// Whether a matching rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

impl AccessControlLayer {
    /// No rules, guarding exec and subsystem: every exec and subsystem is refused until a rule allows it.
    pub fn new() -> Self {
        AccessControlLayer { rules: Arc::new(Vec::new()), guarded: SessionKinds::EXEC | SessionKinds::SUBSYSTEM }
    }

    /// Adds a rule that allows what it matches.
    pub fn allow(mut self, rule: Rule) -> Self {
        Arc::make_mut(&mut self.rules).push((Effect::Allow, rule));
        self
    }

    /// Adds a rule that denies what it matches (put it before a broader `allow`).
    pub fn deny(mut self, rule: Rule) -> Self {
        Arc::make_mut(&mut self.rules).push((Effect::Deny, rule));
        self
    }

    /// Which requests the rules apply to (default exec and subsystem); the others pass through.
    pub fn guard(mut self, kinds: SessionKinds) -> Self {
        self.guarded = kinds;
        self
    }

    /// The first rule matching `request`, with its position; `None` if none does.
    fn decide(&self, request: &Request) -> Option<(usize, Effect, &Rule)> {
        // Computed only when a rule names a key, and once per request.
        let mut fingerprint = None;
        self.rules.iter().enumerate().find_map(|(index, (effect, rule))| {
            let who = match &rule.who {
                Who::User(pattern) => request.connection().user().is_some_and(|user| pattern.matches(user)),
                Who::Key(wanted) => {
                    let key = fingerprint.get_or_insert_with(|| {
                        request.connection().public_key().map(|key| key.fingerprint(HashAlg::Sha256).to_string())
                    });
                    key.as_deref() == Some(wanted.as_str())
                }
            };
            (who && rule.covers(request.kind())).then_some((index, *effect, rule))
        })
    }
}

impl Default for AccessControlLayer {
    fn default() -> Self {
        AccessControlLayer::new()
    }
}

impl<S> Layer<S> for AccessControlLayer {
    type Service = AccessControl<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessControl { inner, layer: self.clone() }
    }
}

/// Who and what an access rule names: built with [`Rule::user`] or
/// [`Rule::key`], then the commands, subsystems and shell it covers.
#[derive(Clone)]
pub struct Rule {
    who: Who,
    exec: Vec<Pattern>,
    subsystem: Vec<Pattern>,
    shell: bool,
}

#[derive(Clone)]
enum Who {
    User(Pattern),
    Key(String),
}

/// A glob pattern and its text (for logs).
#[derive(Clone)]
struct Pattern {
    text: String,
    glob: WildMatch,
}

impl Pattern {
    fn new(text: &str) -> Self {
        Pattern { text: text.to_owned(), glob: WildMatch::new(text) }
    }

    fn matches(&self, text: &str) -> bool {
        self.glob.matches(text)
    }
}

impl Rule {
    /// The users whose name matches `pattern` (a glob: `alice`, `ops-*`, `*`).
    pub fn user(pattern: &str) -> Rule {
        Rule::for_who(Who::User(Pattern::new(pattern)))
    }

    /// The logins made with the key whose SHA-256 fingerprint is
    /// `fingerprint`, as `ssh-keygen -lf` prints it (`SHA256:...`). A
    /// certificate login counts as a login with the certified key.
    pub fn key(fingerprint: &str) -> Rule {
        Rule::for_who(Who::Key(fingerprint.trim().to_owned()))
    }

    fn for_who(who: Who) -> Rule {
        Rule { who, exec: Vec::new(), subsystem: Vec::new(), shell: false }
    }

    /// Covers exec requests whose program name (first word) matches `pattern` (a glob).
    pub fn exec(mut self, pattern: &str) -> Rule {
        self.exec.push(Pattern::new(pattern));
        self
    }

    /// Covers subsystem requests whose name matches `pattern` (a glob).
    pub fn subsystem(mut self, pattern: &str) -> Rule {
        self.subsystem.push(Pattern::new(pattern));
        self
    }

    /// Covers shell requests (checked only when the layer guards the shell).
    pub fn shell(mut self) -> Rule {
        self.shell = true;
        self
    }

    fn covers(&self, kind: &RequestKind) -> bool {
        match kind {
            RequestKind::Shell => self.shell,
            RequestKind::Exec(command) => self.exec.iter().any(|p| p.matches(command.program())),
            RequestKind::Subsystem(name) => self.subsystem.iter().any(|p| p.matches(name)),
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    /// `user alice: exec git-*, subsystem sftp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.who {
            Who::User(pattern) => write!(f, "user {}:", pattern.text)?,
            Who::Key(fingerprint) => write!(f, "key {fingerprint}:")?,
        }
        let mut first = true;
        let mut item = |f: &mut fmt::Formatter<'_>, what: &str, text: &str| {
            let sep = if first { " " } else { ", " };
            first = false;
            write!(f, "{sep}{what}{text}")
        };
        if self.shell {
            item(f, "shell", "")?;
        }
        for pattern in &self.exec {
            item(f, "exec ", &pattern.text)?;
        }
        for pattern in &self.subsystem {
            item(f, "subsystem ", &pattern.text)?;
        }
        if first {
            f.write_str(" nothing")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}

/// Allows or refuses guarded requests by the rules; see [`AccessControlLayer`].
#[derive(Debug, Clone)]
pub struct AccessControl<S> {
    inner: S,
    layer: AccessControlLayer,
}

impl<S> AccessControl<S> {
    inner_service_accessors!();
}

impl<S> Service<Request> for AccessControl<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !self.layer.guarded.matches(request.kind()) {
            return Box::pin(self.inner.call(request));
        }
        let decision = self.layer.decide(&request);
        if let Some((index, Effect::Allow, rule)) = decision {
            tracing::debug!(rule = %format_args!("#{} allow {rule}", index + 1), "allowed by access control");
            return Box::pin(self.inner.call(request));
        }
        let rule = match decision {
            Some((index, _, rule)) => format!("#{} deny {rule}", index + 1),
            None => "no rule".to_owned(),
        };
        let Described { user, kind, command, subsystem } = Described::new(&request);
        tracing::info!(user, kind, command, subsystem, rule, "refused by access control");
        Box::pin(async { Ok(Response::Reject) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Command;

    #[test]
    fn a_rule_covers_commands_by_program_name() {
        let rule = Rule::user("alice").exec("git-*").subsystem("sftp");
        assert!(rule.covers(&RequestKind::Exec(Command::new(b"git-upload-pack '/x.git'"))));
        assert!(!rule.covers(&RequestKind::Exec(Command::new(b"rm git-upload-pack"))));
        assert!(rule.covers(&RequestKind::Subsystem("sftp".into())));
        assert!(!rule.covers(&RequestKind::Shell));
        assert_eq!(rule.to_string(), "user alice: exec git-*, subsystem sftp");
        assert_eq!(Rule::key("SHA256:x").shell().to_string(), "key SHA256:x: shell");
    }
}
