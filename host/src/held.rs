//! The peer's objects this side holds: one owned handle per object however
//! often the peer lends it, how many times it was lent (what its release
//! gives back), a bound, and the releases waiting to be sent.
//!
//! The rule for a release: when the last handle to an object is dropped, the
//! object is released with every receipt counted so far. A receipt that
//! arrives while that last handle is being dropped gets a new handle, which
//! takes over the receipts, so an object is never released while a handle
//! to it lives. A release asked for while a request of the peer's is served
//! waits until its reply has gone out (`HeldObjects::defer_releases`);
//! any other goes to the connection at once, in order.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::object_ref::{Holder, ObjectId, ObjectRef};

/// How many distinct objects of the peer's this side may hold at once, by
/// default. A peer that lends objects without end hits this instead of
/// growing the host's tables.
pub const DEFAULT_MAX_HELD_OBJECTS: usize = 10_000;

/// The peer lent more distinct objects than this side may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the peer lent more objects than this side holds at once (the limit is {limit})")]
pub struct TooManyHeld {
    /// The bound.
    pub limit: usize,
}

/// An object of the peer's that this side holds. Clones share one handle;
/// when the last handle to an object is dropped, the peer is told to release
/// it (after the reply in progress, if a request is being served).
#[derive(Clone)]
pub struct PeerObject {
    handle: Arc<Handle>,
}

struct Handle {
    id: ObjectId,
    class: String,
    /// The table of the connection it came from, if any.
    table: Option<Arc<Table>>,
    /// Whether dropping the last handle releases the object.
    released: bool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let (Some(table), true) = (&self.table, self.released) {
            table.dropped(self);
        }
    }
}

impl PeerObject {
    /// A handle on the peer's object `id` that is never released (the
    /// peer's root, or an object handed to a service outside a connection).
    pub fn never_released(id: ObjectId, class: impl Into<String>) -> Self {
        PeerObject {
            handle: Arc::new(Handle {
                id,
                class: class.into(),
                table: None,
                released: false,
            }),
        }
    }

    /// The object's id in the peer's table.
    pub fn id(&self) -> ObjectId {
        self.handle.id
    }

    /// The object's class, dotted as Python names it.
    pub fn class(&self) -> &str {
        &self.handle.class
    }

    /// The reference that hands the object back to the peer, which reads it
    /// as its own object.
    pub fn handed_back(&self) -> ObjectRef {
        ObjectRef {
            holder: Holder::Receiver,
            id: self.handle.id,
            class: self.handle.class.clone(),
            // The peer names its own object by the id_pack it sent.
            is_class: false,
        }
    }

    /// What the table it was received into belongs to (the connection), if
    /// that is still alive.
    pub(crate) fn owner(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.handle.table.as_ref()?.owner.get()?.upgrade()
    }
}

impl PartialEq for PeerObject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }
}

impl fmt::Debug for PeerObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<netref {} {}>", self.handle.class, self.handle.id)
    }
}

/// A release to send: `count` receipts of the peer's object `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Release {
    /// The object.
    pub(crate) id: ObjectId,
    /// How many times the peer lent it since the last release.
    pub(crate) count: u64,
}

/// The peer's objects one connection holds.
pub(crate) struct HeldObjects {
    table: Arc<Table>,
}

/// Where releases go to be sent.
pub(crate) type ReleaseSink = Box<dyn Fn(Release) + Send + Sync>;

struct Table {
    state: Mutex<State>,
    limit: usize,
    /// The connection the table belongs to.
    owner: OnceLock<Weak<dyn Any + Send + Sync>>,
    /// Sends releases to the peer.
    sink: OnceLock<ReleaseSink>,
}

#[derive(Default)]
struct State {
    entries: HashMap<ObjectId, Entry>,
    /// Releases to send once no deferral is left.
    deferred: Vec<Release>,
    deferrals: usize,
}

struct Entry {
    /// How many times the peer lent the object since its last release.
    receipts: u64,
    /// The handle that releases it.
    handle: Weak<Handle>,
}

impl Table {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("held objects poisoned")
    }

    /// The handle `handle` is gone: its object is released, unless a newer
    /// handle took it over.
    fn dropped(&self, handle: &Handle) {
        let mut state = self.state();
        let ours = state
            .entries
            .get(&handle.id)
            .is_some_and(|entry| std::ptr::eq(entry.handle.as_ptr(), handle));
        if ours && let Some(entry) = state.entries.remove(&handle.id) {
            let release = Release {
                id: handle.id,
                count: entry.receipts,
            };
            self.release(state, release);
        }
    }

    /// Sends `release` now, or once the deferral in progress ends.
    fn release(&self, mut state: MutexGuard<'_, State>, release: Release) {
        if state.deferrals > 0 {
            state.deferred.push(release);
            return;
        }
        drop(state);
        self.send(release);
    }

    fn send(&self, release: Release) {
        if let Some(sink) = self.sink.get() {
            sink(release);
        }
    }
}

