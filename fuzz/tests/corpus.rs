//! Replays the committed corpus (`fuzz/corpus/<target>/`) through every
//! target on a stable toolchain: what the fuzzers once found stays fixed.

use std::fs;
use std::path::Path;

#[test]
fn the_corpus_passes_every_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in wasm_rpyc_fuzz::TARGETS {
        let dir = corpus.join(name);
        let inputs: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a corpus entry").path())
            .collect();
        assert!(!inputs.is_empty(), "{} holds no seeds", dir.display());
        for input in inputs {
            target(&fs::read(&input).expect("a readable seed"));
        }
    }
}
