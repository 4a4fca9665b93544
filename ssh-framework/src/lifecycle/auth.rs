//! The authentication state machine of one connection.
//!
//! It keeps the record RFC 4252 asks a server to keep and russh does not: the
//! user name (and a reset when it changes, §5), the methods passed in a
//! multi-factor chain and the methods it may continue with, OpenSSH's failure
//! count (`MaxAuthTries`; the client's first `none` probe is free), a cap on
//! all requests, the keys already rejected (so probes for them get no PK_OK),
//! and the keyboard-interactive exchange running on its own task. Each
//! decision goes through the service stack inside the connection's span.

use std::collections::HashSet;
use std::sync::Arc;

use russh::keys::{Certificate, PublicKey};
use russh::server;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connection::Held;
use super::{Decider, HandlerError, Shared};
use crate::auth::{Auth, Factors, Method, MethodSet, PromptRound, Prompter};
use crate::extensions::Extensions;
use crate::request::{RequestKind, Response};
use crate::restrictions::Restrictions;

/// `set` as a failure lists it: `none` is never named (RFC 4252 §5.2).
fn advertised(mut set: MethodSet) -> MethodSet {
    set.remove(Method::None);
    set
}

/// Keyboard-interactive rounds one handler may ask before it is cut off.
const MAX_PROMPT_ROUNDS: usize = 16;

/// The record of one user's attempts; reset when the user name changes.
#[derive(Default)]
struct Record {
    user: Option<String>,
    factors: Factors,
    /// The key of a `publickey` factor that passed.
    key: Option<PublicKey>,
    /// After a partial success: the methods the chain continues with.
    next: Option<MethodSet>,
    rejected_keys: HashSet<PublicKey>,
}

/// A keyboard-interactive handler running on its own task, asking rounds.
struct KeyboardInteractive {
    rounds: mpsc::Receiver<PromptRound>,
    answer: Option<oneshot::Sender<Vec<String>>>,
    task: JoinHandle<Auth>,
    /// The connection's extensions before the handler ran, restored if it fails.
    before: Extensions,
}

impl Drop for KeyboardInteractive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection's authentication.
pub(crate) struct Authentication {
    shared: Arc<Shared>,
    decider: Decider,
    record: Record,
    requests: u32,
    none_probed: bool,
    kbd: Option<KeyboardInteractive>,
    /// The verified key of the `publickey` attempt being decided.
    attempt_key: Option<PublicKey>,
    /// The connection's extensions before the first authentication request.
    before_auth: Option<Extensions>,
    /// Held while unauthenticated; counts toward [`Startups`](crate::limit::Startups).
    startup_permit: Option<Held>,
    /// [`MaxAuthTries`](crate::limit::MaxAuthTries); `u32::MAX` when no limit is installed.
    max_auth_tries: u32,
    /// [`MaxAuthRequests`](crate::limit::MaxAuthRequests); likewise.
    max_auth_requests: u32,
    /// The method list russh holds: the last one given to it, which it sends
    /// by itself when it refuses a request without asking us (a signed
    /// `publickey` request whose key the probe check refused, a bad signature).
    held: MethodSet,
}

impl Authentication {
    pub(crate) fn new(shared: Arc<Shared>, decider: Decider, startup_permit: Option<Held>, limits: (Option<u32>, Option<u32>)) -> Self {
        let (max_auth_tries, max_auth_requests) = limits;
        Authentication {
            decider,
            record: Record::default(),
            requests: 0,
            none_probed: false,
            kbd: None,
            attempt_key: None,
            before_auth: None,
            startup_permit,
            max_auth_tries: max_auth_tries.unwrap_or(u32::MAX),
            max_auth_requests: max_auth_requests.unwrap_or(u32::MAX),
            held: advertised(shared.routes.methods()),
            shared,
        }
    }

    /// Starts an authentication request: resets the record when the user changes
    /// (RFC 4252 §5) and enforces the total request cap.
    fn begin(&mut self, user: &str) -> Result<(), HandlerError> {
        if self.record.user.as_deref() != Some(user) {
            let connection = self.decider.connection();
            match &self.before_auth {
                // What handlers attached for the previous user is not this
                // user's; what layers attached before authentication stays.
                Some(before) => connection.replace_extensions(before.clone()),
                None => self.before_auth = Some(connection.extensions()),
            }
            self.record = Record { user: Some(user.to_owned()), ..Record::default() };
        }
        self.requests += 1;
        if self.requests > self.max_auth_requests {
            tracing::warn!(parent: self.decider.span(), "too many authentication requests; disconnecting");
            return Err(HandlerError::TooManyAuthRequests);
        }
        Ok(())
    }

