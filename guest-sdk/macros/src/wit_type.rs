//! Rust types as WIT types: the mapping the `#[service]` attribute knows.

use syn::{GenericArgument, PathArguments, Type, TypeReference};

/// What `#[service]` can say of a type it cannot map.
pub(crate) const SUPPORTED: &str = "#[service] maps bool, i8-i64, u8-u64, f32, f64, char, String, \
     Vec<T>, Option<T>, Result<T, E>, tuples, Value, Netref (and &Netref as a parameter) and Error; \
     for other types (records, variants, exposed classes) write the service's WIT world by hand";

/// The WIT spelling of `ty`; `None` when it has none.
pub(crate) fn wit(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            let args = generic_types(&last.arguments);
            match (name.as_str(), args.as_slice()) {
                (scalar, []) => scalar_wit(scalar).map(str::to_owned),
                ("Vec", [item]) => Some(format!("list<{}>", wit(item)?)),
                ("Option", [item]) => Some(format!("option<{}>", wit(item)?)),
                ("Result", [ok, err]) => {
                    let ok = if is_unit(ok) {
                        "_".to_owned()
                    } else {
                        wit(ok)?
                    };
                    Some(format!("result<{ok}, {}>", wit(err)?))
                }
                _ => None,
            }
        }
        Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            let items: Option<Vec<String>> = tuple.elems.iter().map(wit).collect();
            Some(format!("tuple<{}>", items?.join(", ")))
        }
        Type::Reference(TypeReference {
            mutability: None,
            elem,
            ..
        }) if wit(elem).as_deref() == Some("netref") => Some("borrow<netref>".to_owned()),
        Type::Paren(inner) => wit(&inner.elem),
        _ => None,
    }
}

/// Whether `ty` is `()`.
pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

fn scalar_wit(name: &str) -> Option<&'static str> {
    Some(match name {
        "bool" => "bool",
        "i8" => "s8",
        "i16" => "s16",
        "i32" => "s32",
        "i64" => "s64",
        "u8" => "u8",
        "u16" => "u16",
        "u32" => "u32",
        "u64" => "u64",
        "f32" => "f32",
        "f64" => "f64",
        "char" => "char",
        "String" => "string",
        "Value" => "value",
        "Netref" => "netref",
        "Error" => "error",
        _ => return None,
    })
}

fn generic_types(arguments: &PathArguments) -> Vec<&Type> {
    match arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_of(ty: &str) -> Option<String> {
        wit(&syn::parse_str(ty).expect("a type"))
    }

    #[test]
    fn maps_scalars_containers_and_shared_types() {
        assert_eq!(wit_of("i64").as_deref(), Some("s64"));
        assert_eq!(
            wit_of("Vec<Option<String>>").as_deref(),
            Some("list<option<string>>")
        );
        assert_eq!(
            wit_of("Result<(), Error>").as_deref(),
            Some("result<_, error>")
        );
        assert_eq!(
            wit_of("Result<(u8, f64), wasm_rpyc_guest::Error>").as_deref(),
            Some("result<tuple<u8, f64>, error>")
        );
        assert_eq!(wit_of("&Netref").as_deref(), Some("borrow<netref>"));
        assert_eq!(wit_of("Value").as_deref(), Some("value"));
    }

    #[test]
    fn refuses_what_it_cannot_map() {
        for ty in [
            "usize",
            "&str",
            "HashMap<String, i64>",
            "&mut Netref",
            "()",
            "Point",
        ] {
            assert_eq!(wit_of(ty), None, "{ty}");
        }
    }
}
