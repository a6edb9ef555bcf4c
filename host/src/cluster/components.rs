//! Components deployed to the fleet: each stored once in the fleet's object
//! store, by the SHA-256 of its bytes, and named by a deployment record in
//! the fleet's bucket.

use std::time::Duration;

use async_nats::jetstream::{object_store, stream};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::record::DEPLOY_PREFIX;
use super::{ClusterError, DeploymentRecord, Fleet};

/// The most the fleet's object store keeps: every revision of every
/// deployed component (a Python component is about 18 MiB).
const MAX_STORE_BYTES: i64 = 4 << 30;

/// The most deployments one read of the bucket returns.
const MAX_DEPLOYMENTS: usize = 1000;

/// How long listing the deployments may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long fetching a component's bytes may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The SHA-256 of `bytes`, in hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes).into())
}

/// A SHA-256 digest in hex, as the fleet names components.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fleet {
    /// The fleet's object store, made if it is missing.
    async fn components(&self) -> Result<object_store::ObjectStore, ClusterError> {
        let name = format!("{}-components", self.config.bucket());
        if let Ok(store) = self.jetstream.get_object_store(&name).await {
            return Ok(store);
        }
        let config = object_store::Config {
            bucket: name.clone(),
            description: Some("wasm-rpyc: components deployed to the fleet".into()),
            max_bytes: MAX_STORE_BYTES,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let made = self.jetstream.create_object_store(config).await;
        self.jetstream
            .get_object_store(&name)
            .await
            .map_err(|error| {
                let made = made.err().map(|e| format!(" ({e})")).unwrap_or_default();
                ClusterError::nats(format!(
                    "cannot make the object store {name}: {error}{made}"
                ))
            })
    }

    /// Stores `bytes` under their digest (once: bytes stored before are not
    /// sent again), and returns the digest.
    pub async fn store_component(&self, bytes: &[u8]) -> Result<String, ClusterError> {
        let digest = digest_hex(bytes);
        let store = self.components().await?;
        if store.info(&digest).await.is_ok_and(|info| !info.deleted) {
            return Ok(digest);
        }
        let mut reader = bytes;
        store
            .put(digest.as_str(), &mut reader)
            .await
            .map_err(ClusterError::nats)?;
        Ok(digest)
    }

    /// The bytes stored under `digest`, if they are at most `max_size` bytes
    /// and hash to it, and their SHA-256 (so that they are not hashed again).
    pub async fn fetch_component(
        &self,
        digest: &str,
        max_size: usize,
    ) -> Result<(Vec<u8>, [u8; 32]), ClusterError> {
        let store = self.components().await?;
        let info = store.info(digest).await.map_err(ClusterError::nats)?;
        if info.size > max_size {
            return Err(ClusterError::Component(format!(
                "the component is {} bytes; this host takes components of at most {max_size} bytes",
                info.size
            )));
        }
        let mut bytes = Vec::with_capacity(info.size);
        let read = async {
            let mut object = store.get(digest).await.map_err(ClusterError::nats)?;
            // One byte past the size read: an object that grew is refused.
            (&mut object)
                .take(max_size as u64 + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(ClusterError::nats)
        };
        tokio::time::timeout(FETCH_TIMEOUT, read)
            .await
            .map_err(|_| {
                ClusterError::Nats(format!(
                    "the component took over {FETCH_TIMEOUT:?} to fetch"
                ))
            })??;
        let hashed: [u8; 32] = Sha256::digest(&bytes).into();
        if bytes.len() > max_size || hex(&hashed) != digest {
            return Err(ClusterError::Component(format!(
                "the component stored as {digest} does not hash to its name"
            )));
        }
        Ok((bytes, hashed))
    }

    /// The deployment named `name`, if there is one.
    pub async fn deployment(&self, name: &str) -> Result<Option<DeploymentRecord>, ClusterError> {
        let store = self.bucket().await?;
        let Some(value) = store
            .get(DeploymentRecord::key(name))
            .await
            .map_err(ClusterError::nats)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(ClusterError::nats)
    }

    /// Every deployment of the fleet.
    pub async fn deployments(&self) -> Result<Vec<DeploymentRecord>, ClusterError> {
        let store = self.bucket().await?;
        let listing = async {
            let keys = store.keys().await.map_err(ClusterError::nats)?;
            let deployments = keys
                .filter_map(|key| async move { key.ok().filter(|k| k.starts_with(DEPLOY_PREFIX)) });
            Ok::<Vec<String>, ClusterError>(deployments.take(MAX_DEPLOYMENTS).collect().await)
        };
        let keys = tokio::time::timeout(LIST_TIMEOUT, listing)
            .await
            .map_err(|_| ClusterError::Nats(format!("listing took over {LIST_TIMEOUT:?}")))??;
        let mut deployments = Vec::new();
        for key in keys {
            let Some(value) = store.get(&key).await.map_err(ClusterError::nats)? else {
                continue;
            };
            match serde_json::from_slice(&value) {
                Ok(record) => deployments.push(record),
                Err(error) => tracing::debug!(%key, %error, "not a deployment"),
            }
        }
        Ok(deployments)
    }

    /// Records `deployment`, replacing any of its name.
    pub async fn set_deployment(&self, deployment: &DeploymentRecord) -> Result<(), ClusterError> {
        let store = self.bucket().await?;
        let value = serde_json::to_vec(deployment).map_err(ClusterError::nats)?;
        store
            .put(DeploymentRecord::key(&deployment.name), value.into())
            .await
            .map_err(ClusterError::nats)?;
        Ok(())
    }

    /// Removes the deployment `name`: hosts stop serving it.
    pub async fn remove_deployment(&self, name: &str) -> Result<(), ClusterError> {
        let store = self.bucket().await?;
        store
            .delete(DeploymentRecord::key(name))
            .await
            .map_err(ClusterError::nats)
    }
}
