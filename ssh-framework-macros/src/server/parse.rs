//! Parses a `#[server]` impl block into a typed model of its handlers, stripping
//! the handler attributes and accumulating every error.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat, Type};

/// What a handler decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    AuthNone,
    AuthPassword,
    AuthPublicKey,
    AuthKeyboardInteractive,
    AllowedAuths,
    Banner,
    ChannelSession,
    Pty,
    Env,
    Shell,
    Exec(Option<String>),
    Subsystem(String),
    WindowChange,
    Signal,
}

impl Kind {
    /// The attribute as a user writes it, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::AuthNone => "#[auth(none)]".into(),
            Kind::AuthPassword => "#[auth(password)]".into(),
            Kind::AuthPublicKey => "#[auth(publickey)]".into(),
            Kind::AuthKeyboardInteractive => "#[auth(keyboard_interactive)]".into(),
            Kind::AllowedAuths => "#[allowed_auths]".into(),
            Kind::Banner => "#[banner]".into(),
            Kind::ChannelSession => "#[channel(session)]".into(),
            Kind::Pty => "#[pty]".into(),
            Kind::Env => "#[env]".into(),
            Kind::Shell => "#[shell]".into(),
            Kind::Exec(None) => "#[exec]".into(),
            Kind::Exec(Some(name)) => format!("#[exec({name:?})]"),
            Kind::Subsystem(name) => format!("#[subsystem({name:?})]"),
            Kind::WindowChange => "#[window_change]".into(),
            Kind::Signal => "#[signal]".into(),
        }
    }

    /// The fixed leading arguments, as `name: Type` for messages.
    pub(crate) fn fixed(&self) -> &'static [&'static str] {
        match self {
            Kind::AuthNone | Kind::AuthKeyboardInteractive | Kind::AllowedAuths => &["user: &str"],
            Kind::AuthPassword => &["user: &str", "password: &str"],
            Kind::AuthPublicKey => &["user: &str", "key: &PublicKey"],
            Kind::Env => &["name: &str", "value: &str"],
            _ => &[],
        }
    }

    /// Whether arguments after the fixed ones are extractors.
    pub(crate) fn takes_extractors(&self) -> bool {
        !matches!(self, Kind::AllowedAuths | Kind::Banner)
    }
}

/// One handler argument after `&self`.
#[derive(Debug)]
pub(crate) struct Arg {
    pub(crate) ty: Type,
}

/// One annotated method.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) kind: Kind,
    pub(crate) ident: syn::Ident,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Option<Type>,
    pub(crate) attr_span: Span,
}

/// The parsed impl block.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) item: ItemImpl,
    pub(crate) handlers: Vec<Handler>,
}

const ATTRIBUTES: &[&str] = &[
    "auth",
    "allowed_auths",
    "banner",
    "channel",
    "pty",
    "env",
    "shell",
    "exec",
    "subsystem",
    "window_change",
    "signal",
];

/// Accumulates errors so one build shows every mistake.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

pub(crate) fn parse(mut item: ItemImpl, errors: &mut Errors) -> Model {
    let mut handlers = Vec::new();
    if let Some(t) = &item.trait_ {
        errors.push(syn::Error::new_spanned(
            &t.1,
            "#[server] goes on an inherent impl block (`impl App { ... }`), not on a trait impl",
        ));
    }
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else { continue };
        let ours: Vec<Attribute> = method.attrs.iter().filter(|a| is_ours(a)).cloned().collect();
        method.attrs.retain(|a| !is_ours(a));
        if ours.is_empty() {
            continue;
        }
        for extra in ours.iter().skip(1) {
            errors.push(syn::Error::new_spanned(
                extra,
                format!(
                    "a method can handle one kind of request; `{}` already has {}",
                    method.sig.ident,
                    attr_name(&ours[0])
                ),
            ));
        }
        let Some(kind) = parse_kind(&ours[0], errors) else { continue };
        if let Some(handler) = parse_handler(kind, &ours[0], method, errors) {
            handlers.push(handler);
        }
    }
    check_duplicates(&handlers, errors);
    Model { item, handlers }
}

fn is_ours(attr: &Attribute) -> bool {
    attr.path().get_ident().is_some_and(|i| ATTRIBUTES.contains(&i.to_string().as_str()))
}

fn attr_name(attr: &Attribute) -> String {
    format!("#[{}]", attr.path().get_ident().map(|i| i.to_string()).unwrap_or_default())
}

fn parse_kind(attr: &Attribute, errors: &mut Errors) -> Option<Kind> {
    let name = attr.path().get_ident()?.to_string();
    let result = match name.as_str() {
        "auth" => parse_ident_arg(
            attr,
            "#[auth(...)] takes one method: none, password, publickey or keyboard_interactive",
            &[
                ("none", Kind::AuthNone),
                ("password", Kind::AuthPassword),
                ("publickey", Kind::AuthPublicKey),
                ("keyboard_interactive", Kind::AuthKeyboardInteractive),
            ],
        ),
        "channel" => parse_ident_arg(
            attr,
            "#[channel(...)] takes the channel type: session",
            &[("session", Kind::ChannelSession)],
        ),
        "exec" => match &attr.meta {
            syn::Meta::Path(_) => Ok(Kind::Exec(None)),
            _ => parse_name_arg(attr, "#[exec] takes no argument (any command) or a program name: #[exec(\"git-upload-pack\")]")
                .map(|n| Kind::Exec(Some(n))),
        },
        "subsystem" => parse_name_arg(attr, "#[subsystem(...)] takes the subsystem name: #[subsystem(\"sftp\")]")
            .map(Kind::Subsystem),
        plain => {
            let kind = match plain {
                "allowed_auths" => Kind::AllowedAuths,
                "banner" => Kind::Banner,
                "pty" => Kind::Pty,
                "env" => Kind::Env,
                "shell" => Kind::Shell,
                "window_change" => Kind::WindowChange,
                _ => Kind::Signal,
            };
            match &attr.meta {
                syn::Meta::Path(_) => Ok(kind),
                other => Err(syn::Error::new_spanned(other, format!("#[{plain}] takes no arguments; write `#[{plain}]`"))),
            }
        }
    };
    result.map_err(|e| errors.push(e)).ok()
}

