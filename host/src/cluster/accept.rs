//! A host's side of fleet deploys (`serve --accept-fleet-deploys`): it
//! serves every component deployed to the fleet, fetched, checked against
//! its digest and compiled one at a time, with no grants, each on its port;
//! a new revision goes through the same replace path as hot deploy (open
//! connections keep their instance), and a revision that does not load
//! leaves the one served as it is. It tells the fleet how each went.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, DeploymentRecord, DeploymentStatus, Fleet, ServiceRecord};
use crate::replace::Replaceable;
use crate::server::{Load, Server, ServerConfig};
use crate::wasm::{Runtime, ServiceComponent};

/// How many fleet deployments a host serves at once by default.
pub const DEFAULT_MAX_FLEET_DEPLOYS: usize = 8;

/// The bounds of a host's fleet deploys.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AcceptLimits {
    /// The largest component fetched, in bytes (DEPLOY's bound by
    /// default).
    pub max_component_size: usize,
    /// How many fleet deployments the host serves at once; past it, a
    /// deployment is refused (the status says so). See
    /// [`DEFAULT_MAX_FLEET_DEPLOYS`].
    pub max_deployments: usize,
}

impl Default for AcceptLimits {
    fn default() -> Self {
        AcceptLimits {
            max_component_size: crate::deploy::DEFAULT_MAX_COMPONENT_SIZE,
            max_deployments: DEFAULT_MAX_FLEET_DEPLOYS,
        }
    }
}

/// The fleet deployments a host serves, and how each went. Cheap to clone:
/// clones share them.
#[derive(Clone, Default)]
pub struct Accepting {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    served: HashMap<String, Served>,
    statuses: HashMap<String, DeploymentStatus>,
    /// Deployments whose last try failed for a reason that may pass (NATS
    /// unreachable): tried again at the next heartbeat.
    retry: HashSet<String>,
}

/// One deployment served.
struct Served {
    slot: Replaceable,
    digest: String,
    /// The port it was asked for (0: any), and the one it got.
    asked: u16,
    port: u16,
    load: Load,
    stop: CancellationToken,
    /// Its server, which finishes its connections once stopped.
    serving: JoinHandle<()>,
}

impl Accepting {
    /// None served yet.
    pub fn new() -> Self {
        Accepting::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("never poisoned")
    }

    /// The deployed services served, as the fleet is told of them.
    pub fn services(&self) -> Vec<ServiceRecord> {
        let state = self.state();
        let mut services: Vec<ServiceRecord> = state
            .served
            .values()
            .map(|served| ServiceRecord {
                aliases: served.slot.current().aliases().to_vec(),
                port: served.port,
                digest: Some(served.digest.clone()),
                open: served.load.open(),
                max: served.load.max(),
            })
            .collect();
        services.sort_by_key(|s| s.port);
        services
    }

    /// How each deployment went.
    pub fn statuses(&self) -> Vec<DeploymentStatus> {
        let mut statuses: Vec<_> = self.state().statuses.values().cloned().collect();
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Serves the fleet's deployments on `host`, with `config`'s bounds,
    /// looking at them every heartbeat, until `stop`: then every server it
    /// started stops too, and it waits for them to finish their
    /// connections. Run it on a clone: the original reads what it
    /// serves.
    pub async fn run(
        self,
        fleet: Fleet,
        runtime: Runtime,
        host: IpAddr,
        config: ServerConfig,
        limits: AcceptLimits,
        stop: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(fleet.config().heartbeat);
        let mut reachable = true;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let deployments = match fleet.deployments().await {
                Ok(deployments) => deployments,
                Err(error) => {
                    if reachable {
                        tracing::warn!(%error, "cannot read the fleet's deployments; retrying");
                    }
                    reachable = false;
                    continue;
                }
            };
            reachable = true;
            self.forget_removed(&deployments);
            for deployment in deployments {
                if self.is_settled(&deployment) {
                    continue;
                }
                let outcome = self
                    .serve(&fleet, &runtime, host, &config, &limits, &deployment, &stop)
                    .await;
                let error = match outcome {
                    Ok(()) => None,
                    Err(Failure { error, passing }) => {
                        if passing {
                            self.state().retry.insert(deployment.name.clone());
                        }
                        Some(error)
                    }
                };
                match &error {
                    None => {
                        tracing::info!(name = %deployment.name, digest = %deployment.digest, "fleet deploy: serving")
                    }
                    Some(error) => {
                        tracing::warn!(name = %deployment.name, digest = %deployment.digest, %error, "fleet deploy: not served")
                    }
                }
                let status = DeploymentStatus {
                    name: deployment.name.clone(),
                    digest: deployment.digest.clone(),
                    error,
                };
                self.state().statuses.insert(deployment.name, status);
            }
        }
        let served: Vec<Served> = self.state().served.drain().map(|(_, s)| s).collect();
        for served in &served {
            served.stop.cancel();
        }
        for served in served {
            let _ = served.serving.await;
        }
    }

