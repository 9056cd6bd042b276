//! The immutable routing table: listeners → pools → backends with their
//! selectors. Built off the hot path from an [`EngineConfig`], published with
//! one `ArcSwap::store`, read with one atomic load per accepted connection.

use crate::config::{parse_addr, EngineConfig, SpliceMode};
use crate::select::{self, PickContext, Selector};
use crate::stats::{BackendStats, ListenerStats, StatsRegistry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One backend as the hot path sees it.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    pub stats: Arc<BackendStats>,
}

/// A pool: its backends, its selector and its connect policy.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<Backend>,
    pub selector: Box<dyn Selector>,
    pub connect_timeout: Duration,
    pub retries: u32,
}

impl Pool {
    /// Pick a backend not in `tried`. Primaries first; backups only when no
    /// primary is eligible. Weight 0 takes no new connections.
    pub fn pick(&self, ctx: &PickContext, tried: &[usize]) -> Option<usize> {
        let n = self.backends.len();
        let usable = |i: usize| self.backends[i].weight > 0 && !tried.contains(&i);
        self.selector
            .pick(ctx, n, &|i| usable(i) && !self.backends[i].backup)
            .or_else(|| self.selector.pick(ctx, n, &|i| usable(i) && self.backends[i].backup))
    }
}

/// What a listener's connections are routed by.
#[derive(Debug)]
pub struct Route {
    pub pool: Arc<Pool>,
    pub idle_timeout: Duration,
    pub splice: SpliceMode,
    pub stats: Arc<ListenerStats>,
}

/// Everything the hot path reads, swapped as a whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub routes: HashMap<String, Arc<Route>>,
    pub pools: Vec<Arc<Pool>>,
}

impl Snapshot {
    /// Build a snapshot; counters come from `registry` so they survive swaps.
    /// `cfg` must have passed [`EngineConfig::check`].
    pub fn build(cfg: &EngineConfig, registry: &StatsRegistry) -> Snapshot {
        let pools: Vec<Arc<Pool>> = cfg
            .pools
            .iter()
            .map(|p| {
                let backends: Vec<Backend> = p
                    .backends
                    .iter()
                    .map(|b| {
                        let addr = parse_addr(&b.address).expect("checked config");
                        Backend { addr, weight: b.weight, backup: b.backup, stats: registry.backend(&p.name, addr) }
                    })
                    .collect();
                let selector = select::build(&p.algorithm, &backends);
                Arc::new(Pool {
                    name: p.name.clone(),
                    backends,
                    selector,
                    connect_timeout: Duration::from_millis(p.connect_timeout_ms.max(1)),
                    retries: p.retries,
                })
            })
            .collect();
        let by_name: HashMap<&str, &Arc<Pool>> = pools.iter().map(|p| (p.name.as_str(), p)).collect();
        let routes = cfg
            .listeners
            .iter()
            .map(|l| {
                let route = Route {
                    pool: Arc::clone(by_name[l.pool.as_str()]),
                    idle_timeout: Duration::from_millis(l.idle_timeout_ms.max(1)),
                    splice: l.splice,
                    stats: registry.listener(&l.name),
                };
                (l.name.clone(), Arc::new(route))
            })
            .collect();
        registry.retain(
            |pool, addr| by_name.get(pool).is_some_and(|p| p.backends.iter().any(|b| b.addr == *addr)),
            |name| cfg.listeners.iter().any(|l| l.name == name),
        );
        Snapshot { routes, pools }
    }
}