fn parse_ident_arg(attr: &Attribute, expected: &str, choices: &[(&str, Kind)]) -> syn::Result<Kind> {
    let ident: syn::Ident = attr
        .parse_args()
        .map_err(|e| syn::Error::new(e.span(), expected))?;
    choices
        .iter()
        .find(|(name, _)| ident == name)
        .map(|(_, kind)| kind.clone())
        .ok_or_else(|| syn::Error::new_spanned(&ident, format!("unknown argument `{ident}`: {expected}")))
}

fn parse_name_arg(attr: &Attribute, expected: &str) -> syn::Result<String> {
    let lit: LitStr = attr.parse_args().map_err(|e| syn::Error::new(e.span(), expected))?;
    let value = lit.value();
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new_spanned(&lit, format!("the name must be one word without spaces; {expected}")));
    }
    Ok(value)
}

fn parse_handler(kind: Kind, attr: &Attribute, method: &ImplItemFn, errors: &mut Errors) -> Option<Handler> {
    let sig = &method.sig;
    let mut ok = true;
    let expected = expected_signature(&kind, &sig.ident);
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!("SSH handlers must be `async fn`; expected `{expected}`"),
        ));
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, "SSH handlers cannot be generic"));
        ok = false;
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => {
            errors.push(syn::Error::new_spanned(r, format!("handlers take `&self` (state shared by every connection); expected `{expected}`")));
            ok = false;
        }
        _ => {
            errors.push(syn::Error::new_spanned(
                &sig.ident,
                format!("handlers take `&self` first; expected `{expected}`"),
            ));
            ok = false;
        }
    }
    let mut args = Vec::new();
    for input in inputs {
        match input {
            FnArg::Typed(pat) => {
                if !matches!(&*pat.pat, Pat::Ident(_) | Pat::Wild(_)) {
                    // Patterns are fine for the compiler, but our generated call passes values positionally.
                }
                args.push(Arg { ty: (*pat.ty).clone() });
            }
            FnArg::Receiver(r) => {
                errors.push(syn::Error::new_spanned(r, "`self` must be the first argument"));
                ok = false;
            }
        }
    }
    let fixed = kind.fixed().len();
    if args.len() < fixed {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "{} handlers take {} after `&self`; expected `{expected}`",
                kind.describe(),
                kind.fixed().join(", ")
            ),
        ));
        ok = false;
    } else if !kind.takes_extractors() && args.len() > fixed {
        let extra = &sig.inputs.iter().nth(fixed + 1).expect("counted");
        errors.push(syn::Error::new_spanned(
            extra,
            format!("{} handlers take no other arguments; expected `{expected}`", kind.describe()),
        ));
        ok = false;
    }
    let output = match &sig.output {
        syn::ReturnType::Default => None,
        syn::ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    if output.is_none() && !matches!(kind, Kind::Shell | Kind::Exec(_) | Kind::Subsystem(_)) {
        errors.push(syn::Error::new_spanned(
            &sig.ident,
            format!("{} handlers return a value; expected `{expected}`", kind.describe()),
        ));
        ok = false;
    }
    ok.then(|| Handler { kind, ident: sig.ident.clone(), args, output, attr_span: attr.span() })
}

fn expected_signature(kind: &Kind, ident: &syn::Ident) -> String {
    let mut args = vec!["&self".to_owned()];
    args.extend(kind.fixed().iter().map(|s| s.to_string()));
    let (extra, ret) = match kind {
        Kind::AuthNone | Kind::AuthPassword | Kind::AuthPublicKey => (", ...extractors", "Auth"),
        Kind::AuthKeyboardInteractive => (", prompter: &mut Prompter, ...extractors", "Auth"),
        Kind::AllowedAuths => ("", "MethodSet"),
        Kind::Banner => ("", "Option<String>"),
        Kind::Shell => (", io: ChannelIo, ...extractors", "ExitStatus"),
        Kind::Exec(_) => (", command: Command, io: ChannelIo, ...extractors", "ExitStatus"),
        Kind::Subsystem(_) => (", io: ChannelIo, ...extractors", "ExitStatus"),
        Kind::Pty => (", pty: &PtyRequest, ...extractors", "bool"),
        Kind::WindowChange => (", size: WindowSize, ...extractors", "bool"),
        Kind::Signal => (", signal: Signal, ...extractors", "bool"),
        Kind::ChannelSession | Kind::Env => (", ...extractors", "bool"),
    };
    format!("async fn {ident}({}{extra}) -> {ret}", args.join(", "))
}

fn slot_key(kind: &Kind) -> String {
    kind.describe()
}

fn check_duplicates(handlers: &[Handler], errors: &mut Errors) {
    for (i, h) in handlers.iter().enumerate() {
        if let Some(first) = handlers[..i].iter().find(|p| slot_key(&p.kind) == slot_key(&h.kind)) {
            errors.push(syn::Error::new(
                h.attr_span,
                format!(
                    "duplicate {} handler: `{}` already handles it; one decision has one handler",
                    h.kind.describe(),
                    first.ident
                ),
            ));
        }
    }
}