impl HeldObjects {
    /// An empty table with room for `limit` objects.
    pub(crate) fn new(limit: usize) -> Self {
        HeldObjects {
            table: Arc::new(Table {
                state: Mutex::new(State::default()),
                limit,
                owner: OnceLock::new(),
                sink: OnceLock::new(),
            }),
        }
    }

    /// Records what the table belongs to, for [`PeerObject::owner`].
    pub(crate) fn set_owner(&self, owner: Weak<dyn Any + Send + Sync>) {
        let _ = self.table.owner.set(owner);
    }

    /// Sends the table's releases to `sink` from now on.
    pub(crate) fn set_sink(&self, sink: ReleaseSink) {
        let _ = self.table.sink.set(sink);
    }

    /// Counts a receipt of the peer's object `object` and returns its handle.
    /// When the table is full and the object is new, the receipt is given
    /// back at once and the error says so.
    pub(crate) fn receive(&self, object: ObjectRef) -> Result<PeerObject, TooManyHeld> {
        let table = &self.table;
        let mut state = table.state();
        let new = |object: ObjectRef| {
            Arc::new(Handle {
                id: object.id,
                class: object.class,
                table: Some(Arc::clone(table)),
                released: true,
            })
        };
        if let Some(entry) = state.entries.get_mut(&object.id) {
            entry.receipts += 1;
            let handle = match entry.handle.upgrade() {
                Some(handle) => handle,
                // The last handle is being dropped: this one takes over.
                None => {
                    let handle = new(object);
                    entry.handle = Arc::downgrade(&handle);
                    handle
                }
            };
            return Ok(PeerObject { handle });
        }
        if state.entries.len() >= table.limit {
            // Given back at once, even while a request is served: deferred,
            // refusals would pile up for as long as the request lasts.
            drop(state);
            table.send(Release {
                id: object.id,
                count: 1,
            });
            return Err(TooManyHeld { limit: table.limit });
        }
        let handle = new(object);
        let entry = Entry {
            receipts: 1,
            handle: Arc::downgrade(&handle),
        };
        state.entries.insert(handle.id, entry);
        Ok(PeerObject { handle })
    }

    /// A handle on the peer's object `id` (its root) that is never released,
    /// and may be sent on this table's connection.
    pub(crate) fn never_released(&self, id: ObjectId, class: &str) -> PeerObject {
        PeerObject {
            handle: Arc::new(Handle {
                id,
                class: class.to_owned(),
                table: Some(Arc::clone(&self.table)),
                released: false,
            }),
        }
    }

    /// Whether `object` came from this table's connection.
    pub(crate) fn holds(&self, object: &PeerObject) -> bool {
        object
            .handle
            .table
            .as_ref()
            .is_some_and(|table| Arc::ptr_eq(table, &self.table))
    }

    /// Holds back the releases asked for until the returned deferral is
    /// dropped: a request's releases go out after its reply. (Sent before
    /// it, the peer's answer to a release would be its last write before
    /// its next request, which Nagle's algorithm on a peer without
    /// TCP_NODELAY, RPyC's default, holds for a delayed ACK: 40 ms a call.)
    pub(crate) fn defer_releases(&self) -> Deferral<'_> {
        self.table.state().deferrals += 1;
        Deferral { table: &self.table }
    }

    /// How many distinct objects of the peer's are held.
    pub(crate) fn len(&self) -> usize {
        self.table.state().entries.len()
    }
}

/// Holds releases back while it lives (see [`HeldObjects::defer_releases`]).
pub(crate) struct Deferral<'a> {
    table: &'a Arc<Table>,
}

