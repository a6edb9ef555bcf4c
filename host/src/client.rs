//! Connecting to a host: `connect(addr)` gives a [`Connection`] whose
//! [`root`](Connection::root) is the remote service. `connect_rpyc(addr)`
//! does the same with a server that speaks RPyC 6, such as Python's own.

use std::time::Duration;

use bytes::BytesMut;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::sync::CancellationToken;

use crate::connection::{Config, Connection, Transport};
use crate::error::Error;
use crate::protocol::native::NativeCodec;
use crate::protocol::rpyc::RpycCodec;
use crate::protocol::{Codec, ROOT};
use crate::service::{Service, VoidService};

/// How long [`connect`] waits for the TCP connection to open.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a wasm-rpyc host with the native protocol, exposing the
/// [`VoidService`] to it.
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection, Error> {
    connect_with(addr, VoidService::default(), Config::default()).await
}

/// Connects exposing `service` to the peer, with `config`'s bounds.
pub async fn connect_with<S: Service>(
    addr: impl ToSocketAddrs,
    service: S,
    config: Config,
) -> Result<Connection, Error> {
    let codec = NativeCodec::new(config.max_frame);
    let connection = open(addr, (codec, codec), service, config).await?;
    connection.know_root(ROOT);
    Ok(connection)
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
    let codecs = RpycCodec::pair(config.max_frame, config.max_lent_objects);
    let connection = open(addr, codecs, service, config).await?;
    connection.fetch_root().await?;
    Ok(connection)
}

/// Opens a TCP connection (TCP_NODELAY, within the connect timeout) and
/// starts a connection over it with `codecs` (decoder, encoder).
async fn open<C: Codec, S: Service>(
    addr: impl ToSocketAddrs,
    codecs: (C, C),
    service: S,
    config: Config,
) -> Result<Connection, Error> {
    let socket = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::Timeout(DEFAULT_CONNECT_TIMEOUT))??;
    socket.set_nodelay(true)?;
    let peer = socket.peer_addr()?.to_string();
    let (reader, writer) = socket.into_split();
    let transport = Transport::new(reader, writer, codecs, BytesMut::new(), peer);
    let (connection, _task) =
        Connection::spawn(transport, service, config, CancellationToken::new());
    Ok(connection)
}
