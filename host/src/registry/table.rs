//! The registrations a registry keeps itself: bounded per name and in all,
//! pruned on a timer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::server::{MAX_REGISTRATIONS, MAX_SERVERS_PER_NAME};

/// Name -> (address -> when it was last registered).
type Services = HashMap<String, HashMap<(IpAddr, u16), Instant>>;

/// A registry's own registrations.
#[derive(Debug)]
pub(super) struct LocalTable {
    services: Mutex<Services>,
    pruning_timeout: Duration,
}

impl LocalTable {
    pub(super) fn new(pruning_timeout: Duration) -> Self {
        LocalTable {
            services: Mutex::new(HashMap::new()),
            pruning_timeout,
        }
    }

    fn services(&self) -> MutexGuard<'_, Services> {
        self.services.lock().expect("registry poisoned")
    }

    /// Registers `addr` under `names`; `false` when the registry holds as
    /// many registrations as it may.
    pub(super) fn register(&self, names: &[&str], addr: (IpAddr, u16)) -> bool {
        let now = Instant::now();
        let mut services = self.services();
        let new = names
            .iter()
            .filter(|name| {
                let servers = services.get(&name.to_uppercase());
                !servers.is_some_and(|servers| servers.contains_key(&addr))
            })
            .count();
        if registrations(&services) + new > MAX_REGISTRATIONS {
            prune(&mut services, self.pruning_timeout);
            if registrations(&services) + new > MAX_REGISTRATIONS {
                return false;
            }
        }
        for name in names {
            let servers = services.entry(name.to_uppercase()).or_default();
            if !servers.contains_key(&addr) && servers.len() >= MAX_SERVERS_PER_NAME {
                let stalest = servers.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a);
                if let Some(stalest) = stalest {
                    servers.remove(&stalest);
                }
            }
            servers.insert(addr, now);
        }
        true
    }

    /// Forgets every registration of `addr`.
    pub(super) fn unregister(&self, addr: (IpAddr, u16)) {
        let mut services = self.services();
        for servers in services.values_mut() {
            servers.remove(&addr);
        }
        services.retain(|_, servers| !servers.is_empty());
    }

    /// Where `name` is served, most recently renewed first; stale ones go.
    pub(super) fn query(&self, name: &str) -> Vec<(IpAddr, u16)> {
        let name = name.to_uppercase();
        let mut services = self.services();
        let Some(servers) = services.get_mut(&name) else {
            return Vec::new();
        };
        servers.retain(|_, registered| registered.elapsed() <= self.pruning_timeout);
        let mut found: Vec<_> = servers.iter().map(|(addr, at)| (*at, *addr)).collect();
        if servers.is_empty() {
            services.remove(&name);
        }
        drop(services);
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, addr)| addr).collect()
    }

    /// Every registered name (only those served on `host`, if given),
    /// sorted.
    pub(super) fn names(&self, host: Option<&str>) -> Vec<String> {
        let services = self.services();
        let mut names: Vec<String> = services
            .iter()
            .filter(|(_, servers)| {
                host.is_none_or(|host| servers.keys().any(|(ip, _)| ip.to_string() == host))
            })
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Forgets every registration not renewed within the pruning timeout.
    pub(super) fn prune(&self) {
        prune(&mut self.services(), self.pruning_timeout);
    }

    /// How many registrations it holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        registrations(&self.services())
    }
}

/// How many registrations `services` holds.
fn registrations(services: &Services) -> usize {
    services.values().map(HashMap::len).sum()
}

/// Forgets every registration of `services` older than `timeout`.
fn prune(services: &mut Services, timeout: Duration) {
    for servers in services.values_mut() {
        servers.retain(|_, registered| registered.elapsed() <= timeout);
    }
    services.retain(|_, servers| !servers.is_empty());
}
