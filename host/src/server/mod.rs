//! The listener: accepts connections, admits them (see `admission`),
//! serves each on one of the sockets' threads (see `threads`), tells the
//! protocol from the first bytes (native or RPyC), gives each connection its
//! own service instance, counts those it serves (see `load`), and shuts
//! down cleanly.

mod admission;
mod load;
mod refusal;
mod threads;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use socket2::{SockRef, Socket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use admission::{Admission, Bounds, Ticket};
pub use load::Load;
use refusal::refuse;
use threads::SocketThreads;

use crate::connection::{self, Connection, Transport};
use crate::metrics::{self, Refusal};
use crate::protocol::Wire;
use crate::protocol::native::MAGIC;
use crate::service::Service;
use crate::wasm::{ServiceComponent, WasmService};

/// How many connections one listener serves at once: its service's share
/// of the host's instances (each connection holds one). A client past it
/// is refused with a `RuntimeError` that says so, unless a connection idle
/// long enough makes room (see [`DEFAULT_EVICT_IDLE_AFTER`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// How many connections one address may have open on one listener, in
/// their handshake or served: a quarter of the slots, so that one address
/// cannot take every one.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = DEFAULT_MAX_CONNECTIONS / 4;

/// How many sockets may be in their TLS handshake or yet to name their
/// protocol at once, beside the served connections: past it the oldest
/// gives way. A real client gets through in milliseconds, so silent sockets
/// cannot hold serving slots; but RPyC's client sends nothing until its
/// first request, so a burst of clients that connect and wait must fit.
pub const DEFAULT_MAX_HANDSHAKES: usize = 512;

/// How long a new connection may take to send its first bytes, which name
/// its protocol (and, over TLS, to finish its handshake first). RPyC's
/// client sends nothing until its first request.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a served connection must have been idle before it may be
/// closed to make room for a new client when every slot is taken.
pub const DEFAULT_EVICT_IDLE_AFTER: Duration = Duration::from_secs(30);

/// How long shutdown waits for connections to finish their current call and
/// run `on-disconnect`.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A listener's bounds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Each connection's bounds and timeouts.
    pub connection: connection::Config,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS_PER_IP`]; `None` sets no cap.
    pub max_connections_per_ip: Option<usize>,
    /// See [`DEFAULT_MAX_HANDSHAKES`].
    pub max_handshakes: usize,
    /// See [`DEFAULT_HELLO_TIMEOUT`].
    pub hello_timeout: Duration,
    /// See [`DEFAULT_EVICT_IDLE_AFTER`].
    pub evict_idle_after: Duration,
    /// See [`DEFAULT_SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
    /// Serve over TLS with this configuration (see [`crate::tls`]); `None`
    /// serves plain TCP.
    pub tls: Option<Arc<crate::tls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let mut connection = connection::Config::default();
        connection.read_spin = connection::DEFAULT_SERVER_READ_SPIN;
        connection.idle_timeout = Some(connection::DEFAULT_IDLE_TIMEOUT);
        ServerConfig {
            connection,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: Some(DEFAULT_MAX_CONNECTIONS_PER_IP),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            evict_idle_after: DEFAULT_EVICT_IDLE_AFTER,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tls: None,
        }
    }
}

/// What a server gives each connection: a service of its own.
pub trait ServiceFactory: Clone + Send + Sync + 'static {
    /// The service one connection gets.
    type Service: Service;

    /// The proper name of what is served, for logs.
    fn name(&self) -> String;

    /// A new service for one connection.
    fn new_service(&self) -> Self::Service;
}

impl ServiceFactory for ServiceComponent {
    type Service = WasmService;

    fn name(&self) -> String {
        self.aliases()[0].clone()
    }

    fn new_service(&self) -> WasmService {
        self.instance()
    }
}

/// Serves a service (a component, by default) on one TCP listener.
pub struct Server<F = ServiceComponent> {
    listener: TcpListener,
    factory: F,
    config: ServerConfig,
    load: Load,
}

