//! Moving messages between the socket and the connection: the reader turns
//! bytes into messages, the writer messages into bytes. Neither knows what a
//! request means.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

use super::queues::{Incoming, Outgoing};
use super::shared::Shared;
use crate::error::Error;
use crate::exception::Exception;
use crate::protocol::{Codec, FrameError, Message};

/// How many queued messages the writer turns into one write.
const WRITE_BATCH: usize = 64;

/// The buffer size the reader asks the socket to fill.
const READ_CHUNK: usize = 16 * 1024;

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("the peer closed the connection in the middle of a frame")]
    Truncated,
    #[error("the peer took longer than {0:?} to send one frame")]
    SlowFrame(std::time::Duration),
    #[error("the connection was idle for {0:?}")]
    Idle(std::time::Duration),
}

/// Reads messages until the peer closes, sends `Close`, misbehaves, or the
/// connection is closing, and hands each to the connection
/// ([`Shared::deliver`]).
async fn read_loop<R, C>(
    mut reader: R,
    mut codec: C,
    mut buf: BytesMut,
    shared: &Shared,
    inbox: mpsc::Sender<Incoming>,
) -> Result<(), ReadError>
where
    R: AsyncRead + Unpin,
    C: Codec,
{
    let mut frame_deadline = None;
    loop {
        if !buf.is_empty() {
            shared.status().touch();
        }
        while let Some((message, used)) = codec.decode(&buf)? {
            buf.advance(used);
            if shared.deliver(message, &inbox).await.is_break() {
                return Ok(());
            }
        }
        // A frame has begun once bytes of it are buffered: it must be finished in time.
        frame_deadline = match (buf.is_empty(), frame_deadline) {
            (true, _) => None,
            (false, None) => Some(Instant::now() + shared.config().frame_timeout),
            (false, started) => started,
        };
        let read = tokio::select! {
            read = fill(&mut reader, &mut buf, frame_deadline, shared) => read?,
            () = shared.status().wound_up() => return Ok(()),
        };
        if read == 0 {
            return if buf.is_empty() {
                Ok(())
            } else {
                Err(ReadError::Truncated)
            };
        }
    }
}

/// How long an idle spinning reader keeps its core before it offers it to
/// other threads at every turn (a client on the same machine may need it:
/// on two cores, keeping it made RPyC clients' calls slower one run in
/// three).
const SPIN_ALONE: Duration = Duration::from_micros(25);

/// How long a reader keeps polling while this side serves a call: a short
/// call's next request finds the thread awake, a long call does not hold a
/// core.
const SPIN_WHILE_SERVING: Duration = Duration::from_millis(1);

/// How many readers spin at once, process-wide.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// How many readers may spin at once: each holds a core while it spins, so
/// with many connections (a thousand clients, say) only a few spin and the
/// rest sleep; half the cores, at least one.
fn spinners() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
    })
}

/// A reader's turn to spin; given back when dropped.
struct SpinTurn;

impl SpinTurn {
    fn take() -> Option<Self> {
        if SPINNING.fetch_add(1, Ordering::Relaxed) < spinners() {
            Some(SpinTurn)
        } else {
            SPINNING.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for SpinTurn {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads more bytes into `buf`. Inside a frame, the read must end by
/// `frame_deadline`. Between frames, the reader first polls for up to
/// `read_spin` after this side's last reply (`reply_spin` while this side
/// awaits a reply), if few other readers are spinning, yielding to other
/// tasks (and, idle, to other threads), before it sleeps: the next message
/// then finds the thread awake, which saves the tens of microseconds a
/// sleeping core takes to wake (most on virtual machines).
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    frame_deadline: Option<Instant>,
    shared: &Shared,
) -> Result<usize, ReadError> {
    buf.reserve(READ_CHUNK);
    if let Some(deadline) = frame_deadline {
        return timeout_at(deadline, reader.read_buf(buf))
            .await
            .map_err(|_| ReadError::SlowFrame(shared.config().frame_timeout))?
            .map_err(ReadError::Io);
    }
    let config = shared.config();
    // Awaiting a reply, the peer is busy for us: keep the core. Idle, a
    // local peer may need it to send the next request.
    let awaiting_reply = shared.in_flight().len() > 0;
    let spin = if awaiting_reply {
        config.read_spin.max(config.reply_spin)
    } else {
        config.read_spin
    };
    if let Some(_turn) = (!spin.is_zero()).then(SpinTurn::take).flatten() {
        let start = Instant::now();
        loop {
            // Reading is cancel-safe: a read that is not ready takes no bytes.
            tokio::select! {
                biased;
                read = reader.read_buf(buf) => return read.map_err(ReadError::Io),
                () = std::future::ready(()) => {}
            }
            tokio::task::yield_now().await;
            // Idle, the next request comes a turnaround after this side's
            // reply, so the window counts from the reply (the request just
            // read may have been served during the yield); while a call is
            // served, the reader keeps polling for a while.
            let waited = match (awaiting_reply, shared.status().idle_for(0)) {
                (false, Some(idle)) => idle.min(start.elapsed()),
                (false, None) if start.elapsed() < SPIN_WHILE_SERVING => Duration::ZERO,
                _ => start.elapsed(),
            };
            if waited >= spin {
                break;
            }
            if !awaiting_reply && waited > SPIN_ALONE {
                std::thread::yield_now();
            }
        }
    }
    let Some(limit) = config.idle_timeout else {
        return reader.read_buf(buf).await.map_err(ReadError::Io);
    };
    loop {
        match timeout(limit, reader.read_buf(buf)).await {
            Ok(read) => return read.map_err(ReadError::Io),
            // Waiting on the peer, or on this side's service, is not idling.
            Err(_) if shared.in_flight().len() > 0 || shared.status().serving() => {}
            Err(_) => return Err(ReadError::Idle(limit)),
        }
    }
}

/// Writes queued messages, many per system call if `batch_writes` (else one by
/// one), until the connection is closing; then writes what is still queued
/// and shuts the stream down.
async fn write_loop<W, C>(
    mut writer: W,
    mut codec: C,
    batch_writes: bool,
    mut outbox: mpsc::Receiver<Outgoing>,
    shared: &Shared,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    C: Codec,
{
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut buf = Vec::new();
    loop {
        let open = tokio::select! {
            biased;
            received = outbox.recv_many(&mut batch, WRITE_BATCH) => received > 0,
            () = shared.status().wound_up() => {
                while let Ok(message) = outbox.try_recv() {
                    batch.push(message);
                }
                false
            }
        };
        // Each message keeps its bytes of the budget until it is written.
        let mut written = Vec::with_capacity(batch.len());
        for Outgoing { message, held } in batch.drain(..) {
            encode(&mut codec, message, &mut buf, shared);
            written.push(held);
            if !batch_writes {
                write(&mut writer, &mut buf, shared).await?;
                written.clear();
            }
        }
        write(&mut writer, &mut buf, shared).await?;
        drop(written);
        if !open {
            return writer.shutdown().await;
        }
    }
}

/// Writes out what `buf` holds, if anything, and empties it.
async fn write<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &mut Vec<u8>,
    shared: &Shared,
) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let limit = shared.config().write_timeout;
    timeout(limit, writer.write_all(buf)).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer read nothing for {limit:?}"),
        )
    })??;
    buf.clear();
    buf.shrink_to(READ_CHUNK);
    Ok(())
}

