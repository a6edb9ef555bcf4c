//! `wasm-rpyc build`: a service's source made a component. A Rust crate is
//! built by cargo (`crate_build`). A Python module or a JavaScript one needs
//! no WIT: its service class is served through the
//! `dynamic` world by the language's SDK, which this binary carries and
//! writes out beside the module for componentize-py or componentize-js.
//! `serve service.py` (or `.js`) builds through a cache keyed by the
//! sources' content.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use wasm_rpyc::wasm::CompileCache;

/// The shared WIT package.
const SERVICE_WIT: &str = include_str!("../../../../wit/service.wit");

/// The Python SDK, by its path inside the SDK directory.
const PYTHON_SDK: [(&str, &str); 14] = [
    (
        "wasm_rpyc_guest.py",
        include_str!("../../../../guest-sdk/python/wasm_rpyc_guest.py"),
    ),
    (
        "wasm_rpyc_dynamic.py",
        include_str!("../../../../guest-sdk/python/wasm_rpyc_dynamic.py"),
    ),
    (
        "wasm_rpyc_policy.py",
        include_str!("../../../../guest-sdk/python/wasm_rpyc_policy.py"),
    ),
    (
        "wasm_rpyc_sandbox.py",
        include_str!("../../../../guest-sdk/python/wasm_rpyc_sandbox.py"),
    ),
    (
        "wasm_rpyc_stdlib.py",
        include_str!("../../../../guest-sdk/python/wasm_rpyc_stdlib.py"),
    ),
    (
        "rpyc/__init__.py",
        include_str!("../../../../guest-sdk/python/rpyc/__init__.py"),
    ),
    (
        "rpyc/core/__init__.py",
        include_str!("../../../../guest-sdk/python/rpyc/core/__init__.py"),
    ),
    (
        "rpyc/core/protocol.py",
        include_str!("../../../../guest-sdk/python/rpyc/core/protocol.py"),
    ),
    (
        "rpyc/core/service.py",
        include_str!("../../../../guest-sdk/python/rpyc/core/service.py"),
    ),
    (
        "rpyc/utils/__init__.py",
        include_str!("../../../../guest-sdk/python/rpyc/utils/__init__.py"),
    ),
    (
        "rpyc/utils/server.py",
        include_str!("../../../../guest-sdk/python/rpyc/utils/server.py"),
    ),
    (
        "rpyc/utils/teleportation.py",
        include_str!("../../../../guest-sdk/python/rpyc/utils/teleportation.py"),
    ),
    (
        "rpyc/lib/__init__.py",
        include_str!("../../../../guest-sdk/python/rpyc/lib/__init__.py"),
    ),
    (
        "rpyc/lib/compat.py",
        include_str!("../../../../guest-sdk/python/rpyc/lib/compat.py"),
    ),
];

/// Classic mode's service module (RPyC's SlaveService), by its file name.
const CLASSIC_MODULE: (&str, &str) = (
    "classic.py",
    include_str!("../../../../guest-sdk/python/classic/classic.py"),
);

/// The JavaScript SDK, by its file name.
const JS_SDK: [(&str, &str); 4] = [
    (
        "wasm-rpyc-arguments.js",
        include_str!("../../../../guest-sdk/js/wasm-rpyc-arguments.js"),
    ),
    (
        "wasm-rpyc-packed.js",
        include_str!("../../../../guest-sdk/js/wasm-rpyc-packed.js"),
    ),
    (
        "wasm-rpyc-guest.js",
        include_str!("../../../../guest-sdk/js/wasm-rpyc-guest.js"),
    ),
    (
        "wasm-rpyc-dynamic.js",
        include_str!("../../../../guest-sdk/js/wasm-rpyc-dynamic.js"),
    ),
];

/// The world a service built here targets.
const DYNAMIC_WORLD: &str = "wasm-rpyc:service/dynamic";

