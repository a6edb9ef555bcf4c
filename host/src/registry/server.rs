//! [`Registry`]: the registry's side: the registrations, bounded and pruned
//! on a timer, and the answers, each of which fits what RPyC's client reads;
//! served over UDP here and over TCP by [`super::tcp`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::MAX_REQUEST;
use crate::protocol::rpyc::brine;
use crate::value::Value;

/// The largest reply: RPyC's client reads one datagram of this size (and,
/// over TCP, this many bytes), so a longer reply would not be understood.
pub const MAX_REPLY: usize = MAX_REQUEST;

/// How many servers one name may have registered: a new one past it
/// replaces the one renewed longest ago.
pub const MAX_SERVERS_PER_NAME: usize = 64;

/// How many registrations (a name at an address) the registry keeps in all:
/// past it, a new one gets no reply, as from a registry that is not there.
pub const MAX_REGISTRATIONS: usize = 10_000;

/// Name -> (address -> when it was last registered).
type Services = HashMap<String, HashMap<(IpAddr, u16), Instant>>;

/// The registered services and the rules for answering.
#[derive(Debug)]
pub struct Registry {
    services: Mutex<Services>,
    pruning_timeout: Duration,
    allow_listing: bool,
}

impl Registry {
    /// An empty registry; `allow_listing` lets clients list every name (off
    /// by default in RPyC).
    pub fn new(pruning_timeout: Duration, allow_listing: bool) -> Self {
        Registry {
            services: Mutex::new(HashMap::new()),
            pruning_timeout,
            allow_listing,
        }
    }

    /// The reply to `request`, sent from `source`; `None` when it gets none.
    pub fn answer(&self, request: &[u8], source: IpAddr) -> Option<Vec<u8>> {
        let Ok(Value::Tuple(parts)) = brine::decode(request) else {
            return None;
        };
        let [Value::Str(magic), Value::Str(command), Value::Tuple(args)] =
            <[Value; 3]>::try_from(parts).ok()?
        else {
            return None;
        };
        if magic != "RPYC" {
            return None;
        }
        let reply = match (command.to_lowercase().as_str(), args.as_slice()) {
            ("register", [Value::Tuple(names), Value::Int(port)]) => {
                let names: Option<Vec<&str>> = names.iter().map(as_str).collect();
                self.register(&names?, (source, u16::try_from(*port).ok()?))?
            }
            ("unregister", [Value::Int(port)]) => {
                self.unregister((source, u16::try_from(*port).ok()?))
            }
            ("query", [Value::Str(name)]) => self.query(name),
            ("list", [Value::Tuple(filter)]) => match filter.as_slice() {
                [Value::Str(host)] => self.list(Some(host)),
                [Value::None] | [] => self.list(None),
                _ => return None,
            },
            _ => return None,
        };
        let mut out = Vec::new();
        brine::encode(&reply, &mut out).ok()?;
        Some(out)
    }

