//! Compiling deployed components: a few at a time, with a bounded queue
//! behind them (a compile takes seconds and gigabytes for a large
//! component), and a cache of compiled components by the SHA-256 of their
//! bytes, bounded in bytes of compiled code. Peers deploying the same bytes
//! at once wait for one compilation; failures are not cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use super::{DEPLOY_SERVICE, DEPLOYED_NAME, DeployLimits};
use crate::exception::Exception;
use crate::metrics;
use crate::wasm::{Runtime, ServiceComponent};

/// Compiles deployed components, and keeps them.
pub(super) struct Compiler {
    runtime: Runtime,
    limits: DeployLimits,
    cache: Mutex<Cache>,
    /// A turn to compile.
    turns: Semaphore,
    /// Compiles running or waiting for a turn.
    pending: AtomicUsize,
}

/// Compiled components by the digest of their bytes. An entry is made before
/// its component is compiled, so that peers deploying the same bytes at once
/// wait for one compilation.
#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Cached>,
    /// Counts lookups: an entry's `used` is the count at its last lookup.
    clock: u64,
}

struct Cached {
    component: Arc<OnceCell<ServiceComponent>>,
    used: u64,
    /// The bytes of its compiled code, once compiled.
    size: usize,
}

/// A compile's place among the pending ones, given back when dropped.
struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Compiler {
    /// The runtime the components it compiles run in.
    pub(super) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub(super) fn new(runtime: Runtime, limits: DeployLimits) -> Self {
        Compiler {
            runtime,
            turns: Semaphore::new(limits.concurrent_compiles.max(1)),
            limits,
            cache: Mutex::new(Cache::default()),
            pending: AtomicUsize::new(0),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().expect("never poisoned")
    }

    /// How many compiled components the cache holds, and their bytes.
    pub(super) fn cached(&self) -> (usize, usize) {
        let cache = self.cache();
        let compiled = cache.entries.values().filter(|c| c.component.initialized());
        compiled.fold((0, 0), |(count, bytes), c| (count + 1, bytes + c.size))
    }

    /// The component `bytes` make, compiled once per content, and the short
    /// tag (the digest's first 8 hex digits) that names its classes.
    pub(super) async fn compile(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(ServiceComponent, String), Exception> {
        let limit = self.limits.max_component_size;
        if bytes.len() > limit {
            return Err(Exception::value_error(format!(
                "the component is {} bytes; this host takes components of at most {limit} bytes",
                bytes.len()
            )));
        }
        // Tens of milliseconds for a large component: off the async threads.
        let (digest, bytes) = tokio::task::spawn_blocking(move || {
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            (digest, bytes)
        })
        .await
        .map_err(|error| Exception::runtime_error(format!("cannot deploy: {error}")))?;
        let tag = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let cell = self.cache_entry(digest);
        if let Some(metrics) = metrics::recording() {
            metrics.deploy_cache_lookup(cell.initialized());
        }
        let compiled = cell
            .get_or_try_init(|| self.compile_in_turn(&bytes, digest))
            .await;
        match compiled {
            Ok(component) => {
                self.settle(digest, &cell, component.compiled_size());
                if let Some(metrics) = metrics::recording() {
                    let (components, bytes) = self.cached();
                    metrics.deploy_cache_holds(components, bytes);
                }
                Ok((component.clone(), tag))
            }
            Err(exception) => {
                let mut cache = self.cache();
                if cache
                    .entries
                    .get(&digest)
                    .is_some_and(|c| Arc::ptr_eq(&c.component, &cell))
                {
                    cache.entries.remove(&digest);
                }
                Err(exception)
            }
        }
    }

    /// Compiles `bytes` when a turn comes; refused at once when as many
    /// compiles as may wait already do.
    async fn compile_in_turn(
        &self,
        bytes: &[u8],
        digest: [u8; 32],
    ) -> Result<ServiceComponent, Exception> {
        let most = self.limits.concurrent_compiles.max(1) + self.limits.queued_compiles;
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        let _pending = Pending(&self.pending);
        if before >= most {
            return Err(Exception::runtime_error(format!(
                "{DEPLOY_SERVICE} is at capacity: {before} components are being compiled or \
                     wait to be; try again later"
            )));
        }
        let _turn = self.turns.acquire().await.expect("never closed");
        ServiceComponent::from_hashed_bytes(&self.runtime, DEPLOYED_NAME, bytes, Some(digest))
            .await
            .map_err(|error| Exception::value_error(format!("cannot deploy: {error}")))
    }

    /// The cache's entry for `digest`, made if there is none.
    fn cache_entry(&self, digest: [u8; 32]) -> Arc<OnceCell<ServiceComponent>> {
        let mut cache = self.cache();
        cache.clock += 1;
        let now = cache.clock;
        let entry = cache.entries.entry(digest).or_insert_with(|| Cached {
            component: Arc::new(OnceCell::new()),
            used: now,
            size: 0,
        });
        entry.used = now;
        Arc::clone(&entry.component)
    }

    /// Records the compiled size of `digest`'s entry, then evicts the least
    /// recently deployed components until the cache fits its bytes (the new
    /// one too, if it alone does not fit).
    fn settle(&self, digest: [u8; 32], cell: &Arc<OnceCell<ServiceComponent>>, size: usize) {
        let mut cache = self.cache();
        match cache.entries.get_mut(&digest) {
            Some(entry) if Arc::ptr_eq(&entry.component, cell) => entry.size = size,
            _ => return,
        }
        loop {
            let compiled = cache
                .entries
                .iter()
                .filter(|(_, c)| c.component.initialized());
            let total: usize = compiled.clone().map(|(_, c)| c.size).sum();
            if total <= self.limits.cache_bytes {
                return;
            }
            let oldest = compiled.min_by_key(|(_, c)| c.used).map(|(d, _)| *d);
            match oldest {
                Some(oldest) => cache.entries.remove(&oldest),
                None => return,
            };
        }
    }
}