    async fn allowed(&self, user: &str) -> MethodSet {
        match self.record.next {
            Some(next) => next,
            None => self.shared.routes.allowed_methods(user).await,
        }
    }

    /// A failure listing `allowed`, which russh then holds.
    fn reject(&mut self, allowed: MethodSet, partial: bool) -> server::Auth {
        self.held = advertised(allowed);
        server::Auth::Reject { proceed_with_methods: Some(allowed.to_russh()), partial_success: partial }
    }

    /// Records a failure, disconnects once `max_auth_tries` is reached, and
    /// waits out the rejection delay for guessable secrets.
    async fn fail(&mut self, method: Method, allowed: MethodSet, started: Instant) -> server::Auth {
        // The client's first `none` probe (OpenSSH always sends one) is free, as in sshd.
        let counted = method != Method::None || self.none_probed;
        if method == Method::None {
            self.none_probed = true;
        }
        let span = self.decider.span();
        let failures = if counted {
            let failures = self.decider.connection().count_auth_failure();
            let user = self.record.user.as_deref().unwrap_or("");
            tracing::info!(parent: span, method = method.as_str(), user, failures, "authentication failed");
            failures
        } else {
            self.decider.connection().auth_failures()
        };
        if failures >= self.max_auth_tries {
            tracing::warn!(parent: span, "maximum authentication attempts exceeded; disconnecting");
            self.decider.disconnect(russh::Disconnect::NoMoreAuthMethodsAvailable, "Too many authentication failures");
        } else if matches!(method, Method::Password | Method::KeyboardInteractive) {
            tokio::time::sleep_until(started + self.shared.limits.rejection_delay).await;
        }
        self.reject(allowed, false)
    }

    /// Records `method` as passed (with its key, for `publickey`).
    fn pass(&mut self, method: Method) {
        self.record.factors.push(method);
        if method == Method::PublicKey {
            self.record.key = self.attempt_key.take();
        }
    }

    fn succeed(&mut self, method: Method, user: &str) -> server::Auth {
        self.pass(method);
        let connection = self.decider.connection();
        connection.set_authenticated(user, self.record.factors.clone(), self.record.key.clone());
        self.startup_permit = None;
        let span = self.decider.span();
        span.record("user", user);
        tracing::info!(parent: span, method = method.as_str(), user, "authenticated");
        server::Auth::Accept
    }

    /// Applies a handler's answer to the record; a rejected attempt's
    /// connection extensions are rolled back to `before`.
    async fn conclude(
        &mut self,
        method: Method,
        user: &str,
        allowed: MethodSet,
        answer: Auth,
        started: Instant,
        before: Extensions,
    ) -> server::Auth {
        match answer {
            Auth::Accept => self.succeed(method, user),
            Auth::Partial(next) => {
                let next = next.intersection(self.shared.routes.methods());
                if next.is_empty() {
                    tracing::warn!(parent: self.decider.span(), "partial success names no method with a handler; rejecting");
                    self.decider.connection().replace_extensions(before);
                    return self.fail(method, allowed, started).await;
                }
                self.pass(method);
                self.record.next = Some(next);
                tracing::info!(parent: self.decider.span(), method = method.as_str(), user, next = %next, "partial success");
                self.reject(next, true)
            }
            Auth::Reject => {
                self.decider.connection().replace_extensions(before);
                self.fail(method, allowed, started).await
            }
        }
    }

    fn auth_answer(response: Response) -> Auth {
        match response {
            Response::Auth(a) => a,
            Response::Accept => Auth::Accept,
            _ => Auth::Reject,
        }
    }

    /// The common path of `none`, `password` and verified `publickey` attempts.
    async fn attempt(&mut self, method: Method, user: &str, kind: RequestKind) -> Result<server::Auth, HandlerError> {
        self.attempt_restricted(method, user, kind, None).await
    }

    /// An attempt that, if it passes, also puts `restrictions` on the login
    /// (with those an earlier factor put on it).
    async fn attempt_restricted(
        &mut self,
        method: Method,
        user: &str,
        kind: RequestKind,
        restrictions: Option<Restrictions>,
    ) -> Result<server::Auth, HandlerError> {
        let started = Instant::now();
        self.begin(user)?;
        self.kbd = None;
        let allowed = self.allowed(user).await;
        if !allowed.contains(method) {
            return Ok(self.fail(method, allowed, started).await);
        }
        let before = self.decider.connection().extensions();
        if let Some(restrictions) = restrictions
            && !self.decider.connection().restrict(restrictions)
        {
            tracing::info!(parent: self.decider.span(), "two different forced commands; refused");
            return Ok(self.fail(method, allowed, started).await);
        }
        let request = self.decider.request(kind).with_factors(self.record.factors.clone());
        let answer = Self::auth_answer(self.decider.decide(request, self.decider.span()).await);
        Ok(self.conclude(method, user, allowed, answer, started, before).await)
    }

