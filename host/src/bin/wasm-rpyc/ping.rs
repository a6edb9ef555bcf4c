//! `wasm-rpyc ping`: is a service answering?

use anyhow::{Context, Result};
use wasm_rpyc::tls;

use crate::args::PingArgs;

/// `wasm-rpyc ping`: connects, asks the service its name and prints it.
pub(crate) async fn ping(args: PingArgs) -> Result<()> {
    let limit = args.timeout.duration();
    let address = args.address.as_str();
    // A bad certificate file is this side's error, not the service's.
    let tls = match &args.tls_ca {
        Some(ca) => {
            let identity = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
            Some(tls::client_config(ca, identity)?)
        }
        None => None,
    };
    let asking = async {
        let connection = match tls {
            Some(tls) => {
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
