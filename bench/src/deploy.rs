//! `wasm-rpyc-bench deploy`: sandboxed classic mode, for the calculator in
//! each language: the first deploy of its bytes (compile and instantiate),
//! deploying the same bytes again (cached: instantiate only), and serial
//! `add(4, 7)` through the deployed root beside the same component served
//! on a port of its own. Hosts in separate processes.

use std::time::{Duration, Instant};

use anyhow::Result;
use wasm_rpyc::RemoteObject;
use wasm_rpyc::deploy::{connect, deploy};

use crate::languages::{CALCULATORS, calculator};
use crate::{ChildServer, Samples, micros, serial, serial_calls};

/// Deploys of bytes already compiled, per language.
const CACHED_DEPLOYS: usize = 20;

/// Measures and prints the table.
pub(crate) fn run() -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let deploy_host = ChildServer::start(&["host", "deploy"])?;
    println!(
        "deploying the seed's calculator (one run, this machine; hosts in separate processes)"
    );
    println!();
    println!(
        "{:<12} {:>14} {:>18} {:>24} {:>24}",
        "", "first deploy", "cached deploy", "add deployed med/p99", "add served med/p99"
    );
    for (language, built) in CALCULATORS {
        let (bytes, file) = calculator(built)?;
        let addr = deploy_host.addr;
        // On a worker thread, as `serial_calls` runs: no cross-thread wakeups.
        let measured = tokio.spawn(async move {
            let conn = connect(addr).await?;
            let started = Instant::now();
            let root = deploy(&conn, bytes.clone()).await?;
            let first = started.elapsed();
            let mut cached = Vec::with_capacity(CACHED_DEPLOYS);
            for _ in 0..CACHED_DEPLOYS {
                let started = Instant::now();
                let again = deploy(&conn, bytes.clone()).await?;
                cached.push(started.elapsed());
                drop(again);
            }
            let deployed = serial(|| add(&root)).await?;
            Ok::<(Duration, Samples, Samples), anyhow::Error>((
                first,
                Samples::new(cached),
                deployed,
            ))
        });
        let (first, cached, deployed) = tokio.block_on(measured)??;
        let served_host = match &file {
            None => ChildServer::start(&["host", "calculator"])?,
            Some(path) => ChildServer::start(&["host", &path.to_string_lossy()])?,
        };
        let served: Samples =
            tokio.block_on(async { tokio::spawn(serial_calls(served_host.addr)).await? })?;
        println!(
            "{language:<12} {:>11.0} ms {:>15.1} ms {:>12.1} / {:>6.1} µs {:>12.1} / {:>6.1} µs",
            first.as_secs_f64() * 1e3,
            cached.median().as_secs_f64() * 1e3,
            micros(deployed.median()),
            micros(deployed.percentile(0.99)),
            micros(served.median()),
            micros(served.percentile(0.99)),
        );
    }
    Ok(())
}

async fn add(root: &RemoteObject) -> Result<()> {
    let sum: i64 = root.call("add", (4, 7)).await?;
    assert_eq!(sum, 11);
    Ok(())
}
