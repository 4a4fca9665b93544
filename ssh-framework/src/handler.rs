//! The handler vocabulary: one marker type per kind of handler, and what each
//! kind may take and return.
//!
//! Every handler attribute of [`#[server]`](macro@crate::server) stands for one
//! of these kinds (`#[exec]` for [`Exec`], `#[auth(password)]` for
//! [`AuthPassword`], ...). The kinds are types so that the compiler checks a
//! handler's signature:
//!
//! - an argument is an extractor that this kind of handler can receive
//!   ([`FromRequestParts<K>`](crate::extract::FromRequestParts) or
//!   [`FromRequest<K>`](crate::extract::FromRequest)): a `WindowSize` in a
//!   `#[shell]` handler is a compile error naming the kinds that have one;
//! - the return type converts into this kind's answer through
//!   [`IntoResponse<K>`]: `Auth` or `bool` for authentication, `bool` for
//!   decisions, `ExitStatus` (or `u32`, `()`) for shell, exec and subsystem
//!   bodies, `Forward` (or `bool`) for local forwarding; `Result<T, E>` of any
//!   of them, where an `Err` is logged and refuses.
//!
//! Write your own extractor for any kind with `impl<K> FromRequestParts<K> for
//! MyType`, or for a few kinds by bounding `K` with the groups below
//! ([`OnSessionChannel`], ...).
//!
//! The table below is the one place the vocabulary is written down in the
//! runtime; the `#[server]` macro has its own table, and a test checks that
//! the two agree.

use std::fmt;

use crate::auth::{Auth, Method, MethodSet};
use crate::channel::ExitStatus;
use crate::forward::{Forward, OpenFailure};

mod sealed {
    pub trait Sealed {}
}

/// A kind of handler: one per handler attribute. Sealed.
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// The attribute, as a user writes it (`#[exec]`).
    const ATTRIBUTE: &'static str;
    /// What a handler of this kind answers, before the framework acts on it.
    type Output: Output;
}

/// The answer types of handler kinds, and the answer when a handler fails.
pub trait Output: sealed::Sealed + Send + 'static {
    /// The answer when a handler returned `Err` (refuse, fail the attempt, exit 1).
    fn on_error() -> Self;
}

impl sealed::Sealed for Auth {}
impl Output for Auth {
    fn on_error() -> Self {
        Auth::Reject
    }
}

impl sealed::Sealed for bool {}
impl Output for bool {
    fn on_error() -> Self {
        false
    }
}

impl sealed::Sealed for ExitStatus {}
impl Output for ExitStatus {
    fn on_error() -> Self {
        ExitStatus::FAILURE
    }
}

impl sealed::Sealed for Forward {}
impl Output for Forward {
    fn on_error() -> Self {
        Forward::Refuse(OpenFailure::AdministrativelyProhibited)
    }
}

impl sealed::Sealed for MethodSet {}
impl Output for MethodSet {
    fn on_error() -> Self {
        MethodSet::EMPTY
    }
}

impl sealed::Sealed for Option<String> {}
impl Output for Option<String> {
    fn on_error() -> Self {
        None
    }
}

macro_rules! vocabulary {
    ($(
        $(#[$doc:meta])*
        $marker:ident => $attribute:literal, $output:ty $(, $group:ident)*;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $marker {}
            impl sealed::Sealed for $marker {}
            impl Kind for $marker {
                const ATTRIBUTE: &'static str = $attribute;
                type Output = $output;
            }
            $(impl $group for $marker {})*
        )*

        /// The routing slots, one per kind; generated code names them through `__private`.
        pub(crate) mod slot {
            /// Where a handler is registered in the routing table.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum Slot {
                $(
                    #[doc = concat!("`", $attribute, "`")]
                    $marker,
                )*
            }

            impl Slot {
                /// Every slot, in table order.
                pub const ALL: &'static [Slot] = &[$(Slot::$marker),*];

                /// The attribute of this slot, as a user writes it.
                pub fn attribute(self) -> &'static str {
                    match self {
                        $(Slot::$marker => $attribute,)*
                    }
                }

                /// The marker type's name (`Exec`), which the macro's table must match.
                pub fn marker(self) -> &'static str {
                    match self {
                        $(Slot::$marker => stringify!($marker),)*
                    }
                }
            }
        }
    };
}

