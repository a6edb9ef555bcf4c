//! One symmetric connection: either side sends requests at any time, replies
//! find their callers by sequence number, and this side's service answers the
//! peer's requests while its own calls wait.
//!
//! One task drives a connection: it reads frames, serves requests and writes
//! replies, so a request is answered without crossing tasks. Callers on other
//! tasks hand it messages through a bounded queue.
//!
//! The parts: [`Config`] (bounds and timeouts), the shared hub (`shared`:
//! status, queues, calls in flight, objects both ways), the transport
//! (frames in and out), dispatch (the peer's requests served), releases (of
//! the peer's objects, paced), and the handles: [`Connection`],
//! [`RemoteObject`], [`Peer`].

mod config;
mod dispatch;
mod in_flight;
mod objects;
mod queues;
mod releases;
mod remote;
mod shared;
mod status;
mod transport;

use std::any::Any;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
pub use crate::peer::Peer;
use crate::protocol::{Codec, FrameError, Request};
use crate::service::Service;
use crate::value::Value;
pub use config::*;
pub use releases::RELEASE_WINDOW;
pub use remote::RemoteObject;
use shared::Shared;
pub(crate) use transport::Transport;
use transport::{ReadError, count_frame_too_large};

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
        self.shared.status().close();
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
        let (inbox, incoming) = mpsc::channel(config.max_queued_requests);
        let (reading, writing, peer) = transport.into_parts();

        let (shared, outgoing) = Shared::new(config, peer, &stop);
        let driver = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let shared = &*driver;
            let reading = async {
                if let Err(error) = reading.run(shared, inbox).await {
                    tracing::warn!(peer = %shared.peer(), %error, "closing the connection");
                    if let ReadError::Frame(FrameError::TooLarge { .. }) = error {
                        count_frame_too_large(true);
                    }
                }
                shared.in_flight().close();
                shared.status().peer_went_away();
            };
            let writing = async {
                if let Err(error) = writing.run(outgoing, shared).await {
                    tracing::debug!(peer = %shared.peer(), %error, "write failed; closing the connection");
                    shared.status().close();
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
            shared.status().finish();
        });
        let handle = Arc::new(Handle { shared });
        let owner: Weak<dyn Any + Send + Sync> = Arc::downgrade(&handle) as Weak<Handle>;
        handle.shared.held().set_owner(owner);
        (Connection { handle }, task)
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The peer's root object: its service.
    pub fn root(&self) -> RemoteObject {
        RemoteObject::new(self.clone(), self.shared().root_now())
    }

    /// Records that the peer's root is [`ROOT`](crate::protocol::ROOT), for
    /// protocols that name it without asking (native).
    pub(crate) fn know_root(&self) {
        self.shared().know_root();
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
        self.shared().status().is_closing()
    }

    /// How long the connection has been idle: no message either way and no
    /// call in progress on either side. `None` while a call is in progress.
    pub fn idle_for(&self) -> Option<Duration> {
        self.shared().idle_for()
    }

    /// Starts closing the connection without telling the peer or waiting: a
    /// request being served still gets its reply.
    pub fn disconnect(&self) {
        self.shared().status().close();
    }

    /// Tells the peer this side is closing, then closes and waits until the
    /// connection has finished.
    pub async fn close(self) {
        let shared = Arc::clone(&self.handle.shared);
        shared.send_close().await;
        drop(self);
        shared.status().close();
        shared.status().finished().await;
    }

    /// How many of this side's objects (native functions, service objects,
    /// methods) the peer holds.
    pub fn lent_objects(&self) -> usize {
        self.shared().lent().len()
    }

    /// How many distinct objects of the peer's this side holds.
    pub fn held_objects(&self) -> usize {
        self.shared().held().len()
    }

    /// How many of this side's calls wait for replies.
    pub fn calls_in_flight(&self) -> usize {
        self.shared().in_flight().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exception::Exception;
    use std::time::Instant;

    use bytes::BytesMut;

    use crate::held::PeerObject;
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
