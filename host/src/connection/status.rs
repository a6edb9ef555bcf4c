//! Where a connection stands: closing or not, whether the peer went away,
//! whether this side is serving a request or its service waits on the peer,
//! and since when nothing has happened.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// A connection's status, shared by its task and every handle.
pub(super) struct Status {
    /// Cancelled when the connection starts to close, for whatever reason.
    closing: CancellationToken,
    /// Cancelled when the driver task has finished.
    finished: CancellationToken,
    /// Cancelled when the peer went away (closed its end, sent `Close`,
    /// broke the stream) before this side began to close: the call of the
    /// peer's in progress is abandoned, as nobody waits for its reply.
    peer_gone: CancellationToken,
    /// Whether this side is serving one of the peer's requests.
    serving: AtomicBool,
    /// Woken when serving ends while the connection is closing.
    served: Notify,
    /// How many calls this side's service has waiting on the peer: while
    /// any does, the peer's requests are answered without entering it.
    waiting_on_peer: watch::Sender<usize>,
    /// When the last message arrived or the last request was served.
    last_active: Mutex<Instant>,
}

impl Status {
    /// A live connection's status; it closes when `stop` is cancelled.
    pub(super) fn new(stop: &CancellationToken) -> Self {
        Status {
            closing: stop.child_token(),
            finished: CancellationToken::new(),
            peer_gone: CancellationToken::new(),
            serving: AtomicBool::new(false),
            served: Notify::new(),
            waiting_on_peer: watch::Sender::new(0),
            last_active: Mutex::new(Instant::now()),
        }
    }

    /// Starts closing the connection.
    pub(super) fn close(&self) {
        self.closing.cancel();
    }

    /// Whether the connection is closing (or closed).
    pub(super) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Completes once the connection is closing.
    pub(super) async fn closing(&self) {
        self.closing.cancelled().await;
    }

    /// The peer went away; if this side was not closing already, the call of
    /// the peer's in progress is abandoned. Then the connection closes.
    pub(super) fn peer_went_away(&self) {
        if !self.closing.is_cancelled() {
            self.peer_gone.cancel();
        }
        self.closing.cancel();
    }

    /// Completes once the peer has gone away (see [`Status::peer_went_away`]).
    pub(super) async fn peer_gone(&self) {
        self.peer_gone.cancelled().await;
    }

    /// The driver task has finished.
    pub(super) fn finish(&self) {
        self.finished.cancel();
    }

    /// Completes once the driver task has finished.
    pub(super) async fn finished(&self) {
        self.finished.cancelled().await;
    }

    /// Whether this side is serving one of the peer's requests.
    pub(super) fn serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    /// Marks this side as serving one of the peer's requests, or not. (Only
    /// [`Status::wound_up`] waits for the end, and only once closing: the
    /// common case costs one store.)
    pub(super) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::SeqCst);
        if !serving && self.closing.is_cancelled() {
            self.served.notify_waiters();
        }
    }

    /// Completes once the connection is closing and no request of the peer's
    /// is being served: a request in progress (at a graceful shutdown, say)
    /// still gets its reply, and may call the peer meanwhile.
    pub(super) async fn wound_up(&self) {
        self.closing.cancelled().await;
        loop {
            let served = self.served.notified();
            tokio::pin!(served);
            // Registered before the check, so the end of serving is not missed.
            served.as_mut().enable();
            if !self.serving() {
                return;
            }
            served.await;
        }
    }

    /// Counts one of the service's calls waiting on the peer until the
    /// returned guard is dropped.
    pub(super) fn wait_on_peer(&self) -> WaitingOnPeer<'_> {
        self.waiting_on_peer.send_modify(|n| *n += 1);
        WaitingOnPeer(self)
    }

    /// Watches how many of the service's calls wait on the peer.
    pub(super) fn watch_waiting_on_peer(&self) -> watch::Receiver<usize> {
        self.waiting_on_peer.subscribe()
    }

    /// Marks the connection active now.
    pub(super) fn touch(&self) {
        *self.last_active.lock().expect("last_active poisoned") = Instant::now();
    }

    /// How long neither side has had anything to do, given how many calls
    /// of this side's await replies; `None` while a call is in progress
    /// either way.
    pub(super) fn idle_for(&self, calls_in_flight: usize) -> Option<Duration> {
        if self.serving() || calls_in_flight > 0 {
            return None;
        }
        let last_active = *self.last_active.lock().expect("last_active poisoned");
        Some(last_active.elapsed())
    }
}

/// Marks one of the service's calls as waiting on the peer while it lives.
pub(super) struct WaitingOnPeer<'a>(&'a Status);

impl Drop for WaitingOnPeer<'_> {
    fn drop(&mut self) {
        self.0.waiting_on_peer.send_modify(|n| *n -= 1);
    }
}
