//! RPyC 6 messages (`rpyc/core/protocol.py`): a payload is one type byte
//! (request, reply, exception) and the brine of `(seq, args)`. A request's
//! args are `(handler, boxed_args)`; a reply's are the boxed result; an
//! exception's are the vinegar dump.
//!
//! An RPyC 5.x peer sends `(type, seq, args)` as one brine tuple (first byte
//! 0x12). RPyC 6 answers it with `invalid message type: 18` (rpyc issue
//! #552); this codec instead answers every such request, in the 5.x envelope
//! the peer can read, with an exception that names the version mismatch.

use std::sync::{Arc, Mutex};

use super::boxing::{PeerObjects, our_id, our_object, unbox, write_boxed};
use super::handler::Handler;
use super::{brine, channel, vinegar};
use crate::exception::Exception;
use crate::protocol::{Codec, FrameError, Holder, Message, ObjectId, ObjectRef, Request, Seq};
use crate::value::Value;

const MSG_REQUEST: u8 = 1;
const MSG_REPLY: u8 = 2;
const MSG_EXCEPTION: u8 = 3;

/// The first payload byte of an RPyC 5.x message (brine's 3-tuple tag).
const RPYC5_ENVELOPE: u8 = 0x12;

/// One direction of an RPyC connection. Make both with [`RpycCodec::pair`]:
/// they share the table of the peer's objects and the dialect.
pub struct RpycCodec {
    max_frame: usize,
    state: Arc<Mutex<State>>,
}

struct State {
    peer: PeerObjects,
    /// The peer speaks RPyC 5.x: its requests are refused in its envelope.
    rpyc5: bool,
}

impl RpycCodec {
    /// The decoder and encoder of one connection: frames of at most
    /// `max_frame` bytes, at most `max_peer_objects` of the peer's objects held.
    pub fn pair(max_frame: usize, max_peer_objects: usize) -> (RpycCodec, RpycCodec) {
        let state = Arc::new(Mutex::new(State {
            peer: PeerObjects::new(max_peer_objects),
            rpyc5: false,
        }));
        let half = || RpycCodec {
            max_frame,
            state: Arc::clone(&state),
        };
        (half(), half())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("codec state poisoned")
    }
}

impl Codec for RpycCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
        let Some(frame) = channel::decode(buf, self.max_frame)? else {
            return Ok(None);
        };
        let message = self.message(&frame.payload)?;
        Ok(Some((message, frame.used)))
    }

    fn encode(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let payload = self.payload(message)?;
        if payload.len() > self.max_frame {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        channel::encode(&payload, out);
        Ok(())
    }
}

fn malformed(what: impl std::fmt::Display) -> FrameError {
    FrameError::Malformed(what.to_string())
}

/// Splits `(seq, args)`.
fn seq_and_args(value: Value) -> Result<(Seq, Value), FrameError> {
    match value {
        Value::Tuple(pair) => match <[Value; 2]>::try_from(pair) {
            Ok([Value::Int(seq), args]) => Ok((
                Seq::try_from(seq).map_err(|_| malformed(format!("sequence number {seq}")))?,
                args,
            )),
            Ok(pair) => Err(malformed(format!("message {}", Value::Tuple(pair.into())))),
            Err(pair) => Err(malformed(format!("message of {} parts", pair.len()))),
        },
        other => Err(malformed(format!("message {other}"))),
    }
}

impl RpycCodec {
    /// Reads one payload.
    fn message(&self, payload: &[u8]) -> Result<Message, FrameError> {
        let (&kind, body) = payload
            .split_first()
            .ok_or_else(|| malformed("an empty message"))?;
        match kind {
            RPYC5_ENVELOPE => return self.rpyc5_request(payload),
            MSG_REQUEST | MSG_REPLY | MSG_EXCEPTION => {}
            other => return Err(malformed(format!("invalid message type: {other}"))),
        }
        let (seq, args) = seq_and_args(brine::decode(body).map_err(malformed)?)?;
        let mut state = self.state();
        Ok(match kind {
            MSG_REQUEST => {
                let (handler, boxed) = match args {
                    Value::Tuple(pair) => match <[Value; 2]>::try_from(pair) {
                        Ok([Value::Int(handler), boxed]) => (handler, boxed),
                        _ => return Err(malformed("a request that is not (handler, args)")),
                    },
                    other => return Err(malformed(format!("request {other}"))),
                };
                let args = unbox(boxed, &mut state.peer)?;
                Message::Request {
                    seq,
                    request: request(handler, args).unwrap_or_else(Request::Invalid),
                }
            }
            MSG_REPLY => Message::Reply {
                seq,
                result: Ok(unbox(args, &mut state.peer)?),
            },
            MSG_EXCEPTION => Message::Reply {
                seq,
                result: Err(vinegar::load(args)),
            },
            _ => unreachable!("checked above"),
        })
    }

