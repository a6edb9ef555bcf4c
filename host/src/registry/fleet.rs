//! A fleet registry's registrations: answered from the fleet's view (see
//! [`crate::cluster`]), so that every registry of the fleet gives the same
//! answers; REGISTER and UNREGISTER from classic servers are written to the
//! fleet, a bounded number at a time.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use super::MAX_REGISTRATIONS;
use crate::cluster::{ClassicRecord, Fleet, View};

/// How many REGISTER and UNREGISTER requests may wait to be written to the
/// fleet; past it they get no reply, as from a registry that is not there.
pub const MAX_PENDING_WRITES: usize = 1024;

/// What a registry writes to the fleet.
enum Write {
    Register(ClassicRecord),
    Unregister(IpAddr, u16),
}

/// The registrations of the fleet, as one registry sees and changes them.
#[derive(Debug)]
pub(super) struct FleetTable {
    view: View,
    writes: mpsc::Sender<Write>,
    pruning_timeout: Duration,
}

impl FleetTable {
    /// The registrations `view` sees; classic servers count as gone after
    /// `pruning_timeout`. Its writes run on a task of their own, which ends
    /// when the table is dropped.
    pub(super) fn new(view: View, pruning_timeout: Duration) -> Self {
        let (writes, pending) = mpsc::channel(MAX_PENDING_WRITES);
        tokio::spawn(apply(view.fleet().clone(), pending));
        FleetTable {
            view,
            writes,
            pruning_timeout,
        }
    }

    /// Registers `addr` under `names`; `false` when the fleet holds
    /// [`MAX_REGISTRATIONS`] classic registrations (a peer could otherwise
    /// fill the fleet's bucket, which the hosts' heartbeats need), when the
    /// view is not current, or when too many writes wait.
    pub(super) fn register(&self, names: &[&str], (ip, port): (IpAddr, u16)) -> bool {
        if !self.view.has_room_for_classic(ip, port, MAX_REGISTRATIONS) {
            return false;
        }
        let record = ClassicRecord {
            aliases: names.iter().map(|name| name.to_uppercase()).collect(),
            ip,
            port,
        };
        self.writes.try_send(Write::Register(record)).is_ok()
    }

    /// Forgets the registration of `addr`; `false` when too many writes
    /// wait.
    pub(super) fn unregister(&self, (ip, port): (IpAddr, u16)) -> bool {
        self.writes.try_send(Write::Unregister(ip, port)).is_ok()
    }

    /// Where `name` is served (see [`View::find`]); `None` when the view is
    /// not current.
    pub(super) fn query(&self, name: &str) -> Option<Vec<(IpAddr, u16)>> {
        let found = self.view.find(name, self.pruning_timeout)?;
        Some(
            found
                .into_iter()
                .map(|found| (found.address.ip(), found.address.port()))
                .collect(),
        )
    }

    /// Every name served (only on `host`, if given); `None` when the view is
    /// not current.
    pub(super) fn names(&self, host: Option<&str>) -> Option<Vec<String>> {
        self.view.names(host, self.pruning_timeout)
    }
}

/// Writes what `pending` brings to `fleet`, in order, until the table is
/// dropped.
async fn apply(fleet: Fleet, mut pending: mpsc::Receiver<Write>) {
    while let Some(write) = pending.recv().await {
        let (written, ip, port) = match write {
            Write::Register(record) => (
                fleet.register_classic(&record).await,
                record.ip,
                record.port,
            ),
            Write::Unregister(ip, port) => (fleet.unregister_classic(ip, port).await, ip, port),
        };
        match written {
            Ok(()) => tracing::debug!(%ip, port, "written to the fleet"),
            Err(error) => tracing::warn!(%ip, port, %error, "not written to the fleet"),
        }
    }
}
