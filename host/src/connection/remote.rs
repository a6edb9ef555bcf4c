//! A handle on an object of the peer's that this side calls.

use std::fmt;

use super::{Connection, Handle};
use crate::error::Error;
use crate::held::PeerObject;
use crate::protocol::Request;
use crate::value::{FromValue, IntoArgs, IntoValue, Value, ValueError};

/// An object on the peer's side, whose methods this side calls: the root, or
/// an object a call returned (`let obj: RemoteObject = root.call("MyClass",
/// (1, 2)).await?`). Clones share one handle; when the last handle to the
/// object is dropped the peer is told to release it. Passed as an argument,
/// it reaches the peer as the peer's own object. It keeps its connection
/// open.
#[derive(Clone)]
pub struct RemoteObject {
    connection: Connection,
    object: PeerObject,
}

impl RemoteObject {
    /// The object `object` of `connection`'s peer.
    pub(super) fn new(connection: Connection, object: PeerObject) -> Self {
        RemoteObject { connection, object }
    }

    /// Calls the method `name` with positional `args` and converts the result:
    /// `let sum: i64 = root.call("add", (4, 7)).await?`.
    pub async fn call<R: FromValue>(&self, name: &str, args: impl IntoArgs) -> Result<R, Error> {
        self.call_kw(name, args, Vec::<(String, Value)>::new())
            .await
    }

    /// Calls the method `name` with positional and keyword arguments.
    pub async fn call_kw<R: FromValue>(
        &self,
        name: &str,
        args: impl IntoArgs,
        kwargs: impl IntoIterator<Item = (impl Into<String>, Value)>,
    ) -> Result<R, Error> {
        let request = Request::CallAttr {
            target: self.object.id(),
            name: name.to_owned(),
            args: args.into_args(),
            kwargs: kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        };
        self.request(request).await
    }

    /// Calls the object itself (a function the peer lent): `obj(*args)`.
    pub async fn invoke<R: FromValue>(&self, args: impl IntoArgs) -> Result<R, Error> {
        let request = Request::Call {
            target: self.object.id(),
            args: args.into_args(),
            kwargs: Vec::new(),
        };
        self.request(request).await
    }

    /// The attribute `name` of the object.
    pub async fn get_attr<R: FromValue>(&self, name: &str) -> Result<R, Error> {
        let request = Request::GetAttr {
            target: self.object.id(),
            name: name.to_owned(),
        };
        self.request(request).await
    }

    async fn request<R: FromValue>(&self, request: Request) -> Result<R, Error> {
        let value = self.connection.request(request).await?;
        Ok(R::from_value(value)?)
    }

    /// The object's class, dotted as Python names it.
    pub fn class(&self) -> &str {
        self.object.class()
    }

    /// The connection this object lives on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl PartialEq for RemoteObject {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
    }
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.object.fmt(f)
    }
}

impl IntoValue for &RemoteObject {
    fn into_value(self) -> Value {
        Value::Remote(self.object.clone())
    }
}

impl IntoValue for RemoteObject {
    fn into_value(self) -> Value {
        Value::Remote(self.object)
    }
}

impl FromValue for RemoteObject {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        let object = PeerObject::from_value(value)?;
        let handle = object
            .owner()
            .and_then(|owner| owner.downcast::<Handle>().ok())
            .ok_or_else(|| {
                ValueError::new(
                    "an object of the peer's on an open connection",
                    &Value::Remote(object.clone()),
                )
            })?;
        Ok(RemoteObject::new(Connection { handle }, object))
    }
}
