//! CPU for guests: a bounded number of guests run at once, guests that
//! compute a lot (a call that has run long, or an instance that keeps
//! running calls back to back) take turns on fewer cores than that (so a
//! short call always finds a core, and the sockets keep one), and each
//! call's running time is metered against its CPU budget.
//!
//! Guests that run long run on the guest threads, not on the sockets'
//! (see [`crate::executor`]).
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
use crate::executor::{Executor, on_guest_thread};

/// After how much running time a call takes turns with the other long ones.
/// Short calls (almost all: microseconds) never wait for a long one's slice.
pub(crate) const LONG_CALL: Duration = EPOCH_TICK;

/// How quickly an instance's recent running time is forgotten: it halves
/// every this long. An instance that has run more than [`LONG_CALL`] of late
/// (many calls of a few milliseconds each, back to back) takes turns with
/// the long calls too, from the first slice of its next call.
const LOAD_HALF_LIFE: Duration = Duration::from_secs(1);

/// How long a guest's slices (its runs between two waits) last on average,
/// of late, before it moves off the sockets' threads with the calls that
/// have run long: a short call's are microseconds.
const LONG_SLICE: Duration = Duration::from_millis(1);

/// A new slice weighs one part in this many in the running average of
/// slices.
const SLICE_AVERAGE_PARTS: u32 = 8;

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
/// late; its executor learns whether that is long.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    inner: Mutex<Metered>,
    executor: Option<Executor>,
}

#[derive(Debug, Default)]
struct Metered {
    /// Wall-clock time of the call's finished slices: whether it has run
    /// long, and when it yields, go by the time it holds a turn.
    used: Duration,
    /// CPU time of the call's finished slices: its budget goes by it.
    used_cpu: Duration,
    /// When the slice in progress began, by the clock and, on the guest
    /// threads, by [`thread_clock`].
    running_since: Option<(Instant, Option<Duration>)>,
    /// Running time of late, decaying (see [`LOAD_HALF_LIFE`]), as of
    /// `load_at`.
    load: Duration,
    load_at: Option<Instant>,
    /// The running average of slices.
    slice_average: Duration,
}

