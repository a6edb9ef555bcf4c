//! RPyC's registry: services register their names and ports, clients ask
//! where a name is served (`rpyc.discover`, `rpyc.connect_by_service`).
//! [`Registry`] is the server, [`Registrar`] the client.
//!
//! The protocol of `rpyc/utils/registry.py`: a request is one brine tuple
//! `("RPYC", command, args)`, a reply one brine value; over UDP one datagram
//! each way, over TCP one request per connection. A request that is not
//! one (bad brine, another magic, an unknown command, wrong arguments) gets
//! no reply, as RPyC's registry does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::protocol::rpyc::brine;
use crate::value::Value;

/// RPyC's registry port.
pub const REGISTRY_PORT: u16 = 18811;

/// How long a registration lasts without being renewed (RPyC's default;
/// services re-register every 60 s).
pub const DEFAULT_PRUNING_TIMEOUT: Duration = Duration::from_secs(240);

/// The largest request read, as RPyC's registry reads: a datagram or a TCP
/// request past it is cut, so it decodes as nothing.
pub const MAX_REQUEST: usize = 1500;

/// How long a TCP client may take to send its request.
const TCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The registered services and the rules for answering.
#[derive(Debug)]
pub struct Registry {
    /// Name -> (address -> when it was last registered).
    services: Mutex<HashMap<String, HashMap<(IpAddr, u16), Instant>>>,
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
                self.register(&names?, (source, u16::try_from(*port).ok()?))
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

    fn services(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<(IpAddr, u16), Instant>>> {
        self.services.lock().expect("registry poisoned")
    }

    fn register(&self, names: &[&str], addr: (IpAddr, u16)) -> Value {
        let now = Instant::now();
        let mut services = self.services();
        for name in names {
            services
                .entry(name.to_uppercase())
                .or_default()
                .insert(addr, now);
        }
        tracing::info!(?names, ip = %addr.0, port = addr.1, "registered");
        Value::Str("OK".into())
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

    /// Where `name` is served, oldest registration first; stale ones go.
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
        found.sort();
        Value::Tuple(
            found
                .into_iter()
                .map(|(_, (ip, port))| {
                    Value::Tuple(vec![Value::Str(ip.to_string()), Value::Int(port.into())])
                })
                .collect(),
        )
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
        Value::Tuple(
            names
                .into_iter()
                .map(|name| Value::Str(name.clone()))
                .collect(),
        )
    }

    /// Answers datagrams on `socket` until the task is dropped.
    pub async fn serve_udp(self: Arc<Self>, socket: UdpSocket) {
        let mut buf = [0u8; MAX_REQUEST];
        loop {
            let (len, from) = match socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(%error, "registry datagram not received");
                    continue;
                }
            };
            if let Some(reply) = self.answer(&buf[..len], from.ip()) {
                if let Err(error) = socket.send_to(&reply, from).await {
                    tracing::debug!(%error, %from, "registry reply not sent");
                }
            }
        }
    }

    /// Answers one request per connection on `listener` until the task is
    /// dropped.
    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, from)) => {
                    tokio::spawn(Arc::clone(&self).answer_tcp(stream, from));
                }
                Err(error) => tracing::warn!(%error, "registry connection not accepted"),
            }
        }
    }

    async fn answer_tcp(self: Arc<Self>, mut stream: TcpStream, from: SocketAddr) {
        let mut buf = [0u8; MAX_REQUEST];
        let read = tokio::time::timeout(TCP_REQUEST_TIMEOUT, stream.read(&mut buf)).await;
        let Ok(Ok(len)) = read else {
            return;
        };
        if let Some(reply) = self.answer(&buf[..len], from.ip()) {
            let _ = stream.write_all(&reply).await;
        }
    }
}

fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// How long a registrar waits for a registry's answer (RPyC's client timeout).
pub const REGISTRAR_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a served service renews its registration (RPyC's interval).
pub const REREGISTER_INTERVAL: Duration = Duration::from_secs(60);

/// The broadcast address a UDP registrar uses by default.
pub const BROADCAST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);

/// A registry's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way (a broadcast address reaches every registry on
    /// the network).
    Udp,
    /// One request per connection.
    Tcp,
}

