//! The fleet as a reader sees it: the live hosts and the classic
//! registrations, read from the bucket again and again. Ages come from the
//! NATS server's clock (each entry's time against the time of a key the
//! reader writes itself), so the machines' clocks need not agree.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::record::{CLASSIC_PREFIX, CLOCK_PREFIX, HOST_PREFIX};
use super::{ClassicRecord, ClusterError, Fleet, HostRecord, REQUEST_TIMEOUT, fresh_id};

/// The most keys one refresh reads; the rest wait for the next.
pub const MAX_KEYS: usize = 10_000;

/// The fleet as last read. Cheap to clone: clones share it.
#[derive(Clone, Debug)]
pub struct View {
    fleet: Fleet,
    latest: Arc<Mutex<Option<Snapshot>>>,
}

/// What one refresh read.
#[derive(Debug)]
struct Snapshot {
    taken: Instant,
    /// Live hosts, with the age of their records.
    hosts: Vec<(HostRecord, Duration)>,
    /// Classic registrations, with their ages.
    classic: Vec<(ClassicRecord, Duration)>,
}

/// One place a service is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The host's address and the service's port.
    pub address: SocketAddr,
    /// How long ago the host (or the classic server) was last heard from.
    pub age: Duration,
}

impl View {
    /// A view of `fleet`, empty until [`View::keep_current`] has read it.
    pub fn new(fleet: Fleet) -> Self {
        View {
            fleet,
            latest: Arc::new(Mutex::new(None)),
        }
    }

