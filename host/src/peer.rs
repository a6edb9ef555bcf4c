//! A service's handle on the peer of its connection (RPyC's `self._conn`),
//! and what a connection gives it to work with (`PeerLink`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::held::PeerObject;
use crate::object_ref::ObjectId;
use crate::protocol::Request;
use crate::value::Value;

/// A boxed future of a peer link's answer.
pub(crate) type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// What a connection does for the service it serves: send requests to the
/// peer (counted as the service waiting on it), find the peer's root, tell
/// the peer's objects of this connection from others, and its bounds.
pub(crate) trait PeerLink: Send + Sync {
    /// Sends `request` on behalf of the service, which waits meanwhile.
    fn request(&self, request: Request) -> Answer<'_, Value>;
    /// The id of the peer's root object, asking the peer the first time.
    fn root(&self) -> Answer<'_, ObjectId>;
    /// Whether `object` is one of this connection's peer's.
    fn holds(&self, object: &PeerObject) -> bool;
    /// How many objects this side may lend the peer at once.
    fn max_lent_objects(&self) -> usize;
    /// How many objects of the peer's this side may hold at once.
    fn max_held_objects(&self) -> usize;
}

/// A service's handle on the peer of its connection (RPyC's `self._conn`):
/// it calls the peer's objects, and does not keep the connection open.
#[derive(Clone)]
pub struct Peer {
    link: Arc<dyn PeerLink>,
}

impl Peer {
    /// The peer that `link` reaches.
    pub(crate) fn new(link: Arc<dyn PeerLink>) -> Self {
        Peer { link }
    }

    /// How many objects this side may lend the peer at once: the
    /// connection's [`Config::max_lent_objects`](crate::connection::Config::max_lent_objects).
    pub fn max_lent_objects(&self) -> usize {
        self.link.max_lent_objects()
    }

    /// How many objects of the peer's this side may hold at once: the
    /// connection's [`Config::max_held_objects`](crate::connection::Config::max_held_objects).
    pub fn max_held_objects(&self) -> usize {
        self.link.max_held_objects()
    }

    /// Reads up to `count` items of the peer's iterable `object` in one
    /// round trip (RPyC's BUFFITER).
    pub async fn read_items(&self, object: &PeerObject, count: u64) -> Result<Vec<Value>, Error> {
        let target = self.target(object)?;
        match self
            .link
            .request(Request::BuffIter { target, count })
            .await?
        {
            Value::Tuple(items) => Ok(items),
            other => Err(Error::UnexpectedResult(crate::value::ValueError {
                expected: "a tuple of items".into(),
                got: other.to_string(),
            })),
        }
    }

    /// The id of `object`, which must be one of this connection's peer's.
    fn target(&self, object: &PeerObject) -> Result<ObjectId, Error> {
        if self.link.holds(object) {
            Ok(object.id())
        } else {
            Err(Error::OtherConnection(format!("{object:?}")))
        }
    }

    /// Calls the method `name` of the peer's root (its service).
    pub async fn call_root(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        let target = self.link.root().await?;
        let request = Request::CallAttr {
            target,
            name: name.to_owned(),
            args,
            kwargs,
        };
        self.link.request(request).await
    }

    /// Calls the peer's `object` itself (a callback): `func(*args, **kwargs)`.
    pub async fn call(
        &self,
        object: &PeerObject,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        self.link
            .request(Request::Call {
                target: self.target(object)?,
                args,
                kwargs,
            })
            .await
    }

    /// Calls the method `name` of the peer's `object`.
    pub async fn call_method(
        &self,
        object: &PeerObject,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Error> {
        self.link
            .request(Request::CallAttr {
                target: self.target(object)?,
                name: name.to_owned(),
                args,
                kwargs,
            })
            .await
    }

    /// The attribute `name` of the peer's `object`.
    pub async fn get_attr(&self, object: &PeerObject, name: &str) -> Result<Value, Error> {
        self.link
            .request(Request::GetAttr {
                target: self.target(object)?,
                name: name.to_owned(),
            })
            .await
    }
}
