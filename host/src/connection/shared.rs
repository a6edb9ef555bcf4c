//! What a connection's task and every handle on it share, in named parts:
//! its status, the queue to the socket, the calls awaiting replies, this
//! side's objects the peer holds and the peer's objects this side holds.
//! It turns values into what crosses the wire and back: objects lent,
//! handed back and received.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::in_flight::InFlight;
use super::objects::Objects;
use super::queues::{ByteBudget, Closed, Incoming, Outbound, Outgoing, queue_full};
use super::releases::{Releases, Sent};
use super::status::Status;
use crate::error::Error;
use crate::exception::Exception;
use crate::held::{HeldObjects, PeerObject};
use crate::object_ref::ObjectId;
use crate::peer::{Answer, PeerLink};
use crate::protocol::{Holder, Message, ROOT, Request};
use crate::value::{Value, ValueError};

/// The hub of one connection.
pub(super) struct Shared {
    config: Config,
    /// The peer's address, for logs.
    peer: String,
    status: Status,
    /// The messages waiting for the socket.
    outbound: Outbound,
    /// The bytes of the peer's requests waiting for the service.
    queued: ByteBudget,
    in_flight: InFlight,
    /// The peer's root object, once known: a native client knows it
    /// ([`ROOT`]); otherwise the first use asks the peer (GETROOT).
    root: OnceCell<PeerObject>,
    /// This side's objects the peer holds.
    lent: Mutex<Objects>,
    /// The peer's objects this side holds.
    held: HeldObjects,
    /// Their releases waiting for room to be sent.
    releases: Releases,
}

impl Shared {
    /// The hub of a connection to `peer` (its name) bounded by `config`,
    /// which closes when `stop` is cancelled; also the receiving end of its
    /// queue to the socket. Releases of the peer's objects are sent from
    /// the start.
    pub(super) fn new(
        config: Config,
        peer: String,
        stop: &CancellationToken,
    ) -> (Arc<Self>, mpsc::Receiver<Outgoing>) {
        let (outbound, outgoing) = Outbound::new(config.max_queued_bytes);
        let shared = Arc::new(Shared {
            peer,
            status: Status::new(stop),
            outbound,
            queued: ByteBudget::new(config.max_queued_bytes),
            in_flight: InFlight::new(config.max_in_flight),
            root: OnceCell::new(),
            lent: Mutex::new(Objects::new(config.max_lent_objects)),
            held: HeldObjects::new(config.max_held_objects),
            releases: Releases::new(config.max_held_objects),
            config,
        });
        let sender = Arc::downgrade(&shared);
        let runtime = tokio::runtime::Handle::current();
        shared.held.set_sink(Box::new(move |release| {
            let Some(shared) = sender.upgrade() else {
                return;
            };
            let sent = shared
                .releases
                .send(release, &shared.in_flight, &shared.outbound);
            if sent == Sent::Drain {
                runtime.spawn(async move {
                    tokio::select! {
                        () = shared.releases.drain(&shared.in_flight, &shared.outbound) => {}
                        () = shared.status.closing() => {}
                    }
                });
            }
        }));
        (shared, outgoing)
    }

    /// The connection's bounds and timeouts.
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// The peer's name, for logs.
    pub(super) fn peer(&self) -> &str {
        &self.peer
    }

    /// Where the connection stands.
    pub(super) fn status(&self) -> &Status {
        &self.status
    }

    /// This side's calls awaiting replies.
    pub(super) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The peer's objects this side holds.
    pub(super) fn held(&self) -> &HeldObjects {
        &self.held
    }

