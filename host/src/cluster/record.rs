//! What the fleet's bucket holds: a record per host (its address, its
//! services and how long it counts as alive after a heartbeat), a record per
//! classic RPyC server registered through a fleet registry, and each
//! reader's clock key. Records are JSON.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::key_part;

/// The prefix of hosts' keys.
pub(super) const HOST_PREFIX: &str = "host.";

/// The prefix of classic registrations' keys.
pub(super) const CLASSIC_PREFIX: &str = "classic.";

/// The prefix of the keys readers write to learn the server's time.
pub(super) const CLOCK_PREFIX: &str = "clock.";

/// A host of the fleet and what it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host's identifier in the fleet (new at every start).
    pub id: String,
    /// Where its services are reached.
    pub address: IpAddr,
    /// How long after this record was written the host counts as gone, in
    /// milliseconds.
    pub ttl_ms: u64,
    /// The host's version.
    pub version: String,
    /// What it serves.
    pub services: Vec<ServiceRecord>,
}

/// One service of a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its names, proper name first.
    pub aliases: Vec<String>,
    /// Its port on the host's address.
    pub port: u16,
    /// The SHA-256 of its component, in hex (none for built-in services).
    pub digest: Option<String>,
    /// Connections it serves now.
    pub open: usize,
    /// Connections it may serve at once.
    pub max: usize,
}

/// A classic RPyC server, registered through a fleet registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicRecord {
    /// Its names.
    pub aliases: Vec<String>,
    /// Its address, as the registry saw it.
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
}

impl HostRecord {
    /// A record of host `id` at `address`, gone `ttl` after it is written.
    pub fn new(id: &str, address: IpAddr, ttl: Duration, services: Vec<ServiceRecord>) -> Self {
        HostRecord {
            id: id.to_owned(),
            address,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            services,
        }
    }

    /// Its key.
    pub(super) fn key(id: &str) -> String {
        format!("{HOST_PREFIX}{}", key_part(id))
    }

    /// How long after it was written it counts.
    pub(super) fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
}

impl ClassicRecord {
    /// Its key: one per address and port, as RPyC's registry keeps them.
    pub(super) fn key(ip: IpAddr, port: u16) -> String {
        format!("{CLASSIC_PREFIX}{}.{port}", key_part(&ip.to_string()))
    }
}
