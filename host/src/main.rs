//! The `wasm-rpyc` command: parsing and wiring only.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasm_rpyc::connection::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_FRAME, DEFAULT_MAX_QUEUED_BYTES,
};
use wasm_rpyc::deploy::{
    DEFAULT_CACHE_BYTES, DEFAULT_MAX_COMPONENT_SIZE, DEFAULT_MAX_TOTAL_DEPLOYMENTS, DEPLOY_PORT,
    DEPLOY_SERVICE, DeployLimits, Deployer, default_concurrent_compiles,
};
use wasm_rpyc::registry::{
    BROADCAST, DEFAULT_PRUNING_TIMEOUT, REGISTRY_PORT, Registrar, Registry, Transport,
};
use wasm_rpyc::replace::{Loader, Replaceable, Watched, WatchedFile, keep_current};
use wasm_rpyc::server::{
    DEFAULT_EVICT_IDLE_AFTER, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_HANDSHAKES, DEFAULT_SHUTDOWN_GRACE,
};
use wasm_rpyc::wasm::{
    CompileCache, DEFAULT_CALL_CPU_BUDGET, DEFAULT_CALL_DEADLINE, DEFAULT_COMPILE_CACHE_BYTES,
    DEFAULT_MAX_MEMORY, DirGrant, Grants, default_total_memory, parse_env,
};
use wasm_rpyc::{
    Limits, Runtime, Server, ServerConfig, ServiceComponent, ServiceFactory, bundled, tls,
};

#[derive(Parser)]
#[command(version, about = "Serve WebAssembly components as RPyC services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

/// How the command logs (to stderr).
#[derive(Args)]
struct LogArgs {
    /// Log lines as text, or as JSON objects (one per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WASM_RPYC_LOG_FORMAT")]
    log_format: LogFormat,
    /// The least severe level logged (error, warn, info, debug, trace), or
    /// a filter as RUST_LOG takes it [default: RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL", env = "WASM_RPYC_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log errors only (whatever the level says).
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve components; with none, serve the bundled example services on
    /// their default ports.
    Serve(Box<Serve>),
    /// Run an RPyC registry (`rpyc_registry`'s options).
    Registry(RegistryArgs),
    /// Check that a service answers: print its name and exit 0, or say why
    /// not and exit 1 (for health checks and scripts).
    Ping(PingArgs),
}

#[derive(Args)]
struct PingArgs {
    /// Where the service is served.
    #[arg(value_name = "HOST:PORT")]
    address: String,
    /// Connect over TLS, trusting these CA certificates (PEM).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate must be valid for [default: the
    /// HOST of the address].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Present this certificate chain (PEM) to a server that verifies
    /// clients; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
}

#[derive(Args)]
struct RegistryArgs {
    /// The transport: UDP (broadcast discovery) or TCP.
    #[arg(short = 'm', long = "mode", value_enum, default_value_t = TransportArg::Udp, ignore_case = true)]
    mode: TransportArg,
    /// The port to listen on.
    #[arg(short, long, default_value_t = REGISTRY_PORT)]
    port: u16,
    /// Forget a registration not renewed for this many seconds.
    #[arg(short = 't', long = "timeout", value_name = "SECONDS", default_value_t = DEFAULT_PRUNING_TIMEOUT.as_secs())]
    pruning_timeout: u64,
    /// Let clients list every registered name (`-l`, or `-l true|false` as
    /// `rpyc_registry` takes it).
    #[arg(short = 'l', long = "listing", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    allow_listing: bool,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
}

/// A registry's transport, as the options name it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
}

impl From<TransportArg> for Transport {
    fn from(arg: TransportArg) -> Self {
        match arg {
            TransportArg::Udp => Transport::Udp,
            TransportArg::Tcp => Transport::Tcp,
        }
    }
}

