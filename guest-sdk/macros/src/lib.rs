//! The `#[service]` attribute of `wasm-rpyc-guest`, which re-exports it and
//! documents it.

#![deny(missing_docs)]

mod wit_type;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    Error, Expr, ExprArray, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Lit, Pat, ReturnType,
    Type,
};

/// The shared WIT package, `wasm-rpyc:service`, the generated world builds on.
const SHARED_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");

/// Prefix of the methods a service exposes.
const EXPOSED_PREFIX: &str = "exposed_";

/// The hooks a service may define, as Rust and WIT name them.
const HOOKS: [(&str, &str); 2] = [
    ("on_connect", "on-connect"),
    ("on_disconnect", "on-disconnect"),
];

/// Makes an impl block a service: see `wasm_rpyc_guest::service`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut aliases = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if !meta.path.is_ident("aliases") {
            return Err(meta.error("#[service] takes only `aliases = [\"NAME\", ...]`"));
        }
        let list: ExprArray = meta.value()?.parse()?;
        for item in list.elems {
            match item {
                Expr::Lit(lit) => match lit.lit {
                    Lit::Str(name) => aliases.push(name.value()),
                    other => return Err(Error::new(other.span(), "an alias is a string")),
                },
                other => return Err(Error::new(other.span(), "an alias is a string")),
            }
        }
        Ok(())
    });
    syn::parse_macro_input!(attr with parser);
    let block = syn::parse_macro_input!(item as ItemImpl);
    expand(aliases, block)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// One function the component exports: an exposed method or a hook.
struct Export<'a> {
    method: &'a ImplItemFn,
    wit_name: String,
    /// Whether the method takes `&self` or `&mut self`.
    has_receiver: bool,
    params: Vec<Param<'a>>,
    /// The WIT result type, if any.
    result: Option<String>,
}

/// A parameter of an export, as Rust and WIT name and type it.
struct Param<'a> {
    name: &'a Ident,
    wit_name: String,
    ty: &'a Type,
    wit_ty: String,
}

