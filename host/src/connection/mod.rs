//! One symmetric connection: either side sends requests at any time, replies
//! find their callers by sequence number, and this side's service answers the
//! peer's requests while its own calls wait.
//!
//! One task drives a connection: it reads frames, serves requests and writes
//! replies, so a request is answered without crossing tasks. Callers on other
//! tasks hand it messages through a bounded queue.

mod dispatch;
mod in_flight;
mod objects;
mod queues;
mod releases;
mod remote;
mod transport;

use std::any::Any;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OnceCell, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::exception::Exception;
pub use crate::held::DEFAULT_MAX_HELD_OBJECTS;
use crate::held::{HeldObjects, PeerObject};
use crate::protocol::{Codec, Holder, Message, ROOT, Request};
use crate::service::Service;
use crate::value::Value;
use in_flight::InFlight;
use objects::Objects;
use queues::{ByteBudget, Outgoing};
pub use releases::RELEASE_WINDOW;
use releases::{Releases, Sent};
pub use remote::{Peer, RemoteObject};

/// RPyC's `sync_request_timeout`: how long a call waits for its reply.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest frame either side accepts. Large enough for any sensible
/// argument; small enough that a hostile length prefix costs little memory.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// How many of this side's calls may wait for replies at once (tarpc's
/// default). Past it, a call fails at once with [`Error::TooManyInFlight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;

/// How many of the peer's requests may wait for the service. Past it, a
/// request is answered at once with a `RuntimeError`, so a flooding peer
/// cannot grow the queue.
pub const DEFAULT_MAX_QUEUED_REQUESTS: usize = 1000;

/// How many bytes (decoded) the peer's requests waiting for the service may
/// take, and as many again the messages waiting for the socket (replies to
/// a peer that does not read them). Past it the connection stops reading
/// the socket, or the service waits to send, until the queue drains: a
/// peer's excess costs the host at most twice this. Twice the largest
/// frame, so that a frame of any allowed size passes.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 2 * DEFAULT_MAX_FRAME;

/// How many objects (methods, instances) the peer may hold of this side at
/// once. A client that forgets to release them hits this instead of growing
/// the host's memory; RPyC's client releases each method right after use.
pub const DEFAULT_MAX_LENT_OBJECTS: usize = 10_000;

/// How many outgoing messages may wait for the socket before senders wait.
const OUTBOX_CAPACITY: usize = 1024;

/// How long a peer may take to finish a frame it has begun: a client that
/// sends half a frame and stalls is dropped instead of holding a buffer.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection polls for the next request before it sleeps
/// (see [`Config::read_spin`]). A server's default: a request that follows
/// within it is read without waking a sleeping core. Idle clients do not
/// poll (a client awaiting a reply does: [`DEFAULT_REPLY_SPIN`]).
pub const DEFAULT_SERVER_READ_SPIN: Duration = Duration::from_micros(100);

/// How long a connection that awaits a reply polls for it before it sleeps
/// (see [`Config::reply_spin`]): replies on a local network come within it.
pub const DEFAULT_REPLY_SPIN: Duration = Duration::from_micros(100);

