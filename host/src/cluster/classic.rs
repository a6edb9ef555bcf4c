//! Classic RPyC servers (`ThreadedServer(auto_register=True)`, `serve
//! --register`) registered through a fleet registry: kept in the fleet's
//! bucket beside the hosts, so that every registry of the fleet finds them.

use std::net::IpAddr;

use super::{ClassicRecord, ClusterError, Fleet};

impl Fleet {
    /// Records `record` (or renews it) for every registry of the fleet.
    pub async fn register_classic(&self, record: &ClassicRecord) -> Result<(), ClusterError> {
        let value = serde_json::to_vec(record).map_err(ClusterError::nats)?;
        let key = ClassicRecord::key(record.ip, record.port);
        let store = self.bucket().await?;
        store
            .put(key, value.into())
            .await
            .map_err(ClusterError::nats)?;
        Ok(())
    }

    /// Forgets the registration of the server at `ip` and `port`.
    pub async fn unregister_classic(&self, ip: IpAddr, port: u16) -> Result<(), ClusterError> {
        let store = self.bucket().await?;
        store
            .delete(ClassicRecord::key(ip, port))
            .await
            .map_err(ClusterError::nats)
    }
}
