//! Authentication: methods, results, multi-factor state and keyboard-interactive prompts.
//!
//! Handlers annotated with `#[auth(...)]` return an [`Auth`]. The framework keeps
//! the per-connection record of which methods passed ([`Factors`]), answers
//! publickey probes without calling any handler, and resets all of it when the
//! client changes the user name in the middle of authentication (RFC 4252 §5).
//! [`TrustedUserCaKeys`] is a ready policy for `#[auth(certificate)]`.

mod user_ca;

use std::fmt;

use tokio::sync::{mpsc, oneshot};

pub use self::user_ca::{CertificateRefusal, TrustedUserCaKeys};

/// An SSH user authentication method (RFC 4252, RFC 4256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The `none` method: a login without credentials.
    None,
    /// The `password` method.
    Password,
    /// The `publickey` method, decided only after the signature was verified.
    PublicKey,
    /// The `keyboard-interactive` method (RFC 4256).
    KeyboardInteractive,
}

impl Method {
    /// Every method, in the order OpenSSH lists them.
    pub const ALL: [Method; 4] = [
        Method::None,
        Method::PublicKey,
        Method::KeyboardInteractive,
        Method::Password,
    ];

    /// The method's name on the wire (`publickey`, `keyboard-interactive`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Password => "password",
            Method::PublicKey => "publickey",
            Method::KeyboardInteractive => "keyboard-interactive",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Method::None => 1,
            Method::Password => 2,
            Method::PublicKey => 4,
            Method::KeyboardInteractive => 8,
        }
    }

    pub(crate) fn to_russh(self) -> russh::MethodKind {
        match self {
            Method::None => russh::MethodKind::None,
            Method::Password => russh::MethodKind::Password,
            Method::PublicKey => russh::MethodKind::PublicKey,
            Method::KeyboardInteractive => russh::MethodKind::KeyboardInteractive,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when parsing an unknown method name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMethod(pub String);

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown authentication method `{}` (expected none, password, publickey or keyboard-interactive)",
            self.0
        )
    }
}

impl std::error::Error for UnknownMethod {}

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Method::None),
            "password" => Ok(Method::Password),
            "publickey" => Ok(Method::PublicKey),
            "keyboard-interactive" | "keyboard_interactive" => Ok(Method::KeyboardInteractive),
            other => Err(UnknownMethod(other.to_owned())),
        }
    }
}

/// A set of authentication methods, such as the list a client may continue with.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MethodSet(u8);

impl MethodSet {
    /// The empty set.
    pub const EMPTY: MethodSet = MethodSet(0);

    /// A set holding one method.
    pub const fn single(method: Method) -> Self {
        MethodSet(match method {
            Method::None => 1,
            Method::Password => 2,
            Method::PublicKey => 4,
            Method::KeyboardInteractive => 8,
        })
    }

    /// Whether `method` is in the set.
    pub fn contains(self, method: Method) -> bool {
        self.0 & method.bit() != 0
    }

    /// Adds `method` to the set.
    pub fn insert(&mut self, method: Method) {
        self.0 |= method.bit();
    }

    /// Removes `method` from the set.
    pub fn remove(&mut self, method: Method) {
        self.0 &= !method.bit();
    }

    /// The set with `method` added.
    #[must_use]
    pub fn with(mut self, method: Method) -> Self {
        self.insert(method);
        self
    }

    /// The methods in both sets.
    #[must_use]
    pub fn intersection(self, other: MethodSet) -> Self {
        MethodSet(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The methods in the set, in the order OpenSSH lists them.
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    pub(crate) fn to_russh(self) -> russh::MethodSet {
        let kinds: Vec<russh::MethodKind> = self
            .iter()
            // `none` is never advertised as a method that can continue (RFC 4252 §5.2).
            .filter(|m| *m != Method::None)
            .map(Method::to_russh)
            .collect();
        russh::MethodSet::from(kinds.as_slice())
    }

    /// The methods of a russh set that this crate knows (the client's view of
    /// a server's list); the inverse of [`Method::to_russh`].
    #[cfg(feature = "testing")]
    pub(crate) fn from_russh(set: &russh::MethodSet) -> Self {
        Method::ALL.into_iter().filter(|m| set.contains(&m.to_russh())).collect()
    }
}

impl FromIterator<Method> for MethodSet {
    fn from_iter<I: IntoIterator<Item = Method>>(iter: I) -> Self {
        let mut set = MethodSet::EMPTY;
        for m in iter {
            set.insert(m);
        }
        set
    }
}

impl From<Method> for MethodSet {
    fn from(method: Method) -> Self {
        MethodSet::single(method)
    }
}

impl<const N: usize> From<[Method; N]> for MethodSet {
    fn from(methods: [Method; N]) -> Self {
        methods.into_iter().collect()
    }
}

impl fmt::Debug for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for m in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(m.as_str())?;
        }
        Ok(())
    }
}

/// The answer of an authentication handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Auth {
    /// The user is authenticated; the connection proceeds to channels.
    Accept,
    /// The attempt failed. It counts toward the connection's limit of failures.
    Reject,
    /// The attempt succeeded, but more factors are required: the client must
    /// continue with one of these methods (OpenSSH's `AuthenticationMethods`).
    Partial(MethodSet),
}

impl Auth {
    /// Accepts when `ok` is true, rejects otherwise.
    pub fn from_bool(ok: bool) -> Self {
        if ok { Auth::Accept } else { Auth::Reject }
    }
}

