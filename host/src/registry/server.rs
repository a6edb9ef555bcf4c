//! [`Registry`]: the registry's side: the answers, each of which fits what
//! RPyC's client reads, from its own registrations (see `table`) or a
//! fleet's (see `fleet`); served over UDP here and over TCP by
//! [`super::tcp`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::MAX_REQUEST;
use super::fleet::FleetTable;
use super::table::LocalTable;
use crate::cluster::View;
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

/// The registered services and the rules for answering.
#[derive(Debug)]
pub struct Registry {
    table: Table,
    pruning_timeout: Duration,
    allow_listing: bool,
}

/// Where the registrations are kept.
#[derive(Debug)]
enum Table {
    /// By this registry.
    Local(LocalTable),
    /// In a fleet, shared by its registries.
    Fleet(Box<FleetTable>),
}

impl Registry {
    /// An empty registry; `allow_listing` lets clients list every name (off
    /// by default in RPyC).
    pub fn new(pruning_timeout: Duration, allow_listing: bool) -> Self {
        Registry {
            table: Table::Local(LocalTable::new(pruning_timeout)),
            pruning_timeout,
            allow_listing,
        }
    }

    /// A registry of the fleet `view` reads (which must be kept current:
    /// see [`View::keep_current`]): it answers with the fleet's live hosts
    /// and classic registrations, and gives no answer while the view is not
    /// current (cut off from NATS). Classic servers register into the
    /// fleet. Call it within a tokio runtime: its writes to the fleet run on
    /// a task of their own.
    pub fn with_fleet(view: View, pruning_timeout: Duration, allow_listing: bool) -> Self {
        Registry {
            table: Table::Fleet(Box::new(FleetTable::new(view, pruning_timeout))),
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
                self.unregister((source, u16::try_from(*port).ok()?))?
            }
            ("query", [Value::Str(name)]) => self.query(name)?,
            ("list", [Value::Tuple(filter)]) => match filter.as_slice() {
                [Value::Str(host)] => self.list(Some(host))?,
                [Value::None] | [] => self.list(None)?,
                _ => return None,
            },
            _ => return None,
        };
        let mut out = Vec::new();
        brine::encode(&reply, &mut out).ok()?;
        Some(out)
    }

    /// Registers `addr` under `names`; `None` (no reply) when the registry
    /// holds as many registrations as it may, or, in a fleet, too many
    /// writes wait.
    fn register(&self, names: &[&str], addr: (IpAddr, u16)) -> Option<Value> {
        let registered = match &self.table {
            Table::Local(table) => table.register(names, addr),
            Table::Fleet(table) => table.register(names, addr),
        };
        if !registered {
            tracing::warn!(ip = %addr.0, port = addr.1, "not registered: the registry is full");
            return None;
        }
        tracing::info!(?names, ip = %addr.0, port = addr.1, "registered");
        Some(Value::Str("OK".into()))
    }

    fn unregister(&self, addr: (IpAddr, u16)) -> Option<Value> {
        match &self.table {
            Table::Local(table) => table.unregister(addr),
            Table::Fleet(table) => {
                if !table.unregister(addr) {
                    return None;
                }
            }
        }
        tracing::info!(ip = %addr.0, port = addr.1, "unregistered");
        Some(Value::Str("OK".into()))
    }

    /// Where `name` is served, freshest first (as many as fit in a reply);
    /// `None` from a fleet registry cut off from the fleet.
    fn query(&self, name: &str) -> Option<Value> {
        let found = match &self.table {
            Table::Local(table) => table.query(name),
            Table::Fleet(table) => table.query(name)?,
        };
        let found = found.into_iter().map(|(ip, port)| {
            Value::Tuple(vec![Value::Str(ip.to_string()), Value::Int(port.into())])
        });
        Some(fitting(found))
    }

    /// Every registered name (only those served on `host`, if given), or
    /// `Value::None` when listing is not allowed.
    fn list(&self, host: Option<&str>) -> Option<Value> {
        if !self.allow_listing {
            return Some(Value::None);
        }
        let names = match &self.table {
            Table::Local(table) => table.names(host),
            Table::Fleet(table) => table.names(host)?,
        };
        Some(fitting(names.into_iter().map(Value::Str)))
    }

    /// Forgets every registration not renewed within the pruning timeout
    /// (a fleet's age out by themselves).
    pub(crate) fn prune(&self) {
        if let Table::Local(table) = &self.table {
            table.prune();
        }
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

    impl Registry {
        fn len(&self) -> usize {
            match &self.table {
                Table::Local(table) => table.len(),
                Table::Fleet(_) => unreachable!("the tests keep their own registrations"),
            }
        }
    }

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
        assert_eq!(registry.len(), MAX_REGISTRATIONS);
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
        assert_eq!(registry.len(), 0);
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
