//! Hot deploy: a served component replaced while it is served. Connections
//! accepted after the replacement get the new version; connections already
//! open keep the instance they have, so no call is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::server::ServiceFactory;
use crate::wasm::{ServiceComponent, WasmService};

/// A served component that can be replaced: serve it with
/// [`Server::bind`](crate::Server::bind), then [`Replaceable::replace`] it.
/// Clones are the same slot.
#[derive(Clone)]
pub struct Replaceable {
    current: Arc<watch::Sender<ServiceComponent>>,
}

impl Replaceable {
    /// A slot serving `component` until it is replaced.
    pub fn new(component: ServiceComponent) -> Self {
        Replaceable {
            current: Arc::new(watch::Sender::new(component)),
        }
    }

    /// The version new connections get.
    pub fn current(&self) -> ServiceComponent {
        self.current.borrow().clone()
    }

    /// Serves `component` to every connection accepted from now on.
    pub fn replace(&self, component: ServiceComponent) {
        self.current.send_replace(component);
    }
}

impl ServiceFactory for Replaceable {
    type Service = WasmService;

    fn name(&self) -> String {
        self.current.borrow().name()
    }

    fn new_service(&self) -> WasmService {
        self.current.borrow().instance()
    }
}

/// A component file, watched for changes by its modification time and size.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl WatchedFile {
    /// Watches `path`, as it is now.
    pub fn new(path: &Path) -> Self {
        WatchedFile {
            path: path.to_owned(),
            seen: stamp(path),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file changed since it was last looked at (a file that
    /// is missing has not: it is being replaced, or gone for now).
    pub fn changed(&mut self) -> bool {
        match stamp(&self.path) {
            Some(now) if Some(now) != self.seen => {
                self.seen = Some(now);
                true
            }
            _ => false,
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