/// What begins the SDK's line saying why a module cannot be served.
const SDK_ERROR_MARK: &str = "wasm-rpyc build: ";

/// The componentize-py release the SDK is written for.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The componentize-js release the SDK is written for.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Whether `file` is a service's source `build` takes (not a component).
pub(crate) fn is_source(file: &Path) -> bool {
    file.extension()
        .is_some_and(|extension| ["py", "js", "mjs"].iter().any(|e| extension == *e))
}

/// Builds `source` (a module, or a Rust crate's directory) into the
/// component `out`; `service` picks the class when a module defines several.
pub(crate) fn build(source: &Path, service: Option<&str>, out: &Path) -> Result<()> {
    if source.is_dir() {
        return crate::crate_build::build(source, service, out);
    }
    match source.extension().and_then(|e| e.to_str()) {
        Some("py") => build_python(source, service, out),
        Some("js" | "mjs") => build_js(source, service, out),
        _ => bail!(
            "{}: wasm-rpyc builds a Python module (`.py`), a JavaScript one (`.js`) or a Rust \
             crate's directory",
            source.display()
        ),
    }
}

/// Where `wasm-rpyc build source` writes when not told: the module's stem,
/// or the crate's name, `.wasm`.
pub(crate) fn default_output(source: &Path) -> PathBuf {
    match source.is_dir() {
        true => crate::crate_build::default_output(source),
        false => source.with_extension("wasm"),
    }
}

/// The component of `source`, built once per content: from the directory
/// beside the compile cache's (`<cache dir>-builds`, by default the user's)
/// when neither the module's directory's Python files nor the SDK changed.
/// (Not inside it: the compile cache's cleanup deletes what it does not
/// know.)
pub(crate) fn cached(
    source: &Path,
    service: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<PathBuf> {
    let key = source_key(source, service)?;
    let stem = module_name(source)?;
    let dir = builds_directory(cache_dir)?;
    let built = dir.join(format!("{stem}-{}.wasm", &key[..16]));
    if built.exists() {
        tracing::info!(source = %source.display(), component = %built.display(), "built before");
        return Ok(built);
    }
    create_private(&dir)?;
    let partial = dir.join(format!(
        "{stem}-{}.{}.partial",
        &key[..16],
        std::process::id()
    ));
    if let Err(error) = build(source, service, &partial) {
        // A failed build may leave part of a component behind.
        let _ = fs::remove_file(&partial);
        return Err(error);
    }
    fs::rename(&partial, &built).with_context(|| format!("cannot write {}", built.display()))?;
    prune_builds(&dir, stem);
    Ok(built)
}

/// The directory builds are kept in: beside the compile cache's.
fn builds_directory(cache_dir: Option<&Path>) -> Result<PathBuf> {
    let cache_dir = match cache_dir {
        Some(dir) => dir.to_owned(),
        None => CompileCache::default_directory()
            .context("this platform names no cache directory: give --cache-dir")?,
    };
    let mut dir = cache_dir.into_os_string();
    dir.push("-builds");
    Ok(PathBuf::from(dir))
}

/// Classic mode's service module, written (where it is not already) to a
/// directory of its own beside the builds, to be built as any module is.
pub(crate) fn classic_module(cache_dir: Option<&Path>) -> Result<PathBuf> {
    let dir = builds_directory(cache_dir)?.join("classic");
    create_private(&dir)?;
    let (name, text) = CLASSIC_MODULE;
    let module = dir.join(name);
    if fs::read_to_string(&module).ok().as_deref() != Some(text) {
        write(&module, text)?;
    }
    Ok(module)
}

/// How many builds of a module `serve` keeps (the newest).
const KEPT_BUILDS: usize = 4;

/// Deletes the builds of module `stem` in `dir` beyond the newest
/// [`KEPT_BUILDS`]: each edit of a served module builds a new component
/// (a Python one is about 19 MB).
fn prune_builds(dir: &Path, stem: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let is_build = |name: &str| {
        let key = name
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_suffix(".wasm"));
        key.is_some_and(|key| key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            is_build(entry.file_name().to_str()?)
                .then(|| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))?
        })
        .collect();
    builds.sort_unstable_by_key(|build| std::cmp::Reverse(build.0));
    for (_, old) in builds.into_iter().skip(KEPT_BUILDS) {
        let _ = fs::remove_file(old);
    }
}

