//! RPyC's registry: services register their names and ports, clients ask
//! where a name is served (`rpyc.discover`, `rpyc.connect_by_service`).
//! [`Registry`] is the server, [`Registrar`] the client. A registry keeps
//! its own registrations, or answers from a fleet's (see [`crate::cluster`]).
//!
//! The registry keeps its registrations bounded (per name and in all),
//! prunes them on a timer, keeps every reply within what RPyC's client
//! reads, and applies TCP requests in the order their connections came.
//!
//! The protocol of `rpyc/utils/registry.py`: a request is one brine tuple
//! `("RPYC", command, args)`, a reply one brine value; over UDP one datagram
//! each way, over TCP one request per connection. A request that is not
//! one (bad brine, another magic, an unknown command, wrong arguments) gets
//! no reply, as RPyC's registry does.

mod client;
mod fleet;
mod server;
mod table;
mod tcp;

use std::time::Duration;

pub use client::{BROADCAST, REGISTRAR_TIMEOUT, REREGISTER_INTERVAL, Registrar, RegistryError};
pub use fleet::MAX_PENDING_WRITES;
pub use server::{MAX_REGISTRATIONS, MAX_REPLY, MAX_SERVERS_PER_NAME, Registry};

use crate::protocol::rpyc::brine;
use crate::value::Value;

/// RPyC's registry port.
pub const REGISTRY_PORT: u16 = 18811;

/// How long a registration lasts without being renewed (RPyC's default;
/// services re-register every 60 s).
pub const DEFAULT_PRUNING_TIMEOUT: Duration = Duration::from_secs(240);

/// The largest request read, as RPyC's registry reads: a datagram or a TCP
/// request past it is cut, so it decodes as nothing.
pub const MAX_REQUEST: usize = 1500;

/// A registry's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way (a broadcast address reaches every registry on
    /// the network).
    Udp,
    /// One request per connection.
    Tcp,
}

/// A registry request: `("RPYC", command, args)` in brine.
fn request(command: &str, args: Vec<Value>) -> Vec<u8> {
    let message = Value::Tuple(vec![
        Value::Str("RPYC".into()),
        Value::Str(command.into()),
        Value::Tuple(args),
    ]);
    let mut out = Vec::new();
    brine::encode(&message, &mut out).expect("strings and ints are brine");
    out
}