impl<F: ServiceFactory> Server<F> {
    /// Binds `addr` (port 0 picks a free port) to give every connection a
    /// service made by `factory` (a [`ServiceComponent`] gives each its own
    /// instance).
    pub async fn bind(
        addr: impl ToSocketAddrs,
        factory: F,
        config: ServerConfig,
    ) -> io::Result<Self> {
        let load = Load::new(config.max_connections);
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            factory,
            config,
            load,
        })
    }

    /// How many connections it serves; read while it runs.
    pub fn load(&self) -> Load {
        self.load.clone()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then stops accepting, closes every
    /// connection (each finishes its current call and runs `on-disconnect`)
    /// and waits for them, at most the shutdown grace period.
    ///
    /// The listener and its connections are served on the process's
    /// sockets' threads (one single-threaded runtime per core, shared by
    /// every server), not on the caller's runtime: a native service's calls
    /// run there too, so one that blocks holds up the connections of its
    /// thread.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            factory,
            config,
            load,
        } = self;
        // Moved to the thread that accepts, whose runtime then polls it.
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot serve the listener");
                return;
            }
        };
        let stopping = CancellationToken::new();
        let threads = SocketThreads::shared();
        let accepting = accept(listener, factory, config, load, threads, stopping.clone());
        let stop_at_shutdown = async {
            shutdown.await;
            stopping.cancel();
            std::future::pending::<()>().await;
        };
        match threads {
            // Accepting on a sockets' thread, which then serves the new
            // connection itself if it is among the least busy: one thread to
            // wake rather than two.
            Some(threads) => {
                let accepting = AbortOnDropHandle::new(threads.for_listener().spawn(accepting));
                tokio::select! {
                    accepted = accepting => {
                        if let Err(error) = accepted
                            && error.is_panic()
                        {
                            std::panic::resume_unwind(error.into_panic());
                        }
                    }
                    () = stop_at_shutdown => {}
                }
            }
            None => tokio::select! {
                () = accepting => {}
                () = stop_at_shutdown => {}
            },
        }
    }
}

/// Accepts connections on `listener` until `stopping` is cancelled, serving
/// each on the least busy sockets' thread (or here, without them); then
/// closes every connection and waits for them, at most the shutdown grace
/// period.
async fn accept<F: ServiceFactory>(
    listener: std::net::TcpListener,
    factory: F,
    config: ServerConfig,
    load: Load,
    threads: Option<&'static SocketThreads>,
    stopping: CancellationToken,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "cannot serve the listener on this thread");
            return;
        }
    };
    let stop = CancellationToken::new();
    let admission = Admission::new(Bounds {
        slots: config.max_connections,
        handshakes: config.max_handshakes,
        per_ip: config.max_connections_per_ip,
        evict_idle_after: config.evict_idle_after,
    });
    let mut connections = JoinSet::new();
    let service = factory.name();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping.cancelled() => break,
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ticket = match admission.arrive(peer.ip()) {
            Ok(ticket) => ticket,
            Err(cap) => {
                tracing::debug!(%peer, ?cap, "refused: too many connections from its address");
                if let Some(metrics) = metrics::recording() {
                    metrics.connection_refused(&service, Refusal::PerAddress);
                }
                continue;
            }
        };
        let accepted = Accepted {
            peer,
            // Chosen now: a hot deploy after this does not change what
            // an accepted connection is served.
            service: factory.new_service(),
            config: config.clone(),
            stop: stop.child_token(),
            admission: Arc::clone(&admission),
            ticket,
            load: load.clone(),
        };
        // Moved to its thread, whose runtime then polls it.
        let socket = match socket.into_std() {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot move the socket to its thread");
                continue;
            }
        };
        match threads {
            Some(threads) => {
                let (thread, seat) = threads.least_busy();
                let serving = async move {
                    let _seat = seat;
                    serve_socket(socket, accepted).await;
                };
                connections.spawn_on(serving, thread);
            }
            None => {
                connections.spawn(serve_socket(socket, accepted));
            }
        }
    }
    tracing::info!(%service, open = connections.len(), "shutting down");
    stop.cancel();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(%service, left = connections.len(), "connections still open after {grace:?}; dropping them");
    }
}

/// Serves one accepted socket to its end, over TLS if the server has it,
/// on the runtime it runs on. Until it has named its protocol it may give
/// way to newer sockets.
async fn serve_socket<S: Service>(socket: std::net::TcpStream, accepted: Accepted<S>) {
    let (peer, config) = (accepted.peer, &accepted.config);
    let mut socket = match TcpStream::from_std(socket) {
        Ok(socket) => socket,
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot serve the socket on this thread");
            return;
        }
    };
    if let Err(error) = socket.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let displaced = accepted.ticket.displaced.clone();
    let gave_way =
        || tracing::debug!(%peer, "still in its handshake when newer sockets came: closed");
    // At shutdown, a socket yet to name its protocol is closed at once.
    let stop = accepted.stop.clone();
    let Some(tls) = config.tls.clone() else {
        let hello = tokio::select! {
            hello = hello(&mut socket, peer, config) => hello,
            () = displaced.cancelled() => return gave_way(),
            () = stop.cancelled() => return,
        };
        let Some(hello) = hello else {
            return;
        };
        let ack = quick_ack(&hello, &socket, peer);
        let (reader, writer) = socket.into_split();
        return admitted(reader, writer, hello, ack, accepted).await;
    };
    let handshake = async {
        let stream =
            match tokio::time::timeout(config.hello_timeout, TlsAcceptor::from(tls).accept(socket))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%peer, "no TLS handshake within {:?}", config.hello_timeout);
                    return None;
                }
            };
        let mut stream = stream;
        let hello = hello(&mut stream, peer, config).await?;
        Some((stream, hello))
    };
    let handshaken = tokio::select! {
        handshaken = handshake => handshaken,
        () = displaced.cancelled() => return gave_way(),
        () = stop.cancelled() => return,
    };
    let Some((stream, hello)) = handshaken else {
        return;
    };
    let ack = quick_ack(&hello, stream.get_ref().0, peer);
    let (reader, writer) = tokio::io::split(stream);
    admitted(reader, writer, hello, ack, accepted).await;
}

