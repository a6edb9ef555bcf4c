//! `wasm-rpyc-bench`: measures, in one run, on this machine:
//!
//! - (a) the raw TCP ping-pong floor between two processes, 16 bytes each
//!   way with TCP_NODELAY, once with blocking sockets on both ends and once
//!   with tokio on both ends; the lower median is the floor;
//! - (b) the native client calling `add(4, 7)` on the wasm calculator in a
//!   host process, one call at a time, from a tokio task: median and p99
//!   (also from the thread of `block_on`, which adds a cross-thread wakeup
//!   per message);
//! - (c) 64 calls in flight on one connection: calls per second;
//! - (d) connect plus the first call on a fresh instance: median;
//! - (e) the seed's callback `bar(func)` with a Rust closure: the host calls
//!   the client back inside the call (target: at most 2.2x (b));
//! - (f) `obj.foo()` on a held instance of the seed's `MyClass`, and
//!   `MyClass(1, 2)` made and dropped at once.
//!
//! `wasm-rpyc-bench load` is the load tool instead (see `load.rs`), and
//! `wasm-rpyc-bench languages` compares the calculator written in each
//! language (see `languages.rs`), `wasm-rpyc-bench deploy` measures
//! deploying it (see `deploy.rs`), `wasm-rpyc-bench fairness` measures
//! short calls while other connections burn CPU (see `fairness.rs`), and
//! `wasm-rpyc-bench cluster` a fleet on NATS (see `cluster.rs`), and
//! `wasm-rpyc-bench shared` one instance for every connection beside one
//! per connection (see `shared.rs`), and `wasm-rpyc-bench classic` the
//! `rpyc.classic` client against `wasm-rpyc classic` and RPyC's
//! `rpyc_classic` (see `classic.rs`).
//!
//! The hosts and the echo servers run as child processes of this binary
//! (`wasm-rpyc-bench host NAME` / `echo` / `echo-tokio`), so every figure crosses
//! two processes. Last, (a) and (b) are measured again with one core kept
//! busy, which removes the cost of waking an idle core and leaves the
//! software's own.

mod classic;
mod cluster;
mod deploy;
mod fairness;
mod languages;
mod load;
mod shared;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::future::join_all;
use wasm_rpyc::deploy::{DeployLimits, Deployer};
use wasm_rpyc::{
    Function, Limits, RemoteObject, Runtime, Server, ServerConfig, ServiceComponent, Value,
    bundled, connect,
};

const SERIAL_CALLS: usize = 20_000;
const WARMUP: usize = 2_000;
const IN_FLIGHT: usize = 64;
const THROUGHPUT_TIME: Duration = Duration::from_secs(3);
const FRESH_CONNECTIONS: usize = 1_000;

fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => run(),
        Some("echo") => echo_server(),
        Some("echo-tokio") => tokio_echo_server(),
        Some("host") => {
            let connections = std::env::args().nth(3).and_then(|n| n.parse().ok());
            let shared = std::env::args().nth(4).as_deref() == Some("shared");
            host(
                &std::env::args().nth(2).unwrap_or_default(),
                connections,
                shared,
            )
        }
        Some("load") => {
            let number = |at: usize| std::env::args().nth(at).and_then(|n| n.parse().ok());
            load::run(number(2), number(3))
        }
        Some("languages") => languages::run(),
        Some("deploy") => deploy::run(),
        Some("fairness") => fairness::run(),
        Some("cluster") => cluster::run(),
        Some("shared") => shared::run(),
        Some("classic") => classic::run(),
        Some("fairness-host") => fairness::host(),
        Some(other) => {
            bail!(
                "unknown mode {other}: run without arguments, or with `load`, `languages`, `deploy`, `fairness`, `cluster`, `shared` or `classic`"
            )
        }
    }
}

/// A child process that prints the port it listens on, then serves.
struct ChildServer {
    child: Child,
    addr: SocketAddr,
}

impl ChildServer {
    fn start(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a child process")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let addr = line
            .trim()
            .parse()
            .with_context(|| format!("the {args:?} child said {line:?}"))?;
        Ok(ChildServer { child, addr })
    }

    /// The child's process id.
    fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Echoes 16-byte messages, one thread per connection.
fn echo_server() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while stream.read_exact(&mut buf).is_ok() && stream.write_all(&buf).is_ok() {}
        });
    }
    Ok(())
}

/// Echoes 16-byte messages with tokio, one task per connection.
fn tokio_echo_server() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        loop {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                while stream.read_exact(&mut buf).await.is_ok()
                    && stream.write_all(&buf).await.is_ok()
                {}
            });
        }
    })
}