fn expand(aliases: Vec<String>, block: ItemImpl) -> syn::Result<TokenStream2> {
    if !block.generics.params.is_empty() || block.trait_.is_some() {
        return Err(Error::new(
            block.impl_token.span(),
            "#[service] goes on a plain `impl Name { ... }` block",
        ));
    }
    let Type::Path(self_path) = &*block.self_ty else {
        return Err(Error::new(
            block.self_ty.span(),
            "#[service] needs a named type",
        ));
    };
    let name = &self_path
        .path
        .segments
        .last()
        .expect("a path has a segment")
        .ident;
    let exports = exports_of(&block)?;
    if exports.iter().all(|e| !e.wit_name.starts_with("exposed-")) {
        return Err(Error::new(
            name.span(),
            "a service exposes at least one method: name it `exposed_...`",
        ));
    }
    let aliases = if aliases.is_empty() {
        vec![default_alias(&name.to_string())]
    } else {
        aliases.iter().map(|a| a.to_uppercase()).collect()
    };
    let has_state = exports.iter().any(|e| e.has_receiver);
    let mut wit = world(&exports);
    let forwards = exports.iter().map(|e| forward(name, e, has_state));
    // A connection's state goes when it ends, hook or no hook.
    let forget_at_disconnect =
        (has_state && !exports.iter().any(|e| e.wit_name == "on-disconnect")).then(|| {
            wit.insert_str(wit.len() - 1, "export on-disconnect: func();\n");
            quote! {
                fn on_disconnect() {
                    forget_state();
                }
            }
        });
    let state = has_state.then(|| {
        quote! {
            ::std::thread_local! {
                static STATE: ::core::cell::RefCell<::std::collections::BTreeMap<u64, #name>> =
                    const { ::core::cell::RefCell::new(::std::collections::BTreeMap::new()) };
            }

            /// The running connection's service object: one per connection
            /// (a shared instance serves them all).
            fn with_state<R>(f: impl FnOnce(&mut #name) -> R) -> R {
                let connection = ::wasm_rpyc_guest::peer::connection();
                STATE.with(|cell| {
                    let mut states = cell.borrow_mut();
                    f(states.entry(connection).or_default())
                })
            }

            /// The running connection has ended: its service object goes.
            fn forget_state() {
                let connection = ::wasm_rpyc_guest::peer::connection();
                let gone = STATE.with(|cell| cell.borrow_mut().remove(&connection));
                drop(gone);
            }
        }
    });
    Ok(quote! {
        #block

        #[doc(hidden)]
        #[allow(missing_docs, unreachable_pub, clippy::all)]
        mod __wasm_rpyc_service {
            use super::*;

            ::wasm_rpyc_guest::__private::wit_bindgen::generate!({
                inline: #wit,
                path: #SHARED_WIT,
                world: "wasm-rpyc-generated:service/service",
                with: {
                    "wasm-rpyc:service/types@0.1.0": ::wasm_rpyc_guest::types,
                    "wasm-rpyc:service/peer@0.1.0": ::wasm_rpyc_guest::peer,
                },
                runtime_path: "::wasm_rpyc_guest::__private::wit_bindgen::rt",
            });

            #state

            struct Exports;

            impl Guest for Exports {
                #(#forwards)*
                #forget_at_disconnect

                fn service_aliases() -> ::std::vec::Vec<::std::string::String> {
                    ::std::vec![#(::std::string::String::from(#aliases)),*]
                }
            }

            export!(Exports);
        }
    })
}

/// The exports among `block`'s methods.
fn exports_of(block: &ItemImpl) -> syn::Result<Vec<Export<'_>>> {
    block
        .items
        .iter()
        .filter_map(|item| match item {
            ImplItem::Fn(method) => export(method).transpose(),
            _ => None,
        })
        .collect()
}

/// The export `method` is, if it is one.
fn export(method: &ImplItemFn) -> syn::Result<Option<Export<'_>>> {
    let sig = &method.sig;
    let rust_name = sig.ident.to_string();
    let hook = HOOKS.iter().find(|(rust, _)| *rust == rust_name);
    let wit_name = match hook {
        Some((_, wit)) => (*wit).to_owned(),
        None if rust_name.starts_with(EXPOSED_PREFIX) => kebab(&sig.ident)?,
        None => return Ok(None),
    };
    if let Some(token) = sig.asyncness {
        return Err(Error::new(
            token.span(),
            "a service's methods are not async",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "a service's methods are not generic",
        ));
    }
    let mut has_receiver = false;
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if receiver.reference.is_some() => has_receiver = true,
            FnArg::Receiver(receiver) => {
                return Err(Error::new(
                    receiver.span(),
                    "take `&self` or `&mut self`: the service lives as long as the connection",
                ));
            }
            FnArg::Typed(typed) => {
                let Pat::Ident(pat) = &*typed.pat else {
                    return Err(Error::new(typed.pat.span(), "name this parameter"));
                };
                let ty = wit_type::wit(&typed.ty)
                    .ok_or_else(|| Error::new(typed.ty.span(), wit_type::SUPPORTED))?;
                params.push(Param {
                    name: &pat.ident,
                    wit_name: kebab(&pat.ident)?,
                    ty: &typed.ty,
                    wit_ty: ty,
                });
            }
        }
    }
    let result = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if wit_type::is_unit(ty) => None,
        ReturnType::Type(_, ty) => match wit_type::wit(ty) {
            Some(wit) if !wit.contains("borrow<") => Some(wit),
            _ => return Err(Error::new(ty.span(), wit_type::SUPPORTED)),
        },
    };
    if hook.is_some()
        && (!params.is_empty() || !matches!(result.as_deref(), None | Some("result<_, error>")))
    {
        return Err(Error::new(
            sig.span(),
            "a hook takes no arguments and returns nothing or `Result<(), Error>`",
        ));
    }
    Ok(Some(Export {
        method,
        wit_name,
        has_receiver,
        params,
        result,
    }))
}

