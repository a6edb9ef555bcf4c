//! The compile cache: components compiled once are kept on disk, keyed as
//! wasmtime keys them (their bytes, the engine's configuration, wasmtime's
//! version), so a host that restarts or reloads an unchanged component
//! loads it in milliseconds instead of compiling it for seconds.
//!
//! What the cache holds is native code the host runs: its directory must be
//! the host's user's alone. It is created private (0700 on Unix), and one
//! that other users may write to is refused.

use std::io;
use std::path::{Path, PathBuf};

use wasmtime::{Cache, CacheConfig};

/// How many bytes of compiled code the cache keeps by default; past it,
/// wasmtime's cleanup deletes the entries used least recently.
pub const DEFAULT_COMPILE_CACHE_BYTES: u64 = 1 << 30;

/// How long another host's cleanup keeps this one from cleaning: each host
/// cleans after its own compiles (see `release_own_cleanup_lock`).
const CLEANUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The on-disk cache of compiled components of one engine.
#[derive(Clone, Debug)]
pub struct CompileCache {
    cache: Cache,
}

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory cannot be made or read.
    #[error("the compile cache {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Other users may write to the directory: what it holds would run.
    #[error(
        "the compile cache {} is open to other users (mode {mode:o}): make it the host's user's \
         alone (chmod 700) or choose another"
    , path.display())]
    NotPrivate {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// wasmtime refused the cache's configuration.
    #[error("the compile cache {}: {source}", path.display())]
    Config {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: wasmtime::Error,
    },
}

impl CompileCache {
    /// The cache in `directory` (made absolute; created private if missing),
    /// keeping about `max_bytes` of compiled code.
    pub fn open(directory: &Path, max_bytes: u64) -> Result<Self, CacheError> {
        let directory_error = |source| CacheError::Directory {
            path: directory.to_owned(),
            source,
        };
        let directory = std::path::absolute(directory).map_err(directory_error)?;
        create_private(&directory).map_err(directory_error)?;
        check_private(&directory)?;
        let mut config = CacheConfig::new();
        config
            .with_directory(&directory)
            .with_files_total_size_soft_limit(max_bytes)
            .with_cleanup_interval(CLEANUP_INTERVAL);
        let cache = Cache::new(config).map_err(|source| CacheError::Config {
            path: directory.clone(),
            source,
        })?;
        Ok(CompileCache { cache })
    }

    /// The per-user cache directory of this platform (`~/.cache/wasm-rpyc`
    /// on Linux), if the platform names one.
    pub fn default_directory() -> Option<PathBuf> {
        directories_next::ProjectDirs::from("", "", "wasm-rpyc")
            .map(|dirs| dirs.cache_dir().to_owned())
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        self.cache.directory()
    }

    /// How many compiles the cache has answered so far.
    pub fn hits(&self) -> usize {
        self.cache.cache_hits()
    }

    /// How many compiles it could not answer (and has stored since).
    pub fn misses(&self) -> usize {
        self.cache.cache_misses()
    }

    pub(crate) fn wasmtime(&self) -> Cache {
        self.cache.clone()
    }

    /// Removes this process's own cleanup lock, before a compile that may
    /// store. wasmtime's cleanup takes its turn by creating
    /// `.cleanup.wip-<pid>` and leaves it as the proof of a recent cleanup;
    /// it only ever deletes other processes' expired locks, so a process's
    /// next cleanup (after a compile of seconds, say) finds its own old
    /// lock, logs "Failed to create lock file ... File exists" and skips the
    /// cleanup (the size bound then holds only while another process
    /// cleans). Without it, the store that ends the compile cleans, unless
    /// another process has just done so.
    pub(crate) fn release_own_cleanup_lock(&self) {
        let lock = self
            .directory()
            .join(format!(".cleanup.wip-{}", std::process::id()));
        let _ = std::fs::remove_file(lock);
    }
}

/// Creates `directory` and its missing parents, the last private.
fn create_private(directory: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory)
}

/// Refuses a directory other users may write to (on Unix; elsewhere the
/// per-user directories are private by default).
fn check_private(directory: &Path) -> Result<(), CacheError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(directory).map_err(|source| CacheError::Directory {
            path: directory.to_owned(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(CacheError::NotPrivate {
                path: directory.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("wasm-rpyc-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        path
    }

    #[test]
    fn the_directory_is_created_private() {
        let path = scratch("private").join("nested");
        let cache = CompileCache::open(&path, DEFAULT_COMPILE_CACHE_BYTES).unwrap();
        assert!(cache.directory().is_absolute());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        assert_eq!((cache.hits(), cache.misses()), (0, 0));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A component of its own (the number tells them apart), so each
    /// compile misses the cache and stores.
    fn component(number: u32) -> Vec<u8> {
        wat::parse_str(format!(
            "(component (core module (func (export \"f{number}\"))))"
        ))
        .unwrap()
    }

    #[test]
    fn a_compile_that_outlasts_the_interval_is_still_followed_by_a_cleanup() {
        let path = scratch("cleanup");
        let cache = CompileCache::open(&path, DEFAULT_COMPILE_CACHE_BYTES).unwrap();
        let mut config = wasmtime::Config::new();
        config.cache(Some(cache.wasmtime()));
        let engine = wasmtime::Engine::new(&config).unwrap();
        let lock = path.join(format!(".cleanup.wip-{}", std::process::id()));
        let lock_time = || std::fs::metadata(&lock).and_then(|m| m.modified()).ok();
        // Each store asks wasmtime's worker thread for a cleanup; wait for
        // the worker (generously) rather than guess how long it takes.
        let cleaned_since = |since: std::time::SystemTime| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                if lock_time().is_some_and(|time| time >= since) {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            false
        };
        for number in 0..2 {
            cache.release_own_cleanup_lock();
            // A compile that outlasts the interval (a Python component's
            // takes seconds): a lock left by the cleanup before it has
            // expired by the time it stores.
            std::thread::sleep(CLEANUP_INTERVAL + std::time::Duration::from_millis(100));
            // File times are coarser than the clock: a lock made by this
            // compile's cleanup is at most a tick older than now, one made
            // by the previous cleanup more than the interval.
            let since = std::time::SystemTime::now() - CLEANUP_INTERVAL / 2;
            wasmtime::component::Component::new(&engine, component(number)).unwrap();
            assert!(
                cleaned_since(since),
                "compile {number} was followed by no cleanup"
            );
        }
        std::fs::remove_dir_all(path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = scratch("shared");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = CompileCache::open(&path, DEFAULT_COMPILE_CACHE_BYTES).unwrap_err();
        assert!(
            matches!(error, CacheError::NotPrivate { mode: 0o777, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 700"));
        std::fs::remove_dir_all(path).unwrap();
    }
}
