//! `wasm-rpyc build CRATE_DIR`: a Rust service crate (a `cdylib` written
//! with the `wasm-rpyc-guest` SDK) built by cargo for `wasm32-wasip2`, whose
//! library is already a component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;

/// The target a Rust service is built for.
const TARGET: &str = "wasm32-wasip2";

/// Builds the crate in `dir` with cargo (its progress and errors go to this
/// process's stderr) and copies its component to `out`.
pub(crate) fn build(dir: &Path, service: Option<&str>, out: &Path) -> Result<()> {
    if service.is_some() {
        bail!(
            "{}: --service picks the class of a Python or JavaScript module; a Rust crate is \
             one service",
            dir.display()
        );
    }
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{}: not a Rust crate (no Cargo.toml); wasm-rpyc builds a crate's directory, a \
             Python module (`.py`) or a JavaScript one (`.js`)",
            dir.display()
        );
    }
    let manifest = fs::canonicalize(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context(
            "cannot run cargo: install Rust (rustup.rs), then `rustup target add wasm32-wasip2`",
        )?;
    if !output.status.success() {
        bail!(
            "{}: cargo build failed (its errors are above; is the target installed? \
             `rustup target add {TARGET}`)",
            dir.display()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(component) = stdout.lines().find_map(|line| library_of(line, &manifest)) else {
        bail!(
            "{}: the crate builds no library for a component: give it `[lib] crate-type = \
             [\"cdylib\"]`",
            dir.display()
        );
    };
    fs::copy(&component, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// The `.wasm` file of the `cdylib` of the package `manifest` that cargo's
/// JSON message `line` reports, if it reports one.
fn library_of(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: Json = serde_json::from_str(line).ok()?;
    let is_library = message["reason"] == "compiler-artifact"
        && message["manifest_path"].as_str().map(Path::new) == Some(manifest)
        && message["target"]["kind"]
            .as_array()?
            .iter()
            .any(|kind| kind == "cdylib");
    if !is_library {
        return None;
    }
    let files = message["filenames"].as_array()?;
    files
        .iter()
        .filter_map(Json::as_str)
        .find(|file| file.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Where `wasm-rpyc build DIR` writes by default: the crate's directory
/// name, `.wasm`, in the working directory.
pub(crate) fn default_output(dir: &Path) -> PathBuf {
    let name = fs::canonicalize(dir)
        .ok()
        .and_then(|dir| Some(dir.file_name()?.to_owned()))
        .unwrap_or_else(|| "service".into());
    PathBuf::from(name).with_extension("wasm")
}
