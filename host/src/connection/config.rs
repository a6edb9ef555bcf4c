//! The bounds and timeouts of a connection, each with its default and the
//! reason for it.

use std::time::Duration;

pub use crate::held::DEFAULT_MAX_HELD_OBJECTS;

/// RPyC's `sync_request_timeout`: how long a call waits for its reply.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest frame either side accepts. Large enough for any sensible
/// argument; small enough that a hostile length prefix costs little memory.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// How many of this side's calls may wait for replies at once (tarpc's
/// default). Past it, a call fails at once with [`Error::TooManyInFlight`](crate::Error::TooManyInFlight).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;

/// How many of the peer's requests may wait for the service. Past it, a
/// request is answered at once with a `RuntimeError`, so a flooding peer
/// cannot grow the queue.
pub const DEFAULT_MAX_QUEUED_REQUESTS: usize = 1000;

/// How many bytes (decoded) the peer's requests waiting for the service may
/// take, and as many again the messages waiting for the socket (replies to
/// a peer that does not read them). Past it the connection stops reading
/// the socket, or the service waits to send, until the queue drains: a
/// peer's excess costs the host at most twice this. Twice the largest
/// frame, so that a frame of any allowed size passes.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 2 * DEFAULT_MAX_FRAME;

/// How many objects (methods, instances) the peer may hold of this side at
/// once. A client that forgets to release them hits this instead of growing
/// the host's memory; RPyC's client releases each method right after use.
pub const DEFAULT_MAX_LENT_OBJECTS: usize = 10_000;

/// How long a peer may take to finish a frame it has begun: a client that
/// sends half a frame and stalls is dropped instead of holding a buffer.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection polls for the next request, counted from its
/// last reply, before it sleeps (see [`Config::read_spin`]); while it
/// serves a call it polls too, for at most a millisecond. A server's
/// default: a request that follows within it is read without waking a
/// sleeping core. Idle clients do not poll (a client awaiting a reply
/// does: [`DEFAULT_REPLY_SPIN`]).
pub const DEFAULT_SERVER_READ_SPIN: Duration = Duration::from_micros(100);

/// How long a connection that awaits a reply polls for it before it sleeps
/// (see [`Config::reply_spin`]): replies on a local network come within it.
pub const DEFAULT_REPLY_SPIN: Duration = Duration::from_micros(100);

/// How long a server's connection may go without a message, while neither
/// side has a call in progress, before it is closed: an idle connection holds
/// a service instance and a connection slot, and one whose peer vanished
/// without closing (a half-open socket) would hold them forever. Long enough
/// for an interactive session that pauses; short enough that forgotten
/// connections give their slots back within minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a write may wait for a peer that does not read.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds and timeouts of one connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// See [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Duration,
    /// See [`DEFAULT_MAX_FRAME`].
    pub max_frame: usize,
    /// See [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// See [`DEFAULT_MAX_QUEUED_REQUESTS`].
    pub max_queued_requests: usize,
    /// See [`DEFAULT_MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
    /// See [`DEFAULT_MAX_LENT_OBJECTS`].
    pub max_lent_objects: usize,
    /// See [`DEFAULT_MAX_HELD_OBJECTS`].
    pub max_held_objects: usize,
    /// See [`DEFAULT_FRAME_TIMEOUT`].
    pub frame_timeout: Duration,
    /// See [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// How long an idle connection polls for the next frame before it
    /// sleeps, yielding to other tasks meanwhile: spends otherwise idle CPU
    /// to save a core's wake-up per request. Zero (the default) never polls;
    /// servers use [`DEFAULT_SERVER_READ_SPIN`].
    pub read_spin: Duration,
    /// How long a connection polls for the next frame while one of its calls
    /// awaits a reply (a callback round trip is two such waits). See
    /// [`DEFAULT_REPLY_SPIN`]; zero never polls.
    pub reply_spin: Duration,
    /// How long the connection may idle before it is closed (see
    /// [`DEFAULT_IDLE_TIMEOUT`], the servers' default); `None` (clients'
    /// default) never closes an idle connection.
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_queued_requests: DEFAULT_MAX_QUEUED_REQUESTS,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_lent_objects: DEFAULT_MAX_LENT_OBJECTS,
            max_held_objects: DEFAULT_MAX_HELD_OBJECTS,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            read_spin: Duration::ZERO,
            reply_spin: DEFAULT_REPLY_SPIN,
            idle_timeout: None,
        }
    }
}

impl Config {
    /// How many of the peer's objects a codec that names them by its own ids
    /// (RPyC's) keeps track of: those held, and as many again whose
    /// releases are on their way.
    pub(crate) fn max_named_objects(&self) -> usize {
        self.max_held_objects.saturating_mul(2)
    }
}
