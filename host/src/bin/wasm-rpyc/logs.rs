//! Where and how the command logs.

use anyhow::{Context, Result};

use crate::args::{LogArgs, LogFormat};

/// Logs to stderr as `log` says: colour only on a terminal, and never with
/// `NO_COLOR` set.
pub(crate) fn init(log: &LogArgs) -> Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match (&log.log_level, log.quiet) {
        (_, true) => EnvFilter::new("error"),
        (Some(level), false) => {
            EnvFilter::try_new(level).with_context(|| format!("--log-level {level:?}"))?
        }
        (None, false) => EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color);
    match log.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}
