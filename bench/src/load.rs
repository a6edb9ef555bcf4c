//! `wasm-rpyc-bench load [CONNECTIONS] [CALLS]`: opens CONNECTIONS (1,000)
//! concurrent native connections to a host process serving the wasm
//! calculator, each making CALLS (100) calls, and reports errors, calls per
//! second, and the host's resident memory per connection, each connection
//! idle with its own instance. The host is configured for CONNECTIONS from
//! one address, all connecting at once (by default a service takes 1,000
//! connections, 250 from one address, and 512 that have yet to send their
//! first bytes).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::future::join_all;
use wasm_rpyc::connect;

use crate::ChildServer;

const CONNECTIONS: usize = 1_000;
const CALLS: usize = 100;

/// Runs the load and prints its figures.
pub(crate) fn run(connections: Option<usize>, calls: Option<usize>) -> Result<()> {
    let (connections, calls) = (connections.unwrap_or(CONNECTIONS), calls.unwrap_or(CALLS));
    // One address opens every connection at once: the host takes that many,
    // as `serve --max-connections N --max-handshakes N
    // --max-connections-per-ip 0` does.
    let host = ChildServer::start(&["host", "calculator", &connections.to_string()])?;
    let tokio = tokio::runtime::Runtime::new()?;
    let idle_host = resident_kib(host.child.id())?;

    let started = Instant::now();
    let opened = tokio.block_on(join_all((0..connections).map(|_| connect(host.addr))));
    let connected = started.elapsed();
    let opened: Vec<_> = opened
        .into_iter()
        .collect::<Result<_, _>>()
        .context("a connection failed")?;

    let started = Instant::now();
    let calling = opened.iter().enumerate().map(|(n, conn)| {
        let root = conn.root();
        async move {
            let mut errors = 0usize;
            for i in 0..calls as i64 {
                match root.call::<i64>("add", (i, n as i64)).await {
                    Ok(sum) if sum == i + n as i64 => {}
                    _ => errors += 1,
                }
            }
            errors
        }
    });
    let errors: usize = tokio.block_on(async {
        let tasks: Vec<_> = calling.map(tokio::spawn).collect();
        join_all(tasks)
            .await
            .into_iter()
            .map(|e| e.unwrap_or(calls))
            .sum()
    });
    let calling_took = started.elapsed();
    let after_calls = resident_kib(host.child.id())?;
    let total = connections * calls;

    println!(
        "wasm-rpyc load (one run, this machine; the host is a separate process serving the wasm calculator)"
    );
    println!();
    println!(
        "{connections} concurrent connections, {calls} calls each: {total} calls, {errors} errors"
    );
    println!(
        "connect all: {:.0} ms; calls: {:.2} s, {:.0} calls/s",
        connected.as_secs_f64() * 1e3,
        calling_took.as_secs_f64(),
        total as f64 / calling_took.as_secs_f64()
    );
    println!(
        "host resident memory: {:.1} MiB before; {:.1} MiB with the connections open and idle after \
         their calls, each with its own instance: {:.0} KiB per connection",
        idle_host as f64 / 1024.0,
        after_calls as f64 / 1024.0,
        after_calls.saturating_sub(idle_host) as f64 / connections as f64,
    );
    println!("target: under 1024 KiB per idle connection with its own instance");
    tokio.block_on(async {
        for conn in opened {
            conn.close().await;
        }
    });
    if errors > 0 {
        bail!("{errors} calls failed");
    }
    Ok(())
}

/// The resident memory of process `pid`, in KiB (Linux).
fn resident_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("the host's memory is read from /proc (Linux)")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}