    /// Reads the fleet every `interval` until `stop`.
    pub async fn keep_current(&self, interval: Duration, stop: CancellationToken) {
        let clock = format!("{CLOCK_PREFIX}{}", fresh_id());
        let mut store: Option<kv::Store> = None;
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut reading = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let read = tokio::time::timeout(
                REQUEST_TIMEOUT.saturating_mul(4),
                self.refresh(&mut store, &clock),
            )
            .await
            .unwrap_or_else(|_| Err(ClusterError::Nats("no answer in time".into())));
            match read {
                Ok(()) if !reading => {
                    tracing::info!(cluster = %self.fleet.config().name, "reading the fleet");
                    reading = true;
                }
                Ok(()) => {}
                Err(error) => {
                    if reading {
                        tracing::warn!(cluster = %self.fleet.config().name, %error, "cannot read the fleet");
                    }
                    reading = false;
                    store = None;
                }
            }
        }
        if let Some(store) = store {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, store.delete(&clock)).await;
        }
    }

    /// Reads every record, and their ages by the server's clock.
    async fn refresh(
        &self,
        store: &mut Option<kv::Store>,
        clock: &str,
    ) -> Result<(), ClusterError> {
        if store.is_none() {
            *store = Some(self.fleet.bucket().await?);
        }
        let store = store.as_ref().expect("opened above");
        store
            .put(clock, bytes::Bytes::new())
            .await
            .map_err(ClusterError::nats)?;
        let now = match store.entry(clock).await.map_err(ClusterError::nats)? {
            Some(entry) => entry.created,
            None => return Err(ClusterError::Nats("the clock key vanished".into())),
        };
        let keys: Vec<String> = store
            .keys()
            .await
            .map_err(ClusterError::nats)?
            .take(MAX_KEYS)
            .filter_map(|key| async move { key.ok() })
            .collect()
            .await;
        let (mut hosts, mut classic) = (Vec::new(), Vec::new());
        for key in keys.iter().filter(|key| !key.starts_with(CLOCK_PREFIX)) {
            let Some(entry) = store.entry(key).await.map_err(ClusterError::nats)? else {
                continue;
            };
            let millis = (now - entry.created).whole_milliseconds().max(0);
            let age = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
            if key.starts_with(HOST_PREFIX) {
                match serde_json::from_slice::<HostRecord>(&entry.value) {
                    Ok(record) if age <= record.ttl() => hosts.push((record, age)),
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%key, %error, "not a host's record"),
                }
            } else if key.starts_with(CLASSIC_PREFIX) {
                match serde_json::from_slice::<ClassicRecord>(&entry.value) {
                    Ok(record) => classic.push((record, age)),
                    Err(error) => tracing::debug!(%key, %error, "not a registration"),
                }
            }
        }
        *self.latest.lock().expect("never poisoned") = Some(Snapshot {
            taken: Instant::now(),
            hosts,
            classic,
        });
        Ok(())
    }

    /// Where `name` is served: on live hosts, and by classic servers heard
    /// from within `classic_ttl`; those heard from within half their
    /// time-to-live first (the others have missed a heartbeat, or a
    /// renewal), each group in random order (so that clients taking the
    /// first spread over them). `None` when the view was last read longer
    /// than the fleet's time-to-live ago: cut off from NATS, it knows nothing
    /// current.
    pub fn find(&self, name: &str, classic_ttl: Duration) -> Option<Vec<Found>> {
        let latest = self.latest.lock().expect("never poisoned");
        let snapshot = latest.as_ref().filter(|s| self.is_current(s))?;
        let named = |aliases: &[String]| aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
        // Each with the time-to-live it is aged against.
        let mut found: Vec<(Duration, Found)> = Vec::new();
        for (host, age) in &snapshot.hosts {
            for service in host.services.iter().filter(|s| named(&s.aliases)) {
                let address = SocketAddr::new(host.address, service.port);
                found.push((host.ttl(), Found { address, age: *age }));
            }
        }
        for (record, age) in &snapshot.classic {
            if *age <= classic_ttl && named(&record.aliases) {
                let address = SocketAddr::new(record.ip, record.port);
                found.push((classic_ttl, Found { address, age: *age }));
            }
        }
        let shuffle = RandomState::new();
        found.sort_by_key(|(ttl, found)| (found.age > *ttl / 2, shuffle.hash_one(found.address)));
        Some(found.into_iter().map(|(_, found)| found).collect())
    }

    /// Every name served (only on `host`, if given), sorted, as
    /// [`View::find`] sees them; `None` when the view is not current.
    pub fn names(&self, host: Option<&str>, classic_ttl: Duration) -> Option<Vec<String>> {
        let latest = self.latest.lock().expect("never poisoned");
        let snapshot = latest.as_ref().filter(|s| self.is_current(s))?;
        let on = |ip: &std::net::IpAddr| host.is_none_or(|host| ip.to_string() == host);
        let hosts = snapshot
            .hosts
            .iter()
            .filter(|(host, _)| on(&host.address))
            .flat_map(|(host, _)| host.services.iter().flat_map(|s| s.aliases.iter()));
        let classic = snapshot
            .classic
            .iter()
            .filter(|(record, age)| *age <= classic_ttl && on(&record.ip))
            .flat_map(|(record, _)| record.aliases.iter());
        let mut names: Vec<String> = hosts.chain(classic).map(|n| n.to_uppercase()).collect();
        names.sort();
        names.dedup();
        Some(names)
    }

    /// Whether the classic server at `ip` and `port` may register: it is
    /// registered already (a renewal), or fewer than `most` are. `false`
    /// when the view is not current.
    pub fn has_room_for_classic(&self, ip: IpAddr, port: u16, most: usize) -> bool {
        let latest = self.latest.lock().expect("never poisoned");
        let Some(snapshot) = latest.as_ref().filter(|s| self.is_current(s)) else {
            return false;
        };
        snapshot.classic.len() < most
            || snapshot
                .classic
                .iter()
                .any(|(record, _)| record.ip == ip && record.port == port)
    }

    /// The live hosts, with the age of their records; `None` when the view
    /// is not current.
    pub fn hosts(&self) -> Option<Vec<(HostRecord, Duration)>> {
        let latest = self.latest.lock().expect("never poisoned");
        let snapshot = latest.as_ref().filter(|s| self.is_current(s))?;
        Some(snapshot.hosts.clone())
    }

    /// Whether the view has been read and is current.
    pub fn is_read(&self) -> bool {
        let latest = self.latest.lock().expect("never poisoned");
        latest.as_ref().is_some_and(|s| self.is_current(s))
    }

    /// Whether `snapshot` is recent enough to answer from.
    fn is_current(&self, snapshot: &Snapshot) -> bool {
        snapshot.taken.elapsed() <= self.fleet.config().ttl
    }

    /// The fleet this view reads.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }
}
