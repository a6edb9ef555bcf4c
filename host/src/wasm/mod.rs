//! Running services as WebAssembly components: one engine with a pooling
//! allocator and an epoch clock, components loaded once and pre-instantiated,
//! and an instance of its own for every connection (or, shared, one for all
//! of them).

mod cache;
mod classes;
mod compiled;
mod component;
mod connections;
mod convert;
mod cpu;
mod fetch;
mod grants;
mod guest_objects;
mod host;
mod instance;
mod linker;
mod memory;
mod method;
mod netrefs;
mod objects;
mod peer;
mod service;
mod shared;

use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::{CacheError, CompileCache, DEFAULT_COMPILE_CACHE_BYTES};
pub use component::{EXPOSED_PREFIX, LoadError, ServiceComponent};
pub use fetch::MAX_FETCHED_ITEMS;
pub use grants::{DirGrant, GrantError, Grants, parse_env};
pub use host::{MAX_OUTPUT_PER_CALL, MAX_OUTPUT_PER_INSTANCE};
pub use memory::default_total_memory;
pub use service::WasmService;
pub use shared::{CallQueue, DEFAULT_MAX_QUEUED_CALLS, DEFAULT_QUEUE_TIMEOUT};

use crate::exception::Exception;
use crate::executor::{Executor, GuestThreads};
use crate::value::Value;
use cpu::Cpu;
use host::HostState;
use memory::{MemoryBudget, PerStore, StoreMemory};

/// How often the epoch clock ticks: the granularity of CPU budgets.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How many instances may live at once (about one per connection). Each
/// reserves address space in the pooling allocator, not memory.
pub const DEFAULT_MAX_INSTANCES: u32 = 1024;

/// How much linear memory one instance may use. A guest that asks for more
/// sees its allocation fail (a Rust guest then traps), and only its own
/// connection is affected.
pub const DEFAULT_MAX_MEMORY: usize = 64 * 1024 * 1024;

/// How much CPU time one call may use before it is stopped with a
/// `TimeoutError`; the connection then gets a fresh instance. Generous for a
/// request handler, short enough that a runaway loop is not left spinning.
pub const DEFAULT_CALL_CPU_BUDGET: Duration = Duration::from_secs(10);

/// How long one call may take, waiting included (a guest asleep in WASI,
/// or waiting on its peer, uses no CPU budget): past it the call fails with
/// a `TimeoutError` and the instance is discarded. Twice RPyC's
/// `sync_request_timeout`: by then the caller has given up.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(60);

/// Core instances one instance of a component may create (a Rust guest has
/// a main module and a few adapter shims). A component that needs more is
/// refused at load. The Rust, Python (componentize-py) and JavaScript
/// (componentize-js) examples load within this and the next two bounds:
/// the conformance tests serve them all.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 40;

/// Linear memories one instance of a component may have: each may grow to
/// the per-memory limit, so this bounds what one instance maps.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;

/// Tables one instance of a component may have.
pub const MAX_TABLES_PER_COMPONENT: u32 = 16;

/// How many core instances, memories and tables the pool keeps per
/// component instance on average: most components need far fewer than the
/// maximum, so the pool is not sized for the worst case.
const CORE_INSTANCES_PER_SLOT: u32 = 8;
const MEMORIES_PER_SLOT: u32 = 2;
const TABLES_PER_SLOT: u32 = 4;

/// The bounds every guest runs under.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// See [`DEFAULT_MAX_INSTANCES`].
    pub max_instances: u32,
    /// See [`DEFAULT_MAX_MEMORY`].
    pub max_memory: usize,
    /// See [`DEFAULT_CALL_CPU_BUDGET`].
    pub call_cpu_budget: Duration,
    /// See [`DEFAULT_CALL_DEADLINE`].
    pub call_deadline: Duration,
    /// The largest value, in bytes, a guest may hand the host in one go (a
    /// call's result, a call to its peer): a `list<u8>` of this length
    /// passes, a larger one traps. The largest frame by default, so that
    /// any value that can travel can be returned.
    pub max_value_size: usize,
    /// The linear memory and tables of every guest of the host together,
    /// in bytes; growth past it fails in the guest that asked. See
    /// [`default_total_memory`].
    pub max_total_memory: usize,
    /// How many guests run at once (calls that have run long take turns on
    /// one fewer, so a short call always finds a core); the machine's cores
    /// by default.
    pub guest_cores: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory: DEFAULT_MAX_MEMORY,
            call_cpu_budget: DEFAULT_CALL_CPU_BUDGET,
            call_deadline: DEFAULT_CALL_DEADLINE,
            max_value_size: crate::connection::DEFAULT_MAX_FRAME,
            max_total_memory: default_total_memory(),
            guest_cores: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The bounds one service's instances run under, within the runtime's
