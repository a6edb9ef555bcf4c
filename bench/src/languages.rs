//! `wasm-rpyc-bench languages`: the seed's calculator written in each
//! language (Rust, Python, JavaScript), side by side: component size, the
//! time to compile it at load and to load it from the compile cache (in a
//! new engine, as a restarted host does), connect plus the first call on a fresh
//! instance, and serial `add(4, 7)` through a host process. The Python and
//! JavaScript components come from `services/build.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasm_rpyc::wasm::{CompileCache, DEFAULT_COMPILE_CACHE_BYTES};
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

/// A runtime for loading components only, keeping them in `cache`: each is a
/// new engine, so a component loaded again comes from the disk.
fn loading_runtime(cache: &CompileCache) -> Result<Runtime> {
    let mut limits = Limits::default();
    limits.max_instances = 8;
    Runtime::with_cache(limits, Some(cache.clone())).map_err(|e| anyhow::anyhow!("{e:#}"))
}

/// How long loading `bytes` as a component takes in `runtime`.
fn load_time(tokio: &tokio::runtime::Runtime, runtime: &Runtime, bytes: &[u8]) -> Result<Duration> {
    let started = Instant::now();
    tokio.block_on(ServiceComponent::from_bytes(runtime, "calculator", bytes))?;
    Ok(started.elapsed())
}

/// Measures every language's calculator and prints the table.
pub(crate) fn run() -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let directory =
        std::env::temp_dir().join(format!("wasm-rpyc-bench-cache-{}", std::process::id()));
    let cache = CompileCache::open(&directory, DEFAULT_COMPILE_CACHE_BYTES)?;
    println!(
        "the seed's calculator in each language (one run, this machine; host in a separate process)"
    );
    println!();
    println!(
        "{:<12} {:>10} {:>12} {:>12} {:>22} {:>22}",
        "", "size", "compile", "from cache", "connect + first call", "add(4, 7) median/p99"
    );
    for (language, built) in CALCULATORS {
        let (bytes, file) = calculator(built)?;
        let compile = load_time(&tokio, &loading_runtime(&cache)?, &bytes)?;
        let cached = load_time(&tokio, &loading_runtime(&cache)?, &bytes)?;
        let host = match &file {
            None => ChildServer::start(&["host", "calculator"])?,
            Some(path) => ChildServer::start(&["host", &path.to_string_lossy()])?,
        };
        let fresh: Samples =
            tokio.block_on(async { tokio::spawn(fresh_connections(host.addr, FRESH)).await? })?;
        let serial: Samples =
            tokio.block_on(async { tokio::spawn(serial_calls(host.addr)).await? })?;
        println!(
            "{language:<12} {:>7.0} kB {:>9.0} ms {:>9.1} ms {:>19.0} µs {:>10.1} / {:>6.1} µs",
            bytes.len() as f64 / 1e3,
            compile.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            micros(fresh.median()),
            micros(serial.median()),
            micros(serial.percentile(0.99)),
        );
    }
    std::fs::remove_dir_all(&directory)?;
    println!();
    println!("target: a component from the cache ready in at most 1/20th of its compile time");
    Ok(())
}
