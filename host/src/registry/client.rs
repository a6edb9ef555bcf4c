//! [`Registrar`]: a client of a registry (RPyC's `UDPRegistryClient`,
//! `TCPRegistryClient`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::{Transport, request};
use crate::protocol::rpyc::brine;
use crate::value::Value;

/// How long a registrar waits for a registry's answer (RPyC's client timeout).
pub const REGISTRAR_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a served service renews its registration (RPyC's interval).
pub const REREGISTER_INTERVAL: Duration = Duration::from_secs(60);

/// How soon a registration that failed is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The broadcast address a UDP registrar uses by default.
pub const BROADCAST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);

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
    /// The address requests are sent from, if not the system's choice.
    local: Option<IpAddr>,
}

impl Registrar {
    /// A client of the registry at `addr` over `transport`.
    pub fn new(transport: Transport, addr: impl Into<SocketAddr>) -> Self {
        Registrar {
            transport,
            addr: addr.into(),
            timeout: REGISTRAR_TIMEOUT,
            local: None,
        }
    }

    /// Sends requests from `ip`, the address services are served on, so that
    /// the registry records that address (as RPyC's servers do); an
    /// unspecified address (`0.0.0.0`) leaves the choice to the system.
    pub fn sending_from(self, ip: IpAddr) -> Self {
        Registrar {
            local: (!ip.is_unspecified()).then_some(ip),
            ..self
        }
    }

    /// Registers `aliases` as served on `port` of this machine (the registry
    /// records the address the request comes from: see
    /// [`Registrar::sending_from`]).
    pub async fn register(&self, aliases: &[String], port: u16) -> Result<(), RegistryError> {
        let names = aliases.iter().map(|a| Value::Str(a.clone())).collect();
        let args = vec![Value::Tuple(names), Value::Int(port.into())];
        match self.ask("REGISTER", args).await? {
            Value::Str(ok) if ok == "OK" => Ok(()),
            other => Err(self.refused(&other)),
        }
    }

    /// Keeps a service registered (under the names `aliases` gives, read at
    /// every renewal) as served on `port`, renewed every
    /// [`REREGISTER_INTERVAL`] and retried every second after a failure,
    /// until `stop`; then unregisters it.
    pub async fn keep_registered(
        &self,
        aliases: impl Fn() -> Vec<String>,
        port: u16,
        stop: CancellationToken,
    ) {
        loop {
            let names = aliases();
            let wait = match self.register(&names, port).await {
                Ok(()) => REREGISTER_INTERVAL,
                Err(error) => {
                    tracing::warn!(%error, service = %names[0], "not registered");
                    if let Some(metrics) = crate::metrics::recording() {
                        metrics.registration_failed();
                    }
                    RETRY_INTERVAL
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(error) = self.unregister(port).await {
            tracing::warn!(%error, port, "not unregistered");
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

    /// The address requests are sent from: the one asked for, else any of
    /// the registry's family.
    fn local_addr(&self) -> SocketAddr {
        let any = match self.addr {
            SocketAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        SocketAddr::new(self.local.unwrap_or(any), 0)
    }

    async fn udp_socket(&self) -> std::io::Result<UdpSocket> {
        let socket = UdpSocket::bind(self.local_addr()).await?;
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
        let socket = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if self.local.is_some() {
            socket.bind(self.local_addr())?;
        }
        let mut stream = socket.connect(self.addr).await?;
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