/// [`Limits`]: by default the runtime's own.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceLimits {
    /// See [`Limits::call_cpu_budget`].
    pub call_cpu_budget: Duration,
    /// See [`Limits::call_deadline`].
    pub call_deadline: Duration,
    /// See [`Limits::max_memory`]; at most the runtime's.
    pub max_memory: usize,
}

impl ServiceLimits {
    /// The runtime's bounds.
    pub fn of(runtime: &Runtime) -> Self {
        let limits = runtime.limits();
        ServiceLimits {
            call_cpu_budget: limits.call_cpu_budget,
            call_deadline: limits.call_deadline,
            max_memory: limits.max_memory,
        }
    }
}

/// The engine, the linker and the limits shared by every service of a host.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    memory: Arc<MemoryBudget>,
    cpu: Arc<Cpu>,
    threads: GuestThreads,
    cache: Option<CompileCache>,
}

impl Runtime {
    /// A runtime whose guests run under `limits`, compiling every component
    /// anew. Starts the epoch clock thread and the guests' threads, which end
    /// when the runtime is dropped.
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        Self::with_cache(limits, None)
    }

    /// [`Runtime::new`], keeping compiled components in `cache` (if any) and
    /// loading them from it when they come again.
    pub fn with_cache(limits: Limits, cache: Option<CompileCache>) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * CORE_INSTANCES_PER_SLOT)
            .total_memories(limits.max_instances * MEMORIES_PER_SLOT)
            .total_tables(limits.max_instances * TABLES_PER_SLOT)
            .total_stacks(limits.max_instances)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_memory_size(limits.max_memory);
        warn_if_overcommitted(&limits);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .cache(cache.as_ref().map(CompileCache::wasmtime));
        let engine = Engine::new(&config)?;
        let linker = linker::linker(&engine)?;
        let clock = engine.weak();
        std::thread::Builder::new()
            .name("wasm-rpyc-epoch".into())
            .spawn(move || {
                while let Some(engine) = clock.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                memory: MemoryBudget::new(limits.max_total_memory),
                cpu: Cpu::new(limits.guest_cores),
                threads: GuestThreads::new(limits.guest_cores)?,
                limits,
                cache,
            }),
        })
    }

    /// The bounds guests run under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The compile cache, if the runtime keeps one.
    pub fn compile_cache(&self) -> Option<&CompileCache> {
        self.inner.cache.as_ref()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// A new store's share of the host's memory budget, for a service whose
    /// memories may each grow to `max_memory` bytes.
    pub(crate) fn store_memory(&self, max_memory: usize) -> StoreMemory {
        let bounds = PerStore {
            instances: MAX_CORE_INSTANCES_PER_COMPONENT as usize,
            memories: MAX_MEMORIES_PER_COMPONENT as usize,
            tables: MAX_TABLES_PER_COMPONENT as usize,
        };
        StoreMemory::new(Arc::clone(&self.inner.memory), max_memory, bounds)
    }

    /// Holds what `values` cost the host while they cross into a guest,
    /// from the memory budget; a `MemoryError` when it is spent.
    pub(crate) fn hold_crossing<'a>(
        &self,
        values: impl Iterator<Item = &'a Value>,
    ) -> Result<memory::Held, Exception> {
        let val = size_of::<wasmtime::component::Val>();
        let bytes = values.map(|value| value.weight_with(val, val)).sum();
        self.inner.memory.hold(bytes).map_err(|refusal| {
            Exception::memory_error(format!(
                "the call's arguments would take {} MiB of the host while they cross into \
                     the service; {}",
                bytes >> 20,
                refusal.explain()
            ))
        })
    }

    /// The bytes of linear memory and tables every guest holds now.
    pub fn memory_in_use(&self) -> usize {
        self.inner.memory.used()
    }

    /// What the runtime's guests use now.
    pub fn usage(&self) -> Usage {
        let pool = self.inner.engine.pooling_allocator_metrics();
        let cache = self.inner.cache.as_ref();
        let count = |n: usize| n as u64;
        Usage {
            instances: pool.as_ref().map_or(0, |p| p.component_instances()),
            max_instances: self.inner.limits.max_instances.into(),
            core_instances: pool.as_ref().map_or(0, |p| p.core_instances()),
            memories: pool.as_ref().map_or(0, |p| count(p.memories())),
            tables: pool.as_ref().map_or(0, |p| count(p.tables())),
            memory_bytes: count(self.memory_in_use()),
            max_memory_bytes: count(self.inner.limits.max_total_memory),
            cache_hits: cache.map_or(0, |c| count(c.hits())),
            cache_misses: cache.map_or(0, |c| count(c.misses())),
        }
    }

    /// A handle that does not keep the runtime alive.
    pub(crate) fn downgrade(&self) -> WeakRuntime {
        WeakRuntime(Arc::downgrade(&self.inner))
    }

    /// Where one connection's guest runs: see [`Executor`].
    pub(crate) fn executor(&self) -> Executor {
        self.inner.threads.executor()
    }

    /// The cores guests take turns on.
    pub(crate) fn cpu(&self) -> &Arc<Cpu> {
        &self.inner.cpu
    }
}

