//! Where a service's code runs. A call runs on its connection's own task
//! while it is short (almost all calls: microseconds, with no thread to
//! wake); once the service runs long, its connection's serving moves to the
//! guest threads, a tokio runtime of their own, and comes back when it is
//! short again. So a guest computing never holds up the sockets' threads,
//! and a short call pays no hop between threads.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio_util::task::AbortOnDropHandle;

thread_local! {
    /// Set on the guest threads.
    static ON_GUEST_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is one of the guest threads.
pub(crate) fn on_guest_thread() -> bool {
    ON_GUEST_THREAD.get()
}

/// The guest threads: a multi-threaded tokio runtime, one worker per core
/// guests may use. Dropping it stops its workers without waiting for them,
/// so it may be dropped anywhere, inside a runtime too.
pub(crate) struct GuestThreads {
    runtime: Option<Runtime>,
}

impl GuestThreads {
    /// `cores` workers (at least one).
    pub(crate) fn new(cores: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(cores.max(1))
            .thread_name("wasm-rpyc-guest")
            .on_thread_start(|| {
                ON_GUEST_THREAD.set(true);
                lower_priority();
            })
            .enable_all()
            .build()?;
        Ok(GuestThreads {
            runtime: Some(runtime),
        })
    }

    /// An executor for one connection's service.
    pub(crate) fn executor(&self) -> Executor {
        let handle = self.runtime.as_ref().expect("present until dropped");
        Executor {
            inner: Arc::new(Inner {
                threads: handle.handle().clone(),
                long: AtomicBool::new(false),
                driven: AtomicBool::new(false),
            }),
        }
    }
}

/// How much lower than the sockets' threads the guest threads run, as a
/// nice value (the lowest priority): when both want a core, the sockets'
/// threads, and the short calls they run, get it at once, so a guest
/// computing delays a short call by microseconds, not by the scheduler's
/// slice of milliseconds (at 10, two guests computing still put one short
/// call in a hundred 4 ms late). Guests that compute get the cores the
/// sockets leave; when short calls keep every core busy, they slow down.
#[cfg(target_os = "linux")]
const GUEST_NICENESS: i32 = 19;

/// Lowers the current thread's priority by [`GUEST_NICENESS`], where the
/// system lets a thread have a priority of its own (Linux); elsewhere the
/// guest threads run at the sockets' priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = Some(rustix::thread::gettid());
        let niceness = getpriority_process(thread).unwrap_or(0) + GUEST_NICENESS;
        if let Err(error) = setpriority_process(thread, niceness) {
            tracing::warn!(%error, "cannot lower the guest threads' priority");
        }
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where one connection's service runs (see the module's doc). Cheap to
/// clone; made by the services that compute ([`crate::wasm::WasmService`]).
#[derive(Clone, Debug)]
pub struct Executor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    threads: Handle,
    /// The service has run long of late.
    long: AtomicBool,
    /// [`Executor::drive`] is running the service, so it can move.
    driven: AtomicBool,
}

impl Executor {
    /// Records whether the service has run long of late.
    pub(crate) fn set_long(&self, long: bool) {
        self.inner.long.store(long, Ordering::Release);
    }

    fn is_long(&self) -> bool {
        self.inner.long.load(Ordering::Acquire)
    }

    /// Whether code of the service that has run long must wait to move to
    /// the guest threads rather than run here: it is on another thread, and
    /// [`Executor::drive`] will move it as soon as it returns pending.
    pub(crate) fn must_move(&self) -> bool {
        self.inner.driven.load(Ordering::Acquire) && !on_guest_thread()
    }

    /// Runs `serving` (a connection's serving of its service, boxed so it
    /// can move without being copied) to the end:
    /// polled here while the service is short, on the guest threads while
    /// it runs long. It moves only between polls, and is polled at once
    /// where it lands, so everything it waits on learns its new task.
    pub(crate) async fn drive<F>(&self, mut serving: Pin<Box<F>>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let _driven = Driven::new(&self.inner.driven);
        loop {
            if poll_until(&mut serving, || self.is_long()).await {
                return;
            }
            let executor = self.clone();
            let there = async move {
                let done = poll_until(&mut serving, || !executor.is_long()).await;
                (serving, done)
            };
            // Aborted with the connection's task.
            let moved = AbortOnDropHandle::new(self.inner.threads.spawn(there));
            match moved.await {
                Ok((_, true)) => return,
                Ok((back, false)) => serving = back,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // The guest threads were shut down: the host is stopping.
                Err(_) => return,
            }
        }
    }
}

/// Polls `serving` until it finishes (`true`) or, pending, `must_leave`
/// says it must go elsewhere (`false`).
async fn poll_until<F: Future<Output = ()>>(
    serving: &mut Pin<Box<F>>,
    must_leave: impl Fn() -> bool,
) -> bool {
    poll_fn(|cx| match serving.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(true),
        Poll::Pending if must_leave() => Poll::Ready(false),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Marks an executor driven for as long as it lives.
struct Driven<'a>(&'a AtomicBool);

impl<'a> Driven<'a> {
    fn new(driven: &'a AtomicBool) -> Self {
        driven.store(true, Ordering::Release);
        Driven(driven)
    }
}

impl Drop for Driven<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serving that records where each of its polls ran, marking itself
    /// long, then short again.
    async fn long_then_short(executor: Executor) -> Vec<bool> {
        let mut seen = vec![on_guest_thread()];
        executor.set_long(true);
        tokio::task::yield_now().await;
        seen.push(on_guest_thread());
        tokio::task::yield_now().await;
        seen.push(on_guest_thread());
        executor.set_long(false);
        tokio::task::yield_now().await;
        seen.push(on_guest_thread());
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn serving_moves_to_the_guest_threads_while_long_and_back() {
        let threads = GuestThreads::new(1).unwrap();
        let executor = threads.executor();
        assert!(!executor.must_move(), "not driven: runs where it is");
        let (seen, recorded) = tokio::sync::oneshot::channel();
        let serving = {
            let executor = executor.clone();
            async move {
                assert!(executor.must_move(), "driven, off the guest threads");
                let _ = seen.send(long_then_short(executor).await);
            }
        };
        executor.drive(Box::pin(serving)).await;
        assert_eq!(recorded.await.unwrap(), [false, true, true, false]);
        assert!(!executor.must_move(), "no longer driven");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_on_the_guest_threads_reaches_the_connection_task() {
        let threads = GuestThreads::new(1).unwrap();
        let executor = threads.executor();
        let serving = {
            let executor = executor.clone();
            async move {
                executor.set_long(true);
                tokio::task::yield_now().await;
                assert!(on_guest_thread());
                panic!("the service panicked");
            }
        };
        let driving = tokio::spawn(async move { executor.drive(Box::pin(serving)).await });
        let error = driving.await.unwrap_err();
        assert!(error.is_panic());
    }
}
