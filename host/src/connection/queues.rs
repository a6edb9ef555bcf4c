//! The queues between the socket and the service, bounded in bytes as well
//! as in messages: the peer's requests waiting for the service, and the
//! messages waiting for the socket. Each message holds a share of its
//! queue's byte budget (its decoded weight) until it leaves the queue;
//! when the budget is spent, whoever adds to the queue waits: the reader
//! stops reading the socket, the service waits to send its reply.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::exception::Exception;
use crate::protocol::{Message, Request, Seq};

/// A queue's budget of bytes.
pub(super) struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

/// A message's share of a budget, given back when dropped.
pub(super) struct Held {
    _bytes: Option<OwnedSemaphorePermit>,
}

impl ByteBudget {
    pub(super) fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        ByteBudget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Takes `weight` bytes (at most the whole budget, so that one large
    /// message fits alone) if they are free now.
    pub(super) fn try_take(&self, weight: usize) -> Option<Held> {
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(self.capped(weight))
            .ok()?;
        Some(Held {
            _bytes: Some(permit),
        })
    }

    fn capped(&self, weight: usize) -> u32 {
        u32::try_from(weight).unwrap_or(u32::MAX).min(self.total)
    }

    /// Takes `weight` bytes (at most the whole budget, so that one large
    /// message fits alone), waiting until they are free.
    pub(super) async fn take(&self, weight: usize) -> Held {
        if let Some(held) = self.try_take(weight) {
            return held;
        }
        let permit = Arc::clone(&self.bytes)
            .acquire_many_owned(self.capped(weight))
            .await
            .expect("never closed");
        Held {
            _bytes: Some(permit),
        }
    }
}

/// A request of the peer's waiting for the service.
pub(super) struct Incoming {
    pub(super) seq: Seq,
    pub(super) request: Request,
    pub(super) held: Held,
}

/// A message waiting for the socket.
pub(super) struct Outgoing {
    pub(super) message: Message,
    pub(super) held: Held,
}

/// How many outgoing messages may wait for the socket before senders wait.
const OUTBOX_CAPACITY: usize = 1024;

/// The connection is gone: a message could not be queued.
#[derive(Debug)]
pub(super) struct Closed;

/// The messages waiting for the socket, bounded in number and in bytes.
pub(super) struct Outbound {
    outbox: mpsc::Sender<Outgoing>,
    /// The bytes of the messages waiting.
    unsent: ByteBudget,
}

impl Outbound {
    /// An empty queue of at most `max_bytes` (decoded), and its receiving end.
    pub(super) fn new(max_bytes: usize) -> (Self, mpsc::Receiver<Outgoing>) {
        let (outbox, outgoing) = mpsc::channel(OUTBOX_CAPACITY);
        let outbound = Outbound {
            outbox,
            unsent: ByteBudget::new(max_bytes),
        };
        (outbound, outgoing)
    }

    /// Queues `message`, once its bytes fit in the budget.
    pub(super) async fn send(&self, message: Message) -> Result<(), Closed> {
        let held = self.unsent.take(message.weight()).await;
        let outgoing = Outgoing { message, held };
        self.outbox.send(outgoing).await.map_err(|_| Closed)
    }

    /// Queues a small message (a release) outside the byte budget, if the
    /// queue has room now; gives it back when it has not.
    pub(super) fn try_send_small(&self, message: Message) -> Result<(), Option<Message>> {
        let outgoing = Outgoing {
            message,
            held: Held { _bytes: None },
        };
        self.outbox.try_send(outgoing).map_err(|error| match error {
            mpsc::error::TrySendError::Full(outgoing) => Some(outgoing.message),
            mpsc::error::TrySendError::Closed(_) => None,
        })
    }

    /// Queues a small message (a release) outside the byte budget.
    pub(super) async fn send_small(&self, message: Message) -> Result<(), Closed> {
        let outgoing = Outgoing {
            message,
            held: Held { _bytes: None },
        };
        self.outbox.send(outgoing).await.map_err(|_| Closed)
    }
}

/// The exception a request gets when the service's queue is full.
pub(super) fn queue_full(limit: usize) -> Exception {
    Exception::runtime_error(format!(
        "too many requests waiting on this connection (the limit is {limit})"
    ))
}
