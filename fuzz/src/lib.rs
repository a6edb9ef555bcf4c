//! Fuzz targets: what a hostile peer or a hostile argument can reach.
//!
//! Each target is a function of the input bytes that panics only on a bug;
//! `fuzz_targets/` runs them under libFuzzer (`cargo +nightly fuzz run
//! NAME`), and `tests/corpus.rs` replays the committed corpus on stable.
//!
//! - [`rpyc_stream`]: RPyC framing, brine and boxing, as a client's bytes
//!   reach the host.
//! - [`native_stream`]: the native protocol's frames.
//! - [`wasm_call`]: arbitrary values passed to a real component's exports,
//!   converted to and from wasmtime's `Val`.

mod codecs;
mod wasm_call;

pub use codecs::{native_stream, rpyc_stream};
pub use wasm_call::wasm_call;

/// A fuzz target: a function of the input bytes.
pub type Target = fn(&[u8]);

/// Every target by name: its corpus is `fuzz/corpus/<name>/`.
pub const TARGETS: [(&str, Target); 3] = [
    ("rpyc_stream", rpyc_stream),
    ("native_stream", native_stream),
    ("wasm_call", wasm_call),
];
