//! `wasm-rpyc-bench cluster`: a fleet on NATS JetStream (a real
//! `nats-server -js` and `wasm-rpyc serve --cluster` processes on
//! 127.0.0.2-4, with a heartbeat of 0.5 s and a time-to-live of 1.5 s),
//! measured in one run: how soon a host that starts is found through a fleet
//! registry, how soon one that stops, is killed or hangs is gone, how long
//! the Rust client takes to fail over, how long a fleet deploy of the Rust
//! and of the Python calculator takes to reach three hosts, calls per second
//! with 1, 2 and 3 hosts, and how evenly the registry's answers spread
//! clients that take the first (as RPyC's `connect_by_service` does).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasm_rpyc::cluster::{Cluster, ClusterConfig};
use wasm_rpyc::registry::{Registrar, RegistryError, Transport};

use crate::languages::{CALCULATORS, calculator};

const HEARTBEAT: &str = "0.5";
const TTL: &str = "1.5";
const IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
/// How long each calls-per-second figure is measured.
const CALLS_TIME: Duration = Duration::from_secs(3);
/// Connections calling at once in the calls-per-second figures.
const CALLERS: usize = 12;
/// Registry queries in the spread figure.
const QUERIES: usize = 3000;

/// Measures and prints the figures.
pub(crate) fn run() -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let binary = crate::wasm_rpyc_binary()?;
    let store = std::env::temp_dir().join(format!("wasm-rpyc-bench-nats-{}", std::process::id()));
    let nats_port = free_port()?;
    let _nats = Process(
        Command::new(nats_server()?)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-sd",
            ])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let url = format!("nats://127.0.0.1:{nats_port}");
    wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", nats_port)).is_ok()
    })?;
    let calculator_file = std::env::temp_dir().join("wasm-rpyc-bench-calculator.wasm");
    std::fs::write(&calculator_file, calculator(None)?.0)?;
    let fleet = Fleet {
        binary,
        url,
        calculator: calculator_file.clone(),
        service_port: free_port()?,
    };
    let registry_port = free_port()?;
    let _registry = fleet.start(&[
        "registry",
        "-m",
        "TCP",
        "-p",
        &registry_port.to_string(),
        "--host",
        "127.0.0.1",
    ])?;
    let registrar = Registrar::new(Transport::Tcp, ([127, 0, 0, 1], registry_port));
    let found = |ip: &str| {
        let expected: SocketAddr = (ip.parse::<IpAddr>().unwrap(), fleet.service_port).into();
        tokio
            .block_on(registrar.discover("CALCULATOR"))
            .is_ok_and(|found| found.contains(&expected))
    };
    // The registry answers (empty) once it has read the fleet.
    wait_until(Duration::from_secs(30), || {
        !matches!(
            tokio.block_on(registrar.discover("CALCULATOR")),
            Err(RegistryError::NoAnswer(_) | RegistryError::Io { .. })
        )
    })?;
    println!(
        "a fleet on NATS JetStream (nats-server 2.9, heartbeat {HEARTBEAT} s, time-to-live \
         {TTL} s; one run, this machine; every host and the registry a process of its own)"
    );
    println!();

    // Joining: serving, then found through the registry.
    let mut hosts = Vec::new();
    for ip in IPS {
        let started = Instant::now();
        let host = fleet.host(ip)?;
        wait_until(Duration::from_secs(60), || {
            std::net::TcpStream::connect((ip, fleet.service_port)).is_ok()
        })?;
        let serving = started.elapsed();
        wait_until(Duration::from_secs(30), || found(ip))?;
        let listed = started.elapsed();
        println!(
            "host {ip} started: serving after {}, found through the registry {} later",
            millis(serving),
            millis(listed - serving)
        );
        hosts.push(host);
    }
    println!();

    // Calls per second over 1, 2 and 3 hosts, and the spread.
    let config = |name: &str| {
        let mut config = ClusterConfig::new(&fleet.url, name);
        config.heartbeat = Duration::from_secs_f64(HEARTBEAT.parse().unwrap());
        config.ttl = Duration::from_secs_f64(TTL.parse().unwrap());
        config
    };
    let cluster = tokio.block_on(Cluster::connect(config("default")))?;
    for count in 1..=3 {
        let addrs: Vec<SocketAddr> = IPS[..count]
            .iter()
            .map(|ip| (ip.parse::<IpAddr>().unwrap(), fleet.service_port).into())
            .collect();
        let rate = tokio.block_on(calls_per_second(&addrs))?;
        println!("{count} host(s), {CALLERS} connections calling add(4, 7): {rate:.0} calls/s");
    }
    let mut firsts: HashMap<SocketAddr, usize> = HashMap::new();
    for _ in 0..QUERIES {
        let found = tokio.block_on(registrar.discover("CALCULATOR"))?;
        *firsts.entry(found[0]).or_default() += 1;
    }
    let mean = QUERIES as f64 / firsts.len() as f64;
    let worst = firsts
        .values()
        .map(|n| (*n as f64 - mean).abs() / mean)
        .fold(0.0, f64::max);
    println!(
        "{QUERIES} registry queries, the first address: {} hosts, at most {:.1}% from an even share",
        firsts.len(),
        worst * 100.0
    );
    println!();

    // Fleet deploys to the three hosts.
    let accepting: Vec<_> = IPS
        .iter()
        .map(|ip| {
            fleet.start(&[
                "serve",
                "--host",
                ip,
                "--accept-fleet-deploys",
                "--cluster-name",
                "deploys",
            ])
        })
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(2));
    for (language, built) in [CALCULATORS[0], CALCULATORS[1]] {
        let file = calculator(built)?.1.unwrap_or(calculator_file.clone());
        let started = Instant::now();
        fleet.deploy(&file, language)?;
        println!(
            "fleet deploy of the {language} calculator to 3 hosts (checked here, stored, \
             fetched, compiled, served): {}",
            millis(started.elapsed())
        );
    }
    drop(accepting);
    println!();

    // Leaving: stopped, killed, hung.
    let ways = [
        ("stopped (SIGTERM)", "TERM"),
        ("killed (SIGKILL)", "KILL"),
        ("hung (SIGSTOP)", "STOP"),
    ];
    let mut hung = None;
    for ((way, name), (ip, mut host)) in ways.into_iter().zip(IPS.into_iter().zip(hosts)) {
        let started = Instant::now();
        signal(&mut host.0, name);
        wait_until(Duration::from_secs(30), || !found(ip))?;
        println!(
            "a host {way}: gone from the registry after {}",
            millis(started.elapsed())
        );
        if way.starts_with("hung") {
            hung = Some((ip, host));
        }
    }
    // Failover: a host whose record is still fresh but which is dead (its
    // port refuses) or hung, beside a live one.
    let (hung_ip, mut hung_host) = hung.expect("the third host hangs");
    signal(&mut hung_host.0, "CONT");
    let spare = fleet.host(IPS[0])?;
    wait_until(Duration::from_secs(60), || found(IPS[0]))?;
    let mut doomed = fleet.host(IPS[1])?;
    wait_until(Duration::from_secs(60), || found(IPS[1]))?;
    let python = Python::start(registry_port)?;
    signal(&mut doomed.0, "KILL");
    let rust_dead = tokio.block_on(failover(&cluster))?;
    let python_dead = match python {
        Some(python) => python.measure()?,
        None => "no .venv with rpyc here".into(),
    };
    println!(
        "a killed host still in the view, beside a live one: the Rust client's \
         connect_by_service {rust_dead}; Python's rpyc.connect_by_service and a call {python_dead}"
    );
    wait_until(Duration::from_secs(30), || found(hung_ip))?;
    signal(&mut hung_host.0, "STOP");
    let rust_hung = tokio.block_on(failover(&cluster))?;
    println!(
        "a hung host still in the view, beside a live one: the Rust client's connect_by_service \
         {rust_hung} (a hung host costs its 1 s connect timeout; RPyC's client has no connect \
         check and waits out its 30 s request timeout)"
    );
    signal(&mut hung_host.0, "CONT");
    drop((spare, doomed));
    let _ = std::fs::remove_dir_all(store);
    let _ = std::fs::remove_file(calculator_file);
    Ok(())
}