#[derive(Args)]
struct Serve {
    /// Component files (`.wasm`), served on consecutive ports from `--port`
    /// (with `--port 0`, each on a free port of its own).
    components: Vec<PathBuf>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "WASM_RPYC_HOST")]
    host: IpAddr,
    /// The first port (the default is RPyC's first example port).
    #[arg(short, long, default_value_t = 18861, env = "WASM_RPYC_PORT")]
    port: u16,
    /// Replace the service's aliases (repeat for several; the first is its
    /// name). Only with a single component.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// Let the service see a host directory at a path of its own (HOST
    /// alone: at the same path); `:ro` allows reading only (repeat for
    /// several). Only with a single component: services see no files unless
    /// granted.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    dirs: Vec<DirGrant>,
    /// Give the service an environment variable (repeat for several). Only
    /// with a single component: services see no environment unless granted.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// CPU time one call may use, in seconds; past it the call fails with
    /// TimeoutError and the connection gets a fresh instance.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_CALL_CPU_BUDGET.as_secs_f64())]
    cpu_budget: f64,
    /// Wall-clock time one call may take, waiting included, in seconds;
    /// past it the call fails with TimeoutError and the instance is
    /// discarded.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_CALL_DEADLINE.as_secs_f64())]
    call_deadline: f64,
    /// Linear memory one memory of an instance may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_MEMORY >> 20)]
    max_memory: usize,
    /// Linear memory all guests together may use, in MiB (half the
    /// machine's memory by default); growth past it fails with MemoryError
    /// in the guest that asked.
    #[arg(long, value_name = "MIB", default_value_t = default_total_memory() >> 20)]
    max_total_memory: usize,
    /// Instances alive at once across all services (sizes the pooling
    /// allocator). By default the sum of the services' shares: each
    /// service's --max-connections, DEPLOY's --max-deployments.
    #[arg(long, value_name = "N")]
    max_instances: Option<u32>,
    /// Guests that run at once (calls that have run long take turns on one
    /// fewer); the machine's cores by default.
    #[arg(long, value_name = "N")]
    guest_cores: Option<usize>,
    /// Connections each service serves at once: its share of the instances.
    /// Past it, the connection idle longest makes room, or the client is
    /// refused with RuntimeError.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, env = "WASM_RPYC_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Connections one address may have open to one service (0: no cap).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
    /// Sockets that may be in their TLS handshake or yet to name their
    /// protocol at once, per service; past it the oldest gives way.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_HANDSHAKES)]
    max_handshakes: usize,
    /// How long a connection must have been idle, in seconds, to be closed
    /// to make room for a new client when every slot is taken.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_EVICT_IDLE_AFTER.as_secs())]
    evict_idle_after: u64,
    /// Bytes, in MiB, that one connection's requests waiting for the service
    /// may take, and as many its messages waiting for the socket; past it the
    /// host stops reading that connection until they drain.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_QUEUED_BYTES >> 20)]
    max_queued_bytes: usize,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "WASM_RPYC_TLS_CERT"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "WASM_RPYC_TLS_KEY"
    )]
    tls_key: Option<PathBuf>,
    /// Require client certificates that chain to these CA certificates (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "WASM_RPYC_TLS_CLIENT_CA"
    )]
    tls_client_ca: Option<PathBuf>,
    /// The largest frame a peer may send, or be sent, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_FRAME >> 20)]
    max_frame: usize,
    /// How long the host waits for a peer to answer a call the service
    /// makes to it (a callback), in seconds; past it the call fails with
    /// TimeoutError in the service.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_CALL_TIMEOUT.as_secs_f64())]
    call_timeout: f64,
    /// At shutdown, how long open connections may take to finish their
    /// current call and run on-disconnect, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SHUTDOWN_GRACE.as_secs_f64())]
    shutdown_grace: f64,
    /// Close a connection idle this long, in seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs())]
    idle_timeout: u64,
    /// Register every service under all its aliases with a registry, renew
    /// every 60 s, unregister at shutdown.
    #[arg(long)]
    register: bool,
    /// The registry's transport.
    #[arg(long, value_enum, default_value_t = TransportArg::Udp, ignore_case = true)]
    registry_type: TransportArg,
    /// The registry's address (UDP: the broadcast address by default; TCP:
    /// required).
    #[arg(long)]
    registry_host: Option<IpAddr>,
    /// The registry's port.
    #[arg(long, default_value_t = REGISTRY_PORT)]
    registry_port: u16,
    /// Also serve the DEPLOY service, to which peers hand components to run
    /// in the sandbox (`conn.root.deploy(data)`), on --deploy-port.
    #[arg(long)]
    allow_deploy: bool,
    /// The DEPLOY service's port (RPyC classic's; 0: a free port).
    #[arg(long, default_value_t = DEPLOY_PORT, requires = "allow_deploy")]
    deploy_port: u16,
    /// The largest component a peer may deploy, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_COMPONENT_SIZE >> 20, requires = "allow_deploy")]
    max_deploy_size: usize,
    /// Deployed services the host runs at once, from all peers: DEPLOY's
    /// share of the instances.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOTAL_DEPLOYMENTS)]
    max_deployments: usize,
    /// Deployed components compiled at once (a few more wait their turn;
    /// past that, deploys are refused until one finishes).
    #[arg(long, value_name = "N", default_value_t = default_concurrent_compiles())]
    concurrent_compiles: usize,
    /// Compiled code the cache of deployed components keeps, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_CACHE_BYTES >> 20)]
    deploy_cache: usize,
    /// Where compiled components are kept, so that a restart, or a reload
    /// of an unchanged component, does not compile it again [default: the
    /// user's cache directory, ~/.cache/wasm-rpyc on Linux].
    #[arg(long, value_name = "DIR", env = "WASM_RPYC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component anew and keep nothing on disk.
    #[arg(long)]
    no_cache: bool,
    /// Compiled code the compile cache keeps on disk, in MiB; past it the
    /// entries used least recently are deleted.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_COMPILE_CACHE_BYTES >> 20)]
    cache_size: u64,
    /// Replace a served component when its file changes (checked every
    /// second): new connections get the new version, open ones keep theirs.
    /// SIGHUP replaces every component from its file at once.
    #[arg(long)]
    watch: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(&cli.log)?;
    let args = match cli.command {
        Command::Serve(args) => *args,
        Command::Registry(args) => return tokio::runtime::Runtime::new()?.block_on(registry(args)),
        Command::Ping(args) => return tokio::runtime::Runtime::new()?.block_on(ping(args)),
    };
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
    if !(args.cpu_budget.is_finite() && args.cpu_budget > 0.0) {
        bail!("--cpu-budget must be a positive number of seconds");
    }
    for (flag, seconds) in [
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
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

/// The largest `--max-frame`: frame lengths are 32-bit on the wire.
const MAX_FRAME_MIB: usize = 4095;

/// Logs to stderr as `log` says: colour only on a terminal, and never with
/// `NO_COLOR` set.
fn init_logs(log: &LogArgs) -> Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match (&log.log_level, log.quiet) {
        (_, true) => EnvFilter::new("error"),
        (Some(level), false) => {
            EnvFilter::try_new(level).with_context(|| format!("--log-level {level:?}"))?
        }
        (None, false) => EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color);
    match log.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}

