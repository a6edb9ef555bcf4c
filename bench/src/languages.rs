//! `wasm-rpyc-bench languages`: the seed's calculator written in each
//! language (Rust, Python, JavaScript), side by side: component size, the
//! time to compile it at load and to load it from the compile cache (in a
//! new engine, as a restarted host does), connect plus the first call on a fresh
//! instance, and serial `add(4, 7)` through a host process. The Python and
//! JavaScript calculators are the plain classes (`wasm-rpyc build`), each
//! beside the same with a typed world. The Python and JavaScript components
//! come from `services/build.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasm_rpyc::wasm::{CompileCache, DEFAULT_COMPILE_CACHE_BYTES};
use wasm_rpyc::{Limits, Runtime, ServiceComponent, bundled};
use wasm_rpyc_tests::polyglot;

use crate::{ChildServer, Samples, fresh_connections, micros, serial_calls};

/// Fresh instances per language: a Python instance is tens of MiB to set up.
const FRESH: usize = 200;

/// A calculator `services/build.sh` makes: the language's directory and the
/// file's stem.
pub(crate) type Built = Option<(&'static str, &'static str)>;

/// Where the calculator of each language is: the bundled Rust one, or the
/// file `services/build.sh` makes for that language.
pub(crate) const CALCULATORS: [(&str, Built); 3] = [
    ("Rust", None),
    ("Python", Some(("python", "calculator"))),
    ("JavaScript", Some(("js", "calculator"))),
];

/// The calculators with a typed world, compared with the plain classes.
const TYPED: [(&str, Built); 2] = [
    ("Python typed", Some(("python", "calculator-typed"))),
    ("JS typed", Some(("js", "calculator-typed"))),
];

/// The calculator's bytes, and its file for those `services/build.sh` made
/// (`None` is the bundled Rust one).
pub(crate) fn calculator(built: Built) -> Result<(Vec<u8>, Option<PathBuf>)> {
    let Some((dir, stem)) = built else {
        let bytes = bundled::EXAMPLES
            .iter()
            .find(|(name, ..)| *name == "calculator")
            .map(|(.., bytes)| bytes.to_vec())
            .context("the bundled calculator")?;
        return Ok((bytes, None));
    };
    let path = polyglot(dir, stem);
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
    for (language, built) in CALCULATORS.into_iter().chain(TYPED) {
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
    println!("target: a plain class's add(4, 7) within 1.5x of the typed world's");
    println!();
    python_build_times()
}

/// How long `wasm-rpyc build` takes for the plain Python calculator, and
/// `wasm-rpyc serve calculator.py` until it serves: from scratch (build and
/// compile), then from its caches.
fn python_build_times() -> Result<()> {
    let binary = crate::wasm_rpyc_binary()?;
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/python/calculator.py");
    let scratch =
        std::env::temp_dir().join(format!("wasm-rpyc-bench-build-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let started = Instant::now();
    let built = std::process::Command::new(&binary)
        .arg("build")
        .arg(&source)
        .arg("-o")
        .arg(scratch.join("calculator.wasm"))
        .output()?;
    anyhow::ensure!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let build = started.elapsed();
    let cache = scratch.join("cache");
    let first = serving_after(&binary, &source, &cache)?;
    let again = serving_after(&binary, &source, &cache)?;
    // The builds are kept beside the cache: in `scratch` too.
    std::fs::remove_dir_all(&scratch)?;
    println!(
        "plain Python calculator: `wasm-rpyc build` {:.1} s; `serve calculator.py` serving after \
         {:.1} s from scratch, {:.2} s from its caches",
        build.as_secs_f64(),
        first.as_secs_f64(),
        again.as_secs_f64()
    );
    Ok(())
}

/// How long `wasm-rpyc serve source` with the cache directory `cache` takes
/// to say it serves.
fn serving_after(
    binary: &std::path::Path,
    source: &std::path::Path,
    cache: &std::path::Path,
) -> Result<Duration> {
    use std::io::{BufRead, BufReader};
    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .args(["serve", "--port", "0", "--cache-dir"])
        .arg(cache)
        .arg(source)
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("the host's stderr")?;
    let mut serving = None;
    for line in BufReader::new(stderr).lines() {
        if line?.contains("serving service=") {
            serving = Some(started.elapsed());
            break;
        }
    }
    child.kill()?;
    child.wait()?;
    serving.context("the host stopped before it served")
}
