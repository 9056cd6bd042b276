//! Identity-keyed state that outlives snapshots: per backend its counters and
//! health, per listener its counters and TLS session state (ticket keys and
//! cache, so a certificate reload keeps resumption), per pool its live
//! connection count. A snapshot build takes these by identity, so an update
//! never resets them; [`Registry::retain`] forgets what left the config.

use crate::admission::SourceTable;
use crate::health::BackendHealth;
use crate::http::pool::IdleConns;
use crate::http::stats::RouteStats;
use crate::queue::PoolQueue;
use crate::stats::{BackendStats, BuildCounters, ListenerStats};
use crate::tls::server::TlsShared;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// A backend's counters and health.
type BackendShared = (Arc<BackendStats>, Arc<BackendHealth>);

/// Finds or creates the shared state of a backend, listener or pool by identity.
#[derive(Debug, Default)]
pub struct Registry {
    /// Cancelled when the engine's drain deadline passes; every backend's kill token is its child.
    pub root: tokio_util::sync::CancellationToken,
    backends: Mutex<HashMap<(String, SocketAddr), BackendShared>>,
    listeners: Mutex<HashMap<String, Arc<ListenerStats>>>,
    pools: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// Per listener: connections and rate tokens per source address.
    sources: Mutex<HashMap<String, Arc<SourceTable>>>,
    /// Per rate class: request/connection tokens per source address.
    classes: Mutex<HashMap<String, Arc<SourceTable>>>,
    /// Per pool: clients waiting for a backend slot.
    queues: Mutex<HashMap<String, Arc<PoolQueue>>>,
    tls: Mutex<HashMap<String, Arc<TlsShared>>>,
    /// HTTP keep-alive connections per backend.
    idle: Mutex<HashMap<(String, SocketAddr), Arc<IdleConns>>>,
    /// HTTP route counters per (listener, route name).
    routes: Mutex<HashMap<(String, String), Arc<RouteStats>>>,
    /// How many pools and TLS configs snapshots have built.
    pub builds: BuildCounters,
    /// Counters of opt-in hooks, by name.
    pub hooks: crate::hook::HookTable,
}

impl Registry {
    /// Counters and health of a backend, created on first use.
    pub fn backend(&self, pool: &str, addr: SocketAddr) -> BackendShared {
        let mut m = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((pool.to_owned(), addr)).or_insert_with(|| (Arc::default(), Arc::new(BackendHealth::new(&self.root)))).clone()
    }
    /// The health of every backend known so far (what a hand-over parks).
    pub fn backend_healths(&self) -> Vec<Arc<BackendHealth>> {
        self.backends.lock().unwrap_or_else(|p| p.into_inner()).values().map(|(_, h)| Arc::clone(h)).collect()
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

    /// The idle keep-alive connections of a backend, created on first use.
    pub fn idle_conns(&self, pool: &str, addr: SocketAddr) -> Arc<IdleConns> {
        let mut m = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((pool.to_owned(), addr)).or_default().clone()
    }

    /// Close the HTTP keep-alive connections of every backend that have been
    /// idle past their timeout (see `IdleConns::sweep`).
    pub fn sweep_idle(&self) {
        let now = std::time::Instant::now();
        let lists: Vec<Arc<IdleConns>> = self.idle.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for l in lists {
            l.sweep(now);
        }
    }

    /// The counters of an HTTP route, created on first use.
    pub fn route(&self, listener: &str, route: &str) -> Arc<RouteStats> {
        let mut m = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((listener.to_owned(), route.to_owned())).or_default().clone()
    }

    /// Live connections of a pool (the total bounded load divides).
    pub fn pool_active(&self, pool: &str) -> Arc<AtomicU64> {
        let mut m = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(pool.to_owned()).or_default().clone()
    }
    /// The per-source table of a listener, created on first use.
    pub fn sources(&self, listener: &str) -> Arc<SourceTable> {
        let mut m = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(listener.to_owned()).or_default().clone()
    }

    /// The buckets of a rate class, created on first use (kept by name across
    /// reloads, like a listener's source table).
    /// A class whose `by` changed starts with fresh buckets.
    pub fn rate_class(&self, class: &str, by: crate::rules::config::RateBy) -> Arc<SourceTable> {
        let mut m = self.classes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(format!("{class}/{by:?}")).or_default().clone()
    }

    /// The queue of a pool, created on first use.
    pub fn pool_queue(&self, pool: &str) -> Arc<PoolQueue> {
        let mut m = self.queues.lock().unwrap_or_else(|p| p.into_inner());
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
        self.queues.lock().unwrap_or_else(|p| p.into_inner()).retain(|p, _| keep_pool(p));
        self.backends.lock().unwrap_or_else(|p| p.into_inner()).retain(|(p, a), _| keep_backend(p, a));
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).retain(|(p, a), _| keep_backend(p, a));
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).retain(|(l, _), _| keep_listener(l));
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| keep_listener(n));
        self.tls.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| keep_listener(n));
        self.sources.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| keep_listener(n));
    }
}
