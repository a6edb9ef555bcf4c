//! Helpers for the end-to-end tests: the components built from source, and
//! hosts serving them on `127.0.0.1:0`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use wasm_rpyc::connection::Config;
use wasm_rpyc::deploy::DeployLimits;
use wasm_rpyc::{
    Connection, Function, Limits, Runtime, Server, ServerConfig, ServiceComponent, ServiceFactory,
    Value, VoidService, bundled,
};

/// How long the tests wait for what another task or process does at once (a
/// connection's end seen by the host, a release, a log line): far longer
/// than it takes even on a loaded machine, so that only a real failure
/// waits it out.
pub const SETTLE: Duration = Duration::from_secs(60);

/// How long a test's call waits for its reply when it compiles a large
/// component (a Python component is 18 MB: seconds of a core, minutes on a
/// loaded machine) or computes at the guests' lowest priority (a guest's CPU
/// budget is CPU time, which a loaded machine hands out slowly): past the
/// host's own deadline of a call (60 s), so the host's answer always comes
/// first.
pub const PATIENCE: Duration = Duration::from_secs(600);

/// Connects to `addr` with calls that wait up to [`PATIENCE`] for their
/// replies (the client's default, 30 s, is RPyC's), and frames large enough
/// for the largest component DEPLOY takes.
pub async fn connect_patiently(addr: SocketAddr) -> Connection {
    let mut config = Config::default();
    config.call_timeout = PATIENCE;
    config.max_frame = DeployLimits::default().max_frame();
    wasm_rpyc::connect_with(addr, VoidService::default(), config)
        .await
        .expect("connects")
}

/// Waits up to [`SETTLE`] for `done`, asking every 20 ms; whether it came.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// A callback that holds the call it is lent to: it tells the test when a
/// service calls it, and answers only once the test lets it go. A call in
/// progress that says so, where a sleeping one would need a guess of how
/// long a call takes to arrive (which a loaded machine exceeds).
pub struct HeldCallback {
    /// The callback to lend.
    pub function: Function,
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl HeldCallback {
    /// A callback that answers `answer` once let go.
    pub fn new(answer: Value) -> Self {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let function = {
            let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
            Function::new(move |_| {
                let (entered, release, answer) =
                    (Arc::clone(&entered), Arc::clone(&release), answer.clone());
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Ok(answer)
                }
            })
        };
        HeldCallback {
            function,
            entered,
            release,
        }
    }

    /// Waits up to [`SETTLE`] for a service to call it.
    pub async fn entered(&self) {
        tokio::time::timeout(SETTLE, self.entered.notified())
            .await
            .expect("the call reached the callback");
    }

    /// Lets the call go: the callback answers.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// The test guest that echoes every WIT type, raises, traps and counts hooks.
pub const TESTBED: &str = env!("GUEST_TESTBED");

/// A component that exports no `exposed-*` function.
pub const NOTHING_EXPOSED: &str = env!("GUEST_NOTHING_EXPOSED");

/// A test guest that reaches for files, environment variables and the network.
pub const SANDBOX: &str = env!("GUEST_SANDBOX");

/// A service written with the SDK's `#[service]` attribute.
pub const SDK_SERVICE: &str = env!("GUEST_SDK_SERVICE");

/// Where `services/build.sh` puts `service` written in `language`
/// (`python`, `js`): `<target>/polyglot/<language>/<service>.wasm`.
pub fn polyglot(language: &str, service: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target
        .join("polyglot")
        .join(language)
        .join(format!("{service}.wasm"))
}

/// A runtime with the default limits.
pub fn runtime() -> Runtime {
    Runtime::new(Limits::default()).expect("the engine starts")
}

/// The bundled example `name` (the seed's services: `calculator`,
/// `my-service`, `decoupled`, `callback`).
pub async fn example(runtime: &Runtime, name: &str) -> ServiceComponent {
    let (name, _, bytes) = bundled::EXAMPLES
        .iter()
        .find(|(example, ..)| *example == name)
        .unwrap_or_else(|| panic!("{name} is bundled"));
    ServiceComponent::from_bytes(runtime, name, bytes)
        .await
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// The bundled calculator (the seed's `CalculatorService`).
pub async fn calculator(runtime: &Runtime) -> ServiceComponent {
    example(runtime, "calculator").await
}

/// A component built by this crate's build script.
pub async fn guest(runtime: &Runtime, path: &str) -> ServiceComponent {
    ServiceComponent::load(runtime, Path::new(path))
        .await
        .expect("the test guest loads")
}

/// A host serving `component` on a free port; it stops when dropped.
pub struct Host {
    /// Where it listens.
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Serves what `factory` makes (a component's instances, say) with `config`
/// on `127.0.0.1:0`.
pub async fn serve_with<F: ServiceFactory>(factory: F, config: ServerConfig) -> Host {
    let server = Server::bind("127.0.0.1:0", factory, config)
        .await
        .expect("bind");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Host { addr, _stop: stop }
}

/// Serves what `factory` makes with the default configuration.
pub async fn serve<F: ServiceFactory>(factory: F) -> Host {
    serve_with(factory, ServerConfig::default()).await
}

/// A Python RPyC server from `tests/python/`, run by the venv that
/// `tests/run.sh` makes (or `$WASM_RPYC_PYTHON`); killed when dropped.
pub struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    /// Runs `tests/python/<script>`, which prints the port it listens on.
    pub fn start(script: &str) -> Self {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var_os("WASM_RPYC_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| here.join("../.venv/bin/python"));
        let mut child = Command::new(&python)
            .arg(here.join("python").join(script))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (run tests/run.sh, which makes the venv): {e}",
                    python.display()
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} printed {line:?}, not a port"));
        PythonServer { child, port }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the host logs in this test process, from the first call on.
pub struct Logs {
    lines: Arc<Mutex<Vec<u8>>>,
}

impl Logs {
    /// How many logged lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.count_all(&[text])
    }

    /// How many logged lines contain every one of `parts` (a message and a
    /// field, say, whatever their order).
    pub fn count_all(&self, parts: &[&str]) -> usize {
        let lines = self.lines.lock().expect("log buffer poisoned");
        String::from_utf8_lossy(&lines)
            .lines()
            .filter(|l| parts.iter().all(|part| l.contains(part)))
            .count()
    }

    /// Waits up to [`SETTLE`] for a line containing `text` (one logged by
    /// another task, say when a connection ends); the caller then counts.
    pub async fn wait_for(&self, text: &str) {
        self.wait_for_all(&[text]).await;
    }

    /// Waits up to [`SETTLE`] for a line containing every one of `parts`.
    pub async fn wait_for_all(&self, parts: &[&str]) {
        let deadline = Instant::now() + SETTLE;
        while self.count_all(parts) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts capturing the process's logs (once; later calls share the capture).
pub fn capture_logs() -> Logs {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let lines = LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .init();
        lines
    });
    Logs {
        lines: Arc::clone(lines),
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
