//! The `wasm-rpyc` command: parsing and wiring only.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use wasm_rpyc::{Limits, Runtime, Server, ServerConfig, ServiceComponent, bundled};

#[derive(Parser)]
#[command(version, about = "Serve WebAssembly components as RPyC services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve components; with none, serve the bundled example services on
    /// their default ports.
    Serve {
        /// Component files (`.wasm`), served on consecutive ports from `--port`.
        components: Vec<PathBuf>,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// The first port (the default is RPyC's first example port).
        #[arg(long, default_value_t = 18861)]
        port: u16,
        /// Replace the service's aliases (repeat for several; the first is
        /// its name). Only with a single component.
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve {
        components,
        host,
        port,
        aliases,
    } = Cli::parse().command;
    if !aliases.is_empty() && components.len() != 1 {
        bail!("--alias needs exactly one component");
    }
    tokio::runtime::Runtime::new()?.block_on(serve(components, host, port, aliases))
}

async fn serve(files: Vec<PathBuf>, host: IpAddr, port: u16, aliases: Vec<String>) -> Result<()> {
    // Listen for signals before anything slow, so an early one is not lost.
    let shutdown = shutdown_signal()?;
    let runtime = Runtime::new(Limits::default())
        .map_err(|e| anyhow::anyhow!("cannot start the wasm engine: {e:#}"))?;
    let mut services = Vec::new();
    if files.is_empty() {
        if bundled::EXAMPLES.is_empty() {
            bail!(
                "this build has no bundled services (the `bundled` feature is off): name a component"
            );
        }
        for (name, port, bytes) in bundled::EXAMPLES {
            services.push((
                ServiceComponent::from_bytes(&runtime, name, bytes).await?,
                *port,
            ));
        }
    }
    for (file, port) in files.iter().zip(port..) {
        let component = ServiceComponent::load(&runtime, file)
            .await?
            .with_aliases(&aliases);
        services.push((component, port));
    }
    let stop = CancellationToken::new();
    let mut servers = Vec::new();
    for (component, port) in services {
        let server = Server::bind((host, port), component.clone(), ServerConfig::default())
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        tracing::info!(
            service = %component.aliases()[0],
            address = %server.local_addr()?,
            methods = ?component.methods(),
            "serving"
        );
        let stop = stop.clone();
        servers.push(tokio::spawn(
            server.run(async move { stop.cancelled().await }),
        ));
    }
    shutdown.await;
    stop.cancel();
    for server in servers {
        server.await?;
    }
    Ok(())
}

/// Registers for Ctrl-C (SIGINT) and SIGTERM now; the future completes on
/// the first of them.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
