//! The example services (`services/`, the seed's) built into the
//! `wasm-rpyc` binary: its build script compiles them for `wasm32-wasip2`
//! and this crate embeds the components. A crate of its own so that the
//! guests build while the host's dependencies compile.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