/// The hash of what a build of `source` reads: every file of its language
/// beside it, the SDKs and the chosen class.
fn source_key(source: &Path, service: Option<&str>) -> Result<String> {
    let dir = source_dir(source);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension() == source.extension())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        let bytes = fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        hash.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    for (path, text) in PYTHON_SDK
        .iter()
        .chain(&JS_SDK)
        .chain([&("wit", SERVICE_WIT)])
    {
        hash.update(path.as_bytes());
        hash.update(text.as_bytes());
    }
    hash.update(service.unwrap_or("").as_bytes());
    Ok(wasm_rpyc::cluster::hex(&hash.finalize().into()))
}

fn source_dir(source: &Path) -> PathBuf {
    match source.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The module name of `source`: its stem, which Python must be able to
/// import (and which names a JavaScript module's classes to the peer).
fn module_name(source: &Path) -> Result<&str> {
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if !is_identifier(stem) {
        bail!(
            "{}: the module's name must be a Python identifier (letters, digits, `_`)",
            source.display()
        );
    }
    Ok(stem)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The module name of `source` once it and the class name `service` are
/// checked.
fn checked<'a>(source: &'a Path, service: Option<&str>) -> Result<&'a str> {
    if !source.is_file() {
        bail!("{}: no such file", source.display());
    }
    if let Some(name) = service
        && !is_identifier(name)
    {
        bail!("--service {name}: not a class name");
    }
    module_name(source)
}

fn build_python(source: &Path, service: Option<&str>, out: &Path) -> Result<()> {
    let module = checked(source, service)?;
    let tool = find_tool(
        "componentize-py",
        ".venv/bin",
        &format!("python3 -m venv .venv && .venv/bin/pip install {COMPONENTIZE_PY}"),
    )?;
    let work = WorkDir::with_sdk(&PYTHON_SDK)?;
    let (wit, sdk, app) = (work.0.join("wit"), work.0.join("sdk"), work.0.join("app"));
    let chosen = service.map_or("None".to_owned(), |name| format!("\"{name}\""));
    write(
        &app.join("app.py"),
        &format!(
            "from wasm_rpyc_dynamic import serve\n\nWitWorld, Objects = serve(\"{module}\", {chosen})\n"
        ),
    )?;
    let output = Command::new(&tool)
        .arg("--quiet")
        .arg("-d")
        .arg(&wit)
        .args(["-w", DYNAMIC_WORLD, "componentize", "app", "-p"])
        .arg(&app)
        .arg("-p")
        .arg(&sdk)
        .arg("-p")
        .arg(source_dir(source))
        .arg("-o")
        .arg(out)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    failure(source, "componentize-py", &output)
}

