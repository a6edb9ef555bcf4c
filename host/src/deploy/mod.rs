//! Sandboxed classic mode: the built-in `DEPLOY` service. Where RPyC's
//! classic mode lets a peer run its own Python on the server, a peer of this
//! service hands over a component's bytes (`root.deploy(data)`) and gets back
//! the root of its own instance of it. The instance runs like any served
//! service (in its own sandbox, under the runtime's limits, with no grants:
//! no files, no environment, no network) and lives while the peer holds its
//! root or any object of it. Compiled components are cached by the SHA-256
//! of their bytes, so deploying the same component again costs an
//! instantiation only (`compiler` also bounds compiles); `service` is
//! one connection's deploy service.

mod compiler;
mod service;

use std::sync::Arc;

use tokio::net::ToSocketAddrs;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connection::{Connection, RemoteObject};
use crate::error::Error;
use crate::exception::Exception;
use crate::executor::Executor;
use crate::metrics;
use crate::server::ServiceFactory;
use crate::service::VoidService;
use crate::value::{IntoArgs, Value};
use crate::wasm::{Runtime, ServiceComponent};
use compiler::Compiler;
pub use service::DeployService;

/// Connects to a host's deploy service, with frames large enough for the
/// largest component it takes by default (a plain [`connect`](crate::connect)
/// sends at most 16 MiB, less than a Python component).
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection, Error> {
    let config = crate::connection::Config {
        max_frame: DeployLimits::default().max_frame(),
        ..Default::default()
    };
    crate::connect_with(addr, VoidService::default(), config).await
}

/// Deploys `component` (a component's bytes) through `connection`, a
/// connection to a host's deploy service (see [`connect`]), and returns the
/// root of the deployed service, which lives while it (or an object of it)
/// is held. A component that declares no aliases serves as `DEPLOYED`; see
/// [`deploy_as`].
///
/// ```no_run
/// # async fn demo() -> Result<(), wasm_rpyc::Error> {
/// let host = wasm_rpyc::deploy::connect(("127.0.0.1", wasm_rpyc::deploy::DEPLOY_PORT)).await?;
/// let calculator = wasm_rpyc::deploy::deploy(&host, std::fs::read("calculator.wasm")?).await?;
/// let sum: i64 = calculator.call("add", (4, 7)).await?;
/// # Ok(()) }
/// ```
pub async fn deploy(connection: &Connection, component: Vec<u8>) -> Result<RemoteObject, Error> {
    request(connection, (Value::Bytes(component),)).await
}

/// [`deploy`], serving the component as `name` (`calculator` serves as
/// `CALCULATOR`) unless it declares its own aliases.
pub async fn deploy_as(
    connection: &Connection,
    name: &str,
    component: Vec<u8>,
) -> Result<RemoteObject, Error> {
    request(connection, (Value::Bytes(component), name)).await
}

async fn request(connection: &Connection, args: impl IntoArgs) -> Result<RemoteObject, Error> {
    let root = connection.root();
    match root.call("deploy", args).await {
        Err(error) if error.exception().is_some_and(|e| e.is("AttributeError")) => {
            // The service has no `deploy`, or the component's own code raised.
            let name: String = root.call("get_service_name", ()).await?;
            if name == DEPLOY_SERVICE {
                Err(error)
            } else {
                Err(Error::NotDeployService(name))
            }
        }
        deployed => deployed,
    }
}

pub use crate::well_known::{DEPLOY_PORT, DEPLOY_SERVICE};

/// The largest component a peer may deploy (a Python component is about 18
/// MiB).
pub const DEFAULT_MAX_COMPONENT_SIZE: usize = 64 << 20;

/// How many bytes of compiled code the cache of deployed components keeps
/// (the least recently deployed goes first): a Python component compiles
/// to about 260 MiB, a Rust one to well under 1 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 768 << 20;

/// How many components are compiled at once: compiling a large component
/// takes seconds of a core and gigabytes of memory. One per four cores.
pub fn default_concurrent_compiles() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 4).max(1))
}

/// How many deploys may wait for their turn to compile; past it a deploy
/// is refused at once with a `RuntimeError`.
pub const DEFAULT_QUEUED_COMPILES: usize = 4;

/// How many deployed services one connection may hold at once.
pub const DEFAULT_MAX_DEPLOYMENTS: usize = 16;

