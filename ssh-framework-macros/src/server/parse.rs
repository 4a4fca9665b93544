//! Parses a `#[server]` impl block into a typed model of its handlers, stripping
//! the handler attributes and accumulating every error.
//!
//! Every check that can be made on the tokens is made here, so a mistake is
//! reported at the offending tokens with the expected signature; what only the
//! type checker knows (is this type an extractor, a valid return type) is left
//! to the `#[diagnostic::on_unimplemented]` traits the expansion names.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, Meta, Type};

use super::vocabulary::{self, NameArg, Respond, Spec};

/// What a handler decides: an entry of the vocabulary, and the name of an
/// `#[exec("name")]` or `#[subsystem("name")]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kind {
    pub(crate) spec: &'static Spec,
    pub(crate) name: Option<String>,
}

impl Kind {
    /// The attribute as a user writes it, for messages.
    pub(crate) fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("#[{}({name:?})]", self.spec.attribute),
            None => self.spec.describe(),
        }
    }

    /// The fixed leading arguments after `&self`.
    pub(crate) fn fixed(&self) -> &'static [Fixed] {
        self.spec.fixed
    }

    /// Whether arguments after the fixed ones are extractors.
    fn takes_extractors(&self) -> bool {
        self.spec.extractors
    }

    /// Whether the handler may omit its return type (bodies return `()` as success).
    fn may_return_unit(&self) -> bool {
        self.spec.respond == Respond::Body
    }
}

/// A fixed leading argument, taken from the request's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixed {
    User,
    Password,
    PublicKey,
    Certificate,
    EnvName,
    EnvValue,
}

impl Fixed {
    /// `name: Type`, as the docs write the argument.
    fn describe(self) -> &'static str {
        match self {
            Fixed::User => "user: &str",
            Fixed::Password => "password: &str",
            Fixed::PublicKey => "key: &PublicKey",
            Fixed::Certificate => "certificate: &Certificate",
            Fixed::EnvName => "name: &str",
            Fixed::EnvValue => "value: &str",
        }
    }

    /// What the argument holds, for messages.
    fn what(self) -> &'static str {
        match self {
            Fixed::User => "`&str`, the user name,",
            Fixed::Password => "`&str`, the password,",
            Fixed::PublicKey => "`&PublicKey`, the verified key,",
            Fixed::Certificate => "`&Certificate`, the verified certificate,",
            Fixed::EnvName => "`&str`, the variable's name,",
            Fixed::EnvValue => "`&str`, the variable's value,",
        }
    }

    /// Whether `ty` is acceptable. `&str` is checked exactly; for `&PublicKey` (and `&Certificate`)
    /// only the reference is, and the type checker compares the pointee (which
    /// may be imported under another name).
    fn accepts(self, ty: &Type) -> bool {
        let Type::Reference(r) = ungroup(ty) else { return false };
        if r.mutability.is_some() {
            return false;
        }
        match self {
            Fixed::PublicKey | Fixed::Certificate => true,
            _ => matches!(ungroup(&r.elem), Type::Path(p) if p.qself.is_none() && p.path.is_ident("str")),
        }
    }
}

/// How an extractor is handed to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Value,
    Ref,
    RefMut,
}

/// One handler argument after `&self`.
#[derive(Debug)]
pub(crate) enum Arg {
    /// A fixed leading argument; `ty` is the type as written, for spans.
    Fixed { fixed: Fixed, ty: Type },
    /// An extractor: `inner` is built through `FromRequest` and passed as `pass` says.
    Extractor { inner: Type, pass: Pass },
}

/// One annotated method.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) kind: Kind,
    pub(crate) ident: syn::Ident,
    pub(crate) args: Vec<Arg>,
    /// The declared return type; `None` for `()`.
    pub(crate) output: Option<Type>,
    /// The method's `#[cfg]` attributes, repeated on its registration.
    pub(crate) cfgs: Vec<Attribute>,
    /// The handler attribute, for errors that point at it.
    attr: Attribute,
}