/// Six `connect_by_service("CALCULATOR")` of `cluster`, timed: their
/// fastest and slowest.
async fn failover(cluster: &Cluster) -> Result<String> {
    let mut times = Vec::new();
    for _ in 0..6 {
        let started = Instant::now();
        let connection = cluster.connect_by_service("CALCULATOR").await?;
        times.push(started.elapsed());
        drop(connection);
    }
    times.sort();
    Ok(format!(
        "took {} to {} over 6 tries",
        millis(times[0]),
        millis(times[5])
    ))
}

/// RPyC's own client, waiting to measure `connect_by_service` through the
/// fleet registry (a TCP one) when told to.
struct Python(Child);

/// What the Python measurement runs: six connects by name and a call each,
/// timed, once a line comes on stdin.
const PYTHON_FAILOVER: &str = "
import sys, time, rpyc
from rpyc.utils.registry import TCPRegistryClient
registrar = TCPRegistryClient(ip='127.0.0.1', port=int(sys.argv[1]))
sys.stdin.readline()
times = []
for _ in range(6):
    started = time.monotonic()
    conn = rpyc.connect_by_service('CALCULATOR', registrar=registrar)
    assert conn.root.add(4, 7) == 11
    times.append(time.monotonic() - started)
    conn.close()
times.sort()
print('took %.0f ms to %.0f ms over 6 tries' % (times[0] * 1000, times[-1] * 1000))
";

