//! The sockets' threads: served connections run on a few threads, one per
//! core, each a single-threaded tokio runtime, and a connection stays on the
//! thread it was given. Its reading, serving and writing then hand each
//! other work without waking another thread, and the thread that waits for
//! its next frame is the one that polls its socket. On a multi-threaded
//! runtime every such handoff instead wakes an idle worker to steal the
//! connection's task (a system call and a core taken from the peer), and
//! the worker that spins for the next frame may not be the one that polls
//! the sockets. Guests that compute move to the guest threads
//! ([`crate::executor`]), so no connection holds its thread for long.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::runtime::{Builder, Handle};

/// The threads connections are served on.
pub(super) struct SocketThreads {
    threads: Vec<SocketThread>,
    /// How many listeners were given a thread, to spread them.
    listeners: AtomicUsize,
}

/// One of them: its runtime, and how many connections it serves.
struct SocketThread {
    runtime: Handle,
    connections: Arc<AtomicUsize>,
}

/// A connection's place on a thread, given back when dropped.
pub(super) struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SocketThreads {
    /// The process's sockets' threads, one per core, started at first use;
    /// `None` if they could not be started (connections are then served on
    /// the caller's runtime).
    pub(super) fn shared() -> Option<&'static SocketThreads> {
        static SHARED: OnceLock<Option<SocketThreads>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                SocketThreads::start(cores)
                    .inspect_err(|error| {
                        tracing::warn!(%error, "cannot start the sockets' threads; serving on the caller's");
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Starts `count` threads (at least one). They run until the process
    /// ends.
    fn start(count: usize) -> io::Result<Self> {
        let threads = (0..count.max(1))
            .map(|n| {
                let runtime = Builder::new_current_thread().enable_all().build()?;
                let handle = runtime.handle().clone();
                std::thread::Builder::new()
                    .name(format!("wasm-rpyc-sockets-{n}"))
                    .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
                Ok(SocketThread {
                    runtime: handle,
                    connections: Arc::default(),
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(SocketThreads {
            threads,
            listeners: AtomicUsize::new(0),
        })
    }

    /// The thread a new listener accepts on: each in turn.
    pub(super) fn for_listener(&self) -> &Handle {
        let turn = self.listeners.fetch_add(1, Ordering::Relaxed);
        &self.threads[turn % self.threads.len()].runtime
    }

    /// The thread serving the fewest connections, and a seat on it for one
    /// more. Among the least busy, the calling thread, which is awake.
    pub(super) fn least_busy(&self) -> (&Handle, Seat) {
        let here = Handle::try_current().ok().map(|handle| handle.id());
        let thread = self
            .threads
            .iter()
            .min_by_key(|thread| {
                let elsewhere = here != Some(thread.runtime.id());
                (thread.connections.load(Ordering::Relaxed), elsewhere)
            })
            .expect("at least one thread");
        thread.connections.fetch_add(1, Ordering::Relaxed);
        (&thread.runtime, Seat(Arc::clone(&thread.connections)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_busy_thread_and_leave_it_when_done() {
        let threads = SocketThreads::start(2).unwrap();
        let (first, a) = threads.least_busy();
        let (second, b) = threads.least_busy();
        assert_ne!(first.id(), second.id(), "spread over both");
        drop(a);
        let (third, _c) = threads.least_busy();
        assert_eq!(third.id(), first.id(), "the seat given back is taken again");
        drop(b);
    }

    #[test]
    fn among_the_least_busy_the_calling_thread_is_chosen() {
        let threads: &'static SocketThreads = Box::leak(Box::new(SocketThreads::start(2).unwrap()));
        for thread in &threads.threads {
            let picked = futures::executor::block_on(thread.runtime.spawn(async move {
                let (picked, _seat) = threads.least_busy();
                picked.id()
            }))
            .unwrap();
            assert_eq!(picked, thread.runtime.id());
        }
    }

    #[test]
    fn listeners_take_the_threads_in_turn() {
        let threads = SocketThreads::start(2).unwrap();
        let (a, b, c) = (
            threads.for_listener().id(),
            threads.for_listener().id(),
            threads.for_listener().id(),
        );
        assert_ne!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn a_connections_task_runs_on_its_thread() {
        let threads = SocketThreads::start(1).unwrap();
        let (runtime, _seat) = threads.least_busy();
        let name = futures::executor::block_on(
            runtime.spawn(async { std::thread::current().name().map(str::to_owned) }),
        )
        .unwrap();
        assert_eq!(name.as_deref(), Some("wasm-rpyc-sockets-0"));
    }
}
