//! `wasm-rpyc-bench shared`: one instance for every connection (`serve
//! --shared`) beside an instance per connection, hosts in separate
//! processes: calls per second with 1, 8 and 64 connections calling at
//! once (the Rust counter, `increment(1)`); the time a broadcast to 100
//! connected clients takes to reach them all (the test guest's
//! `call_kept_async`); and the host's memory per connection of the plain
//! Python calculator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::future::join_all;
use tokio::sync::Notify;
use wasm_rpyc::{Connection, Function, Value, connect};
use wasm_rpyc_tests::{TESTBED, polyglot};

use crate::{ChildServer, Samples, micros};

/// How long each connection count calls.
const CALLING: Duration = Duration::from_secs(3);

/// The clients a broadcast reaches, and how many broadcasts are timed.
const LISTENERS: usize = 100;
const BROADCASTS: usize = 50;

/// The connections whose memory is measured.
const MEASURED: usize = 50;

/// Measures both ways of serving and prints the figures.
pub(crate) fn run() -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let counter = polyglot("rust", "counter");
    anyhow::ensure!(
        counter.exists(),
        "{} (run `bash services/build.sh`)",
        counter.display()
    );
    let counter = counter.to_string_lossy().into_owned();
    println!("shared instance beside an instance per connection (one run, this machine)");
    println!();
    println!(
        "{:<24} {:>16} {:>16}",
        "increment(1), calls/s", "per connection", "shared"
    );
    for connections in [1, 8, 64] {
        let mut rates = Vec::new();
        for shared in [false, true] {
            let host = start(&counter, shared)?;
            let calling = calls_per_second(host.addr, connections);
            rates.push(tokio.block_on(async { tokio::spawn(calling).await? })?);
        }
        println!(
            "{:<24} {:>16.0} {:>16.0}",
            format!("{connections} connections"),
            rates[0],
            rates[1]
        );
    }
    println!();
    let host = start(TESTBED, true)?;
    let broadcast = tokio.block_on(async { tokio::spawn(broadcasts(host.addr)).await? })?;
    println!(
        "broadcast to {LISTENERS} clients (async, shared): all reached after {:.0} µs median, \
         {:.0} µs p99",
        micros(broadcast.median()),
        micros(broadcast.percentile(0.99))
    );
    println!();
    let calculator = polyglot("python", "calculator");
    let calculator = calculator.to_string_lossy().into_owned();
    let mut per_connection = Vec::new();
    for shared in [false, true] {
        let host = start(&calculator, shared)?;
        per_connection.push(tokio.block_on(memory_per_connection(&host))?);
    }
    println!(
        "plain Python calculator, host memory per connection ({MEASURED} connections): \
         {:.1} MiB per connection, {:.2} MiB shared",
        per_connection[0] / f64::from(1 << 20),
        per_connection[1] / f64::from(1 << 20)
    );
    Ok(())
}

/// A host process serving `component`, shared or not, with room for every
/// connection of these measurements.
fn start(component: &str, shared: bool) -> Result<ChildServer> {
    let connections = (LISTENERS + 8).to_string();
    let mut args = vec!["host", component, &connections];
    if shared {
        args.push("shared");
    }
    ChildServer::start(&args)
}

/// Calls per second of `connections` connections calling `increment(1)`
/// one call at a time each, together.
async fn calls_per_second(addr: std::net::SocketAddr, connections: usize) -> Result<f64> {
    let mut conns = Vec::new();
    for _ in 0..connections {
        let conn = connect(addr).await?;
        conn.root().call::<i64>("increment", (1,)).await?;
        conns.push(conn);
    }
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let calling = conns.iter().map(|conn| {
        let calls = Arc::clone(&calls);
        async move {
            while started.elapsed() < CALLING {
                conn.root().call::<i64>("increment", (1,)).await?;
                calls.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }
    });
    join_all(calling)
        .await
        .into_iter()
        .collect::<Result<()>>()?;
    Ok(calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The time from a call that broadcasts (without waiting) to the last of
/// [`LISTENERS`] clients receiving it.
async fn broadcasts(addr: std::net::SocketAddr) -> Result<Samples> {
    let heard = Arc::new(AtomicUsize::new(0));
    let all_heard = Arc::new(Notify::new());
    let mut listeners: Vec<Connection> = Vec::new();
    for _ in 0..LISTENERS {
        let conn = connect(addr).await?;
        let (heard, all_heard) = (Arc::clone(&heard), Arc::clone(&all_heard));
        let listener = Function::new(move |_| {
            if heard.fetch_add(1, Ordering::AcqRel) + 1 == LISTENERS {
                all_heard.notify_one();
            }
            async { Ok(Value::None) }
        });
        conn.root().call::<u32>("keep", (&listener,)).await?;
        listeners.push(conn);
    }
    let speaker = &listeners[0];
    let mut samples = Vec::new();
    for _ in 0..BROADCASTS {
        heard.store(0, Ordering::Release);
        let started = Instant::now();
        speaker
            .root()
            .call::<()>("call_kept_async", ("hello",))
            .await?;
        tokio::time::timeout(Duration::from_secs(10), all_heard.notified())
            .await
            .context("every listener heard the broadcast")?;
        samples.push(started.elapsed());
    }
    Ok(Samples::new(samples))
}

/// The host's resident memory growth per connection, over [`MEASURED`]
/// connections that have each made a call.
async fn memory_per_connection(host: &ChildServer) -> Result<f64> {
    let first = connect(host.addr).await?;
    first.root().call::<i64>("add", (4, 7)).await?;
    let before = resident_bytes(host.id())?;
    let mut conns = Vec::new();
    for _ in 0..MEASURED {
        let conn = connect(host.addr).await?;
        conn.root().call::<i64>("add", (4, 7)).await?;
        conns.push(conn);
    }
    let after = resident_bytes(host.id())?;
    Ok((after.saturating_sub(before)) as f64 / MEASURED as f64)
}

/// The resident memory of process `pid`, in bytes (Linux).
fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("VmRSS in /proc/PID/status")?;
    Ok(kib * 1024)
}
