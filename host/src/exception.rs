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

    /// `TypeError`: wrong argument count or type.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// Whether this exception is of class `type_name`.
    pub fn is(&self, type_name: &str) -> bool {
        self.type_name == type_name
    }
}
