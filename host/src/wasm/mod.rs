//! Running services as WebAssembly components: one engine with a pooling
//! allocator and an epoch clock, components loaded once and pre-instantiated,
//! and an instance of its own for every connection.

mod classes;
mod component;
mod convert;
mod fetch;
mod grants;
mod host;
mod instance;
mod method;
mod netrefs;
mod peer;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use classes::MAX_GUEST_OBJECTS;
pub use component::{EXPOSED_PREFIX, LoadError, ServiceComponent};
pub use fetch::MAX_FETCHED_ITEMS;
pub use grants::{DirGrant, GrantError, Grants, parse_env};
pub use instance::WasmService;
pub use netrefs::MAX_GUEST_NETREFS;

use host::HostState;

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

/// Core instances, memories and tables a component may need per instance of
/// it (a Rust guest has a main module plus a few adapter shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;

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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory: DEFAULT_MAX_MEMORY,
            call_cpu_budget: DEFAULT_CALL_CPU_BUDGET,
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
}

impl Runtime {
    /// A runtime whose guests run under `limits`. Starts the epoch clock
    /// thread, which ends when the runtime is dropped.
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * CORE_INSTANCES_PER_COMPONENT)
            .total_memories(limits.max_instances * MEMORIES_PER_COMPONENT)
            .total_tables(limits.max_instances * TABLES_PER_COMPONENT)
            .total_stacks(limits.max_instances)
            .max_memory_size(limits.max_memory);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let linker = host::linker(&engine)?;
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
                limits,
            }),
        })
    }

    /// The bounds guests run under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// The CPU budget of one call, in epoch ticks (at least one).
    pub(crate) fn budget_ticks(&self) -> u64 {
        (self.inner.limits.call_cpu_budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}
