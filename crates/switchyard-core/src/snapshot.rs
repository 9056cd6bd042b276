//! The immutable routing table: listeners → pools → backends with their
//! selectors. Built off the hot path from an [`EngineConfig`], published with
//! one `ArcSwap::store`, read with one atomic load per accepted connection.

use crate::config::{parse_addr, EngineConfig, PoolConfig, SpliceMode};
use crate::error::Result;
use crate::health::{AdminState, BackendHealth, OnDown, PassiveConfig};
use crate::tls::{self, client::BackendTls, server::TlsShared};
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
    pub state: AdminState,
    pub stats: Arc<BackendStats>,
    pub health: Arc<BackendHealth>,
}

impl Backend {
    /// May it take a new connection: ready, not checked down, not ejected?
    #[inline]
    pub fn available(&self) -> bool {
        self.state == AdminState::Ready && self.health.usable()
    }
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
    pub passive: PassiveConfig,
    pub panic_threshold: Option<u32>,
    pub on_down: OnDown,
    /// TLS to the backends, if configured.
    pub backend_tls: Option<BackendTls>,
    /// Live connections of the whole pool (bounded load); survives swaps.
    pub active: Arc<AtomicU64>,
    /// Share of new keys/connections each backend gets with everything
    /// eligible (table balance), indexed like `backends`; 0 for weight 0.
    pub shares: Vec<f64>,
}

impl Pool {
    /// Build a pool from its (checked) configuration; counters come from `registry`.
    /// Fails only on unusable backend TLS material.
    pub fn build(p: &PoolConfig, registry: &StatsRegistry) -> Result<Pool> {
        let backend_tls = p.backend_tls.as_ref().map(|t| tls::client::build(t, &format!("pools.{}", p.name))).transpose()?;
        let backends: Vec<Backend> = p
            .backends
            .iter()
            .map(|b| {
                let addr = parse_addr(&b.address).expect("checked config");
                let (stats, health) = registry.backend(&p.name, addr);
                Backend { addr, weight: b.weight, backup: b.backup, state: b.state, stats, health }
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
        Ok(Pool {
            name: p.name.clone(),
            backends,
            primary,
            backup,
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.max(1)),
            retries: p.retries,
            passive: p.passive.clone(),
            panic_threshold: p.panic_threshold,
            on_down: p.on_down,
            backend_tls,
            active: params.pool_active,
            shares,
        })
    }

    /// The algorithm's name.
    pub fn algorithm(&self) -> &'static str {
        self.primary.name()
    }

    /// Pick an available backend not in `tried`: primaries first; backups only
    /// when no primary is available. Weight-0 backends are in neither tier.
    /// With `panic_threshold`, when nothing is available and fewer than that
    /// share of primaries is healthy, the pool fails open: any primary not in
    /// maintenance may be picked, healthy or not.
    pub fn pick(&self, ctx: &PickContext, tried: &[usize]) -> Option<usize> {
        let b = &self.backends;
        let eligible = |i: usize| !tried.contains(&i) && b[i].available();
        self.primary
            .pick(ctx, b, &eligible)
            .or_else(|| self.backup.pick(ctx, b, &eligible))
            .or_else(|| self.panic_pick(ctx, tried))
    }

    /// The fail-open path (cold: only reached when nothing is available).
    #[cold]
    fn panic_pick(&self, ctx: &PickContext, tried: &[usize]) -> Option<usize> {
        let threshold = self.panic_threshold? as usize;
        let b = &self.backends;
        let primaries = b.iter().filter(|x| !x.backup && x.weight > 0);
        let (total, healthy) = primaries.fold((0, 0), |(t, h), x| (t + 1, h + x.available() as usize));
        if total == 0 || healthy * 100 >= threshold * total {
            return None;
        }
        self.primary.pick(ctx, b, &|i| !tried.contains(&i) && b[i].state != AdminState::Maint)
    }

    /// Would ejecting one more backend keep the pool within `max_ejection_percent`?
    pub fn may_eject(&self) -> bool {
        let ejected = self.backends.iter().filter(|b| b.health.ejected()).count();
        (ejected + 1) * 100 <= self.passive.max_ejection_percent as usize * self.backends.len()
    }
}