impl Python {
    /// Started and waiting, if the checkout's .venv (with rpyc) is there.
    fn start(registry_port: u16) -> Result<Option<Python>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        if !python.exists() {
            return Ok(None);
        }
        let child = Command::new(python)
            .args(["-c", PYTHON_FAILOVER, &registry_port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        // Time to import rpyc before it is told to go.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Some(Python(child)))
    }

    /// Tells it to go, and returns what it measured.
    fn measure(mut self) -> Result<String> {
        use std::io::Write;
        self.0.stdin.take().expect("piped").write_all(b"go\n")?;
        let output = self.0.wait_with_output()?;
        if !output.status.success() {
            bail!("the Python measurement failed");
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// How to start the fleet's processes.
struct Fleet {
    binary: PathBuf,
    url: String,
    /// The bundled calculator, as a file.
    calculator: PathBuf,
    /// The port every host serves the calculator on.
    service_port: u16,
}

impl Fleet {
    /// `wasm-rpyc ARGS --cluster URL` with the benchmark's timings.
    fn start(&self, args: &[&str]) -> Result<Process> {
        Ok(Process(
            Command::new(&self.binary)
                .args(args)
                .args(["--cluster", &self.url, "--heartbeat", HEARTBEAT])
                .args(["--cluster-ttl", TTL, "-q"])
                .stdout(Stdio::null())
                .spawn()?,
        ))
    }

    /// A host serving the bundled calculator on `ip`.
    fn host(&self, ip: &str) -> Result<Process> {
        let port = self.service_port.to_string();
        let calculator = self.calculator.to_string_lossy();
        self.start(&["serve", &calculator, "--host", ip, "-p", &port])
    }

    /// `wasm-rpyc deploy` of `file`, which must succeed on every host.
    fn deploy(&self, file: &Path, language: &str) -> Result<()> {
        let name = format!("calc-{}", language.to_lowercase());
        let status = Command::new(&self.binary)
            .arg("deploy")
            .arg(file)
            .args([
                "--name",
                &name,
                "--cluster",
                &self.url,
                "--cluster-name",
                "deploys",
            ])
            .args(["--heartbeat", HEARTBEAT, "--cluster-ttl", TTL, "-q"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("the fleet deploy of the {language} calculator failed");
        }
        Ok(())
    }
}

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        signal(&mut self.0, "CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (a name `kill` takes) to `child`.
fn signal(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
}

/// Calls per second of [`CALLERS`] connections spread over `addrs`, each
/// calling `add(4, 7)` one call at a time for [`CALLS_TIME`].
async fn calls_per_second(addrs: &[SocketAddr]) -> Result<f64> {
    let mut callers = Vec::new();
    for n in 0..CALLERS {
        let addr = addrs[n % addrs.len()];
        callers.push(tokio::spawn(async move {
            let connection = wasm_rpyc::connect(addr).await?;
            let root = connection.root();
            let started = Instant::now();
            let mut calls = 0u64;
            while started.elapsed() < CALLS_TIME {
                let _: i64 = root.call("add", (4, 7)).await?;
                calls += 1;
            }
            Ok::<u64, anyhow::Error>(calls)
        }));
    }
    let mut total = 0;
    for caller in callers {
        total += caller.await??;
    }
    Ok(total as f64 / CALLS_TIME.as_secs_f64())
}

/// Waits until `done` holds, at most `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            bail!("not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn nats_server() -> Result<&'static str> {
    ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .context("nats-server is missing (Debian's package nats-server)")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}
