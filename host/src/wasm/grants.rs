//! What a service may reach beyond its own memory. By default nothing: no
//! files, no environment variables, no network (WASI's sockets deny every
//! address and name lookups). A host grants directories and environment
//! variables explicitly, per service.
//!
//! Clocks and randomness stay available: WASI programs need them to start,
//! and they reach nothing outside the instance.

use std::path::PathBuf;
use std::str::FromStr;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A directory of the host's that a service sees at a path of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the service sees it (such as `/data`).
    pub guest: String,
    /// Whether the service may only read.
    pub read_only: bool,
}

impl FromStr for DirGrant {
    type Err = GrantError;

    /// Parses `HOST::GUEST`, or `HOST` alone (the same path inside, as
    /// wasmtime's `--dir` takes it); `:ro` after either grants reading
    /// only.
    fn from_str(text: &str) -> Result<Self, GrantError> {
        let bad = || {
            GrantError::Syntax(format!(
                "{text:?} is not HOST::GUEST or HOST (with :ro to read only)"
            ))
        };
        let (text, read_only) = match text.strip_suffix(":ro") {
            Some(text) => (text, true),
            None => (text, false),
        };
        let (host, guest) = text.split_once("::").unwrap_or((text, text));
        if host.is_empty() || guest.is_empty() {
            return Err(bad());
        }
        Ok(DirGrant {
            host: host.into(),
            guest: guest.to_owned(),
            read_only,
        })
    }
}

/// Parses an environment variable grant, `KEY=VALUE`.
pub fn parse_env(text: &str) -> Result<(String, String), GrantError> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(GrantError::Syntax(format!("{text:?} is not KEY=VALUE"))),
    }
}

/// A grant that cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The grant is not written as it must be.
    #[error("{0}")]
    Syntax(String),
    /// A granted directory is not a directory the host can open.
    #[error("cannot grant {path}: {reason}")]
    Directory {
        /// The host's path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Everything one service is granted; nothing by default.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    dirs: Vec<DirGrant>,
    env: Vec<(String, String)>,
}

impl Grants {
    /// Grants `dir`, after checking that the host can open it.
    pub fn dir(mut self, dir: DirGrant) -> Result<Self, GrantError> {
        let unusable = |reason: String| GrantError::Directory {
            path: dir.host.display().to_string(),
            reason,
        };
        match std::fs::metadata(&dir.host) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(unusable("not a directory".into())),
            Err(error) => return Err(unusable(error.to_string())),
        }
        self.dirs.push(dir);
        Ok(self)
    }

    /// Grants the environment variable `key` with `value`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.env.is_empty()
    }

    /// Gives the grants to a new instance's WASI context.
    pub(crate) fn apply(&self, wasi: &mut WasiCtxBuilder) -> wasmtime::Result<()> {
        for (key, value) in &self.env {
            wasi.env(key, value);
        }
        for dir in &self.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_as_documented() {
        let grant: DirGrant = "/srv/data::/data:ro".parse().unwrap();
        assert_eq!(
            grant,
            DirGrant {
                host: "/srv/data".into(),
                guest: "/data".into(),
                read_only: true
            }
        );
        let grant: DirGrant = "./files::/files".parse().unwrap();
        assert!(!grant.read_only);
        let same: DirGrant = "/srv/data:ro".parse().unwrap();
        assert_eq!((same.guest.as_str(), same.read_only), ("/srv/data", true));
        let same: DirGrant = "./files".parse().unwrap();
        assert_eq!(same.host, PathBuf::from("./files"));
        assert_eq!((same.guest.as_str(), same.read_only), ("./files", false));
        for bad in ["", ":ro", "::/data", "/srv::", "/srv:::ro"] {
            assert!(bad.parse::<DirGrant>().is_err(), "{bad}");
        }
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("NOVALUE").is_err());
        let missing = Grants::default().dir("/no/such/dir::/d".parse().unwrap());
        assert!(missing.unwrap_err().to_string().contains("/no/such/dir"));
    }
}