/// The parsed impl block.
#[derive(Debug)]
pub(crate) struct Model {
    /// The impl block as written, handler attributes stripped.
    pub(crate) item: ItemImpl,
    pub(crate) handlers: Vec<Handler>,
}

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
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            reject_on_non_method(impl_item, errors);
            continue;
        };
        let ours = take_handler_attributes(&mut method.attrs);
        let Some(((first_name, first), extra)) = ours.split_first() else {
            continue;
        };
        for (_, attr) in extra {
            errors.push(syn::Error::new_spanned(
                attr,
                format!(
                    "a method handles one kind of request and `{}` already has #[{first_name}]; \
                     put this handler on a method of its own",
                    method.sig.ident
                ),
            ));
        }
        let kind = match parse_kind(first_name, first) {
            Ok(kind) => kind,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(handler) = parse_handler(kind, first, method, errors) {
            handlers.push(handler);
        }
    }
    check_duplicates(&handlers, errors);
    if let Some((_, path, _)) = &item.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "#[server] goes on an inherent impl block (`impl App { ... }`), not on a trait impl",
        ));
        // The methods are not the type's own, so registering them would only add errors.
        handlers.clear();
    }
    Model { item, handlers }
}

/// The attribute's handler name if it is one of ours, written `#[exec]` or
/// `#[ssh_framework::exec]`. The path form exists for the attributes
/// `ssh_framework` exports, which are all but `env`.
fn handler_attribute_name(attr: &Attribute) -> Option<String> {
    let path = attr.path();
    let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
    let (last, by_path) = match segments.as_slice() {
        [only] if path.leading_colon.is_none() => (only, false),
        [krate, last] if krate.ident == "ssh_framework" && krate.arguments.is_none() => (last, true),
        _ => return None,
    };
    let name = last.ident.to_string();
    let known = vocabulary::is_attribute(&name) && !(by_path && name == "env");
    (known && last.arguments.is_none()).then_some(name)
}

/// Removes our attributes from `attrs` and returns them with their names, in order.
fn take_handler_attributes(attrs: &mut Vec<Attribute>) -> Vec<(String, Attribute)> {
    let mut ours = Vec::new();
    attrs.retain(|attr| match handler_attribute_name(attr) {
        Some(name) => {
            ours.push((name, attr.clone()));
            false
        }
        None => true,
    });
    ours
}

fn reject_on_non_method(impl_item: &mut ImplItem, errors: &mut Errors) {
    let attrs = match impl_item {
        ImplItem::Const(c) => &mut c.attrs,
        ImplItem::Type(t) => &mut t.attrs,
        ImplItem::Macro(m) => &mut m.attrs,
        _ => return,
    };
    for (name, attr) in take_handler_attributes(attrs) {
        errors.push(syn::Error::new_spanned(
            attr,
            format!("#[{name}] goes on an `async fn` method of the impl block"),
        ));
    }
}

fn parse_kind(name: &str, attr: &Attribute) -> syn::Result<Kind> {
    if name == "global_request" {
        return Err(syn::Error::new_spanned(
            attr,
            crate::global_request::unsupported(crate::global_request::request_name(&attr.meta).as_deref()),
        ));
    }
    let specs: Vec<&'static Spec> = vocabulary::with_attribute(name).collect();
    let Some(first) = specs.first().copied() else {
        return Err(syn::Error::new_spanned(attr, format!("#[{name}] is not a handler attribute")));
    };
    let kind = |spec, name| Kind { spec, name };
    if first.choice.is_some() {
        let (what, example) = match name {
            "auth" => ("authentication method", "#[auth(password)]"),
            _ => ("channel type", "#[channel(session)]"),
        };
        let choices: Vec<(&str, &'static Spec)> = specs.iter().map(|s| (s.choice.unwrap_or_default(), *s)).collect();
        return parse_choice(attr, what, example, &choices).map(|spec| kind(spec, None));
    }
    match first.name {
        NameArg::No => no_arguments(attr, name).map(|()| kind(first, None)),
        NameArg::Optional => match &attr.meta {
            Meta::Path(_) => Ok(kind(first, None)),
            _ => parse_name(
                attr,
                "#[exec] takes no argument (any command) or a program name as a string: #[exec(\"git-upload-pack\")]",
            )
            .map(|n| kind(first, Some(n))),
        },
        NameArg::Required => parse_name(
            attr,
            "#[subsystem] takes the subsystem name as a string: #[subsystem(\"sftp\")]",
        )
        .map(|n| kind(first, Some(n))),
    }
}

/// The span of an attribute's arguments with their delimiters, such as `(foo)`.
fn arguments_span(meta: &Meta) -> Span {
    match meta {
        Meta::Path(path) => path.span(),
        Meta::List(list) => list.delimiter.span().join(),
        Meta::NameValue(nv) => nv.value.span(),
    }
}

/// One identifier out of `choices`, as in `#[auth(password)]`.
fn parse_choice(
    attr: &Attribute,
    what: &str,
    example: &str,
    choices: &[(&str, &'static Spec)],
) -> syn::Result<&'static Spec> {
    let name = attr
        .path()
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let listed = choices.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let usage = format!("#[{name}(...)] takes one {what}: {listed}");
    let ident = match &attr.meta {
        Meta::List(list) => list
            .parse_args::<syn::Ident>()
            .map_err(|_| syn::Error::new(arguments_span(&attr.meta), format!("{usage}; for example {example}")))?,
        Meta::Path(_) => {
            return Err(syn::Error::new_spanned(
                attr,
                format!("#[{name}] needs the {what}, one of: {listed}; for example {example}"),
            ));
        }
        Meta::NameValue(_) => return Err(syn::Error::new_spanned(attr, format!("{usage}; for example {example}"))),
    };
    if let Some((_, spec)) = choices.iter().find(|(n, _)| ident == n) {
        return Ok(spec);
    }
    let hint = similar(&ident.to_string(), choices.iter().map(|(n, _)| *n))
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Err(syn::Error::new_spanned(
        &ident,
        format!("unknown {what} `{ident}`{hint}; {usage}"),
    ))
}

/// A one-word string, as in `#[subsystem("sftp")]`.
fn parse_name(attr: &Attribute, usage: &str) -> syn::Result<String> {
    let lit: LitStr = match &attr.meta {
        Meta::List(list) => list
            .parse_args()
            .map_err(|_| syn::Error::new(arguments_span(&attr.meta), usage))?,
        _ => return Err(syn::Error::new_spanned(attr, usage)),
    };
    let value = lit.value();
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new_spanned(
            &lit,
            format!("the name must be one word without spaces; {usage}"),
        ));
    }
    Ok(value)
}

