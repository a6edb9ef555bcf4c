//! Loading a service component: compiling it, finding its exposed methods,
//! hooks and aliases, and pre-instantiating it once for every connection.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, ResourceType, Type, Val};

use super::classes::{Class, class_name};
use super::compiled::Compiled;
use super::convert;
use super::grants::Grants;
use super::host::TYPES_INTERFACE;
use super::instance::{self, Live, ServiceInstance};
use super::method::{Method, python_name};
use super::objects::{OBJECTS_INTERFACE, ObjectsExports};
use super::service::WasmService;
use super::shared::{CallQueue, SharedInstance};
use super::{Runtime, ServiceLimits};
use crate::executor::Executor;
use crate::metrics;
use crate::service::service_aliases;

/// The prefix that makes an export a remote method.
pub const EXPOSED_PREFIX: &str = "exposed-";

/// Why a component cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component, or one that needs
    /// more core instances, memories or tables than the host allows.
    #[error("{name} cannot be compiled: {source:#}")]
    Compile {
        /// The component's name.
        name: String,
        /// Why.
        source: wasmtime::Error,
    },
    /// The component has no remote methods.
    #[error(
        "{name} exports no `exposed-*` function: a service's remote methods are its exports named `exposed-<name>` (or it serves its objects through `{OBJECTS_INTERFACE}`)"
    )]
    NothingExposed {
        /// The component's name.
        name: String,
    },
    /// An export the host reads has a shape it cannot use.
    #[error("{name}: export `{export}` {reason}")]
    BadExport {
        /// The component's name.
        name: String,
        /// The export.
        export: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The component imports something the host does not provide.
    #[error("{name} cannot be linked: {source:#}")]
    Link {
        /// The component's name.
        name: String,
        /// Why.
        source: wasmtime::Error,
    },
    /// Its `service-aliases` export failed.
    #[error("{name}: service-aliases failed: {reason}")]
    Aliases {
        /// The component's name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A compiled, pre-instantiated service, ready to give every connection its
/// own instance (or, [shared](ServiceComponent::shared), a share of one).
/// Cheap to clone.
#[derive(Clone)]
pub struct ServiceComponent {
    inner: Arc<Compiled>,
    /// The instance every connection shares, if it is shared.
    shared: Option<Arc<SharedInstance>>,
}

/// The exports the host reads, found by name.
#[derive(Default)]
struct Exports {
    methods: HashMap<String, Method>,
    on_connect: Option<Method>,
    on_disconnect: Option<Method>,
    netref: Option<ResourceType>,
    classes: Vec<Class>,
    service_aliases: Option<ComponentExportIndex>,
    objects: Option<ObjectsExports>,
}

impl ServiceComponent {
    /// Loads the component at `path`; its default name is the file's stem.
    pub async fn load(runtime: &Runtime, path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_file_bytes(runtime, path, &bytes, None).await
    }

    /// [`ServiceComponent::load`] of `bytes` already read from `path`, with
    /// their SHA-256 if the caller has it.
    pub(crate) async fn from_file_bytes(
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
        digest: Option<[u8; 32]>,
    ) -> Result<Self, LoadError> {
        let name = path
            .file_stem()
            .map_or("service".into(), |s| s.to_string_lossy().into_owned());
        Self::from_hashed_bytes(runtime, &name, bytes, digest).await
    }

    /// Loads a component from its bytes; `name` gives the default service
    /// name (`calculator` serves as `CALCULATOR`) unless the component
    /// declares aliases with a `service-aliases` export.
    pub async fn from_bytes(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        Self::from_hashed_bytes(runtime, name, bytes, None).await
    }

    /// [`ServiceComponent::from_bytes`], with the bytes' SHA-256 when the
    /// caller has it already (deploy does), so they are not hashed twice.
    pub(crate) async fn from_hashed_bytes(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        digest: Option<[u8; 32]>,
    ) -> Result<Self, LoadError> {
        // Compiling takes from milliseconds to seconds (hashing a large
        // component, milliseconds): off the async threads.
        let (engine, owned) = (runtime.engine().clone(), bytes.to_vec());
        let cache = runtime.compile_cache().cloned();
        let compiling = move || {
            let digest = digest.unwrap_or_else(|| Sha256::digest(&owned).into());
            if let Some(cache) = cache {
                cache.release_own_cleanup_lock();
            }
            let started = Instant::now();
            let compiled = Component::new(&engine, owned);
            if let Some(metrics) = metrics::recording() {
                metrics.compiled(started.elapsed());
            }
            compiled.map(|component| (component, digest))
        };
        let (component, digest) = tokio::task::spawn_blocking(compiling)
            .await
            .map_err(wasmtime::Error::from)
            .and_then(|compiled| compiled)
            .map_err(|source| LoadError::Compile {
                name: name.to_owned(),
                source,
            })?;
        let exports = discover(&component, runtime, name)?;
        if exports.methods.is_empty() && exports.objects.is_none() {
            return Err(LoadError::NothingExposed {
                name: name.to_owned(),
            });
        }
        let pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|source| LoadError::Link {
                name: name.to_owned(),
                source,
            })?;
        let mut inner = Compiled {
            runtime: runtime.clone(),
            pre,
            aliases: service_aliases(&[], name),
            declared_aliases: Vec::new(),
            methods: exports.methods,
            on_connect: exports.on_connect,
            on_disconnect: exports.on_disconnect,
            netref: exports.netref,
            classes: exports.classes,
            objects: exports.objects,
            grants: Grants::default(),
            limits: ServiceLimits::of(runtime),
            digest,
        };
        if let Some(export) = exports.service_aliases {
            let declared =
                declared_aliases(&inner, &export)
                    .await
                    .map_err(|reason| LoadError::Aliases {
                        name: name.to_owned(),
                        reason,
                    })?;
            inner.aliases = service_aliases(&declared, name);
            inner.declared_aliases = declared;
        }
        Ok(ServiceComponent {
            inner: Arc::new(inner),
            shared: None,
        })
    }

    /// Names the service after `name` (`calculator` serves as `CALCULATOR`)
    /// unless it declares its own aliases.
    pub fn with_default_name(self, name: &str) -> Self {
        self.changed(|inner| inner.aliases = service_aliases(&inner.declared_aliases, name))
    }

    /// Replaces the service's aliases (a deploy-time override); the first is
    /// its proper name.
    pub fn with_aliases(self, aliases: &[String]) -> Self {
        if aliases.is_empty() {
            return self;
        }
        self.changed(|inner| inner.aliases = service_aliases(aliases, ""))
    }

    /// Grants the service what `grants` gives (directories, environment
    /// variables); by default it reaches nothing outside its memory.
    pub fn with_grants(self, grants: Grants) -> Self {
        self.changed(|inner| inner.grants = grants)
    }

    /// Runs the service's instances under `limits` (by default the
    /// runtime's); a memory limit past the runtime's is held to it.
    pub fn with_limits(self, mut limits: ServiceLimits) -> Self {
        self.changed(|inner| {
            limits.max_memory = limits.max_memory.min(inner.runtime.limits().max_memory);
            inner.limits = limits;
        })
    }

    /// Serves every connection from one instance, as RPyC's services share
    /// one process: module-level state is shared, and the service may call
    /// any connected peer's objects. The guest tells connections apart by
    /// `peer.connection` (the SDKs keep a service object per connection);
    /// calls enter one at a time, in order, waiting in a queue with the
    /// default bounds ([`CallQueue`]), and a trap
    /// starts a fresh instance, in which every open connection's
    /// `on-connect` runs again (the objects of the old one are gone:
    /// `ReferenceError`).
    pub fn shared(self) -> Self {
        self.shared_with(CallQueue::default())
    }

    /// [`ServiceComponent::shared`], its calls waiting in a queue bounded
    /// by `queue`.
    pub fn shared_with(self, queue: CallQueue) -> Self {
        ServiceComponent {
            shared: Some(SharedInstance::new(Arc::clone(&self.inner), queue)),
            ..self
        }
    }

    /// Whether every connection shares one instance.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// This component with `change` made to what it compiled to (a shared
    /// one gets a new shared instance of the changed component).
    fn changed(self, change: impl FnOnce(&mut Compiled)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        let changed = ServiceComponent {
            inner: Arc::new(inner),
            shared: None,
        };
        match &self.shared {
            Some(shared) => changed.shared_with(shared.queue()),
            None => changed,
        }
    }

    /// The service's names, upper-cased, proper name first.
    pub fn aliases(&self) -> &[String] {
        &self.inner.aliases
    }

    /// The Python names of the exposed methods, sorted.
    pub fn methods(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.methods.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The SHA-256 of the bytes the component was compiled from.
    pub fn digest(&self) -> &[u8; 32] {
        &self.inner.digest
    }

    /// The bytes of the component's compiled code.
    pub fn compiled_size(&self) -> usize {
        let code = self.inner.pre.component().image_range();
        code.end.addr() - code.start.addr()
    }

    pub(crate) fn inner(&self) -> &Arc<Compiled> {
        &self.inner
    }

    /// A new instance for one connection (of a shared component, the
    /// connection's share of its instance). It is created, and `on-connect`
    /// run, by [`Service::on_connect`](crate::Service::on_connect) or the
    /// first call.
    pub fn instance(&self) -> WasmService {
        self.instance_on(self.inner().runtime.executor())
    }

    /// A new instance for one connection, run by `executor` (shared with
    /// the connection's other instances).
    pub(crate) fn instance_on(&self, executor: Executor) -> WasmService {
        match &self.shared {
            Some(shared) => shared.connection().into(),
            None => ServiceInstance::new(Arc::clone(self.inner()), executor).into(),
        }
    }
}

/// Finds the exports the host reads: `exposed-*` functions at the top level
/// and in exported interfaces, and the optional hooks and aliases.
fn discover(component: &Component, runtime: &Runtime, name: &str) -> Result<Exports, LoadError> {
    let bad = |export: &str, reason: String| LoadError::BadExport {
        name: name.to_owned(),
        export: export.to_owned(),
        reason,
    };
    let engine = runtime.engine();
    let mut exports = Exports {
        netref: imported_netref(component, runtime),
        ..Exports::default()
    };
    for (export, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let index = component
                    .get_export_index(None, export)
                    .expect("listed export");
                match export {
                    "on-connect" => {
                        exports.on_connect =
                            Some(hook(export, index, &func).map_err(|r| bad(export, r))?)
                    }
                    "on-disconnect" => {
                        exports.on_disconnect =
                            Some(hook(export, index, &func).map_err(|r| bad(export, r))?)
                    }
                    "service-aliases" => {
                        let is_strings = func.params().len() == 0
                            && matches!(func.results().collect::<Vec<_>>().as_slice(),
                                [Type::List(l)] if l.ty() == Type::String);
                        if !is_strings {
                            return Err(bad(export, "must be `func() -> list<string>`".into()));
                        }
                        exports.service_aliases = Some(index);
                    }
                    _ => exports
                        .add_method(export, index, &func)
                        .map_err(|r| bad(export, r))?,
                }
            }
            ComponentItem::ComponentInstance(instance) => {
                let interface = component
                    .get_export_index(None, export)
                    .expect("listed export");
                if export == OBJECTS_INTERFACE {
                    let found = ObjectsExports::find(component, engine, &interface, &instance);
                    exports.objects = Some(found.map_err(|r| bad(export, r))?);
                    continue;
                }
                // Classes first: the functions' signatures name them.
                for (member, item) in instance.exports(engine) {
                    if let (ComponentItem::Resource(ty), Some(wit)) =
                        (item.ty, member.strip_prefix(EXPOSED_PREFIX))
                    {
                        exports.classes.push(Class {
                            name: class_name(wit),
                            ty,
                            methods: HashMap::new(),
                        });
                    }
                }
                for (member, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(func) = item.ty {
                        let index = component
                            .get_export_index(Some(&interface), member)
                            .expect("listed export");
                        exports
                            .add_member(member, index, &func)
                            .map_err(|r| bad(member, r))?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(exports)
}

/// The `netref` resource the component imports from the shared types.
fn imported_netref(component: &Component, runtime: &Runtime) -> Option<ResourceType> {
    let engine = runtime.engine();
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, item)| match item.ty {
            ComponentItem::ComponentInstance(instance) if name == TYPES_INTERFACE => instance
                .exports(engine)
                .find_map(|(member, item)| match item.ty {
                    ComponentItem::Resource(ty) if member == "netref" => Some(ty),
                    _ => None,
                }),
            _ => None,
        })
}

impl Exports {
    /// Records a member of an exported interface: a method, or a class's
    /// constructor (a method of the root named as the class) or method.
    fn add_member(
        &mut self,
        member: &str,
        index: ComponentExportIndex,
        func: &ComponentFunc,
    ) -> Result<(), String> {
        if let Some(class) = member.strip_prefix("[constructor]") {
            let Some(wit) = class.strip_prefix(EXPOSED_PREFIX) else {
                return Ok(());
            };
            let method = self.method(class_name(wit), index, func, 0)?;
            return self.insert(method);
        }
        if let Some(rest) = member.strip_prefix("[method]") {
            let Some((class, name)) = rest.split_once('.') else {
                return Ok(());
            };
            let (Some(class), Some(name)) = (
                class.strip_prefix(EXPOSED_PREFIX),
                name.strip_prefix(EXPOSED_PREFIX),
            ) else {
                return Ok(());
            };
            // The first parameter is the object itself.
            let method = self.method(python_name(name), index, func, 1)?;
            let class = class_name(class);
            let methods = &mut self
                .classes
                .iter_mut()
                .find(|c| c.name == class)
                .ok_or_else(|| format!("is a method of `{class}`, which is not exported"))?
                .methods;
            if methods.insert(method.name.clone(), method).is_some() {
                return Err(format!("is a second method of `{class}` of that name"));
            }
            return Ok(());
        }
        if member.starts_with("[static]") {
            tracing::warn!(
                member,
                "static methods of exposed classes are not served yet"
            );
            return Ok(());
        }
        self.add_method(member, index, func)
    }

    /// Records `export` as a method if its name makes it one.
    fn add_method(
        &mut self,
        export: &str,
        index: ComponentExportIndex,
        func: &ComponentFunc,
    ) -> Result<(), String> {
        let Some(wit_name) = export.strip_prefix(EXPOSED_PREFIX) else {
            return Ok(());
        };
        if wit_name.is_empty() {
            return Err("has no name after `exposed-`".into());
        }
        let method = self.method(python_name(wit_name), index, func, 0)?;
        self.insert(method)
    }

    fn insert(&mut self, method: Method) -> Result<(), String> {
        let name = method.name.clone();
        if self.methods.insert(name.clone(), method).is_some() {
            return Err(format!("is a second method named `{name}`"));
        }
        Ok(())
    }

    /// The method `name` that calls `func`, whose first `skip` parameters
    /// the host passes itself.
    fn method(
        &self,
        name: String,
        index: ComponentExportIndex,
        func: &ComponentFunc,
        skip: usize,
    ) -> Result<Method, String> {
        let mut params = Vec::new();
        for (param, ty) in func.params().skip(skip) {
            self.check_supported(&ty, true).map_err(|what| {
                format!("has a parameter `{param}` of type {what}, which services cannot use")
            })?;
            params.push((python_name(param), ty));
        }
        let result = func.results().next();
        if let Some(ty) = &result {
            self.check_supported(ty, false)
                .map_err(|what| format!("returns a {what}, which services cannot use"))?;
        }
        Ok(Method {
            name,
            export: index,
            params,
            result,
        })
    }

    /// Refuses types no wire value can carry: resources other than `netref`
    /// and the exposed classes, futures, streams. A parameter takes an
    /// exposed class as a `borrow`: the object stays lent to the peer.
    fn check_supported(&self, ty: &Type, param: bool) -> Result<(), String> {
        let check = |ty: &Type| self.check_supported(ty, param);
        let class = |r: &ResourceType| self.classes.iter().find(|c| c.ty == *r);
        match ty {
            Type::Record(_) if convert::is_dynamic_value(ty) => Ok(()),
            Type::Own(r) | Type::Borrow(r) if Some(r) == self.netref.as_ref() => Ok(()),
            Type::Own(r) if param && class(r).is_some() => Err(format!(
                "own<{}> (take `borrow<>`: the peer keeps the object)",
                class(r).map_or("", |c| &c.name)
            )),
            Type::Own(r) | Type::Borrow(r) if class(r).is_some() => Ok(()),
            Type::Own(_) | Type::Borrow(_) => Err("resource".into()),
            Type::Future(_) => Err("future".into()),
            Type::Stream(_) => Err("stream".into()),
            Type::ErrorContext => Err("error-context".into()),
            Type::List(l) => check(&l.ty()),
            Type::FixedLengthList(l) => check(&l.ty()),
            Type::Map(m) => check(&m.key()).and(check(&m.value())),
            Type::Option(o) => check(&o.ty()),
            Type::Tuple(t) => t.types().try_for_each(|t| check(&t)),
            Type::Record(r) => r.fields().try_for_each(|f| check(&f.ty)),
            Type::Variant(v) => v.cases().filter_map(|c| c.ty).try_for_each(|t| check(&t)),
            Type::Result(r) => r.ok().iter().chain(r.err().iter()).try_for_each(check),
            _ => Ok(()),
        }
    }
}

/// A hook: no parameters, and nothing or a `result` back.
fn hook(export: &str, index: ComponentExportIndex, func: &ComponentFunc) -> Result<Method, String> {
    let result = func.results().next();
    let fits = func.params().len() == 0 && matches!(result, None | Some(Type::Result(_)));
    if !fits {
        return Err(format!(
            "must be `{export}: func()`, optionally returning `result<_, error>`"
        ));
    }
    Ok(Method {
        name: python_name(export),
        export: index,
        params: Vec::new(),
        result,
    })
}

/// Calls `service-aliases` once on a throwaway instance.
async fn declared_aliases(
    inner: &Compiled,
    export: &ComponentExportIndex,
) -> Result<Vec<String>, String> {
    let mut live = Live::new(inner, None, inner.runtime.executor(), 0)
        .await
        .map_err(|e| e.message)?;
    let mut result = [Val::Bool(false)];
    instance::call_export(&mut live, inner, export, &[], &mut result)
        .await
        .map_err(|e| e.message)?;
    match &result[0] {
        Val::List(names) => Ok(names
            .iter()
            .filter_map(|n| match n {
                Val::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect()),
        other => Err(format!("returned {other:?}")),
    }
}
