//! The connections one shared instance serves (`serve --shared`): each
//! one's peer by number, so that a netref reaches the peer that lent it
//! whichever connection's call is running, and which connection the
//! instance waits on, so that a call from that connection, which could only
//! run once the wait is over, is refused at once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::held::PeerObject;
use crate::peer::Peer;

/// The connections of a shared instance, by number (from 1 on).
#[derive(Default)]
pub(crate) struct Connections {
    peers: Mutex<BTreeMap<u64, Peer>>,
    /// The number the next connection gets.
    next: AtomicU64,
    /// The connection whose answer the instance waits for; 0 when none.
    waiting_on: AtomicU64,
}

impl Connections {
    /// A number for a new connection.
    pub(crate) fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Connection `number` reaches its peer through `peer`.
    pub(crate) fn join(&self, number: u64, peer: Peer) {
        self.peers().insert(number, peer);
    }

    /// Connection `number` has ended: its peer's objects cannot be reached.
    pub(crate) fn leave(&self, number: u64) {
        self.peers().remove(&number);
    }

    /// Every open connection's number and peer, in the order they came.
    pub(crate) fn all(&self) -> Vec<(u64, Peer)> {
        let peers = self.peers();
        peers.iter().map(|(n, p)| (*n, p.clone())).collect()
    }

    /// The peer of connection `number`, while it is open.
    pub(crate) fn peer(&self, number: u64) -> Option<Peer> {
        self.peers().get(&number).cloned()
    }

    /// The open connection whose peer lent `object`, with its number.
    pub(crate) fn lender_of(&self, object: &PeerObject) -> Option<(u64, Peer)> {
        let peers = self.peers();
        let (number, peer) = peers.iter().find(|(_, peer)| peer.holds(object))?;
        Some((*number, peer.clone()))
    }

    /// Marks the instance as waiting for connection `number`'s answer
    /// until the guard is dropped.
    pub(crate) fn wait_on(&self, number: u64) -> Waiting<'_> {
        self.waiting_on.store(number, Ordering::Release);
        Waiting(self)
    }

    /// Whether the instance waits for connection `number`'s answer.
    pub(crate) fn waits_on(&self, number: u64) -> bool {
        self.waiting_on.load(Ordering::Acquire) == number
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Peer>> {
        self.peers.lock().expect("connections poisoned")
    }
}

/// The instance waits for a connection's answer while this lives.
pub(crate) struct Waiting<'a>(&'a Connections);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting_on.store(0, Ordering::Release);
    }
}
