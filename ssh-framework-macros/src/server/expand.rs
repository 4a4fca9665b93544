//! Generates the `Handlers` impl from the parsed model.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

use super::parse::{Handler, Kind, Model};

pub(crate) fn expand(model: &Model) -> TokenStream {
    let item = &model.item;
    let registrations = model.handlers.iter().map(register);
    let handlers_impl = handlers_impl(model, quote! { #(#registrations)* });
    quote! {
        #item
        #handlers_impl
    }
}

/// The impl block as written (handler attributes stripped) and a `Handlers` impl
/// that registers nothing: one mistake gives one error, not a cascade.
pub(crate) fn expand_error(model: &Model, error: syn::Error) -> TokenStream {
    let item = &model.item;
    let error = error.to_compile_error();
    let handlers_impl = handlers_impl(model, TokenStream::new());
    quote! {
        #item
        #handlers_impl
        #error
    }
}

fn handlers_impl(model: &Model, body: TokenStream) -> TokenStream {
    let self_ty = &model.item.self_ty;
    let (impl_generics, _, where_clause) = model.item.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::ssh_framework::__private::Handlers for #self_ty #where_clause {
            #[allow(unused_variables, unused_mut, clippy::needless_borrow)]
            fn register(
                self: ::ssh_framework::__private::Arc<Self>,
                __ssh_framework_routes: &mut ::ssh_framework::__private::Routes,
            ) -> ::ssh_framework::__private::Result<(), ::ssh_framework::__private::RouteConflict> {
                #body
                ::ssh_framework::__private::Result::Ok(())
            }
        }
    }
}

