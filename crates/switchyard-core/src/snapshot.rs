//! The immutable routing table: listeners → pools → backends with their
//! selectors. Built off the hot path from an [`EngineConfig`], published with
//! one `ArcSwap::store`, read with one atomic load per accepted connection.

use crate::config::{parse_addr, EngineConfig, PoolConfig, SpliceMode};
use crate::select::{self, BuildParams, Members, PickContext, Selector};
use crate::stats::{BackendStats, ListenerStats, StatsRegistry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
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

/// A pool: its backends, a selector per tier, and its connect policy.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<Backend>,
    /// Chooses among primaries (weight > 0).
    pub primary: Box<dyn Selector>,
    /// Chooses among backups, used only when no primary is eligible.
    pub backup: Box<dyn Selector>,
    pub connect_timeout: Duration,
    pub retries: u32,
    /// Live connections of the whole pool (bounded load); survives swaps.
    pub active: Arc<AtomicU64>,
    /// Share of new keys/connections each backend gets with everything
    /// eligible (table balance), indexed like `backends`; 0 for weight 0.
    pub shares: Vec<f64>,
}

impl Pool {
    /// Build a pool from its (checked) configuration; counters come from `registry`.
    pub fn build(p: &PoolConfig, registry: &StatsRegistry) -> Pool {
        let backends: Vec<Backend> = p
            .backends
            .iter()
            .map(|b| {
                let addr = parse_addr(&b.address).expect("checked config");
                Backend { addr, weight: b.weight, backup: b.backup, stats: registry.backend(&p.name, addr) }
            })
            .collect();
        let params = BuildParams {
            algorithm: &p.algorithm,
            hash_key: p.hash_key,
            virtual_nodes: p.virtual_nodes.unwrap_or(select::DEFAULT_VIRTUAL_NODES),
            table_size: p.table_size.unwrap_or(select::DEFAULT_TABLE_SIZE),
            balance_factor: p.hash_balance_factor,
            pool_active: registry.pool_active(&p.name),
            names: backends.iter().map(|b| b.addr.to_string()).collect(),
        };
        let primary = select::build(&params, Members::of_tier(&backends, false));
        let backup = select::build(&params, Members::of_tier(&backends, true));
        let mut shares = vec![0.0; backends.len()];
        for (i, share) in primary.shares() {
            shares[i] = share;
        }
        Pool {
            name: p.name.clone(),
            backends,
            primary,
            backup,
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.max(1)),
            retries: p.retries,
            active: params.pool_active,
            shares,
        }
    }

    /// The algorithm's name.
    pub fn algorithm(&self) -> &'static str {
        self.primary.name()
    }

    /// Pick a backend not in `tried`: primaries first; backups only when no
    /// primary is eligible. Weight-0 backends are not members of either tier.
    pub fn pick(&self, ctx: &PickContext, tried: &[usize]) -> Option<usize> {
        let eligible = |i: usize| !tried.contains(&i);
        self.primary.pick(ctx, &self.backends, &eligible).or_else(|| self.backup.pick(ctx, &self.backends, &eligible))
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
        let pools: Vec<Arc<Pool>> = cfg.pools.iter().map(|p| Arc::new(Pool::build(p, registry))).collect();
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
            |pool| by_name.contains_key(pool),
            |pool, addr| by_name.get(pool).is_some_and(|p| p.backends.iter().any(|b| b.addr == *addr)),
            |name| cfg.listeners.iter().any(|l| l.name == name),
        );
        Snapshot { routes, pools }
    }
}
