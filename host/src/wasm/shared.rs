//! One instance for every connection of a service (`serve --shared`), as
//! RPyC's services share one process: module-level state is shared, and the
//! service may call any connected peer's callbacks.
//!
//! Calls enter the instance one at a time, in the order they came (a
//! bounded queue, each waiting at most its timeout: see [`CallQueue`]), each on
//! a task of its own, so a caller that goes away does not abandon the
//! instance half way. Before each call, hook or release the instance is told
//! which connection it comes from. While the instance waits for one
//! connection's answer (a callback), a call from that connection could only
//! run after the wait it would have to end, so it is refused at once. A
//! trap fails the call that ran; the next one starts a fresh instance, in
//! which every open connection's `on-connect` runs again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::compiled::Compiled;
use super::connections::Connections;
use super::instance::ServiceInstance;
use crate::exception::Exception;
use crate::executor::Executor;
use crate::local::ServiceObject;
use crate::peer::Peer;
use crate::service::{ObjectRequest, Service};
use crate::value::Value;

/// How many calls may wait for a shared instance at once; past it a call
/// fails at once with `RuntimeError`.
pub const DEFAULT_MAX_QUEUED_CALLS: usize = 1024;

/// How long a call may wait for its turn in a shared instance before it
/// fails with `TimeoutError`: RPyC's `sync_request_timeout`, after which
/// its caller has given up.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds of the queue of calls waiting for a shared instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallQueue {
    /// How many calls may wait at once; see [`DEFAULT_MAX_QUEUED_CALLS`].
    pub max_calls: usize,
    /// How long each may wait; see [`DEFAULT_QUEUE_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for CallQueue {
    fn default() -> Self {
        CallQueue {
            max_calls: DEFAULT_MAX_QUEUED_CALLS,
            timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// The instance every connection of a service shares.
pub(crate) struct SharedInstance {
    instance: Arc<Mutex<ServiceInstance>>,
    connections: Arc<Connections>,
    component: Arc<Compiled>,
    executor: Executor,
    queue: CallQueue,
    /// Calls waiting for their turn.
    queued: AtomicUsize,
    /// Objects the peers released, for the instance to let go at its next
    /// turn, with the connection each comes from.
    releases: std::sync::Mutex<Vec<(u64, ServiceObject)>>,
    /// Whether a task is on its way to let them go.
    releasing: AtomicBool,
}

/// What a connection asks of the shared instance.
enum Job {
    Call {
        name: String,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    },
    Object {
        object: Option<ServiceObject>,
        request: ObjectRequest,
    },
    /// `on-connect`; answers the root's exposed names.
    Join,
    /// `on-disconnect`.
    Leave,
}

impl SharedInstance {
    /// The shared instance of `component` (made at the first connection),
    /// whose calls wait in a queue bounded by `queue`.
    pub(crate) fn new(component: Arc<Compiled>, queue: CallQueue) -> Arc<Self> {
        let executor = component.runtime.executor();
        let connections = Arc::new(Connections::default());
        let instance = ServiceInstance::shared(
            Arc::clone(&component),
            executor.clone(),
            Arc::clone(&connections),
        );
        Arc::new(SharedInstance {
            instance: Arc::new(Mutex::new(instance)),
            connections,
            component,
            executor,
            queue,
            queued: AtomicUsize::new(0),
            releases: std::sync::Mutex::new(Vec::new()),
            releasing: AtomicBool::new(false),
        })
    }

    /// The bounds of its queue.
    pub(crate) fn queue(&self) -> CallQueue {
        self.queue
    }

    /// A new connection's share of the instance.
    pub(crate) fn connection(self: &Arc<Self>) -> SharedConnection {
        SharedConnection {
            number: self.connections.number(),
            shared: Arc::clone(self),
            callables: Vec::new(),
        }
    }

    /// Runs `job` for connection `number` on a task of its own, once it is
    /// its turn.
    async fn run(self: &Arc<Self>, number: u64, job: Job) -> Result<Value, Exception> {
        if self.connections.waits_on(number) && !matches!(job, Job::Leave) {
            return Err(reentered());
        }
        let shared = Arc::clone(self);
        let (answer, answered) = oneshot::channel();
        tokio::spawn(async move {
            let outcome = match shared.turn(&job).await {
                Ok(instance) => {
                    let serving = Arc::clone(&shared);
                    let (done, finished) = oneshot::channel();
                    let turn = async move {
                        let _ = done.send(serving.serve(instance, number, job).await);
                    };
                    // Moves to the guest threads while the instance computes.
                    shared.executor.drive(Box::pin(turn)).await;
                    finished.await.unwrap_or_else(|_| Err(ended()))
                }
                Err(refused) => Err(refused),
            };
            let _ = answer.send(outcome);
        });
        answered.await.unwrap_or_else(|_| Err(ended()))
    }

    /// Waits for the instance, within the queue's bound and timeout. A
    /// connection's start and end do not count against the bound (the
    /// server's connection slots bound them), and its end is never refused:
    /// it waits as long as it takes.
    async fn turn(&self, job: &Job) -> Result<OwnedMutexGuard<ServiceInstance>, Exception> {
        let locking = Arc::clone(&self.instance).lock_owned();
        let CallQueue { max_calls, timeout } = self.queue;
        let service = &self.component.aliases[0];
        let _counted = match job {
            Job::Leave => return Ok(locking.await),
            Job::Join => None,
            Job::Call { .. } | Job::Object { .. } => {
                let counted = Counted::new(&self.queued);
                if counted.ahead >= max_calls {
                    return Err(Exception::runtime_error(format!(
                        "the shared instance of {service} is busy: {max_calls} calls wait for \
                         it already"
                    )));
                }
                Some(counted)
            }
        };
        tokio::time::timeout(timeout, locking).await.map_err(|_| {
            Exception::timeout_error(format!(
                "the call waited {timeout:?} for its turn in the shared instance of {service}"
            ))
        })
    }

    /// Runs `job` in `instance` for connection `number`, letting go of the
    /// objects the peers released before and after it.
    async fn serve(
        &self,
        mut instance: OwnedMutexGuard<ServiceInstance>,
        number: u64,
        job: Job,
    ) -> Result<Value, Exception> {
        self.let_go(&mut instance).await;
        instance.enter(number, self.connections.peer(number));
        let outcome = match job {
            Job::Call { name, args, kwargs } => instance.call(&name, args, kwargs).await,
            Job::Object { object, request } => {
                instance.object_request(object.as_ref(), request).await
            }
            Job::Join => instance.join().await.map(|()| {
                Value::Tuple(
                    instance
                        .exposed_names()
                        .into_iter()
                        .map(Value::Str)
                        .collect(),
                )
            }),
            Job::Leave => {
                instance.on_disconnect().await;
                self.connections.leave(number);
                Ok(Value::None)
            }
        };
        self.let_go(&mut instance).await;
        outcome
    }

    /// Tells the instance of every object the peers released.
    async fn let_go(&self, instance: &mut ServiceInstance) {
        self.releasing.store(false, Ordering::Release);
        loop {
            let released = std::mem::take(&mut *self.releases.lock().expect("releases poisoned"));
            if released.is_empty() {
                return;
            }
            for (number, object) in released {
                instance.enter(number, self.connections.peer(number));
                instance.release_object(object).await;
            }
        }
    }

    /// The peer of connection `number` released `object`: the instance
    /// lets it go at its next turn (a task takes one if none is coming).
    fn release(self: &Arc<Self>, number: u64, object: ServiceObject) {
        self.releases
            .lock()
            .expect("releases poisoned")
            .push((number, object));
        if self.releasing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let mut instance = Arc::clone(&shared.instance).lock_owned().await;
            let executor = shared.executor.clone();
            let releasing = async move { shared.let_go(&mut instance).await };
            executor.drive(Box::pin(releasing)).await;
        });
    }
}

