//! The library's error type.

use std::time::Duration;

use crate::cluster::ClusterError;
use crate::exception::Exception;
use crate::protocol::FrameError;
use crate::registry::RegistryError;
use crate::value::ValueError;

/// Why a call, a connect or a connection failed. Each variant says whose
/// fault it is: the remote code's, the peer's, the network's or the caller's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote side raised an exception (its code's doing).
    #[error("remote exception: {0}")]
    Remote(Exception),
    /// No reply came within the call timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection is closed, or closed while the call waited.
    #[error("the connection is closed")]
    Closed,
    /// This side already has as many calls in flight as it allows.
    #[error("too many calls in flight (the limit is {0})")]
    TooManyInFlight(usize),
    /// An argument could not be sent: this side already lends the peer as
    /// many objects as it may, or the argument is an object of another
    /// connection's peer.
    #[error("cannot lend an argument: {0}")]
    Lend(Exception),
    /// The object called (named here) belongs to another connection's peer.
    #[error("{0} belongs to another connection and cannot be used on this one")]
    OtherConnection(String),
    /// A message could not be framed (too large) or the peer sent bytes that
    /// are not a message.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The result did not have the type the caller asked for.
    #[error("unexpected result: {0}")]
    UnexpectedResult(#[from] ValueError),
    /// The network failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A registry did not say where a service is.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A fleet did not say where a service is.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// [`deploy`](crate::deploy::deploy) reached a service that takes no
    /// components (named here).
    #[error("{0} takes no components; {hint}", hint = crate::well_known::where_to_deploy())]
    NotDeployService(String),
}

impl Error {
    /// The remote exception, if that is what this error is.
    pub fn exception(&self) -> Option<&Exception> {
        match self {
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }
}
