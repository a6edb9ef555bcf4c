//! The runtimes' instances, guest memory and compile cache, read at each
//! scrape.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::wasm::{Runtime, Usage, WeakRuntime};

/// The runtimes watched, while they live. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(super) struct Runtimes(Arc<Mutex<Vec<WeakRuntime>>>);

impl Runtimes {
    /// Adds `runtime` to those reported.
    pub(super) fn watch(&self, runtime: &Runtime) {
        let mut runtimes = self.0.lock().expect("never poisoned");
        runtimes.retain(|weak| weak.upgrade().is_some());
        runtimes.push(runtime.downgrade());
    }

    /// What the live runtimes use, added up.
    fn usage(&self) -> Usage {
        let runtimes = self.0.lock().expect("never poisoned").clone();
        runtimes
            .iter()
            .filter_map(WeakRuntime::upgrade)
            .fold(Usage::default(), |sum, runtime| sum + runtime.usage())
    }
}

impl Collector for Runtimes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let usage = self.usage();
        let gauges = [
            (
                "instances",
                "Guest instances alive (about one per connection, and one per deployed service)",
                None,
                usage.instances,
            ),
            (
                "instances_max",
                "Guest instances the pooling allocator holds room for",
                None,
                usage.max_instances,
            ),
            (
                "pool_core_instances",
                "Core instances alive in the pooling allocator",
                None,
                usage.core_instances,
            ),
            (
                "pool_memories",
                "Linear memories alive in the pooling allocator",
                None,
                usage.memories,
            ),
            (
                "pool_tables",
                "Tables alive in the pooling allocator",
                None,
                usage.tables,
            ),
            (
                "guest_memory",
                "Linear memory and tables the guests hold",
                Some(Unit::Bytes),
                usage.memory_bytes,
            ),
            (
                "guest_memory_max",
                "Linear memory and tables the guests may hold together",
                Some(Unit::Bytes),
                usage.max_memory_bytes,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric =
                encoder.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let counters = [
            (
                "compile_cache_hits",
                "Components loaded from the compile cache",
                usage.cache_hits,
            ),
            (
                "compile_cache_misses",
                "Components compiled because the compile cache did not have them",
                usage.cache_misses,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
