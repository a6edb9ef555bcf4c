//! `wasm-rpyc-bench languages`: the seed's calculator written in each
//! language (Rust, Python, JavaScript), side by side: component size, the
//! time to compile it at load, connect plus the first call on a fresh
//! instance, and serial `add(4, 7)` through a host process. The Python and
//! JavaScript components come from `services/build.sh`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use wasm_rpyc::{Limits, Runtime, ServiceComponent, bundled};

use crate::{ChildServer, Samples, fresh_connections, micros, serial_calls};

/// Fresh instances per language: a Python instance is tens of MiB to set up.
const FRESH: usize = 200;

/// Where the calculator of each language is: the bundled Rust one, or a file.
const CALCULATORS: [(&str, Option<&str>); 3] = [
    ("Rust", None),
    ("Python", Some("python/calculator.wasm")),
    ("JavaScript", Some("js/calculator.wasm")),
];

/// The component file `relative` under the build's `polyglot` directory.
pub(crate) fn polyglot(relative: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("polyglot").join(relative)
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
    for (language, file) in CALCULATORS {
        let bytes = match file {
            None => bundled::EXAMPLES
                .iter()
                .find(|(name, ..)| *name == "calculator")
                .map(|(.., bytes)| bytes.to_vec())
                .context("the bundled calculator")?,
            Some(relative) => std::fs::read(polyglot(relative)).with_context(|| {
                format!(
                    "{} (run `bash services/build.sh`)",
                    polyglot(relative).display()
                )
            })?,
        };
        let started = Instant::now();
        tokio.block_on(ServiceComponent::from_bytes(&runtime, "calculator", &bytes))?;
        let compile = started.elapsed();
        let host = match file {
            None => ChildServer::start(&["host", "calculator"])?,
            Some(relative) => ChildServer::start(&["host", &polyglot(relative).to_string_lossy()])?,
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
