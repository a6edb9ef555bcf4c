//! Serving the metrics over HTTP, as Prometheus scrapes them: `GET
//! /metrics` on a listener of their own. A few scrapes at a time, each with
//! a small request and a deadline, so that a peer of this port can hold
//! neither memory nor the host's threads.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// How many scrapes are answered at once; a connection past it is closed.
pub const MAX_SCRAPES: usize = 8;

/// How long one scrape may take, from its connection to its last byte.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest request head read; a longer one is answered 431.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The content type of the OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `metrics` on `listener` until `stop` is cancelled.
pub async fn serve(metrics: &'static Metrics, listener: TcpListener, stop: CancellationToken) {
    let scrapes = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(turn) = Arc::clone(&scrapes).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many scrapes at once; closed");
            continue;
        };
        tokio::spawn(async move {
            let _turn = turn;
            match tokio::time::timeout(SCRAPE_TIMEOUT, answer(metrics, socket)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "metrics: scrape failed"),
                Err(_) => {
                    tracing::debug!(%peer, "metrics: scrape took longer than {SCRAPE_TIMEOUT:?}")
                }
            }
        });
    }
}

/// Reads one request from `socket` and answers it; the connection is then
/// closed.
async fn answer(metrics: &Metrics, mut socket: TcpStream) -> io::Result<()> {
    let (status, body) = match read_head(&mut socket).await? {
        Some(head) => respond(metrics, &head),
        None => (
            "431 Request Header Fields Too Large",
            Body::Text("request head too large\n"),
        ),
    };
    let (content_type, body, send_body) = match body {
        Body::Metrics(text, send_body) => (CONTENT_TYPE, text, send_body),
        Body::Text(text) => ("text/plain; charset=utf-8", text.to_owned(), true),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    if send_body {
        socket.write_all(body.as_bytes()).await?;
    }
    socket.shutdown().await
}

/// What a response carries: the metrics (with whether to send them, which
/// HEAD does not), or a short text.
enum Body {
    Metrics(String, bool),
    Text(&'static str),
}

/// The status and body that answer the request `head`.
fn respond(metrics: &Metrics, head: &str) -> (&'static str, Body) {
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", Body::Metrics(metrics.encode(), method == "GET"))
        }
        (_, "/metrics") => ("405 Method Not Allowed", Body::Text("only GET\n")),
        _ => ("404 Not Found", Body::Text("the metrics are at /metrics\n")),
    }
}

/// The request's head (up to its blank line); `None` if it is longer than
/// [`MAX_REQUEST_HEAD`].
async fn read_head(socket: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    loop {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
    }
}