/// How long a server's connection may go without a message, while neither
/// side has a call in progress, before it is closed: an idle connection holds
/// a service instance and a connection slot, and one whose peer vanished
/// without closing (a half-open socket) would hold them forever. Long enough
/// for an interactive session that pauses; short enough that forgotten
/// connections give their slots back within minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a write may wait for a peer that does not read.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds and timeouts of one connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// See [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Duration,
    /// See [`DEFAULT_MAX_FRAME`].
    pub max_frame: usize,
    /// See [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// See [`DEFAULT_MAX_QUEUED_REQUESTS`].
    pub max_queued_requests: usize,
    /// See [`DEFAULT_MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
    /// See [`DEFAULT_MAX_LENT_OBJECTS`].
    pub max_lent_objects: usize,
    /// See [`DEFAULT_MAX_HELD_OBJECTS`].
    pub max_held_objects: usize,
    /// See [`DEFAULT_FRAME_TIMEOUT`].
    pub frame_timeout: Duration,
    /// See [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// How long an idle connection polls for the next frame before it
    /// sleeps, yielding to other tasks meanwhile: spends otherwise idle CPU
    /// to save a core's wake-up per request. Zero (the default) never polls;
    /// servers use [`DEFAULT_SERVER_READ_SPIN`].
    pub read_spin: Duration,
    /// How long a connection polls for the next frame while one of its calls
    /// awaits a reply (a callback round trip is two such waits). See
    /// [`DEFAULT_REPLY_SPIN`]; zero never polls.
    pub reply_spin: Duration,
    /// How long the connection may idle before it is closed (see
    /// [`DEFAULT_IDLE_TIMEOUT`], the servers' default); `None` (clients'
    /// default) never closes an idle connection.
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_queued_requests: DEFAULT_MAX_QUEUED_REQUESTS,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_lent_objects: DEFAULT_MAX_LENT_OBJECTS,
            max_held_objects: DEFAULT_MAX_HELD_OBJECTS,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            read_spin: Duration::ZERO,
            reply_spin: DEFAULT_REPLY_SPIN,
            idle_timeout: None,
        }
    }
}

impl Config {
    /// How many of the peer's objects a codec that names them by its own ids
    /// (RPyC's) keeps track of: those held, and as many again whose
    /// releases are on their way.
    pub(crate) fn max_named_objects(&self) -> usize {
        self.max_held_objects.saturating_mul(2)
    }
}

/// What the driver task and every handle share.
struct Shared {
    outbox: mpsc::Sender<Outgoing>,
    /// The bytes of the messages waiting for the socket.
    unsent: ByteBudget,
    /// The bytes of the peer's requests waiting for the service.
    queued: ByteBudget,
    in_flight: InFlight,
    /// Cancelled when the connection starts to close, for whatever reason.
    closing: CancellationToken,
    /// Cancelled when the driver task has finished.
    finished: CancellationToken,
    /// Cancelled when the peer went away (closed its end, sent `Close`,
    /// broke the stream) before this side began to close: the call of the
    /// peer's in progress is abandoned, as nobody waits for its reply.
    peer_gone: CancellationToken,
    config: Config,
    /// The peer's address, for logs.
    peer: String,
    /// How many calls this side's service has waiting on the peer: while
    /// any does, the peer's requests are answered without entering it.
    waiting_on_peer: watch::Sender<usize>,
    /// Whether this side is serving one of the peer's requests.
    serving: watch::Sender<bool>,
    /// When the last message arrived or the last request was served.
    last_active: std::sync::Mutex<Instant>,
    /// The peer's root object, once known: a native client knows it
    /// ([`ROOT`]); otherwise the first use asks the peer (GETROOT).
    root: OnceCell<PeerObject>,
    /// This side's objects the peer holds.
    objects: std::sync::Mutex<Objects>,
    /// The peer's objects this side holds.
    held: HeldObjects,
    /// Their releases waiting to be sent.
    releases: Releases,
}

impl Shared {
    /// The peer's root object, asking the peer the first time.
    async fn root(&self) -> Result<&PeerObject, Error> {
        let fetch = || async {
            match self.request(Request::GetRoot).await? {
                Value::Remote(root) => Ok(root),
                other => Err(Error::UnexpectedResult(crate::value::ValueError {
                    expected: "the peer's root object".into(),
                    got: other.to_string(),
                })),
            }
        };
        self.root.get_or_try_init(fetch).await
    }

    /// Whether this side is serving one of the peer's requests.
    fn serving(&self) -> bool {
        *self.serving.borrow()
    }

    /// Marks the connection active now.
    fn touch(&self) {
        *self.last_active.lock().expect("last_active poisoned") = Instant::now();
    }

    /// How long neither side has had anything to do; `None` while a call
    /// is in progress either way.
    fn idle_for(&self) -> Option<Duration> {
        if self.serving() || self.in_flight.len() > 0 {
            return None;
        }
        Some(
            self.last_active
                .lock()
                .expect("last_active poisoned")
                .elapsed(),
        )
    }

