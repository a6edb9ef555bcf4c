//! `wasm-rpyc serve`: components (or the bundled examples) on their ports,
//! with DEPLOY, registration and hot deploy as the flags ask.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasm_rpyc::cluster::{AcceptLimits, Accepting, Fleet, Offer, ServiceRecord, hex, keep_member};
use wasm_rpyc::deploy::{DEPLOY_SERVICE, DeployLimits, Deployer};
use wasm_rpyc::metrics;
use wasm_rpyc::registry::{BROADCAST, Registrar};
use wasm_rpyc::replace::{Build, Loader, Replaceable, Watched, WatchedFile, keep_current};
use wasm_rpyc::server::Load;
use wasm_rpyc::wasm::{CompileCache, ServiceLimits};
use wasm_rpyc::{Limits, Runtime, Server, ServerConfig, ServiceComponent, ServiceFactory, tls};

use crate::args::{Serve, ServiceFlags};
use crate::plan::{Plan, ServicePlan, Source};
use crate::signals;

pub(crate) async fn serve(plan: Plan) -> Result<()> {
    let Plan { args, services } = plan;
    // Listen for signals before anything slow, so an early one is not lost.
    let shutdown = signals::shutdown()?;
    let hangups = signals::Hangups::listen()?;
    // Recording from the start, so the first compiles are counted.
    let metrics = match args.metrics {
        Some(address) => Some((metrics::enable(), listen_for_scrapes(address).await?)),
        None => None,
    };
    let mut limits = Limits::default();
    limits.call_cpu_budget = args.service.cpu_budget.duration();
    limits.call_deadline = args.service.call_deadline.duration();
    // The pool's memories are as large as the largest service's.
    let largest = services.iter().map(|s| s.flags.max_memory);
    limits.max_memory = largest.fold(args.service.max_memory, usize::max) << 20;
    limits.max_total_memory = args.max_total_memory << 20;
    limits.max_instances = instances(&args, &services)?;
    if let Some(cores) = args.guest_cores {
        limits.guest_cores = cores;
    }
    let runtime = Runtime::with_cache(limits, compile_cache(&args)?)
        .map_err(|e| anyhow::anyhow!("cannot start the wasm engine: {e:#}"))?;
    let fleet = match args.cluster.config() {
        Some(config) => Some(Fleet::connect(config).await?),
        None => None,
    };
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    if let Some((metrics, listener)) = metrics {
        metrics.watch(&runtime);
        tasks.push(tokio::spawn(metrics::serve(
            metrics,
            listener,
            stop.clone(),
        )));
    }
    // Every component loaded and every TLS configuration read before any
    // port is bound.
    let mut loaded = Vec::new();
    for service in services {
        let limits = service_limits(&runtime, &service.flags);
        let loader = Loader::new(runtime.clone())
            .with_aliases(service.aliases)
            .with_grants(service.grants)
            .with_limits(limits.clone())
            .with_shared(service.flags.shared);
        let config =
            server_config(&service.flags).with_context(|| format!("{}: TLS", service.origin))?;
        let (component, watched) = match &service.source {
            Source::File(file) => (
                loader.load(file).await?,
                Some((WatchedFile::new(file), None)),
            ),
            Source::Module { module, built } => {
                let cache_dir = args.cache_dir.clone();
                let build: Build = Arc::new(move |module: &Path| {
                    crate::builder::cached(module, None, cache_dir.as_deref())
                        .map_err(|error| format!("{error:#}"))
                });
                let watched = (WatchedFile::new(module), Some(build));
                (loader.load(built).await?, Some(watched))
            }
            Source::Bundled(name, bytes) => {
                let component = ServiceComponent::from_bytes(&runtime, name, bytes).await?;
                let component = component.with_limits(limits);
                let component = if service.flags.shared {
                    component.shared()
                } else {
                    component
                };
                (component, None)
            }
        };
        let watched = watched.map(|(file, build)| (file, build, loader));
        loaded.push((Replaceable::new(component), service.port, config, watched));
    }
    if let Some(cache) = runtime.compile_cache() {
        let directory = cache.directory().display();
        tracing::info!(%directory, hits = cache.hits(), misses = cache.misses(), "compile cache");
    }
    let registrar = args.register.then(|| {
        let host = args.registry_host.unwrap_or(BROADCAST);
        Registrar::new(args.registry_type.into(), (host, args.registry_port))
            .sending_from(args.host)
    });
    // The servers, and the tasks that keep them registered and up to date.
    let mut files = Vec::new();
    let mut listed = Vec::new();
    for (slot, port, config, watched) in loaded {
        let server = Server::bind((args.host, port), slot.clone(), config)
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
        listed.push(Listed {
            slot: Some(slot.clone()),
            port,
            load: server.load(),
        });
        let names = slot.clone();
        let aliases = move || names.current().aliases().to_vec();
        tasks.extend(run(server, port, aliases, registrar.as_ref(), &stop));
        if let Some((file, build, loader)) = watched {
            let watched = Watched::new(file, slot, port, loader);
            files.push(match build {
                Some(build) => watched.built_by(build),
                None => watched,
            });
        }
    }
    if args.allow_deploy {
        let mut deploy_limits = DeployLimits::default();
        deploy_limits.max_component_size = args.max_deploy_size << 20;
        deploy_limits.max_total_deployments = args.max_deployments;
        deploy_limits.concurrent_compiles = args.concurrent_compiles;
        deploy_limits.cache_bytes = args.deploy_cache << 20;
        let mut config = server_config(&args.service)?;
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
        listed.push(Listed {
            slot: None,
            port,
            load: server.load(),
        });
        tracing::info!(service = %DEPLOY_SERVICE, address = %server.local_addr()?, "serving");
        let aliases = || vec![DEPLOY_SERVICE.to_owned()];
        tasks.extend(run(server, port, aliases, registrar.as_ref(), &stop));
    }
    let reload = Arc::new(Notify::new());
    let watch = args.watch.then_some(WATCH_INTERVAL);
    tasks.push(tokio::spawn(keep_current(
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
    // The fleet's deployments, served beside the rest.
    let accepting = match (&fleet, args.accept_fleet_deploys) {
        (Some(fleet), true) => {
            let accepting = Accepting::new();
            let mut limits = AcceptLimits::default();
            limits.max_component_size = args.max_deploy_size << 20;
            limits.max_deployments = args.max_fleet_deploys;
            let serving = accepting.clone().run(
                fleet.clone(),
                runtime.clone(),
                args.host,
                server_config(&args.service)?,
                limits,
                stop.clone(),
            );
            tasks.push(tokio::spawn(serving));
            Some(accepting)
        }
        _ => None,
    };
    // In the fleet once serving; out of it before the listeners close.
    let leave = CancellationToken::new();
    let membership = fleet.map(|fleet| {
        let advertise = args
            .advertise
            .or((!args.host.is_unspecified()).then_some(args.host));
        let offer = move || {
            let mut services: Vec<ServiceRecord> = listed.iter().map(Listed::record).collect();
            let mut offer = Offer::default();
            if let Some(accepting) = &accepting {
                services.extend(accepting.services());
                offer.accepts_deploys = true;
                offer.deployments = accepting.statuses();
            }
            offer.services = services;
            offer
        };
        tokio::spawn(keep_member(fleet, advertise, offer, leave.clone()))
    });
    shutdown.await;
    leave.cancel();
    if let Some(membership) = membership {
        membership.await?;
    }
    stop.cancel();
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// A served service, as the fleet is told of it.
struct Listed {
    /// Its component (none for DEPLOY).
    slot: Option<Replaceable>,
    port: u16,
    load: Load,
}

impl Listed {
    fn record(&self) -> ServiceRecord {
        let component = self.slot.as_ref().map(Replaceable::current);
        ServiceRecord {
            aliases: match &component {
                Some(component) => component.aliases().to_vec(),
                None => vec![DEPLOY_SERVICE.to_owned()],
            },
            port: self.port,
            digest: component.map(|c| hex(c.digest())),
            open: self.load.open(),
            max: self.load.max(),
        }
    }
}

/// The bounds `flags` set for one service's instances.
fn service_limits(runtime: &Runtime, flags: &ServiceFlags) -> ServiceLimits {
    let mut limits = ServiceLimits::of(runtime);
    limits.call_cpu_budget = flags.cpu_budget.duration();
    limits.call_deadline = flags.call_deadline.duration();
    limits.max_memory = flags.max_memory << 20;
    limits
}

/// The listener's and its connections' bounds, and TLS, `flags` set for one
/// service.
fn server_config(flags: &ServiceFlags) -> Result<ServerConfig> {
    let mut config = ServerConfig::default();
    config.max_connections = flags.max_connections;
    config.max_connections_per_ip =
        (flags.max_connections_per_ip > 0).then_some(flags.max_connections_per_ip);
    config.max_handshakes = flags.max_handshakes;
    config.evict_idle_after = Duration::from_secs(flags.evict_idle_after);
    config.shutdown_grace = flags.shutdown_grace.duration();
    if let (Some(cert), Some(key)) = (&flags.tls_cert, &flags.tls_key) {
        config.tls = Some(tls::server_config(
            cert,
            key,
            flags.tls_client_ca.as_deref(),
        )?);
    }
    let connection = &mut config.connection;
    connection.max_queued_bytes = flags.max_queued_bytes << 20;
    connection.idle_timeout =
        (flags.idle_timeout > 0).then(|| Duration::from_secs(flags.idle_timeout));
    connection.max_frame = flags.max_frame.bytes();
    connection.call_timeout = flags.call_timeout.duration();
    Ok(config)
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

/// The listener Prometheus scrapes the metrics from.
async fn listen_for_scrapes(address: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for metrics"))?;
    let address = listener.local_addr()?;
    tracing::info!(url = %format!("http://{address}/metrics"), "metrics");
    Ok(listener)
}

/// Instances a host needs beyond its services' shares: loading a component
/// instantiates it once, to read its names (at start, at a hot deploy, at a
/// deploy's compile).
const LOADING_INSTANCES: usize = 4;

/// How many instances the pool holds: `--max-instances`, which must cover
/// the services' shares, or exactly those shares (each service's
/// `max-connections`, DEPLOY's `--max-deployments`).
fn instances(args: &Serve, services: &[ServicePlan]) -> Result<u32> {
    let connections = services
        .iter()
        .fold(0usize, |sum, s| sum.saturating_add(s.flags.max_connections));
    let deployments = if args.allow_deploy {
        args.max_deployments
    } else {
        0
    };
    // Each fleet deployment is served as a service of the flags' bounds.
    let fleet_deploys = if args.accept_fleet_deploys {
        args.max_fleet_deploys
            .saturating_mul(args.service.max_connections)
    } else {
        0
    };
    let shares = connections
        .saturating_add(fleet_deploys)
        .saturating_add(deployments)
        .saturating_add(LOADING_INSTANCES);
    let shares = u32::try_from(shares).context("the services' shares of instances are too many")?;
    match args.max_instances {
        None => Ok(shares),
        Some(instances) if instances >= shares => Ok(instances),
        Some(instances) => bail!(
            "--max-instances {instances} cannot hold the services' shares: {} service(s) \
             with {connections} connections in all (their max-connections){}{} + \
             {LOADING_INSTANCES} for loading = {shares}; lower max-connections or raise \
             --max-instances",
            services.len(),
            if args.accept_fleet_deploys {
                format!(
                    " + {fleet_deploys} for --max-fleet-deploys {}",
                    args.max_fleet_deploys
                )
            } else {
                String::new()
            },
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