/// What a listener's connections are routed by.
#[derive(Debug)]
pub struct Route {
    /// The pool (the default pool when routing by SNI).
    pub pool: Arc<Pool>,
    pub idle_timeout: Duration,
    pub splice: SpliceMode,
    pub stats: Arc<ListenerStats>,
    /// TLS termination: the server config and the handshake timeout.
    pub tls: Option<(Arc<rustls::ServerConfig>, Duration)>,
    /// TLS passthrough routing by SNI.
    pub sni: Option<SniRouter>,
    /// TLS counters (termination or passthrough), kept across swaps.
    pub tls_shared: Option<Arc<TlsShared>>,
}

/// Pools by ClientHello server name.
#[derive(Debug)]
pub struct SniRouter {
    exact: HashMap<String, Arc<Pool>>,
    /// Keyed by the parent domain of `*.parent`.
    wildcard: HashMap<String, Arc<Pool>>,
    pub peek_timeout: Duration,
}

impl SniRouter {
    /// The pool for `name`: exact match, then a one-label wildcard; `None` = the default pool.
    pub fn pool_for(&self, name: Option<&str>) -> Option<&Arc<Pool>> {
        let name = name?;
        self.exact.get(name).or_else(|| self.wildcard.get(name.split_once('.')?.1))
    }
}

/// Everything the hot path reads, swapped as a whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub routes: HashMap<String, Arc<Route>>,
    pub pools: Vec<Arc<Pool>>,
}

impl Snapshot {
    /// Build a snapshot; counters come from `registry` so they survive swaps.
    /// `cfg` must have passed [`EngineConfig::check`]. Fails on unusable TLS
    /// material (nothing is published then: the old certificates stay in force).
    pub fn build(cfg: &EngineConfig, registry: &StatsRegistry) -> Result<Snapshot> {
        let pools: Vec<Arc<Pool>> = cfg.pools.iter().map(|p| Pool::build(p, registry).map(Arc::new)).collect::<Result<_>>()?;
        let by_name: HashMap<&str, &Arc<Pool>> = pools.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut routes = HashMap::new();
        for l in &cfg.listeners {
            let at = format!("listeners.{}", l.name);
            let tls_shared = if l.tls.is_some() || l.sni_routes.is_some() { Some(registry.tls(&l.name)?) } else { None };
            let tls = match (&l.tls, &tls_shared) {
                (Some(t), Some(shared)) => Some((tls::server::build(t, shared, &at)?, Duration::from_millis(t.handshake_timeout_ms.max(1)))),
                _ => None,
            };
            let sni = l.sni_routes.as_ref().map(|rs| {
                let mut router = SniRouter { exact: HashMap::new(), wildcard: HashMap::new(), peek_timeout: Duration::from_millis(l.peek_timeout_ms.max(1)) };
                for r in rs {
                    let pool = Arc::clone(by_name[r.pool.as_str()]);
                    let name = r.name.to_ascii_lowercase();
                    match name.strip_prefix("*.") {
                        Some(parent) => router.wildcard.entry(parent.to_owned()).or_insert(pool),
                        None => router.exact.entry(name).or_insert(pool),
                    };
                }
                router
            });
            let route = Route {
                pool: Arc::clone(by_name[l.pool.as_str()]),
                idle_timeout: Duration::from_millis(l.idle_timeout_ms.max(1)),
                splice: l.splice,
                stats: registry.listener(&l.name),
                tls,
                sni,
                tls_shared,
            };
            routes.insert(l.name.clone(), Arc::new(route));
        }
        Ok(Snapshot { routes, pools })
    }

    /// Forget counters of pools, backends and listeners not in this snapshot.
    /// Called once the snapshot is published, so a failed update loses nothing.
    pub fn prune(&self, registry: &StatsRegistry) {
        let pool = |name: &str| self.pools.iter().find(|p| p.name == name);
        registry.retain(
            |p| pool(p).is_some(),
            |p, addr| pool(p).is_some_and(|p| p.backends.iter().any(|b| b.addr == *addr)),
            |name| self.routes.contains_key(name),
        );
    }
}
