//! The state every task of an engine shares: the published snapshot, the
//! identity-keyed registry, live-connection tracking, the pipe pool, the
//! event queue and the access log. Owned by the engine, read by the accept loops and the
//! connection pipeline (which therefore never import the engine).

use crate::access::AccessLog;
use crate::events::EventLog;
use crate::forward::PipePool;
use crate::registry::Registry;
use crate::snapshot::Snapshot;
use crate::tracker::ConnTracker;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use tokio_util::sync::CancellationToken;

/// State shared by every task of the engine.
#[derive(Debug)]
pub struct Shared {
    /// The tables; replaced whole, read with one atomic load.
    pub snapshot: ArcSwap<Snapshot>,
    pub registry: Registry,
    pub conns: ConnTracker,
    /// Fired when the drain deadline of `close()` passes (the registry's root token).
    pub cancel_conns: CancellationToken,
    pub pipes: PipePool,
    /// Passive-detection events waiting for the control plane to pull them.
    pub events: EventLog,
    /// Access-log records of listeners that keep one, waiting to be pulled.
    pub access: AccessLog,
    /// The last decision traces of sampled connections and requests.
    pub traces: crate::trace::TraceLog,
    /// HTTP client connections holding a hyper connection (its buffers) now,
    /// as opposed to parked ones; see `http::serve`.
    pub http_unparked: AtomicUsize,
    /// Client connections open in the whole engine (counted at accept) and
    /// the most allowed (see `EngineConfig::max_connections`).
    pub open: AtomicU64,
    pub max_open: AtomicU64,
    /// Accept loops waiting for room under `max_open`, and their wake-up.
    pub waiting_for_room: AtomicUsize,
    pub room_freed: tokio::sync::Notify,
    /// Parking plain TCP connections for a hand-over or a spread close.
    pub parking: crate::handoff::Parking,
    /// Fired when the engine stops accepting for good (an upgrade, a close):
    /// HTTP connections then end after their current request (see `http::serve`).
    pub http_drain: CancellationToken,
    /// Opt-in hooks: the registered handler and the calls waiting on it.
    pub hooks: crate::hook::Hooks,
}

impl Shared {
    /// Shared state around a first snapshot.
    pub fn new(snapshot: Snapshot, registry: Registry, workers: usize, max_pipes: usize) -> Shared {
        let cancel_conns = registry.root.clone();
        Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            conns: ConnTracker::new(workers),
            cancel_conns,
            pipes: PipePool::new(max_pipes),
            events: EventLog::events(),
            access: AccessLog::records(),
            traces: Default::default(),
            http_unparked: AtomicUsize::new(0),
            open: AtomicU64::new(0),
            max_open: AtomicU64::new(u64::MAX),
            waiting_for_room: AtomicUsize::new(0),
            room_freed: tokio::sync::Notify::new(),
            parking: crate::handoff::Parking::default(),
            http_drain: CancellationToken::new(),
            hooks: crate::hook::Hooks::default(),
        }
    }

    /// An empty engine state for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Shared {
        Shared::new(Snapshot::default(), Registry::default(), 1, 1)
    }
}