impl Drop for Deferral<'_> {
    fn drop(&mut self) {
        let mut state = self.table.state();
        state.deferrals -= 1;
        if state.deferrals > 0 {
            return;
        }
        let deferred = std::mem::take(&mut state.deferred);
        drop(state);
        deferred
            .into_iter()
            .for_each(|release| self.table.send(release));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(id: ObjectId) -> ObjectRef {
        ObjectRef {
            holder: Holder::Sender,
            id,
            class: "builtins.function".into(),
            is_class: false,
        }
    }

    fn release(id: ObjectId, count: u64) -> Release {
        Release { id, count }
    }

    /// A table of `limit` objects, and the releases it sends.
    fn table(limit: usize) -> (HeldObjects, Arc<Mutex<Vec<Release>>>) {
        let held = HeldObjects::new(limit);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&sent);
        held.set_sink(Box::new(move |release| sink.lock().unwrap().push(release)));
        (held, sent)
    }

    fn taken(sent: &Mutex<Vec<Release>>) -> Vec<Release> {
        std::mem::take(&mut *sent.lock().unwrap())
    }

    #[test]
    fn an_object_is_released_with_its_last_handle_giving_back_every_receipt() {
        let (held, sent) = table(10);
        let a = held.receive(lent(7)).unwrap();
        let b = held.receive(lent(7)).unwrap();
        let c = held.receive(lent(8)).unwrap();
        assert_eq!(a, b, "one handle per object");
        assert_ne!(a, c);
        assert_eq!(held.len(), 2);
        drop(a);
        assert_eq!(taken(&sent), vec![], "b still holds 7");
        let d = held.receive(lent(7)).unwrap();
        drop((b, d));
        assert_eq!(taken(&sent), vec![release(7, 3)]);
        drop(c);
        assert_eq!(taken(&sent), vec![release(8, 1)]);
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn interleaved_receipts_and_releases_give_back_exactly_what_was_lent() {
        let (held, sent) = table(10);
        let mut lent_times = 0;
        for round in 0..5 {
            let handles: Vec<_> = (0..=round)
                .map(|_| held.receive(lent(1)).unwrap())
                .collect();
            lent_times += handles.len() as u64;
            drop(handles);
        }
        let given_back: u64 = taken(&sent).iter().map(|r| r.count).sum();
        assert_eq!(given_back, lent_times);
    }

    #[test]
    fn a_receipt_that_crosses_the_last_drop_keeps_the_object_held() {
        let (held, sent) = table(10);
        let old = held.receive(lent(5)).unwrap();
        // The old handle's count has reached zero, but its drop has not yet
        // taken the table's lock when the peer lends the object again.
        let weak = Arc::downgrade(&old.handle);
        let dying = Arc::into_inner(old.handle).expect("the only handle");
        assert!(weak.upgrade().is_none());
        let new = held.receive(lent(5)).unwrap();
        drop(dying);
        assert_eq!(taken(&sent), vec![], "the new handle holds both receipts");
        assert_eq!(held.len(), 1);
        drop(new);
        assert_eq!(taken(&sent), vec![release(5, 2)]);
    }

    #[test]
    fn the_table_is_bounded_and_a_refused_receipt_is_given_back() {
        let (held, sent) = table(2);
        let a = held.receive(lent(1)).unwrap();
        let _b = held.receive(lent(2)).unwrap();
        assert_eq!(held.receive(lent(3)), Err(TooManyHeld { limit: 2 }));
        assert_eq!(taken(&sent), vec![release(3, 1)]);
        assert!(held.receive(lent(1)).is_ok(), "a held object needs no room");
        drop(a);
        assert!(held.receive(lent(3)).is_ok(), "released room is reused");
    }

    #[test]
    fn releases_asked_for_while_serving_wait_for_the_reply() {
        let (held, sent) = table(10);
        let a = held.receive(lent(1)).unwrap();
        let b = held.receive(lent(2)).unwrap();
        let serving = held.defer_releases();
        drop(a);
        assert_eq!(taken(&sent), vec![]);
        let (held_full, sent_full) = table(0);
        let _serving_too = held_full.defer_releases();
        assert!(held_full.receive(lent(9)).is_err());
        assert_eq!(
            taken(&sent_full),
            vec![release(9, 1)],
            "a refusal is not deferred"
        );
        drop(serving);
        assert_eq!(taken(&sent), vec![release(1, 1)]);
        drop(b);
        assert_eq!(taken(&sent), vec![release(2, 1)]);
    }

    #[test]
    fn handles_know_their_table_and_unreleased_objects_need_none() {
        let ((one, sent), (two, _)) = (table(10), table(10));
        let object = one.receive(lent(1)).unwrap();
        assert!(one.holds(&object));
        assert!(!two.holds(&object));
        let detached = PeerObject::never_released(0, "root");
        assert!(!one.holds(&detached));
        let root = one.never_released(0, "root");
        assert!(one.holds(&root));
        drop((detached, root));
        assert_eq!(taken(&sent), vec![]);
        assert_eq!(object.handed_back().holder, Holder::Receiver);
    }
}
