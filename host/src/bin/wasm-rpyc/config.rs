//! `serve --config FILE`: the services one process serves, each with its
//! own port, aliases, grants, limits and TLS, and the host's settings
//! beside them, in a TOML file. Keys are the flags' names; what the file
//! says wins, and the flags give the rest. Paths are relative to the file.
//! A file with a mistake is refused, naming the line, before anything
//! starts.
//!
//! ```toml
//! host = "0.0.0.0"
//! metrics = "127.0.0.1:9464"
//!
//! [deploy]
//! port = 18812
//!
//! [[service]]
//! component = "calculator.wasm"
//! port = 18861
//! max-connections = 100
//!
//! [[service]]
//! classic = true            # RPyC's classic mode, sandboxed
//! port = 18812
//! dirs = ["scratch::/scratch"]
//!
//! [[service]]
//! component = "files.wasm"
//! port = 18862
//! aliases = ["FILES"]
//! dirs = ["data::/data:ro"]
//! env = { GREETING = "hello" }
//! cpu-budget = 2
//! tls = { cert = "server.pem", key = "server.key" }
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;
use wasm_rpyc::wasm::{DirGrant, Grants};

use crate::args::{Serve, ServiceFlags, TransportArg};
use crate::plan::{ServicePlan, Source};
use crate::units::{FrameMib, PositiveSeconds, Seconds};

/// The largest config file read: a file of thousands of services is far
/// smaller.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The services `file` declares; the host's settings it names are set in
/// `args`.
pub(crate) fn read(file: &Path, args: &mut Serve) -> Result<Vec<ServicePlan>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?
        .len();
    if size > MAX_CONFIG_BYTES {
        bail!(
            "{}: the config file is {size} bytes; at most {MAX_CONFIG_BYTES} are read",
            file.display()
        );
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    let config: Config =
        toml::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
    let at = Located {
        text: &text,
        directory: file.parent().unwrap_or(Path::new("")),
    };
    config.apply(args, &at);
    if config.service.is_empty() && config.deploy.is_none() {
        bail!(
            "{}: the config file declares no [[service]] (and no [deploy])",
            file.display()
        );
    }
    config
        .service
        .into_iter()
        .map(|table| {
            let origin = format!("{}:{}", file.display(), at.line(table.span().start));
            table
                .into_inner()
                .plan(
                    &args.service,
                    &at,
                    origin.clone(),
                    args.cache_dir.as_deref(),
                )
                .map_err(|error| anyhow::anyhow!("{origin}: [[service]]: {error:#}"))
        })
        .collect()
}

/// Where the file is, to resolve its paths and name its lines.
struct Located<'a> {
    text: &'a str,
    directory: &'a Path,
}

impl Located<'_> {
    /// `path` as the file means it: relative to its directory.
    fn path(&self, path: &Path) -> PathBuf {
        self.directory.join(path)
    }

    /// The line (from 1) of the byte at `offset`.
    fn line(&self, offset: usize) -> usize {
        let before = self.text.get(..offset).unwrap_or(self.text);
        before.matches('\n').count() + 1
    }
}

/// The file: the host's settings, DEPLOY's, and the services.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    host: Option<IpAddr>,
    metrics: Option<SocketAddr>,
    max_total_memory: Option<usize>,
    max_instances: Option<u32>,
    guest_cores: Option<usize>,
    cache_dir: Option<PathBuf>,
    no_cache: Option<bool>,
    cache_size: Option<u64>,
    watch: Option<bool>,
    register: Option<bool>,
    registry_type: Option<TransportArg>,
    registry_host: Option<IpAddr>,
    registry_port: Option<u16>,
    deploy: Option<DeployTable>,
    #[serde(default)]
    service: Vec<Spanned<ServiceTable>>,
}

/// `[deploy]`: serve the DEPLOY service, with these settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DeployTable {
    port: Option<u16>,
    max_deploy_size: Option<usize>,
    max_deployments: Option<usize>,
    concurrent_compiles: Option<usize>,
    deploy_cache: Option<usize>,
}

