//! The command's flags, as clap reads them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::units::{FrameMib, PositiveSeconds, Seconds};
use wasm_rpyc::cluster::{
    ClusterConfig, Credentials, DEFAULT_CLUSTER_NAME, DEFAULT_HEARTBEAT, DEFAULT_MAX_FLEET_DEPLOYS,
    DEFAULT_TTL,
};
use wasm_rpyc::connection::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_FRAME, DEFAULT_MAX_QUEUED_BYTES,
};
use wasm_rpyc::deploy::{
    DEFAULT_CACHE_BYTES, DEFAULT_MAX_COMPONENT_SIZE, DEFAULT_MAX_TOTAL_DEPLOYMENTS, DEPLOY_PORT,
    default_concurrent_compiles,
};
use wasm_rpyc::registry::{DEFAULT_PRUNING_TIMEOUT, REGISTRY_PORT, Transport};
use wasm_rpyc::server::{
    DEFAULT_EVICT_IDLE_AFTER, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_HANDSHAKES, DEFAULT_SHUTDOWN_GRACE,
};
use wasm_rpyc::wasm::{
    DEFAULT_CALL_CPU_BUDGET, DEFAULT_CALL_DEADLINE, DEFAULT_COMPILE_CACHE_BYTES,
    DEFAULT_MAX_MEMORY, DirGrant, default_total_memory, parse_env,
};

#[derive(Parser)]
#[command(version, about = "Serve WebAssembly components as RPyC services")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// How the command logs (to stderr).
#[derive(Args)]
pub(crate) struct LogArgs {
    /// Log lines as text, or as JSON objects (one per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WASM_RPYC_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    /// The least severe level logged (error, warn, info, debug, trace), or
    /// a filter as RUST_LOG takes it [default: RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL", env = "WASM_RPYC_LOG_LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Log errors only (whatever the level says).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Append log lines to this file instead of writing them to stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) logfile: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve components; with none, serve the bundled example services on
    /// their default ports.
    Serve(Box<Serve>),
    /// Serve RPyC's classic mode (`rpyc_classic`'s SlaveService) on port
    /// 18812: each connection runs any Python it likes in an interpreter of
    /// its own, inside the sandbox (no processes, no network, files only
    /// under --dir, the budgets per call). `serve`'s flags apply; components
    /// named are served beside it, on the ports after its.
    Classic(Box<Serve>),
    /// Run an RPyC registry (`rpyc_registry`'s options).
    Registry(RegistryArgs),
    /// Build a service's source into a component: a Python module whose
    /// `rpyc.Service` class is the service, a JavaScript module that exports
    /// a class with `exposed_` members (no WIT needed), or a Rust crate's
    /// directory (cargo, for wasm32-wasip2).
    Build(BuildArgs),
    /// Check that a service answers: print its name and exit 0, or say why
    /// not and exit 1 (for health checks and scripts).
    Ping(PingArgs),
    /// Deploy a component to every host of a fleet that accepts fleet
    /// deploys; print each host's outcome (exit 1 if any failed).
    Deploy(FleetDeployArgs),
    /// Stop serving a fleet deployment on every host.
    Undeploy(FleetNameArgs),
    /// Serve a fleet deployment's previous revision again.
    Rollback(FleetNameArgs),
    /// Print the fleet's hosts, their services and their deployments.
    Status(StatusArgs),
}