/// Serves the bundled example `example`, or the component file `example`
/// (a name ending in `.wasm`), as `wasm-rpyc serve` does; with
/// `connections`, to that many connections from one address, all
/// connecting at once, as `serve --max-connections N --max-handshakes N
/// --max-connections-per-ip 0` does.
fn host(example: &str, connections: Option<usize>, shared: bool) -> Result<()> {
    let mut limits = Limits::default();
    let mut config = ServerConfig::default();
    if let Some(connections) = connections {
        limits.max_instances = u32::try_from(connections + 8)?;
        config.max_connections = connections;
        config.max_handshakes = connections;
        config.max_connections_per_ip = None;
    }
    tokio::runtime::Runtime::new()?.block_on(async {
        let runtime = Runtime::new(limits).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        if example == "deploy" {
            let limits = DeployLimits::default();
            let mut config = ServerConfig::default();
            config.connection.max_frame = limits.max_frame();
            let server =
                Server::bind("127.0.0.1:0", Deployer::new(runtime, limits), config).await?;
            println!("{}", server.local_addr()?);
            server.run(std::future::pending()).await;
            return Ok(());
        }
        let component = if example.ends_with(".wasm") {
            ServiceComponent::load(&runtime, example.as_ref()).await?
        } else {
            let (name, _, bytes) = bundled::EXAMPLES
                .iter()
                .find(|(name, ..)| *name == example)
                .with_context(|| format!("no bundled example {example:?}"))?;
            ServiceComponent::from_bytes(&runtime, name, bytes).await?
        };
        let component = if shared {
            component.shared()
        } else {
            component
        };
        let server = Server::bind("127.0.0.1:0", component, config).await?;
        println!("{}", server.local_addr()?);
        server.run(std::future::pending()).await;
        Ok(())
    })
}

/// Latencies, sorted.
struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Samples(samples)
    }

    fn percentile(&self, p: f64) -> Duration {
        self.0[((self.0.len() - 1) as f64 * p).round() as usize]
    }

    fn median(&self) -> Duration {
        self.percentile(0.5)
    }
}

/// The `wasm-rpyc` binary beside this one.
fn wasm_rpyc_binary() -> Result<std::path::PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("wasm-rpyc");
    if !binary.exists() {
        anyhow::bail!(
            "{} is missing: cargo build --release -p wasm-rpyc",
            binary.display()
        );
    }
    Ok(binary)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn run() -> Result<()> {
    let echo = ChildServer::start(&["echo"])?;
    let tokio_echo = ChildServer::start(&["echo-tokio"])?;
    let host = ChildServer::start(&["host", "calculator"])?;
    let callback_host = ChildServer::start(&["host", "callback"])?;
    let classes_host = ChildServer::start(&["host", "my-service"])?;
    let tokio = tokio::runtime::Runtime::new()?;
    let in_task = |f: std::pin::Pin<Box<dyn Future<Output = Result<Samples>> + Send>>| {
        tokio.block_on(async { tokio::spawn(f).await })?
    };
    let blocking_floor = raw_ping_pong(echo.addr)?;
    let tokio_floor = in_task(Box::pin(tokio_ping_pong(tokio_echo.addr)))?;
    let serial = in_task(Box::pin(serial_calls(host.addr)))?;
    let serial_block_on = tokio.block_on(serial_calls(host.addr))?;
    let throughput = tokio.block_on(calls_in_flight(host.addr))?;
    let fresh = in_task(Box::pin(fresh_connections(host.addr, FRESH_CONNECTIONS)))?;
    let callbacks = in_task(Box::pin(callback_calls(callback_host.addr)))?;
    let (held, made) =
        tokio.block_on(async { tokio::spawn(object_calls(classes_host.addr)).await? })?;
    let (hot_floor, hot_serial) = with_a_core_kept_busy(|| {
        Ok((
            in_task(Box::pin(tokio_ping_pong(tokio_echo.addr)))?,
            in_task(Box::pin(serial_calls(host.addr)))?,
        ))
    })?;

    let floor = blocking_floor.median().min(tokio_floor.median());
    let ratio = micros(serial.median()) / micros(floor);
    println!(
        "wasm-rpyc benchmark (one run, this machine; host and echo servers are separate processes)"
    );
    println!();
    println!("{:<62} {:>10} {:>10}", "", "median", "p99");
    let row = |label: &str, samples: &Samples| {
        println!(
            "{label:<62} {:>8.1}µs {:>8.1}µs",
            micros(samples.median()),
            micros(samples.percentile(0.99))
        );
    };
    row(
        "(a) raw TCP ping-pong, blocking sockets both ends",
        &blocking_floor,
    );
    row("(a) raw TCP ping-pong, tokio both ends", &tokio_floor);
    row(
        "(b) native client -> host -> wasm add(4, 7), serial, tokio task",
        &serial,
    );
    row(
        "    the same, called from the block_on thread",
        &serial_block_on,
    );
    row("(d) connect + first call on a fresh instance", &fresh);
    row(
        "(e) callback: bar(func), the host calls a Rust closure back",
        &callbacks,
    );
    row("(f) obj.foo() on a held MyClass instance", &held);
    row("(f) MyClass(1, 2) made, then dropped (release sent)", &made);
    println!();
    println!("(c) {IN_FLIGHT} calls in flight on one connection: {throughput:.0} calls/s");
    println!();
    println!(
        "targets: (b) <= 1.3x the floor ({:.1}µs): {ratio:.2}x | (c) >= 100000 calls/s | (d) <= 300 µs",
        micros(floor)
    );
    println!(
        "         (e) <= 2.2x (b): {:.2}x",
        micros(callbacks.median()) / micros(serial.median())
    );
    println!();
    println!("Without the cost of waking an idle core (a spinning thread keeps one core busy),");
    println!("what remains is the software's own cost:");
    row("(a) raw TCP ping-pong, tokio both ends", &hot_floor);
    row(
        "(b) native client -> host -> wasm add(4, 7), serial, tokio task",
        &hot_serial,
    );
    Ok(())
}

