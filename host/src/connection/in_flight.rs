//! The calls this side sent and still waits for: sequence numbers, reply
//! slots, a bound, and cleanup when a caller stops waiting. Releases of the
//! peer's objects take slots too, without a caller: only their number is
//! watched.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Notify, oneshot};

use crate::error::Error;
use crate::exception::Exception;
use crate::protocol::Seq;
use crate::value::Value;

/// What a call ends with: the value, the remote exception
/// ([`Error::Remote`]) or a local failure to send it.
pub(crate) type Outcome = Result<Value, Error>;

/// The table of calls awaiting replies, shared by callers and the reader.
pub(crate) struct InFlight {
    state: Mutex<State>,
    limit: usize,
    /// Woken when a release is answered.
    release_answered: Notify,
}

struct State {
    waiting: HashMap<Seq, Waiter>,
    next_seq: Seq,
    /// How many of `waiting` are releases.
    releases: usize,
    closed: bool,
}

/// What waits for a reply.
enum Waiter {
    /// A call, for its outcome.
    Call(oneshot::Sender<Outcome>),
    /// A release: nobody needs its answer, only its arrival.
    Release,
    /// A call nobody waits for (RPyC's `async_`): its answer is dropped.
    Unwaited,
}

/// A call's claim on its reply; dropping it (timeout, cancellation) frees the slot.
pub(crate) struct Pending<'a> {
    in_flight: &'a InFlight,
    seq: Seq,
    reply: oneshot::Receiver<Outcome>,
}

impl InFlight {
    /// An empty table that allows `limit` calls at once.
    pub(crate) fn new(limit: usize) -> Self {
        InFlight {
            state: Mutex::new(State {
                waiting: HashMap::new(),
                next_seq: 0,
                releases: 0,
                closed: false,
            }),
            limit,
            release_answered: Notify::new(),
        }
    }

    /// Claims a sequence number for a new call.
    pub(crate) fn start(&self) -> Result<Pending<'_>, Error> {
        let (tx, reply) = oneshot::channel();
        let seq = self.claim(Waiter::Call(tx))?;
        Ok(Pending {
            in_flight: self,
            seq,
            reply,
        })
    }

    /// Claims a sequence number for a release; its answer is only counted.
    pub(crate) fn start_release(&self) -> Result<Seq, Error> {
        self.claim(Waiter::Release)
    }

    /// Claims a sequence number for a call nobody waits for; its slot is
    /// taken until the answer comes or the connection ends.
    pub(crate) fn start_unwaited(&self) -> Result<Seq, Error> {
        self.claim(Waiter::Unwaited)
    }

    fn claim(&self, waiter: Waiter) -> Result<Seq, Error> {
        let mut state = self.state.lock().expect("in-flight table poisoned");
        if state.closed {
            return Err(Error::Closed);
        }
        if state.waiting.len() >= self.limit {
            return Err(Error::TooManyInFlight(self.limit));
        }
        let mut seq = state.next_seq;
        while state.waiting.contains_key(&seq) {
            seq = seq.wrapping_add(1);
        }
        state.next_seq = seq.wrapping_add(1);
        if matches!(waiter, Waiter::Release) {
            state.releases += 1;
        }
        state.waiting.insert(seq, waiter);
        Ok(seq)
    }

    /// How many releases await their answers.
    pub(crate) fn releases(&self) -> usize {
        self.state
            .lock()
            .expect("in-flight table poisoned")
            .releases
    }

    /// Completes once a release is answered (or may have been).
    pub(crate) async fn release_answered(&self) {
        self.release_answered.notified().await;
    }

    /// Hands a reply to its caller; false if no call waits for `seq`.
    pub(crate) fn finish(&self, seq: Seq, reply: Result<Value, Exception>) -> bool {
        self.end(seq, reply.map_err(Error::Remote))
    }

    /// Ends the call `seq` with `outcome`; false if no call waits for it.
    pub(crate) fn end(&self, seq: Seq, outcome: Outcome) -> bool {
        let mut state = self.state.lock().expect("in-flight table poisoned");
        match state.waiting.remove(&seq) {
            None => false,
            Some(Waiter::Call(sender)) => {
                drop(state);
                // The caller may have given up a moment ago; that is not an error.
                let _ = sender.send(outcome);
                true
            }
            Some(Waiter::Release) => {
                state.releases -= 1;
                drop(state);
                self.release_answered.notify_one();
                true
            }
            Some(Waiter::Unwaited) => true,
        }
    }

    /// Fails every waiting call with [`Error::Closed`] and refuses new ones.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().expect("in-flight table poisoned");
        state.closed = true;
        state.waiting.clear();
        state.releases = 0;
        drop(state);
        self.release_answered.notify_one();
    }

    /// How many calls wait (releases aside).
    pub(crate) fn len(&self) -> usize {
        let state = self.state.lock().expect("in-flight table poisoned");
        state.waiting.len() - state.releases
    }
}

impl Pending<'_> {
    /// The sequence number to send the request with.
    pub(crate) fn seq(&self) -> Seq {
        self.seq
    }

    /// Waits for the outcome; [`Error::Closed`] if the connection ends first.
    pub(crate) async fn outcome(&mut self) -> Outcome {
        (&mut self.reply).await.unwrap_or(Err(Error::Closed))
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut state = self
            .in_flight
            .state
            .lock()
            .expect("in-flight table poisoned");
        state.waiting.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_reach_their_callers_and_slots_are_freed() {
        let table = InFlight::new(2);
        let mut a = table.start().unwrap();
        let mut b = table.start().unwrap();
        assert_ne!(a.seq(), b.seq());
        assert!(matches!(table.start(), Err(Error::TooManyInFlight(2))));
        assert!(table.finish(b.seq(), Ok(Value::Int(2))));
        assert!(table.finish(a.seq(), Ok(Value::Int(1))));
        assert!(!table.finish(a.seq(), Ok(Value::Int(1))), "answered twice");
        assert_eq!(a.outcome().await.unwrap(), Value::Int(1));
        assert_eq!(b.outcome().await.unwrap(), Value::Int(2));
        drop((a, b));
        let c = table.start().unwrap();
        assert_eq!(table.len(), 1);
        drop(c);
        assert_eq!(table.len(), 0, "a dropped call frees its slot");
        let release = table.start_release().unwrap();
        assert_eq!((table.len(), table.releases()), (0, 1));
        assert!(table.finish(release, Ok(Value::None)));
        table.release_answered().await;
        assert_eq!(table.releases(), 0, "an answered release frees its slot");
        let mut d = table.start().unwrap();
        table.close();
        assert!(matches!(d.outcome().await, Err(Error::Closed)));
        assert!(matches!(table.start(), Err(Error::Closed)));
    }
}
