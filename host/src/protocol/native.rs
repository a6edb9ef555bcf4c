//! The native wire format, the fast path between wasm-rpyc peers.
//!
//! Each side first sends [`PREAMBLE`] (a magic and the format version), then
//! frames: a 4-byte big-endian payload length, then the [`Message`] encoded by
//! serde + bincode (standard configuration). The magic cannot begin an RPyC
//! stream below 1.3 GB frames, so one listener tells the protocols apart.

use bincode::config::{Configuration, standard};

use super::{Codec, FrameError, Message};

/// The first bytes each side sends: magic `wRPC` and the format version.
pub const PREAMBLE: [u8; 5] = *b"wRPC\x01";

/// The bytes of the preamble that name the protocol, before the version.
pub const MAGIC: &[u8; 4] = b"wRPC";

const LENGTH_PREFIX: usize = 4;
const CONFIG: Configuration = standard();

/// How much memory decoding one frame may claim. bincode allocates a string
/// or a list as long as its length prefix says before reading it, so without
/// a bound a 20-byte frame claiming a terabyte aborts the process. A bound on
/// what a frame may claim (not on the frame) keeps that allocation small and
/// leaves room for any frame the connection accepts: a list of values claims
/// the size of a [`Value`](crate::value::Value) per item.
const MAX_DECODE_CLAIM: usize = 1 << 30;
const DECODE_CONFIG: Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODE_CLAIM>,
> = CONFIG.with_limit::<MAX_DECODE_CLAIM>();

/// Why a peer's preamble was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PreambleError {
    /// The peer does not speak the native protocol.
    #[error("the peer does not speak the native wasm-rpyc protocol")]
    NotNative,
    /// The peer speaks another version of it.
    #[error("the peer speaks native protocol version {theirs}, this side speaks {ours}")]
    Version {
        /// The peer's version.
        theirs: u8,
        /// This side's version.
        ours: u8,
    },
}

/// Checks the preamble a peer sent.
pub fn check_preamble(bytes: &[u8; 5]) -> Result<(), PreambleError> {
    if &bytes[..4] != MAGIC {
        return Err(PreambleError::NotNative);
    }
    match bytes[4] {
        v if v == PREAMBLE[4] => Ok(()),
        theirs => Err(PreambleError::Version {
            theirs,
            ours: PREAMBLE[4],
        }),
    }
}

/// Frames of the native protocol, no larger than `max_frame` bytes of payload.
///
/// A codec handles one direction of a stream: it reads or writes the
/// [`PREAMBLE`] before the first frame.
#[derive(Clone, Copy, Debug)]
pub struct NativeCodec {
    max_frame: usize,
    preamble_pending: bool,
}

impl NativeCodec {
    /// A codec that refuses frames larger than `max_frame` bytes and begins
    /// the stream with the preamble.
    pub fn new(max_frame: usize) -> Self {
        NativeCodec {
            max_frame,
            preamble_pending: true,
        }
    }
}

impl Codec for NativeCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
        let mut start = 0;
        if self.preamble_pending {
            let Some(preamble) = buf.first_chunk::<{ PREAMBLE.len() }>() else {
                return Ok(None);
            };
            check_preamble(preamble)?;
            start = PREAMBLE.len();
        }
        // The preamble counts as read only together with the first message.
        let Some((message, used)) = self.decode_frame(&buf[start..])? else {
            return Ok(None);
        };
        self.preamble_pending = false;
        Ok(Some((message, start + used)))
    }

    fn encode(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if self.preamble_pending {
            out.extend_from_slice(&PREAMBLE);
            self.preamble_pending = false;
        }
        self.encode_frame(message, out)
    }
}

impl NativeCodec {
    fn decode_frame(&self, buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
        let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        let Some(payload) = buf[LENGTH_PREFIX..].get(..len) else {
            return Ok(None);
        };
        let (message, used) = bincode::serde::decode_from_slice(payload, DECODE_CONFIG)
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
        if used != len {
            return Err(FrameError::Malformed(format!(
                "{} bytes after the message",
                len - used
            )));
        }
        Ok(Some((message, LENGTH_PREFIX + len)))
    }

