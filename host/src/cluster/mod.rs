//! Past one machine: hosts form a fleet on NATS with JetStream. Each host
//! keeps a record of itself and its services in the fleet's key-value
//! bucket, renewed by a heartbeat (see [`membership`]); the live hosts are
//! read back from it (see [`View`]), aged by the NATS server's own clock, so
//! the machines' clocks need not agree. A host keeps serving while NATS is
//! gone and rejoins when it returns.

mod accept;
mod classic;
mod client;
mod components;
mod membership;
mod record;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

pub use accept::{AcceptLimits, Accepting, DEFAULT_MAX_FLEET_DEPLOYS};
pub use client::{CONNECT_TIMEOUT, Cluster, FIRST_READ_TIMEOUT};
pub use components::{digest_hex, hex};
pub use membership::keep_member;
pub use record::{
    ClassicRecord, DeploymentRecord, DeploymentStatus, HostRecord, MAX_PREVIOUS_REVISIONS, Offer,
    ServiceRecord,
};
pub use view::{Found, MAX_KEYS, View};

/// How often a host renews its record.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);

/// How long after its last heartbeat a host counts as gone.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);

/// The fleet a host joins unless told otherwise.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// How long one request to NATS may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest record one key holds: a host's record with many services is
/// a few KiB.
const MAX_VALUE_BYTES: i32 = 64 * 1024;

/// The most the fleet's bucket stores; past it the oldest entries go.
const MAX_BUCKET_BYTES: i64 = 64 * 1024 * 1024;

/// How long NATS keeps an entry nobody renews: records of hosts that
/// died without deleting theirs, and classic registrations past RPyC's
/// pruning timeout.
const ENTRY_MAX_AGE: Duration = Duration::from_secs(600);

/// How to reach a fleet's NATS, and which fleet.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The NATS server (`nats://HOST:PORT`, or several, comma-separated).
    pub url: String,
    /// The fleet's name: hosts of one name see each other.
    pub name: String,
    /// See [`DEFAULT_HEARTBEAT`].
    pub heartbeat: Duration,
    /// See [`DEFAULT_TTL`].
    pub ttl: Duration,
    /// How this process proves who it is to NATS.
    pub credentials: Credentials,
    /// Verify NATS's certificate against these CA certificates (PEM), and
    /// require TLS.
    pub tls_ca: Option<PathBuf>,
    /// Present this certificate chain and key (PEM) to NATS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
}

impl ClusterConfig {
    /// The fleet `name` on the NATS server at `url`, with the default
    /// timings and no credentials.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            name: name.into(),
            heartbeat: DEFAULT_HEARTBEAT,
            ttl: DEFAULT_TTL,
            credentials: Credentials::None,
            tls_ca: None,
            tls_client: None,
        }
    }

    /// The name of the fleet's key-value bucket.
    fn bucket(&self) -> String {
        format!("wasm-rpyc-{}", self.name)
    }
}

/// How a process proves who it is to NATS.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// Nothing.
    #[default]
    None,
    /// A user name and password.
    UserPassword(String, String),
    /// A token.
    Token(String),
    /// A credentials file (a JWT and an NKey seed, as `nsc` writes it).
    File(PathBuf),
}

/// Why a fleet could not be joined or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The fleet's name has characters a bucket name cannot.
    #[error("the cluster name {0:?} may only have letters, digits, '-' and '_'")]
    Name(String),
    /// The options could not be made (an unreadable credentials file).
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        reason: String,
    },
    /// A request to NATS failed or took too long.
    #[error("NATS: {0}")]
    Nats(String),
    /// The fleet has not been read for this long: NATS is out of reach.
    #[error("the fleet has not been read from NATS for {0:?}")]
    CutOff(Duration),
    /// A component stored in the fleet that this host will not take (too
    /// large, or not what its digest says).
    #[error("{0}")]
    Component(String),
    /// No live host of the fleet serves the name.
    #[error("no live host of the fleet serves {name}")]
    NotServed {
        /// The service's name.
        name: String,
    },
}

impl ClusterError {
    fn nats(error: impl std::fmt::Display) -> Self {
        ClusterError::Nats(error.to_string())
    }
}

/// A connection to a fleet's NATS. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Fleet {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: Arc<ClusterConfig>,
}

impl Fleet {
    /// Connects to the fleet `config` names. NATS need not be up yet: the
    /// connection is made, and made again after a loss, in the background.
    pub async fn connect(config: ClusterConfig) -> Result<Self, ClusterError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if config.name.is_empty() || !config.name.chars().all(valid) {
            return Err(ClusterError::Name(config.name));
        }
        let failed = |reason: String| ClusterError::Connect {
            url: config.url.clone(),
            reason,
        };
        let mut options = async_nats::ConnectOptions::new()
            .name("wasm-rpyc")
            .retry_on_initial_connect()
            .connection_timeout(REQUEST_TIMEOUT)
            .max_reconnects(None);
        options = match &config.credentials {
            Credentials::None => options,
            Credentials::UserPassword(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::File(file) => options
                .credentials_file(file)
                .await
                .map_err(|e| failed(format!("{}: {e}", file.display())))?,
        };
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &config.tls_client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(REQUEST_TIMEOUT);
        Ok(Fleet {
            client,
            jetstream,
            config: Arc::new(config),
        })
    }

    /// What the fleet was joined with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The address NATS sees this process connect from, once connected.
    pub(crate) fn seen_address(&self) -> Option<std::net::IpAddr> {
        self.client.server_info().client_ip.parse().ok()
    }

    /// The fleet's bucket, made if it is missing.
    pub(crate) async fn bucket(&self) -> Result<kv::Store, ClusterError> {
        let name = self.config.bucket();
        if let Ok(store) = self.jetstream.get_key_value(&name).await {
            return Ok(store);
        }
        // The stream behind a bucket, as NATS's key-value convention lays it
        // out (async-nats's `create_key_value` first reads account fields NATS
        // 2.9 does not send).
        let config = stream::Config {
            name: format!("KV_{name}"),
            description: Some("wasm-rpyc: the fleet's hosts and registrations".into()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age: ENTRY_MAX_AGE.max(self.config.ttl * 10),
            max_message_size: MAX_VALUE_BYTES,
            max_bytes: MAX_BUCKET_BYTES,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        let made = self.jetstream.create_stream(config).await;
        // Made here, or by another process first.
        self.jetstream.get_key_value(&name).await.map_err(|error| {
            let made = made.err().map(|e| format!(" ({e})")).unwrap_or_default();
            ClusterError::nats(format!("cannot make the bucket {name}: {error}{made}"))
        })
    }
}

/// `text` as one token of a key (NATS subjects take letters, digits, '-'
/// and '_' there).
fn key_part(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '-',
        })
        .collect()
}

/// A fresh identifier for this process in the fleet.
fn fresh_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new()
        .hash_one((std::process::id(), std::time::SystemTime::now()));
    format!("{}-{random:016x}", std::process::id())
}
