//! See [`wasm_rpyc_fuzz::rpyc_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_rpyc_fuzz::rpyc_stream(data));
