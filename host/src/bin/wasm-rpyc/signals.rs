//! The process's signals: shutdown (Ctrl-C, SIGTERM) and reloads (SIGHUP).

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Turns every SIGHUP into a reload, until `stop`.
pub(crate) async fn forward_hangups(
    mut hangups: Hangups,
    reload: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = hangups.next() => reload.notify_one(),
        }
    }
}

/// The process's hangups (SIGHUP), listened for from its creation; none
/// where the system has no such signal (Windows: `--watch` still reloads).
pub(crate) struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    pub(crate) fn listen() -> Result<Self> {
        Ok(Hangups {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
        })
    }

    /// Completes at the next hangup.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

/// Registers for Ctrl-C (SIGINT) and SIGTERM now; the future completes on
/// the first of them.
#[cfg(unix)]
pub(crate) fn shutdown() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Registers for Ctrl-C and for the console closing now; the future
/// completes on the first of them.
#[cfg(windows)]
pub(crate) fn shutdown() -> Result<impl Future<Output = ()>> {
    use tokio::signal::windows::{ctrl_c, ctrl_close};
    let mut interrupt = ctrl_c()?;
    let mut close = ctrl_close()?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = close.recv() => {}
        }
    })
}
