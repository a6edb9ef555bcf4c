//! Who gets in: sockets still in their TLS handshake or hello wait in a
//! small pool of their own (the oldest gives way when it is full), every
//! address has a cap, and a served connection takes one of the service's
//! slots; when none is free, the connection idle longest (past a minimum)
//! makes room, else the newcomer is refused.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::connection::Connection;
use crate::exception::Exception;

/// How long a newcomer waits for the idle connection closed to make room
/// for it to end.
const MAKING_ROOM: Duration = Duration::from_secs(2);

/// The bounds admission enforces.
#[derive(Clone, Debug)]
pub(super) struct Bounds {
    /// Connections served at once.
    pub(super) slots: usize,
    /// Sockets still in their TLS handshake or hello.
    pub(super) handshakes: usize,
    /// Sockets one address may have open, in a handshake or served.
    pub(super) per_ip: Option<usize>,
    /// How long a connection must have been idle to make room.
    pub(super) evict_idle_after: Duration,
}

/// A socket from an address that has as many open as it may (the cap): it
/// is closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooManyFromAddress(pub(super) usize);

/// Every slot (there are that many) is taken by a connection that is busy
/// or has not been idle long enough to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AtCapacity(pub(super) usize);

impl AtCapacity {
    /// What a client refused from `service` is told.
    pub(super) fn exception(self, service: &str) -> Exception {
        Exception::runtime_error(format!(
            "{service} is at capacity: it serves {} connections at once and none of them \
                 is idle enough to make room; try again later",
            self.0
        ))
    }
}

/// The sockets of one listener, from accept to close.
pub(super) struct Admission {
    bounds: Bounds,
    state: Mutex<State>,
    /// Signalled whenever a served connection ends.
    freed: Notify,
}

#[derive(Default)]
struct State {
    per_ip: HashMap<IpAddr, usize>,
    /// Sockets in their handshake, oldest first.
    handshakes: VecDeque<(u64, CancellationToken)>,
    /// Served sockets, each with its connection once it runs.
    served: HashMap<u64, Option<Connection>>,
    next_id: u64,
}

/// A socket's place, from its arrival to its end; gives everything back
/// when dropped.
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    ip: IpAddr,
    /// Cancelled when the socket must give way to a newer one during its
    /// handshake.
    pub(super) displaced: CancellationToken,
}

impl Admission {
    pub(super) fn new(bounds: Bounds) -> Arc<Self> {
        Arc::new(Admission {
            bounds,
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("admission poisoned")
    }

    /// A socket from `ip` arrives and begins its handshake; when the
    /// handshake pool is full, the oldest socket in it gives way.
    pub(super) fn arrive(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, TooManyFromAddress> {
        let mut state = self.state();
        let open = state.per_ip.get(&ip).copied().unwrap_or(0);
        if let Some(cap) = self.bounds.per_ip
            && open >= cap
        {
            return Err(TooManyFromAddress(cap));
        }
        state.per_ip.insert(ip, open + 1);
        let id = state.next_id;
        state.next_id += 1;
        let displaced = CancellationToken::new();
        state.handshakes.push_back((id, displaced.clone()));
        while state.handshakes.len() > self.bounds.handshakes.max(1) {
            if let Some((_, oldest)) = state.handshakes.pop_front() {
                oldest.cancel();
            }
        }
        Ok(Ticket {
            admission: Arc::clone(self),
            id,
            ip,
            displaced,
        })
    }

    /// Gives `ticket`'s socket, which finished its handshake, a slot. When
    /// every slot is taken, the connection idle longest past the minimum is closed
    /// to make room (this waits for it to end); otherwise the socket is
    /// refused.
    pub(super) async fn seat(&self, ticket: &Ticket) -> Result<(), AtCapacity> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.state();
                state.handshakes.retain(|(id, _)| *id != ticket.id);
                if state.served.len() < self.bounds.slots {
                    state.served.insert(ticket.id, None);
                    return Ok(());
                }
                let idlest = state
                    .served
                    .values()
                    .flatten()
                    .filter_map(|connection| connection.idle_for().map(|idle| (idle, connection)))
                    .filter(|(idle, _)| *idle >= self.bounds.evict_idle_after)
                    .max_by_key(|(idle, _)| *idle);
                match idlest {
                    Some((idle, connection)) => {
                        tracing::info!(?idle, "closing the connection idle longest to make room");
                        connection.disconnect();
                    }
                    None => return Err(AtCapacity(self.bounds.slots)),
                }
            }
            // The closed connection ends at once (it was idle), unless its
            // peer does not read what is left to write: then the newcomer
            // is refused rather than kept waiting.
            if tokio::time::timeout(MAKING_ROOM, freed).await.is_err() {
                return Err(AtCapacity(self.bounds.slots));
            }
        }
    }

    /// Records the connection `ticket`'s socket is served as (after a
    /// successful [`Admission::seat`]).
    pub(super) fn serve(&self, ticket: &Ticket, connection: Connection) {
        self.state().served.insert(ticket.id, Some(connection));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.state();
        state.handshakes.retain(|(id, _)| *id != self.id);
        let was_served = state.served.remove(&self.id).is_some();
        if let Some(open) = state.per_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
        drop(state);
        if was_served {
            self.admission.freed.notify_waiters();
        }
    }
}