#[derive(Args)]
pub(crate) struct FleetDeployArgs {
    /// The component (`.wasm`); it must load here first.
    pub(crate) component: PathBuf,
    /// The name it is deployed under, and its service's default name
    /// [default: the file's stem].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The port the hosts serve it on (0: each a free one of its own).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

#[derive(Args)]
pub(crate) struct FleetNameArgs {
    /// The deployment's name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

#[derive(Args)]
pub(crate) struct WaitArgs {
    /// How long to wait for every host's outcome, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(std::time::Duration::from_secs(60)))]
    pub(crate) wait: PositiveSeconds,
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

#[derive(Args)]
pub(crate) struct BuildArgs {
    /// The service's source: a Python or JavaScript module
    /// (`calculator.py`, `calculator.js`) or a Rust crate's directory.
    pub(crate) source: PathBuf,
    /// The component to write [default: the module's stem or the crate's
    /// directory name, `.wasm`].
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The service class, when the module defines several.
    #[arg(long, value_name = "NAME")]
    pub(crate) service: Option<String>,
}

#[derive(Args)]
pub(crate) struct PingArgs {
    /// Where the service is served.
    #[arg(value_name = "HOST:PORT")]
    pub(crate) address: String,
    /// Connect over TLS, trusting these CA certificates (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// The name the server's certificate must be valid for [default: the
    /// HOST of the address].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub(crate) tls_server_name: Option<String>,
    /// Present this certificate chain (PEM) to a server that verifies
    /// clients; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "tls_ca")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(std::time::Duration::from_secs(5)))]
    pub(crate) timeout: PositiveSeconds,
}

#[derive(Args)]
pub(crate) struct RegistryArgs {
    /// The transport: UDP (broadcast discovery) or TCP.
    #[arg(short = 'm', long = "mode", value_enum, default_value_t = TransportArg::Udp, ignore_case = true)]
    pub(crate) mode: TransportArg,
    /// The port to listen on.
    #[arg(short, long, default_value_t = REGISTRY_PORT)]
    pub(crate) port: u16,
    /// Forget a registration not renewed for this many seconds.
    #[arg(short = 't', long = "timeout", value_name = "SECONDS", default_value_t = DEFAULT_PRUNING_TIMEOUT.as_secs())]
    pub(crate) pruning_timeout: u64,
    /// Let clients list every registered name (`-l`, or `-l true|false` as
    /// `rpyc_registry` takes it).
    #[arg(short = 'l', long = "listing", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub(crate) allow_listing: bool,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub(crate) host: IpAddr,
    /// Answer from a fleet's view instead of keeping registrations here:
    /// see the cluster flags.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// A registry's transport, as the options (and a config file, in either
/// case) name it.
#[derive(Clone, Copy, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportArg {
    #[serde(alias = "UDP")]
    Udp,
    #[serde(alias = "TCP")]
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
pub(crate) struct Serve {
    /// Component files (`.wasm`), served on consecutive ports from `--port`
    /// (with `--port 0`, each on a free port of its own); a Python or
    /// JavaScript module (`.py`, `.js`) is built first (as `wasm-rpyc build`
    /// does, cached).
    pub(crate) components: Vec<PathBuf>,
    /// Serve the services a TOML file declares, each with its own port,
    /// aliases, grants, limits and TLS; what the file does not say, the
    /// flags give.
    #[arg(long, value_name = "FILE", env = "WASM_RPYC_CONFIG", conflicts_with_all = ["components", "aliases", "dirs", "env"])]
    pub(crate) config: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "WASM_RPYC_HOST")]
    pub(crate) host: IpAddr,
    /// The first port [default: RPyC's first example port, 18861; classic
    /// mode's, 18812, with `classic`].
    #[arg(short, long, env = "WASM_RPYC_PORT")]
    pub(crate) port: Option<u16>,
    /// Serve RPyC's classic mode on the first port, before the components
    /// named (as `wasm-rpyc classic` does).
    #[arg(long)]
    pub(crate) classic: bool,
    /// Replace the service's aliases (repeat for several; the first is its
    /// name). Only with a single component.
    #[arg(long = "alias")]
    pub(crate) aliases: Vec<String>,
    /// Let the service see a host directory at a path of its own (HOST
    /// alone: at the same path); `:ro` allows reading only (repeat for
    /// several). Only with a single component: services see no files unless
    /// granted.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    pub(crate) dirs: Vec<DirGrant>,
    /// Give the service an environment variable (repeat for several). Only
    /// with a single component: services see no environment unless granted.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub(crate) env: Vec<(String, String)>,
    /// Linear memory all guests together may use, in MiB (half the
    /// machine's memory by default); growth past it fails with MemoryError
    /// in the guest that asked.
    #[arg(long, value_name = "MIB", default_value_t = default_total_memory() >> 20)]
    pub(crate) max_total_memory: usize,
    /// Instances alive at once across all services (sizes the pooling
    /// allocator). By default the sum of the services' shares: each
    /// service's --max-connections, DEPLOY's --max-deployments.
    #[arg(long, value_name = "N")]
    pub(crate) max_instances: Option<u32>,
    /// Guests that run at once (calls that have run long take turns on one
    /// fewer); the machine's cores by default.
    #[arg(long, value_name = "N")]
    pub(crate) guest_cores: Option<usize>,
    /// Each service's limits and TLS (a config file's services may set
    /// their own).
    #[command(flatten)]
    pub(crate) service: ServiceFlags,
    /// Register every service under all its aliases with a registry, renew
    /// every 60 s, unregister at shutdown.
    #[arg(long)]
    pub(crate) register: bool,
    /// The registry's transport.
    #[arg(long, value_enum, default_value_t = TransportArg::Udp, ignore_case = true)]
    pub(crate) registry_type: TransportArg,
    /// The registry's address (UDP: the broadcast address by default; TCP:
    /// required).
    #[arg(long)]
    pub(crate) registry_host: Option<IpAddr>,
    /// The registry's port.
    #[arg(long, default_value_t = REGISTRY_PORT)]
    pub(crate) registry_port: u16,
    /// Also serve the DEPLOY service, to which peers hand components to run
    /// in the sandbox (`conn.root.deploy(data)`), on --deploy-port.
    #[arg(long)]
    pub(crate) allow_deploy: bool,
    /// The DEPLOY service's port (RPyC classic's; 0: a free port).
    #[arg(long, default_value_t = DEPLOY_PORT, requires = "allow_deploy")]
    pub(crate) deploy_port: u16,
    /// The largest component a peer may deploy (DEPLOY), or the fleet may
    /// hand this host (--accept-fleet-deploys), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_COMPONENT_SIZE >> 20)]
    pub(crate) max_deploy_size: usize,
    /// Deployed services the host runs at once, from all peers: DEPLOY's
    /// share of the instances.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOTAL_DEPLOYMENTS)]
    pub(crate) max_deployments: usize,
    /// Deployed components compiled at once (a few more wait their turn;
    /// past that, deploys are refused until one finishes).
    #[arg(long, value_name = "N", default_value_t = default_concurrent_compiles())]
    pub(crate) concurrent_compiles: usize,
    /// Compiled code the cache of deployed components keeps, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_CACHE_BYTES >> 20)]
    pub(crate) deploy_cache: usize,
    /// Where compiled components are kept, so that a restart, or a reload
    /// of an unchanged component, does not compile it again [default: the
    /// user's cache directory, ~/.cache/wasm-rpyc on Linux].
    #[arg(long, value_name = "DIR", env = "WASM_RPYC_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Compile every component anew and keep nothing on disk.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Compiled code the compile cache keeps on disk, in MiB; past it the
    /// entries used least recently are deleted.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_COMPILE_CACHE_BYTES >> 20)]
    pub(crate) cache_size: u64,
    /// Serve the host's metrics for Prometheus at http://ADDR/metrics
    /// (connections, calls, traps, instances, compiles, deployments).
    #[arg(long, value_name = "ADDR", env = "WASM_RPYC_METRICS")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Join a fleet: see the cluster flags.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Serve the components deployed to the fleet (`wasm-rpyc deploy
    /// --cluster`), each on its port, with no grants. With no component
    /// named, nothing else is served.
    #[arg(long, requires = "cluster")]
    pub(crate) accept_fleet_deploys: bool,
    /// Fleet deployments served at once (each a share of the instances,
    /// as a service).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_FLEET_DEPLOYS, requires = "accept_fleet_deploys")]
    pub(crate) max_fleet_deploys: usize,
    /// The address the fleet reaches this host's services at [default: a
    /// specific --host, else the address NATS sees this host connect from].
    #[arg(long, value_name = "IP", requires = "cluster")]
    pub(crate) advertise: Option<IpAddr>,
    /// Replace a served component when its file changes (checked every
    /// second): new connections get the new version, open ones keep theirs.
    /// SIGHUP replaces every component from its file at once.
    #[arg(long)]
    pub(crate) watch: bool,
}

/// RPyC's first example port: `serve`'s first port.
const FIRST_EXAMPLE_PORT: u16 = 18861;

/// RPyC's classic port: `classic`'s.
const CLASSIC_PORT: u16 = 18812;

impl Serve {
    /// The first port services are served on.
    pub(crate) fn first_port(&self) -> u16 {
        match (self.port, self.classic) {
            (Some(port), _) => port,
            (None, true) => CLASSIC_PORT,
            (None, false) => FIRST_EXAMPLE_PORT,
        }
    }
}

/// The flags that bound each service, and its TLS: for every component named
/// on the command line, and the defaults of a config file's services.
#[derive(Args, Clone)]
pub(crate) struct ServiceFlags {
    /// CPU time one call may use, in seconds; past it the call fails with
    /// TimeoutError and the connection gets a fresh instance.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(DEFAULT_CALL_CPU_BUDGET))]
    pub(crate) cpu_budget: PositiveSeconds,
    /// Wall-clock time one call may take, waiting included, in seconds;
    /// past it the call fails with TimeoutError and the instance is
    /// discarded.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(DEFAULT_CALL_DEADLINE))]
    pub(crate) call_deadline: PositiveSeconds,
    /// Linear memory one memory of an instance may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_MEMORY >> 20)]
    pub(crate) max_memory: usize,
    /// Serve every connection from one instance, as RPyC's services share
    /// one process (module-level state, callbacks to any connected peer);
    /// calls take turns. By default each connection gets its own.
    #[arg(long)]
    pub(crate) shared: bool,
    /// Connections each service serves at once: its share of the instances.
    /// Past it, the connection idle longest makes room, or the client is
    /// refused with RuntimeError.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, env = "WASM_RPYC_MAX_CONNECTIONS")]
    pub(crate) max_connections: usize,
    /// Connections one address may have open to one service (0: no cap).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub(crate) max_connections_per_ip: usize,
    /// Sockets that may be in their TLS handshake or yet to name their
    /// protocol at once, per service; past it the oldest gives way.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_HANDSHAKES)]
    pub(crate) max_handshakes: usize,
    /// How long a connection must have been idle, in seconds, to be closed
    /// to make room for a new client when every slot is taken.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_EVICT_IDLE_AFTER.as_secs())]
    pub(crate) evict_idle_after: u64,
    /// Bytes, in MiB, that one connection's requests waiting for the service
    /// may take, and as many its messages waiting for the socket; past it the
    /// host stops reading that connection until they drain.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_QUEUED_BYTES >> 20)]
    pub(crate) max_queued_bytes: usize,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "WASM_RPYC_TLS_CERT",
        alias = "ssl-certfile"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "WASM_RPYC_TLS_KEY",
        alias = "ssl-keyfile"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    /// Require client certificates that chain to these CA certificates (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "WASM_RPYC_TLS_CLIENT_CA",
        alias = "ssl-cafile"
    )]
    pub(crate) tls_client_ca: Option<PathBuf>,
    /// The largest frame a peer may send, or be sent, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = FrameMib::of_bytes(DEFAULT_MAX_FRAME))]
    pub(crate) max_frame: FrameMib,
    /// How long the host waits for a peer to answer a call the service
    /// makes to it (a callback), in seconds; past it the call fails with
    /// TimeoutError in the service.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(DEFAULT_CALL_TIMEOUT))]
    pub(crate) call_timeout: PositiveSeconds,
    /// At shutdown, how long open connections may take to finish their
    /// current call and run on-disconnect, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(DEFAULT_SHUTDOWN_GRACE))]
    pub(crate) shutdown_grace: Seconds,
    /// Close a connection idle this long, in seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub(crate) idle_timeout: u64,
}

