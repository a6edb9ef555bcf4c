//! `wasm-rpyc serve`: components (or the bundled examples) on their ports,
//! with DEPLOY, registration and hot deploy as the flags ask.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasm_rpyc::deploy::{DEPLOY_SERVICE, DeployLimits, Deployer};
use wasm_rpyc::registry::{BROADCAST, Registrar};
use wasm_rpyc::replace::{Loader, Replaceable, Watched, WatchedFile, keep_current};
use wasm_rpyc::wasm::{CompileCache, Grants};
use wasm_rpyc::{
    Limits, Runtime, Server, ServerConfig, ServiceComponent, ServiceFactory, bundled, tls,
};

use crate::args::{Serve, TransportArg};
use crate::signals;

/// Refuses flags that do not go together, or values out of range, before
/// anything starts.
pub(crate) fn check(args: &Serve) -> Result<()> {
    let single = args.components.len() == 1;
    if !single && !args.aliases.is_empty() {
        bail!("--alias needs exactly one component");
    }
    let grants = !(args.dirs.is_empty() && args.env.is_empty());
    if grants && !single {
        bail!("--dir and --env grant one service: name exactly one component");
    }
    if args.register
        && matches!(args.registry_type, TransportArg::Tcp)
        && args.registry_host.is_none()
    {
        bail!("--registry-type TCP needs --registry-host");
    }
    if args.watch && args.components.is_empty() {
        bail!("--watch replaces components from their files: name at least one");
    }
    for (flag, seconds) in [
        ("--cpu-budget", args.cpu_budget),
        ("--call-deadline", args.call_deadline),
        ("--call-timeout", args.call_timeout),
    ] {
        if !(seconds.is_finite() && seconds > 0.0) {
            bail!("{flag} must be a positive number of seconds");
        }
    }
    if !(args.shutdown_grace.is_finite() && args.shutdown_grace >= 0.0) {
        bail!("--shutdown-grace must be a number of seconds");
    }
    if args.max_frame == 0 || args.max_frame > MAX_FRAME_MIB {
        bail!("--max-frame must be from 1 to {MAX_FRAME_MIB} MiB");
    }
    Ok(())
}

/// The largest `--max-frame`: frame lengths are 32-bit on the wire.
const MAX_FRAME_MIB: usize = 4095;

