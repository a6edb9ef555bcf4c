//! CPU for guests: a bounded number of guests run at once, guests that
//! compute a lot (a call that has run long, or an instance that keeps
//! running calls back to back) take turns on fewer cores than that (so a
//! short call always finds a core, and the sockets keep one), and each
//! call's running time is metered against its CPU budget.
//!
//! A guest runs only while its future is polled: from the start of a poll
//! until the guest yields (at an epoch tick), awaits the host (a call to its
//! peer, a WASI sleep) or returns. [`OnCpu`] holds a turn for exactly that
//! long, so a guest that waits holds nothing, and measures it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

use super::EPOCH_TICK;

/// After how much running time a call takes turns with the other long ones.
/// Short calls (almost all: microseconds) never wait for a long one's slice.
pub(crate) const LONG_CALL: Duration = EPOCH_TICK;

/// How quickly an instance's recent running time is forgotten: it halves
/// every this long. An instance that has run more than [`LONG_CALL`] of late
/// (many calls of a few milliseconds each, back to back) takes turns with
/// the long calls too, from the first slice of its next call.
const LOAD_HALF_LIFE: Duration = Duration::from_secs(1);

/// The cores guests may use: every guest's running slice takes one of
/// `all`, and a long call's also one of `long`, which has one fewer.
pub(crate) struct Cpu {
    all: Arc<Semaphore>,
    long: Arc<Semaphore>,
}

impl Cpu {
    /// Turns for `cores` guests at once (at least one); long calls get
    /// `cores - 1` of them (at least one).
    pub(crate) fn new(cores: usize) -> Arc<Self> {
        let cores = cores.max(1);
        Arc::new(Cpu {
            all: Arc::new(Semaphore::new(cores)),
            long: Arc::new(Semaphore::new((cores - 1).max(1))),
        })
    }

    /// `future`, which runs guest code metered by `meter`, polled only with a
    /// turn on the CPU.
    pub(crate) fn run<F: Future>(self: &Arc<Self>, meter: Arc<Meter>, future: F) -> OnCpu<F> {
        OnCpu {
            future,
            all: PollSemaphore::new(Arc::clone(&self.all)),
            long: PollSemaphore::new(Arc::clone(&self.long)),
            held_long: None,
            meter,
        }
    }
}

/// How long the guest of one store has run in its current call, and of
/// late.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    inner: Mutex<Metered>,
}

#[derive(Debug, Default)]
struct Metered {
    /// Running time of the call's finished slices.
    used: Duration,
    /// When the slice in progress began.
    running_since: Option<Instant>,
    /// Running time of late, decaying (see [`LOAD_HALF_LIFE`]), as of
    /// `load_at`.
    load: Duration,
    load_at: Option<Instant>,
}

impl Metered {
    /// The running time of late, as of `now`.
    fn load(&self, now: Instant) -> Duration {
        let Some(at) = self.load_at else {
            return Duration::ZERO;
        };
        let halvings = now.duration_since(at).as_secs_f64() / LOAD_HALF_LIFE.as_secs_f64();
        self.load.mul_f64(0.5f64.powf(halvings))
    }
}

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Metered> {
        self.inner.lock().expect("meter poisoned")
    }

    /// Starts a new call at zero.
    pub(crate) fn reset(&self) {
        self.lock().used = Duration::ZERO;
    }

    /// The call's running time so far, and how long the slice in progress
    /// has run.
    pub(crate) fn read(&self) -> (Duration, Duration) {
        let metered = self.lock();
        let slice = metered
            .running_since
            .map_or(Duration::ZERO, |since| since.elapsed());
        (metered.used + slice, slice)
    }

    fn begin_slice(&self) {
        self.lock().running_since = Some(Instant::now());
    }

    fn end_slice(&self) {
        let mut metered = self.lock();
        if let Some(since) = metered.running_since.take() {
            let now = Instant::now();
            let slice = now.duration_since(since);
            metered.used += slice;
            metered.load = metered.load(now) + slice;
            metered.load_at = Some(now);
        }
    }

    /// Whether the guest has run long in this call, or much of late.
    fn is_long(&self) -> bool {
        let metered = self.lock();
        metered.used >= LONG_CALL || metered.load(Instant::now()) >= LONG_CALL
    }
}

pin_project_lite::pin_project! {
    /// A future that runs guest code, polled only with a turn on the CPU.
    pub(crate) struct OnCpu<F> {
        #[pin]
        future: F,
        all: PollSemaphore,
        long: PollSemaphore,
        // A long call's turn among the long ones, held while it waits for a
        // core.
        held_long: Option<OwnedSemaphorePermit>,
        meter: Arc<Meter>,
    }
}

impl<F: Future> Future for OnCpu<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.held_long.is_none() && this.meter.is_long() {
            let permit = ready!(this.long.poll_acquire(cx)).expect("never closed");
            *this.held_long = Some(permit);
        }
        let turn = ready!(this.all.poll_acquire(cx)).expect("never closed");
        this.meter.begin_slice();
        let polled = this.future.poll(cx);
        this.meter.end_slice();
        drop(turn);
        *this.held_long = None;
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy for `slice` at every poll, `slices` times.
    async fn burn(slices: u32, slice: Duration) {
        for _ in 0..slices {
            let start = Instant::now();
            while start.elapsed() < slice {}
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn meters_running_time_not_waiting_time() {
        let cpu = Cpu::new(2);
        let meter = Arc::new(Meter::default());
        let work = async {
            burn(3, Duration::from_millis(5)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        cpu.run(Arc::clone(&meter), work).await;
        let (used, slice) = meter.read();
        assert!(used >= Duration::from_millis(15), "{used:?}");
        assert!(
            used < Duration::from_millis(250),
            "the sleep is not counted: {used:?}"
        );
        assert_eq!(slice, Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_short_calls_back_to_back_count_as_long_until_forgotten() {
        let cpu = Cpu::new(2);
        let meter = Arc::new(Meter::default());
        for _ in 0..4 {
            meter.reset();
            cpu.run(Arc::clone(&meter), burn(1, Duration::from_millis(4)))
                .await;
        }
        assert!(meter.is_long(), "16 ms of calls just now");
        meter.reset();
        tokio::time::sleep(LOAD_HALF_LIFE * 2).await;
        assert!(!meter.is_long(), "forgotten two half-lives later");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn long_calls_always_leave_a_core_to_short_ones() {
        let cpu = Cpu::new(2);
        let burners: Vec<_> = (0..4)
            .map(|_| {
                let run = cpu.run(Arc::default(), burn(40, Duration::from_millis(5)));
                tokio::spawn(run)
            })
            .collect();
        // Once every burner has run long, at most one of them runs at a time.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..50 {
            assert!(
                cpu.all.available_permits() >= 1,
                "a core is kept for short calls"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for burner in burners {
            burner.await.unwrap();
        }
    }
}
