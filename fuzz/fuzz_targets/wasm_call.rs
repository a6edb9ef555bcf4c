//! See [`wasm_rpyc_fuzz::wasm_call`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_rpyc_fuzz::wasm_call(data));