    /// An RPyC 5.x message: refused, and the peer marked as 5.x so the
    /// refusal goes out in the envelope it reads.
    fn rpyc5_request(&self, payload: &[u8]) -> Result<Message, FrameError> {
        let seq = match brine::decode(payload).map_err(malformed)? {
            Value::Tuple(parts) if parts.len() == 3 => match parts[1] {
                Value::Int(seq) => {
                    Seq::try_from(seq).map_err(|_| malformed(format!("sequence number {seq}")))?
                }
                _ => return Err(malformed("an RPyC 5.x message without a sequence number")),
            },
            _ => return Err(malformed("invalid message type: 18")),
        };
        self.state().rpyc5 = true;
        let mismatch = Exception::value_error(
            "this host speaks the RPyC 6 wire protocol and the client speaks RPyC 5.x, whose messages \
             differ (rpyc issue #552): use an rpyc 6.x client",
        );
        Ok(Message::Request {
            seq,
            request: Request::Invalid(mismatch),
        })
    }

    /// Writes one payload.
    fn payload(&self, message: &Message) -> Result<Vec<u8>, FrameError> {
        let mut state = self.state();
        let (kind, seq) = match message {
            Message::Request { seq, .. } => (MSG_REQUEST, seq),
            Message::Reply { seq, result: Ok(_) } => (MSG_REPLY, seq),
            Message::Reply {
                seq,
                result: Err(_),
            } => (MSG_EXCEPTION, seq),
        };
        let mut out = Vec::new();
        let put = |value: &Value, out: &mut Vec<u8>| brine::encode(value, out).map_err(malformed);
        if state.rpyc5 {
            brine::tuple_header(3, &mut out);
            put(&Value::Int(kind.into()), &mut out)?;
        } else {
            out.push(kind);
            brine::tuple_header(2, &mut out);
        }
        put(&Value::Int((*seq).into()), &mut out)?;
        match message {
            Message::Request { request, .. } => {
                let (handler, args) = handler_and_args(request, &state.peer)?;
                brine::tuple_header(2, &mut out);
                put(&Value::Int(handler.number()), &mut out)?;
                write_boxed(&Value::Tuple(args), &state.peer, &mut out)?;
                if let Request::Del { target, count } = request {
                    state.peer.release(*target, *count);
                }
            }
            Message::Reply {
                result: Ok(value), ..
            } => write_boxed(value, &state.peer, &mut out)?,
            Message::Reply {
                result: Err(exception),
                ..
            } => put(&vinegar::dump(exception), &mut out)?,
        }
        Ok(out)
    }
}

/// A reference to the receiver's object `id` (the class is known to the
/// table of the peer's objects).
fn theirs(id: ObjectId) -> Value {
    Value::Object(ObjectRef {
        holder: Holder::Receiver,
        id,
        class: String::new(),
        is_class: false,
    })
}

