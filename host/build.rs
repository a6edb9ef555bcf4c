//! With the `bundled` feature, builds the example services (`services/`) and
//! embeds them, so `wasm-rpyc serve` alone serves the seed's services.

use std::env;
use std::fmt::Write;
use std::path::Path;

/// The bundled examples: package, service name, default port.
const EXAMPLES: &[(&str, &str, u16)] = &[
    ("calculator", "calculator", 18861),
    ("my-service", "my-service", 18862),
    ("decoupled", "decoupled", 18863),
    ("callback", "callback", 18864),
];

fn main() {
    let out = env::var("OUT_DIR").expect("set by cargo");
    let mut code = String::from(
        "/// The example services: (name, default port, component bytes).\npub static EXAMPLES: &[(&str, u16, &[u8])] = &[\n",
    );
    if env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let packages: Vec<&str> = EXAMPLES.iter().map(|(package, ..)| *package).collect();
        let mut watch = wasm_rpyc_guest_build::shared_sources(&root);
        watch.push(root.join("services").join("wit"));
        let files = wasm_rpyc_guest_build::build(&root.join("services"), &packages, &watch);
        for ((_, name, port), file) in EXAMPLES.iter().zip(files) {
            writeln!(
                code,
                "    ({name:?}, {port}, include_bytes!({:?})),",
                file.display().to_string()
            )
            .unwrap();
        }
    }
    code.push_str("];\n");
    std::fs::write(Path::new(&out).join("bundled.rs"), code).expect("OUT_DIR is writable");
}
