//! Generates the `Handlers` impl from the parsed model.
//!
//! Code that converts a user's type is spanned at that type, so a type error
//! (an argument that is not an extractor, a wrong return type) lands on the
//! user's tokens with the `#[diagnostic::on_unimplemented]` sentence of the
//! trait involved.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::parse::{Arg, Fixed, Handler, Kind, Model, Pass};

/// The impl block as written (handler attributes stripped), its `Handlers`
/// impl, and the errors, if any.
///
/// Handlers with a mistake are left out of the model, so the `Handlers` impl
/// registers only well-formed ones: `.handlers(App)` still type-checks, and a
/// type error in a well-formed handler is reported in the same build as the
/// macro's own errors, each mistake once.
pub(crate) fn expand(model: &Model, error: Option<syn::Error>) -> TokenStream {
    let item = &model.item;
    let registrations = model.handlers.iter().map(register);
    let handlers_impl = handlers_impl(model, quote! { #(#registrations)* });
    let error = error.map(|e| e.to_compile_error());
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

/// The value of a fixed argument, built from `__ssh_framework_req`.
fn fixed_value(fixed: Fixed) -> TokenStream {
    let p = quote!(::ssh_framework::__private);
    match fixed {
        Fixed::User => quote!(#p::auth_user(&__ssh_framework_req)),
        Fixed::Password => quote!(#p::password(&__ssh_framework_req)),
        Fixed::PublicKey => quote! {
            match #p::public_key(&__ssh_framework_req) {
                #p::Option::Some(__ssh_framework_key) => __ssh_framework_key,
                #p::Option::None => return #p::Box::pin(async { #p::Response::Reject }),
            }
        },
        Fixed::EnvName => quote!(#p::env(&__ssh_framework_req).0),
        Fixed::EnvValue => quote!(#p::env(&__ssh_framework_req).1),
    }
}

/// `&#var`, located at the user's `ty` from its first to its last token, so a
/// mismatched type is reported on the whole argument type. Only the location
/// moves: `#var` still resolves as the binding generated at the call site.
fn borrow_at(var: &Ident, ty: &Type) -> TokenStream {
    let tokens: Vec<TokenTree> = ty.to_token_stream().into_iter().collect();
    let at =
        |token: Option<&TokenTree>| token.map_or_else(Span::call_site, |t| t.span().resolved_at(Span::call_site()));
    let amp = quote_spanned! {at(tokens.first())=> & };
    let var = Ident::new(&var.to_string(), at(tokens.last()));
    quote! { #amp #var }
}

/// Binds every argument (fixed ones from the request's fields, the rest
/// through `FromRequest`) and returns the bindings and the call's arguments.
fn bind_args(handler: &Handler) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let p = quote!(::ssh_framework::__private);
    let name = handler.ident.to_string();
    let mut lets = Vec::new();
    let mut call_args = Vec::new();
    for (i, arg) in handler.args.iter().enumerate() {
        let var = format_ident!("__ssh_framework_arg{}", i);
        match arg {
            Arg::Fixed { fixed, ty } => {
                let value = fixed_value(*fixed);
                lets.push(quote! { let #var = #value; });
                call_args.push(borrow_at(&var, ty));
            }
            Arg::Extractor { inner, pass } => {
                // `<#inner as FromRequest>` keeps the user's tokens, so an
                // unimplemented bound is reported at the whole argument type.
                lets.push(quote! {
                    let mut #var = match <#inner as #p::FromRequest>::from_request(&mut __ssh_framework_req) {
                        #p::Result::Ok(__ssh_framework_value) => __ssh_framework_value,
                        #p::Result::Err(__ssh_framework_rejection) => {
                            let __ssh_framework_response = #p::rejected(#name, __ssh_framework_rejection);
                            return #p::Box::pin(async move { __ssh_framework_response });
                        }
                    };
                });
                call_args.push(match pass {
                    Pass::Value => quote!(#var),
                    Pass::Ref => quote!(&#var),
                    Pass::RefMut => quote!(&mut #var),
                });
            }
        }
    }
    (lets, call_args)
}

/// Converts `__ssh_framework_out`, the handler's return value, through `trait_`
/// named on the user's return type, so a wrong type is reported there.
fn convert(handler: &Handler, trait_: TokenStream, method: TokenStream) -> TokenStream {
    match &handler.output {
        Some(ty) => {
            let span = ty.span().resolved_at(Span::call_site());
            quote_spanned! {span=> <#ty as #trait_>::#method(__ssh_framework_out) }
        }
        None => quote! { <() as #trait_>::#method(__ssh_framework_out) },
    }
}

fn register(handler: &Handler) -> TokenStream {
    let p = quote!(::ssh_framework::__private);
    let ident = &handler.ident;
    let cfgs = &handler.cfgs;
    let this = quote! { let __ssh_framework_this = ::core::clone::Clone::clone(&__ssh_framework_this); };

    let registration = match &handler.kind {
        Kind::AllowedAuths => {
            let user_var = format_ident!("__ssh_framework_user");
            let user = match handler.args.first() {
                Some(Arg::Fixed { ty, .. }) => borrow_at(&user_var, ty),
                _ => quote!(&#user_var),
            };
            let convert = convert(handler, quote!(::core::convert::Into<#p::MethodSet>), quote!(into));
            quote! {
                __ssh_framework_routes.allowed_auths(#p::Arc::new(
                    move |__ssh_framework_user: #p::String| -> #p::BoxFuture<'static, #p::MethodSet> {
                        #this
                        #p::Box::pin(async move {
                            let __ssh_framework_out = __ssh_framework_this.#ident(#user).await;
                            #convert
                        })
                    },
                ))?;
            }
        }
        Kind::Banner => {
            let convert = convert(handler, quote!(#p::IntoBanner), quote!(into_banner));
            quote! {
                __ssh_framework_routes.banner(#p::Arc::new(
                    move || -> #p::BoxFuture<'static, #p::Option<#p::String>> {
                        #this
                        #p::Box::pin(async move {
                            let __ssh_framework_out = __ssh_framework_this.#ident().await;
                            #convert
                        })
                    },
                ))?;
            }
        }
        kind => {
            let (lets, args) = bind_args(handler);
            let call = quote! { let __ssh_framework_out = __ssh_framework_this.#ident(#(#args),*).await; };
            let respond = match kind {
                Kind::AuthNone | Kind::AuthPassword | Kind::AuthPublicKey | Kind::AuthKeyboardInteractive => {
                    let convert = convert(handler, quote!(#p::IntoAuth), quote!(into_auth));
                    quote! { #call #p::Response::Auth(#convert) }
                }
                // A body answers at once with the body to run (not yet polled).
                Kind::Shell | Kind::Exec(_) | Kind::Subsystem(_) => {
                    let convert = convert(handler, quote!(#p::IntoExitStatus), quote!(into_exit_status));
                    quote! { #p::Response::Run(#p::Box::pin(async move { #call #convert })) }
                }
                Kind::ChannelDirectTcpip | Kind::ChannelDirectStreamlocal => {
                    let convert = convert(handler, quote!(#p::IntoForward), quote!(into_forward));
                    quote! { #call #p::Response::Forward(#convert) }
                }
                _ => {
                    let convert = convert(handler, quote!(#p::IntoDecision), quote!(into_decision));
                    quote! { #call if #convert { #p::Response::Accept } else { #p::Response::Reject } }
                }
            };
            let route = quote! {
                #p::Arc::new(
                    move |mut __ssh_framework_req: #p::Request| -> #p::BoxFuture<'static, #p::Response> {
                        #this
                        #(#lets)*
                        #p::Box::pin(async move { #respond })
                    },
                )
            };
            let slot = |s: TokenStream| quote! { __ssh_framework_routes.slot(#p::Slot::#s, #route)?; };
            match kind {
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
                Kind::ChannelDirectTcpip => slot(quote!(DirectTcpip)),
                Kind::ChannelDirectStreamlocal => slot(quote!(DirectStreamlocal)),
                Kind::X11 => slot(quote!(X11)),
                Kind::Agent => slot(quote!(Agent)),
                Kind::TcpipForward => slot(quote!(TcpipForward)),
                Kind::CancelTcpipForward => slot(quote!(CancelTcpipForward)),
                Kind::StreamlocalForward => slot(quote!(StreamlocalForward)),
                Kind::CancelStreamlocalForward => slot(quote!(CancelStreamlocalForward)),
                Kind::Exec(None) => quote! { __ssh_framework_routes.exec(#p::Option::None, #route)?; },
                Kind::Exec(Some(name)) => quote! { __ssh_framework_routes.exec(#p::Option::Some(#name), #route)?; },
                Kind::Subsystem(name) => quote! { __ssh_framework_routes.subsystem(#name, #route)?; },
                // Registered above; listed so a new kind is a compile error here.
                Kind::AllowedAuths | Kind::Banner => TokenStream::new(),
            }
        }
    };
    quote! {
        #(#cfgs)*
        {
            let __ssh_framework_this = ::core::clone::Clone::clone(&self);
            #registration
        }
    }
}
