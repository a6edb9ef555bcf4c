//! Builds the test guests (`guests/`) and tells the tests where they are.

use std::path::Path;

const GUESTS: &[&str] = &["testbed", "nothing-exposed", "sandbox", "sdk-service"];

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("..");
    let watch = wasm_rpyc_guest_build::shared_sources(&root);
    let files = wasm_rpyc_guest_build::build(&here.join("guests"), GUESTS, &watch);
    for (guest, file) in GUESTS.iter().zip(files) {
        let var = format!("GUEST_{}", guest.to_uppercase().replace('-', "_"));
        println!("cargo:rustc-env={var}={}", file.display());
    }
}