/// How long the current thread has run: its CPU time on Linux, so a
/// guest's budget is not charged for the time the system gave its core to
/// others (the guest threads run at the lowest priority); the monotonic
/// clock elsewhere. Only differences on one thread mean anything. Read on
/// the guest threads only, at a slice's start and end: reading it costs a
/// system call, and on the sockets' threads (at the normal priority) a
/// slice's CPU time is its wall-clock time.
fn thread_clock() -> Duration {
    #[cfg(target_os = "linux")]
    {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

impl Metered {
    /// Whether the guest's slices are long: its call has run long, or its
    /// slices have lasted long of late. Such a guest runs on the guest
    /// threads.
    fn runs_long_slices(&self) -> bool {
        self.used >= LONG_CALL || self.slice_average >= LONG_SLICE
    }

    /// The running time of late, as of `now`.
    fn load(&self, now: Instant) -> Duration {
        let Some(at) = self.load_at else {
            return Duration::ZERO;
        };
        let halvings = now.duration_since(at).as_secs_f64() / LOAD_HALF_LIFE.as_secs_f64();
        self.load.mul_f64(0.5f64.powf(halvings))
    }

    /// Whether the running time of late reaches `limit`; the clock is read
    /// only when it might (the load only decays).
    fn load_reaches(&self, limit: Duration) -> bool {
        self.load >= limit && self.load(Instant::now()) >= limit
    }

    /// Adds a slice of `slice` that ended at `now` to the load of late.
    /// Slices microseconds apart (the usual) are summed as they come; the
    /// load decays once [`DECAY_STEP`] has passed, which misweighs a slice
    /// by at most that step's decay (a few in ten thousand).
    fn add_load(&mut self, slice: Duration, now: Instant) {
        match self.load_at {
            Some(at) if now.duration_since(at) < DECAY_STEP => self.load += slice,
            _ => {
                self.load = self.load(now) + slice;
                self.load_at = Some(now);
            }
        }
    }
}

/// How often, at most, the load of late is decayed (see
/// [`Metered::add_load`]).
const DECAY_STEP: Duration = Duration::from_millis(1);

impl Meter {
    /// A meter for a guest run by `executor`.
    pub(crate) fn on(executor: Executor) -> Self {
        Meter {
            inner: Mutex::default(),
            executor: Some(executor),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Metered> {
        self.inner.lock().expect("meter poisoned")
    }

    /// Starts a new call at zero.
    pub(crate) fn reset(&self) {
        let mut metered = self.lock();
        metered.used = Duration::ZERO;
        metered.used_cpu = Duration::ZERO;
    }

    /// The call's CPU time so far, at most (the slice in progress counted
    /// by the clock), and how long (wall-clock) that slice has run.
    pub(crate) fn read(&self) -> (Duration, Duration) {
        let metered = self.lock();
        let slice = metered
            .running_since
            .map_or(Duration::ZERO, |(since, _)| since.elapsed());
        (metered.used_cpu + slice, slice)
    }

    /// The call's CPU time so far, exactly: unlike [`Meter::read`], the
    /// slice in progress on a guest thread counts only the time the thread
    /// ran. Read on the thread running the slice (as the epoch callback
    /// is).
    pub(crate) fn read_cpu(&self) -> Duration {
        let metered = self.lock();
        let slice = match metered.running_since {
            Some((_, Some(since_cpu))) => thread_clock().saturating_sub(since_cpu),
            Some((since, None)) => since.elapsed(),
            None => Duration::ZERO,
        };
        metered.used_cpu + slice
    }

    fn begin_slice(&self) {
        let since_cpu = on_guest_thread().then(thread_clock);
        self.lock().running_since = Some((Instant::now(), since_cpu));
    }

    fn end_slice(&self) {
        let mut metered = self.lock();
        if let Some((since, since_cpu)) = metered.running_since.take() {
            let now = Instant::now();
            let slice = now.duration_since(since);
            metered.used_cpu +=
                since_cpu.map_or(slice, |since| thread_clock().saturating_sub(since));
            metered.used += slice;
            metered.add_load(slice, now);
            metered.slice_average = metered.slice_average
                - metered.slice_average / SLICE_AVERAGE_PARTS
                + slice / SLICE_AVERAGE_PARTS;
        }
        if let Some(executor) = &self.executor {
            executor.set_long(metered.runs_long_slices());
        }
    }

    /// Whether the guest's slices are long (see [`Metered::runs_long_slices`]).
    fn runs_long_slices(&self) -> bool {
        self.lock().runs_long_slices()
    }

    /// Whether the guest's slices are long and it must move to the guest
    /// threads before it runs again (see [`Executor::must_move`]); its
    /// executor then learns that it runs long.
    fn must_move(&self) -> bool {
        match &self.executor {
            Some(executor) if executor.must_move() && self.runs_long_slices() => {
                executor.set_long(true);
                true
            }
            _ => false,
        }
    }

    /// Whether the guest has run long in this call, or much of late.
    fn is_long(&self) -> bool {
        let metered = self.lock();
        metered.used >= LONG_CALL || metered.load_reaches(LONG_CALL)
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
        if this.meter.must_move() {
            // The connection's task moves it between two polls.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
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

    /// Busy for `slice` of the thread's running time at every poll,
    /// `slices` times.
    async fn burn(slices: u32, slice: Duration) {
        for _ in 0..slices {
            let start = thread_clock();
            while thread_clock() - start < slice {}
            tokio::task::yield_now().await;
        }
    }

    /// One call that is busy for `slice`, metered by `meter`.
    async fn one_call(cpu: &Arc<Cpu>, meter: &Arc<Meter>, slice: Duration) {
        meter.reset();
        cpu.run(Arc::clone(meter), burn(1, slice)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn meters_running_time_not_waiting_time() {
        let cpu = Cpu::new(2);
        let meter = Arc::new(Meter::default());
        // Off the guest threads a slice counts by the clock: 15 ms of
        // running takes longer on a loaded machine, but not the second of
        // the sleep.
        let sleep = Duration::from_secs(1);
        let work = async {
            burn(3, Duration::from_millis(5)).await;
            tokio::time::sleep(sleep).await;
        };
        cpu.run(Arc::clone(&meter), work).await;
        let (used, slice) = meter.read();
        assert!(used >= Duration::from_millis(15), "{used:?}");
        assert!(used < sleep, "the sleep is not counted: {used:?}");
        assert_eq!(slice, Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_short_calls_back_to_back_count_as_long_until_forgotten() {
        let cpu = Cpu::new(2);
        let meter = Arc::new(Meter::default());
        for _ in 0..4 {
            one_call(&cpu, &meter, Duration::from_millis(4)).await;
        }
        assert!(meter.is_long(), "16 ms of calls just now");
        meter.reset();
        // The calls' slices count by the clock: on a loaded machine 16 ms of
        // running may have taken several times that. Halved often enough to
        // fall below a long call, and once more, it is forgotten.
        let load = meter.lock().load(Instant::now());
        let halvings = (load.as_secs_f64() / LONG_CALL.as_secs_f64())
            .log2()
            .max(0.0)
            + 1.0;
        tokio::time::sleep(LOAD_HALF_LIFE.mul_f64(halvings)).await;
        assert!(
            !meter.is_long(),
            "{load:?} of late forgotten {halvings:.1} half-lives later"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_slices_run_here_and_long_ones_move() {
        let cpu = Cpu::new(2);
        let threads = crate::executor::GuestThreads::new(1).unwrap();
        let meter = Arc::new(Meter::on(threads.executor()));
        for _ in 0..50 {
            one_call(&cpu, &meter, Duration::from_micros(20)).await;
        }
        // A call the system preempted lasts milliseconds by the clock (a
        // loaded machine does so now and then): a few more calls of
        // microseconds bring the average back.
        for _ in 0..1000 {
            if !meter.runs_long_slices() {
                break;
            }
            one_call(&cpu, &meter, Duration::from_micros(20)).await;
        }
        assert!(!meter.runs_long_slices(), "calls of microseconds");
        // Calls of 3 ms each, none of them long on its own.
        for _ in 0..20 {
            one_call(&cpu, &meter, Duration::from_millis(3)).await;
        }
        assert!(meter.runs_long_slices(), "slices of 3 ms");
        one_call(&cpu, &meter, Duration::from_micros(20)).await;
        assert!(meter.runs_long_slices(), "remembered for a while");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn long_calls_always_leave_a_core_to_short_ones() {
        let cpu = Cpu::new(2);
        let meters: Vec<Arc<Meter>> = (0..4).map(|_| Arc::default()).collect();
        let burners: Vec<_> = meters
            .iter()
            .map(|meter| {
                let run = cpu.run(Arc::clone(meter), burn(40, Duration::from_millis(5)));
                tokio::spawn(run)
            })
            .collect();
        // Once every burner has run long, at most one of them runs at a time.
        // (A loaded machine may take far longer than the 20 ms it takes an
        // idle one to get them there.)
        let deadline = Instant::now() + Duration::from_secs(60);
        while !meters.iter().all(|meter| meter.is_long()) {
            assert!(Instant::now() < deadline, "the burners never ran long");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
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