/// Joining a fleet on NATS JetStream (`serve`), or answering from one
/// (`registry`).
#[derive(Args, Clone)]
pub(crate) struct ClusterArgs {
    /// Join the fleet on this NATS server (`nats://HOST:PORT`; several,
    /// comma-separated).
    #[arg(long, value_name = "URL", env = "WASM_RPYC_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The fleet's name: hosts and registries of one name see each other.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CLUSTER_NAME, requires = "cluster")]
    pub(crate) cluster_name: String,
    /// How often a host renews its record in the fleet, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(DEFAULT_HEARTBEAT), requires = "cluster")]
    pub(crate) heartbeat: PositiveSeconds,
    /// How long after its last heartbeat a host counts as gone (and how long
    /// a registry cut off from NATS keeps answering), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = PositiveSeconds::of(DEFAULT_TTL), requires = "cluster")]
    pub(crate) cluster_ttl: PositiveSeconds,
    /// Log in to NATS as this user (with --cluster-password).
    #[arg(
        long,
        value_name = "USER",
        requires = "cluster_password",
        env = "WASM_RPYC_CLUSTER_USER"
    )]
    pub(crate) cluster_user: Option<String>,
    /// The password of --cluster-user.
    #[arg(
        long,
        value_name = "PASSWORD",
        requires = "cluster_user",
        env = "WASM_RPYC_CLUSTER_PASSWORD"
    )]
    pub(crate) cluster_password: Option<String>,
    /// Log in to NATS with this token.
    #[arg(
        long,
        value_name = "TOKEN",
        conflicts_with = "cluster_user",
        env = "WASM_RPYC_CLUSTER_TOKEN"
    )]
    pub(crate) cluster_token: Option<String>,
    /// Log in to NATS with this credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cluster_user", "cluster_token"])]
    pub(crate) cluster_creds: Option<PathBuf>,
    /// Reach NATS over TLS, trusting these CA certificates (PEM).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub(crate) cluster_tls_ca: Option<PathBuf>,
    /// Present this certificate chain (PEM) to NATS; needs --cluster-tls-key.
    #[arg(long, value_name = "FILE", requires = "cluster_tls_key")]
    pub(crate) cluster_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --cluster-tls-cert.
    #[arg(long, value_name = "FILE", requires = "cluster_tls_cert")]
    pub(crate) cluster_tls_key: Option<PathBuf>,
}

impl ClusterArgs {
    /// The fleet to join, if any.
    pub(crate) fn config(&self) -> Option<ClusterConfig> {
        let url = self.cluster.as_ref()?;
        let mut config = ClusterConfig::new(url, &self.cluster_name);
        config.heartbeat = self.heartbeat.duration();
        config.ttl = self.cluster_ttl.duration();
        config.credentials = match (&self.cluster_user, &self.cluster_password) {
            (Some(user), Some(password)) => {
                Credentials::UserPassword(user.clone(), password.clone())
            }
            _ => match (&self.cluster_token, &self.cluster_creds) {
                (Some(token), _) => Credentials::Token(token.clone()),
                (None, Some(file)) => Credentials::File(file.clone()),
                (None, None) => Credentials::None,
            },
        };
        config.tls_ca = self.cluster_tls_ca.clone();
        config.tls_client = self
            .cluster_tls_cert
            .clone()
            .zip(self.cluster_tls_key.clone());
        Some(config)
    }
}
