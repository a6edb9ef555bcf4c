//! Guest memory: one budget for the whole host that every store's growth
//! draws from, and each store's share of it. A guest that grows past its own
//! limit or past what the host has left sees the growth fail (its allocator
//! returns null, Python raises `MemoryError`); the call then fails with a
//! `MemoryError` and the host carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

/// Bytes one table element costs the host (a pointer, as wasmtime keeps
/// them).
const TABLE_ELEMENT_BYTES: usize = size_of::<usize>();

/// What the total budget defaults to when the machine's memory cannot be read.
const FALLBACK_TOTAL_MEMORY: usize = 4 << 30;

/// The default host-wide budget of guest memory: half the machine's memory
/// (the host's own buffers, queues and compiled code need the rest), or
/// 4 GiB where the machine's memory cannot be read.
pub fn default_total_memory() -> usize {
    machine_memory().map_or(FALLBACK_TOTAL_MEMORY, |bytes| bytes / 2)
}

/// The machine's physical memory, where it can be read.
fn machine_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The bytes of linear memory and tables every guest of a host holds,
/// against the host's total.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    total: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub(crate) fn new(total: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            total,
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `bytes` from the budget; `false` (and nothing taken) when that
    /// would exceed it.
    fn draw(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|after| *after <= self.total)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// The bytes every guest holds now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Holds `bytes` of the budget for a while (a call's arguments while
    /// they cross into a guest: each byte of a byte string is a dynamic
    /// value meanwhile); given back when the hold is dropped.
    pub(crate) fn hold(self: &Arc<Self>, bytes: usize) -> Result<Held, Refusal> {
        if !self.draw(bytes) {
            return Err(Refusal::Host(self.total));
        }
        Ok(Held {
            budget: Arc::clone(self),
            bytes,
        })
    }
}

/// Bytes held of the budget; given back when dropped.
pub(crate) struct Held {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// Why a guest's growth was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past the limit of one memory of one instance (the bytes).
    Instance(usize),
    /// Past what the host's budget has left (its total).
    Host(usize),
}

impl Refusal {
    /// What the caller of the failed call is told.
    pub(crate) fn explain(self) -> String {
        match self {
            Refusal::Instance(limit) => format!(
                "the service ran out of memory: an instance may use {} MiB",
                limit >> 20
            ),
            Refusal::Host(total) => format!(
                "the service ran out of memory: the host's guests may use {} MiB in all, and \
                 that is taken",
                total >> 20
            ),
        }
    }
}

/// One store's memory: what it drew from the host's budget (given back when
/// the store goes), its own limits, and the last growth refused.
pub(crate) struct StoreMemory {
    budget: Arc<MemoryBudget>,
    max_memory: usize,
    drawn: usize,
    refused: Option<Refusal>,
    bounds: PerStore,
}

/// How many core instances, memories and tables one store may create.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerStore {
    pub(crate) instances: usize,
    pub(crate) memories: usize,
    pub(crate) tables: usize,
}

impl StoreMemory {
    pub(crate) fn new(budget: Arc<MemoryBudget>, max_memory: usize, bounds: PerStore) -> Self {
        StoreMemory {
            budget,
            max_memory,
            drawn: 0,
            refused: None,
            bounds,
        }
    }

    /// The last growth refused since the last call to this.
    pub(crate) fn take_refusal(&mut self) -> Option<Refusal> {
        self.refused.take()
    }

    /// Grows this store's share by `bytes` if its limit and the budget allow.
    fn grow(&mut self, bytes: usize, limit_ok: bool) -> bool {
        if !limit_ok {
            self.refused = Some(Refusal::Instance(self.max_memory));
            return false;
        }
        if !self.budget.draw(bytes) {
            self.refused = Some(Refusal::Host(self.budget.total));
            return false;
        }
        self.drawn += bytes;
        true
    }
}

impl ResourceLimiter for StoreMemory {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current), desired <= self.max_memory))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = desired.saturating_sub(current) * TABLE_ELEMENT_BYTES;
        Ok(self.grow(bytes, true))
    }

    fn instances(&self) -> usize {
        self.bounds.instances
    }

    fn memories(&self) -> usize {
        self.bounds.memories
    }

    fn tables(&self) -> usize {
        self.bounds.tables
    }
}

impl Drop for StoreMemory {
    fn drop(&mut self) {
        self.budget.give_back(self.drawn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: PerStore = PerStore {
        instances: 4,
        memories: 2,
        tables: 2,
    };

    #[test]
    fn stores_draw_from_one_budget_and_give_back_when_dropped() {
        let budget = MemoryBudget::new(100);
        let mut a = StoreMemory::new(Arc::clone(&budget), 80, BOUNDS);
        let mut b = StoreMemory::new(Arc::clone(&budget), 80, BOUNDS);
        assert!(a.memory_growing(0, 60, None).unwrap());
        assert!(!b.memory_growing(0, 60, None).unwrap());
        assert_eq!(b.take_refusal(), Some(Refusal::Host(100)));
        assert!(b.memory_growing(0, 40, None).unwrap());
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.memory_growing(40, 80, None).unwrap());
        assert!(!b.memory_growing(80, 81, None).unwrap());
        assert_eq!(b.take_refusal(), Some(Refusal::Instance(80)));
        assert_eq!(b.take_refusal(), None);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn tables_count_against_the_budget() {
        let budget = MemoryBudget::new(10 * TABLE_ELEMENT_BYTES);
        let mut store = StoreMemory::new(Arc::clone(&budget), 0, BOUNDS);
        assert!(store.table_growing(0, 10, None).unwrap());
        assert!(!store.table_growing(10, 11, None).unwrap());
        assert_eq!(store.take_refusal(), Some(Refusal::Host(budget.total)));
    }
}