    /// This side's objects the peer holds.
    pub(super) fn lent(&self) -> MutexGuard<'_, Objects> {
        self.lent.lock().expect("lent objects poisoned")
    }

    /// How long neither side has had anything to do; `None` while a call is
    /// in progress either way.
    pub(super) fn idle_for(&self) -> Option<std::time::Duration> {
        self.status.idle_for(self.in_flight.len())
    }

    /// The peer's root object, asking the peer the first time.
    pub(super) async fn root(&self) -> Result<&PeerObject, Error> {
        let fetch = || async {
            match self.request(Request::GetRoot).await? {
                Value::Remote(root) => Ok(root),
                other => Err(Error::UnexpectedResult(ValueError::new(
                    "the peer's root object",
                    &other,
                ))),
            }
        };
        self.root.get_or_try_init(fetch).await
    }

    /// The peer's root object: the one fetched or known, else [`ROOT`].
    pub(super) fn root_now(&self) -> PeerObject {
        match self.root.get() {
            Some(root) => root.clone(),
            None => self.held.never_released(ROOT, "root"),
        }
    }

    /// Records that the peer's root is [`ROOT`], for protocols that name it
    /// without asking (native).
    pub(super) fn know_root(&self) {
        let _ = self.root.set(self.held.never_released(ROOT, "root"));
    }

    /// Readies `value` to be sent: this side's objects are lent, the peer's
    /// objects go back as references the peer resolves (their handles move
    /// to `kept`, so none is released before the value is sent).
    pub(super) fn prepare(
        &self,
        value: &mut Value,
        kept: &mut Vec<PeerObject>,
    ) -> Result<(), Exception> {
        let mut locals = false;
        value.try_for_each_item(&mut |item| {
            match item {
                Value::Remote(object) if !self.held.holds(object) => {
                    return Err(Exception::type_error(format!(
                        "{object:?} belongs to another connection and cannot be sent on this one"
                    )));
                }
                Value::Remote(object) => {
                    let back = Value::Object(object.handed_back());
                    if let Value::Remote(object) = std::mem::replace(item, back) {
                        kept.push(object);
                    }
                }
                Value::Local(_) => locals = true,
                _ => {}
            }
            Ok(())
        })?;
        if locals {
            self.lent().lend_locals(value)?;
        }
        Ok(())
    }

    /// Turns the peer's references to this side's objects in a call's
    /// arguments back into the objects.
    pub(super) fn resolve_locals<'v>(&self, values: impl Iterator<Item = &'v mut Value>) {
        let ours = |v: &Value| matches!(v, Value::Object(o) if o.holder == Holder::Receiver);
        let mut lent = None;
        for value in values.filter(|v| v.any(ours)) {
            lent.get_or_insert_with(|| self.lent())
                .resolve_locals(value);
        }
    }

    /// Takes a message the peer sent where it goes: its objects into the
    /// held table, a reply to its caller, a request to the service's queue
    /// once its bytes fit (refused at once when the queue is full). `Break`
    /// when reading should stop: the peer sent `Close`, or the connection
    /// wound up while the request waited for room.
    pub(super) async fn deliver(
        &self,
        mut message: Message,
        inbox: &mpsc::Sender<Incoming>,
    ) -> ControlFlow<()> {
        self.receive(&mut message);
        let (seq, request) = match message {
            Message::Reply { seq, result } => {
                if !self.in_flight.finish(seq, result) {
                    tracing::debug!(peer = %self.peer, seq, "reply to no waiting call dropped");
                }
                return ControlFlow::Continue(());
            }
            Message::Request { seq, request } => (seq, request),
        };
        let closing = matches!(request, Request::Close);
        let weight = size_of::<Message>() + request.weight();
        let held = match self.queued.try_take(weight) {
            Some(held) => held,
            None => tokio::select! {
                held = self.queued.take(weight) => held,
                () = self.status.wound_up() => return ControlFlow::Break(()),
            },
        };
        let incoming = Incoming { seq, request, held };
        if let Err(mpsc::error::TrySendError::Full(refused)) = inbox.try_send(incoming) {
            drop(refused);
            let busy = queue_full(self.config.max_queued_requests);
            let reply = Message::Reply {
                seq,
                result: Err(busy),
            };
            let _ = self.send(reply).await;
        }
        if closing {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Takes the objects the peer lent in `message` into the held table,
    /// each as its handle. A message lending more objects than the table
    /// holds becomes a `MemoryError` (its objects are given back).
    fn receive(&self, message: &mut Message) {
        let mut refused = None;
        message.for_each_value_mut(|value| {
            value.for_each_item_mut(&mut |item| {
                if let Value::Object(object) = item
                    && object.holder == Holder::Sender
                {
                    match self.held.receive(object.clone()) {
                        Ok(handle) => *item = Value::Remote(handle),
                        Err(too_many) => refused = Some(too_many),
                    }
                }
            });
        });
        if let Some(too_many) = refused {
            message.refuse(Exception::memory_error(too_many.to_string()));
        }
    }

    /// Sends `request` and waits for its outcome, at most the call timeout.
    /// This side's objects in its arguments are lent to the peer; those in
    /// the reply come back as themselves.
    pub(super) async fn request(&self, mut request: Request) -> Result<Value, Error> {
        let kept = self.prepare_arguments(&mut request)?;
        let mut pending = self.in_flight.start()?;
        let message = Message::Request {
            seq: pending.seq(),
            request,
        };
        self.send(message).await.map_err(|_| Error::Closed)?;
        drop(kept);
        let limit = self.config.call_timeout;
        let mut reply = tokio::time::timeout(limit, pending.outcome())
            .await
            .map_err(|_| Error::Timeout(limit))??;
        self.resolve_locals(std::iter::once(&mut reply));
        Ok(reply)
    }

    /// Prepares the arguments of a call `request` to be sent; the peer's
    /// objects among them are kept (returned) until they are.
    fn prepare_arguments(&self, request: &mut Request) -> Result<Vec<PeerObject>, Error> {
        let mut kept = Vec::new();
        if let Request::Call { args, kwargs, .. } | Request::CallAttr { args, kwargs, .. } = request
        {
            for value in args.iter_mut().chain(kwargs.iter_mut().map(|(_, v)| v)) {
                self.prepare(value, &mut kept).map_err(Error::Lend)?;
            }
        }
        Ok(kept)
    }

    /// Sends `request` without waiting for its answer, which is dropped
    /// when it comes; `Err` when it cannot be sent.
    pub(super) async fn post(&self, mut request: Request) -> Result<(), Error> {
        let kept = self.prepare_arguments(&mut request)?;
        let seq = self.in_flight.start_unwaited()?;
        let sent = self.send(Message::Request { seq, request }).await;
        drop(kept);
        if sent.is_err() {
            self.in_flight.end(seq, Err(Error::Closed));
        }
        sent.map_err(|_| Error::Closed)
    }

    /// Queues `message` for the socket, once its bytes fit in the budget of
    /// unsent messages; `Err` when the connection is gone.
    pub(super) async fn send(&self, message: Message) -> Result<(), Closed> {
        self.outbound.send(message).await
    }

    /// Tells the peer this side is closing (without waiting for an answer).
    pub(super) async fn send_close(&self) {
        if let Ok(pending) = self.in_flight.start() {
            let close = Message::Request {
                seq: pending.seq(),
                request: Request::Close,
            };
            let _ = self.send(close).await;
        }
    }
}

impl PeerLink for Shared {
    fn request(&self, request: Request) -> Answer<'_, Value> {
        Box::pin(async move {
            let _waiting = self.status.wait_on_peer();
            Shared::request(self, request).await
        })
    }

    fn post(&self, request: Request) -> Answer<'_, ()> {
        Box::pin(Shared::post(self, request))
    }

    fn root(&self) -> Answer<'_, ObjectId> {
        Box::pin(async move { Ok(Shared::root(self).await?.id()) })
    }

    fn holds(&self, object: &PeerObject) -> bool {
        self.held.holds(object)
    }

    fn max_lent_objects(&self) -> usize {
        self.config.max_lent_objects
    }

    fn max_held_objects(&self) -> usize {
        self.config.max_held_objects
    }
}
