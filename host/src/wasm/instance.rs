//! A service's instance: its own store and memory, a CPU budget per call,
//! and a fresh instance after a trap. It serves one connection, or every
//! connection of a shared instance, one call at a time.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{ComponentExportIndex, Instance, ResourceAny, Val};
use wasmtime::{AsContextMut, Store, Trap, UpdateDeadline};

use super::EPOCH_TICK;
use super::compiled::Compiled;
use super::connections::Connections;
use super::cpu::{Meter, OnCpu};
use super::fetch;
use super::guest_objects::{GuestObject, StoreKeep};
use super::host::HostState;
use super::method::Method;
use super::netrefs::{StoreLend, drop_netrefs};
use super::objects::ROOT_HANDLE;
use crate::exception::Exception;
use crate::executor::Executor;
use crate::local::ServiceObject;
use crate::metrics;
use crate::peer::Peer;
use crate::service::{Description, ObjectRequest, Service};
use crate::value::Value;

/// A call ran past its CPU budget.
#[derive(Debug, thiserror::Error)]
#[error("the call used up its CPU budget")]
struct CpuBudgetExceeded;

/// A store with an instance in it. A trap poisons the whole store, so the two
/// live and die together.
pub(crate) struct Live {
    store: Store<HostState>,
    instance: Instance,
    /// Set while a call runs; still set afterwards when the call's future
    /// was dropped half way (its deadline passed, its peer went away), which
    /// leaves the guest in no state to run again.
    in_call: bool,
}

impl Live {
    /// A new store and instance of `component`, whose `peer` interface
    /// reaches `peer`, run by `executor`; the objects it lends get handles
    /// from `first_object` on.
    pub(crate) async fn new(
        component: &Compiled,
        peer: Option<Peer>,
        executor: Executor,
        first_object: u64,
    ) -> Result<Self, Exception> {
        let runtime = &component.runtime;
        let memory = runtime.store_memory(component.limits.max_memory);
        let meter = Arc::new(Meter::on(executor));
        let state = HostState::new(
            &component.aliases[0],
            memory,
            Arc::clone(&meter),
            peer,
            &component.grants,
            first_object,
        )
        .map_err(|error| {
            Exception::os_error(format!("the service's grants cannot be given: {error:#}"))
        })?;
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|state| &mut state.memory);
        // wasmtime charges each element a guest hands over as a whole `Val`
        // (a `list<u8>` of n bytes costs n of them).
        let fuel = runtime
            .limits()
            .max_value_size
            .saturating_mul(size_of::<Val>());
        store.set_hostcall_fuel(fuel);
        let budget = component.limits.call_cpu_budget;
        store.epoch_deadline_callback(move |store| {
            let meter = &store.data().meter;
            let (used, slice) = meter.read();
            // The exact reading costs a system call: only near the budget.
            if used > budget && meter.read_cpu() > budget {
                return Err(CpuBudgetExceeded.into());
            }
            if slice < EPOCH_TICK / 2 {
                // Resumed just now, after waiting for its turn: run on.
                return Ok(UpdateDeadline::Continue(1));
            }
            // Give up the core at every tick: others may be waiting.
            Ok(UpdateDeadline::Yield(1))
        });
        start_budget(&mut store);
        let instantiating = component.pre.instantiate_async(&mut store);
        let instance = on_cpu(component, &meter, instantiating)
            .await
            .map_err(|error| trap_exception(&error, &mut store, &component.aliases[0]))?;
        Ok(Live {
            store,
            instance,
            in_call: false,
        })
    }
}

/// Gives the next guest call a full CPU budget.
fn start_budget(store: &mut Store<HostState>) {
    let state = store.data_mut();
    state.meter.reset();
    state.memory.take_refusal();
    state.output.begin_call();
    store.set_epoch_deadline(1);
}

/// `future`, which runs guest code metered by `meter`, polled only with a
/// turn on the host's CPU.
fn on_cpu<F: Future>(component: &Compiled, meter: &Arc<Meter>, future: F) -> OnCpu<F> {
    component.runtime.cpu().run(Arc::clone(meter), future)
}

