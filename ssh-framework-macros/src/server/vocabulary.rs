//! The handler vocabulary as the macro knows it: one entry per kind of
//! handler, from which parsing, messages, the expected signatures and the
//! generated registration all read.
//!
//! The runtime has the same table (`ssh_framework::handler`, its marker types
//! and `Slot`s); the `vocabulary_matches_the_runtime` test checks that every
//! entry here names a runtime kind with the same attribute, and the reverse.

use super::parse::Fixed;

/// Whether an attribute takes a name as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameArg {
    /// `#[pty]`.
    No,
    /// `#[exec]` or `#[exec("git-upload-pack")]`.
    Optional,
    /// `#[subsystem("sftp")]`.
    Required,
}

/// Where a handler is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The slot named by the marker.
    Slot,
    /// By program name, or the catch-all.
    Exec,
    /// By subsystem name.
    Subsystem,
    /// `#[allowed_auths]`: called with the user name, answers methods.
    AllowedAuths,
    /// `#[banner]`: called with nothing.
    Banner,
}

/// What the handler's answer becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Respond {
    /// `Response::Auth`.
    Auth,
    /// `Response::Accept` or `Response::Reject`.
    Decision,
    /// `Response::Run` with the body's future.
    Body,
    /// `Response::Forward`.
    Forward,
    /// Not a `Response` (`#[allowed_auths]`, `#[banner]`).
    Direct,
}

/// One kind of handler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The attribute's name: `auth` in `#[auth(password)]`.
    pub(crate) attribute: &'static str,
    /// The choice inside it: `password`.
    pub(crate) choice: Option<&'static str>,
    /// Whether it takes a name as a string.
    pub(crate) name: NameArg,
    /// The runtime's marker type and slot: `ssh_framework::handler::AuthPassword`.
    pub(crate) marker: &'static str,
    /// The fixed leading arguments after `&self`.
    pub(crate) fixed: &'static [Fixed],
    /// Whether extractors may follow the fixed arguments.
    pub(crate) extractors: bool,
    pub(crate) route: Route,
    pub(crate) respond: Respond,
    /// The typical extractors, for the expected signature in messages.
    pub(crate) typical: &'static str,
    /// The usual return type, for messages.
    pub(crate) returns: &'static str,
}

const fn spec(
    attribute: &'static str,
    choice: Option<&'static str>,
    marker: &'static str,
    fixed: &'static [Fixed],
    respond: Respond,
    typical: &'static str,
    returns: &'static str,
) -> Spec {
    Spec { attribute, choice, name: NameArg::No, marker, fixed, extractors: true, route: Route::Slot, respond, typical, returns }
}

const AUTH_FIXED: &[Fixed] = &[Fixed::User];

