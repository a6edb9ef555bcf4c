//! The linker every service is instantiated with: what a guest may import.

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::host::HostState;
use super::{netrefs, peer};

/// A linker with everything a service may import: WASI (with no grants in
/// its context), the shared `types` interface and the `peer` interface.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    netrefs::add_to_linker(&mut linker)?;
    peer::add_to_linker(&mut linker)?;
    Ok(linker)
}
