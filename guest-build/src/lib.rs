//! Compiles a Cargo workspace of guest services into WebAssembly components,
//! from a build script: `cargo build --release --target wasm32-wasip2`.
//!
//! Guests build in their own target directory (`<target>/guests`), so the
//! nested cargo never waits on the lock of the build that runs it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for; it produces components directly.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Builds `packages` of the guest workspace whose manifest is
/// `workspace/Cargo.toml` (each package in the folder of its name) and
/// returns each package's component file. Tells cargo to rerun the calling
/// build script when the workspace's manifest or lock file, a package's
/// folder or any of `watch` changes: nothing else, so what other tools
/// write beside the sources (`node_modules`, `__pycache__`, `target`)
/// never rebuilds the caller.
///
/// # Panics
/// When the build fails: a build script has no better way to report it.
pub fn build(workspace: &Path, packages: &[&str], watch: &[PathBuf]) -> Vec<PathBuf> {
    let manifests = [workspace.join("Cargo.toml"), workspace.join("Cargo.lock")];
    let folders = packages.iter().map(|package| workspace.join(package));
    for path in manifests
        .into_iter()
        .chain(folders)
        .chain(watch.iter().cloned())
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let target_dir = guest_target_dir();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["--package", package]);
    }
    // The outer build's settings are for the host, not for guests; nor are
    // its lints (`cargo clippy` wraps rustc for the workspace it checks).
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guests: {e}"));
    assert!(
        status.success(),
        "building the guests in {} failed (is the target installed? `rustup target add {GUEST_TARGET}`)",
        workspace.display()
    );
    packages
        .iter()
        .map(|package| {
            let file = target_dir
                .join(GUEST_TARGET)
                .join("release")
                .join(format!("{}.wasm", package.replace('-', "_")));
            assert!(
                file.exists(),
                "the guest build did not produce {}",
                file.display()
            );
            file
        })
        .collect()
}

/// What every guest is built from besides its own workspace, under the
/// repository's `root`: the shared WIT package and the Rust guest SDK's
/// sources (not its Python or JavaScript parts, nor its target folder).
pub fn shared_sources(root: &Path) -> Vec<PathBuf> {
    let sdk = root.join("guest-sdk");
    vec![
        root.join("wit"),
        sdk.join("Cargo.toml"),
        sdk.join("Cargo.lock"),
        sdk.join("src"),
        sdk.join("macros").join("Cargo.toml"),
        sdk.join("macros").join("src"),
    ]
}

/// `<target>/guests`, where `<target>` is the outer build's target directory.
fn guest_target_dir() -> PathBuf {
    if let Ok(dir) = env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let out = PathBuf::from(env::var("OUT_DIR").expect("run from a build script"));
    out.ancestors()
        .nth(4)
        .expect("OUT_DIR lies inside the target directory")
        .join("guests")
}