/// One `[[service]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServiceTable {
    component: Option<PathBuf>,
    /// Classic mode (`wasm-rpyc classic`) instead of a component.
    #[serde(default)]
    classic: bool,
    port: u16,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    tls: Option<TlsTable>,
    cpu_budget: Option<PositiveSeconds>,
    call_deadline: Option<PositiveSeconds>,
    max_memory: Option<usize>,
    shared: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_handshakes: Option<usize>,
    evict_idle_after: Option<u64>,
    max_queued_bytes: Option<usize>,
    max_frame: Option<FrameMib>,
    call_timeout: Option<PositiveSeconds>,
    shutdown_grace: Option<Seconds>,
    idle_timeout: Option<u64>,
}

/// A service's `tls`: its certificate chain and key, and the CA its
/// clients' certificates must chain to, if any.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TlsTable {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// Sets each of `fields` the table names.
macro_rules! set_named {
    ($target:expr, $table:expr, $($field:ident),+ $(,)?) => {
        $(if let Some(value) = $table.$field {
            $target.$field = value;
        })+
    };
}

impl Config {
    /// Sets the host's settings the file names in `args`.
    fn apply(&self, args: &mut Serve, at: &Located<'_>) {
        if let Some(host) = self.host {
            args.host = host;
        }
        if self.metrics.is_some() {
            args.metrics = self.metrics;
        }
        if self.max_instances.is_some() {
            args.max_instances = self.max_instances;
        }
        if self.guest_cores.is_some() {
            args.guest_cores = self.guest_cores;
        }
        if let Some(directory) = &self.cache_dir {
            args.cache_dir = Some(at.path(directory));
        }
        if let Some(host) = self.registry_host {
            args.registry_host = Some(host);
        }
        set_named!(
            args,
            self,
            max_total_memory,
            no_cache,
            cache_size,
            watch,
            register,
            registry_type,
            registry_port,
        );
        if let Some(deploy) = &self.deploy {
            args.allow_deploy = true;
            if let Some(port) = deploy.port {
                args.deploy_port = port;
            }
            set_named!(
                args,
                deploy,
                max_deploy_size,
                max_deployments,
                concurrent_compiles,
                deploy_cache,
            );
        }
    }
}

impl ServiceTable {
    /// The service (declared at `origin`), its unnamed settings taken from
    /// `defaults`; classic mode's module is kept in `cache_dir`'s builds.
    fn plan(
        self,
        defaults: &ServiceFlags,
        at: &Located<'_>,
        origin: String,
        cache_dir: Option<&Path>,
    ) -> Result<ServicePlan> {
        let component = match (&self.component, self.classic) {
            (Some(component), false) => at.path(component),
            (None, true) => crate::builder::classic_module(cache_dir)?,
            (Some(_), true) => bail!("a component or `classic = true`, not both"),
            (None, false) => bail!("missing `component` (or `classic = true`)"),
        };
        if !component.is_file() {
            bail!("component: no file {}", component.display());
        }
        let mut grants = Grants::default();
        for dir in &self.dirs {
            let mut grant: DirGrant = dir.parse().context("dirs")?;
            grant.host = at.path(&grant.host);
            grants = grants.dir(grant).context("dirs")?;
        }
        for (key, value) in &self.env {
            grants = grants.env(key, value);
        }
        let mut flags = defaults.clone();
        if let Some(tls) = &self.tls {
            flags.tls_cert = Some(at.path(&tls.cert));
            flags.tls_key = Some(at.path(&tls.key));
            flags.tls_client_ca = tls.client_ca.as_deref().map(|ca| at.path(ca));
        }
        set_named!(
            flags,
            self,
            cpu_budget,
            call_deadline,
            max_memory,
            shared,
            max_connections,
            max_connections_per_ip,
            max_handshakes,
            evict_idle_after,
            max_queued_bytes,
            max_frame,
            call_timeout,
            shutdown_grace,
            idle_timeout,
        );
        Ok(ServicePlan {
            source: Source::File(component),
            port: self.port,
            aliases: self.aliases,
            grants,
            flags,
            origin,
        })
    }
}
