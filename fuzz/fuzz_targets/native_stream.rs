//! See [`wasm_rpyc_fuzz::native_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_rpyc_fuzz::native_stream(data));
