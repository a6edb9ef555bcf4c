//! wasm-rpyc: RPyC's service model as a WebAssembly-hosted service runtime.
//!
//! A service is a WebAssembly component whose exports named `exposed-*` are
//! remote methods. A host loads components, serves connections, and runs
//! every connection's service in its own sandboxed instance. Clients call
//! services with this crate's [`connect`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasm_rpyc::Error> {
//! let conn = wasm_rpyc::connect("127.0.0.1:18861").await?;
//! let sum: i64 = conn.root().call("add", (4, 7)).await?;
//! assert_eq!(sum, 11);
//! # Ok(()) }
//! ```
//!
//! A frame travels one way in and its answer straight back out:
//! socket → [`protocol`] codec → [`connection`] → [`service`] → [`wasm`]
//! instance. The modules:
//!
//! - [`object_ref`]: names of objects passed by reference.
//! - [`held`]: the peer's objects this side holds, and when each is released.
//! - [`value`]: the dynamic value every codec and the wasm bridge share.
//! - [`exception`]: what a call raises on the side that served it.
//! - [`local`] (in [`value`]): this side's objects lent by reference
//!   (native callbacks, service objects).
//! - [`protocol`]: messages, independent of the wire, and their codecs;
//!   [`protocol::Wire`] gathers what differs between native and RPyC.
//! - [`connection`]: one symmetric connection: replies matched to calls,
//!   requests served, every queue and wait bounded.
//! - [`peer`]: a service's handle on the peer of its connection.
//! - [`service`]: the root object a side exposes; `VoidService`.
//! - [`executor`]: where a service's code runs (guest threads for long
//!   calls).
//! - [`wasm`]: the engine and its compile cache, components, per-connection
//!   instances, limits.
//! - [`server`]: the listener, the sockets' threads connections are served on, and graceful
//!   shutdown.
//! - [`replace`]: hot deploy (a served component replaced while served, and
//!   components served from files kept in step with them).
//! - [`well_known`]: where a host's built-in services are found.
//! - [`deploy`]: sandboxed classic mode (the `DEPLOY` service, to which a
//!   peer hands a component to run).
//! - [`metrics`]: the host's metrics, for Prometheus.
//! - [`registry`]: RPyC's registry (where services are served, by name).
//! - [`cluster`]: a fleet of hosts on NATS JetStream.
//! - [`tls`]: TLS configurations for servers and clients (rustls).
//! - [`client`]: connecting to a host with [`connect`].
//! - [`bundled`]: the example services built into the binary.

#![deny(missing_docs)]

pub mod client;
pub mod cluster;
pub mod connection;
pub mod deploy;
mod error;
pub mod exception;
pub mod executor;
pub mod held;
pub mod metrics;
pub mod object_ref;
pub mod peer;
pub mod protocol;
pub mod registry;
pub mod replace;
pub mod server;
pub mod service;
pub mod tls;
pub mod value;
pub use value::local;
pub mod wasm;
pub mod well_known;

/// The example services (the seed's), compiled from `services/` at build
/// time; empty without the `bundled` feature.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

pub use client::{
    connect, connect_by_service, connect_rpyc, connect_rpyc_with, connect_tls, connect_with,
};
pub use connection::{Connection, RemoteObject};
pub use error::Error;
pub use exception::Exception;
pub use held::PeerObject;
pub use local::Function;
pub use peer::Peer;
pub use server::{Server, ServerConfig, ServiceFactory};
pub use service::{Service, VoidService};
pub use value::{FromValue, IntoArgs, IntoValue, Value};
pub use wasm::{Limits, Runtime, ServiceComponent};
