//! Helpers for the end-to-end tests: the components built from source, and
//! hosts serving them on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::Path;

use tokio::sync::oneshot;
use wasm_rpyc::{Limits, Runtime, Server, ServerConfig, ServiceComponent, bundled};

/// The test guest that echoes every WIT type, raises, traps and counts hooks.
pub const TESTBED: &str = env!("GUEST_TESTBED");

/// A component that exports no `exposed-*` function.
pub const NOTHING_EXPOSED: &str = env!("GUEST_NOTHING_EXPOSED");

/// A runtime with the default limits.
pub fn runtime() -> Runtime {
    Runtime::new(Limits::default()).expect("the engine starts")
}

/// The bundled calculator (the seed's `CalculatorService`).
pub async fn calculator(runtime: &Runtime) -> ServiceComponent {
    let (name, _, bytes) = bundled::EXAMPLES
        .iter()
        .find(|(name, ..)| *name == "calculator")
        .expect("the calculator is bundled");
    ServiceComponent::from_bytes(runtime, name, bytes)
        .await
        .expect("the calculator loads")
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

/// Serves `component` with `config` on `127.0.0.1:0`.
pub async fn serve_with(component: ServiceComponent, config: ServerConfig) -> Host {
    let server = Server::bind("127.0.0.1:0", component, config)
        .await
        .expect("bind");
    let addr = server.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Host { addr, _stop: stop }
}

/// Serves `component` with the default configuration.
pub async fn serve(component: ServiceComponent) -> Host {
    serve_with(component, ServerConfig::default()).await
}