/// Encodes one message. A message that cannot be framed fails alone: a
/// request's caller gets the error, a reply becomes an exception.
fn encode<C: Codec>(codec: &mut C, message: Message, buf: &mut Vec<u8>, shared: &Shared) {
    let Err(error) = codec.encode(&message, buf) else {
        return;
    };
    if let FrameError::TooLarge { .. } = error {
        count_frame_too_large(false);
    }
    match message {
        Message::Request { seq, .. } => {
            shared.in_flight().end(seq, Err(Error::Frame(error)));
        }
        Message::Reply { seq, .. } => {
            let error = Exception::value_error(format!("the reply cannot be sent: {error}"));
            let reply = Message::Reply {
                seq,
                result: Err(error),
            };
            if let Err(error) = codec.encode(&reply, buf) {
                tracing::error!(peer = %shared.peer(), %error, "an error reply cannot be framed");
            }
        }
    }
}

/// The two halves of a stream, the codec of each direction, and any bytes
/// already read from it (the server reads a few to tell the protocol).
pub(crate) struct Transport<R, W, C> {
    reading: Reading<R, C>,
    writing: Writing<W, C>,
    peer: String,
}

/// The half of a transport that reads.
pub(super) struct Reading<R, C> {
    reader: R,
    decoder: C,
    already_read: BytesMut,
}

/// The half of a transport that writes.
pub(super) struct Writing<W, C> {
    writer: W,
    encoder: C,
    batch_writes: bool,
}

impl<R, W, C> Transport<R, W, C> {
    /// A stream's halves with the codecs of its two directions (`(decoder,
    /// encoder)`), the bytes already read from it, and the peer's name.
    pub(crate) fn new(
        reader: R,
        writer: W,
        (decoder, encoder): (C, C),
        already_read: BytesMut,
        peer: String,
    ) -> Self {
        Transport {
            reading: Reading {
                reader,
                decoder,
                already_read,
            },
            writing: Writing {
                writer,
                encoder,
                batch_writes: true,
            },
            peer,
        }
    }

    /// Writes every message on its own (over TLS: in its own records)
    /// rather than many per write. RPyC's Python end waits for a message by
    /// polling the socket, which cannot see a second message already
    /// decrypted into the TLS buffer alongside the first: it would wait for
    /// it until its timeout.
    pub(crate) fn one_message_per_write(mut self) -> Self {
        self.writing.batch_writes = false;
        self
    }

    /// The reading half, the writing half, and the peer's name.
    pub(super) fn into_parts(self) -> (Reading<R, C>, Writing<W, C>, String) {
        (self.reading, self.writing, self.peer)
    }
}

impl<R: AsyncRead + Unpin, C: Codec> Reading<R, C> {
    /// Reads messages until the peer closes, sends `Close`, misbehaves, or
    /// the connection is closing (see [`read_loop`]).
    pub(super) async fn run(
        self,
        shared: &Shared,
        inbox: mpsc::Sender<Incoming>,
    ) -> Result<(), ReadError> {
        read_loop(self.reader, self.decoder, self.already_read, shared, inbox).await
    }
}

impl<W: AsyncWrite + Unpin, C: Codec> Writing<W, C> {
    /// Writes queued messages until the connection is closing (see
    /// [`write_loop`]).
    pub(super) async fn run(
        self,
        outgoing: mpsc::Receiver<Outgoing>,
        shared: &Shared,
    ) -> io::Result<()> {
        write_loop(
            self.writer,
            self.encoder,
            self.batch_writes,
            outgoing,
            shared,
        )
        .await
    }
}

/// Counts a frame refused as too large, coming in or going out, if metrics
/// are recorded.
pub(super) fn count_frame_too_large(incoming: bool) {
    if let Some(metrics) = crate::metrics::recording() {
        metrics.frame_too_large(incoming);
    }
}
