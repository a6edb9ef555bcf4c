//! Telling a refused client why, in its own protocol: its first request is
//! answered with an exception (RPyC's client raises it where the caller
//! made the request), then the connection closes.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::exception::Exception;
use crate::protocol::{Codec, Message};

/// The largest first request a refused client may send: it is read only to
/// learn the sequence number to answer.
pub(super) const REFUSED_FRAME: usize = 64 * 1024;

/// Answers the first request read from `reader` (after the bytes in `buf`)
/// with `exception`, within `limit`; then shuts the stream down.
pub(super) async fn refuse<R, W, C>(
    mut reader: R,
    mut writer: W,
    (mut decoder, mut encoder): (C, C),
    mut buf: BytesMut,
    exception: Exception,
    limit: Duration,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    C: Codec,
{
    let answer = async {
        loop {
            match decoder.decode(&buf) {
                Ok(Some((Message::Request { seq, .. }, _))) => {
                    let reply = Message::Reply {
                        seq,
                        result: Err(exception),
                    };
                    let mut out = Vec::new();
                    if encoder.encode(&reply, &mut out).is_ok() {
                        let _ = writer.write_all(&out).await;
                    }
                    return;
                }
                // A reply to nothing: skip it.
                Ok(Some((Message::Reply { .. }, used))) => buf.advance(used),
                Ok(None) => {
                    buf.reserve(4096);
                    if !matches!(reader.read_buf(&mut buf).await, Ok(read) if read > 0) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(limit, answer).await;
    let _ = writer.shutdown().await;
}
