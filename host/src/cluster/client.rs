//! Connecting to services of a fleet by name, from Rust: the live hosts
//! that serve a name are tried in the view's order (the freshest first,
//! shuffled), each with a short connect timeout and a ping, until one
//! answers.

use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use super::{ClusterConfig, ClusterError, Fleet, View};
use crate::connection::Connection;
use crate::error::Error;

/// How long a host of the fleet may take to accept a connection and answer
/// a ping before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`Cluster::connect`] waits for its first view of the fleet.
pub const FIRST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a classic registration (a server registered through a fleet
/// registry) counts: RPyC's pruning timeout.
const CLASSIC_TTL: Duration = crate::registry::DEFAULT_PRUNING_TIMEOUT;

/// A fleet, as a client sees it: its view is kept current in the
/// background while this lives.
#[derive(Debug)]
pub struct Cluster {
    view: View,
    /// Ends the reading when the cluster is dropped.
    _reading: DropGuard,
}

impl Cluster {
    /// Joins the fleet `config` names as a client, and waits (at most
    /// [`FIRST_READ_TIMEOUT`]) until it has read it once.
    pub async fn connect(config: ClusterConfig) -> Result<Self, ClusterError> {
        let view = View::new(Fleet::connect(config).await?);
        let interval = view.fleet().config().heartbeat / 2;
        let stop = CancellationToken::new();
        {
            let (view, stop) = (view.clone(), stop.clone());
            tokio::spawn(async move { view.keep_current(interval, stop).await });
        }
        let first = async {
            while !view.is_read() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(FIRST_READ_TIMEOUT, first)
            .await
            .is_err()
        {
            stop.cancel();
            return Err(ClusterError::CutOff(FIRST_READ_TIMEOUT));
        }
        Ok(Cluster {
            view,
            _reading: stop.drop_guard(),
        })
    }

    /// Connects to the service `name` on a live host of the fleet: each
    /// host that serves it is tried in the view's order, and the first that
    /// accepts within [`CONNECT_TIMEOUT`] and answers a ping is returned.
    /// Objects of the connection live as long as its host: when the host
    /// dies their calls fail with [`Error::Closed`].
    pub async fn connect_by_service(&self, name: &str) -> Result<Connection, Error> {
        let found = self
            .view
            .find(name, CLASSIC_TTL)
            .ok_or(ClusterError::CutOff(self.view.fleet().config().ttl))?;
        let mut failed = None;
        for place in found {
            let attempt = async {
                let connection = crate::connect(place.address).await?;
                connection.ping().await?;
                Ok::<_, Error>(connection)
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(error)) => {
                    tracing::debug!(address = %place.address, %error, "host did not answer; trying the next");
                    failed = Some(error);
                }
                Err(_) => {
                    tracing::debug!(address = %place.address, "host did not answer in time; trying the next");
                    failed = Some(Error::Timeout(CONNECT_TIMEOUT));
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            ClusterError::NotServed {
                name: name.to_owned(),
            }
            .into()
        }))
    }

    /// The fleet's view, as this client reads it.
    pub fn view(&self) -> &View {
        &self.view
    }
}
