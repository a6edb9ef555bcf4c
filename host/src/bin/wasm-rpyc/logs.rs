//! Where and how the command logs.

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format};
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

use crate::args::{LogArgs, LogFormat};

/// Logs to stderr, or appends to `--logfile`, as `log` says: colour only on
/// a terminal, and never with `NO_COLOR` set.
pub(crate) fn init(log: &LogArgs) -> Result<()> {
    use std::io::IsTerminal;
    let filter = match (&log.log_level, log.quiet) {
        (_, true) => EnvFilter::new("error"),
        (Some(level), false) => {
            EnvFilter::try_new(level).with_context(|| format!("--log-level {level:?}"))?
        }
        (None, false) => EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    let Some(path) = &log.logfile else {
        let logs = logs
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && !no_color);
        start(logs, log.log_format);
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--logfile {}", path.display()))?;
    start(
        logs.with_writer(std::sync::Mutex::new(file))
            .with_ansi(false),
        log.log_format,
    );
    Ok(())
}

/// Starts logging through `logs`, in `format`.
fn start<W>(logs: SubscriberBuilder<DefaultFields, Format, EnvFilter, W>, format: LogFormat)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
