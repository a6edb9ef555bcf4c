//! Handles on the peer's side: an object of the peer's that this side calls,
//! and a service's view of the peer it serves.

use std::fmt;
use std::sync::{Arc, Weak};

use super::{Connection, Shared};
use crate::error::Error;
use crate::protocol::{Holder, ObjectId, ObjectRef, Request};
use crate::value::{FromValue, IntoArgs, IntoValue, Value, ValueError};

/// An object on the peer's side, whose methods this side calls: the root, or
/// an object a call returned (`let obj: RemoteObject = root.call("MyClass",
/// (1, 2)).await?`). Clones share one reference; when the last is dropped the
/// peer is told to release the object. Passed as an argument, it reaches the
/// peer as the peer's own object.
#[derive(Clone)]
pub struct RemoteObject {
    pub(super) connection: Connection,
    pub(super) reference: Arc<Reference>,
}

/// One reference to a peer's object; releases it when dropped.
pub(super) struct Reference {
    pub(super) id: ObjectId,
    pub(super) class: String,
    /// The root is never released.
    pub(super) owned: bool,
    shared: Arc<Shared>,
}

impl Drop for Reference {
    fn drop(&mut self) {
        if self.owned {
            self.shared.forget_remote(self.id);
        }
    }
}

impl RemoteObject {
    /// The handle of the peer's object `object` (its root when `owned` is
    /// false): one per owned object, however often the peer lends it. The
    /// root is never released, so its handles need no bookkeeping.
    pub(super) fn adopt(connection: &Connection, object: ObjectRef, owned: bool) -> Self {
        let shared = &connection.handle.shared;
        let new = |object: ObjectRef| {
            Arc::new(Reference {
                id: object.id,
                class: object.class,
                owned,
                shared: Arc::clone(shared),
            })
        };
        let reference = if owned {
            let mut remotes = shared.remotes.lock().expect("remotes poisoned");
            match remotes.get(&object.id).and_then(Weak::upgrade) {
                Some(reference) => reference,
                None => {
                    let reference = new(object);
                    remotes.insert(reference.id, Arc::downgrade(&reference));
                    reference
                }
            }
        } else {
            new(object)
        };
        RemoteObject {
            connection: connection.clone(),
            reference,
        }
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
            target: self.reference.id,
            name: name.to_owned(),
            args: args.into_args(),
            kwargs: kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        };
        self.request(request).await
    }

    /// Calls the object itself (a function the peer lent): `obj(*args)`.
    pub async fn invoke<R: FromValue>(&self, args: impl IntoArgs) -> Result<R, Error> {
        let request = Request::Call {
            target: self.reference.id,
            args: args.into_args(),
            kwargs: Vec::new(),
        };
        self.request(request).await
    }

    /// The attribute `name` of the object.
    pub async fn get_attr<R: FromValue>(&self, name: &str) -> Result<R, Error> {
        let request = Request::GetAttr {
            target: self.reference.id,
            name: name.to_owned(),
        };
        self.request(request).await
    }

    async fn request<R: FromValue>(&self, request: Request) -> Result<R, Error> {
        let value = self.connection.request(request).await?;
        Ok(R::from_value(self.connection.adopt_all(value))?)
    }

    /// The object's class, dotted as Python names it.
    pub fn class(&self) -> &str {
        &self.reference.class
    }

    /// The connection this object lives on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The reference the peer reads as its own object.
    pub(super) fn handed_back(&self) -> ObjectRef {
        ObjectRef {
            holder: Holder::Receiver,
            id: self.reference.id,
            class: self.reference.class.clone(),
        }
    }
}

/// Replaces the peer's objects held by client code in `value` with references
/// the peer resolves to its own objects; their handles move to `kept`.
pub(super) fn hand_back(value: &mut Value, kept: &mut Vec<RemoteObject>) {
    match value {
        Value::Remote(object) => {
            let reference = Value::Object(object.handed_back());
            if let Value::Remote(object) = std::mem::replace(value, reference) {
                kept.push(object);
            }
        }
        Value::Tuple(items) | Value::FrozenSet(items) => {
            items.iter_mut().for_each(|item| hand_back(item, kept))
        }
        Value::Slice(parts) => parts.iter_mut().for_each(|item| hand_back(item, kept)),
        _ => {}
    }
}

impl PartialEq for RemoteObject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.reference, &other.reference)
    }
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<netref {} {}>", self.reference.class, self.reference.id)
    }
}

impl IntoValue for &RemoteObject {
    fn into_value(self) -> Value {
        Value::Remote(self.clone())
    }
}

impl IntoValue for RemoteObject {
    fn into_value(self) -> Value {
        Value::Remote(self)
    }
}

impl FromValue for RemoteObject {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Remote(object) => Ok(object),
            other => Err(ValueError::new("an object of the peer's", &other)),
        }
    }
}

/// A service's handle on the peer of its connection (RPyC's `self._conn`):
/// it calls the peer's objects, and does not keep the connection open.
#[derive(Clone)]
pub struct Peer {
    pub(super) shared: Arc<Shared>,
}

impl Peer {
    /// How many objects this side may lend the peer at once: the
    /// connection's [`Config::max_lent_objects`](super::Config::max_lent_objects).
    pub fn max_lent_objects(&self) -> usize {
        self.shared.config.max_lent_objects
    }

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
    ///
    /// The release gives back every receipt of the object so far; one that
    /// arrives after it stays held.
    pub fn release(&self, id: ObjectId) {
        let count = self.shared.take_receipts(id);
        self.shared
            .releases
            .lock()
            .expect("releases poisoned")
            .push((id, count));
    }
}

/// Marks the end of a service's wait on the peer.
struct Waited<'a>(&'a Shared);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.waiting_on_peer.send_modify(|n| *n -= 1);
    }
}
