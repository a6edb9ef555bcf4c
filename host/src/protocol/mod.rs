//! Protocol messages, independent of any wire format, and the codecs that
//! turn them into bytes and back.
//!
//! A codec only converts between bytes and [`Message`]s; it never does I/O.
//! The connection moves bytes; dispatch acts on messages.

pub mod native;
pub mod rpyc;
pub mod wire;

use serde::{Deserialize, Serialize};

use crate::exception::Exception;
use crate::value::Value;

/// Numbers a request so its reply can find it. Each side counts its own.
pub type Seq = u32;

pub use crate::value::{Holder, ObjectId, ObjectRef};
pub use wire::{Wire, WireCodec};

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

impl Message {
    /// Roughly how many bytes the message takes in memory, decoded: what
    /// the queues of a connection are bounded by.
    pub(crate) fn weight(&self) -> usize {
        let values = match self {
            Message::Request { request, .. } => request.weight(),
            Message::Reply {
                result: Ok(value), ..
            } => value.weight(),
            Message::Reply {
                result: Err(exception),
                ..
            } => {
                let traceback = exception.traceback.as_ref().map_or(0, String::len);
                exception.type_name.len() + exception.message.len() + traceback
            }
        };
        size_of::<Message>() + values
    }

    /// Calls `visit` with every value the message carries (a reply's
    /// result, a request's arguments and operands).
    pub(crate) fn for_each_value_mut(&mut self, mut visit: impl FnMut(&mut Value)) {
        match self {
            Message::Reply {
                result: Ok(value), ..
            } => visit(value),
            Message::Reply { result: Err(_), .. } => {}
            Message::Request { request, .. } => match request {
                Request::Call { args, kwargs, .. } | Request::CallAttr { args, kwargs, .. } => {
                    args.iter_mut().for_each(&mut visit);
                    kwargs.iter_mut().for_each(|(_, value)| visit(value));
                }
                Request::SetAttr { value, .. }
                | Request::Cmp { other: value, .. }
                | Request::Ping(value) => visit(value),
                _ => {}
            },
        }
    }

    /// Replaces what the message carries with `exception`: a reply raises
    /// it, a request is answered with it.
    pub(crate) fn refuse(&mut self, exception: Exception) {
        match self {
            Message::Reply { result, .. } => *result = Err(exception),
            Message::Request { request, .. } => *request = Request::Invalid(exception),
        }
    }
}

impl Request {
    /// The bytes the request's names and values take (see
    /// [`Message::weight`]).
    pub(crate) fn weight(&self) -> usize {
        match self {
            Request::Call { args, kwargs, .. } => arguments_weight(args, kwargs),
            Request::CallAttr {
                name, args, kwargs, ..
            } => name.len() + arguments_weight(args, kwargs),
            Request::SetAttr { name, value, .. } => name.len() + value.weight(),
            Request::GetAttr { name, .. } | Request::DelAttr { name, .. } => name.len(),
            Request::Ping(value) => value.weight(),
            _ => 0,
        }
    }
}

/// The weight of a call's arguments (see [`Message::weight`]).
fn arguments_weight(args: &[Value], kwargs: &[(String, Value)]) -> usize {
    let args: usize = args.iter().map(Value::weight).sum();
    let kwargs: usize = kwargs
        .iter()
        .map(|(name, value)| name.len() + value.weight())
        .sum();
    args + kwargs
}

/// An operation on one of the receiver's objects (`target` is the receiver's
/// object id), or on the connection itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// The receiver's root object (its service), lent to the sender.
    GetRoot,
    /// An attribute: for a service, an exposed method as an object.
    GetAttr {
        /// The object.
        target: ObjectId,
        /// The attribute's name, with or without the `exposed_` prefix.
        name: String,
    },
    /// Setting an attribute (refused, as RPyC's default config does, unless
    /// the object's service allows it).
    SetAttr {
        /// The object.
        target: ObjectId,
        /// The attribute's name.
        name: String,
        /// The value.
        value: Value,
    },
    /// Deleting an attribute (refused unless the object's service allows it).
    DelAttr {
        /// The object.
        target: ObjectId,
        /// The attribute's name.
        name: String,
    },
    /// Calling the object itself.
    Call {
        /// The object.
        target: ObjectId,
        /// Positional arguments.
        args: Vec<Value>,
        /// Keyword arguments, in the caller's order.
        kwargs: Vec<(String, Value)>,
    },
    /// Calling the method `name` of `target` (GETATTR + CALL in one round trip).
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
    /// The sender drops `count` references to an object it was lent: every
    /// time it was lent since its last release.
    Del {
        /// The object.
        target: ObjectId,
        /// How many references are dropped.
        count: u64,
    },
    /// The object's methods, as `(name, doc)` pairs (RPyC's INSPECT).
    Inspect {
        /// The object.
        target: ObjectId,
    },
    /// Python's `repr(obj)`.
    Repr {
        /// The object.
        target: ObjectId,
    },
    /// Python's `str(obj)`.
    Str {
        /// The object.
        target: ObjectId,
    },
    /// Python's `hash(obj)`.
    Hash {
        /// The object.
        target: ObjectId,
    },
    /// Python's `dir(obj)`.
    Dir {
        /// The object.
        target: ObjectId,
    },
    /// A rich comparison: `op` is `__eq__`, `__ne__`, `__lt__`, ...
    Cmp {
        /// The object.
        target: ObjectId,
        /// What it is compared with.
        other: Value,
        /// The comparison's dunder name.
        op: String,
    },
    /// Up to `count` items of an iterable object, as a tuple (RPyC's
    /// BUFFITER): how a list lent by reference is read in one round trip.
    BuffIter {
        /// The object.
        target: ObjectId,
        /// How many items at most.
        count: u64,
    },
    /// Pickling the object (`pickle.dumps(obj, protocol)`): refused unless
    /// the object's service allows it (classic mode does).
    Pickle {
        /// The object.
        target: ObjectId,
        /// The pickle protocol the sender reads.
        protocol: u32,
    },
    /// The end of a `with` block on the object: its `__exit__`, told of the
    /// exception the block raised (`None` when it ended normally).
    CtxExit {
        /// The object.
        target: ObjectId,
        /// What the block raised, as RPyC's client sends it: the
        /// exception's class.
        exception: Value,
    },
    /// Whether the receiver's object `target`, a class, is a class of
    /// `instance` (Python's `isinstance`).
    InstanceCheck {
        /// The class.
        target: ObjectId,
        /// The object asked about, if the id_pack RPyC's client names it by
        /// is one of the receiver's (it may be another connection's).
        instance: Option<ObjectRef>,
    },
    /// An operation this side does not offer (the codec names it).
    Unsupported {
        /// What was asked, as the peer's protocol names it.
        operation: String,
    },
    /// A request the codec could read but not make sense of (wrong
    /// arguments, another protocol version); the reply is this exception.
    Invalid(Exception),
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
    /// The peer lent more objects at once than this side keeps track of.
    #[error("the peer lent more than {limit} objects at once")]
    TooManyObjects {
        /// The bound (the connection's `max_held_objects`).
        limit: usize,
    },
    /// The peer's preamble was refused.
    #[error(transparent)]
    Preamble(#[from] native::PreambleError),
}
