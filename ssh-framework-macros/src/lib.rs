//! Procedural macros of [ssh-framework](https://docs.rs/ssh-framework). Use them
//! through the `ssh_framework` crate, which re-exports them.
//!
//! `#[server]` does the work. The handler attributes (`#[exec]`, `#[auth]`,
//! ...) are read and stripped by `#[server]`; as macros of their own they only
//! report that they were used outside a `#[server]` impl block.
//! `#[global_request]` is an error everywhere, explaining why.

mod global_request;
mod handler_attribute;
mod server;

use proc_macro::TokenStream;

#[doc = include_str!("docs/server.md")]
#[proc_macro_attribute]
pub fn server(attr: TokenStream, item: TokenStream) -> TokenStream {
    server::server(attr.into(), item.into()).into()
}

#[doc = include_str!("docs/auth.md")]
#[proc_macro_attribute]
pub fn auth(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("auth", item.into()).into()
}

#[doc = include_str!("docs/allowed_auths.md")]
#[proc_macro_attribute]
pub fn allowed_auths(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("allowed_auths", item.into()).into()
}

#[doc = include_str!("docs/banner.md")]
#[proc_macro_attribute]
pub fn banner(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("banner", item.into()).into()
}

#[doc = include_str!("docs/channel.md")]
#[proc_macro_attribute]
pub fn channel(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("channel", item.into()).into()
}

#[doc = include_str!("docs/pty.md")]
#[proc_macro_attribute]
pub fn pty(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("pty", item.into()).into()
}

#[doc = include_str!("docs/shell.md")]
#[proc_macro_attribute]
pub fn shell(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("shell", item.into()).into()
}

#[doc = include_str!("docs/exec.md")]
#[proc_macro_attribute]
pub fn exec(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("exec", item.into()).into()
}

#[doc = include_str!("docs/subsystem.md")]
#[proc_macro_attribute]
pub fn subsystem(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("subsystem", item.into()).into()
}

#[doc = include_str!("docs/window_change.md")]
#[proc_macro_attribute]
pub fn window_change(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("window_change", item.into()).into()
}

#[doc = include_str!("docs/signal.md")]
#[proc_macro_attribute]
pub fn signal(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("signal", item.into()).into()
}

#[doc = include_str!("docs/x11.md")]
#[proc_macro_attribute]
pub fn x11(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("x11", item.into()).into()
}

#[doc = include_str!("docs/agent.md")]
#[proc_macro_attribute]
pub fn agent(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("agent", item.into()).into()
}

#[doc = include_str!("docs/tcpip_forward.md")]
#[proc_macro_attribute]
pub fn tcpip_forward(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("tcpip_forward", item.into()).into()
}

#[doc = include_str!("docs/cancel_tcpip_forward.md")]
#[proc_macro_attribute]
pub fn cancel_tcpip_forward(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("cancel_tcpip_forward", item.into()).into()
}

#[doc = include_str!("docs/streamlocal_forward.md")]
#[proc_macro_attribute]
pub fn streamlocal_forward(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("streamlocal_forward", item.into()).into()
}

#[doc = include_str!("docs/cancel_streamlocal_forward.md")]
#[proc_macro_attribute]
pub fn cancel_streamlocal_forward(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handler_attribute::outside_server("cancel_streamlocal_forward", item.into()).into()
}

#[doc = include_str!("docs/global_request.md")]
#[proc_macro_attribute]
pub fn global_request(attr: TokenStream, item: TokenStream) -> TokenStream {
    global_request::outside_server(attr.into(), item.into()).into()
}
