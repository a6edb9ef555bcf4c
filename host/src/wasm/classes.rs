//! Exposed classes: a resource a component exports as `exposed-<name>` is
//! RPyC's `exposed_<Name>`. Peers construct instances, call their exposed
//! methods and hold them by reference (see `guest_objects`).

use std::collections::HashMap;

use wasmtime::component::ResourceType;

use super::method::Method;

/// An exposed class.
#[derive(Clone)]
pub(crate) struct Class {
    /// The Python name: `exposed-my-class` is `MyClass`.
    pub(crate) name: String,
    /// The resource as the component's signatures name it.
    pub(crate) ty: ResourceType,
    /// The exposed methods by Python name; each takes the object first.
    pub(crate) methods: HashMap<String, Method>,
}

/// The Python name of a class: kebab-case becomes UpperCamelCase.
pub(crate) fn class_name(wit: &str) -> String {
    wit.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_upper_camel_case() {
        assert_eq!(class_name("my-class"), "MyClass");
        assert_eq!(class_name("point"), "Point");
        assert_eq!(class_name("http-client2"), "HttpClient2");
    }
}