vocabulary! {
    /// `#[auth(none)]`: a login without credentials.
    AuthNone => "#[auth(none)]", Auth, AnswersAuth;
    /// `#[auth(password)]`.
    AuthPassword => "#[auth(password)]", Auth, AnswersAuth;
    /// `#[auth(publickey)]`, after the signature was verified.
    AuthPublicKey => "#[auth(publickey)]", Auth, AnswersAuth;
    /// `#[auth(certificate)]`, after the certificate was verified.
    AuthCertificate => "#[auth(certificate)]", Auth, AnswersAuth;
    /// `#[auth(keyboard_interactive)]`.
    AuthKeyboardInteractive => "#[auth(keyboard_interactive)]", Auth, AnswersAuth;
    /// `#[allowed_auths]`: the methods a user may try.
    AllowedAuths => "#[allowed_auths]", MethodSet, AnswersMethods;
    /// `#[banner]`: the text shown before authentication.
    Banner => "#[banner]", Option<String>, AnswersBanner;
    /// `#[channel(session)]`: a session channel open.
    ChannelSession => "#[channel(session)]", bool;
    /// `#[channel(direct_tcpip)]`: `ssh -L` to a TCP port.
    DirectTcpip => "#[channel(direct_tcpip)]", Forward, AnswersForward, HasTcpTarget;
    /// `#[channel(direct_streamlocal)]`: `ssh -L` to a Unix socket.
    DirectStreamlocal => "#[channel(direct_streamlocal)]", Forward, AnswersForward, HasSocketPath;
    /// `#[pty]`: `pty-req`.
    Pty => "#[pty]", bool, OnSessionChannel, HasWindowSize;
    /// `#[env]`: `env`.
    Env => "#[env]", bool, OnSessionChannel;
    /// `#[shell]`: the body of a `shell` request.
    Shell => "#[shell]", ExitStatus, AnswersExitStatus, OnSessionChannel;
    /// `#[exec]` and `#[exec("program")]`: the body of an `exec` request.
    Exec => "#[exec]", ExitStatus, AnswersExitStatus, OnSessionChannel, HasCommand;
    /// `#[subsystem("name")]`: the body of a `subsystem` request.
    Subsystem => "#[subsystem]", ExitStatus, AnswersExitStatus, OnSessionChannel, HasSubsystemName;
    /// `#[window_change]`: `window-change`.
    WindowChange => "#[window_change]", bool, OnSessionChannel, HasWindowSize;
    /// `#[signal]`: `signal`.
    Signal => "#[signal]", bool, OnSessionChannel, HasSignal;
    /// `#[x11]`: `x11-req`.
    X11 => "#[x11]", bool, OnSessionChannel;
    /// `#[agent]`: `auth-agent-req@openssh.com`.
    Agent => "#[agent]", bool, OnSessionChannel;
    /// `#[tcpip_forward]`: `ssh -R` of a TCP port.
    TcpipForward => "#[tcpip_forward]", bool, HasListenTarget;
    /// `#[cancel_tcpip_forward]`.
    CancelTcpipForward => "#[cancel_tcpip_forward]", bool, HasListenTarget;
    /// `#[streamlocal_forward]`: `ssh -R` of a Unix socket.
    StreamlocalForward => "#[streamlocal_forward]", bool, HasSocketPath;
    /// `#[cancel_streamlocal_forward]`.
    CancelStreamlocalForward => "#[cancel_streamlocal_forward]", bool, HasSocketPath;
}

/// Gives each trait the `on_unimplemented` diagnostic with its `message` and
/// `label` and the one note that lists what every handler may return.
macro_rules! answers {
    ($(
        $(#[doc = $doc:literal])*
        #[answers_note(message = $message:literal, label = $label:literal)]
        $item:item
    )*) => {$(
        $(#[doc = $doc])*
        #[diagnostic::on_unimplemented(
            message = $message,
            label = $label,
            note = "authentication handlers return `Auth` or `bool`; #[allowed_auths] `MethodSet`, `Method` or `[Method; N]`; #[banner] `String`, `&'static str` or `Option<String>`; #[shell], #[exec] and #[subsystem] `ExitStatus`, `u32` or `()`; #[channel(direct_tcpip)] and #[channel(direct_streamlocal)] `Forward` or `bool`; every other handler `bool`; each also as `Result<T, E>` with `E: Display`"
        )]
        $item
    )*};
}

