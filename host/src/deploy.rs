//! Sandboxed classic mode: the built-in `DEPLOY` service. Where RPyC's
//! classic mode lets a peer run its own Python on the server, a peer of this
//! service hands over a component's bytes (`root.deploy(data)`) and gets back
//! the root of its own instance of it. The instance runs like any served
//! service (in its own sandbox, under the runtime's limits, with no grants:
//! no files, no environment, no network) and lives while the peer holds its
//! root or any object of it. Compiled components are cached by the SHA-256
//! of their bytes, so deploying the same component again costs an
//! instantiation only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::net::ToSocketAddrs;
use tokio::sync::OnceCell;

use crate::connection::{Connection, Peer, RemoteObject};
use crate::error::Error;
use crate::exception::Exception;
use crate::local::{Local, ServiceObject};
use crate::server::ServiceFactory;
use crate::service::{Exposed, Service, VoidService, bind_arguments};
use crate::value::{IntoArgs, Value};
use crate::wasm::{Runtime, ServiceComponent, WasmService};

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

/// Where components are deployed, for a peer that looked elsewhere.
pub(crate) fn where_to_deploy() -> String {
    format!(
        "deploy to a host's {DEPLOY_SERVICE} service (`wasm-rpyc serve --allow-deploy`, port \
         {DEPLOY_PORT} by default)"
    )
}

/// The deploy service's port: RPyC classic mode's.
pub const DEPLOY_PORT: u16 = 18812;

/// The deploy service's name.
pub const DEPLOY_SERVICE: &str = "DEPLOY";

/// The largest component a peer may deploy (a Python component is about 18
/// MiB).
pub const DEFAULT_MAX_COMPONENT_SIZE: usize = 64 << 20;

/// How many compiled components the cache keeps (the least recently
/// deployed goes first).
pub const DEFAULT_CACHED_COMPONENTS: usize = 32;

/// How many deployed services one connection may hold at once; each is an
/// instance taken from the host's pool.
pub const DEFAULT_MAX_DEPLOYMENTS: usize = 16;

/// The name a deployed component is served under when it declares none.
const DEPLOYED_NAME: &str = "deployed";

/// The deploy service's bounds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeployLimits {
    /// See [`DEFAULT_MAX_COMPONENT_SIZE`].
    pub max_component_size: usize,
    /// See [`DEFAULT_CACHED_COMPONENTS`].
    pub cached_components: usize,
    /// See [`DEFAULT_MAX_DEPLOYMENTS`].
    pub max_deployments: usize,
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
            cached_components: DEFAULT_CACHED_COMPONENTS,
            max_deployments: DEFAULT_MAX_DEPLOYMENTS,
        }
    }
}

/// Serves the deploy service: serve it with
/// [`Server::bind`](crate::Server::bind). Holds the runtime deployed
/// components run in and the cache of compiled components. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<DeployerInner>,
}

struct DeployerInner {
    runtime: Runtime,
    limits: DeployLimits,
    cache: Mutex<Cache>,
}

/// Compiled components by the digest of their bytes. An entry is made before
/// its component is compiled, so peers deploying the same bytes at once wait
/// for one compilation.
#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Cached>,
    /// Counts lookups: an entry's `used` is the count at its last lookup.
    clock: u64,
}

struct Cached {
    component: Arc<OnceCell<ServiceComponent>>,
    used: u64,
}

impl Deployer {
    /// A deploy service whose components run in `runtime`, within `limits`.
    pub fn new(runtime: Runtime, limits: DeployLimits) -> Self {
        Deployer {
            inner: Arc::new(DeployerInner {
                runtime,
                limits,
                cache: Mutex::new(Cache::default()),
            }),
        }
    }

    /// How many compiled components the cache holds.
    pub fn cached_components(&self) -> usize {
        self.cache()
            .entries
            .values()
            .filter(|c| c.component.initialized())
            .count()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.cache.lock().expect("never poisoned")
    }

    /// The component `bytes` make, compiled once per content, and the short
    /// tag (the digest's first 8 hex digits) that names its classes.
    async fn compile(&self, bytes: Vec<u8>) -> Result<(ServiceComponent, String), Exception> {
        let limit = self.inner.limits.max_component_size;
        if bytes.len() > limit {
            return Err(Exception::new(
                "ValueError",
                format!(
                    "the component is {} bytes; this host takes components of at most {limit} bytes",
                    bytes.len()
                ),
            ));
        }
        // Tens of milliseconds for a large component: off the async threads.
        let (digest, bytes) = tokio::task::spawn_blocking(move || {
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            (digest, bytes)
        })
        .await
        .map_err(|error| Exception::new("RuntimeError", format!("cannot deploy: {error}")))?;
        let tag = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let cell = self.cache_entry(digest);
        let compiled = cell
            .get_or_try_init(|| {
                ServiceComponent::from_bytes(&self.inner.runtime, DEPLOYED_NAME, &bytes)
            })
            .await;
        match compiled {
            Ok(component) => Ok((component.clone(), tag)),
            Err(error) => {
                let mut cache = self.cache();
                if cache
                    .entries
                    .get(&digest)
                    .is_some_and(|c| Arc::ptr_eq(&c.component, &cell))
                {
                    cache.entries.remove(&digest);
                }
                Err(Exception::new(
                    "ValueError",
                    format!("cannot deploy: {error}"),
                ))
            }
        }
    }