/// How many deployed services the host runs at once, from every connection:
/// DEPLOY's share of the host's instances (each deployment is one).
pub const DEFAULT_MAX_TOTAL_DEPLOYMENTS: usize = 64;

/// The name a deployed component is served under when it declares none.
const DEPLOYED_NAME: &str = "deployed";

/// The deploy service's bounds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeployLimits {
    /// See [`DEFAULT_MAX_COMPONENT_SIZE`].
    pub max_component_size: usize,
    /// See [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: usize,
    /// See [`default_concurrent_compiles`].
    pub concurrent_compiles: usize,
    /// See [`DEFAULT_QUEUED_COMPILES`].
    pub queued_compiles: usize,
    /// See [`DEFAULT_MAX_DEPLOYMENTS`].
    pub max_deployments: usize,
    /// See [`DEFAULT_MAX_TOTAL_DEPLOYMENTS`].
    pub max_total_deployments: usize,
}

impl DeployLimits {
    /// The largest frame a deploy service's connections should take: room
    /// for a component twice the largest, so that one too large is refused
    /// with a clear error rather than a closed connection.
    pub fn max_frame(&self) -> usize {
        2 * self.max_component_size + (1 << 20)
    }
}

impl Default for DeployLimits {
    fn default() -> Self {
        DeployLimits {
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
            cache_bytes: DEFAULT_CACHE_BYTES,
            concurrent_compiles: default_concurrent_compiles(),
            queued_compiles: DEFAULT_QUEUED_COMPILES,
            max_deployments: DEFAULT_MAX_DEPLOYMENTS,
            max_total_deployments: DEFAULT_MAX_TOTAL_DEPLOYMENTS,
        }
    }
}

/// Serves the deploy service: serve it with
/// [`Server::bind`](crate::Server::bind). Holds the compiler (and its cache)
/// and the host's count of deployments. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<DeployerInner>,
}

struct DeployerInner {
    limits: DeployLimits,
    compiler: Compiler,
    /// One permit per deployment the host may run.
    deployments: Arc<Semaphore>,
}

impl Deployer {
    /// A deploy service whose components run in `runtime`, within `limits`.
    pub fn new(runtime: Runtime, limits: DeployLimits) -> Self {
        Deployer {
            inner: Arc::new(DeployerInner {
                deployments: Arc::new(Semaphore::new(limits.max_total_deployments)),
                compiler: Compiler::new(runtime, limits.clone()),
                limits,
            }),
        }
    }

    /// How many compiled components the cache holds.
    pub fn cached_components(&self) -> usize {
        self.inner.compiler.cached().0
    }

    /// How many bytes of compiled code the cache holds.
    pub fn cached_bytes(&self) -> usize {
        self.inner.compiler.cached().1
    }
}

impl Deployer {
    fn limits(&self) -> &DeployLimits {
        &self.inner.limits
    }

    /// A place among the host's deployments; `RuntimeError` when the host
    /// runs as many as it may.
    fn take_place(&self) -> Result<Place, Exception> {
        let total = self.inner.limits.max_total_deployments;
        let permit = Arc::clone(&self.inner.deployments)
            .try_acquire_owned()
            .map_err(|_| {
                Exception::runtime_error(format!(
                    "{DEPLOY_SERVICE} is at capacity: the host runs {total} deployed \
                         services, the most it may; try again later"
                ))
            })?;
        let live = metrics::recording().map(|m| m.deployment_started());
        Ok(Place {
            _permit: permit,
            _live: live,
        })
    }

    /// Where one connection's deployed services run.
    fn executor(&self) -> Executor {
        self.inner.compiler.runtime().executor()
    }

    /// The component `bytes` make, and its tag (see [`Compiler::compile`]).
    async fn compile(&self, bytes: Vec<u8>) -> Result<(ServiceComponent, String), Exception> {
        self.inner.compiler.compile(bytes).await
    }
}

/// A deployment's place among the host's; given back when dropped.
struct Place {
    _permit: OwnedSemaphorePermit,
    /// Counts it among the running deployments, in the metrics.
    _live: Option<metrics::Open>,
}

impl ServiceFactory for Deployer {
    type Service = DeployService;

    fn name(&self) -> String {
        DEPLOY_SERVICE.to_owned()
    }

    fn new_service(&self) -> DeployService {
        DeployService::new(self.clone())
    }
}
