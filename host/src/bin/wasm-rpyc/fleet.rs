//! The fleet's commands: `deploy`, `undeploy`, `rollback` (each waits for
//! every host that accepts fleet deploys and prints its outcome) and
//! `status`.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasm_rpyc::cluster::{
    Cluster, ClusterConfig, DeploymentRecord, HostRecord, MAX_PREVIOUS_REVISIONS, View,
};
use wasm_rpyc::{Limits, Runtime, ServiceComponent};

use crate::args::{ClusterArgs, FleetDeployArgs, FleetNameArgs, StatusArgs};

/// Runs one fleet command on a runtime of its own.
pub(crate) fn run(command: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(command)
}

pub(crate) async fn deploy(args: FleetDeployArgs) -> Result<()> {
    let config = cluster(&args.cluster)?;
    let file = &args.component;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => stem(file),
    };
    check_loads(&name, &bytes)
        .await
        .with_context(|| format!("{} does not load; nothing was deployed", file.display()))?;
    let cluster = Cluster::connect(config).await?;
    let fleet = cluster.view().fleet();
    let digest = fleet.store_component(&bytes).await?;
    let previous = match fleet.deployment(&name).await? {
        Some(old) if old.digest != digest => std::iter::once(old.digest)
            .chain(old.previous)
            .take(MAX_PREVIOUS_REVISIONS)
            .collect(),
        Some(old) => old.previous,
        None => Vec::new(),
    };
    let record = DeploymentRecord {
        name: name.clone(),
        digest: digest.clone(),
        size: bytes.len() as u64,
        port: args.port,
        previous,
    };
    fleet.set_deployment(&record).await?;
    println!("deployed {name} as {}; the hosts:", short(&digest));
    outcomes(
        cluster.view(),
        &name,
        Some(&digest),
        args.wait.wait.duration(),
    )
    .await
}

pub(crate) async fn undeploy(args: FleetNameArgs) -> Result<()> {
    let cluster = Cluster::connect(cluster(&args.cluster)?).await?;
    let fleet = cluster.view().fleet();
    if fleet.deployment(&args.name).await?.is_none() {
        bail!("the fleet has no deployment {}", args.name);
    }
    fleet.remove_deployment(&args.name).await?;
    println!("undeployed {}; the hosts:", args.name);
    outcomes(cluster.view(), &args.name, None, args.wait.wait.duration()).await
}

pub(crate) async fn rollback(args: FleetNameArgs) -> Result<()> {
    let cluster = Cluster::connect(cluster(&args.cluster)?).await?;
    let fleet = cluster.view().fleet();
    let Some(mut record) = fleet.deployment(&args.name).await? else {
        bail!("the fleet has no deployment {}", args.name);
    };
    if record.previous.is_empty() {
        bail!("{} has no earlier revision", args.name);
    }
    record.digest = record.previous.remove(0);
    fleet.set_deployment(&record).await?;
    println!(
        "rolled {} back to {}; the hosts:",
        args.name,
        short(&record.digest)
    );
    outcomes(
        cluster.view(),
        &args.name,
        Some(&record.digest),
        args.wait.wait.duration(),
    )
    .await
}

pub(crate) async fn status(args: StatusArgs) -> Result<()> {
    let cluster = Cluster::connect(cluster(&args.cluster)?).await?;
    let fleet = cluster.view().fleet();
    let hosts = cluster
        .view()
        .hosts()
        .context("the fleet could not be read")?;
    println!(
        "{:<16} {:<24} {:<7} {:<10} CONNECTIONS",
        "HOST", "SERVICE", "PORT", "DIGEST"
    );
    for (host, _) in &hosts {
        for service in &host.services {
            let digest = service.digest.as_deref().map_or("-", short);
            println!(
                "{:<16} {:<24} {:<7} {:<10} {}/{}",
                host.address.to_string(),
                service.aliases.first().map_or("", String::as_str),
                service.port,
                digest,
                service.open,
                service.max
            );
        }
    }
    let deployments = fleet.deployments().await?;
    if !deployments.is_empty() {
        println!();
        println!(
            "{:<24} {:<10} {:<7} OUTCOMES",
            "DEPLOYMENT", "DIGEST", "PORT"
        );
    }
    for deployment in &deployments {
        let outcomes: Vec<String> = hosts
            .iter()
            .filter(|(host, _)| host.accepts_deploys)
            .map(|(host, _)| format!("{}: {}", host.address, outcome(host, &deployment.name)))
            .collect();
        println!(
            "{:<24} {:<10} {:<7} {}",
            deployment.name,
            short(&deployment.digest),
            deployment.port,
            outcomes.join("; ")
        );
    }
    Ok(())
}

