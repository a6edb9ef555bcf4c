//! `wasm-rpyc-bench fairness`: `add(4, 7)` latency on one service while 0,
//! 2, 8 and 32 connections keep calling `work(100)` (100 ms of CPU) on
//! another service of the same server process: our host serving the wasm
//! calculator and the test guest, beside RPyC's own ThreadedServer serving
//! both services in Python (`bench/fairness_server.py`). Both are called
//! with the same client, over RPyC's protocol.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use wasm_rpyc::{Limits, Runtime, Server, ServerConfig, ServiceComponent, connect_rpyc};

use crate::{Samples, micros};

/// How many connections burn CPU in each row.
const BURNERS: [usize; 4] = [0, 2, 8, 32];

/// How long one burning call runs.
const BURN_MS: u32 = 100;

/// The short calls measured in each row: at least this many, for at least
/// [`SHORT_CALLS_FOR`] (an unloaded server answers thousands in that time,
/// so its row is not a few hundred calls just after connecting).
const SHORT_CALLS: usize = 300;
const SHORT_CALLS_FOR: Duration = Duration::from_secs(2);

/// Serves the wasm calculator and the test guest from one host process
/// (the `fairness-host` child); prints both addresses.
pub(crate) fn host() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let runtime = Runtime::new(Limits::default()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let calculator = wasm_rpyc_tests::calculator(&runtime).await;
        let burner = ServiceComponent::load(&runtime, wasm_rpyc_tests::TESTBED.as_ref()).await?;
        let config = ServerConfig::default();
        let calculator = Server::bind("127.0.0.1:0", calculator, config.clone()).await?;
        let burner = Server::bind("127.0.0.1:0", burner, config).await?;
        println!("{} {}", calculator.local_addr()?, burner.local_addr()?);
        tokio::join!(
            calculator.run(std::future::pending()),
            burner.run(std::future::pending())
        );
        Ok(())
    })
}

/// A server process serving a calculator and a burner service.
struct Pair {
    child: Child,
    calculator: SocketAddr,
    burner: SocketAddr,
}

impl Pair {
    /// Starts `command`, which prints the two addresses (or ports) it serves.
    fn start(mut command: Command) -> Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a server")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let addrs: Vec<SocketAddr> = line
            .split_whitespace()
            .map(|word| match word.parse::<u16>() {
                Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
                Err(_) => word.parse(),
            })
            .collect::<Result<_, _>>()
            .with_context(|| format!("the server said {line:?}"))?;
        let [calculator, burner] = addrs[..] else {
            anyhow::bail!("the server said {line:?}, not two addresses");
        };
        Ok(Pair {
            child,
            calculator,
            burner,
        })
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the comparison and prints it.
pub(crate) fn run() -> Result<()> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fairness_server.py");
    let mut ours = Command::new(std::env::current_exe()?);
    ours.arg("fairness-host");
    let mut theirs = Command::new(&python);
    theirs.arg(&script);
    let ours = Pair::start(ours)?;
    let theirs = Pair::start(theirs).with_context(|| {
        format!(
            "{} runs RPyC's server (tests/run.sh makes the venv)",
            python.display()
        )
    })?;
    let tokio = tokio::runtime::Runtime::new()?;
    println!(
        "wasm-rpyc fairness (one run, this machine): add(4, 7) on one service while N connections"
    );
    println!(
        "call work({BURN_MS} ms) on another service of the same server; the same Rust client, RPyC's protocol"
    );
    println!();
    println!(
        "{:>9}   {:>24}   {:>24}",
        "burners", "wasm-rpyc p50 / p99", "rpyc ThreadedServer p50 / p99"
    );
    for burners in BURNERS {
        let ours = tokio.block_on(under_load(&ours, burners))?;
        let theirs = tokio.block_on(under_load(&theirs, burners))?;
        let cell = |samples: &Samples| {
            format!(
                "{:>9.2} / {:>8.2} ms",
                micros(samples.median()) / 1e3,
                micros(samples.percentile(0.99)) / 1e3
            )
        };
        println!("{burners:>9}   {:>24}   {:>29}", cell(&ours), cell(&theirs));
    }
    println!();
    println!(
        "targets: wasm-rpyc p99 <= 5 ms with 2 burners, <= 20 ms with 32, and below RPyC's in every row"
    );
    Ok(())
}

/// `add(4, 7)` latencies on `pair`'s calculator while `burners`
/// connections keep calling `work` on its burner service.
async fn under_load(pair: &Pair, burners: usize) -> Result<Samples> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..burners {
        let conn = connect_rpyc(pair.burner).await?;
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A call past RPyC's client timeout under heavy load is fine:
                // the point is the CPU the server spends.
                let _ = conn.root().call::<u32>("work", (BURN_MS,)).await;
            }
        }));
    }
    // Let the burners get going.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let conn = connect_rpyc(pair.calculator).await?;
    let root = conn.root();
    let measure = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(SHORT_CALLS);
        let began = Instant::now();
        while samples.len() < SHORT_CALLS || began.elapsed() < SHORT_CALLS_FOR {
            let start = Instant::now();
            let sum: i64 = root.call("add", (4, 7)).await?;
            samples.push(start.elapsed());
            anyhow::ensure!(sum == 11, "add(4, 7) gave {sum}");
        }
        Ok(Samples::new(samples))
    });
    let samples = measure.await?;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    samples
}
