//! The two wire protocols a connection may speak, and everything that
//! differs between them: how a server tells them apart, their codecs,
//! whether the peer's root has a fixed id, and how messages share writes
//! over TLS and quick ACKs.

use super::native::{MAGIC, NativeCodec};
use super::rpyc::RpycCodec;
use super::{Codec, FrameError, Message};

/// A wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The native protocol (serde + bincode): Rust clients.
    Native,
    /// RPyC 6's: the Python `rpyc` package, either side.
    Rpyc,
}

impl Wire {
    /// The protocol a client's first four bytes name: the native magic, or
    /// else RPyC (the bytes are its first frame's length).
    pub fn of_hello(hello: &[u8]) -> Wire {
        if hello == MAGIC {
            Wire::Native
        } else {
            Wire::Rpyc
        }
    }

    /// The codecs of one connection (decoder, encoder): frames of at most
    /// `max_frame` bytes; RPyC names at most `max_named` of the peer's
    /// objects at once.
    pub fn codecs(self, max_frame: usize, max_named: usize) -> (WireCodec, WireCodec) {
        match self {
            Wire::Native => {
                let codec = NativeCodec::new(max_frame);
                (WireCodec::Native(codec), WireCodec::Native(codec))
            }
            Wire::Rpyc => {
                let (decoder, encoder) = RpycCodec::pair(max_frame, max_named);
                (WireCodec::Rpyc(decoder), WireCodec::Rpyc(encoder))
            }
        }
    }

    /// Whether the peer's root has a fixed id ([`ROOT`](super::ROOT)), or
    /// must be asked for (RPyC's GETROOT).
    pub fn names_root(self) -> bool {
        self == Wire::Native
    }

    /// Whether several messages may share one write over TLS. RPyC's Python
    /// end waits for a message by polling the socket, which cannot see a
    /// second message already decrypted into the TLS buffer alongside the
    /// first: it would wait for it until its timeout.
    pub fn batches_over_tls(self) -> bool {
        self == Wire::Native
    }

    /// Whether a server should ask the kernel to acknowledge every read at
    /// once: RPyC's client does not set TCP_NODELAY, so Nagle's algorithm
    /// holds its second write in a row until the first is acknowledged.
    pub fn wants_quick_acks(self) -> bool {
        self == Wire::Rpyc
    }
}

/// The codec of either protocol.
pub enum WireCodec {
    /// The native protocol's.
    Native(NativeCodec),
    /// RPyC's.
    Rpyc(RpycCodec),
}

impl Codec for WireCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
        match self {
            WireCodec::Native(codec) => codec.decode(buf),
            WireCodec::Rpyc(codec) => codec.decode(buf),
        }
    }

    fn encode(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
        match self {
            WireCodec::Native(codec) => codec.encode(message, out),
            WireCodec::Rpyc(codec) => codec.encode(message, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_name_the_protocol_and_its_differences() {
        assert_eq!(Wire::of_hello(MAGIC), Wire::Native);
        assert_eq!(Wire::of_hello(&[0, 0, 0, 40]), Wire::Rpyc);
        assert!(Wire::Native.names_root() && !Wire::Rpyc.names_root());
        assert!(Wire::Native.batches_over_tls() && !Wire::Rpyc.batches_over_tls());
        assert!(Wire::Rpyc.wants_quick_acks() && !Wire::Native.wants_quick_acks());
        assert!(matches!(
            Wire::Rpyc.codecs(1 << 20, 10),
            (WireCodec::Rpyc(_), WireCodec::Rpyc(_))
        ));
    }
}
