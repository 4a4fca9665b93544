//! The handler attributes as macros of their own.
//!
//! `#[server]` expands before the attributes inside its impl block and strips
//! them, so these macros only ever run on an attribute that is not inside a
//! `#[server]` block. They exist to say so at the attribute, instead of rustc's
//! "cannot find attribute" for `#[exec]` or nothing at all for an imported one.

use proc_macro2::TokenStream;
use quote::quote;

/// The item unchanged (so nothing else fails because it is missing) and an
/// error at the attribute, which is the span of the macro call.
pub(crate) fn outside_server(name: &str, item: TokenStream) -> TokenStream {
    let message =
        format!("#[{name}] only works on a method inside an impl block annotated with #[ssh_framework::server]");
    quote! {
        ::core::compile_error! { #message }
        #item
    }
}
