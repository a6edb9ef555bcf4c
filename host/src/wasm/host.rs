//! What the host gives each guest: the store's state (WASI context with no
//! grants, its share of guest memory, the CPU budget of the running call, captured
//! output) and the functions the host imports into guests.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::connections::Connections;
use super::cpu::Meter;
use super::grants::Grants;
use super::guest_objects::GuestObjects;
use super::memory::StoreMemory;
use crate::connection::DEFAULT_MAX_LENT_OBJECTS;
use crate::held::{DEFAULT_MAX_HELD_OBJECTS, PeerObject};
use crate::peer::Peer;

/// The shared interface every service may import.
pub(crate) const TYPES_INTERFACE: &str = "wasm-rpyc:service/types@0.1.0";

/// How much of a guest's latest output is kept to explain a trap.
const OUTPUT_TAIL: usize = 2048;

/// The longest line of guest output logged as one record; longer lines are split.
const OUTPUT_LINE: usize = 1024;

/// How many bytes of output one call may have logged; the rest is dropped
/// (and counted in one line). Time spent writing counts against the call.
pub const MAX_OUTPUT_PER_CALL: usize = 64 * 1024;

/// How many bytes of output one instance may have logged in its life.
pub const MAX_OUTPUT_PER_INSTANCE: usize = 1024 * 1024;

/// The state of one guest's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The store's share of the host's memory budget, and its limits.
    pub(crate) memory: StoreMemory,
    /// How long the running call has run, against its CPU budget.
    pub(crate) meter: Arc<Meter>,
    /// What the guest wrote to stdout and stderr.
    pub(crate) output: GuestOutput,
    /// The other side of the connection whose call runs, for the `peer`
    /// interface.
    pub(crate) peer: Option<Peer>,
    /// That connection's number (see `peer.connection` in WIT).
    pub(crate) connection: u64,
    /// Every connection of a shared instance, to route netrefs by.
    pub(crate) connections: Option<Arc<Connections>>,
    /// How many netref handles (the peer's objects, kept in `table`) the
    /// guest holds, and how many it may: as many as its connection holds
    /// objects of the peer's.
    netrefs: usize,
    max_netrefs: usize,
    /// The guest's own objects the peer holds.
    pub(crate) objects: GuestObjects,
}

impl HostState {
    /// A state with what `grants` gives and no other capability beyond what
    /// WASI needs to start; the guest's stdout and stderr go to the log,
    /// tagged with `service`. The guest's objects lent to the peer get
    /// handles from `first_object` on.
    pub(crate) fn new(
        service: &str,
        memory: StoreMemory,
        meter: Arc<Meter>,
        peer: Option<Peer>,
        grants: &Grants,
        first_object: u64,
    ) -> wasmtime::Result<Self> {
        let output = GuestOutput::new(service);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(output.clone()).stderr(output.clone());
        grants.apply(&mut wasi)?;
        Ok(HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory,
            meter,
            output,
            max_netrefs: peer
                .as_ref()
                .map_or(DEFAULT_MAX_HELD_OBJECTS, Peer::max_held_objects),
            // The peer may hold as many of them as the connection may lend.
            objects: GuestObjects::starting_at(
                first_object,
                peer.as_ref()
                    .map_or(DEFAULT_MAX_LENT_OBJECTS, Peer::max_lent_objects),
            ),
            peer,
            connection: 0,
            connections: None,
            netrefs: 0,
        })
    }
}

impl HostState {
    /// Keeps `object` in the store's table as a netref handle for the guest;
    /// `None` when the guest holds as many as it may.
    pub(crate) fn push_netref(&mut self, object: PeerObject) -> Option<Resource<PeerObject>> {
        if self.netrefs >= self.max_netrefs {
            return None;
        }
        let handle = self.table.push(object).ok()?;
        self.netrefs += 1;
        Some(handle)
    }

    /// How many netref handles the guest may hold at once.
    pub(crate) fn max_netrefs(&self) -> usize {
        self.max_netrefs
    }

    /// The object the guest's netref handle `rep` names.
    pub(crate) fn netref(&self, rep: u32) -> Option<&PeerObject> {
        self.table.get(&Resource::new_borrow(rep)).ok()
    }

    /// Takes the guest's netref handle `rep` out of the table: the object is
    /// released on the peer once no handle to it is left.
    pub(crate) fn drop_netref(&mut self, rep: u32) -> Option<PeerObject> {
        let object = self.table.delete(Resource::new_own(rep)).ok()?;
        self.netrefs -= 1;
        Some(object)
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

/// A guest's stdout and stderr: each line is logged, up to
/// [`MAX_OUTPUT_PER_CALL`] and [`MAX_OUTPUT_PER_INSTANCE`] bytes, and the
/// latest output is kept to explain a trap (a Rust guest prints its panic
/// message there).
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<OutputLines>>,
}

struct OutputLines {
    service: String,
    line: Vec<u8>,
    tail: Vec<u8>,
    /// Bytes logged in the current call, and in the instance's life.
    logged_in_call: usize,
    logged: usize,
    /// Bytes not logged in the current call, for lack of room.
    dropped: usize,
}

impl GuestOutput {
    fn new(service: &str) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(OutputLines {
                service: service.to_owned(),
                line: Vec::new(),
                tail: Vec::new(),
                logged_in_call: 0,
                logged: 0,
                dropped: 0,
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

    /// A new call begins: the kept output is forgotten, and the call may
    /// log [`MAX_OUTPUT_PER_CALL`] bytes.
    pub(crate) fn begin_call(&self) {
        let mut inner = self.inner.lock().expect("guest output poisoned");
        inner.tail.clear();
        inner.logged_in_call = 0;
    }

    /// The call has ended: says how much of its output was dropped, if any.
    pub(crate) fn end_call(&self) {
        let mut inner = self.inner.lock().expect("guest output poisoned");
        let dropped = std::mem::take(&mut inner.dropped);
        if dropped > 0 {
            tracing::warn!(target: "guest", service = %inner.service, dropped, "output dropped: a call may log {MAX_OUTPUT_PER_CALL} bytes, an instance {MAX_OUTPUT_PER_INSTANCE}");
        }
    }
}

impl OutputLines {
    fn write(&mut self, bytes: &[u8]) {
        let kept = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL)..];
        self.tail.extend_from_slice(kept);
        if self.tail.len() > OUTPUT_TAIL {
            self.tail.drain(..self.tail.len() - OUTPUT_TAIL);
        }
        let room =
            (MAX_OUTPUT_PER_CALL - self.logged_in_call).min(MAX_OUTPUT_PER_INSTANCE - self.logged);
        let (logged, dropped) = bytes.split_at(bytes.len().min(room));
        self.logged_in_call += logged.len();
        self.logged += logged.len();
        self.dropped += dropped.len();
        for &byte in logged {
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