    /// The cache's entry for `digest`, made (evicting the least recently
    /// used when full) if there is none.
    fn cache_entry(&self, digest: [u8; 32]) -> Arc<OnceCell<ServiceComponent>> {
        let capacity = self.inner.limits.cached_components.max(1);
        let mut cache = self.cache();
        cache.clock += 1;
        let now = cache.clock;
        if !cache.entries.contains_key(&digest) && cache.entries.len() >= capacity {
            let oldest = cache
                .entries
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(d, _)| *d);
            if let Some(oldest) = oldest {
                cache.entries.remove(&oldest);
            }
        }
        let entry = cache.entries.entry(digest).or_insert_with(|| Cached {
            component: Arc::new(OnceCell::new()),
            used: now,
        });
        entry.used = now;
        Arc::clone(&entry.component)
    }
}

impl ServiceFactory for Deployer {
    type Service = DeployService;

    fn name(&self) -> String {
        DEPLOY_SERVICE.to_owned()
    }

    fn new_service(&self) -> DeployService {
        DeployService {
            deployer: self.clone(),
            aliases: vec![DEPLOY_SERVICE.to_owned()],
            peer: None,
            deployments: HashMap::new(),
            held: HashMap::new(),
            lent: HashMap::new(),
            next: 0,
        }
    }
}

/// One connection's deploy service: the services it deployed, and the
/// objects of theirs the peer holds. Each object the peer holds has a handle
/// of this service's (a deployed service's own handles would collide with
/// another's); its class is the deployed class's name with the component's
/// tag (`CALCULATOR@1f2e3d4c`).
pub struct DeployService {
    deployer: Deployer,
    aliases: Vec<String>,
    peer: Option<Peer>,
    deployments: HashMap<u64, Deployment>,
    /// What each of this service's handles stands for.
    held: HashMap<u64, Held>,
    /// The handle lent for each deployed service's object: (deployment, its
    /// handle).
    lent: HashMap<(u64, u64), u64>,
    /// The next deployment id or handle.
    next: u64,
}

/// A deployed service and what the peer holds of it.
struct Deployment {
    service: WasmService,
    exposed: Exposed,
    tag: String,
    /// How many handles the peer holds of it (its root and its objects);
    /// at none, it ends.
    handles: usize,
}

/// What one handle stands for: a deployed service's root (`object` is
/// `None`) or one of its objects.
#[derive(Clone)]
struct Held {
    deployment: u64,
    object: Option<ServiceObject>,
    class: String,
}

impl DeployService {
    async fn deploy(
        &mut self,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let (bytes, name) = deploy_args(args, kwargs)?;
        let most = self.deployer.inner.limits.max_deployments;
        if self.deployments.len() >= most {
            return Err(Exception::new(
                "RuntimeError",
                format!(
                    "this connection holds {most} deployed services, the most it may; let one go first"
                ),
            ));
        }
        let (mut component, tag) = self.deployer.compile(bytes).await?;
        if let Some(name) = name {
            component = component.with_default_name(&name);
        }
        let mut service = component.instance();
        if let Some(peer) = &self.peer {
            service.on_connect(peer.clone()).await?;
        }
        tracing::info!(service = %component.name(), %tag, "deployed");
        let id = self.next_id();
        let exposed = Exposed::of(&service);
        self.deployments.insert(
            id,
            Deployment {
                service,
                exposed,
                tag,
                handles: 0,
            },
        );
        Ok(self.lend(id, None))
    }

    fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The value the peer receives for deployment `id`'s root (`object` is
    /// `None`) or object: the same handle for the same object.
    fn lend(&mut self, id: u64, object: Option<ServiceObject>) -> Value {
        let existing = object.as_ref().and_then(|o| self.lent.get(&(id, o.handle)));
        let handle = match existing {
            Some(&handle) => handle,
            None => {
                let handle = self.next_id();
                let deployment = self.deployments.get_mut(&id).expect("a live deployment");
                deployment.handles += 1;
                let name = object
                    .as_ref()
                    .map_or(deployment.exposed.name(), |o| &o.class);
                let class = format!("{name}@{}", deployment.tag);
                if let Some(object) = &object {
                    self.lent.insert((id, object.handle), handle);
                }
                self.held.insert(
                    handle,
                    Held {
                        deployment: id,
                        object,
                        class,
                    },
                );
                handle
            }
        };
        Value::Local(Local::Service(ServiceObject {
            handle,
            class: self.held[&handle].class.clone(),
        }))
    }

