//! The codecs: bytes from the peer become messages or a clean error, and
//! whatever was decoded can be encoded again.

use wasm_rpyc::protocol::native::{NativeCodec, PREAMBLE};
use wasm_rpyc::protocol::rpyc::{RpycCodec, brine};
use wasm_rpyc::protocol::{Codec, Message};

/// A small frame bound, so that inputs of a few KiB reach the "too large"
/// paths too.
const MAX_FRAME: usize = 1024;

/// A small table, so that inputs reach the "too many objects" path.
const MAX_PEER_OBJECTS: usize = 16;

/// The bytes a client sends to an RPyC host: frames decoded until the data
/// runs out or an error ends the stream; every message decoded is encoded
/// again. The bytes as one brine value must survive a round trip.
pub fn rpyc_stream(data: &[u8]) {
    let (mut decoder, mut encoder) = RpycCodec::pair(MAX_FRAME, MAX_PEER_OBJECTS);
    for message in messages(&mut decoder, data) {
        let _ = encoder.encode(&message, &mut Vec::new());
    }
    brine_round_trip(data);
}

/// Decoded brine, encoded again, decodes to a value that encodes the same.
fn brine_round_trip(data: &[u8]) {
    let Ok(value) = brine::decode(data) else {
        return;
    };
    let mut first = Vec::new();
    brine::encode(&value, &mut first).expect("a decoded brine value encodes");
    let again = brine::decode(&first).expect("encoded brine decodes");
    let mut second = Vec::new();
    brine::encode(&again, &mut second).expect("a decoded brine value encodes");
    assert_eq!(first, second, "brine round trip changed {value:?}");
}

/// The bytes a native peer sends after its preamble (and, once, as they
/// come, preamble included). Every message decoded goes through a fresh pair
/// of codecs unchanged.
pub fn native_stream(data: &[u8]) {
    let _ = messages(&mut NativeCodec::new(MAX_FRAME), data);
    let stream = [&PREAMBLE[..], data].concat();
    for message in messages(&mut NativeCodec::new(MAX_FRAME), &stream) {
        let mut bytes = Vec::new();
        if NativeCodec::new(MAX_FRAME)
            .encode(&message, &mut bytes)
            .is_err()
        {
            continue;
        }
        let again = messages(&mut NativeCodec::new(MAX_FRAME), &bytes);
        let mut second = Vec::new();
        for message in &again {
            NativeCodec::new(MAX_FRAME)
                .encode(message, &mut second)
                .expect("a message that was encoded once encodes again");
        }
        assert_eq!(bytes, second, "native round trip changed {message:?}");
    }
}

/// The messages `codec` reads from the front of `data`, up to the first
/// incomplete frame or error.
fn messages(codec: &mut impl Codec, mut data: &[u8]) -> Vec<Message> {
    let mut decoded = Vec::new();
    while let Ok(Some((message, used))) = codec.decode(data) {
        assert!(
            used > 0 && used <= data.len(),
            "a codec used {used} of {} bytes",
            data.len()
        );
        data = &data[used..];
        decoded.push(message);
    }
    decoded
}
