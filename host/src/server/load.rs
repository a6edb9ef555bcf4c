//! [`Load`]: how many connections a server serves, read while it runs (the
//! fleet's records say it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many connections a server serves now, and may at once. Cheap to
/// clone: clones read the same server.
#[derive(Clone, Debug)]
pub struct Load {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Load {
    /// None served yet, of at most `max`.
    pub(super) fn new(max: usize) -> Self {
        Load {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Connections served now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections it may serve at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Counts one more connection served until the guard is dropped.
    pub(super) fn serving(&self) -> Serving {
        self.open.fetch_add(1, Ordering::Relaxed);
        Serving(Arc::clone(&self.open))
    }
}

/// One connection counted in a [`Load`] while it lives.
pub(super) struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