/// The handler and arguments of a request this side sends.
fn handler_and_args(
    request: &Request,
    peer: &PeerObjects,
) -> Result<(Handler, Vec<Value>), FrameError> {
    let str = |s: &String| Value::Str(s.clone());
    let call_args = |args: &[Value], kwargs: &[(String, Value)]| {
        let kwargs = kwargs
            .iter()
            .map(|(k, v)| Value::Tuple(vec![str(k), v.clone()]))
            .collect();
        [Value::Tuple(args.to_vec()), Value::Tuple(kwargs)]
    };
    Ok(match request {
        Request::Ping(data) => (Handler::Ping, vec![data.clone()]),
        Request::Close => (Handler::Close, vec![]),
        Request::GetRoot => (Handler::GetRoot, vec![]),
        Request::GetAttr { target, name } => (Handler::GetAttr, vec![theirs(*target), str(name)]),
        Request::DelAttr { target, name } => (Handler::DelAttr, vec![theirs(*target), str(name)]),
        Request::SetAttr {
            target,
            name,
            value,
        } => (
            Handler::SetAttr,
            vec![theirs(*target), str(name), value.clone()],
        ),
        Request::Call {
            target,
            args,
            kwargs,
        } => {
            let [args, kwargs] = call_args(args, kwargs);
            (Handler::Call, vec![theirs(*target), args, kwargs])
        }
        Request::CallAttr {
            target,
            name,
            args,
            kwargs,
        } => {
            let [args, kwargs] = call_args(args, kwargs);
            (
                Handler::CallAttr,
                vec![theirs(*target), str(name), args, kwargs],
            )
        }
        Request::Repr { target } => (Handler::Repr, vec![theirs(*target)]),
        Request::Str { target } => (Handler::Str, vec![theirs(*target)]),
        Request::Cmp { target, other, op } => {
            (Handler::Cmp, vec![theirs(*target), other.clone(), str(op)])
        }
        Request::Hash { target } => (Handler::Hash, vec![theirs(*target)]),
        Request::Dir { target } => (Handler::Dir, vec![theirs(*target)]),
        Request::Pickle { target, protocol } => (
            Handler::Pickle,
            vec![theirs(*target), Value::Int((*protocol).into())],
        ),
        Request::Del { target, count } => (
            Handler::Del,
            vec![theirs(*target), Value::Int((*count).into())],
        ),
        Request::Inspect { target } => (Handler::Inspect, vec![peer.id_pack(*target)?]),
        Request::BuffIter { target, count } => (
            Handler::BuffIter,
            vec![theirs(*target), Value::Int((*count).into())],
        ),
        Request::CtxExit { target, exception } => {
            (Handler::CtxExit, vec![theirs(*target), exception.clone()])
        }
        Request::InstanceCheck {
            target,
            instance: Some(instance),
        } => (
            Handler::InstanceCheck,
            vec![theirs(*target), peer.id_pack(instance.id)?],
        ),
        Request::InstanceCheck { instance: None, .. } => {
            return Err(malformed(
                "an INSTANCECHECK naming no object cannot be sent",
            ));
        }
        Request::Unsupported { operation } => {
            return Err(malformed(format!("{operation} cannot be sent")));
        }
        Request::Invalid(exception) => {
            return Err(malformed(format!(
                "an invalid request ({exception}) cannot be sent"
            )));
        }
    })
}