    pub(crate) async fn none(&mut self, user: &str) -> Result<server::Auth, HandlerError> {
        self.attempt(Method::None, user, RequestKind::AuthNone { user: user.to_owned() }).await
    }

    pub(crate) async fn password(&mut self, user: &str, password: &str) -> Result<server::Auth, HandlerError> {
        let kind = RequestKind::AuthPassword { user: user.to_owned(), password: crate::request::Secret::new(password) };
        self.attempt(Method::Password, user, kind).await
    }

    /// A probe proves nothing: no handler is called and nothing is recorded.
    /// Keys not yet rejected for this user get PK_OK so the client signs (and,
    /// with a certificate handler, rejected ones too: the probe of a
    /// certificate carries only its key).
    ///
    /// russh also asks this of a signed request that no probe preceded, and
    /// if refused here, sends the list it holds instead of ours. So a refusal
    /// stands only when that list is this user's; otherwise the request goes
    /// on to [`publickey`](Self::publickey), which refuses it with the right
    /// list (a probe costs the client one signature more).
    pub(crate) async fn publickey_offered(&mut self, user: &str, key: &PublicKey) -> Result<server::Auth, HandlerError> {
        let started = Instant::now();
        self.begin(user)?;
        let allowed = self.allowed(user).await;
        // A probe does not say whether the key comes inside a certificate: with a
        // certificate handler, a key refused on its own may still be certified.
        let rejected = self.record.rejected_keys.contains(key) && !self.shared.routes.takes_certificates();
        let refused = !allowed.contains(Method::PublicKey) || rejected;
        if refused && self.held == advertised(allowed) {
            return Ok(self.fail(Method::PublicKey, allowed, started).await);
        }
        Ok(server::Auth::Accept)
    }

    /// A signed request whose signature russh verified (a key already refused
    /// for this user stays refused).
    pub(crate) async fn publickey(&mut self, user: &str, key: &PublicKey) -> Result<server::Auth, HandlerError> {
        let kind = RequestKind::AuthPublicKey { user: user.to_owned(), key: key.clone() };
        // russh's probe and the signed request are one attempt: undo the probe's count.
        self.requests = self.requests.saturating_sub(1);
        if self.record.user.as_deref() == Some(user) && self.record.rejected_keys.contains(key) {
            let started = Instant::now();
            self.begin(user)?;
            let allowed = self.allowed(user).await;
            return Ok(self.fail(Method::PublicKey, allowed, started).await);
        }
        self.attempt_key = Some(key.clone());
        let result = self.attempt(Method::PublicKey, user, kind).await;
        self.attempt_key = None;
        let result = result?;
        if !matches!(result, server::Auth::Accept) && !self.record.factors.contains(Method::PublicKey) {
            self.record.rejected_keys.insert(key.clone());
        }
        Ok(result)
    }

    /// A signed request with an OpenSSH certificate, whose signature, own
    /// signature and validity window russh verified. The framework refuses
    /// what OpenSSH would before any handler: a host certificate, an unknown
    /// critical option, a `source-address` the peer is not in; then
    /// `#[auth(certificate)]` decides, and the certificate's restrictions
    /// travel with the login.
    pub(crate) async fn certificate(&mut self, user: &str, certificate: &Certificate) -> Result<server::Auth, HandlerError> {
        // russh's probe and the signed request are one attempt: undo the probe's count.
        self.requests = self.requests.saturating_sub(1);
        let span = self.decider.span().clone();
        let (key_id, serial) = (certificate.key_id(), certificate.serial());
        let checked = check_certificate(certificate, self.decider.connection().peer_addr().map(|p| p.ip()));
        let restrictions = match checked {
            Ok(restrictions) => restrictions,
            Err(reason) => {
                tracing::info!(parent: &span, key_id, serial, reason = %reason, "certificate refused");
                let started = Instant::now();
                self.begin(user)?;
                let allowed = self.allowed(user).await;
                return Ok(self.fail(Method::PublicKey, allowed, started).await);
            }
        };
        self.attempt_key = Some(PublicKey::new(certificate.public_key().clone(), ""));
        let kind = RequestKind::AuthCertificate { user: user.to_owned(), certificate: Box::new(certificate.clone()) };
        let result = self.attempt_restricted(Method::PublicKey, user, kind, Some(restrictions)).await;
        self.attempt_key = None;
        let result = result?;
        if matches!(result, server::Auth::Accept) {
            span.record("certificate", format!("{key_id} serial {serial}"));
        }
        tracing::info!(parent: &span, key_id, serial, accepted = matches!(result, server::Auth::Accept), "certificate decided");
        Ok(result)
    }

