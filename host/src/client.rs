//! Connecting to a host: `connect(addr)` gives a [`Connection`] whose
//! [`root`](Connection::root) is the remote service. `connect_rpyc(addr)`
//! does the same with a server that speaks RPyC 6, such as Python's own.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rustls_pki_types::ServerName;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::connection::{Config, Connection, Transport};
use crate::error::Error;
use crate::protocol::Wire;
use crate::registry::Registrar;
use crate::service::{Service, VoidService};

/// How long [`connect`] waits for the TCP connection to open.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a wasm-rpyc host with the native protocol, exposing the
/// [`VoidService`] to it.
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection, Error> {
    connect_with(addr, VoidService::default(), Config::default()).await
}

/// Connects to the service `name` where `registrar`'s registry says it is
/// served, trying each address in turn (RPyC's `connect_by_service`).
pub async fn connect_by_service(name: &str, registrar: &Registrar) -> Result<Connection, Error> {
    let mut failed = None;
    for addr in registrar.discover(name).await? {
        match connect(addr).await {
            Ok(connection) => return Ok(connection),
            Err(error) => failed = Some(error),
        }
    }
    Err(failed.expect("discover finds at least one address"))
}

/// Connects exposing `service` to the peer, with `config`'s bounds.
pub async fn connect_with<S: Service>(
    addr: impl ToSocketAddrs,
    service: S,
    config: Config,
) -> Result<Connection, Error> {
    open(addr, None, Wire::Native, service, config).await
}

/// Connects to a wasm-rpyc host serving TLS, with the native protocol,
/// exposing the [`VoidService`]. `server_name` is the name (or IP address)
/// the server's certificate must be valid for; `tls` says whom to trust and
/// what certificate to present (see [`crate::tls::client_config`]).
pub async fn connect_tls(
    addr: impl ToSocketAddrs,
    server_name: &str,
    tls: Arc<crate::tls::ClientConfig>,
) -> Result<Connection, Error> {
    let tls = Some((server_name, tls));
    open(
        addr,
        tls,
        Wire::Native,
        VoidService::default(),
        Config::default(),
    )
    .await
}

/// Connects to a server that speaks RPyC 6 (a Python `rpyc` server, or a
/// wasm-rpyc host), exposing the [`VoidService`] to it. The server's root is
/// fetched once, here.
pub async fn connect_rpyc(addr: impl ToSocketAddrs) -> Result<Connection, Error> {
    connect_rpyc_with(addr, VoidService::default(), Config::default()).await
}

/// [`connect_rpyc`], exposing `service` to the server, with `config`'s bounds.
pub async fn connect_rpyc_with<S: Service>(
    addr: impl ToSocketAddrs,
    service: S,
    config: Config,
) -> Result<Connection, Error> {
    open(addr, None, Wire::Rpyc, service, config).await
}

/// Opens a TCP connection (TCP_NODELAY, within the connect timeout), over
/// TLS with `tls` (the server's name and the configuration), starts a
/// connection speaking `wire` over it, and learns the peer's root.
async fn open<S: Service>(
    addr: impl ToSocketAddrs,
    tls: Option<(&str, Arc<crate::tls::ClientConfig>)>,
    wire: Wire,
    service: S,
    config: Config,
) -> Result<Connection, Error> {
    let codecs = wire.codecs(config.max_frame, config.max_named_objects());
    let socket = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::Timeout(DEFAULT_CONNECT_TIMEOUT))??;
    socket.set_nodelay(true)?;
    let peer = socket.peer_addr()?.to_string();
    let stop = CancellationToken::new();
    let connection = match tls {
        None => {
            let (reader, writer) = socket.into_split();
            let transport = Transport::new(reader, writer, codecs, BytesMut::new(), peer);
            Connection::spawn(transport, service, config, stop).0
        }
        Some((server_name, tls)) => {
            let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
                Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{server_name:?} is not a server name: {e}"),
                ))
            })?;
            let handshake = TlsConnector::from(tls).connect(name, socket);
            let stream = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, handshake)
                .await
                .map_err(|_| Error::Timeout(DEFAULT_CONNECT_TIMEOUT))??;
            let (reader, writer) = tokio::io::split(stream);
            let transport = Transport::new(reader, writer, codecs, BytesMut::new(), peer);
            let transport = if wire.batches_over_tls() {
                transport
            } else {
                transport.one_message_per_write()
            };
            Connection::spawn(transport, service, config, stop).0
        }
    };
    if wire.names_root() {
        connection.know_root();
    } else {
        connection.fetch_root().await?;
    }
    Ok(connection)
}
