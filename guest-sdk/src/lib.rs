//! Write wasm-rpyc services in Rust.
//!
//! A service is a WebAssembly component whose `exposed-*` exports are remote
//! methods. With [`service`], an impl block is the whole service, as a class
//! is in RPyC: the seed's `CalculatorService` is
//!
//! ```
//! use wasm_rpyc_guest::{Error, service};
//!
//! struct CalculatorService;
//!
//! #[service]
//! impl CalculatorService {
//!     fn exposed_add(a: i64, b: i64) -> i64 { a + b }
//!     fn exposed_sub(a: i64, b: i64) -> i64 { a - b }
//!     fn exposed_mul(a: i64, b: i64) -> i64 { a * b }
//!     fn exposed_div(a: f64, b: f64) -> Result<f64, Error> {
//!         if b == 0.0 { Err(Error::zero_division("division by zero")) } else { Ok(a / b) }
//!     }
//!     fn foo() { println!("foo"); } // not exposed: peers cannot reach it
//! }
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2` (`cargo build --release
//! --target wasm32-wasip2`) and serve the `.wasm` with `wasm-rpyc serve`.
//!
//! The rest of the crate is what a service works with: [`Error`] to raise
//! an exception of any Python class, [`Value`] for dynamically typed values
//! (read and built as a [`Dynamic`] tree),
//! [`Netref`] for the peer's objects (a callback, a list) and [`peer`] to
//! call the peer.
//!
//! A service that needs WIT types `#[service]` cannot write (records,
//! variants, exposed classes as resources) writes its own world that
//! includes `wasm-rpyc:service/service`, generates its bindings with
//! `wit_bindgen::generate!` and maps the shared interfaces onto this crate:
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

#![deny(missing_docs)]

/// Makes an impl block a service.
///
/// - Methods named `exposed_*` are exported as `exposed-*`, the remote
///   methods (`exposed_get_value` is `get_value` to the peer). Others stay
///   private, as in RPyC.
/// - `on_connect` and `on_disconnect`, if present, are the connection hooks;
///   they take no arguments and return nothing or `Result<(), Error>`.
/// - A method may take `&self` or `&mut self`: the type then implements
///   `Default`, and one value of it lives as long as the connection (every
///   connection has its own instance of the component).
/// - Parameters and results may be `bool`, the integers up to 64 bits,
///   `f32`, `f64`, `char`, `String`, `Vec<T>`, `Option<T>`, `Result<T, E>`
///   (an `Err` is raised: make `E` an [`Error`]), tuples, [`Value`] and
///   [`Netref`] (`&Netref` as a parameter). Anything else is a compile error
///   that says so.
/// - `#[service(aliases = ["FOO", "BAR"])]` names the service, as RPyC's
///   `ALIASES`; by default its name is the type's, upper-cased, without a
///   trailing `Service` (`CalculatorService` is `CALCULATOR`).
pub use wasm_rpyc_guest_macros::service;

mod dynamic;

pub use dynamic::Dynamic;

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

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
pub use types::{Error, GuestObject, Netref, Node, Value};

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