    /// `value` as deployment `id` sees it: this service's handles become
    /// the deployment's own objects; another deployment's are refused.
    fn inward(&self, id: u64, mut value: Value) -> Result<Value, Exception> {
        value.try_for_each_item(&mut |item| {
            let Value::Local(Local::Service(object)) = item else {
                return Ok(());
            };
            match self.held.get(&object.handle) {
                Some(Held {
                    deployment,
                    object: Some(own),
                    ..
                }) if *deployment == id => {
                    *object = own.clone();
                    Ok(())
                }
                _ => Err(Exception::type_error(format!(
                    "a {} object cannot be passed here: it is not an object of this deployed service",
                    object.class
                ))),
            }
        })?;
        Ok(value)
    }

    /// `value` as the peer sees it: deployment `id`'s objects become
    /// handles of this service.
    fn outward(&mut self, id: u64, mut value: Value) -> Value {
        let _ = value.try_for_each_item(&mut |item| {
            if let Value::Local(Local::Service(object)) = item {
                *item = self.lend(id, Some(object.clone()));
            }
            Ok::<(), Infallible>(())
        });
        value
    }
}

/// The arguments of `deploy(component, name=None)`: the component's bytes,
/// and the name it is served under if it declares none (`DEPLOYED` else).
fn deploy_args(
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> Result<(Vec<u8>, Option<String>), Exception> {
    const USAGE: &str = "deploy(component, name=None) takes the component's bytes (a bytes \
                         object) and, optionally, the name to serve it under (a str)";
    let params = ["component", "name"].into_iter();
    let mut slots = bind_arguments("deploy", params, args, kwargs)?.into_iter();
    let (component, name) = (slots.next().flatten(), slots.next().flatten());
    let Some(Value::Bytes(bytes)) = component else {
        return Err(Exception::type_error(USAGE));
    };
    let name = match name {
        None | Some(Value::None) => None,
        Some(Value::Str(name)) => Some(name),
        Some(_) => return Err(Exception::type_error(USAGE)),
    };
    Ok((bytes, name))
}

impl Service for DeployService {
    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn exposed_names(&self) -> Vec<String> {
        vec!["deploy".to_owned()]
    }

    /// A deployed service's root is an object of the class named by its
    /// name and tag; its classes are named by theirs and the tag.
    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        let mut classes = Vec::new();
        for deployment in self.deployments.values() {
            let tag = &deployment.tag;
            let name = deployment.exposed.name();
            classes.push((format!("{name}@{tag}"), deployment.exposed.root_members()));
            for (class, methods) in deployment.service.exposed_classes() {
                classes.push((format!("{class}@{tag}"), methods));
            }
        }
        classes
    }

    async fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        match name {
            "deploy" => self.deploy(args, kwargs).await,
            _ => Err(Exception::no_attribute(name)),
        }
    }

    async fn call_object(
        &mut self,
        object: &ServiceObject,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let Some(held) = self.held.get(&object.handle).cloned() else {
            return Err(Exception::new(
                "ReferenceError",
                "the deployed service is gone",
            ));
        };
        let id = held.deployment;
        let args = args
            .into_iter()
            .map(|arg| self.inward(id, arg))
            .collect::<Result<Vec<_>, _>>()?;
        let kwargs = kwargs
            .into_iter()
            .map(|(key, arg)| Ok((key, self.inward(id, arg)?)))
            .collect::<Result<Vec<_>, Exception>>()?;
        let deployment = self.deployments.get_mut(&id).expect("held objects keep it");
        let result = match &held.object {
            Some(own) => {
                deployment
                    .service
                    .call_object(own, name, args, kwargs)
                    .await
            }
            None => match deployment.exposed.builtin(name, &args, &kwargs) {
                Some(result) => result,
                None => deployment.service.call(name, args, kwargs).await,
            },
        };
        result.map(|value| self.outward(id, value))
    }

    async fn release_object(&mut self, object: ServiceObject) {
        let Some(held) = self.held.remove(&object.handle) else {
            return;
        };
        let id = held.deployment;
        let deployment = self.deployments.get_mut(&id).expect("held objects keep it");
        if let Some(own) = held.object {
            self.lent.remove(&(id, own.handle));
            deployment.service.release_object(own).await;
        }
        deployment.handles -= 1;
        if deployment.handles == 0 {
            let mut ended = self.deployments.remove(&id).expect("just found");
            ended.service.on_disconnect().await;
        }
    }

    async fn on_connect(&mut self, peer: Peer) -> Result<(), Exception> {
        self.peer = Some(peer);
        Ok(())
    }

    async fn on_disconnect(&mut self) {
        for (_, mut deployment) in self.deployments.drain() {
            deployment.service.on_disconnect().await;
        }
    }
}
