//! `wasm-rpyc registry`: RPyC's registry.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UdpSocket};
use wasm_rpyc::registry::{Registry, Transport};

use crate::args::RegistryArgs;
use crate::signals;

/// Serves RPyC's registry as `args` say, until Ctrl-C or SIGTERM.
pub(crate) async fn serve(args: RegistryArgs) -> Result<()> {
    let shutdown = signals::shutdown()?;
    let registry = Arc::new(Registry::new(
        Duration::from_secs(args.pruning_timeout),
        args.allow_listing,
    ));
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
    Ok(())
}