fn no_arguments(attr: &Attribute, name: &str) -> syn::Result<()> {
    match &attr.meta {
        Meta::Path(_) => Ok(()),
        other => Err(syn::Error::new(
            arguments_span(other),
            format!("#[{name}] takes no arguments; write `#[{name}]`"),
        )),
    }
}

/// The choice closest to a misspelt `word`, if one is close enough to be a likely typo.
fn similar<'a>(word: &str, choices: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    choices
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) || c.starts_with(word) || word.starts_with(c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn parse_handler(kind: Kind, attr: &Attribute, method: &ImplItemFn, errors: &mut Errors) -> Option<Handler> {
    let sig = &method.sig;
    let expected = expected_signature(&kind, &sig.ident);
    let mut ok = true;
    let mut fail = |error: syn::Error| {
        errors.push(error);
        ok = false;
    };
    if sig.asyncness.is_none() {
        fail(syn::Error::new_spanned(
            sig.fn_token,
            format!("SSH handlers must be `async fn`; expected `{expected}`"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        fail(syn::Error::new_spanned(
            unsafety,
            format!("SSH handlers cannot be `unsafe`; expected `{expected}`"),
        ));
    }
    if !sig.generics.params.is_empty() {
        fail(syn::Error::new_spanned(
            &sig.generics,
            "SSH handlers cannot be generic: the framework calls them with the types of their signature",
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        fail(syn::Error::new_spanned(
            where_clause,
            "SSH handlers cannot have a `where` clause",
        ));
    }

    let mut inputs = sig.inputs.iter().peekable();
    match inputs.peek() {
        Some(FnArg::Receiver(r)) => {
            inputs.next();
            match &*r.ty {
                Type::Reference(reference) if reference.mutability.is_none() => {}
                Type::Reference(_) => fail(syn::Error::new_spanned(
                    r,
                    format!(
                        "handlers take `&self`, not `&mut self`: one value serves every connection, \
                         so keep changing state behind a `Mutex` or an atomic; expected `{expected}`"
                    ),
                )),
                _ => fail(syn::Error::new_spanned(
                    r,
                    format!(
                        "handlers take `&self`, not `{}`: one value serves every connection; expected `{expected}`",
                        if r.colon_token.is_some() { "self: ..." } else { "self" }
                    ),
                )),
            }
        }
        Some(first) => fail(syn::Error::new_spanned(
            first,
            format!("handlers take `&self` first; expected `{expected}`"),
        )),
        None => fail(syn::Error::new(
            sig.paren_token.span.join(),
            format!("handlers take `&self` first; expected `{expected}`"),
        )),
    }

    let mut typed = Vec::new();
    for input in inputs {
        match input {
            FnArg::Typed(pat) => typed.push(pat),
            FnArg::Receiver(r) => fail(syn::Error::new_spanned(r, "`self` can only be the first argument")),
        }
    }

    let fixed = kind.fixed();
    let mut args = Vec::new();
    if typed.len() < fixed.len() {
        let missing: Vec<&str> = fixed[typed.len()..].iter().map(|f| f.describe()).collect();
        fail(syn::Error::new(
            sig.paren_token.span.join(),
            format!(
                "missing `{}`: {} handlers take `{}` after `&self`; expected `{expected}`",
                missing.join(", "),
                kind.describe(),
                fixed.iter().map(|f| f.describe()).collect::<Vec<_>>().join(", "),
            ),
        ));
    }
    for (pat, fixed) in typed.iter().zip(fixed) {
        if fixed.accepts(&pat.ty) {
            args.push(Arg::Fixed {
                fixed: *fixed,
                ty: (*pat.ty).clone(),
            });
        } else {
            fail(syn::Error::new_spanned(
                &pat.ty,
                format!(
                    "expected {} here: {} handlers are `{expected}`",
                    fixed.what(),
                    kind.describe()
                ),
            ));
        }
    }
    let extractors = typed.iter().skip(fixed.len());
    if !kind.takes_extractors() {
        if let Some(extra) = extractors.clone().next() {
            fail(syn::Error::new_spanned(
                extra,
                format!(
                    "{} handlers take no other arguments; expected `{expected}`",
                    kind.describe()
                ),
            ));
        }
    } else {
        for pat in extractors {
            match ungroup(&pat.ty) {
                Type::ImplTrait(_) => fail(syn::Error::new_spanned(
                    &pat.ty,
                    "handler arguments are extractors with a concrete type, such as `User` or `ChannelIo`, not `impl Trait`",
                )),
                Type::Reference(r) if matches!(ungroup(&r.elem), Type::Path(p) if p.qself.is_none() && p.path.is_ident("str")) => {
                    fail(syn::Error::new_spanned(
                        &pat.ty,
                        format!(
                            "`&str` is not an extractor: {} handlers take `{expected}`; \
                             for the user name take `User`, for an exec's command line `Command`",
                            kind.describe()
                        ),
                    ))
                }
                Type::Reference(r) => args.push(Arg::Extractor {
                    inner: (*r.elem).clone(),
                    pass: if r.mutability.is_some() {
                        Pass::RefMut
                    } else {
                        Pass::Ref
                    },
                }),
                other => args.push(Arg::Extractor {
                    inner: other.clone(),
                    pass: Pass::Value,
                }),
            }
        }
    }

    let output = match &sig.output {
        syn::ReturnType::Default => None,
        syn::ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    match &output {
        None if !kind.may_return_unit() => fail(syn::Error::new_spanned(
            &sig.ident,
            format!("{} handlers return a value; expected `{expected}`", kind.describe()),
        )),
        Some(ty @ Type::ImplTrait(_)) => fail(syn::Error::new_spanned(
            ty,
            format!("handlers return a concrete type, not `impl Trait`; expected `{expected}`"),
        )),
        _ => {}
    }

    let cfgs = method
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect();
    ok.then(|| Handler {
        kind,
        ident: sig.ident.clone(),
        args,
        output,
        cfgs,
        attr: attr.clone(),
    })
}

/// `ty` without the invisible groups a `macro_rules!` expansion leaves around it.
fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        Type::Paren(p) => ungroup(&p.elem),
        other => other,
    }
}

fn expected_signature(kind: &Kind, ident: &syn::Ident) -> String {
    let mut args = vec!["&self"];
    args.extend(kind.fixed().iter().map(|f| f.describe()));
    let spec = kind.spec;
    format!("async fn {ident}({}{}) -> {}", args.join(", "), spec.typical, spec.returns)
}

/// Reports the second of two handlers for one decision. Handlers under
/// different `#[cfg]`s may both exist in source; if both are compiled in,
/// building the server reports the `RouteConflict`.
fn check_duplicates(handlers: &[Handler], errors: &mut Errors) {
    let cfg_key = |h: &Handler| {
        h.cfgs
            .iter()
            .map(|a| quote::ToTokens::to_token_stream(a).to_string())
            .collect::<Vec<_>>()
    };
    for (i, h) in handlers.iter().enumerate() {
        if let Some(first) = handlers[..i]
            .iter()
            .find(|p| p.kind == h.kind && cfg_key(p) == cfg_key(h))
        {
            errors.push(syn::Error::new_spanned(
                &h.attr,
                format!(
                    "duplicate {} handler: `{}` already handles these requests; keep one of the two",
                    h.kind.describe(),
                    first.ident
                ),
            ));
        }
    }
}