pub(crate) async fn serve(args: Serve) -> Result<()> {
    // Listen for signals before anything slow, so an early one is not lost.
    let shutdown = signals::shutdown()?;
    let hangups = signals::Hangups::listen()?;
    let mut limits = Limits::default();
    limits.call_cpu_budget = Duration::from_secs_f64(args.cpu_budget);
    limits.call_deadline = Duration::from_secs_f64(args.call_deadline);
    limits.max_memory = args.max_memory << 20;
    limits.max_total_memory = args.max_total_memory << 20;
    limits.max_instances = instances(&args)?;
    if let Some(cores) = args.guest_cores {
        limits.guest_cores = cores;
    }
    let runtime = Runtime::with_cache(limits, compile_cache(&args)?)
        .map_err(|e| anyhow::anyhow!("cannot start the wasm engine: {e:#}"))?;
    let mut grants = Grants::default();
    for dir in args.dirs {
        grants = grants.dir(dir)?;
    }
    for (key, value) in args.env {
        grants = grants.env(key, value);
    }
    // What is served, on which port, and the file it comes from.
    let mut services = Vec::new();
    if args.components.is_empty() {
        if bundled::EXAMPLES.is_empty() {
            bail!(
                "this build has no bundled services (the `bundled` feature is off): name a component"
            );
        }
        for (name, port, bytes) in bundled::EXAMPLES {
            let component = ServiceComponent::from_bytes(&runtime, name, bytes).await?;
            services.push((Replaceable::new(component), *port, None));
        }
    }
    let loader = Loader::new(runtime.clone(), args.aliases, grants);
    for (index, file) in args.components.iter().enumerate() {
        // Port 0 asks the system for a free port: for each component, not
        // for the first only (1, 2, ... are real ports).
        let port = match args.port {
            0 => 0,
            first => u16::try_from(index)
                .ok()
                .and_then(|index| first.checked_add(index))
                .with_context(|| format!("no port after {first} for {}", file.display()))?,
        };
        let watched = WatchedFile::new(file);
        let component = loader.load(file).await?;
        services.push((Replaceable::new(component), port, Some(watched)));
    }
    if let Some(cache) = runtime.compile_cache() {
        let directory = cache.directory().display();
        tracing::info!(%directory, hits = cache.hits(), misses = cache.misses(), "compile cache");
    }
    let mut config = ServerConfig::default();
    config.max_connections = args.max_connections;
    config.max_connections_per_ip =
        (args.max_connections_per_ip > 0).then_some(args.max_connections_per_ip);
    config.max_handshakes = args.max_handshakes;
    config.evict_idle_after = Duration::from_secs(args.evict_idle_after);
    config.connection.max_queued_bytes = args.max_queued_bytes << 20;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls::server_config(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?);
    }
    config.connection.idle_timeout =
        (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    config.connection.max_frame = args.max_frame << 20;
    config.connection.call_timeout = Duration::from_secs_f64(args.call_timeout);
    config.shutdown_grace = Duration::from_secs_f64(args.shutdown_grace);
    let registrar = args.register.then(|| {
        let host = args.registry_host.unwrap_or(BROADCAST);
        Registrar::new(args.registry_type.into(), (host, args.registry_port))
    });
    let stop = CancellationToken::new();
    // The servers, and the tasks that keep them registered and up to date.
    let mut tasks = Vec::new();
    let mut files = Vec::new();
    for (slot, port, file) in services {
        let server = Server::bind((args.host, port), slot.clone(), config.clone())
            .await
            .with_context(|| format!("cannot listen on {}:{port}", args.host))?;
        let component = slot.current();
        tracing::info!(
            service = %component.aliases()[0],
            address = %server.local_addr()?,
            methods = ?component.methods(),
            "serving"
        );
        let port = server.local_addr()?.port();
        let names = slot.clone();
        let aliases = move || names.current().aliases().to_vec();
        tasks.extend(run(server, port, aliases, registrar.as_ref(), &stop));
        if let Some(file) = file {
            files.push(Watched::new(file, slot, port));
        }
    }
    if args.allow_deploy {
        let mut deploy_limits = DeployLimits::default();
        deploy_limits.max_component_size = args.max_deploy_size << 20;
        deploy_limits.max_total_deployments = args.max_deployments;
        deploy_limits.concurrent_compiles = args.concurrent_compiles;
        deploy_limits.cache_bytes = args.deploy_cache << 20;
        let mut config = config.clone();
        config.connection.max_frame = config.connection.max_frame.max(deploy_limits.max_frame());
        let deployer = Deployer::new(runtime.clone(), deploy_limits);
        let server = Server::bind((args.host, args.deploy_port), deployer, config)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{} for deployments",
                    args.host, args.deploy_port
                )
            })?;
        let port = server.local_addr()?.port();
        tracing::info!(service = %DEPLOY_SERVICE, address = %server.local_addr()?, "serving");
        let aliases = || vec![DEPLOY_SERVICE.to_owned()];
        tasks.extend(run(server, port, aliases, registrar.as_ref(), &stop));
    }
    let reload = Arc::new(Notify::new());
    let watch = args.watch.then_some(WATCH_INTERVAL);
    tasks.push(tokio::spawn(keep_current(
        loader,
        files,
        watch,
        Arc::clone(&reload),
        registrar,
        stop.clone(),
    )));
    tasks.push(tokio::spawn(signals::forward_hangups(
        hangups,
        reload,
        stop.clone(),
    )));
    shutdown.await;
    stop.cancel();
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// The compile cache `args` ask for: none with `--no-cache`; else the one in
/// `--cache-dir` (which must work), or in the user's cache directory (if
/// that cannot be used, components are compiled anew, with a warning).
fn compile_cache(args: &Serve) -> Result<Option<CompileCache>> {
    if args.no_cache {
        return Ok(None);
    }
    let bytes = args.cache_size.saturating_mul(1 << 20);
    if let Some(directory) = &args.cache_dir {
        return Ok(Some(CompileCache::open(directory, bytes)?));
    }
    let Some(directory) = CompileCache::default_directory() else {
        tracing::warn!("no cache directory on this system: every component is compiled anew");
        return Ok(None);
    };
    Ok(CompileCache::open(&directory, bytes)
        .inspect_err(|error| tracing::warn!(%error, "every component is compiled anew"))
        .ok())
}

/// Instances a host needs beyond its services' shares: loading a component
/// instantiates it once, to read its names (at start, at a hot deploy, at a
/// deploy's compile).
const LOADING_INSTANCES: usize = 4;

/// How many instances the pool holds: `--max-instances`, which must cover
/// the services' shares, or exactly those shares (each service's
/// `--max-connections`, DEPLOY's `--max-deployments`).
fn instances(args: &Serve) -> Result<u32> {
    let services = match args.components.len() {
        0 => bundled::EXAMPLES.len(),
        files => files,
    };
    let deployments = if args.allow_deploy {
        args.max_deployments
    } else {
        0
    };
    let shares = services
        .saturating_mul(args.max_connections)
        .saturating_add(deployments)
        .saturating_add(LOADING_INSTANCES);
    let shares = u32::try_from(shares).context("the services' shares of instances are too many")?;
    match args.max_instances {
        None => Ok(shares),
        Some(instances) if instances >= shares => Ok(instances),
        Some(instances) => bail!(
            "--max-instances {instances} cannot hold the services' shares: {services} service(s) \
             x --max-connections {}{} + {LOADING_INSTANCES} for loading = {shares}; lower \
             --max-connections or raise --max-instances",
            args.max_connections,
            if args.allow_deploy {
                format!(" + --max-deployments {deployments}")
            } else {
                String::new()
            },
        ),
    }
}

/// The tasks that run `server` (on `port`) until `stop` and, with a
/// registrar, keep it registered under the names `aliases` gives.
fn run<F: ServiceFactory>(
    server: Server<F>,
    port: u16,
    aliases: impl Fn() -> Vec<String> + Send + 'static,
    registrar: Option<&Registrar>,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(registrar) = registrar {
        let (registrar, stop) = (registrar.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            registrar.keep_registered(aliases, port, stop).await;
        }));
    }
    let stop = stop.clone();
    tasks.push(tokio::spawn(
        server.run(async move { stop.cancelled().await }),
    ));
    tasks
}

/// How often `--watch` looks at the component files.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
