//! One connection's deploy service: what it deployed, and the objects of
//! theirs the peer holds.

use std::collections::HashMap;
use std::convert::Infallible;

use super::{DEPLOY_SERVICE, Deployer, Place};
use crate::exception::Exception;
use crate::executor::Executor;
use crate::local::{Local, ServiceObject};
use crate::metrics;
use crate::peer::Peer;
use crate::server::ServiceFactory;
use crate::service::{Exposed, ObjectRequest, Service, bind_arguments};
use crate::value::Value;
use crate::wasm::WasmService;

/// One connection's deploy service: the services it deployed, and the
/// objects of theirs the peer holds. Each object the peer holds has a handle
/// of this service's (a deployed service's own handles would collide with
/// another's); its class is the deployed class's name with the component's
/// tag (`CALCULATOR@1f2e3d4c`).
pub struct DeployService {
    deployer: Deployer,
    /// Where this connection's deployed services run.
    executor: Executor,
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
    /// Its place among the host's deployments.
    _place: Place,
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
    pub(super) fn new(deployer: Deployer) -> Self {
        DeployService {
            executor: deployer.executor(),
            deployer,
            aliases: vec![DEPLOY_SERVICE.to_owned()],
            peer: None,
            deployments: HashMap::new(),
            held: HashMap::new(),
            lent: HashMap::new(),
            next: 0,
        }
    }

    /// Deploys the component `args` hand over, and lends the peer its root.
    async fn deploy(
        &mut self,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let deployed = self.try_deploy(args, kwargs).await;
        if let Some(metrics) = metrics::recording() {
            metrics.deployment(deployed.is_ok());
        }
        deployed
    }

    async fn try_deploy(
        &mut self,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let (bytes, name) = deploy_args(args, kwargs)?;
        let most = self.deployer.limits().max_deployments;
        if self.deployments.len() >= most {
            return Err(Exception::runtime_error(format!(
                "this connection holds {most} deployed services, the most it may; let one go first"
            )));
        }
        let place = self.deployer.take_place()?;
        let (mut component, tag) = self.deployer.compile(bytes).await?;
        if let Some(name) = name {
            component = component.with_default_name(&name);
        }
        let mut service = component.instance_on(self.executor.clone());
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
                _place: place,
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
        let held = &self.held[&handle];
        Value::Local(Local::Service(ServiceObject {
            handle,
            class: held.class.clone(),
            is_class: held.object.as_ref().is_some_and(|o| o.is_class),
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
    /// name and tag; its classes are named by theirs and the tag. A
    /// deployed service that serves its objects lists none: every request
    /// about its root and objects is passed on to it.
    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        let mut classes = Vec::new();
        let listed = self.deployments.values();
        for deployment in listed.filter(|d| !d.service.serves_objects()) {
            let tag = &deployment.tag;
            let name = deployment.exposed.name();
            classes.push((format!("{name}@{tag}"), deployment.exposed.root_members()));
            for (class, methods) in deployment.service.exposed_classes() {
                classes.push((format!("{class}@{tag}"), methods));
            }
        }
        classes
    }

    /// The objects of deployed services whose classes are not listed.
    fn serves_objects(&self) -> bool {
        true
    }

    /// DEPLOY's own root has `deploy` only.
    fn serves_root(&self) -> bool {
        false
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

    /// A call of a deployed root's method, or a request about one of a
    /// deployed service's objects, passed on to that service.
    async fn object_request(
        &mut self,
        object: Option<&ServiceObject>,
        request: ObjectRequest,
    ) -> Result<Value, Exception> {
        let Some(object) = object else {
            return Err(Exception::type_error(
                "DEPLOY answers for deployed services only",
            ));
        };
        let Some(held) = self.held.get(&object.handle).cloned() else {
            return Err(Exception::reference_error("the deployed service is gone"));
        };
        let id = held.deployment;
        let request = match request {
            ObjectRequest::Call {
                method,
                args,
                kwargs,
            } => ObjectRequest::Call {
                method,
                args: args
                    .into_iter()
                    .map(|arg| self.inward(id, arg))
                    .collect::<Result<_, _>>()?,
                kwargs: kwargs
                    .into_iter()
                    .map(|(key, arg)| Ok((key, self.inward(id, arg)?)))
                    .collect::<Result<_, Exception>>()?,
            },
            other => other,
        };
        let deployment = self.deployments.get_mut(&id).expect("held objects keep it");
        let service = &mut deployment.service;
        let result = match (&held.object, request) {
            (Some(own), request) => service.object_request(Some(own), request).await,
            (
                None,
                ObjectRequest::Call {
                    method: Some(name),
                    args,
                    kwargs,
                },
            ) => match deployment.exposed.builtin(&name, &args, &kwargs) {
                Some(result) => result,
                None => service.call(&name, args, kwargs).await,
            },
            (None, request) => service.object_request(None, request).await,
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

    fn executor(&self) -> Option<Executor> {
        Some(self.executor.clone())
    }

    async fn on_disconnect(&mut self) {
        for (_, mut deployment) in self.deployments.drain() {
            deployment.service.on_disconnect().await;
        }
    }
}