/// Runs `measure` while a thread spins on one core. On a virtual machine,
/// waking an idle core costs tens of microseconds and dominates a loopback
/// round trip; with a core kept busy, that cost mostly disappears.
fn with_a_core_kept_busy<T>(measure: impl FnOnce() -> Result<T>) -> Result<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let result = measure();
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the spinner does not panic");
    result
}

fn raw_ping_pong(addr: SocketAddr) -> Result<Samples> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = [7u8; 16];
    let mut samples = Vec::with_capacity(SERIAL_CALLS);
    for i in 0..WARMUP + SERIAL_CALLS {
        let start = Instant::now();
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    Ok(Samples::new(samples))
}

async fn tokio_ping_pong(addr: SocketAddr) -> Result<Samples> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = [7u8; 16];
    let mut samples = Vec::with_capacity(SERIAL_CALLS);
    for i in 0..WARMUP + SERIAL_CALLS {
        let start = Instant::now();
        stream.write_all(&buf).await?;
        stream.read_exact(&mut buf).await?;
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    Ok(Samples::new(samples))
}

/// Times `call`, one at a time, after a warm-up.
async fn serial<F: Future<Output = Result<()>>>(mut call: impl FnMut() -> F) -> Result<Samples> {
    let mut samples = Vec::with_capacity(SERIAL_CALLS);
    for i in 0..WARMUP + SERIAL_CALLS {
        let start = Instant::now();
        call().await?;
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    Ok(Samples::new(samples))
}

async fn serial_calls(addr: SocketAddr) -> Result<Samples> {
    let conn = connect(addr).await?;
    let root = conn.root();
    let samples = serial(|| async {
        let sum: i64 = root.call("add", (4, 7)).await?;
        assert_eq!(sum, 11);
        Ok(())
    })
    .await;
    conn.close().await;
    samples
}

async fn callback_calls(addr: SocketAddr) -> Result<Samples> {
    let conn = connect(addr).await?;
    let root = conn.root();
    let foofunc = Function::new(|_| async { Ok(Value::Str("foo".into())) });
    let samples = serial(|| async {
        let result: String = root.call("bar", (&foofunc,)).await?;
        assert_eq!(result, "foobar");
        Ok(())
    })
    .await;
    conn.close().await;
    samples
}

/// A method call on a held object, and an object made then dropped.
async fn object_calls(addr: SocketAddr) -> Result<(Samples, Samples)> {
    let conn = connect(addr).await?;
    let root = conn.root();
    let held: RemoteObject = root.call("MyClass", (1, 2)).await?;
    let method = serial(|| async {
        assert_eq!(held.call::<i64>("foo", ()).await?, 3);
        Ok(())
    })
    .await?;
    let made = serial(|| async {
        let _: RemoteObject = root.call("MyClass", (1, 2)).await?;
        Ok(())
    })
    .await?;
    conn.close().await;
    Ok((method, made))
}

async fn calls_in_flight(addr: SocketAddr) -> Result<f64> {
    let conn = connect(addr).await?;
    let done = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let workers = (0..IN_FLIGHT).map(|_| {
        let root = conn.root();
        let (done, calls) = (Arc::clone(&done), Arc::clone(&calls));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let sum: i64 = root.call("add", (4, 7)).await.expect("a call");
                assert_eq!(sum, 11);
                calls.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let workers: Vec<_> = workers.collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (start, before) = (Instant::now(), calls.load(Ordering::Relaxed));
    tokio::time::sleep(THROUGHPUT_TIME).await;
    let (elapsed, after) = (start.elapsed(), calls.load(Ordering::Relaxed));
    done.store(true, Ordering::Relaxed);
    for worker in join_all(workers).await {
        worker?;
    }
    conn.close().await;
    Ok((after - before) as f64 / elapsed.as_secs_f64())
}

async fn fresh_connections(addr: SocketAddr, count: usize) -> Result<Samples> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let conn = connect(addr).await?;
        let sum: i64 = conn.root().call("add", (4, 7)).await?;
        samples.push(start.elapsed());
        assert_eq!(sum, 11);
        conn.close().await;
    }
    Ok(Samples::new(samples))
}