answers! {
    /// Authentication handlers: they answer with [`Auth`].
    #[answers_note(message = "`{Self}` handlers do not answer with `Auth`", label = "not an answer for this handler")]
    pub trait AnswersAuth: Kind<Output = Auth> {}

    /// Shell, exec and subsystem handlers: they answer with an [`ExitStatus`].
    #[answers_note(message = "`{Self}` handlers do not answer with an exit status", label = "not an answer for this handler")]
    pub trait AnswersExitStatus: Kind<Output = ExitStatus> {}

    /// Local forwarding handlers: they answer with a [`Forward`].
    #[answers_note(message = "`{Self}` handlers do not answer with `Forward`", label = "not an answer for this handler")]
    pub trait AnswersForward: Kind<Output = Forward> {}

    /// `#[allowed_auths]`: it answers with a [`MethodSet`].
    #[answers_note(message = "`{Self}` handlers do not answer with authentication methods", label = "not an answer for this handler")]
    pub trait AnswersMethods: Kind<Output = MethodSet> {}

    /// `#[banner]`: it answers with text.
    #[answers_note(message = "`{Self}` handlers do not answer with text", label = "not an answer for this handler")]
    pub trait AnswersBanner: Kind<Output = Option<String>> {}
}

/// Handlers of requests on a session channel, which see what earlier requests
/// on it set up: `Pty`, `Environment`, `PtyRequest`, `X11Request`, `AgentForwarded`.
#[diagnostic::on_unimplemented(
    message = "this extractor describes a session channel, and `{Self}` handlers have none",
    label = "not available to `{Self}` handlers",
    note = "`Pty`, `PtyRequest`, `Environment`, `X11Request` and `AgentForwarded` are available to #[pty], #[env], #[shell], #[exec], #[subsystem], #[window_change], #[signal], #[x11] and #[agent] handlers"
)]
pub trait OnSessionChannel: Kind {}

/// Handlers that receive a terminal size.
#[diagnostic::on_unimplemented(
    message = "`WindowSize` is only available to #[pty] and #[window_change] handlers, not to `{Self}` handlers",
    label = "no window size here",
    note = "in a shell, exec or subsystem handler take `Pty` (the pty and its size, if one was requested) and read `ChannelIo::events` for later window changes"
)]
pub trait HasWindowSize: Kind {}

/// Handlers that receive a signal.
#[diagnostic::on_unimplemented(
    message = "`Signal` is only available to #[signal] handlers, not to `{Self}` handlers",
    label = "no signal here",
    note = "a running body hears signals its #[signal] handler allowed through `ChannelIo::events`"
)]
pub trait HasSignal: Kind {}

/// Handlers that receive an exec command.
#[diagnostic::on_unimplemented(
    message = "`Command` is only available to #[exec] handlers, not to `{Self}` handlers",
    label = "no command here"
)]
pub trait HasCommand: Kind {}

/// Handlers that receive a subsystem name.
#[diagnostic::on_unimplemented(
    message = "`SubsystemName` is only available to #[subsystem] handlers, not to `{Self}` handlers",
    label = "no subsystem name here"
)]
pub trait HasSubsystemName: Kind {}

/// Handlers that receive a TCP forwarding destination.
#[diagnostic::on_unimplemented(
    message = "`TcpTarget` is only available to #[channel(direct_tcpip)] handlers, not to `{Self}` handlers",
    label = "no TCP destination here"
)]
pub trait HasTcpTarget: Kind {}

/// Handlers that receive a remote-forward listen address.
#[diagnostic::on_unimplemented(
    message = "`ListenTarget` is only available to #[tcpip_forward] and #[cancel_tcpip_forward] handlers, not to `{Self}` handlers",
    label = "no listen address here"
)]
pub trait HasListenTarget: Kind {}

/// Handlers that receive a Unix socket path.
#[diagnostic::on_unimplemented(
    message = "`SocketPath` is only available to #[channel(direct_streamlocal)], #[streamlocal_forward] and #[cancel_streamlocal_forward] handlers, not to `{Self}` handlers",
    label = "no socket path here"
)]
pub trait HasSocketPath: Kind {}

answers! {
    /// Conversion of a handler's return value into the answer of its kind `K`.
    ///
    /// One mechanism for every kind; `Result<T, E>` works wherever `T` does, and
    /// an `Err` is logged (with `E`'s `Display`) and refuses.
    #[answers_note(message = "`{K}` handlers cannot return `{Self}`", label = "not an answer `{K}` handlers can give")]
    pub trait IntoResponse<K: Kind> {
        /// Converts the value into the kind's answer.
        fn into_response(self) -> K::Output;
}
}

