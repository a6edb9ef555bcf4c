//! `wasm-rpyc-bench languages`: the seed's calculator written in each
//! language (Rust, Python, JavaScript), side by side: component size, the
//! time to compile it at load, connect plus the first call on a fresh
//! instance, and serial `add(4, 7)` through a host process. The Python and
//! JavaScript components come from `services/build.sh`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use wasm_rpyc::{Limits, Runtime, ServiceComponent, bundled};
use wasm_rpyc_tests::polyglot;

use crate::{ChildServer, Samples, fresh_connections, micros, serial_calls};

/// Fresh instances per language: a Python instance is tens of MiB to set up.
const FRESH: usize = 200;

/// Where the calculator of each language is: the bundled Rust one, or the
/// file `services/build.sh` makes for that language.
pub(crate) const CALCULATORS: [(&str, Option<&str>); 3] = [
    ("Rust", None),
    ("Python", Some("python")),
    ("JavaScript", Some("js")),
];

/// The calculator's bytes, and its file for those `services/build.sh` made
/// (`built` names the language's directory; `None` is the bundled Rust one).
pub(crate) fn calculator(built: Option<&str>) -> Result<(Vec<u8>, Option<PathBuf>)> {
    let Some(dir) = built else {
        let bytes = bundled::EXAMPLES
            .iter()
            .find(|(name, ..)| *name == "calculator")
            .map(|(.., bytes)| bytes.to_vec())
            .context("the bundled calculator")?;
        return Ok((bytes, None));
    };
    let path = polyglot(dir, "calculator");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("{} (run `bash services/build.sh`)", path.display()))?;
    Ok((bytes, Some(path)))
}

/// Measures every language's calculator and prints the table.
pub(crate) fn run() -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let runtime = Runtime::new(Limits::default()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    println!(
        "the seed's calculator in each language (one run, this machine; host in a separate process)"
    );
    println!();
    println!(
        "{:<12} {:>10} {:>12} {:>22} {:>22}",
        "", "size", "compile", "connect + first call", "add(4, 7) median/p99"
    );
    for (language, built) in CALCULATORS {
        let (bytes, file) = calculator(built)?;
        let started = Instant::now();
        tokio.block_on(ServiceComponent::from_bytes(&runtime, "calculator", &bytes))?;
        let compile = started.elapsed();
        let host = match &file {
            None => ChildServer::start(&["host", "calculator"])?,
            Some(path) => ChildServer::start(&["host", &path.to_string_lossy()])?,
        };
        let fresh: Samples =
            tokio.block_on(async { tokio::spawn(fresh_connections(host.addr, FRESH)).await? })?;
        let serial: Samples =
            tokio.block_on(async { tokio::spawn(serial_calls(host.addr)).await? })?;
        println!(
            "{language:<12} {:>7.0} kB {:>9.0} ms {:>19.0} µs {:>10.1} / {:>6.1} µs",
            bytes.len() as f64 / 1e3,
            compile.as_secs_f64() * 1e3,
            micros(fresh.median()),
            micros(serial.median()),
            micros(serial.percentile(0.99)),
        );
    }
    Ok(())
}
