//! What `serve` serves: the services named on the command line, declared
//! in a config file (see `config`), or the bundled examples; checked to go
//! together before anything starts.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wasm_rpyc::bundled;
use wasm_rpyc::wasm::Grants;

use crate::args::{Serve, ServiceFlags, TransportArg};
use crate::config;

/// The host's settings and its services.
pub(crate) struct Plan {
    /// The host's settings (a config file's set in them).
    pub(crate) args: Serve,
    pub(crate) services: Vec<ServicePlan>,
}

/// One service: its component, where it listens, its names, grants and
/// bounds.
pub(crate) struct ServicePlan {
    pub(crate) source: Source,
    /// Port 0 asks the system for a free one.
    pub(crate) port: u16,
    /// Its names (none: the component's own).
    pub(crate) aliases: Vec<String>,
    pub(crate) grants: Grants,
    pub(crate) flags: ServiceFlags,
    /// Where it was declared, for messages.
    pub(crate) origin: String,
}

/// Where a service's component comes from.
pub(crate) enum Source {
    /// A file, reloaded on SIGHUP and `--watch`.
    File(PathBuf),
    /// A Python or JavaScript module, built into the component file `built`;
    /// built again and reloaded on SIGHUP and when it changes (`--watch`).
    Module { module: PathBuf, built: PathBuf },
    /// A bundled example: its name and bytes.
    Bundled(&'static str, &'static [u8]),
}

/// The plan `args` ask for.
pub(crate) fn plan(mut args: Serve) -> Result<Plan> {
    let mut services = match args.config.take() {
        Some(file) => config::read(&file, &mut args)?,
        None => from_flags(&args)?,
    };
    check(&args, &services)?;
    for service in &mut services {
        if let Source::File(file) = &service.source
            && crate::builder::is_source(file)
        {
            let built = crate::builder::cached(file, None, args.cache_dir.as_deref())?;
            let module = file.clone();
            service.source = Source::Module { module, built };
        }
    }
    Ok(Plan { args, services })
}

/// The services the command line names: classic mode and its components
/// on consecutive ports, or the bundled examples on theirs.
fn from_flags(args: &Serve) -> Result<Vec<ServicePlan>> {
    let classic = match args.classic {
        true => Some(crate::builder::classic_module(args.cache_dir.as_deref())?),
        false => None,
    };
    let files: Vec<&PathBuf> = classic.iter().chain(&args.components).collect();
    let single = files.len() == 1;
    if !single && !args.aliases.is_empty() {
        bail!("--alias needs exactly one component");
    }
    let granted = !(args.dirs.is_empty() && args.env.is_empty());
    if granted && !single {
        bail!("--dir and --env grant one service: name exactly one component");
    }
    if files.is_empty() {
        // A host of fleet deploys serves what the fleet deploys, if nothing else.
        if args.accept_fleet_deploys {
            return Ok(Vec::new());
        }
        if bundled::EXAMPLES.is_empty() && !args.allow_deploy {
            bail!(
                "this build has no bundled services (the `bundled` feature is off): name a component"
            );
        }
        let examples = bundled::EXAMPLES
            .iter()
            .map(|&(name, port, bytes)| ServicePlan {
                source: Source::Bundled(name, bytes),
                port,
                aliases: Vec::new(),
                grants: Grants::default(),
                flags: args.service.clone(),
                origin: format!("the bundled {name}"),
            });
        return Ok(examples.collect());
    }
    let mut grants = Grants::default();
    for dir in &args.dirs {
        grants = grants.dir(dir.clone())?;
    }
    for (key, value) in &args.env {
        grants = grants.env(key, value);
    }
    let mut services = Vec::new();
    for (index, file) in files.into_iter().enumerate() {
        let origin = match Some(file) == classic.as_ref() {
            true => "classic mode".to_owned(),
            false => file.display().to_string(),
        };
        // Port 0 asks the system for a free port: for each component, not
        // for the first only (1, 2, ... are real ports).
        let port = match args.first_port() {
            0 => 0,
            first => u16::try_from(index)
                .ok()
                .and_then(|index| first.checked_add(index))
                .with_context(|| format!("no port after {first} for {origin}"))?,
        };
        services.push(ServicePlan {
            source: Source::File(file.clone()),
            port,
            aliases: args.aliases.clone(),
            grants: grants.clone(),
            flags: args.service.clone(),
            origin,
        });
    }
    Ok(services)
}

/// Refuses settings that do not go together.
fn check(args: &Serve, services: &[ServicePlan]) -> Result<()> {
    if args.register
        && matches!(args.registry_type, TransportArg::Tcp)
        && args.registry_host.is_none()
    {
        bail!("--registry-type TCP needs --registry-host");
    }
    let files = services
        .iter()
        .any(|service| matches!(service.source, Source::File(_)));
    if args.watch && !files {
        bail!("--watch replaces components from their files: name at least one");
    }
    let mut ports: HashMap<u16, &str> = HashMap::new();
    let deploy = args
        .allow_deploy
        .then_some((args.deploy_port, "the DEPLOY service"));
    let listeners = services
        .iter()
        .map(|service| (service.port, service.origin.as_str()))
        .chain(deploy);
    for (port, origin) in listeners.filter(|(port, _)| *port != 0) {
        if let Some(other) = ports.insert(port, origin) {
            bail!("{origin}: port {port} is also the port of {other}");
        }
    }
    Ok(())
}