/// Every kind of handler, in the order the docs list them.
pub(crate) const KINDS: &[Spec] = &[
    spec("auth", Some("none"), "AuthNone", AUTH_FIXED, Respond::Auth, ", ...extractors", "Auth"),
    spec("auth", Some("password"), "AuthPassword", &[Fixed::User, Fixed::Password], Respond::Auth, ", ...extractors", "Auth"),
    spec("auth", Some("publickey"), "AuthPublicKey", &[Fixed::User, Fixed::PublicKey], Respond::Auth, ", ...extractors", "Auth"),
    spec("auth", Some("certificate"), "AuthCertificate", &[Fixed::User, Fixed::Certificate], Respond::Auth, ", ...extractors", "Auth"),
    spec("auth", Some("keyboard_interactive"), "AuthKeyboardInteractive", AUTH_FIXED, Respond::Auth, ", prompter: &mut Prompter, ...extractors", "Auth"),
    Spec { extractors: false, route: Route::AllowedAuths, ..spec("allowed_auths", None, "AllowedAuths", AUTH_FIXED, Respond::Direct, "", "MethodSet") },
    Spec { extractors: false, route: Route::Banner, ..spec("banner", None, "Banner", &[], Respond::Direct, "", "Option<String>") },
    spec("channel", Some("session"), "ChannelSession", &[], Respond::Decision, ", ...extractors", "bool"),
    spec("channel", Some("direct_tcpip"), "DirectTcpip", &[], Respond::Forward, ", target: TcpTarget, ...extractors", "Forward"),
    spec("channel", Some("direct_streamlocal"), "DirectStreamlocal", &[], Respond::Forward, ", path: SocketPath, ...extractors", "Forward"),
    spec("pty", None, "Pty", &[], Respond::Decision, ", pty: &PtyRequest, ...extractors", "bool"),
    spec("env", None, "Env", &[Fixed::EnvName, Fixed::EnvValue], Respond::Decision, ", ...extractors", "bool"),
    spec("shell", None, "Shell", &[], Respond::Body, ", io: ChannelIo, ...extractors", "ExitStatus"),
    Spec { name: NameArg::Optional, route: Route::Exec, ..spec("exec", None, "Exec", &[], Respond::Body, ", command: Command, io: ChannelIo, ...extractors", "ExitStatus") },
    Spec { name: NameArg::Required, route: Route::Subsystem, ..spec("subsystem", None, "Subsystem", &[], Respond::Body, ", io: ChannelIo, ...extractors", "ExitStatus") },
    spec("window_change", None, "WindowChange", &[], Respond::Decision, ", size: WindowSize, ...extractors", "bool"),
    spec("signal", None, "Signal", &[], Respond::Decision, ", signal: Signal, ...extractors", "bool"),
    spec("x11", None, "X11", &[], Respond::Decision, ", x11: X11Request, ...extractors", "bool"),
    spec("agent", None, "Agent", &[], Respond::Decision, ", ...extractors", "bool"),
    spec("tcpip_forward", None, "TcpipForward", &[], Respond::Decision, ", target: ListenTarget, ...extractors", "bool"),
    spec("cancel_tcpip_forward", None, "CancelTcpipForward", &[], Respond::Decision, ", target: ListenTarget, ...extractors", "bool"),
    spec("streamlocal_forward", None, "StreamlocalForward", &[], Respond::Decision, ", path: SocketPath, ...extractors", "bool"),
    spec("cancel_streamlocal_forward", None, "CancelStreamlocalForward", &[], Respond::Decision, ", path: SocketPath, ...extractors", "bool"),
];

/// Attributes that are ours but name no kind: an error with an explanation.
pub(crate) const UNSUPPORTED: &[&str] = &["global_request"];

/// Whether `name` is one of the attributes `#[server]` collects.
pub(crate) fn is_attribute(name: &str) -> bool {
    KINDS.iter().any(|k| k.attribute == name) || UNSUPPORTED.contains(&name)
}

/// The kinds written with attribute `name`.
pub(crate) fn with_attribute(name: &str) -> impl Iterator<Item = &'static Spec> + '_ {
    KINDS.iter().filter(move |k| k.attribute == name)
}

impl Spec {
    /// The attribute as a user writes it, without a name: `#[auth(password)]`, `#[exec]`.
    pub(crate) fn describe(&self) -> String {
        match self.choice {
            Some(choice) => format!("#[{}({choice})]", self.attribute),
            None => format!("#[{}]", self.attribute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_framework::__private::Slot;

    #[test]
    fn vocabulary_matches_the_runtime() {
        assert_eq!(KINDS.len(), Slot::ALL.len(), "one entry per runtime kind");
        for slot in Slot::ALL {
            let spec = KINDS
                .iter()
                .find(|k| k.marker == slot.marker())
                .unwrap_or_else(|| panic!("the macro has no entry for the runtime's {}", slot.marker()));
            assert_eq!(spec.describe(), slot.attribute(), "attribute of {}", spec.marker);
        }
    }

    #[test]
    fn every_attribute_has_a_macro_docs_and_a_row_in_the_reference() {
        let lib = include_str!("../lib.rs");
        // `env` has no macro of its own: it would shadow `env!` under a glob import.
        for name in KINDS.iter().map(|k| k.attribute).chain(UNSUPPORTED.iter().copied()).filter(|n| *n != "env") {
            assert!(lib.contains(&format!("pub fn {name}(")), "no attribute macro `{name}` in lib.rs");
            assert!(lib.contains(&format!("docs/{name}.md")), "no docs/{name}.md for `{name}`");
        }
        let reference = include_str!("../docs/server.md");
        let rows = reference.lines().filter(|l| l.starts_with("| `#[")).count();
        assert_eq!(rows, KINDS.len(), "one row per kind in the attribute table of docs/server.md");
        for spec in KINDS {
            let row = match spec.name {
                NameArg::Required => format!("| `#[{}(\"", spec.attribute),
                _ => format!("| `{}`", spec.describe()),
            };
            assert!(reference.contains(&row), "no row for {} in docs/server.md", spec.describe());
        }
    }
}
