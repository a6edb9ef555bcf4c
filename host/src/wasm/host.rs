//! What the host gives each guest: the store's state (WASI context with no
//! grants, resource limits, the CPU budget of the running call, captured
//! output) and the functions the host imports into guests.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{Engine, StoreLimits};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::grants::Grants;
use super::netrefs::{GuestNetrefs, NetrefResource, netref_type};
use crate::connection::Peer;

/// The shared interface every service may import.
pub(crate) const TYPES_INTERFACE: &str = "wasm-rpyc:service/types@0.1.0";

/// How much of a guest's latest output is kept to explain a trap.
const OUTPUT_TAIL: usize = 2048;

/// The longest line of guest output logged as one record; longer lines are split.
const OUTPUT_LINE: usize = 1024;

/// The state of one guest's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// Epoch ticks the running call may still use before it is stopped.
    pub(crate) ticks_left: u64,
    /// What the guest wrote to stdout and stderr.
    pub(crate) output: GuestOutput,
    /// The other side of the connection, for the `peer` interface.
    pub(crate) peer: Option<Peer>,
    /// The peer's objects the guest holds as netrefs.
    pub(crate) netrefs: GuestNetrefs,
}

impl HostState {
    /// A state with what `grants` gives and no other capability beyond what
    /// WASI needs to start; the guest's stdout and stderr go to the log,
    /// tagged with `service`.
    pub(crate) fn new(
        service: &str,
        limits: StoreLimits,
        peer: Option<Peer>,
        grants: &Grants,
    ) -> wasmtime::Result<Self> {
        let output = GuestOutput::new(service);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(output.clone()).stderr(output.clone());
        grants.apply(&mut wasi)?;
        Ok(HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            ticks_left: 0,
            output,
            peer,
            netrefs: GuestNetrefs::default(),
        })
    }
}

impl HostState {
    /// Forgets the guest's netref handle `rep`; the peer is told to release
    /// its object when that was the last handle to it.
    pub(crate) fn drop_netref(&mut self, rep: u32) {
        if let (Some(id), Some(peer)) = (self.netrefs.drop_handle(rep), &self.peer) {
            peer.release(id);
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A linker with everything a service may import: WASI (with no grants in
/// its context), the shared `types` interface and the `peer` interface.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // Dropping a guest's last handle to an object releases it on the peer.
    let mut types = linker.instance(TYPES_INTERFACE)?;
    types.resource("netref", netref_type(), |mut store, rep| {
        store.data_mut().drop_netref(rep);
        Ok(())
    })?;
    types.func_wrap(
        "[method]netref.class-name",
        |store, (netref,): (Resource<NetrefResource>,)| {
            let object = store.data().netrefs.get(netref.rep());
            let class = object.map(|object| object.class.clone());
            Ok((class.ok_or_else(|| wasmtime::format_err!("a dropped netref"))?,))
        },
    )?;
    super::peer::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// A guest's stdout and stderr: each line is logged, and the latest output
/// is kept to explain a trap (a Rust guest prints its panic message there).
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<OutputLines>>,
}

struct OutputLines {
    service: String,
    line: Vec<u8>,
    tail: Vec<u8>,
}

impl GuestOutput {
    fn new(service: &str) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(OutputLines {
                service: service.to_owned(),
                line: Vec::new(),
                tail: Vec::new(),
            })),
        }
    }

    /// Takes what the guest wrote since the last call to this, at most the
    /// last [`OUTPUT_TAIL`] bytes, trimmed.
    pub(crate) fn take_tail(&self) -> String {
        let mut inner = self.inner.lock().expect("guest output poisoned");
        let tail = std::mem::take(&mut inner.tail);
        String::from_utf8_lossy(&tail).trim().to_owned()
    }

    /// Forgets the kept output (a new call begins).
    pub(crate) fn clear_tail(&self) {
        self.inner
            .lock()
            .expect("guest output poisoned")
            .tail
            .clear();
    }
}

impl OutputLines {
    fn write(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > OUTPUT_TAIL {
            self.tail.drain(..self.tail.len() - OUTPUT_TAIL);
        }
        for &byte in bytes {
            if byte == b'\n' || self.line.len() >= OUTPUT_LINE {
                tracing::info!(target: "guest", service = %self.service, "{}", String::from_utf8_lossy(&self.line));
                self.line.clear();
            }
            if byte != b'\n' {
                self.line.push(byte);
            }
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.lock().expect("guest output poisoned").write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