    /// One keyboard-interactive message: the start (`answers` is `None`) runs
    /// the handler on its own task; each set of answers feeds its prompter.
    pub(crate) async fn keyboard_interactive(
        &mut self,
        user: &str,
        submethods: &str,
        answers: Option<Vec<String>>,
    ) -> Result<server::Auth, HandlerError> {
        let started = Instant::now();
        match answers {
            None => {
                self.begin(user)?;
                self.kbd = None;
                let allowed = self.allowed(user).await;
                if !allowed.contains(Method::KeyboardInteractive) {
                    return Ok(self.fail(Method::KeyboardInteractive, allowed, started).await);
                }
                let (rounds_tx, rounds) = mpsc::channel(1);
                let kind = RequestKind::AuthKeyboardInteractive { user: user.to_owned(), submethods: submethods.to_owned() };
                let request = self
                    .decider
                    .request(kind)
                    .with_factors(self.record.factors.clone())
                    .with_prompter(Prompter::new(rounds_tx, MAX_PROMPT_ROUNDS));
                let before = self.decider.connection().extensions();
                let decision = self.decider.decide(request, self.decider.span());
                let task = tokio::spawn(async move { Self::auth_answer(decision.await) });
                self.kbd = Some(KeyboardInteractive { rounds, answer: None, task, before });
            }
            Some(answers) => match self.kbd.as_mut().and_then(|k| k.answer.take()) {
                Some(tx) => {
                    let _ = tx.send(answers);
                }
                None => self.kbd = None,
            },
        }
        Ok(self.keyboard_interactive_step(user, started).await)
    }

    async fn keyboard_interactive_step(&mut self, user: &str, started: Instant) -> server::Auth {
        let allowed = self.allowed(user).await;
        let Some(kbd) = self.kbd.as_mut() else {
            return self.fail(Method::KeyboardInteractive, allowed, started).await;
        };
        let round = tokio::select! {
            biased;
            round = kbd.rounds.recv() => round,
            answer = &mut kbd.task => {
                let answer = answer.unwrap_or(Auth::Reject);
                let before = self.kbd.take().map(|mut k| std::mem::take(&mut k.before)).unwrap_or_default();
                return self.conclude(Method::KeyboardInteractive, user, allowed, answer, started, before).await;
            }
        };
        match round {
            Some(round) => {
                kbd.answer = Some(round.answers);
                let prompts: Vec<(std::borrow::Cow<'static, str>, bool)> =
                    round.prompts.into_iter().map(|p| (p.text.into(), p.echo)).collect();
                server::Auth::Partial { name: round.name.into(), instructions: round.instructions.into(), prompts: prompts.into() }
            }
            None => {
                // The handler finished without another round: take its answer.
                let answer = (&mut kbd.task).await.unwrap_or(Auth::Reject);
                let before = self.kbd.take().map(|mut k| std::mem::take(&mut k.before)).unwrap_or_default();
                self.conclude(Method::KeyboardInteractive, user, allowed, answer, started, before).await
            }
        }
    }
}

/// What the framework checks of a user certificate before any handler, as
/// sshd does: its type, its critical options (`force-command` and
/// `source-address` only), and the peer against `source-address`. The
/// certificate's restrictions, when it passes.
fn check_certificate(certificate: &Certificate, peer: Option<std::net::IpAddr>) -> Result<Restrictions, String> {
    if certificate.cert_type() != russh::keys::ssh_key::certificate::CertType::User {
        return Err("not a user certificate".into());
    }
    let restrictions = Restrictions::from_certificate(certificate).map_err(|e| e.to_string())?;
    if let Some(list) = certificate.critical_options().get("source-address") {
        let peer = peer.map(|ip| ip.to_canonical()).ok_or("source-address needs a peer address")?;
        let mut allowed = false;
        for entry in list.split(',').map(str::trim) {
            let net: ipnet::IpNet = match entry.parse::<ipnet::IpNet>() {
                Ok(net) => net,
                Err(_) => entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from).map_err(|_| format!("bad source-address `{entry}`"))?,
            };
            allowed |= net.contains(&peer);
        }
        if !allowed {
            return Err(format!("source-address {list} does not include {peer}"));
        }
    }
    Ok(restrictions)
}