    fn services(&self) -> std::sync::MutexGuard<'_, Services> {
        self.services.lock().expect("registry poisoned")
    }

    /// Registers `addr` under `names`; `None` (no reply) when the registry
    /// holds as many registrations as it may.
    fn register(&self, names: &[&str], addr: (IpAddr, u16)) -> Option<Value> {
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
                tracing::warn!(ip = %addr.0, port = addr.1, "not registered: the registry is full");
                return None;
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
        tracing::info!(?names, ip = %addr.0, port = addr.1, "registered");
        Some(Value::Str("OK".into()))
    }

    fn unregister(&self, addr: (IpAddr, u16)) -> Value {
        let mut services = self.services();
        for servers in services.values_mut() {
            servers.remove(&addr);
        }
        services.retain(|_, servers| !servers.is_empty());
        tracing::info!(ip = %addr.0, port = addr.1, "unregistered");
        Value::Str("OK".into())
    }

    /// Where `name` is served, most recently renewed first (as many as fit
    /// in a reply); stale ones go.
    fn query(&self, name: &str) -> Value {
        let name = name.to_uppercase();
        let mut services = self.services();
        let Some(servers) = services.get_mut(&name) else {
            return Value::Tuple(Vec::new());
        };
        servers.retain(|_, registered| registered.elapsed() <= self.pruning_timeout);
        let mut found: Vec<_> = servers.iter().map(|(addr, at)| (*at, *addr)).collect();
        if servers.is_empty() {
            services.remove(&name);
        }
        drop(services);
        found.sort_by(|a, b| b.cmp(a));
        let found = found.into_iter().map(|(_, (ip, port))| {
            Value::Tuple(vec![Value::Str(ip.to_string()), Value::Int(port.into())])
        });
        fitting(found)
    }

    /// Every registered name (only those served on `host`, if given), or
    /// `None` when listing is not allowed.
    fn list(&self, host: Option<&str>) -> Value {
        if !self.allow_listing {
            return Value::None;
        }
        let services = self.services();
        let mut names: Vec<&String> = services
            .iter()
            .filter(|(_, servers)| {
                host.is_none_or(|host| servers.keys().any(|(ip, _)| ip.to_string() == host))
            })
            .map(|(name, _)| name)
            .collect();
        names.sort();
        fitting(names.into_iter().map(|name| Value::Str(name.clone())))
    }

    /// Forgets every registration not renewed within the pruning timeout.
    pub(crate) fn prune(&self) {
        prune(&mut self.services(), self.pruning_timeout);
    }

    /// How often the registry prunes its registrations: a quarter of the
    /// timeout, at least every second.
    pub(crate) fn pruning_interval(&self) -> Duration {
        (self.pruning_timeout / 4).max(Duration::from_secs(1))
    }

    /// Answers datagrams on `socket` until the task is dropped.
    pub async fn serve_udp(self: Arc<Self>, socket: UdpSocket) {
        let mut buf = [0u8; MAX_REQUEST];
        let mut pruning = tokio::time::interval(self.pruning_interval());
        loop {
            let received = tokio::select! {
                received = socket.recv_from(&mut buf) => received,
                _ = pruning.tick() => {
                    self.prune();
                    continue;
                }
            };
            let (len, from) = match received {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(%error, "registry datagram not received");
                    continue;
                }
            };
            if let Some(reply) = self.answer(&buf[..len], from.ip())
                && let Err(error) = socket.send_to(&reply, from).await
            {
                tracing::debug!(%error, %from, "registry reply not sent");
            }
        }
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

/// A tuple of as many of `items`, in order, as fit in a reply.
fn fitting(items: impl Iterator<Item = Value>) -> Value {
    let mut kept = Vec::new();
    // A tuple's brine is its items' and a few bytes of header.
    let mut size = 8;
    for item in items {
        let mut encoded = Vec::new();
        if brine::encode(&item, &mut encoded).is_err() {
            continue;
        }
        if size + encoded.len() > MAX_REPLY {
            break;
        }
        size += encoded.len();
        kept.push(item);
    }
    Value::Tuple(kept)
}

fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{DEFAULT_PRUNING_TIMEOUT, request};

    fn ask(registry: &Registry, from: &str, command: &str, args: Vec<Value>) -> Option<Value> {
        let reply = registry.answer(&request(command, args), from.parse().unwrap())?;
        Some(brine::decode(&reply).unwrap())
    }

    /// LIST, filtered by `host` (or not: `None`), as RPyC's client asks.
    fn list(registry: &Registry, host: Value) -> Option<Value> {
        ask(registry, "10.0.0.9", "LIST", vec![Value::Tuple(vec![host])])
    }

    fn names(names: &[&str]) -> Value {
        Value::Tuple(names.iter().map(|n| Value::Str((*n).into())).collect())
    }

    fn addr(ip: &str, port: i128) -> Value {
        Value::Tuple(vec![Value::Str(ip.into()), Value::Int(port)])
    }

    #[test]
    fn registrations_are_found_by_any_alias_freshest_first_and_removed() {
        let registry = Registry::new(DEFAULT_PRUNING_TIMEOUT, true);
        let ok = Some(Value::Str("OK".into()));
        assert_eq!(
            ask(
                &registry,
                "10.0.0.1",
                "REGISTER",
                vec![names(&["calc", "math"]), Value::Int(18861)]
            ),
            ok
        );
        assert_eq!(
            ask(
                &registry,
                "10.0.0.2",
                "REGISTER",
                vec![names(&["CALC"]), Value::Int(18861)]
            ),
            ok
        );
        let query = |name: &str| {
            ask(
                &registry,
                "10.0.0.9",
                "QUERY",
                vec![Value::Str(name.into())],
            )
        };
        assert_eq!(
            query("Calc"),
            Some(Value::Tuple(vec![
                addr("10.0.0.2", 18861),
                addr("10.0.0.1", 18861)
            ]))
        );
        assert_eq!(
            query("MATH"),
            Some(Value::Tuple(vec![addr("10.0.0.1", 18861)]))
        );
        assert_eq!(query("nothing"), Some(Value::Tuple(Vec::new())));
        assert_eq!(list(&registry, Value::None), Some(names(&["CALC", "MATH"])));
        assert_eq!(
            list(&registry, Value::Str("10.0.0.2".into())),
            Some(names(&["CALC"]))
        );
        assert_eq!(
            ask(&registry, "10.0.0.1", "UNREGISTER", vec![Value::Int(18861)]),
            ok
        );
        assert_eq!(
            query("calc"),
            Some(Value::Tuple(vec![addr("10.0.0.2", 18861)]))
        );
        assert_eq!(query("math"), Some(Value::Tuple(Vec::new())));
    }

    #[test]
    fn stale_registrations_are_pruned_and_listing_is_opt_in() {
        let registry = Registry::new(Duration::ZERO, false);
        ask(
            &registry,
            "10.0.0.1",
            "REGISTER",
            vec![names(&["calc"]), Value::Int(1)],
        );
        std::thread::sleep(Duration::from_millis(2));
        let found = ask(
            &registry,
            "10.0.0.9",
            "QUERY",
            vec![Value::Str("calc".into())],
        );
        assert_eq!(found, Some(Value::Tuple(Vec::new())));
        assert_eq!(list(&registry, Value::None), Some(Value::None));
    }

    #[test]
    fn replies_fit_what_rpyc_reads_freshest_first_and_names_stay_bounded() {
        let registry = Registry::new(DEFAULT_PRUNING_TIMEOUT, true);
        for port in 1..=200 {
            let from = format!("10.0.{}.{}", port / 250, port % 250);
            let reply = ask(
                &registry,
                &from,
                "REGISTER",
                vec![names(&["calc"]), Value::Int(port)],
            );
            assert_eq!(reply, Some(Value::Str("OK".into())));
        }
        let reply = registry
            .answer(
                &request("QUERY", vec![Value::Str("calc".into())]),
                "10.0.0.9".parse().unwrap(),
            )
            .unwrap();
        assert!(reply.len() <= MAX_REPLY, "{} bytes", reply.len());
        let Value::Tuple(found) = brine::decode(&reply).unwrap() else {
            panic!("a tuple");
        };
        assert!(
            found.len() > 10 && found.len() <= MAX_SERVERS_PER_NAME,
            "{}",
            found.len()
        );
        assert_eq!(found[0], addr("10.0.0.200", 200), "the freshest first");
    }

    #[test]
    fn a_flood_of_names_is_bounded() {
        let registry = Registry::new(DEFAULT_PRUNING_TIMEOUT, true);
        let refused = (0..MAX_REGISTRATIONS + 10)
            .filter(|n| {
                let name = format!("flood{n}");
                let register = vec![names(&[&name]), Value::Int(1)];
                ask(&registry, "10.0.0.1", "REGISTER", register).is_none()
            })
            .count();
        assert_eq!(refused, 10);
        assert_eq!(registrations(&registry.services()), MAX_REGISTRATIONS);
    }

    #[test]
    fn names_nobody_asks_for_are_pruned_all_the_same() {
        let registry = Registry::new(Duration::from_millis(20), true);
        for n in 0..100 {
            let register = vec![names(&[&format!("flood{n}")]), Value::Int(1)];
            ask(&registry, "10.0.0.1", "REGISTER", register);
        }
        std::thread::sleep(Duration::from_millis(30));
        registry.prune();
        assert_eq!(registrations(&registry.services()), 0);
    }

    #[test]
    fn what_is_not_a_request_gets_no_reply() {
        let registry = Registry::new(DEFAULT_PRUNING_TIMEOUT, true);
        let from: IpAddr = "10.0.0.1".parse().unwrap();
        let mut other_magic = Vec::new();
        brine::encode(
            &Value::Tuple(vec![
                Value::Str("HTTP".into()),
                Value::Str("QUERY".into()),
                Value::Tuple(vec![Value::Str("x".into())]),
            ]),
            &mut other_magic,
        )
        .unwrap();
        for bad in [
            b"".to_vec(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0xff; MAX_REQUEST],
            other_magic,
            request("SHUTDOWN", Vec::new()),
            request("REGISTER", vec![names(&["x"]), Value::Int(70_000)]),
            request("REGISTER", vec![Value::Int(1), Value::Int(1)]),
            request("QUERY", Vec::new()),
        ] {
            assert_eq!(registry.answer(&bad, from), None, "{bad:?}");
        }
    }
}
