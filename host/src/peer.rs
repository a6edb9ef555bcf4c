//! A service's handle on the peer of its connection (RPyC's `self._conn`),
//! and what a connection gives it to work with (`PeerLink`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

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
    /// Sends `request` without waiting for its answer.
    fn post(&self, request: Request) -> Answer<'_, ()>;
    /// The id of the peer's root object, asking the peer the first time.
    fn root(&self) -> Answer<'_, ObjectId>;
    /// Whether `object` is one of this connection's peer's.
    fn holds(&self, object: &PeerObject) -> bool;
    /// How many objects this side may lend the peer at once.
    fn max_lent_objects(&self) -> usize;
    /// How many objects of the peer's this side may hold at once.
    fn max_held_objects(&self) -> usize;
}

/// How many calls a service made without waiting (RPyC's `async_`) may
/// wait to be sent to one peer; past it such a call fails at once.
pub const MAX_UNSENT_CALLS: usize = 1024;

/// A service's handle on the peer of its connection (RPyC's `self._conn`):
/// it calls the peer's objects, and does not keep the connection open.
#[derive(Clone)]
pub struct Peer {
    link: Arc<dyn PeerLink>,
    /// The calls made without waiting, in the order they were made, to
    /// the task that sends them (started by the first).
    unsent: Arc<OnceLock<mpsc::Sender<Request>>>,
}

impl Peer {
    /// The peer that `link` reaches.
    pub(crate) fn new(link: Arc<dyn PeerLink>) -> Self {
        Peer {
            link,
            unsent: Arc::default(),
        }
    }

    /// Calls the peer's `object` without waiting for it (RPyC's `async_`):
    /// the call is sent after any made before it, and its answer is
    /// dropped. `Err` when it cannot be: the object is another
    /// connection's, the connection is closed, or [`MAX_UNSENT_CALLS`]
    /// wait to be sent already. Needs a tokio runtime.
    pub fn call_without_waiting(
        &self,
        object: &PeerObject,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<(), Error> {
        let request = Request::Call {
            target: self.target(object)?,
            args,
            kwargs,
        };
        let unsent = self.unsent.get_or_init(|| {
            let (unsent, to_send) = mpsc::channel(MAX_UNSENT_CALLS);
            tokio::spawn(send_in_order(Arc::clone(&self.link), to_send));
            unsent
        });
        unsent.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => Error::TooManyInFlight(MAX_UNSENT_CALLS),
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })
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

    /// Whether `object` is one of this connection's peer's.
    pub(crate) fn holds(&self, object: &PeerObject) -> bool {
        self.link.holds(object)
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

/// Sends the calls made without waiting, one after the other, until every
/// handle on the peer is gone.
async fn send_in_order(link: Arc<dyn PeerLink>, mut to_send: mpsc::Receiver<Request>) {
    while let Some(request) = to_send.recv().await {
        if let Err(error) = link.post(request).await {
            tracing::debug!(%error, "a call the service did not wait for was not sent");
        }
    }
}
