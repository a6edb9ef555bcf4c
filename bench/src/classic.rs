//! `wasm-rpyc-bench classic`: the unmodified `rpyc.classic` client against
//! `wasm-rpyc classic` and against RPyC's own `rpyc_classic` server, which
//! `bench/classic_compare.py` measures and prints (see its docstring); this
//! runs it with the checkout's venv.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs `bench/classic_compare.py`; fails if it does.
pub(crate) fn run() -> Result<()> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = bench.join("../.venv/bin/python");
    let script = bench.join("classic_compare.py");
    let status = Command::new(&python)
        .arg(&script)
        .status()
        .with_context(|| {
            format!(
                "cannot run {} (tests/run.sh makes the venv)",
                python.display()
            )
        })?;
    if !status.success() {
        bail!("{} failed: {status}", script.display());
    }
    Ok(())
}