/// What a runtime's guests use at one moment (see [`Runtime::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Component instances alive (about one per connection, plus deployed
    /// services).
    pub instances: u64,
    /// How many may be (see [`Limits::max_instances`]).
    pub max_instances: u64,
    /// Core instances alive (a component instance has several).
    pub core_instances: u64,
    /// Linear memories alive.
    pub memories: u64,
    /// Tables alive.
    pub tables: u64,
    /// Bytes of linear memory and tables the guests hold.
    pub memory_bytes: u64,
    /// How many they may hold (see [`Limits::max_total_memory`]).
    pub max_memory_bytes: u64,
    /// Components loaded from the compile cache.
    pub cache_hits: u64,
    /// Components compiled because the cache did not have them.
    pub cache_misses: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances + other.instances,
            max_instances: self.max_instances + other.max_instances,
            core_instances: self.core_instances + other.core_instances,
            memories: self.memories + other.memories,
            tables: self.tables + other.tables,
            memory_bytes: self.memory_bytes + other.memory_bytes,
            max_memory_bytes: self.max_memory_bytes + other.max_memory_bytes,
            cache_hits: self.cache_hits + other.cache_hits,
            cache_misses: self.cache_misses + other.cache_misses,
        }
    }
}

/// A runtime that may be gone (see [`Runtime::downgrade`]).
#[derive(Clone, Debug)]
pub(crate) struct WeakRuntime(Weak<RuntimeInner>);

impl WeakRuntime {
    /// The runtime, if it still lives.
    pub(crate) fn upgrade(&self) -> Option<Runtime> {
        self.0.upgrade().map(|inner| Runtime { inner })
    }
}

/// How many times the budget the instances may map (each at its full
/// memory limit) before the start warns: the budget holds either way, but
/// far past it most instances can never reach their limit. The bundled
/// examples at the defaults (four services of a thousand connections, 64
/// MiB each, against half the machine's memory) stay under it on a machine
/// of 16 GiB or more.
const OVERCOMMIT_WARNING: usize = 32;

/// Warns when the instances could map far more guest memory than the budget
/// allows: growth past the budget then fails in guests, not in the host.
fn warn_if_overcommitted(limits: &Limits) {
    let mappable = (limits.max_instances as usize).saturating_mul(limits.max_memory);
    if mappable > OVERCOMMIT_WARNING.saturating_mul(limits.max_total_memory) {
        tracing::warn!(
            mappable_mib = mappable >> 20,
            budget_mib = limits.max_total_memory >> 20,
            "the instance pool could map far more guest memory than the budget; guests that \
             grow past the budget see their allocations fail"
        );
    }
}
