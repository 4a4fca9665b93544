//! `#[server]`: collects the handler methods of an impl block and generates its `Handlers` impl.

mod expand;
mod parse;
mod vocabulary;

use proc_macro2::TokenStream;

pub(crate) fn server(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: syn::ItemImpl = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "#[server] goes on an impl block: `#[ssh_framework::server] impl App { ... }`",
            );
            let e = e.to_compile_error();
            return quote::quote! { #item #e };
        }
    };
    let mut errors = parse::Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            &attr,
            "#[server] takes no arguments; write `#[ssh_framework::server]`",
        ));
    }
    let model = parse::parse(item, &mut errors);
    expand::expand(&model, errors.into_error())
}
