//! Write wasm-rpyc services in Rust.
//!
//! A service is a WebAssembly component whose `exposed-*` exports are remote
//! methods. This crate holds the bindings of the shared WIT package
//! (`wasm-rpyc:service`, in the repository's `wit/`) so every service uses the
//! same [`Error`] and [`Value`] types, plus helpers to build them.
//!
//! A service writes its own world that includes `wasm-rpyc:service/service`,
//! generates its bindings with `wit_bindgen::generate!` and maps the shared
//! interface onto this crate:
//!
//! ```ignore
//! wit_bindgen::generate!({
//!     path: ["../../wit", "wit"],
//!     world: "calculator",
//!     with: { "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types },
//! });
//! ```

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasm-rpyc:service/service@0.1.0",
        generate_unused_types: true,
    });
}

/// The shared interface `wasm-rpyc:service/types`: pass this module to your
/// bindings' `with:` so they reuse these types.
pub use bindings::wasm_rpyc::service::types;
pub use types::{Error, Netref, Node, Value};

impl Error {
    /// An exception of class `type_name` carrying `message`.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            type_name: type_name.into(),
            message: message.into(),
        }
    }

    /// Python's `ValueError`: the argument has the right type but a bad value.
    pub fn value(message: impl Into<String>) -> Self {
        Self::new("ValueError", message)
    }

    /// Python's `ZeroDivisionError`.
    pub fn zero_division(message: impl Into<String>) -> Self {
        Self::new("ZeroDivisionError", message)
    }

    /// Python's `OverflowError`: a result does not fit its type.
    pub fn overflow(message: impl Into<String>) -> Self {
        Self::new("OverflowError", message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for Error {}