/// The WIT world of the service: the shared base world and every export.
fn world(exports: &[Export<'_>]) -> String {
    let mut wit = String::from(
        "package wasm-rpyc-generated:service;\n\
         world service {\n\
         include wasm-rpyc:service/service@0.1.0;\n\
         use wasm-rpyc:service/types@0.1.0.{error, value, netref};\n\
         export service-aliases: func() -> list<string>;\n",
    );
    for export in exports {
        let params: Vec<String> = export
            .params
            .iter()
            .map(|param| format!("%{}: {}", param.wit_name, param.wit_ty))
            .collect();
        let result = export
            .result
            .as_ref()
            .map(|ty| format!(" -> {ty}"))
            .unwrap_or_default();
        wit.push_str(&format!(
            "export %{}: func({}){result};\n",
            export.wit_name,
            params.join(", ")
        ));
    }
    wit.push('}');
    wit
}

/// The `Guest` method that calls the user's method (on the connection's
/// state when it takes `self`; `on_disconnect` then forgets the state, when
/// the service has one).
fn forward(name: &Ident, export: &Export<'_>, has_state: bool) -> TokenStream2 {
    let method = &export.method.sig.ident;
    let params = export
        .params
        .iter()
        .map(|Param { name, ty, .. }| quote!(#name: #ty));
    let args = export.params.iter().map(|param| param.name);
    let output = &export.method.sig.output;
    let wit_method = format_ident!("{}", export.wit_name.replace('-', "_"));
    let call = if export.has_receiver {
        quote!(with_state(|state| state.#method(#(#args),*)))
    } else {
        quote!(#name::#method(#(#args),*))
    };
    if has_state && export.wit_name == "on-disconnect" {
        return quote! {
            fn #wit_method(#(#params),*) #output {
                let outcome = #call;
                forget_state();
                outcome
            }
        };
    }
    quote! {
        fn #wit_method(#(#params),*) #output {
            #call
        }
    }
}

/// The WIT name of a Rust method: `exposed_get_value` is `exposed-get-value`.
fn kebab(ident: &Ident) -> syn::Result<String> {
    let name = ident.to_string();
    let words: Vec<&str> = name.split('_').collect();
    let valid = words.iter().all(|word| {
        word.starts_with(|c: char| c.is_ascii_alphabetic())
            && (word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                || word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    });
    if !valid {
        return Err(Error::new(
            ident.span(),
            "WIT cannot spell this name: use snake_case words that each begin with a letter",
        ));
    }
    Ok(words.join("-"))
}

/// RPyC's alias for a service class without `ALIASES`: the name upper-cased,
/// without a trailing `SERVICE`.
fn default_alias(name: &str) -> String {
    let upper = name.to_uppercase();
    match upper.strip_suffix("SERVICE") {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_of(block: &str) -> syn::Result<String> {
        let block: ItemImpl = syn::parse_str(block).expect("an impl block");
        Ok(world(&exports_of(&block)?))
    }

    fn error_of(block: &str) -> String {
        let block: ItemImpl = syn::parse_str(block).expect("an impl block");
        expand(Vec::new(), block).expect_err("refused").to_string()
    }

    #[test]
    fn exposed_methods_and_hooks_are_exported_and_the_rest_is_not() {
        let wit = world_of(
            "impl S {
                fn exposed_get_value(&self, key_name: String, n: Option<u32>) -> Result<i64, Error> {}
                fn exposed_ping() {}
                fn on_connect(&mut self) {}
                fn helper(x: usize) -> usize {}
            }",
        )
        .unwrap();
        assert!(wit.contains(
            "export %exposed-get-value: func(%key-name: string, %n: option<u32>) -> result<s64, error>;"
        ));
        assert!(wit.contains("export %exposed-ping: func();"));
        assert!(wit.contains("export %on-connect: func();"));
        assert!(!wit.contains("helper"));
    }

    #[test]
    fn what_cannot_be_a_service_is_refused_with_a_reason() {
        for (block, reason) in [
            ("impl S { fn exposed_f(x: usize) {} }", "#[service] maps"),
            ("impl S { fn exposed_f(self) {} }", "take `&self`"),
            ("impl S { fn exposed_f() -> &Netref {} }", "#[service] maps"),
            ("impl S { fn exposed_f_1() {} }", "WIT cannot spell"),
            ("impl S { async fn exposed_f() {} }", "not async"),
            (
                "impl S { fn on_connect(x: u8) {} }",
                "a hook takes no arguments",
            ),
            ("impl S { fn helper() {} }", "at least one method"),
            ("impl<T> S<T> { fn exposed_f() {} }", "plain `impl Name"),
        ] {
            let error = error_of(block);
            assert!(error.contains(reason), "{block}: {error}");
        }
    }

    #[test]
    fn the_default_name_is_rpycs() {
        assert_eq!(default_alias("CalculatorService"), "CALCULATOR");
        assert_eq!(default_alias("MyThing"), "MYTHING");
        assert_eq!(default_alias("Service"), "SERVICE");
    }
}