/// Calls `export` under the CPU budget. An error means the store is poisoned.
pub(crate) async fn call_export(
    live: &mut Live,
    component: &Compiled,
    export: &ComponentExportIndex,
    params: &[Val],
    results: &mut [Val],
) -> Result<(), Exception> {
    let func = live
        .instance
        .get_func(&mut live.store, export)
        .expect("exports were found on this component");
    start_budget(&mut live.store);
    let meter = Arc::clone(&live.store.data().meter);
    live.in_call = true;
    let called = on_cpu(
        component,
        &meter,
        func.call_async(&mut live.store, params, results),
    )
    .await;
    live.in_call = false;
    live.store.data().output.end_call();
    called.map_err(|error| trap_exception(&error, &mut live.store, &component.aliases[0]))
}

/// The exception of a call of `service` stopped at its wall-clock deadline.
fn past_deadline(deadline: Duration, service: &str) -> Exception {
    count_trap(service, "deadline");
    Exception::timeout_error(format!(
        "the call ran past its deadline of {deadline:?}; the service's instance was \
             discarded"
    ))
}

/// The exception a caller of `service` receives for a trap; the guest's
/// latest output (where a Rust guest prints its panic message) is part of
/// the message. A trap after a refused memory growth (a Rust guest aborts
/// when an allocation fails) is a `MemoryError`.
fn trap_exception(
    error: &wasmtime::Error,
    store: &mut Store<HostState>,
    service: &str,
) -> Exception {
    let output = store.data().output.take_tail();
    let said = if output.is_empty() {
        String::new()
    } else {
        format!("; it wrote: {output}")
    };
    if error.is::<CpuBudgetExceeded>() {
        count_trap(service, "cpu_budget");
        return Exception::timeout_error(format!(
            "the service used up its CPU budget for one call{said}"
        ));
    }
    if let Some(refusal) = store.data_mut().memory.take_refusal() {
        count_trap(service, "memory");
        return Exception::memory_error(format!("{}{said}", refusal.explain()));
    }
    let trap = error.downcast_ref::<Trap>();
    count_trap(
        service,
        &trap.map_or("error".to_owned(), |trap| format!("{trap:?}")),
    );
    match trap {
        Some(Trap::StackOverflow) => {
            Exception::recursion_error(format!("the service overflowed its stack{said}"))
        }
        Some(trap) => Exception::runtime_error(format!("the service trapped: {trap}{said}")),
        None => Exception::runtime_error(format!("the service failed: {error:#}{said}")),
    }
}

/// Counts an instance of `service` stopped for `kind`, if metrics are
/// recorded.
fn count_trap(service: &str, kind: &str) {
    if let Some(metrics) = metrics::recording() {
        metrics.trap(service, kind);
    }
}

/// An instance of a service component, for one connection or (shared)
/// for all of them.
pub(crate) struct ServiceInstance {
    component: Arc<Compiled>,
    /// `None` before the first use and after a trap.
    live: Option<Live>,
    /// The other side of the connection whose call runs, from `on_connect`
    /// on.
    peer: Option<Peer>,
    /// That connection's number: 0 in an instance of its own.
    connection: u64,
    /// Every connection of a shared instance.
    connections: Option<Arc<Connections>>,
    /// The handle the next instance's first lent object gets: handles are
    /// not reused after a trap.
    next_object: u64,
    /// The root's exposed callables, for a service that serves its objects.
    callables: Vec<String>,
    /// Where the instance runs.
    executor: Executor,
}

