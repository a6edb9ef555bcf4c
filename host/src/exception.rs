//! Exceptions: what a call raises on the side that served it.

use serde::{Deserialize, Serialize};

/// An exception raised by the side that served a call, as the caller sees it.
///
/// `type_name` is a Python builtin exception name (`ZeroDivisionError`,
/// `AttributeError`, `TypeError`, ...) or a dotted `module.ClassName`; a
/// Python client rebuilds builtins as the real classes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{type_name}: {message}")]
pub struct Exception {
    /// The exception class.
    pub type_name: String,
    /// The message (the exception's argument).
    pub message: String,
    /// The remote traceback, when the peer sent one (a Python server does).
    #[serde(default)]
    pub traceback: Option<String>,
}

impl Exception {
    /// An exception of class `type_name` carrying `message`.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Exception {
            type_name: type_name.into(),
            message: message.into(),
            traceback: None,
        }
    }

    /// `AttributeError`: the name does not exist or is not exposed (the two
    /// are indistinguishable on purpose).
    pub fn no_attribute(name: &str) -> Self {
        Self::new("AttributeError", format!("cannot access '{name}'"))
    }

    /// Whether this exception is of class `type_name`.
    pub fn is(&self, type_name: &str) -> bool {
        self.type_name == type_name
    }
}

/// A constructor for each Python builtin exception the host raises itself,
/// so its class is never a string typed at the call site.
macro_rules! builtin_exceptions {
    ($($(#[$doc:meta])* $constructor:ident => $class:literal,)*) => {
        impl Exception {
            $(
                $(#[$doc])*
                pub fn $constructor(message: impl Into<String>) -> Self {
                    Self::new($class, message)
                }
            )*
        }
    };
}

builtin_exceptions! {
    /// `Exception`, the base class: a guest's error with no class of its own.
    plain => "Exception",
    /// `TypeError`: wrong argument count or type.
    type_error => "TypeError",
    /// `ValueError`: an argument of the right type but a wrong value.
    value_error => "ValueError",
    /// `KeyError`: no such key.
    key_error => "KeyError",
    /// `RuntimeError`: the host or the service cannot do it now (at
    /// capacity, busy, trapped).
    runtime_error => "RuntimeError",
    /// `TimeoutError`: a call ran past its CPU budget or deadline.
    timeout_error => "TimeoutError",
    /// `MemoryError`: a memory bound was reached.
    memory_error => "MemoryError",
    /// `RecursionError`: the guest overflowed its stack.
    recursion_error => "RecursionError",
    /// `ReferenceError`: the object is gone.
    reference_error => "ReferenceError",
    /// `EOFError`: the connection is closed.
    eof_error => "EOFError",
    /// `OSError`: the system refused (a grant that cannot be given).
    os_error => "OSError",
    /// `NotImplementedError`: not supported.
    not_implemented_error => "NotImplementedError",
    /// `StopIteration`: an iterator is exhausted.
    stop_iteration => "StopIteration",
}