    /// Completes once the connection is closing and no request of the peer's
    /// is being served: a request in progress (at a graceful shutdown, say)
    /// still gets its reply, and may call the peer meanwhile.
    async fn wound_up(&self) {
        self.closing.cancelled().await;
        let _ = self.serving.subscribe().wait_for(|serving| !serving).await;
    }

    /// This side's objects the peer holds.
    fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().expect("objects poisoned")
    }

    /// Readies `value` to be sent: this side's objects are lent, the peer's
    /// objects go back as references the peer resolves (their handles move
    /// to `kept`, so none is released before the value is sent).
    fn prepare(&self, value: &mut Value, kept: &mut Vec<PeerObject>) -> Result<(), Exception> {
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
            self.objects().lend_locals(value)?;
        }
        Ok(())
    }

    /// Turns the peer's references to this side's objects in a call's
    /// arguments back into the objects.
    fn resolve_locals<'v>(&self, values: impl Iterator<Item = &'v mut Value>) {
        let ours = |v: &Value| matches!(v, Value::Object(o) if o.holder == Holder::Receiver);
        let mut objects = None;
        for value in values.filter(|v| v.any(ours)) {
            objects
                .get_or_insert_with(|| self.objects())
                .resolve_locals(value);
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
    async fn request(&self, mut request: Request) -> Result<Value, Error> {
        let mut kept = Vec::new();
        if let Request::Call { args, kwargs, .. } | Request::CallAttr { args, kwargs, .. } =
            &mut request
        {
            for value in args.iter_mut().chain(kwargs.iter_mut().map(|(_, v)| v)) {
                self.prepare(value, &mut kept).map_err(Error::Lend)?;
            }
        }
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

    /// Queues `message` for the socket, once its bytes fit in the budget of
    /// unsent messages; `Err` when the connection is gone.
    async fn send(&self, message: Message) -> Result<(), Closed> {
        let held = self.unsent.take(message.weight()).await;
        self.outbox
            .send(Outgoing { message, held })
            .await
            .map_err(|_| Closed)
    }
}

/// The connection is gone: a message could not be queued.
#[derive(Debug)]
struct Closed;

/// The two halves of a stream, the codec of each direction, and any bytes
/// already read from it (the server reads a few to tell the protocol).
pub(crate) struct Transport<R, W, C> {
    reader: R,
    writer: W,
    decoder: C,
    encoder: C,
    already_read: BytesMut,
    peer: String,
    batch_writes: bool,
}

impl<R, W, C> Transport<R, W, C> {
    /// A stream's halves with the codecs of its two directions (`(decoder,
    /// encoder)`), the bytes already read from it, and the peer's name.
    pub(crate) fn new(
        reader: R,
        writer: W,
        (decoder, encoder): (C, C),
        already_read: BytesMut,
        peer: String,
    ) -> Self {
        Transport {
            reader,
            writer,
            decoder,
            encoder,
            already_read,
            peer,
            batch_writes: true,
        }
    }

    /// Writes every message on its own (over TLS: in its own records)
    /// rather than many per write. RPyC's Python end waits for a message by
    /// polling the socket, which cannot see a second message already
    /// decrypted into the TLS buffer alongside the first: it would wait for
    /// it until its timeout.
    pub(crate) fn one_message_per_write(mut self) -> Self {
        self.batch_writes = false;
        self
    }
}

/// A handle on a live connection. Clones share it; when the last handle is
/// dropped the connection closes.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Closes the connection when the last [`Connection`] goes away.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closing.cancel();
    }
}

