//! The registry over TCP: one request per connection, applied in the order
//! the connections were accepted, without letting a slow client hold the
//! others.
//!
//! RPyC's TCP client sends UNREGISTER and closes without waiting for an
//! answer, then asks again on a new connection: its second request must not
//! be applied before its first. One task owns every connection still to be
//! answered; whenever any of them is readable, or a new one is accepted, it
//! reads what each has sent without waiting, oldest first, and answers each
//! complete request at once. A request sent before another connection was
//! made is therefore applied first; a client that sends nothing holds no
//! one up and is dropped after its time.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::MAX_REQUEST;
use super::server::Registry;

/// How long a TCP client may take to send its request.
const TCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How many connections may wait for their request at once; past it the
/// oldest is dropped.
const MAX_WAITING: usize = 256;

/// A connection whose request has not been answered yet.
struct Waiting {
    stream: TcpStream,
    from: SocketAddr,
    request: Vec<u8>,
    deadline: Instant,
}

/// What a connection came to, after reading what it has sent.
enum Progress {
    /// Still sending.
    Waiting,
    /// Answered, or given up: done with.
    Done,
}

impl Registry {
    /// Answers one request per connection on `listener`, in the order the
    /// connections were accepted, until the task is dropped.
    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) {
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut pruning = tokio::time::interval(self.pruning_interval());
        loop {
            let now = Instant::now();
            waiting.retain_mut(|connection| {
                matches!(self.progress(connection, now), Progress::Waiting)
            });
            let next_deadline = waiting.iter().map(|c| c.deadline).min();
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, from)) => {
                        if waiting.len() >= MAX_WAITING {
                            waiting.pop_front();
                        }
                        waiting.push_back(Waiting {
                            stream,
                            from,
                            request: Vec::new(),
                            deadline: Instant::now() + TCP_REQUEST_TIMEOUT,
                        });
                    }
                    Err(error) => tracing::warn!(%error, "registry connection not accepted"),
                },
                () = readable(&waiting) => {}
                () = tokio::time::sleep_until(next_deadline.unwrap_or(now)), if next_deadline.is_some() => {}
                _ = pruning.tick() => self.prune(),
            }
        }
    }

    /// Reads what `connection` has sent without waiting, and answers its
    /// request once it is whole.
    fn progress(&self, connection: &mut Waiting, now: Instant) -> Progress {
        let mut chunk = [0u8; MAX_REQUEST];
        let ended = loop {
            match connection.stream.try_read(&mut chunk) {
                Ok(0) => break true,
                Ok(read) => {
                    let room = MAX_REQUEST - connection.request.len();
                    connection
                        .request
                        .extend_from_slice(&chunk[..read.min(room)]);
                    if connection.request.len() == MAX_REQUEST {
                        break true;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(_) => return Progress::Done,
            }
        };
        if let Some(reply) = self.answer(&connection.request, connection.from.ip()) {
            // A reply fits in any socket's buffer; a client that does not
            // read it loses it.
            let _ = connection.stream.try_write(&reply);
            return Progress::Done;
        }
        if ended || now >= connection.deadline {
            return Progress::Done;
        }
        Progress::Waiting
    }
}

/// Completes when any of `waiting` may be read.
async fn readable(waiting: &VecDeque<Waiting>) {
    poll_fn(|cx| {
        let mut ready = false;
        for connection in waiting {
            ready |= connection.stream.poll_read_ready(cx).is_ready();
        }
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
