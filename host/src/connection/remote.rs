//! Handles on the peer's side: an object of the peer's that this side calls,
//! and a service's view of the peer it serves.

use std::sync::Arc;

use super::{Connection, Shared};
use crate::error::Error;
use crate::protocol::{ObjectId, Request};
use crate::value::{FromValue, IntoArgs, Value};

/// An object on the peer's side (for now: its root), whose methods this side
/// calls.
#[derive(Clone)]
pub struct RemoteObject {
    pub(super) connection: Connection,
    pub(super) id: ObjectId,
}

impl RemoteObject {
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
            target: self.id,
            name: name.to_owned(),
            args: args.into_args(),
            kwargs: kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        };
        let value = self.connection.request(request).await?;
        Ok(R::from_value(value)?)
    }

    /// The connection this object lives on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

/// A service's handle on the peer of its connection (RPyC's `self._conn`):
/// it calls the peer's objects, and does not keep the connection open.
#[derive(Clone)]
pub struct Peer {
    pub(super) shared: Arc<Shared>,
}

impl Peer {
    /// Reads up to `count` items of the peer's iterable object `id` in one
    /// round trip (RPyC's BUFFITER).
    pub async fn read_items(&self, id: ObjectId, count: u64) -> Result<Vec<Value>, Error> {
        match self
            .request(Request::BuffIter { target: id, count })
            .await?
        {
            Value::Tuple(items) => Ok(items),
            other => Err(Error::UnexpectedResult(crate::value::ValueError {
                expected: "a tuple of items".into(),
                got: other.to_string(),
            })),
        }
    }

    /// Sends `request` on behalf of the service, which waits meanwhile.
    async fn request(&self, request: Request) -> Result<Value, Error> {
        self.shared.waiting_on_peer.send_modify(|n| *n += 1);
        let _done = Waited(&self.shared);
        self.shared.request(request).await
    }

    /// Calls the method `name` of the peer's root (its service).
    pub async fn call_root(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        let target = self.shared.root().await?;
        let request = Request::CallAttr {
            target,
            name: name.to_owned(),
            args,
            kwargs,
        };
        self.request(request).await
    }

    /// Calls the peer's object `id` itself (a callback): `func(*args, **kwargs)`.
    pub async fn call(
        &self,
        id: ObjectId,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        self.request(Request::Call {
            target: id,
            args,
            kwargs,
        })
        .await
    }

    /// Calls the method `name` of the peer's object `id`.
    pub async fn call_method(
        &self,
        id: ObjectId,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        self.request(Request::CallAttr {
            target: id,
            name: name.to_owned(),
            args,
            kwargs,
        })
        .await
    }

    /// The attribute `name` of the peer's object `id`.
    pub async fn get_attr(&self, id: ObjectId, name: &str) -> Result<Value, Error> {
        self.request(Request::GetAttr {
            target: id,
            name: name.to_owned(),
        })
        .await
    }

    /// Releases the peer's object `id`, right after the reply to the request
    /// being served. Releasing before the reply would make the peer's last
    /// write before its next request the tiny answer to the release, which
    /// Nagle's algorithm on a peer without TCP_NODELAY (RPyC's default)
    /// holds for a delayed ACK: 40 ms per call.
    pub fn release(&self, id: ObjectId) {
        self.shared
            .releases
            .lock()
            .expect("releases poisoned")
            .push(id);
    }
}

/// Marks the end of a service's wait on the peer.
struct Waited<'a>(&'a Shared);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.waiting_on_peer.send_modify(|n| *n -= 1);
    }
}