/// Why a registry did not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No registry answered in time.
    #[error("no registry at {0} answered")]
    NoAnswer(SocketAddr),
    /// The registry's answer was not the one expected.
    #[error("the registry at {addr} answered {answer}")]
    Refused {
        /// The registry.
        addr: SocketAddr,
        /// What it said.
        answer: String,
    },
    /// The registry knows no server of the service.
    #[error("the registry at {addr} knows no server of {name}")]
    NotServed {
        /// The registry.
        addr: SocketAddr,
        /// The service's name.
        name: String,
    },
    /// The request could not be sent.
    #[error("cannot reach the registry at {addr}: {source}")]
    Io {
        /// The registry.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A client of a registry (RPyC's `UDPRegistryClient`, `TCPRegistryClient`).
#[derive(Clone, Debug)]
pub struct Registrar {
    transport: Transport,
    addr: SocketAddr,
    timeout: Duration,
}

impl Registrar {
    /// A client of the registry at `addr` over `transport`.
    pub fn new(transport: Transport, addr: impl Into<SocketAddr>) -> Self {
        Registrar {
            transport,
            addr: addr.into(),
            timeout: REGISTRAR_TIMEOUT,
        }
    }

    /// Registers `aliases` as served on `port` of this machine (the registry
    /// records the address the request comes from).
    pub async fn register(&self, aliases: &[String], port: u16) -> Result<(), RegistryError> {
        let names = aliases.iter().map(|a| Value::Str(a.clone())).collect();
        let args = vec![Value::Tuple(names), Value::Int(port.into())];
        match self.ask("REGISTER", args).await? {
            Value::Str(ok) if ok == "OK" => Ok(()),
            other => Err(self.refused(&other)),
        }
    }

    /// Removes this machine's registrations on `port`. Over UDP the answer is
    /// not awaited, as RPyC's client does not.
    pub async fn unregister(&self, port: u16) -> Result<(), RegistryError> {
        let request = request("UNREGISTER", vec![Value::Int(port.into())]);
        let sent = match self.transport {
            Transport::Udp => match self.udp_socket().await {
                Ok(socket) => socket.send_to(&request, self.addr).await.map(drop),
                Err(error) => Err(error),
            },
            Transport::Tcp => self.tcp(&request).await.map(drop),
        };
        sent.map_err(|source| self.io(source))
    }

    /// Where `name` is served, oldest registration first; an error when
    /// nowhere (RPyC's `discover`).
    pub async fn discover(&self, name: &str) -> Result<Vec<SocketAddr>, RegistryError> {
        let answer = self.ask("QUERY", vec![Value::Str(name.to_owned())]).await?;
        let Value::Tuple(found) = &answer else {
            return Err(self.refused(&answer));
        };
        found
            .iter()
            .map(|entry| match entry {
                Value::Tuple(pair) => match pair.as_slice() {
                    [Value::Str(ip), Value::Int(port)] => Some(SocketAddr::new(
                        ip.parse().ok()?,
                        u16::try_from(*port).ok()?,
                    )),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.refused(&answer))
            .and_then(|found| match found.is_empty() {
                true => Err(RegistryError::NotServed {
                    addr: self.addr,
                    name: name.to_owned(),
                }),
                false => Ok(found),
            })
    }

    /// Sends one request and decodes the answer.
    async fn ask(&self, command: &str, args: Vec<Value>) -> Result<Value, RegistryError> {
        let request = request(command, args);
        let exchange = async {
            match self.transport {
                Transport::Udp => self.udp(&request).await,
                Transport::Tcp => self.tcp(&request).await,
            }
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| RegistryError::NoAnswer(self.addr))?
            .map_err(|source| self.io(source))?;
        brine::decode(&answer).map_err(|e| RegistryError::Refused {
            addr: self.addr,
            answer: e.to_string(),
        })
    }

    async fn udp_socket(&self) -> std::io::Result<UdpSocket> {
        let any: SocketAddr = match self.addr {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any).await?;
        if self.addr.ip() == BROADCAST {
            socket.set_broadcast(true)?;
        }
        Ok(socket)
    }

    /// The first answer from the registry's port (a broadcast may reach
    /// several registries; the first wins, as in RPyC).
    async fn udp(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let socket = self.udp_socket().await?;
        socket.send_to(request, self.addr).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (len, from) = socket.recv_from(&mut buf).await?;
            if from.port() == self.addr.port() {
                buf.truncate(len);
                return Ok(buf);
            }
        }
    }

    async fn tcp(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(answer)
    }

    fn refused(&self, answer: &Value) -> RegistryError {
        RegistryError::Refused {
            addr: self.addr,
            answer: answer.to_string(),
        }
    }

    fn io(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            addr: self.addr,
            source,
        }
    }
}

/// A registry request: `("RPYC", command, args)` in brine.
fn request(command: &str, args: Vec<Value>) -> Vec<u8> {
    let message = Value::Tuple(vec![
        Value::Str("RPYC".into()),
        Value::Str(command.into()),
        Value::Tuple(args),
    ]);
    let mut out = Vec::new();
    brine::encode(&message, &mut out).expect("strings and ints are brine");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(registry: &Registry, from: &str, command: &str, args: Vec<Value>) -> Option<Value> {
        let reply = registry.answer(&request(command, args), from.parse().unwrap())?;
        Some(brine::decode(&reply).unwrap())
    }

    fn names(names: &[&str]) -> Value {
        Value::Tuple(names.iter().map(|n| Value::Str((*n).into())).collect())
    }

    fn addr(ip: &str, port: i128) -> Value {
        Value::Tuple(vec![Value::Str(ip.into()), Value::Int(port)])
    }

    #[test]
    fn registrations_are_found_by_any_alias_oldest_first_and_removed() {
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
                addr("10.0.0.1", 18861),
                addr("10.0.0.2", 18861)
            ]))
        );
        assert_eq!(
            query("MATH"),
            Some(Value::Tuple(vec![addr("10.0.0.1", 18861)]))
        );
        assert_eq!(query("nothing"), Some(Value::Tuple(Vec::new())));
        assert_eq!(
            ask(
                &registry,
                "10.0.0.9",
                "LIST",
                vec![Value::Tuple(vec![Value::None])]
            ),
            Some(names(&["CALC", "MATH"]))
        );
        assert_eq!(
            ask(&registry, "10.0.0.9", "LIST", vec![names(&["10.0.0.2"])]),
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
        assert_eq!(
            ask(
                &registry,
                "10.0.0.9",
                "LIST",
                vec![Value::Tuple(vec![Value::None])]
            ),
            Some(Value::None)
        );
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
