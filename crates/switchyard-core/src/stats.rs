//! Counters kept in atomics on the data plane and pulled by the control plane.
//!
//! Counter objects live in a [`StatsRegistry`] keyed by identity (pool and
//! backend address, listener name), not in the snapshot, so a backend that
//! stays across a configuration update keeps its counts.

use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use crate::health::{AdminState, BackendHealth};
use crate::tls::server::TlsShared;

/// Per-backend counters. `bytes_in` is what clients sent towards the backend,
/// `bytes_out` what the backend sent back (HAProxy's `bin`/`bout`).
#[derive(Debug, Default)]
pub struct BackendStats {
    pub active: AtomicU64,
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Connects that failed (refused, unreachable, reset).
    pub connect_errors: AtomicU64,
    /// Connects that did not complete within the pool's connect timeout.
    pub connect_timeouts: AtomicU64,
    /// TLS handshakes to the backend that failed (also counted in `connect_errors`).
    pub tls_errors: AtomicU64,
    /// Sum of successful connect times, microseconds (for the average).
    pub connect_time_us: AtomicU64,
}

impl BackendStats {
    /// Record a successful connect that took `took`.
    pub fn connected(&self, took: Duration) {
        self.connect_time_us.fetch_add(took.as_micros() as u64, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
    }
}

/// Per-listener counters.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    /// Connections closed because no backend could be reached.
    pub no_backend: AtomicU64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: AtomicU64,
}

/// Finds or creates the counters of a backend or listener by identity.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    /// Cancelled when the engine's drain deadline passes; every backend's kill token is its child.
    pub root: tokio_util::sync::CancellationToken,
    backends: Mutex<HashMap<(String, SocketAddr), (Arc<BackendStats>, Arc<BackendHealth>)>>,
    listeners: Mutex<HashMap<String, Arc<ListenerStats>>>,
    pools: Mutex<HashMap<String, Arc<AtomicU64>>>,
    tls: Mutex<HashMap<String, Arc<TlsShared>>>,
}

impl StatsRegistry {
    /// Counters and health of a backend, created on first use.
    pub fn backend(&self, pool: &str, addr: SocketAddr) -> (Arc<BackendStats>, Arc<BackendHealth>) {
        let mut m = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((pool.to_owned(), addr)).or_insert_with(|| (Arc::default(), Arc::new(BackendHealth::new(&self.root)))).clone()
    }
    pub fn listener(&self, name: &str) -> Arc<ListenerStats> {
        let mut m = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_owned()).or_default().clone()
    }
    /// TLS session state and counters of a listener, created on first use.
    pub fn tls(&self, listener: &str) -> crate::error::Result<Arc<TlsShared>> {
        let mut m = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = m.get(listener) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(TlsShared::new()?);
        m.insert(listener.to_owned(), Arc::clone(&t));
        Ok(t)
    }

    /// Live connections of a pool (the total bounded load divides).
    pub fn pool_active(&self, pool: &str) -> Arc<AtomicU64> {
        let mut m = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(pool.to_owned()).or_default().clone()
    }
    /// Forget counters of backends and listeners that left the configuration.
    /// Live connections keep their own `Arc`s, so nothing they count is lost mid-flight.
    pub fn retain(
        &self,
        keep_pool: impl Fn(&str) -> bool,
        keep_backend: impl Fn(&str, &SocketAddr) -> bool,
        keep_listener: impl Fn(&str) -> bool,
    ) {
        self.pools.lock().unwrap_or_else(|p| p.into_inner()).retain(|p, _| keep_pool(p));
        self.backends.lock().unwrap_or_else(|p| p.into_inner()).retain(|(p, a), _| keep_backend(p, a));
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| keep_listener(n));
        self.tls.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| keep_listener(n));
    }
}

/// A point-in-time copy of every counter, serialised to the control plane.
#[derive(Debug, Serialize)]
pub struct StatsReport {
    pub connections_active: u64,
    /// Open connections per worker thread (index = worker).
    pub worker_connections: Vec<u64>,
    pub pipes_in_use: u64,
    /// Directions moved to splice(2) since start.
    pub splice_leases_total: u64,
    pub listeners: Vec<ListenerReport>,
    pub pools: Vec<PoolReport>,
}

#[derive(Debug, Serialize)]
pub struct ListenerReport {
    pub name: String,
    pub address: String,
    pub pool: String,
    pub accepted: u64,
    pub active: u64,
    pub no_backend: u64,
    pub idle_timeouts: u64,
    /// TLS counters (termination or SNI passthrough listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::stats::TlsReport>,
}

#[derive(Debug, Serialize)]
pub struct PoolReport {
    pub name: String,
    pub algorithm: String,
    pub active: u64,
    /// Smallest and largest share of new keys/connections a primary backend
    /// gets with all eligible (table balance; 1/N each is perfect).
    pub share_min: f64,
    pub share_max: f64,
    pub backends: Vec<BackendReport>,
}

#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub address: String,
    pub weight: u32,
    pub backup: bool,
    /// Share of new keys/connections this backend gets with all eligible.
    pub share: f64,
    /// Operator state: ready, drain or maint.
    pub state: AdminState,
    /// Active-check verdict pushed by the control plane: up, down or unknown.
    pub health: &'static str,
    /// Passively ejected right now, and for how much longer.
    pub ejected: bool,
    pub ejection_left_ms: u64,
    /// Consecutive passive failures, and ejections in the current streak.
    pub failures: u32,
    pub ejections: u32,
    /// Would a new connection be allowed here now (state ready and healthy)?
    pub available: bool,
    pub active: u64,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub connect_timeouts: u64,
    pub tls_errors: u64,
    pub connect_time_avg_us: u64,
}

impl BackendReport {
    pub fn read(b: &crate::snapshot::Backend, share: f64) -> Self {
        let s = &b.stats;
        let total = s.total.load(Relaxed);
        let (failures, ejections) = b.health.passive_counts();
        let left = b.health.ejection_left();
        Self {
            address: b.addr.to_string(),
            weight: b.weight,
            backup: b.backup,
            share,
            state: b.state,
            health: b.health.checked(),
            ejected: left.is_some(),
            ejection_left_ms: left.map_or(0, |d| d.as_millis() as u64),
            failures,
            ejections,
            available: b.available(),
            active: s.active.load(Relaxed),
            total,
            bytes_in: s.bytes_in.load(Relaxed),
            bytes_out: s.bytes_out.load(Relaxed),
            connect_errors: s.connect_errors.load(Relaxed),
            connect_timeouts: s.connect_timeouts.load(Relaxed),
            tls_errors: s.tls_errors.load(Relaxed),
            connect_time_avg_us: s.connect_time_us.load(Relaxed).checked_div(total).unwrap_or(0),
        }
    }
}
