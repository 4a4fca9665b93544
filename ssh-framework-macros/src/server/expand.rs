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

use super::parse::{Arg, Fixed, Handler, Model, Pass};
use super::vocabulary::{Respond, Route};

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
        Fixed::Certificate => quote! {
            match #p::certificate(&__ssh_framework_req) {
                #p::Option::Some(__ssh_framework_certificate) => __ssh_framework_certificate,
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
/// through `FromRequest<K>`) and returns the bindings and the call's arguments.
///
/// Extraction threads a type-level state through the arguments, so that a
/// second consuming extractor (`ChannelIo`, `Prompter`) fails to compile at
/// its own argument.
fn bind_args(handler: &Handler, marker: &Ident) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let p = quote!(::ssh_framework::__private);
    let name = handler.ident.to_string();
    let mut lets = vec![quote! { let __ssh_framework_state = #p::fresh(); }];
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
                // Spanned at the user's type, so an unsatisfied bound (not an
                // extractor, not for this kind, a second consuming one) is
                // reported on the argument.
                let span = inner.span().resolved_at(Span::call_site());
                // The path is written out (not `#p`) so that every token of the
                // call carries the argument's span, not the attribute's.
                let extract = quote_spanned! {span=>
                    ::ssh_framework::__private::extract::<::ssh_framework::__private::kind::#marker, #inner, _>(
                        &mut __ssh_framework_req,
                        __ssh_framework_state,
                    )
                };
                lets.push(quote! {
                    let (__ssh_framework_extracted, __ssh_framework_state) = #extract;
                    let mut #var = match __ssh_framework_extracted {
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
    lets.push(quote! { let _ = __ssh_framework_state; });
    (lets, call_args)
}

/// Converts `__ssh_framework_out`, the handler's return value, into the
/// kind's answer through `IntoResponse<K>` named on the user's return type,
/// so a wrong type is reported there.
fn convert(handler: &Handler, marker: &Ident) -> TokenStream {
    let p = quote!(::ssh_framework::__private);
    match &handler.output {
        Some(ty) => {
            let span = ty.span().resolved_at(Span::call_site());
            quote_spanned! {span=>
                <#ty as ::ssh_framework::__private::IntoResponse<::ssh_framework::__private::kind::#marker>>::into_response(
                    __ssh_framework_out,
                )
            }
        }
        None => quote! { <() as #p::IntoResponse<#p::kind::#marker>>::into_response(__ssh_framework_out) },
    }
}

/// `this.handler(args).await`, its future required to be `Send` at the
/// handler's name, so a `MutexGuard` held across an `.await` in the body is
/// reported at the handler, not at `#[server]`.
fn call(handler: &Handler, args: &[TokenStream]) -> TokenStream {
    let ident = &handler.ident;
    let span = ident.span().resolved_at(Span::call_site());
    let future = quote_spanned! {span=> ::ssh_framework::__private::assert_send(__ssh_framework_this.#ident(#(#args),*)) };
    quote! { let __ssh_framework_out = #future.await; }
}

fn register(handler: &Handler) -> TokenStream {
    let p = quote!(::ssh_framework::__private);
    let cfgs = &handler.cfgs;
    let spec = handler.kind.spec;
    let marker = Ident::new(spec.marker, Span::call_site());
    let this = quote! { let __ssh_framework_this = ::core::clone::Clone::clone(&__ssh_framework_this); };
    let convert = convert(handler, &marker);

    let registration = match spec.route {
        Route::AllowedAuths => {
            let user_var = format_ident!("__ssh_framework_user");
            let user = match handler.args.first() {
                Some(Arg::Fixed { ty, .. }) => borrow_at(&user_var, ty),
                _ => quote!(&#user_var),
            };
            let call = call(handler, &[user]);
            quote! {
                #p::register_allowed_auths(__ssh_framework_routes, #p::Arc::new(
                    move |__ssh_framework_user: #p::String| -> #p::BoxFuture<'static, #p::MethodSet> {
                        #this
                        #p::Box::pin(async move { #call #convert })
                    },
                ))?;
            }
        }
        Route::Banner => {
            let call = call(handler, &[]);
            quote! {
                #p::register_banner(__ssh_framework_routes, #p::Arc::new(
                    move || -> #p::BoxFuture<'static, #p::Option<#p::String>> {
                        #this
                        #p::Box::pin(async move { #call #convert })
                    },
                ))?;
            }
        }
        route => {
            let (lets, args) = bind_args(handler, &marker);
            let call = call(handler, &args);
            let respond = match spec.respond {
                Respond::Auth => quote! { #call #p::Response::Auth(#convert) },
                // A body answers at once with the body to run (not yet polled).
                Respond::Body => quote! { #p::Response::Run(#p::Box::pin(async move { #call #convert })) },
                Respond::Forward => quote! { #call #p::Response::Forward(#convert) },
                Respond::Decision | Respond::Direct => quote! { #call #p::decision(#convert) },
            };
            let handler_route = quote! {
                #p::Arc::new(
                    move |mut __ssh_framework_req: #p::Request| -> #p::BoxFuture<'static, #p::Response> {
                        #this
                        #(#lets)*
                        #p::Box::pin(async move { #respond })
                    },
                )
            };
            let name = handler.kind.name.as_deref();
            match (route, name) {
                (Route::Exec, None) => quote! { #p::register_exec(__ssh_framework_routes, #p::Option::None, #handler_route)?; },
                (Route::Exec, Some(name)) => {
                    quote! { #p::register_exec(__ssh_framework_routes, #p::Option::Some(#name), #handler_route)?; }
                }
                (Route::Subsystem, name) => {
                    let name = name.unwrap_or_default();
                    quote! { #p::register_subsystem(__ssh_framework_routes, #name, #handler_route)?; }
                }
                _ => quote! { #p::register(__ssh_framework_routes, #p::Slot::#marker, #handler_route)?; },
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