    /// Stops serving deployments that are no longer in `deployments`.
    fn forget_removed(&self, deployments: &[DeploymentRecord]) {
        let mut state = self.state();
        let removed: Vec<String> = state
            .served
            .keys()
            .chain(state.statuses.keys())
            .filter(|name| !deployments.iter().any(|d| &d.name == *name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(served) = state.served.remove(&name) {
                tracing::info!(%name, "fleet deploy: undeployed");
                served.stop.cancel();
            }
            state.statuses.remove(&name);
        }
    }

    /// Whether `deployment` was tried already: served, or failed, as it is.
    fn is_settled(&self, deployment: &DeploymentRecord) -> bool {
        let state = self.state();
        let tried = state.statuses.get(&deployment.name);
        let served = state.served.get(&deployment.name);
        tried.is_some_and(|status| status.digest == deployment.digest)
            && served.is_none_or(|served| served.asked == deployment.port)
            && !state.retry.contains(&deployment.name)
    }

    /// Fetches, checks, compiles and serves `deployment`: in the slot of its
    /// name if it has one on the same port, else on a server of its own.
    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &self,
        fleet: &Fleet,
        runtime: &Runtime,
        host: IpAddr,
        config: &ServerConfig,
        limits: &AcceptLimits,
        deployment: &DeploymentRecord,
        stop: &CancellationToken,
    ) -> Result<(), Failure> {
        let name = &deployment.name;
        self.state().retry.remove(name);
        let replacing = self.state().served.contains_key(name);
        if !replacing && self.state().served.len() >= limits.max_deployments {
            return Err(Failure::lasting(format!(
                "this host serves {} fleet deployments, the most it may",
                limits.max_deployments
            )));
        }
        let (bytes, digest) = fleet
            .fetch_component(&deployment.digest, limits.max_component_size)
            .await
            .map_err(|error| match error {
                ClusterError::Nats(_) => Failure::passing(error.to_string()),
                _ => Failure::lasting(error.to_string()),
            })?;
        let component = ServiceComponent::from_hashed_bytes(runtime, name, &bytes, Some(digest))
            .await
            .map_err(|e| Failure::lasting(e.to_string()))?;
        {
            let mut state = self.state();
            if let Some(served) = state.served.get_mut(name)
                && served.asked == deployment.port
            {
                served.slot.replace(component);
                served.digest.clone_from(&deployment.digest);
                return Ok(());
            }
        }
        let slot = Replaceable::new(component);
        let server = Server::bind((host, deployment.port), slot.clone(), config.clone())
            .await
            .map_err(|e| {
                Failure::passing(format!("cannot listen on {host}:{}: {e}", deployment.port))
            })?;
        let port = server
            .local_addr()
            .map_err(|e| Failure::passing(e.to_string()))?
            .port();
        let served_stop = stop.child_token();
        let load = server.load();
        let serving = tokio::spawn({
            let stop = served_stop.clone();
            server.run(async move { stop.cancelled().await })
        });
        let served = Served {
            slot,
            digest: deployment.digest.clone(),
            asked: deployment.port,
            port,
            load,
            stop: served_stop,
            serving,
        };
        if let Some(old) = self.state().served.insert(name.clone(), served) {
            old.stop.cancel();
        }
        Ok(())
    }
}

/// Why a deployment is not served, and whether trying again may help.
struct Failure {
    error: String,
    passing: bool,
}

impl Failure {
    /// A failure that lasts as long as the deployment does (it does not
    /// load, it is too large, ...).
    fn lasting(error: String) -> Self {
        Failure {
            error,
            passing: false,
        }
    }

    /// A failure that may pass (NATS out of reach, the port taken).
    fn passing(error: String) -> Self {
        Failure {
            error,
            passing: true,
        }
    }
}
