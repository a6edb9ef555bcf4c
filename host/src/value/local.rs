//! This side's objects that travel by reference: a native function the peer
//! may call back, or an object of this side's service (an instance of an
//! exposed class). Placed in a [`Value`], such an object is lent to the peer
//! when the value is sent, and comes back as itself when the peer passes the
//! reference back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::exception::Exception;
use crate::value::{IntoValue, Value};

/// One of this side's objects, lent by reference.
#[derive(Clone, Debug, PartialEq)]
pub enum Local {
    /// A native function (a callback).
    Function(Function),
    /// An object of this side's service.
    Service(ServiceObject),
}

impl Local {
    /// The class the peer sees, dotted as Python names it.
    pub fn class(&self) -> &str {
        match self {
            Local::Function(_) => "builtins.function",
            Local::Service(object) => &object.class,
        }
    }

    /// Whether the object is itself a class.
    pub fn is_class(&self) -> bool {
        matches!(self, Local::Service(object) if object.is_class)
    }
}

/// An object of a service, named by the service's own handle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceObject {
    /// The service's handle for it.
    pub handle: u64,
    /// Its class (an exposed class's name, such as `MyClass`); for a class,
    /// its own name.
    pub class: String,
    /// Whether the object is itself a class (a Python service lends its
    /// classes by reference).
    pub is_class: bool,
}

type Reply = Pin<Box<dyn Future<Output = Result<Value, Exception>> + Send>>;

/// A native function the peer may call, such as a callback passed to a
/// remote method: `Function::new(|args| async move { Ok("foo".into()) })`.
/// Clones are the same function (one object to the peer).
#[derive(Clone)]
pub struct Function(Arc<dyn Fn(Vec<Value>) -> Reply + Send + Sync>);

impl Function {
    /// A function called with the peer's positional arguments. Keyword
    /// arguments are refused with a `TypeError`.
    pub fn new<F, R>(body: F) -> Self
    where
        F: Fn(Vec<Value>) -> R + Send + Sync + 'static,
        R: Future<Output = Result<Value, Exception>> + Send + 'static,
    {
        Function(Arc::new(move |args| Box::pin(body(args))))
    }

    /// Calls the function.
    pub fn call(&self, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> Reply {
        if !kwargs.is_empty() {
            return Box::pin(async {
                Err(Exception::type_error(
                    "a native function takes no keyword arguments",
                ))
            });
        }
        (self.0)(args)
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<function {:p}>", Arc::as_ptr(&self.0))
    }
}

impl IntoValue for Function {
    fn into_value(self) -> Value {
        Value::Local(Local::Function(self))
    }
}

impl IntoValue for &Function {
    fn into_value(self) -> Value {
        self.clone().into_value()
    }
}
