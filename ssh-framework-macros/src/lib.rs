//! Procedural macros of ssh-framework.
use proc_macro::TokenStream;
/// placeholder
#[proc_macro_attribute]
pub fn server(_attr: TokenStream, item: TokenStream) -> TokenStream { item }
