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
mod packed;

pub use dynamic::{Dynamic, GuestObject};

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
pub use types::{Error, Netref, Value};

impl Error {
    /// An exception of class `type_name` carrying `message`.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            type_name: type_name.into(),
            message: message.into(),
            traceback: None,
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
    /// Python's `None`.
    pub fn none() -> Self {
        Self::from(Dynamic::None)
    }

    /// The reader of the item this value is, past its tag, if the tag is
    /// `tag`.
    fn item(&self, tag: u8) -> Option<packed::Reader<'_>> {
        let mut reader = packed::Reader::new(&self.packed);
        (reader.u8()? == tag).then_some(reader)
    }

    /// The string this value is, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        self.item(packed::tag::STR)?.text()
    }

    /// The integer this value is, if it is one that fits 64 bits.
    pub fn as_int(&self) -> Option<i64> {
        Some(i64::from_le_bytes(self.item(packed::tag::INT)?.array()?))
    }

    /// The float this value is, if it is one.
    pub fn as_float(&self) -> Option<f64> {
        Some(f64::from_le_bytes(self.item(packed::tag::FLOAT)?.array()?))
    }

    /// The bool this value is, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.packed.first() {
            Some(&packed::tag::TRUE) => Some(true),
            Some(&packed::tag::FALSE) => Some(false),
            _ => None,
        }
    }

    /// The peer's object this value is, if it is one (a callback, an
    /// instance): the handle moves out of the value.
    pub fn into_netref(mut self) -> Option<Netref> {
        let index = self.item(packed::tag::NETREF)?.u32()?;
        (index < self.netrefs.len()).then(|| self.netrefs.swap_remove(index))
    }
}

impl From<Netref> for Value {
    /// A value that is the peer's object: passed to the peer, it arrives as
    /// the object itself.
    fn from(netref: Netref) -> Self {
        Self::from(Dynamic::Netref(netref))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::from(Dynamic::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::from(Dynamic::Str(s))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::from(Dynamic::Int(i))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::from(Dynamic::Float(x))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::from(Dynamic::Bool(b))
    }
}