/// An accepted connection: who, what serves it, when to stop, and its place.
struct Accepted<S> {
    peer: SocketAddr,
    service: S,
    config: ServerConfig,
    stop: CancellationToken,
    admission: Arc<Admission>,
    ticket: Ticket,
    load: Load,
}

/// The first bytes of a connection, which name its protocol; `None` if they
/// do not come in time.
async fn hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    config: &ServerConfig,
) -> Option<BytesMut> {
    let mut hello = BytesMut::with_capacity(MAGIC.len());
    let read = async {
        while hello.len() < MAGIC.len() {
            if stream.read_buf(&mut hello).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok::<_, io::Error>(())
    };
    match tokio::time::timeout(config.hello_timeout, read).await {
        Ok(Ok(())) => Some(hello),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "closed before naming a protocol");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "sent nothing within {:?}", config.hello_timeout);
            None
        }
    }
}

/// For an RPyC connection (anything not native), a second handle on its
/// socket, to re-arm quick ACKs (see [`QuickAck`]); on Linux only, the one
/// system with quick-ack mode.
fn quick_ack(hello: &[u8], socket: &TcpStream, peer: SocketAddr) -> Option<Socket> {
    if !(cfg!(target_os = "linux") && Wire::of_hello(hello).wants_quick_acks()) {
        return None;
    }
    SockRef::from(socket)
        .try_clone()
        .inspect_err(|error| tracing::debug!(%peer, %error, "no quick ACKs"))
        .ok()
}

/// Serves one connection's stream, whose first bytes (`hello`) named the
/// protocol (native, or RPyC, whose reader re-arms quick ACKs with `ack`),
/// if it gets a slot; otherwise tells the client why not.
async fn admitted<R, W, S>(
    reader: R,
    writer: W,
    hello: BytesMut,
    ack: Option<Socket>,
    accepted: Accepted<S>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    S: Service,
{
    let Accepted {
        peer,
        service,
        config,
        stop,
        admission,
        ticket,
        load,
    } = accepted;
    let wire = Wire::of_hello(&hello);
    if let Err(refused) = admission.seat(&ticket).await {
        let exception = refused.exception(&service.aliases()[0]);
        tracing::info!(%peer, error = %exception, "refused");
        if let Some(metrics) = metrics::recording() {
            metrics.connection_refused(&service.aliases()[0], Refusal::Full);
        }
        let codecs = wire.codecs(refusal::REFUSED_FRAME, 1);
        refuse(
            reader,
            writer,
            codecs,
            hello,
            exception,
            config.hello_timeout,
        )
        .await;
        return;
    }
    tracing::debug!(%peer, ?wire, "connected");
    let open = metrics::recording().map(|m| m.connection_opened(&service.aliases()[0]));
    let serving = load.serving();
    let connection_config = &config.connection;
    let codecs = wire.codecs(
        connection_config.max_frame,
        connection_config.max_named_objects(),
    );
    let reader = QuickAck { reader, ack };
    let transport = Transport::new(reader, writer, codecs, hello, peer.to_string());
    let transport = if config.tls.is_some() && !wire.batches_over_tls() {
        transport.one_message_per_write()
    } else {
        transport
    };
    let (connection, task) = Connection::spawn(transport, service, config.connection, stop);
    admission.serve(&ticket, connection.clone());
    if let Err(error) = task.await {
        tracing::error!(%peer, %error, "connection task failed");
    }
    drop(connection);
    drop(ticket);
    drop((open, serving));
    tracing::debug!(%peer, "disconnected");
}

/// A connection's reader that asks the kernel, after every read, to
/// acknowledge what arrived at once. RPyC's client does not set TCP_NODELAY,
/// so when it writes twice in a row (a DEL's answer, then a callback's
/// result) Nagle's algorithm holds the second write until the first is
/// acknowledged; a delayed ACK makes that 40 ms, the stall RPyC's own server
/// shows.
struct QuickAck<R> {
    reader: R,
    /// The connection's TCP socket, if a second handle on it could be made.
    ack: Option<Socket>,
}

impl<R: AsyncRead + Unpin> AsyncRead for QuickAck<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.reader).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(ack)) = (&read, &self.ack) {
            rearm_quick_ack(ack);
        }
        read
    }
}

/// Asks the kernel to acknowledge what arrives on `socket` at once (Linux
/// leaves quick-ack mode on its own). A failure costs only latency.
fn rearm_quick_ack(socket: &Socket) {
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_quickack(true);
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}