/// Builds the JavaScript module `source`: componentize-js reads the files
/// under its working directory only, so the module's directory's `.js`
/// files are copied beside the SDK and the app module.
fn build_js(source: &Path, service: Option<&str>, out: &Path) -> Result<()> {
    let module = checked(source, service)?;
    let tool = find_tool(
        "componentize-js",
        "services/js/node_modules/.bin",
        &format!("npm install {COMPONENTIZE_JS}"),
    )?;
    let work = WorkDir::with_sdk(&JS_SDK)?;
    let dir = source_dir(source);
    create_private(&work.0.join("src"))?;
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension() == source.extension() {
            let copy = work
                .0
                .join("src")
                .join(path.file_name().unwrap_or_default());
            fs::copy(&path, &copy).with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    let file = source.file_name().unwrap_or_default().to_string_lossy();
    let chosen = service.map_or("null".to_owned(), |name| format!("'{name}'"));
    write(
        &work.0.join("app.js"),
        &format!(
            "import * as service from './src/{file}';\n\
             import {{ serve }} from './sdk/wasm-rpyc-dynamic.js';\n\n\
             const served = serve(service, '{module}', {chosen});\n\
             export const {{ objects, onConnect, onDisconnect, serviceAliases }} = served;\n"
        ),
    )?;
    let out =
        std::path::absolute(out).with_context(|| format!("cannot write {}", out.display()))?;
    let output = Command::new(&tool)
        .current_dir(&work.0)
        .args(["app.js", "--wit", "wit", "-n", DYNAMIC_WORLD])
        // The HTTP imports a service does not use (the host offers none).
        .args(["-d", "http", "fetch-event", "-o"])
        .arg(&out)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    failure(source, "componentize-js", &output)
}

/// What a build tool's `output` says of `source`: nothing when it succeeded.
fn failure(source: &Path, tool: &str, output: &std::process::Output) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The SDK says what is wrong in a line of its own, naming the module's
    // file by its name only (the guest sees it elsewhere).
    let file_name = source.file_name().unwrap_or_default().to_string_lossy();
    let ours = stderr
        .lines()
        .find_map(|line| Some(line.split_once(SDK_ERROR_MARK)?.1));
    if let Some(reason) = ours {
        let reason = match reason.strip_prefix(&*file_name) {
            Some(rest) => format!("{}{rest}", source.display()),
            None => reason.to_owned(),
        };
        bail!("{reason}");
    }
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!("{}: {tool} failed:\n{}", source.display(), tail.join("\n"))
}

/// Creates `dir` (and its parents) readable and writable by this user only:
/// what it holds is served.
fn create_private(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The tool `name`: on `PATH`, or in `dir` of the checkout this binary or
/// the working directory lies in; the error says how to install it.
fn find_tool(name: &str, dir: &str, install: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|path| path.join(name));
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    let in_checkout = starts.into_iter().flatten().flat_map(|start| {
        start
            .ancestors()
            .map(|ancestor| ancestor.join(dir).join(name))
            .collect::<Vec<_>>()
    });
    on_path
        .chain(in_checkout)
        .find(|path| path.is_file())
        .with_context(|| format!("{name} is not installed (not on PATH, nor in {dir} here): install it with `{install}`"))
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    /// A new directory holding the WIT package (in `wit/`) and `sdk`'s files
    /// (in `sdk/`).
    fn with_sdk(sdk: &[(&str, &str)]) -> Result<Self> {
        let work = WorkDir::new()?;
        write(&work.0.join("wit/service.wit"), SERVICE_WIT)?;
        for (path, text) in sdk {
            write(&work.0.join("sdk").join(path), text)?;
        }
        Ok(work)
    }

    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("wasm-rpyc-build-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn a_modules_builds_beyond_the_newest_are_deleted() {
        let dir = std::env::temp_dir().join(format!("wasm-rpyc-prune-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let build = |name: &str, age: u64| {
            let file = fs::File::create(dir.join(name)).unwrap();
            let modified = SystemTime::now() - Duration::from_secs(age);
            file.set_modified(modified).unwrap();
        };
        for age in 0..6 {
            build(&format!("counter-{age:016x}.wasm"), age);
        }
        build("other-0000000000000009.wasm", 100);
        build("counter-notahash.wasm", 100);
        prune_builds(&dir, "counter");
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        fs::remove_dir_all(&dir).unwrap();
        let newest = (0..KEPT_BUILDS).map(|age| format!("counter-{age:016x}.wasm"));
        let mut expected: Vec<String> = newest.collect();
        expected.extend([
            "counter-notahash.wasm".into(),
            "other-0000000000000009.wasm".into(),
        ]);
        expected.sort();
        assert_eq!(left, expected);
    }
}