/// What the host passes a call before the caller's arguments.
#[derive(Clone, Copy)]
enum Receiver<'a> {
    /// Nothing: a method of the root.
    Root,
    /// The instance of an exposed class whose method is called.
    Instance(&'a ServiceObject),
    /// The handle of an object the service serves (`None`: its root).
    Served(Option<&'a ServiceObject>),
}

impl ServiceInstance {
    /// A new instance of `component` for one connection, run by `executor`;
    /// it is created, and `on-connect` run, by [`Service::on_connect`] or
    /// the first call.
    pub(crate) fn new(component: Arc<Compiled>, executor: Executor) -> Self {
        ServiceInstance {
            component,
            live: None,
            peer: None,
            connection: 0,
            connections: None,
            next_object: 0,
            callables: Vec::new(),
            executor,
        }
    }

    /// A new instance of `component` for every connection of
    /// `connections`, run by `executor`; each connection [joins](ServiceInstance::join).
    pub(crate) fn shared(
        component: Arc<Compiled>,
        executor: Executor,
        connections: Arc<Connections>,
    ) -> Self {
        ServiceInstance {
            connections: Some(connections),
            ..ServiceInstance::new(component, executor)
        }
    }

    /// The calls, hooks and releases from now on come from connection
    /// `number`, whose peer is `peer`.
    pub(crate) fn enter(&mut self, number: u64, peer: Option<Peer>) {
        if let Some(live) = &mut self.live {
            let state = live.store.data_mut();
            state.connection = number;
            state.peer = peer.clone();
        }
        self.connection = number;
        self.peer = peer;
    }

    /// The connection [entered](ServiceInstance::enter) last has joined a shared
    /// instance: its `on-connect` runs (a new instance runs every open
    /// connection's).
    pub(crate) async fn join(&mut self) -> Result<(), Exception> {
        self.forget_abandoned();
        if self.live.is_none() {
            return self.ensure_live().await;
        }
        self.run_on_connect().await
    }
}

/// Reads the sequences the peer lent by reference where `method` wants values.
async fn fetch_lent(
    peer: &Peer,
    slots: &mut [Option<Value>],
    method: &Method,
) -> Result<(), Exception> {
    let lent = |value: &Value| matches!(value, Value::Remote(_));
    for (slot, (_, ty)) in slots.iter_mut().zip(&method.params) {
        // Only the peer's objects are read: plain values skip the walk.
        if let Some(value) = slot.take_if(|value| value.any(lent)) {
            *slot = Some(fetch::fetch(value, ty, peer).await?);
        }
    }
    Ok(())
}

impl ServiceInstance {
    /// The live instance, instantiating it (and running `on-connect`) first
    /// if there is none: at connect, and after a trap.
    async fn ensure_live(&mut self) -> Result<(), Exception> {
        self.forget_abandoned();
        if self.live.is_none() {
            let (peer, executor) = (self.peer.clone(), self.executor.clone());
            let mut live = Live::new(&self.component, peer, executor, self.next_object).await?;
            let state = live.store.data_mut();
            state.connection = self.connection;
            state.connections = self.connections.clone();
            self.live = Some(live);
            if let Err(error) = self.connect_all().await {
                // Not ready to serve: the next connection or call starts afresh.
                self.discard_instance();
                return Err(error);
            }
            if self.component.objects.is_some() {
                self.callables = self.read_callables().await?;
            }
        }
        Ok(())
    }

    /// Runs `on-connect` in a new instance: for its connection, or for
    /// every open connection of a shared instance (each in the order they
    /// came; one that fails is logged, and only the running connection's
    /// failure is its caller's).
    async fn connect_all(&mut self) -> Result<(), Exception> {
        let Some(connections) = self.connections.clone() else {
            return self.run_on_connect().await;
        };
        let (running, peer) = (self.connection, self.peer.clone());
        let mut outcome = Ok(());
        for (number, other) in connections.all() {
            if number == running {
                continue;
            }
            self.enter(number, Some(other));
            if let Err(error) = self.run_on_connect().await {
                let service = &self.component.aliases[0];
                tracing::warn!(%service, connection = number, %error, "on-connect failed in the fresh shared instance");
            }
            if self.live.is_none() {
                outcome = Err(Exception::runtime_error(
                    "the shared instance trapped again while reconnecting its connections",
                ));
                break;
            }
        }
        self.enter(running, peer);
        outcome?;
        self.run_on_connect().await
    }

    /// Runs `on-connect`, if the component has it, for the running
    /// connection.
    async fn run_on_connect(&mut self) -> Result<(), Exception> {
        let component = Arc::clone(&self.component);
        match &component.on_connect {
            Some(hook) => self.call_export(hook, Vec::new()).await.map(drop),
            None => Ok(()),
        }
    }

    /// Asks a service that serves its objects for its root's exposed
    /// callables.
    async fn read_callables(&mut self) -> Result<Vec<String>, Exception> {
        let request = ObjectRequest::Describe(Description::ExposedCallables);
        // Boxed: a request makes the instance live first, which reads these.
        let names = Box::pin(self.request(Receiver::Served(None), request)).await?;
        let Value::Tuple(names) = names else {
            return Err(Exception::type_error("exposed-callables is not a tuple"));
        };
        Ok(names
            .into_iter()
            .filter_map(|name| match name {
                Value::Str(name) => Some(name),
                _ => None,
            })
            .collect())
    }

    /// Asks `request` of the object `receiver` names.
    async fn request(
        &mut self,
        receiver: Receiver<'_>,
        request: ObjectRequest,
    ) -> Result<Value, Exception> {
        let component = Arc::clone(&self.component);
        let exports = component
            .objects
            .as_ref()
            .ok_or_else(|| Exception::type_error("the service serves no objects"))?;
        let (method, slots) = exports.request(request);
        self.run(method, receiver, slots).await
    }

    /// Calls `method` of the live instance with `params`; what it returns
    /// is kept as [`StoreKeep`] says. A trap poisons the store, so the
    /// instance goes, with every object of it.
    async fn call_export(&mut self, method: &Method, params: Vec<Val>) -> Result<Value, Exception> {
        let component = &self.component;
        let live = self.live.as_mut().expect("a live instance");
        let mut results = method.result_slots();
        let deadline = component.limits.call_deadline;
        let calling = call_export(live, component, &method.export, &params, &mut results);
        let called = tokio::time::timeout(deadline, calling)
            .await
            .unwrap_or_else(|_| Err(past_deadline(deadline, &component.aliases[0])));
        match called {
            Ok(()) => {
                let meter = Arc::clone(&live.store.data().meter);
                let mut store = live.store.as_context_mut();
                let mut keep = StoreKeep::new(&mut store).with_classes(&component.classes);
                let outcome = method.outcome(results.pop(), &mut keep);
                if outcome.is_err() {
                    keep.give_back();
                }
                on_cpu(component, &meter, keep.finish()).await;
                outcome
            }
            Err(exception) => {
                self.discard_instance();
                Err(exception)
            }
        }
    }

    /// Drops the instance if its last call was abandoned half way.
    fn forget_abandoned(&mut self) {
        if self.live.as_ref().is_some_and(|live| live.in_call) {
            self.discard_instance();
        }
    }

    /// Drops the instance after a trap (which poisons its store), with every
    /// object of it; the peer's objects it held are released with its store.
    fn discard_instance(&mut self) {
        if let Some(live) = self.live.take() {
            self.next_object = live.store.data().objects.next_handle();
        }
    }

    /// Releases the objects the service handed over that could not be lent.
    async fn release_given_up(&mut self) {
        let given_up = match &mut self.live {
            Some(live) => live.store.data_mut().objects.take_given_up(),
            None => return,
        };
        for handle in given_up {
            self.release_served(handle).await;
        }
    }

    /// Lets the service forget its object `handle` (under the call's
    /// budgets: a finaliser may run).
    async fn release_served(&mut self, handle: u64) {
        let component = Arc::clone(&self.component);
        let (Some(_), Some(exports)) = (&self.live, &component.objects) else {
            return;
        };
        if let Err(error) = self
            .call_export(exports.release(), vec![Val::U64(handle)])
            .await
        {
            tracing::warn!(service = %component.aliases[0], %error, "releasing an object failed");
        }
    }

    /// Calls `method` with the caller's arguments, after what `receiver`
    /// names.
    async fn invoke(
        &mut self,
        method: &Method,
        receiver: Receiver<'_>,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let mut slots = method.bind(args, kwargs)?;
        if let Some(peer) = &self.peer {
            fetch_lent(peer, &mut slots, method).await?;
        }
        self.run(method, receiver, slots).await
    }

    /// Calls `method` with `slots`, after what `receiver` names.
    async fn run(
        &mut self,
        method: &Method,
        receiver: Receiver<'_>,
        slots: Vec<Option<Value>>,
    ) -> Result<Value, Exception> {
        let crossing = self
            .component
            .runtime
            .hold_crossing(slots.iter().flatten())?;
        let (params, borrowed) = self.convert(method, receiver, slots).await?;
        let result = self.call_export(method, params).await;
        drop(crossing);
        // After a trap the instance is gone, and its handles with it.
        if let Some(live) = &mut self.live {
            drop_netrefs(&mut live.store.as_context_mut(), borrowed);
        }
        self.release_given_up().await;
        result
    }

    /// Converts bound arguments for `method` in the live instance, after
    /// what `receiver` names; the peer's objects become the guest's netrefs.
    /// Also returns the netref handles the guest only borrows, to drop after
    /// the call.
    async fn convert(
        &mut self,
        method: &Method,
        receiver: Receiver<'_>,
        slots: Vec<Option<Value>>,
    ) -> Result<(Vec<Val>, Vec<ResourceAny>), Exception> {
        self.ensure_live().await?;
        let live = self.live.as_mut().expect("just made live");
        let mut params = Vec::with_capacity(slots.len() + 1);
        let lost = |object: &ServiceObject| {
            Exception::reference_error(format!(
                "the {} object was lost when the service trapped",
                object.class
            ))
        };
        let objects = &live.store.data().objects;
        match receiver {
            Receiver::Root => {}
            Receiver::Served(None) => params.push(Val::U64(ROOT_HANDLE)),
            Receiver::Instance(object) => match objects.get(object) {
                Some(GuestObject::Resource(resource)) => params.push(Val::Resource(resource)),
                _ => return Err(lost(object)),
            },
            Receiver::Served(Some(object)) => match objects.get(object) {
                Some(GuestObject::Served(handle)) => params.push(Val::U64(handle)),
                _ => return Err(lost(object)),
            },
        }
        let mut store = live.store.as_context_mut();
        let mut lend =
            StoreLend::new(&mut store, self.component.netref).with_classes(&self.component.classes);
        match method.convert(slots, &mut lend) {
            Ok(converted) => {
                params.extend(converted);
                Ok((params, lend.into_borrowed()))
            }
            Err(exception) => {
                lend.take_back();
                Err(exception)
            }
        }
    }
}

impl Service for ServiceInstance {
    fn aliases(&self) -> &[String] {
        &self.component.aliases
    }

    fn exposed_names(&self) -> Vec<String> {
        if self.component.objects.is_some() {
            return self.callables.clone();
        }
        let classes = &self.component.classes;
        self.component
            .methods
            .keys()
            .filter(|name| !classes.iter().any(|class| class.name == **name))
            .cloned()
            .collect()
    }

    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        self.component.exposed_classes()
    }

    async fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let component = Arc::clone(&self.component);
        match component.methods.get(name) {
            Some(method) => self.invoke(method, Receiver::Root, args, kwargs).await,
            None if component.objects.is_some() => {
                let method = Some(name.to_owned());
                let request = ObjectRequest::Call {
                    method,
                    args,
                    kwargs,
                };
                self.object_request(None, request).await
            }
            None => Err(Exception::no_attribute(name)),
        }
    }

    fn serves_objects(&self) -> bool {
        self.component.objects.is_some()
    }

    /// An exposed class's instance (a WIT resource) has its class's typed
    /// methods; any other object is asked through the `objects` export.
    async fn object_request(
        &mut self,
        object: Option<&ServiceObject>,
        request: ObjectRequest,
    ) -> Result<Value, Exception> {
        let component = Arc::clone(&self.component);
        let class = object.and_then(|object| {
            let class = component.classes.iter().find(|c| c.name == object.class)?;
            Some((object, class))
        });
        let Some((object, class)) = class else {
            return self.request(Receiver::Served(object), request).await;
        };
        let ObjectRequest::Call {
            method: Some(name),
            args,
            kwargs,
        } = request
        else {
            return Err(Exception::type_error(format!(
                "{} answers calls of its exposed methods only",
                class.name
            )));
        };
        let method = class
            .methods
            .get(&name)
            .ok_or_else(|| Exception::no_attribute(&name))?;
        self.invoke(method, Receiver::Instance(object), args, kwargs)
            .await
    }

    async fn release_object(&mut self, object: ServiceObject) {
        self.forget_abandoned();
        let Some(live) = &mut self.live else {
            return;
        };
        let resource = match live.store.data_mut().objects.remove(object.handle) {
            Some(GuestObject::Resource(resource)) => resource,
            Some(GuestObject::Served(handle)) => return self.release_served(handle).await,
            None => return,
        };
        start_budget(&mut live.store);
        let meter = Arc::clone(&live.store.data().meter);
        let dropping = resource.resource_drop_async(&mut live.store);
        if let Err(error) = on_cpu(&self.component, &meter, dropping).await {
            let error = trap_exception(&error, &mut live.store, &self.component.aliases[0]);
            tracing::warn!(service = %self.component.aliases[0], %error, "an object's destructor failed");
            self.discard_instance();
        }
    }

    async fn on_connect(&mut self, peer: Peer) -> Result<(), Exception> {
        self.peer = Some(peer);
        self.ensure_live().await
    }

    fn executor(&self) -> Option<Executor> {
        Some(self.executor.clone())
    }

    async fn on_disconnect(&mut self) {
        self.forget_abandoned();
        let component = Arc::clone(&self.component);
        if let (Some(_), Some(hook)) = (&self.live, &component.on_disconnect)
            && let Err(error) = self.call_export(hook, Vec::new()).await
        {
            tracing::warn!(service = %component.aliases[0], %error, "on-disconnect failed");
        }
    }
}
