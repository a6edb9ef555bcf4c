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
//!     world: "example:calculator/calculator",
//!     with: {
//!         "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
//!         "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
//!     },
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

/// The other side of the connection (the seed's `self._conn`): pass this
/// module to your bindings' `with:` as `wasm-rpyc:service/peer@0.1.0`, then
/// `peer::call_root("foo", vec![], vec![])` calls the peer's `root.foo()`.
pub use bindings::wasm_rpyc::service::peer;
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

impl Value {
    /// A value of one node and no netrefs.
    fn leaf(node: Node) -> Self {
        Value {
            nodes: vec![node],
            netrefs: Vec::new(),
        }
    }

    /// Python's `None`.
    pub fn none() -> Self {
        Self::leaf(Node::None)
    }

    /// The string this value is, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self.nodes.first() {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The integer this value is, if it is one that fits 64 bits.
    pub fn as_int(&self) -> Option<i64> {
        match self.nodes.first() {
            Some(Node::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// The float this value is, if it is one.
    pub fn as_float(&self) -> Option<f64> {
        match self.nodes.first() {
            Some(Node::Float(x)) => Some(*x),
            _ => None,
        }
    }

    /// The bool this value is, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.nodes.first() {
            Some(Node::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// The peer's object this value is, if it is one (a callback, an
    /// instance): the handle moves out of the value.
    pub fn into_netref(mut self) -> Option<Netref> {
        match self.nodes.first() {
            Some(Node::Netref(i)) if (*i as usize) < self.netrefs.len() => {
                Some(self.netrefs.swap_remove(*i as usize))
            }
            _ => None,
        }
    }
}

impl From<Netref> for Value {
    /// A value that is the peer's object: passed to the peer, it arrives as
    /// the object itself.
    fn from(netref: Netref) -> Self {
        Value {
            nodes: vec![Node::Netref(0)],
            netrefs: vec![netref],
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::leaf(Node::Str(s.to_owned()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::leaf(Node::Str(s))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::leaf(Node::Int(i))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::leaf(Node::Float(x))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::leaf(Node::Boolean(b))
    }
}
