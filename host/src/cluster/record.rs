//! What the fleet's bucket holds: a record per host (its address, its
//! services, how long it counts as alive after a heartbeat, and how its
//! fleet deploys went), a record per classic RPyC server registered through
//! a fleet registry, a record per component deployed to the fleet, and each
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

/// The prefix of deployments' keys.
pub(super) const DEPLOY_PREFIX: &str = "deploy.";

/// How many earlier revisions a deployment remembers, for rollback.
pub const MAX_PREVIOUS_REVISIONS: usize = 8;

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
    /// Whether it serves components deployed to the fleet.
    #[serde(default)]
    pub accepts_deploys: bool,
    /// How each fleet deployment went on it.
    #[serde(default)]
    pub deployments: Vec<DeploymentStatus>,
}

/// How one fleet deployment went on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    /// The deployment's name.
    pub name: String,
    /// The digest the host tried last.
    pub digest: String,
    /// Why it is not served, if it is not (the host serves the previous
    /// revision, if any).
    pub error: Option<String>,
}

/// A component deployed to the fleet, under a name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The name it is deployed under (the default name of its service).
    pub name: String,
    /// The SHA-256 of its bytes, in hex: its object in the fleet's store.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The port hosts serve it on (0: each its own free port).
    pub port: u16,
    /// The digests it had before, newest first (for rollback).
    #[serde(default)]
    pub previous: Vec<String>,
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
    /// A record of host `id` at `address`, gone `ttl` after it is written,
    /// offering `offer`.
    pub fn new(id: &str, address: IpAddr, ttl: Duration, offer: Offer) -> Self {
        HostRecord {
            id: id.to_owned(),
            address,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            services: offer.services,
            accepts_deploys: offer.accepts_deploys,
            deployments: offer.deployments,
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

/// What a host tells the fleet it offers, at one heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// What it serves.
    pub services: Vec<ServiceRecord>,
    /// Whether it serves components deployed to the fleet.
    pub accepts_deploys: bool,
    /// How each fleet deployment went on it.
    pub deployments: Vec<DeploymentStatus>,
}

impl DeploymentRecord {
    /// Its key.
    pub(super) fn key(name: &str) -> String {
        format!("{DEPLOY_PREFIX}{}", key_part(name))
    }
}

impl ClassicRecord {
    /// Its key: one per address and port, as RPyC's registry keeps them.
    pub(super) fn key(ip: IpAddr, port: u16) -> String {
        format!("{CLASSIC_PREFIX}{}.{port}", key_part(&ip.to_string()))
    }
}