/// `wasm-rpyc ping`: connects, asks the service its name and prints it.
async fn ping(args: PingArgs) -> Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let limit = Duration::from_secs_f64(args.timeout);
    let address = args.address.as_str();
    let asking = async {
        let connection = match &args.tls_ca {
            Some(ca) => {
                let identity = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
                let tls = tls::client_config(ca, identity)?;
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let name = args.tls_server_name.as_deref().unwrap_or(host);
                let name = name.trim_start_matches('[').trim_end_matches(']');
                wasm_rpyc::connect_tls(address, name, tls).await?
            }
            None => wasm_rpyc::connect(address).await?,
        };
        let name: String = connection.root().call("get_service_name", ()).await?;
        connection.close().await;
        anyhow::Ok(name)
    };
    let name = tokio::time::timeout(limit, asking)
        .await
        .map_err(|_| anyhow::anyhow!("{address} did not answer within {limit:?}"))?
        .with_context(|| format!("{address} did not answer"))?;
    println!("{name}");
    Ok(())
}

async fn registry(args: RegistryArgs) -> Result<()> {
    let shutdown = shutdown_signal()?;
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

async fn serve(args: Serve) -> Result<()> {
    // Listen for signals before anything slow, so an early one is not lost.
    let shutdown = shutdown_signal()?;
    let hangups = Hangups::listen()?;
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
    tasks.push(tokio::spawn(forward_hangups(hangups, reload, stop.clone())));
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

/// Turns every SIGHUP into a reload, until `stop`.
async fn forward_hangups(mut hangups: Hangups, reload: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = hangups.next() => reload.notify_one(),
        }
    }
}

/// The process's hangups (SIGHUP), listened for from its creation; none
/// where the system has no such signal (Windows: `--watch` still reloads).
struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    fn listen() -> Result<Self> {
        Ok(Hangups {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
        })
    }

    /// Completes at the next hangup.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

/// Registers for Ctrl-C (SIGINT) and SIGTERM now; the future completes on
/// the first of them.
#[cfg(unix)]
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

/// Registers for Ctrl-C and for the console closing now; the future
/// completes on the first of them.
#[cfg(windows)]
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::windows::{ctrl_c, ctrl_close};
    let mut interrupt = ctrl_c()?;
    let mut close = ctrl_close()?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = close.recv() => {}
        }
    })
}