/// Counts a call waiting for its turn while it lives.
struct Counted<'a> {
    queued: &'a AtomicUsize,
    /// How many were waiting before it.
    ahead: usize,
}

impl<'a> Counted<'a> {
    fn new(queued: &'a AtomicUsize) -> Self {
        let ahead = queued.fetch_add(1, Ordering::AcqRel);
        Counted { queued, ahead }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The refusal of a call from a connection the instance waits for.
fn reentered() -> Exception {
    Exception::runtime_error(
        "the shared instance is waiting for this connection to answer its call (a callback), \
         and cannot be called from it until then",
    )
}

/// The task that ran a call ended without an answer (the host is stopping).
fn ended() -> Exception {
    Exception::runtime_error("the shared instance stopped before the call ended")
}

/// One connection's share of a [`SharedInstance`].
pub(crate) struct SharedConnection {
    shared: Arc<SharedInstance>,
    number: u64,
    /// The root's exposed names, read when the connection joined.
    callables: Vec<String>,
}

impl Service for SharedConnection {
    fn aliases(&self) -> &[String] {
        &self.shared.component.aliases
    }

    fn exposed_names(&self) -> Vec<String> {
        self.callables.clone()
    }

    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        self.shared.component.exposed_classes()
    }

    async fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        let name = name.to_owned();
        let job = Job::Call { name, args, kwargs };
        self.shared.run(self.number, job).await
    }

    fn serves_objects(&self) -> bool {
        self.shared.component.objects.is_some()
    }

    async fn object_request(
        &mut self,
        object: Option<&ServiceObject>,
        request: ObjectRequest,
    ) -> Result<Value, Exception> {
        let object = object.cloned();
        let job = Job::Object { object, request };
        self.shared.run(self.number, job).await
    }

    async fn release_object(&mut self, object: ServiceObject) {
        self.shared.release(self.number, object);
    }

    async fn on_connect(&mut self, peer: Peer) -> Result<(), Exception> {
        self.shared.connections.join(self.number, peer);
        let names = match self.shared.run(self.number, Job::Join).await {
            Ok(Value::Tuple(names)) => names,
            Ok(_) => Vec::new(),
            Err(error) => {
                self.shared.connections.leave(self.number);
                return Err(error);
            }
        };
        self.callables = names
            .into_iter()
            .filter_map(|name| match name {
                Value::Str(name) => Some(name),
                _ => None,
            })
            .collect();
        Ok(())
    }

    async fn on_disconnect(&mut self) {
        let _ = self.shared.run(self.number, Job::Leave).await;
        self.shared.connections.leave(self.number);
    }
}