impl Connection {
    /// Starts the task that drives a connection over `transport`, serving
    /// `service` to the peer, until either side closes it or `stop` is
    /// cancelled. The task ends when the connection has closed.
    pub(crate) fn spawn<R, W, C, S>(
        transport: Transport<R, W, C>,
        service: S,
        config: Config,
        stop: CancellationToken,
    ) -> (Connection, JoinHandle<()>)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        C: Codec,
        S: Service,
    {
        let (outbox, outgoing) = mpsc::channel(OUTBOX_CAPACITY);
        let (inbox, incoming) = mpsc::channel(config.max_queued_requests);
        let shared = Arc::new(Shared {
            outbox,
            unsent: ByteBudget::new(config.max_queued_bytes),
            queued: ByteBudget::new(config.max_queued_bytes),
            in_flight: InFlight::new(config.max_in_flight),
            objects: std::sync::Mutex::new(Objects::new(config.max_lent_objects)),
            held: HeldObjects::new(config.max_held_objects),
            releases: Releases::default(),
            closing: stop.child_token(),
            finished: CancellationToken::new(),
            peer_gone: CancellationToken::new(),
            config,
            peer: transport.peer,
            waiting_on_peer: watch::Sender::new(0),
            serving: watch::Sender::new(false),
            last_active: std::sync::Mutex::new(Instant::now()),
            root: OnceCell::new(),
        });
        let sender = Arc::downgrade(&shared);
        let runtime = tokio::runtime::Handle::current();
        shared.held.set_sink(Box::new(move |release| {
            let Some(shared) = sender.upgrade() else {
                return;
            };
            let (in_flight, outbox) = (&shared.in_flight, &shared.outbox);
            if shared.releases.send(release, in_flight, outbox) == Sent::Drain {
                runtime.spawn(async move {
                    let (in_flight, outbox) = (&shared.in_flight, &shared.outbox);
                    tokio::select! {
                        () = shared.releases.drain(in_flight, outbox) => {}
                        () = shared.closing.cancelled() => {}
                    }
                });
            }
        }));
        let driver = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let shared = &*driver;
            let reading = async {
                let result = transport::read_loop(
                    transport.reader,
                    transport.decoder,
                    transport.already_read,
                    shared,
                    inbox,
                )
                .await;
                if let Err(error) = result {
                    tracing::warn!(peer = %shared.peer, %error, "closing the connection");
                }
                if !shared.closing.is_cancelled() {
                    shared.peer_gone.cancel();
                }
                shared.in_flight.close();
                shared.closing.cancel();
            };
            let writing = async {
                if let Err(error) = transport::write_loop(
                    transport.writer,
                    transport.encoder,
                    transport.batch_writes,
                    outgoing,
                    shared,
                )
                .await
                {
                    tracing::debug!(peer = %shared.peer, %error, "write failed; closing the connection");
                    shared.closing.cancel();
                }
            };
            let executor = service.executor();
            // Boxed, so the task holds the serving once, wherever it runs.
            let serving = Box::pin(dispatch::serve(service, incoming, Arc::clone(&driver)));
            let serving = async {
                match executor {
                    Some(executor) => executor.drive(serving).await,
                    None => serving.await,
                }
            };
            tokio::join!(reading, writing, serving);
            shared.finished.cancel();
        });
        let handle = Arc::new(Handle { shared });
        let owner: Weak<dyn Any + Send + Sync> = Arc::downgrade(&handle) as Weak<Handle>;
        handle.shared.held.set_owner(owner);
        (Connection { handle }, task)
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The peer's root object: its service.
    pub fn root(&self) -> RemoteObject {
        let root = self.shared().root.get().cloned();
        let root = root.unwrap_or_else(|| self.shared().held.never_released(ROOT, "root"));
        RemoteObject::new(self.clone(), root)
    }

    /// Records that the peer's root is [`ROOT`], for protocols that name it
    /// without asking (native).
    pub(crate) fn know_root(&self) {
        let root = self.shared().held.never_released(ROOT, "root");
        let _ = self.shared().root.set(root);
    }

    /// Asks the peer for its root now (a GETROOT round trip), so that
    /// [`Connection::root`] can name it.
    pub(crate) async fn fetch_root(&self) -> Result<(), Error> {
        self.shared().root().await.map(drop)
    }

    /// Sends `request` and waits for its outcome, at most the call timeout.
    pub(crate) async fn request(&self, request: Request) -> Result<Value, Error> {
        self.shared().request(request).await
    }

    /// Checks that the peer answers: it echoes `data` back.
    pub async fn ping(&self) -> Result<(), Error> {
        let data = Value::Str("wasm-rpyc ping".into());
        match self.request(Request::Ping(data.clone())).await? {
            echo if echo == data => Ok(()),
            echo => Err(Error::UnexpectedResult(crate::value::ValueError {
                expected: data.to_string(),
                got: echo.to_string(),
            })),
        }
    }

    /// Whether the connection has closed (or is closing).
    pub fn is_closed(&self) -> bool {
        self.shared().closing.is_cancelled()
    }

    /// How long the connection has been idle: no message either way and no
    /// call in progress on either side. `None` while a call is in progress.
    pub fn idle_for(&self) -> Option<Duration> {
        self.shared().idle_for()
    }

    /// Starts closing the connection without telling the peer or waiting: a
    /// request being served still gets its reply.
    pub fn disconnect(&self) {
        self.shared().closing.cancel();
    }

    /// Tells the peer this side is closing, then closes and waits until the
    /// connection has finished.
    pub async fn close(self) {
        let shared = Arc::clone(&self.handle.shared);
        if let Ok(pending) = shared.in_flight.start() {
            let close = Message::Request {
                seq: pending.seq(),
                request: Request::Close,
            };
            let _ = shared.send(close).await;
        }
        drop(self);
        shared.closing.cancel();
        shared.finished.cancelled().await;
    }

    /// How many of this side's objects (native functions, service objects,
    /// methods) the peer holds.
    pub fn lent_objects(&self) -> usize {
        self.shared().objects().len()
    }

    /// How many distinct objects of the peer's this side holds.
    pub fn held_objects(&self) -> usize {
        self.shared().held.len()
    }

    /// How many of this side's calls wait for replies.
    pub fn calls_in_flight(&self) -> usize {
        self.shared().in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exception::Exception;
    use crate::protocol::native::NativeCodec;
    use crate::value::IntoValue;

    /// A native service that answers `whoami` and `double(x)`.
    struct Named(Vec<String>);

    impl Service for Named {
        fn aliases(&self) -> &[String] {
            &self.0
        }

        fn exposed_names(&self) -> Vec<String> {
            vec!["double".into(), "whoami".into()]
        }

        async fn call(
            &mut self,
            name: &str,
            args: Vec<Value>,
            _: Vec<(String, Value)>,
        ) -> Result<Value, Exception> {
            match (name, args.as_slice()) {
                ("whoami", []) => Ok(Value::Str(self.0[0].clone())),
                ("double", [Value::Int(x)]) => Ok(Value::Int(x * 2)),
                _ => Err(Exception::type_error("bad arguments")),
            }
        }
    }

    /// A native service that calls back, keeps and lends functions.
    struct Keeper {
        names: Vec<String>,
        peer: Option<Peer>,
        kept: Vec<PeerObject>,
    }

    impl Service for Keeper {
        fn aliases(&self) -> &[String] {
            &self.names
        }

        fn exposed_names(&self) -> Vec<String> {
            ["apply", "keep", "forget", "make"].map(String::from).into()
        }

        async fn on_connect(&mut self, peer: Peer) -> Result<(), Exception> {
            self.peer = Some(peer);
            Ok(())
        }

        async fn call(
            &mut self,
            name: &str,
            args: Vec<Value>,
            _: Vec<(String, Value)>,
        ) -> Result<Value, Exception> {
            let peer = self.peer.as_ref().expect("connected");
            match (name, <[Value; 2]>::try_from(args)) {
                ("apply", Ok([Value::Remote(function), x])) => peer
                    .call(&function, vec![x], Vec::new())
                    .await
                    .map_err(|e| Exception::runtime_error(e.to_string())),
                ("keep", Ok([Value::Remote(a), Value::Remote(b)])) => {
                    self.kept.extend([a, b]);
                    Ok(Value::None)
                }
                ("forget", _) => {
                    self.kept.clear();
                    Ok(Value::None)
                }
                ("make", _) => {
                    Ok(crate::local::Function::new(|_| async { Ok(Value::None) }).into_value())
                }
                _ => Err(Exception::type_error("bad arguments")),
            }
        }
    }

    fn keeper() -> Keeper {
        Keeper {
            names: vec!["KEEPER".into()],
            peer: None,
            kept: Vec::new(),
        }
    }

    fn end(stream: tokio::io::DuplexStream, name: &str) -> Connection {
        end_serving(stream, name, Named(vec![name.to_uppercase()]))
    }

    fn end_serving(
        stream: tokio::io::DuplexStream,
        name: &str,
        service: impl Service,
    ) -> Connection {
        let (reader, writer) = tokio::io::split(stream);
        let codec = NativeCodec::new(DEFAULT_MAX_FRAME);
        let transport = Transport::new(
            reader,
            writer,
            (codec, codec),
            BytesMut::new(),
            name.to_owned(),
        );
        Connection::spawn(
            transport,
            service,
            Config::default(),
            CancellationToken::new(),
        )
        .0
    }

    #[tokio::test]
    async fn both_ends_serve_and_call_with_many_calls_in_flight() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (left, right) = (end(a, "left"), end(b, "right"));
        assert_eq!(
            left.root().call::<String>("whoami", ()).await.unwrap(),
            "RIGHT"
        );
        assert_eq!(
            right.root().call::<String>("whoami", ()).await.unwrap(),
            "LEFT"
        );
        let calls = (0..200i64).map(|i| {
            let (from_left, from_right) = (left.root(), right.root());
            async move {
                let x: i64 = from_left.call("double", (i,)).await.unwrap();
                let y: i64 = from_right.call("double", (i,)).await.unwrap();
                (x, y)
            }
        });
        let results = futures::future::join_all(calls).await;
        for (i, (x, y)) in results.into_iter().enumerate() {
            assert_eq!((x, y), (2 * i as i64, 2 * i as i64));
        }
        let name: String = left.root().call("get_service_name", ()).await.unwrap();
        assert_eq!(name, "RIGHT");
        right.close().await;
        assert!(matches!(
            left.root().call::<String>("whoami", ()).await,
            Err(Error::Closed)
        ));
    }

    /// Waits (at most 5 s) until `done` holds.
    async fn eventually(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "not within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_native_service_releases_the_peers_objects_when_it_drops_them() {
        use crate::local::Function;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (client, server) = (end(a, "client"), end_serving(b, "server", keeper()));
        let double = Function::new(|args| async move {
            match args.as_slice() {
                [Value::Int(x)] => Ok(Value::Int(x * 2)),
                _ => Err(Exception::type_error("not an int")),
            }
        });
        let root = client.root();
        assert_eq!(root.call::<i64>("apply", (&double, 21)).await.unwrap(), 42);
        client.ping().await.unwrap(); // the release follows the reply
        assert_eq!(client.lent_objects(), 0, "released once the call ended");
        assert_eq!(server.held_objects(), 0);

        let triple = Function::new(|_| async { Ok(Value::None) });
        root.call::<()>("keep", (&double, &triple)).await.unwrap();
        root.call::<()>("keep", (&double, &double)).await.unwrap();
        client.ping().await.unwrap();
        // This side lends a function anew each time it is passed.
        assert_eq!(client.lent_objects(), 4, "kept");
        assert_eq!(server.held_objects(), 4);
        root.call::<()>("forget", ()).await.unwrap();
        client.ping().await.unwrap();
        assert_eq!(client.lent_objects(), 0, "every lend given back");
        assert_eq!(server.held_objects(), 0);
    }

    #[tokio::test]
    async fn thousands_of_handles_dropped_at_once_do_not_fill_the_peers_queue() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (client, server) = (end(a, "client"), end_serving(b, "server", keeper()));
        let root = client.root();
        let mut made = Vec::new();
        for _ in 0..3_000 {
            made.push(root.call::<RemoteObject>("make", ()).await.unwrap());
        }
        assert_eq!(server.lent_objects(), 3_000);
        assert_eq!(client.held_objects(), 3_000);
        drop(made);
        // The server queues at most 1,000 requests; the releases keep room.
        root.call::<()>("forget", ()).await.unwrap();
        eventually(|| server.lent_objects() == 0).await;
        assert_eq!(client.held_objects(), 0);
    }
}