/// The fleet `args` name; `--cluster` is required here.
fn cluster(args: &ClusterArgs) -> Result<ClusterConfig> {
    args.config()
        .context("name the fleet's NATS server with --cluster nats://HOST:PORT")
}

/// The file's stem, the default name of what it serves.
fn stem(file: &Path) -> String {
    file.file_stem()
        .map_or("service".into(), |s| s.to_string_lossy().into_owned())
}

/// The first 8 hex digits of a digest.
fn short(digest: &str) -> &str {
    digest.get(..8).unwrap_or(digest)
}

/// Loads the component here (compiled, instantiated once), as a host will.
async fn check_loads(name: &str, bytes: &[u8]) -> Result<()> {
    let mut limits = Limits::default();
    limits.max_instances = 4;
    let runtime = Runtime::new(limits).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    ServiceComponent::from_bytes(&runtime, name, bytes).await?;
    Ok(())
}

/// What host `host` says of deployment `name`.
fn outcome(host: &HostRecord, name: &str) -> String {
    let Some(status) = host.deployments.iter().find(|s| s.name == name) else {
        return "not yet".into();
    };
    match &status.error {
        Some(error) => format!("{} failed: {error}", short(&status.digest)),
        None => {
            let port = host
                .services
                .iter()
                .find(|s| s.digest.as_deref() == Some(status.digest.as_str()))
                .map_or(String::new(), |s| format!(" on port {}", s.port));
            format!("serving {}{port}", short(&status.digest))
        }
    }
}

/// Waits (at most `wait`) until every host that accepts fleet deploys has
/// an outcome for deployment `name` at `digest` (`None`: until none serves
/// it any more), prints each, and fails if any host failed or did not
/// answer in time.
async fn outcomes(view: &View, name: &str, digest: Option<&str>, wait: Duration) -> Result<()> {
    let settled = |host: &HostRecord| {
        let status = host.deployments.iter().find(|s| s.name == name);
        match digest {
            Some(digest) => status.is_some_and(|s| s.digest == digest),
            None => status.is_none(),
        }
    };
    let started = Instant::now();
    let hosts = loop {
        let hosts: Vec<HostRecord> = view
            .hosts()
            .context("the fleet could not be read")?
            .into_iter()
            .map(|(host, _)| host)
            .filter(|host| host.accepts_deploys)
            .collect();
        if hosts.iter().all(settled) || started.elapsed() > wait {
            break hosts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if hosts.is_empty() {
        bail!("no live host of the fleet accepts fleet deploys (serve --accept-fleet-deploys)");
    }
    let mut failed = 0;
    for host in &hosts {
        let said = match digest {
            Some(_) => outcome(host, name),
            None if settled(host) => "not serving it".into(),
            None => "still serving it".into(),
        };
        let ok = settled(host)
            && host
                .deployments
                .iter()
                .find(|s| s.name == name)
                .is_none_or(|s| s.error.is_none());
        if !ok {
            failed += 1;
        }
        println!("  {:<16} {said}", host.address.to_string());
    }
    if failed > 0 {
        bail!("{failed} of {} hosts did not settle on {name}", hosts.len());
    }
    Ok(())
}
