//! `wasm-rpyc registry`: RPyC's registry, of its own registrations or of a
//! fleet's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use wasm_rpyc::cluster::{Fleet, View};
use wasm_rpyc::registry::{Registry, Transport};

use crate::args::RegistryArgs;
use crate::signals;

/// Serves RPyC's registry as `args` say, until Ctrl-C or SIGTERM.
pub(crate) async fn serve(args: RegistryArgs) -> Result<()> {
    let shutdown = signals::shutdown()?;
    let pruning_timeout = Duration::from_secs(args.pruning_timeout);
    let stop = CancellationToken::new();
    let (registry, reading) = match args.cluster.config() {
        Some(config) => {
            let view = View::new(Fleet::connect(config).await?);
            // Read twice a heartbeat, so a host is seen gone soon after its
            // time-to-live.
            let interval = view.fleet().config().heartbeat / 2;
            let reading = {
                let (view, stop) = (view.clone(), stop.clone());
                tokio::spawn(async move { view.keep_current(interval, stop).await })
            };
            let registry = Registry::with_fleet(view, pruning_timeout, args.allow_listing);
            (registry, Some(reading))
        }
        None => (Registry::new(pruning_timeout, args.allow_listing), None),
    };
    let registry = Arc::new(registry);
    let addr = (args.host, args.port);
    let (serving, mode) = match args.mode.into() {
        Transport::Udp => {
            let socket = UdpSocket::bind(addr)
                .await
                .with_context(|| format!("cannot bind UDP {}:{}", args.host, args.port))?;
            let local = socket.local_addr()?;
            (tokio::spawn(registry.serve_udp(socket)), ("UDP", local))
        }
        Transport::Tcp => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
            let local = listener.local_addr()?;
            (tokio::spawn(registry.serve_tcp(listener)), ("TCP", local))
        }
    };
    tracing::info!(transport = mode.0, address = %mode.1, listing = args.allow_listing, "registry serving");
    shutdown.await;
    serving.abort();
    stop.cancel();
    if let Some(reading) = reading {
        reading.await?;
    }
    Ok(())
}
