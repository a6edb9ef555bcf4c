//! Sending the releases of the peer's objects: at once when nothing waits
//! before them (so a call made after dropping a handle follows its
//! release), and at most [`RELEASE_WINDOW`] awaiting the peer's answers at
//! once, so that many handles dropped together never fill the peer's queue
//! of requests. Releases past the window wait in a queue that a task of
//! their own drains, started when the queue fills and ended when it is
//! empty. The queue holds at most as many releases as the connection holds
//! objects of the peer's: a peer that stops answering releases while it
//! lends ever more objects (each refused, each given back) cannot grow it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use super::in_flight::InFlight;
use super::queues::Outbound;
use crate::error::Error;
use crate::held::Release;
use crate::protocol::{Message, Request, Seq};
use crate::value::Value;

/// How many releases may await the peer's answers at once.
pub const RELEASE_WINDOW: usize = 64;

/// How long the sender waits when this side's calls fill the in-flight
/// table, before it tries again.
const IN_FLIGHT_FULL_PAUSE: Duration = Duration::from_millis(10);

/// The releases waiting for room in the window.
pub(super) struct Releases {
    queue: Mutex<Queue>,
    /// How many may wait.
    limit: usize,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Release>,
    /// Whether a task drains `waiting`.
    draining: bool,
}

/// What became of a release handed to [`Releases::send`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// Sent, or dropped with the connection.
    Done,
    /// Dropped: the queue is full (the peer keeps the object lent until the
    /// connection ends).
    Dropped,
    /// Queued behind others; a task already drains the queue.
    Queued,
    /// Queued first: start a task that runs [`Releases::drain`].
    Drain,
}

impl Releases {
    /// An empty queue with room for `limit` releases.
    pub(super) fn new(limit: usize) -> Self {
        Releases {
            queue: Mutex::default(),
            limit,
        }
    }

    /// Sends `release` now if none waits before it and the window has room;
    /// queues it otherwise, if the queue has room.
    pub(super) fn send(&self, release: Release, in_flight: &InFlight, outbound: &Outbound) -> Sent {
        let mut queue = self.queue.lock().expect("releases poisoned");
        if queue.waiting.is_empty()
            && in_flight.releases() < RELEASE_WINDOW
            && let Ok(seq) = in_flight.start_release()
        {
            match outbound.try_send_small(del(seq, release)) {
                Ok(()) | Err(None) => return Sent::Done,
                Err(Some(_)) => {
                    in_flight.end(seq, Ok(Value::None));
                }
            }
        }
        if queue.waiting.len() >= self.limit {
            tracing::debug!(?release, "release dropped: the queue of releases is full");
            return Sent::Dropped;
        }
        queue.waiting.push_back(release);
        if std::mem::replace(&mut queue.draining, true) {
            Sent::Queued
        } else {
            Sent::Drain
        }
    }

    /// Sends the queued releases as the window makes room, until none is
    /// left or the connection is gone.
    pub(super) async fn drain(&self, in_flight: &InFlight, outbound: &Outbound) {
        loop {
            if in_flight.releases() >= RELEASE_WINDOW {
                in_flight.release_answered().await;
                continue;
            }
            let Some(release) = self.next() else {
                return;
            };
            match in_flight.start_release() {
                Ok(seq) => {
                    if outbound.send_small(del(seq, release)).await.is_err() {
                        return;
                    }
                }
                Err(Error::Closed) => return,
                Err(_) => {
                    self.put_back(release);
                    tokio::time::sleep(IN_FLIGHT_FULL_PAUSE).await;
                }
            }
        }
    }

    /// The next queued release; `None` (and no longer draining) when none
    /// is left.
    fn next(&self) -> Option<Release> {
        let mut queue = self.queue.lock().expect("releases poisoned");
        let next = queue.waiting.pop_front();
        queue.draining = next.is_some();
        next
    }

    fn put_back(&self, release: Release) {
        let mut queue = self.queue.lock().expect("releases poisoned");
        queue.waiting.push_front(release);
    }
}

/// The DEL that sends `release` as request `seq`: small, and at most a
/// window of them waits, so it goes outside the byte budget.
fn del(seq: Seq, Release { id, count }: Release) -> Message {
    Message::Request {
        seq,
        request: Request::Del { target: id, count },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_past_the_window_queue_up_to_a_bound() {
        // No room in flight: every release waits.
        let (in_flight, (outbound, _socket)) = (InFlight::new(0), Outbound::new(1 << 20));
        let releases = Releases::new(2);
        let release = |id| Release { id, count: 1 };
        assert_eq!(
            releases.send(release(1), &in_flight, &outbound),
            Sent::Drain
        );
        assert_eq!(
            releases.send(release(2), &in_flight, &outbound),
            Sent::Queued
        );
        assert_eq!(
            releases.send(release(3), &in_flight, &outbound),
            Sent::Dropped
        );
        assert_eq!(releases.next(), Some(release(1)), "oldest first");
        assert_eq!(releases.next(), Some(release(2)));
        assert_eq!(releases.next(), None);
        assert_eq!(
            releases.send(release(4), &in_flight, &outbound),
            Sent::Drain,
            "drained: the next one starts a drain again"
        );
    }
}
