//! `#[global_request("name")]`: an attribute that exists only to explain why
//! it cannot work, in `#[server]` blocks and outside them alike.
//!
//! russh 0.65's server decodes `SSH_MSG_GLOBAL_REQUEST` itself
//! (`src/server/encrypted.rs`, the `msg::GLOBAL_REQUEST` match): the four
//! forwarding requests call `server::Handler` methods, which the framework
//! routes to `#[tcpip_forward]` and friends; the `_ =>` arm answers every
//! other request with `SSH_MSG_REQUEST_FAILURE` and no handler is called.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{LitStr, Meta};

/// The global requests russh hands to a handler, and the attribute that handles each.
const FORWARDING: &[(&str, &str)] = &[
    ("tcpip-forward", "#[tcpip_forward]"),
    ("cancel-tcpip-forward", "#[cancel_tcpip_forward]"),
    ("streamlocal-forward@openssh.com", "#[streamlocal_forward]"),
    ("cancel-streamlocal-forward@openssh.com", "#[cancel_streamlocal_forward]"),
];

/// The request name in `#[global_request("name")]`, if it is written that way.
pub(crate) fn request_name(meta: &Meta) -> Option<String> {
    match meta {
        Meta::List(list) => list.parse_args::<LitStr>().ok().map(|lit| lit.value()),
        _ => None,
    }
}

/// Why `#[global_request]` is an error, with the attribute to use instead when
/// `name` is one of the forwarding requests.
pub(crate) fn unsupported(name: Option<&str>) -> String {
    let reason = "#[global_request] cannot be supported: russh 0.65's server answers every global request \
                  other than `tcpip-forward`, `cancel-tcpip-forward`, `streamlocal-forward@openssh.com` and \
                  `cancel-streamlocal-forward@openssh.com` with SSH_MSG_REQUEST_FAILURE before any handler can \
                  see it (russh src/server/encrypted.rs, the `_ =>` arm of the `msg::GLOBAL_REQUEST` match), so \
                  custom global requests cannot be handled; `keepalive@openssh.com` gets that failure too (OpenSSH \
                  clients accept a failure as a keepalive reply) and `no-more-sessions@openssh.com` is therefore \
                  not enforced";
    match name.and_then(|name| FORWARDING.iter().find(|(request, _)| *request == name)) {
        Some((request, attribute)) => format!("{reason}; `{request}` itself reaches a handler: use {attribute}"),
        None => format!(
            "{reason}; the four forwarding requests have their own attributes: {}",
            FORWARDING.iter().map(|(_, attribute)| *attribute).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The attribute used outside a `#[server]` block: the item unchanged and the
/// same explanation, at the attribute.
pub(crate) fn outside_server(attr: TokenStream, item: TokenStream) -> TokenStream {
    let name = syn::parse2::<LitStr>(attr).ok().map(|lit| lit.value());
    let message = unsupported(name.as_deref());
    quote! {
        ::core::compile_error! { #message }
        #item
    }
}
