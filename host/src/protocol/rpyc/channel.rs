//! RPyC's channel framing (`rpyc/core/channel.py`): a 5-byte header `!LB`
//! (the payload's length as sent, and whether it is zlib-compressed), the
//! payload, and one `\n`. Payloads over 3000 bytes are compressed (zlib,
//! level 1), in both directions.

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::protocol::FrameError;

/// The header: a big-endian `u32` length and a compression flag.
pub const HEADER_LEN: usize = 5;

/// Payloads longer than this are compressed (rpyc's `COMPRESSION_THRESHOLD`).
pub const COMPRESSION_THRESHOLD: usize = 3000;

/// rpyc's `COMPRESSION_LEVEL`: fast.
const COMPRESSION_LEVEL: u32 = 1;

/// The byte after every payload; readers drop it unchecked, as rpyc does.
const FLUSHER: u8 = b'\n';

/// One frame read from the front of a buffer.
#[derive(Debug, PartialEq)]
pub struct Frame<'a> {
    /// The payload, decompressed.
    pub payload: Cow<'a, [u8]>,
    /// How many bytes of the buffer the frame took.
    pub used: usize,
}

/// Decodes the frame at the front of `buf`, whose payload may be at most
/// `max_payload` bytes decompressed; `None` if the frame is not complete yet.
pub fn decode(buf: &[u8], max_payload: usize) -> Result<Option<Frame<'_>>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(header[..4].try_into().expect("four bytes")) as usize;
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    let used = HEADER_LEN + len + 1;
    if buf.len() < used {
        return Ok(None);
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + len];
    if header[4] == 0 {
        return Ok(Some(Frame {
            payload: Cow::Borrowed(payload),
            used,
        }));
    }
    // Read one byte past the bound, to tell a payload at the bound from a bomb.
    let mut inflated = Vec::new();
    ZlibDecoder::new(payload)
        .take(max_payload as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| FrameError::Malformed(format!("bad zlib data: {e}")))?;
    if inflated.len() > max_payload {
        return Err(FrameError::TooLarge {
            len: inflated.len(),
            max: max_payload,
        });
    }
    Ok(Some(Frame {
        payload: Cow::Owned(inflated),
        used,
    }))
}

/// Appends `payload` as one frame to `out`, compressed if it is long.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let compressed = payload.len() > COMPRESSION_THRESHOLD;
    if compressed {
        let mut encoder = ZlibEncoder::new(&mut *out, Compression::new(COMPRESSION_LEVEL));
        encoder
            .write_all(payload)
            .expect("writing to a Vec cannot fail");
        encoder.finish().expect("writing to a Vec cannot fail");
    } else {
        out.extend_from_slice(payload);
    }
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4] = u8::from(compressed);
    out.push(FLUSHER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rpyc::vectors::{Vectors, hex};

    #[test]
    fn frames_of_the_real_rpyc_decode_and_ours_match_where_rpyc_does_not_compress() {
        let vectors = Vectors::load();
        for (payload, frame) in &vectors.frames {
            let decoded = decode(frame, 1 << 20).unwrap().expect("a whole frame");
            assert_eq!(hex(&decoded.payload), hex(payload));
            assert_eq!(decoded.used, frame.len());
            let mut ours = Vec::new();
            encode(payload, &mut ours);
            if payload.len() <= COMPRESSION_THRESHOLD {
                assert_eq!(hex(&ours), hex(frame));
            } else {
                // zlib implementations may pick other bytes; the flag and the payload agree.
                assert_eq!(ours[4], 1);
                assert_eq!(
                    decode(&ours, 1 << 20).unwrap().unwrap().payload.as_ref(),
                    &payload[..]
                );
            }
        }
    }

    #[test]
    fn partial_oversized_and_bomb_frames() {
        let mut frame = Vec::new();
        encode(b"hello", &mut frame);
        for cut in 0..frame.len() {
            assert_eq!(decode(&frame[..cut], 100), Ok(None));
        }
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0], 100),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 100
            })
        );
        let mut bomb = Vec::new();
        encode(&vec![0u8; 100_000], &mut bomb);
        assert!(bomb.len() < 1000, "zeros compress well");
        assert_eq!(
            decode(&bomb, 10_000),
            Err(FrameError::TooLarge {
                len: 10_001,
                max: 10_000
            })
        );
        let garbage = [0, 0, 0, 3, 1, 1, 2, 3, b'\n'];
        assert!(matches!(
            decode(&garbage, 100),
            Err(FrameError::Malformed(_))
        ));
    }
}