/// The methods this connection's user has passed so far (for multi-factor chains).
///
/// Take it as an argument of an `#[auth]` handler to decide whether the method
/// being tried completes the chain:
///
/// ```
/// use ssh_framework::{Auth, Factors, Method, MethodSet};
///
/// fn after_password(passed: &Factors) -> Auth {
///     if passed.contains(Method::PublicKey) {
///         Auth::Accept
///     } else {
///         Auth::Partial(MethodSet::single(Method::PublicKey))
///     }
/// }
/// # let _ = after_password(&Factors::default());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factors(Vec<Method>);

impl Factors {
    /// No method passed yet.
    pub const fn new() -> Self {
        Factors(Vec::new())
    }

    /// Whether `method` has passed.
    pub fn contains(&self, method: Method) -> bool {
        self.0.contains(&method)
    }

    /// The passed methods, in the order they passed.
    pub fn as_slice(&self) -> &[Method] {
        &self.0
    }

    pub(crate) fn push(&mut self, method: Method) {
        if !self.0.contains(&method) {
            self.0.push(method);
        }
    }
}

/// Builds a record of passed methods, for testing chain logic outside a server.
impl FromIterator<Method> for Factors {
    fn from_iter<I: IntoIterator<Item = Method>>(iter: I) -> Self {
        let mut factors = Factors::default();
        for method in iter {
            factors.push(method);
        }
        factors
    }
}

/// One prompt of a keyboard-interactive round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The text shown to the user, such as `"Verification code: "`.
    pub text: String,
    /// Whether the client echoes what the user types.
    pub echo: bool,
}

impl Prompt {
    /// A prompt whose answer is echoed.
    pub fn visible(text: impl Into<String>) -> Self {
        Prompt { text: text.into(), echo: true }
    }

    /// A prompt whose answer is not echoed (for secrets).
    pub fn hidden(text: impl Into<String>) -> Self {
        Prompt { text: text.into(), echo: false }
    }
}

/// One round of keyboard-interactive prompts sent to the client.
#[derive(Debug)]
pub(crate) struct PromptRound {
    pub(crate) name: String,
    pub(crate) instructions: String,
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) answers: oneshot::Sender<Vec<String>>,
}

/// The error returned by [`Prompter::ask`] when the client abandoned the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptAbandoned;

impl fmt::Display for PromptAbandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client abandoned keyboard-interactive authentication")
    }
}

impl std::error::Error for PromptAbandoned {}

/// Asks the client keyboard-interactive questions from inside one async handler.
///
/// A `#[auth(keyboard_interactive)]` handler may call [`ask`](Prompter::ask) as
/// many times as it needs rounds; each call sends one `SSH_MSG_USERAUTH_INFO_REQUEST`
/// and resolves with the client's answers, in prompt order.
#[derive(Debug)]
pub struct Prompter {
    rounds: mpsc::Sender<PromptRound>,
    max_rounds: usize,
    asked: usize,
}

impl Prompter {
    pub(crate) fn new(rounds: mpsc::Sender<PromptRound>, max_rounds: usize) -> Self {
        Prompter { rounds, max_rounds, asked: 0 }
    }

    /// Sends one round of prompts and waits for the answers.
    ///
    /// Fails when the client gave up (started another method or disconnected),
    /// when it answered with a different number of responses than prompts, or
    /// when the handler asked more rounds than the server allows (16).
    pub async fn ask(
        &mut self,
        name: impl Into<String>,
        instructions: impl Into<String>,
        prompts: impl IntoIterator<Item = Prompt>,
    ) -> Result<Vec<String>, PromptAbandoned> {
        if self.asked >= self.max_rounds {
            tracing::warn!(rounds = self.asked, "keyboard-interactive handler asked too many rounds");
            return Err(PromptAbandoned);
        }
        self.asked += 1;
        let prompts: Vec<Prompt> = prompts.into_iter().collect();
        let expected = prompts.len();
        let (tx, rx) = oneshot::channel();
        let round = PromptRound {
            name: name.into(),
            instructions: instructions.into(),
            prompts,
            answers: tx,
        };
        self.rounds.send(round).await.map_err(|_| PromptAbandoned)?;
        let answers = rx.await.map_err(|_| PromptAbandoned)?;
        if answers.len() != expected {
            return Err(PromptAbandoned);
        }
        Ok(answers)
    }

    /// Asks a single question and returns the single answer.
    pub async fn ask_one(&mut self, prompt: Prompt) -> Result<String, PromptAbandoned> {
        let mut answers = self.ask("", "", [prompt]).await?;
        answers.pop().ok_or(PromptAbandoned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_set_lists_in_openssh_order_and_never_advertises_none() {
        let set: MethodSet = [Method::Password, Method::None, Method::PublicKey].into();
        assert_eq!(set.to_string(), "none,publickey,password");
        let names: Vec<&str> = set.to_russh().iter().map(<&str>::from).collect();
        assert_eq!(names, ["publickey", "password"]);
    }

    #[test]
    fn method_parses_both_spellings_of_keyboard_interactive() {
        assert_eq!("keyboard-interactive".parse::<Method>(), Ok(Method::KeyboardInteractive));
        assert_eq!("keyboard_interactive".parse::<Method>(), Ok(Method::KeyboardInteractive));
        assert!("hostbased".parse::<Method>().is_err());
    }
}