/// Builds one argument: fixed arguments from the request's fields, the rest through `FromRequest`.
fn bind_args(handler: &Handler) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let p = quote!(::ssh_framework::__private);
    let name = handler.ident.to_string();
    let fixed: Vec<TokenStream> = match handler.kind {
        Kind::AuthNone | Kind::AuthKeyboardInteractive => vec![quote!(#p::auth_user(&__ssh_framework_req))],
        Kind::AuthPassword => vec![quote!(#p::auth_user(&__ssh_framework_req)), quote!(#p::password(&__ssh_framework_req))],
        Kind::AuthPublicKey => vec![
            quote!(#p::auth_user(&__ssh_framework_req)),
            quote! {
                match #p::public_key(&__ssh_framework_req) {
                    #p::Option::Some(key) => key,
                    #p::Option::None => return #p::Box::pin(async { #p::Response::Reject }),
                }
            },
        ],
        Kind::Env => {
            vec![quote!(#p::env(&__ssh_framework_req).0), quote!(#p::env(&__ssh_framework_req).1)]
        }
        _ => Vec::new(),
    };
    let mut lets = Vec::new();
    let mut call_args = Vec::new();
    for (i, arg) in handler.args.iter().enumerate() {
        let var = format_ident!("__ssh_framework_arg{}", i);
        if let Some(value) = fixed.get(i) {
            lets.push(quote! { let #var = #value; });
            let span = arg.ty.span();
            call_args.push(quote_spanned! {span=> &#var });
            continue;
        }
        let (inner, reference) = match &arg.ty {
            Type::Reference(r) => (&*r.elem, Some(r.mutability.is_some())),
            other => (other, None),
        };
        let span = arg.ty.span();
        lets.push(quote_spanned! {span=>
            let mut #var = match <#inner as #p::FromRequest>::from_request(&mut __ssh_framework_req) {
                #p::Result::Ok(value) => value,
                #p::Result::Err(rejection) => {
                    let response = #p::rejected(#name, rejection);
                    return #p::Box::pin(async move { response });
                }
            };
        });
        call_args.push(match reference {
            None => quote!(#var),
            Some(false) => quote!(&#var),
            Some(true) => quote!(&mut #var),
        });
    }
    (lets, call_args)
}

fn register(handler: &Handler) -> TokenStream {
    let p = quote!(::ssh_framework::__private);
    let ident = &handler.ident;
    let out_span = handler.output.as_ref().map(|t| t.span()).unwrap_or_else(|| ident.span());
    let (lets, args) = bind_args(handler);
    let call = quote! { __ssh_framework_this.#ident(#(#args),*).await };

    match &handler.kind {
        Kind::AllowedAuths => {
            let convert = quote_spanned! {out_span=> <#p::MethodSet as ::core::convert::From<_>>::from(__ssh_framework_out) };
            return quote! {{
                let __ssh_framework_this = ::core::clone::Clone::clone(&self);
                __ssh_framework_routes.allowed_auths(#p::Arc::new(move |__ssh_framework_user: #p::String| {
                    let __ssh_framework_this = ::core::clone::Clone::clone(&__ssh_framework_this);
                    #p::Box::pin(async move {
                        let __ssh_framework_out = __ssh_framework_this.#ident(&__ssh_framework_user).await;
                        #convert
                    }) as #p::BoxFuture<'static, #p::MethodSet>
                }))?;
            }};
        }
        Kind::Banner => {
            let convert = quote_spanned! {out_span=> #p::IntoBanner::into_banner(__ssh_framework_out) };
            return quote! {{
                let __ssh_framework_this = ::core::clone::Clone::clone(&self);
                __ssh_framework_routes.banner(#p::Arc::new(move || {
                    let __ssh_framework_this = ::core::clone::Clone::clone(&__ssh_framework_this);
                    #p::Box::pin(async move {
                        let __ssh_framework_out = __ssh_framework_this.#ident().await;
                        #convert
                    }) as #p::BoxFuture<'static, #p::Option<#p::String>>
                }))?;
            }};
        }
        _ => {}
    }

    let respond = match &handler.kind {
        Kind::AuthNone | Kind::AuthPassword | Kind::AuthPublicKey | Kind::AuthKeyboardInteractive => quote_spanned! {out_span=>
            #p::Response::Auth(#p::IntoAuth::into_auth(#call))
        },
        Kind::Shell | Kind::Exec(_) | Kind::Subsystem(_) => {
            let convert = quote_spanned! {out_span=> #p::IntoExitStatus::into_exit_status(__ssh_framework_out) };
            quote! {
                #p::Response::Run(#p::Box::pin(async move {
                    let __ssh_framework_out = #call;
                    #convert
                }))
            }
        }
        _ => quote_spanned! {out_span=>
            if #p::IntoDecision::into_decision(#call) { #p::Response::Accept } else { #p::Response::Reject }
        },
    };
    // A body handler answers at once with the body to run (not yet polled); others after the call.
    let future = quote! { #p::Box::pin(async move { #respond }) };
    let route = quote! {
        {
            let __ssh_framework_this = ::core::clone::Clone::clone(&self);
            let __ssh_framework_route: #p::Route = #p::Arc::new(move |mut __ssh_framework_req: #p::Request| {
                let __ssh_framework_this = ::core::clone::Clone::clone(&__ssh_framework_this);
                #(#lets)*
                #future as #p::BoxFuture<'static, #p::Response>
            });
            __ssh_framework_route
        }
    };
    let slot = |s: TokenStream| quote! { __ssh_framework_routes.slot(#p::Slot::#s, #route)?; };
    match &handler.kind {
        Kind::AuthNone => slot(quote!(AuthNone)),
        Kind::AuthPassword => slot(quote!(AuthPassword)),
        Kind::AuthPublicKey => slot(quote!(AuthPublicKey)),
        Kind::AuthKeyboardInteractive => slot(quote!(AuthKeyboardInteractive)),
        Kind::ChannelSession => slot(quote!(ChannelSession)),
        Kind::Pty => slot(quote!(Pty)),
        Kind::Env => slot(quote!(Env)),
        Kind::Shell => slot(quote!(Shell)),
        Kind::WindowChange => slot(quote!(WindowChange)),
        Kind::Signal => slot(quote!(Signal)),
        Kind::Exec(None) => quote! { __ssh_framework_routes.exec(#p::Option::None, #route)?; },
        Kind::Exec(Some(name)) => quote! { __ssh_framework_routes.exec(#p::Option::Some(#name), #route)?; },
        Kind::Subsystem(name) => quote! { __ssh_framework_routes.subsystem(#name, #route)?; },
        Kind::AllowedAuths | Kind::Banner => unreachable!("returned above"),
    }
}