/// The request a peer's `handler` with unboxed `args` asks for; an error is
/// the exception to answer with.
fn request(number: i128, args: Value) -> Result<Request, Exception> {
    let handler = Handler::from_number(number)
        .ok_or_else(|| Exception::key_error(format!("unknown handler {number}")))?;
    let name = handler.name();
    let Value::Tuple(args) = args else {
        return Err(Exception::type_error(format!(
            "{name}: arguments must be a tuple"
        )));
    };
    let count = args.len();
    let wrong = || {
        Exception::type_error(format!(
            "{name}: unexpected arguments ({count} of them, or of the wrong type)"
        ))
    };
    macro_rules! take {
        ($n:literal) => {
            <[Value; $n]>::try_from(args).map_err(|_| wrong())?
        };
    }
    let target = |value: Value| match value {
        Value::Object(object) if object.holder == Holder::Receiver => Ok(object.id),
        _ => Err(wrong()),
    };
    let text = |value: Value| match value {
        Value::Str(s) => Ok(s),
        Value::Bytes(b) => String::from_utf8(b).map_err(|_| wrong()),
        _ => Err(wrong()),
    };
    let kwargs = |value: Value| value.into_keyword_pairs().ok_or_else(wrong);
    let positional = |value: Value| match value {
        Value::Tuple(args) => Ok(args),
        _ => Err(wrong()),
    };
    Ok(match handler {
        Handler::Ping => {
            let [data] = take!(1);
            Request::Ping(data)
        }
        Handler::Close => Request::Close,
        Handler::GetRoot => Request::GetRoot,
        Handler::GetAttr | Handler::DelAttr => {
            let [obj, name_value] = take!(2);
            let (target, name_text) = (target(obj)?, text(name_value)?);
            if handler == Handler::GetAttr {
                Request::GetAttr {
                    target,
                    name: name_text,
                }
            } else {
                Request::DelAttr {
                    target,
                    name: name_text,
                }
            }
        }
        Handler::SetAttr => {
            let [obj, attr, value] = take!(3);
            Request::SetAttr {
                target: target(obj)?,
                name: text(attr)?,
                value,
            }
        }
        Handler::Call => {
            let [obj, args, kw] = take!(3);
            Request::Call {
                target: target(obj)?,
                args: positional(args)?,
                kwargs: kwargs(kw)?,
            }
        }
        Handler::CallAttr => {
            let [obj, attr, args, kw] = take!(4);
            Request::CallAttr {
                target: target(obj)?,
                name: text(attr)?,
                args: positional(args)?,
                kwargs: kwargs(kw)?,
            }
        }
        Handler::Repr | Handler::Str | Handler::Hash | Handler::Dir => {
            let [obj] = take!(1);
            let target = target(obj)?;
            match handler {
                Handler::Repr => Request::Repr { target },
                Handler::Str => Request::Str { target },
                Handler::Hash => Request::Hash { target },
                _ => Request::Dir { target },
            }
        }
        Handler::Cmp => {
            let [obj, other, op] = take!(3);
            Request::Cmp {
                target: target(obj)?,
                other,
                op: text(op)?,
            }
        }
        Handler::Pickle => match take!(2) {
            [obj, Value::Int(protocol)] => Request::Pickle {
                target: target(obj)?,
                protocol: u32::try_from(protocol).map_err(|_| wrong())?,
            },
            _ => return Err(wrong()),
        },
        Handler::Del => match take!(2) {
            [obj, Value::Int(count)] => Request::Del {
                target: target(obj)?,
                count: u64::try_from(count).map_err(|_| wrong())?,
            },
            _ => return Err(wrong()),
        },
        Handler::Inspect => {
            let [pack] = take!(1);
            Request::Inspect {
                target: our_id(pack).map_err(|_| wrong())?,
            }
        }
        Handler::BuffIter => match take!(2) {
            [obj, Value::Int(count)] => Request::BuffIter {
                target: target(obj)?,
                count: u64::try_from(count).map_err(|_| wrong())?,
            },
            _ => return Err(wrong()),
        },
        Handler::CtxExit => {
            let [obj, exception] = take!(2);
            Request::CtxExit {
                target: target(obj)?,
                exception,
            }
        }
        Handler::InstanceCheck => {
            let [obj, pack] = take!(2);
            Request::InstanceCheck {
                target: target(obj)?,
                instance: our_object(pack).ok(),
            }
        }
        Handler::OldSlicing => Request::Unsupported {
            operation: name.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rpyc::vectors::hex;

    fn unhex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_one(codec: &mut RpycCodec, bytes: &[u8]) -> Message {
        let (message, used) = codec.decode(bytes).unwrap().expect("a whole frame");
        assert_eq!(used, bytes.len());
        message
    }

    #[test]
    fn the_reference_frames_decode_and_encode_exactly() {
        let (mut reader, mut writer) = RpycCodec::pair(1 << 20, 100);
        let getroot = unhex("00000008 00 01 11 50 11 53 11 51 02 0a");
        assert_eq!(
            decode_one(&mut reader, &getroot),
            Message::Request {
                seq: 0,
                request: Request::GetRoot
            }
        );
        let reply = Message::Reply {
            seq: 3,
            result: Ok(Value::Int(11)),
        };
        let mut out = Vec::new();
        writer.encode(&reply, &mut out).unwrap();
        assert_eq!(hex(&out), hex(&unhex("00000006 00 02 11 53 11 51 5b 0a")));
    }

    #[test]
    fn a_call_from_the_python_client_round_trips_through_our_references() {
        let (mut reader, mut writer) = RpycCodec::pair(1 << 20, 100);
        // We lend method 5; the client calls it with (4, 7) and no kwargs.
        let lent = Value::Object(ObjectRef {
            holder: Holder::Sender,
            id: 5,
            class: "builtins.method".into(),
            is_class: false,
        });
        let mut out = Vec::new();
        writer
            .encode(
                &Message::Reply {
                    seq: 2,
                    result: Ok(lent),
                },
                &mut out,
            )
            .unwrap();
        let (frame, _) = reader.decode(&out).unwrap().unwrap();
        let Message::Reply {
            result: Ok(Value::Object(_)),
            ..
        } = frame
        else {
            panic!("{frame:?}")
        };
        let pack = {
            let payload = channel::decode(&out, 1 << 20)
                .unwrap()
                .unwrap()
                .payload
                .into_owned();
            let Value::Tuple(parts) = brine::decode(&payload[1..]).unwrap() else {
                panic!()
            };
            let Value::Tuple(boxed) = parts[1].clone() else {
                panic!()
            };
            boxed[1].clone()
        };
        let request = Value::Tuple(vec![
            Value::Int(3),
            Value::Tuple(vec![
                Value::Int(7),
                Value::Tuple(vec![
                    Value::Int(2),
                    Value::Tuple(vec![
                        Value::Tuple(vec![Value::Int(3), pack]),
                        Value::Tuple(vec![
                            Value::Int(1),
                            Value::Tuple(vec![Value::Int(4), Value::Int(7)]),
                        ]),
                        Value::Tuple(vec![Value::Int(1), Value::Tuple(vec![])]),
                    ]),
                ]),
            ]),
        ]);
        let mut payload = vec![MSG_REQUEST];
        brine::encode(&request, &mut payload).unwrap();
        let mut frame = Vec::new();
        channel::encode(&payload, &mut frame);
        assert_eq!(
            decode_one(&mut reader, &frame),
            Message::Request {
                seq: 3,
                request: Request::Call {
                    target: 5,
                    args: vec![Value::Int(4), Value::Int(7)],
                    kwargs: vec![]
                }
            }
        );
    }

    fn request_frame(handler: i128, args: Value) -> Vec<u8> {
        let mut payload = vec![MSG_REQUEST];
        let boxed = Value::Tuple(vec![Value::Int(1), args]);
        brine::encode(
            &Value::Tuple(vec![
                Value::Int(9),
                Value::Tuple(vec![Value::Int(handler), boxed]),
            ]),
            &mut payload,
        )
        .unwrap();
        let mut frame = Vec::new();
        channel::encode(&payload, &mut frame);
        frame
    }

    #[test]
    fn unknown_handlers_and_bad_arguments_become_exceptions_not_closed_streams() {
        let (mut reader, _) = RpycCodec::pair(1 << 20, 100);
        let invalid = |message: Message| match message {
            Message::Request {
                seq: 9,
                request: Request::Invalid(e),
            } => e,
            other => panic!("{other:?}"),
        };
        let e = invalid(decode_one(
            &mut reader,
            &request_frame(99, Value::Tuple(vec![])),
        ));
        assert!(
            e.is("KeyError") && e.message.contains("unknown handler 99"),
            "{e}"
        );
        let e = invalid(decode_one(
            &mut reader,
            &request_frame(4, Value::Tuple(vec![Value::Int(1)])),
        ));
        assert!(
            e.is("TypeError") && e.message.contains("HANDLE_GETATTR"),
            "{e}"
        );
        let oldslicing = decode_one(&mut reader, &request_frame(18, Value::Tuple(vec![])));
        assert!(matches!(
            oldslicing,
            Message::Request {
                request: Request::Unsupported { .. },
                ..
            }
        ));
        let mut bad_type = Vec::new();
        channel::encode(&[7, 0x02], &mut bad_type);
        assert!(
            matches!(reader.decode(&bad_type), Err(FrameError::Malformed(m)) if m.contains("invalid message type: 7"))
        );
    }

    #[test]
    fn an_rpyc5_client_is_told_about_the_version_in_its_own_envelope() {
        let (mut reader, mut writer) = RpycCodec::pair(1 << 20, 100);
        // RPyC 5.x: brine((MSG_REQUEST, seq, (HANDLE_GETROOT, (1, ()))))
        let mut payload = Vec::new();
        let v5 = Value::Tuple(vec![
            Value::Int(1),
            Value::Int(0),
            Value::Tuple(vec![
                Value::Int(3),
                Value::Tuple(vec![Value::Int(1), Value::Tuple(vec![])]),
            ]),
        ]);
        brine::encode(&v5, &mut payload).unwrap();
        assert_eq!(payload[0], RPYC5_ENVELOPE);
        let mut frame = Vec::new();
        channel::encode(&payload, &mut frame);
        let Message::Request {
            seq: 0,
            request: Request::Invalid(e),
        } = decode_one(&mut reader, &frame)
        else {
            panic!()
        };
        assert!(
            e.message.contains("RPyC 5.x") && e.message.contains("#552"),
            "{e}"
        );
        let mut out = Vec::new();
        writer
            .encode(
                &Message::Reply {
                    seq: 0,
                    result: Err(e),
                },
                &mut out,
            )
            .unwrap();
        let payload = channel::decode(&out, 1 << 20)
            .unwrap()
            .unwrap()
            .payload
            .into_owned();
        let Value::Tuple(parts) = brine::decode(&payload).unwrap() else {
            panic!()
        };
        assert_eq!(
            parts[..2],
            [Value::Int(3), Value::Int(0)],
            "an exception, seq 0, in the 5.x envelope"
        );
    }
}
