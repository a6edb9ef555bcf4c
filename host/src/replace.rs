//! Hot deploy: a served component replaced while it is served. Connections
//! accepted after the replacement get the new version; connections already
//! open keep the instance they have, so no call is dropped. Components
//! served from files are kept in step with them ([`keep_current`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::registry::Registrar;
use crate::server::ServiceFactory;
use crate::wasm::{Grants, LoadError, Runtime, ServiceComponent, ServiceLimits, WasmService};

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

/// How components are made from their files: in which runtime, with which
/// names, grants and limits, and whether each is shared.
#[derive(Clone)]
pub struct Loader {
    runtime: Runtime,
    aliases: Vec<String>,
    grants: Grants,
    limits: ServiceLimits,
    shared: bool,
}

impl Loader {
    /// Loads into `runtime`; each component is named as it declares (or
    /// after its file), reaches nothing outside its memory and runs under
    /// the runtime's limits, unless told otherwise.
    pub fn new(runtime: Runtime) -> Self {
        Loader {
            limits: ServiceLimits::of(&runtime),
            runtime,
            aliases: Vec::new(),
            grants: Grants::default(),
            shared: false,
        }
    }

    /// Names every component `aliases` (when not empty).
    pub fn with_aliases(self, aliases: Vec<String>) -> Self {
        Loader { aliases, ..self }
    }

    /// Grants every component `grants`.
    pub fn with_grants(self, grants: Grants) -> Self {
        Loader { grants, ..self }
    }

    /// Runs every component's instances under `limits`.
    pub fn with_limits(self, limits: ServiceLimits) -> Self {
        Loader { limits, ..self }
    }

    /// Serves each component from one instance shared by every connection
    /// (see [`ServiceComponent::shared`]) when `shared` is true.
    pub fn with_shared(self, shared: bool) -> Self {
        Loader { shared, ..self }
    }

    /// The component in `file`.
    pub async fn load(&self, file: &Path) -> Result<ServiceComponent, LoadError> {
        let component = ServiceComponent::load(&self.runtime, file).await?;
        Ok(self.dress(component))
    }

    /// The component of `bytes`, read from `file`, whose SHA-256 is
    /// `digest`.
    async fn load_read(
        &self,
        file: &Path,
        bytes: &[u8],
        digest: [u8; 32],
    ) -> Result<ServiceComponent, LoadError> {
        let component =
            ServiceComponent::from_file_bytes(&self.runtime, file, bytes, Some(digest)).await?;
        Ok(self.dress(component))
    }

    /// `component` with the names, grants and limits this loader gives.
    fn dress(&self, component: ServiceComponent) -> ServiceComponent {
        let dressed = component
            .with_aliases(&self.aliases)
            .with_grants(self.grants.clone())
            .with_limits(self.limits.clone());
        if self.shared {
            dressed.shared()
        } else {
            dressed
        }
    }
}

/// Turns a watched source file into the file of its component (a build,
/// run off the async threads); why not, when it cannot.
pub type Build = Arc<dyn Fn(&Path) -> Result<PathBuf, String> + Send + Sync>;

/// A component served from a file, in `slot`, on `port`, made by `loader`.
pub struct Watched {
    file: WatchedFile,
    slot: Replaceable,
    port: u16,
    loader: Loader,
    build: Option<Build>,
}

impl Watched {
    /// The component of `file`, served from `slot` on `port`, made again by
    /// `loader` when the file changes.
    pub fn new(file: WatchedFile, slot: Replaceable, port: u16, loader: Loader) -> Self {
        Watched {
            file,
            slot,
            port,
            loader,
            build: None,
        }
    }

    /// Watches a source file instead: `build` makes the component's file
    /// from it (`wasm-rpyc serve service.py` builds the module again).
    pub fn built_by(self, build: Build) -> Self {
        Watched {
            build: Some(build),
            ..self
        }
    }

    /// The component's file: the watched file, or what it builds into.
    async fn component_file(&self) -> Result<PathBuf, String> {
        let source = self.file.path().to_owned();
        let Some(build) = &self.build else {
            return Ok(source);
        };
        let build = Arc::clone(build);
        tokio::task::spawn_blocking(move || build(&source))
            .await
            .map_err(|error| error.to_string())?
    }
}

/// Replaces served components from their files until `stop`: each one whose
/// file changed, looked at every `watch` (if any), and every one when
/// `reload` is notified (SIGHUP, for `serve`). A file that does not load
/// leaves the version served as it is. A service whose names change is
/// registered anew with `registrar`.
pub async fn keep_current(
    mut files: Vec<Watched>,
    watch: Option<Duration>,
    reload: Arc<Notify>,
    registrar: Option<Registrar>,
    stop: CancellationToken,
) {
    let mut ticks = watch.map(tokio::time::interval);
    loop {
        let every = tokio::select! {
            () = stop.cancelled() => return,
            () = reload.notified() => true,
            () = next_tick(&mut ticks) => false,
        };
        for watched in &mut files {
            // Both are asked, so that a reload is not seen as a change later.
            let changed = watched.file.changed();
            if changed || every {
                replace_from_file(watched, registrar.as_ref()).await;
            }
        }
    }
}

/// Completes at the next tick; never without ticks.
async fn next_tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => drop(ticks.tick().await),
        None => std::future::pending().await,
    }
}

/// Serves the component of `watched`'s file from its slot, if it builds and
/// loads and its bytes are not those served already.
async fn replace_from_file(watched: &Watched, registrar: Option<&Registrar>) {
    let path = match watched.component_file().await {
        Ok(path) => path,
        Err(error) => {
            let source = watched.file.path().display();
            tracing::warn!(%error, %source, "not rebuilt: still serving the previous version");
            return;
        }
    };
    let path = path.as_path();
    let served = watched.slot.current();
    let (bytes, digest) = match read_hashed(path).await {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(%error, file = %path.display(), "not replaced: still serving the previous version");
            return;
        }
    };
    if &digest == served.digest() {
        tracing::info!(service = %served.aliases()[0], file = %path.display(), "unchanged: not recompiled");
        return;
    }
    let component = match watched.loader.load_read(path, &bytes, digest).await {
        Ok(component) => component,
        Err(error) => {
            tracing::warn!(%error, file = %path.display(), "not replaced: still serving the previous version");
            return;
        }
    };
    let before = watched.slot.current().aliases().to_vec();
    let aliases = component.aliases().to_vec();
    watched.slot.replace(component.clone());
    // Said once it is true: a client that reads the line and connects
    // gets the new version.
    tracing::info!(service = %aliases[0], file = %path.display(), methods = ?component.methods(), "replaced: new connections get the new version");
    let Some(registrar) = registrar.filter(|_| aliases != before) else {
        return;
    };
    let registered = async {
        registrar.unregister(watched.port).await?;
        registrar.register(&aliases, watched.port).await
    };
    if let Err(error) = registered.await {
        tracing::warn!(%error, service = %aliases[0], "not registered under its new names");
    }
}

/// The bytes of the file at `path` and their SHA-256 (off the async
/// threads: a large component takes milliseconds to read and hash).
async fn read_hashed(path: &Path) -> std::io::Result<(Vec<u8>, [u8; 32])> {
    let path = path.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(path)?;
        let digest = Sha256::digest(&bytes).into();
        Ok((bytes, digest))
    });
    read.await.map_err(std::io::Error::other)?
}
