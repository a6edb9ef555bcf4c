//! Keeping this host in the fleet: its record written at every heartbeat,
//! deleted at a clean stop.

use std::net::IpAddr;

use async_nats::jetstream::kv;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, Fleet, HostRecord, Offer, REQUEST_TIMEOUT, fresh_id};

/// Keeps this host in `fleet` until `stop`: its record, at `advertise` (else
/// the address NATS sees it connect from) with what `offer` says at the
/// time, is written at every heartbeat, and deleted when `stop` is
/// cancelled. While NATS is unreachable the host drops out of the view when
/// its record ages; it rejoins by itself at the first heartbeat that gets
/// through.
pub async fn keep_member(
    fleet: Fleet,
    advertise: Option<IpAddr>,
    offer: impl Fn() -> Offer,
    stop: CancellationToken,
) {
    let config = fleet.config().clone();
    let id = fresh_id();
    let key = HostRecord::key(&id);
    let mut store: Option<kv::Store> = None;
    let mut ticks = tokio::time::interval(config.heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut member = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        // Not connected yet: NATS has not said where it sees us from.
        let Some(address) = advertise.or_else(|| fleet.seen_address()) else {
            continue;
        };
        let record = HostRecord::new(&id, address, config.ttl, offer());
        let written =
            tokio::time::timeout(REQUEST_TIMEOUT, write(&fleet, &mut store, &key, &record))
                .await
                .unwrap_or_else(|_| Err(ClusterError::Nats("no answer in time".into())));
        match (written, member) {
            (Ok(()), false) => {
                tracing::info!(cluster = %config.name, %address, id = %id, "joined the fleet");
                member = true;
            }
            (Err(error), true) => {
                tracing::warn!(cluster = %config.name, %error, "cannot reach the fleet: still serving; retrying every heartbeat");
                member = false;
                store = None;
            }
            (Err(_), false) => store = None,
            (Ok(()), true) => {}
        }
    }
    let leaving = async {
        let store = match store {
            Some(store) => store,
            None => fleet.bucket().await?,
        };
        store.delete(&key).await.map_err(ClusterError::nats)
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, leaving).await {
        Ok(Ok(())) => tracing::info!(cluster = %config.name, "left the fleet"),
        Ok(Err(error)) => {
            tracing::warn!(cluster = %config.name, %error, "could not delete this host's record; it ages out")
        }
        Err(_) => {
            tracing::warn!(cluster = %config.name, "NATS did not answer; this host's record ages out")
        }
    }
}

/// Writes `record` under `key`, opening the bucket first if need be.
async fn write(
    fleet: &Fleet,
    store: &mut Option<kv::Store>,
    key: &str,
    record: &HostRecord,
) -> Result<(), ClusterError> {
    if store.is_none() {
        *store = Some(fleet.bucket().await?);
    }
    let store = store.as_ref().expect("opened above");
    let value = serde_json::to_vec(record).map_err(ClusterError::nats)?;
    store
        .put(key, value.into())
        .await
        .map_err(ClusterError::nats)?;
    Ok(())
}
