//! Protocol messages, independent of any wire format, and the codecs that
//! turn them into bytes and back.
//!
//! A codec only converts between bytes and [`Message`]s; it never does I/O.
//! The connection moves bytes; dispatch acts on messages.

pub mod native;
pub mod rpyc;

use serde::{Deserialize, Serialize};

use crate::exception::Exception;
use crate::value::Value;

/// Numbers a request so its reply can find it. Each side counts its own.
pub type Seq = u32;

/// Names an object that the side receiving the request holds.
pub type ObjectId = u64;

/// The root object: every side's service, always present.
pub const ROOT: ObjectId = 0;

/// One message on a connection: either side may send either kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// A request the receiver must answer with a [`Message::Reply`] of the same `seq`.
    Request {
        /// The sender's sequence number.
        seq: Seq,
        /// What is asked.
        request: Request,
    },
    /// The answer to the receiver's request `seq`.
    Reply {
        /// The sequence number of the request answered.
        seq: Seq,
        /// The result, or the exception the call raised.
        result: Result<Value, Exception>,
    },
}

/// An operation on one of the receiver's objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Call the method `name` of `target` (RPyC's CALLATTR; GETATTR + CALL in
    /// one round trip).
    CallAttr {
        /// The object whose method is called.
        target: ObjectId,
        /// The method's name, with or without the `exposed_` prefix.
        name: String,
        /// Positional arguments.
        args: Vec<Value>,
        /// Keyword arguments, in the caller's order.
        kwargs: Vec<(String, Value)>,
    },
    /// Echo `data` back (a liveness check).
    Ping(Value),
    /// The sender is closing the connection; no reply follows.
    Close,
}

/// Turns bytes into messages and back, without I/O.
pub trait Codec: Send + 'static {
    /// Decodes one message from the front of `buf`: `Ok(None)` when more
    /// bytes are needed, else the message and how many bytes it used.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError>;

    /// Appends `message` as one frame to `out`. On error nothing is appended.
    fn encode(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), FrameError>;
}

/// Why bytes could not become a message, or a message bytes. The stream
/// cannot be trusted after a decode error; an encode error affects only the
/// one message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame longer than the connection's bound.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Bytes that are not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer's preamble was refused.
    #[error(transparent)]
    Preamble(#[from] native::PreambleError),
}