/// Answers that `true` and `false` stand for.
#[diagnostic::on_unimplemented(
    message = "`bool` is not an answer for a handler whose answer is `{Self}`",
    label = "return `{Self}` here",
    note = "#[shell], #[exec] and #[subsystem] handlers return `ExitStatus`, `u32` or `()`"
)]
pub trait FromBool: Output {
    /// `true` allows, `false` refuses.
    fn from_bool(allowed: bool) -> Self;
}

impl FromBool for bool {
    fn from_bool(allowed: bool) -> Self {
        allowed
    }
}

impl FromBool for Auth {
    fn from_bool(allowed: bool) -> Self {
        Auth::from_bool(allowed)
    }
}

impl FromBool for Forward {
    fn from_bool(allowed: bool) -> Self {
        if allowed { Forward::Connect } else { Forward::Refuse(OpenFailure::AdministrativelyProhibited) }
    }
}

impl<K: Kind> IntoResponse<K> for bool
where
    K::Output: FromBool,
{
    fn into_response(self) -> K::Output {
        <K::Output as FromBool>::from_bool(self)
    }
}

impl<K: AnswersAuth> IntoResponse<K> for Auth {
    fn into_response(self) -> Auth {
        self
    }
}

impl<K: AnswersForward> IntoResponse<K> for Forward {
    fn into_response(self) -> Forward {
        self
    }
}

impl<K: AnswersExitStatus> IntoResponse<K> for ExitStatus {
    fn into_response(self) -> ExitStatus {
        self
    }
}

impl<K: AnswersExitStatus> IntoResponse<K> for u32 {
    fn into_response(self) -> ExitStatus {
        ExitStatus::Code(self)
    }
}

impl<K: AnswersExitStatus> IntoResponse<K> for () {
    fn into_response(self) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

impl<K: AnswersMethods> IntoResponse<K> for MethodSet {
    fn into_response(self) -> MethodSet {
        self
    }
}

impl<K: AnswersMethods> IntoResponse<K> for Method {
    fn into_response(self) -> MethodSet {
        MethodSet::single(self)
    }
}

impl<K: AnswersMethods, const N: usize> IntoResponse<K> for [Method; N] {
    fn into_response(self) -> MethodSet {
        self.into()
    }
}

impl<K: AnswersBanner> IntoResponse<K> for Option<String> {
    fn into_response(self) -> Option<String> {
        self
    }
}

impl<K: AnswersBanner> IntoResponse<K> for String {
    fn into_response(self) -> Option<String> {
        Some(self)
    }
}

impl<K: AnswersBanner> IntoResponse<K> for &'static str {
    fn into_response(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl<K: Kind, T: IntoResponse<K>, E: fmt::Display> IntoResponse<K> for Result<T, E> {
    fn into_response(self) -> K::Output {
        match self {
            Ok(value) => value.into_response(),
            Err(error) => {
                tracing::warn!(handler = K::ATTRIBUTE, %error, "handler failed; refused");
                <K::Output as Output>::on_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slot::Slot;
    use super::*;

    fn answer<K: Kind, T: IntoResponse<K>>(value: T) -> K::Output {
        value.into_response()
    }

    #[test]
    fn one_conversion_for_every_kind() {
        assert_eq!(answer::<AuthPassword, _>(true), Auth::Accept);
        assert!(!answer::<Pty, _>(false));
        assert_eq!(answer::<Exec, _>(3u32), ExitStatus::Code(3));
        assert_eq!(answer::<Exec, _>(()), ExitStatus::SUCCESS);
        assert_eq!(answer::<Exec, Result<(), &str>>(Err("boom")), ExitStatus::FAILURE);
        assert_eq!(answer::<AuthNone, Result<Auth, String>>(Err("db down".into())), Auth::Reject);
        assert_eq!(answer::<AllowedAuths, _>([Method::Password]), MethodSet::single(Method::Password));
        assert_eq!(answer::<Banner, _>("hi"), Some("hi".to_owned()));
        assert!(matches!(answer::<DirectTcpip, _>(false), Forward::Refuse(OpenFailure::AdministrativelyProhibited)));
    }

    #[test]
    fn slots_name_their_attribute_and_marker() {
        assert_eq!(Slot::ALL.len(), 23);
        assert_eq!(Slot::Exec.attribute(), Exec::ATTRIBUTE);
        assert_eq!(Slot::CancelTcpipForward.marker(), "CancelTcpipForward");
    }
}