    fn encode_frame(&self, message: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start = out.len();
        out.extend_from_slice(&[0; LENGTH_PREFIX]);
        if let Err(e) = bincode::serde::encode_into_std_write(message, out, CONFIG) {
            out.truncate(start);
            return Err(FrameError::Malformed(e.to_string()));
        }
        let len = out.len() - start - LENGTH_PREFIX;
        if len > self.max_frame {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        out[start..start + LENGTH_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ROOT, Request};
    use crate::value::Value;

    fn call() -> Message {
        Message::Request {
            seq: 7,
            request: Request::CallAttr {
                target: ROOT,
                name: "add".into(),
                args: vec![Value::Int(4), Value::Int(7)],
                kwargs: vec![],
            },
        }
    }

    #[test]
    fn frames_round_trip_and_report_partial_input() {
        let mut bytes = Vec::new();
        let mut writer = NativeCodec::new(1024);
        writer.encode(&call(), &mut bytes).unwrap();
        let first = bytes.len();
        writer.encode(&call(), &mut bytes).unwrap();
        assert_eq!(&bytes[..5], &PREAMBLE);
        assert_eq!(
            bytes.len() - first,
            first - PREAMBLE.len(),
            "one preamble only"
        );
        let mut reader = NativeCodec::new(1024);
        for cut in 0..first {
            assert_eq!(reader.decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(reader.decode(&bytes), Ok(Some((call(), first))));
        assert_eq!(
            reader.decode(&bytes[first..]),
            Ok(Some((call(), first - 5)))
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut codec = NativeCodec::new(16);
        codec.preamble_pending = false;
        assert_eq!(
            codec.decode(&[0, 0, 1, 0]),
            Err(FrameError::TooLarge { len: 256, max: 16 })
        );
        assert!(matches!(
            codec.decode(&[0, 0, 0, 3, 0xff, 0xff, 0xff]),
            Err(FrameError::Malformed(_))
        ));
        let mut out = vec![1, 2];
        let big = Message::Reply {
            seq: 1,
            result: Ok(Value::Bytes(vec![0; 64])),
        };
        assert!(matches!(
            codec.encode(&big, &mut out),
            Err(FrameError::TooLarge { max: 16, .. })
        ));
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn preambles_are_checked() {
        assert_eq!(check_preamble(&PREAMBLE), Ok(()));
        assert_eq!(
            check_preamble(b"wRPC\x02"),
            Err(PreambleError::Version { theirs: 2, ours: 1 })
        );
        assert_eq!(
            check_preamble(&[0, 0, 0, 8, 0]),
            Err(PreambleError::NotNative)
        );
        assert_eq!(
            NativeCodec::new(16).decode(b"wRPC\x09rest"),
            Err(FrameError::Preamble(PreambleError::Version {
                theirs: 9,
                ours: 1
            }))
        );
    }

    #[test]
    fn a_length_beyond_the_frame_is_refused_before_anything_is_allocated() {
        let mut frame = Vec::new();
        let message = Message::Request {
            seq: 1,
            request: Request::GetAttr {
                target: ROOT,
                name: "x".into(),
            },
        };
        NativeCodec::new(1024).encode(&message, &mut frame).unwrap();
        assert_eq!(
            &frame[frame.len() - 2..],
            [1, b'x'],
            "the name's length, then the name"
        );
        for claimed in [1u64 << 40, u64::MAX] {
            // The name claims `claimed` bytes: a varint marker, then a u64.
            let mut bytes = frame[..frame.len() - 2].to_vec();
            bytes.push(0xfd);
            bytes.extend_from_slice(&claimed.to_le_bytes());
            bytes.push(b'x');
            let len = (bytes.len() - PREAMBLE.len() - LENGTH_PREFIX) as u32;
            bytes[PREAMBLE.len()..PREAMBLE.len() + LENGTH_PREFIX]
                .copy_from_slice(&len.to_be_bytes());
            assert!(
                matches!(
                    NativeCodec::new(1024).decode(&bytes),
                    Err(FrameError::Malformed(_))
                ),
                "a name of {claimed} bytes"
            );
        }
    }
}
