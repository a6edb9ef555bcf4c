//! Sending the releases of the peer's objects: at once when nothing waits
//! before them (so a call made after dropping a handle follows its
//! release), and at most [`RELEASE_WINDOW`] awaiting the peer's answers at
//! once, so that many handles dropped together never fill the peer's queue
//! of requests.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::in_flight::InFlight;
use super::queues::{Held, Outgoing};
use crate::held::Release;
use crate::protocol::{Message, Request, Seq};

/// How many releases may await the peer's answers at once.
pub const RELEASE_WINDOW: usize = 64;

/// How long the sender waits when this side's calls fill the in-flight
/// table, before it tries again.
const IN_FLIGHT_FULL_PAUSE: Duration = Duration::from_millis(10);

/// The releases waiting for room in the window.
#[derive(Default)]
pub(super) struct Releases {
    queue: Mutex<VecDeque<Release>>,
    /// Woken when a release is queued.
    queued: Notify,
}

impl Releases {
    /// Sends `release` now if none waits before it and the window has room;
    /// queues it for [`Releases::run`] otherwise.
    pub(super) fn send(
        &self,
        release: Release,
        in_flight: &InFlight,
        outbox: &mpsc::Sender<Outgoing>,
    ) {
        let queue = self.queue.lock().expect("releases poisoned");
        if queue.is_empty() && in_flight.releases() < RELEASE_WINDOW {
            let Ok(seq) = in_flight.start_release() else {
                return queue_up(queue, release, &self.queued);
            };
            match outbox.try_send(del(seq, release)) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    in_flight.end(seq, Ok(crate::value::Value::None));
                }
            }
        }
        queue_up(queue, release, &self.queued);
    }

    /// Sends the queued releases as the window makes room, until the
    /// connection is gone.
    pub(super) async fn run(&self, in_flight: &InFlight, outbox: &mpsc::Sender<Outgoing>) {
        loop {
            let next = if in_flight.releases() < RELEASE_WINDOW {
                self.pop()
            } else {
                None
            };
            let Some(release) = next else {
                tokio::select! {
                    () = self.queued.notified() => {}
                    () = in_flight.release_answered() => {}
                }
                continue;
            };
            match in_flight.start_release() {
                Ok(seq) => {
                    if outbox.send(del(seq, release)).await.is_err() {
                        return;
                    }
                }
                Err(crate::error::Error::Closed) => return,
                Err(_) => {
                    self.put_back(release);
                    tokio::time::sleep(IN_FLIGHT_FULL_PAUSE).await;
                }
            }
        }
    }

    fn pop(&self) -> Option<Release> {
        self.queue.lock().expect("releases poisoned").pop_front()
    }

    fn put_back(&self, release: Release) {
        let mut queue = self.queue.lock().expect("releases poisoned");
        queue.push_front(release);
    }
}

fn queue_up(
    mut queue: std::sync::MutexGuard<'_, VecDeque<Release>>,
    release: Release,
    queued: &Notify,
) {
    queue.push_back(release);
    drop(queue);
    queued.notify_one();
}

/// The DEL that sends `release` as request `seq`.
fn del(seq: Seq, Release { id, count }: Release) -> Outgoing {
    Outgoing {
        message: Message::Request {
            seq,
            request: Request::Del { target: id, count },
        },
        // Small, and at most a window of them: outside the byte budget.
        held: Held::nothing(),
    }
}
