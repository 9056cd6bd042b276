//! The immutable tables the hot path reads: per listener its frontend
//! settings and route table, per pool its backends and selectors. Built off
//! the hot path from an [`EngineConfig`], published with one
//! `ArcSwap::store`, read with one atomic load per accepted connection.
//!
//! A build shares what did not change with the previous snapshot: a pool
//! whose configuration is equal is the same `Arc<Pool>` (its tables are not
//! rebuilt), and a listener's rustls `ServerConfig` is rebuilt only when its
//! TLS settings or certificate bytes change. `Registry::builds` counts what
//! was built.

use crate::backend::Backend;
use crate::catalog::{Algorithm, HashKey};
use crate::config::{parse_addr, EngineConfig, ListenerConfig, PoolConfig, SpliceMode, TlsConfig};
use crate::error::Result;
use crate::health::{AdminState, OnDown, PassiveConfig};
use crate::registry::Registry;
use crate::rules::l4::L4Rule;
use crate::rules::rate::RateClass;
use crate::select::{self, key_hash, BuildParams, Members, PickContext, Selector};
use crate::stats::ListenerStats;
use crate::tls::{self, client::BackendTls, server::TlsShared};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A pool: its backends, a selector per tier, and its connect policy.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    /// The configuration it was built from (an equal one reuses this pool).
    pub config: PoolConfig,
    /// What the key of a client is made from when the route supplies none;
    /// `None` for algorithms that read no key (nothing is hashed per connection).
    pub key_source: Option<HashKey>,
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
    /// Some backend has a connection limit (then a full pool may queue).
    pub limited: bool,
    /// Clients waiting for a backend slot; survives swaps.
    pub queue: Arc<crate::queue::PoolQueue>,
    /// Most waiters (0: refuse at once when full) and how long each waits.
    pub queue_max: u64,
    pub queue_timeout: Duration,
    /// What HTTP listeners use: request key, sticky cookie, keep-alive pools.
    pub http: crate::http::pool::HttpPool,
}

impl Pool {
    /// Build a pool from its (checked) configuration; counters come from `registry`.
    /// Fails only on unusable backend TLS material.
    pub fn build(p: &PoolConfig, registry: &Registry) -> Result<Pool> {
        let alpn: &[&[u8]] = if p.http.as_ref().is_some_and(|h| h.http2) { &[b"h2"] } else { &[] };
        let backend_tls = p.backend_tls.as_ref().map(|t| tls::client::build(t, &format!("pools.{}", p.name), alpn)).transpose()?;
        registry.builds.pools.fetch_add(1, Relaxed); // counted once it cannot fail
        let backends: Vec<Backend> = p
            .backends
            .iter()
            .map(|b| {
                let addr = parse_addr(&b.address).expect("checked config");
                let (stats, health) = registry.backend(&p.name, addr);
                if b.state != AdminState::Drain {
                    health.drain_reset();
                }
                let max_conns = b.max_connections.or(p.max_connections).unwrap_or(0) as u64;
                Backend { addr, weight: b.weight, backup: b.backup, state: b.state, stats, health, max_conns }
            })
            .collect();
        let params = BuildParams {
            algorithm: p.algorithm,
            virtual_nodes: p.virtual_nodes.unwrap_or(select::DEFAULT_VIRTUAL_NODES),
            table_size: p.table_size.unwrap_or(select::DEFAULT_TABLE_SIZE),
            balance_factor: p.hash_balance_factor,
            pool_active: registry.pool_active(&p.name),
            names: backends.iter().map(|b| b.addr.to_string()).collect(),
        };
        let backends_limited = backends.iter().any(|b| b.max_conns > 0);
        let primary = select::build(&params, Members::of_tier(&backends, false));
        let backup = select::build(&params, Members::of_tier(&backends, true));
        let idle = backends.iter().map(|b| registry.idle_conns(&p.name, b.addr)).collect();
        let http = crate::http::pool::HttpPool::build(p, &backends, idle);
        Ok(Pool {
            name: p.name.clone(),
            config: p.clone(),
            key_source: match p.algorithm {
                // ip_hash always hashes the source IP (it has no hash_key option).
                Algorithm::IpHash => Some(HashKey::SourceIp),
                a if a.keyed() => Some(p.hash_key),
                _ => None,
            },
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
            limited: backends_limited,
            queue: registry.pool_queue(&p.name),
            queue_max: p.queue.as_ref().map_or(0, |q| q.max as u64),
            queue_timeout: Duration::from_millis(p.queue.as_ref().map_or(0, |q| q.timeout_ms)),
            http,
        })
    }

    /// The pool's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.primary.algorithm()
    }

    /// The selection key of a client when the route supplies none: the
    /// pool's `hash_key` of its address; 0 when the algorithm reads no key.
    #[inline]
    pub fn key_of(&self, client: SocketAddr) -> u64 {
        self.key_source.map_or(0, |k| key_hash(client, k))
    }

    /// Pick an available backend not in `tried`: primaries first (unless
    /// `primaries` is false: their attempts are spent); backups only when no
    /// primary is available. Weight-0 backends are in neither tier. With
    /// `panic_threshold`, when nothing is available and fewer than that share
    /// of primaries is healthy, the pool fails open: any primary not in
    /// maintenance may be picked, healthy or not.
    pub fn pick(&self, ctx: &PickContext, tried: &[usize], primaries: bool) -> Option<usize> {
        let b = &self.backends;
        let eligible = |i: usize| !tried.contains(&i) && b[i].available() && b[i].has_room();
        let primary = if primaries { self.primary.pick(ctx, b, &eligible) } else { None };
        primary.or_else(|| self.backup.pick(ctx, b, &eligible)).or_else(|| if primaries { self.panic_pick(ctx, tried) } else { None })
    }

    /// The next backend to try for a client that already tried `tried`, with
    /// a budget of `retries + 1` attempts per tier: when the primaries have
    /// used theirs, the backups get their own (nginx's `proxy_next_upstream`
    /// moves on to the backup servers the same way), so a backup takes the
    /// client even while dead primaries are not yet known to be down.
    pub fn next_attempt(&self, ctx: &PickContext, tried: &[usize]) -> Option<usize> {
        self.pick(ctx, tried, self.budget(tried)?)
    }

    /// Whether a client that found no backend (after `tried`) should queue:
    /// the pool limits connections, attempts remain, and some backend it
    /// could use is only full.
    pub fn waits_for_room(&self, tried: &[usize]) -> bool {
        self.limited
            && self.budget(tried).is_some()
            && self.backends.iter().enumerate().any(|(i, b)| !tried.contains(&i) && b.available() && !b.has_room())
    }

    /// Wait in the pool's queue until a backend not in `tried` has room.
    pub async fn wait_for_room(&self, tried: &[usize]) -> std::result::Result<(), crate::queue::Refused> {
        let room = || self.backends.iter().enumerate().any(|(i, b)| !tried.contains(&i) && b.available() && b.has_room());
        self.queue.wait(self.queue_max, self.queue_timeout, room).await
    }

    /// Whether attempts remain for a client that tried `tried` (`None`: no),
    /// and whether the primaries still have some of theirs (see `next_attempt`).
    fn budget(&self, tried: &[usize]) -> Option<bool> {
        let attempts = self.retries as usize + 1;
        let on_primaries = tried.iter().filter(|&&i| !self.backends[i].backup).count();
        (tried.len() - on_primaries < attempts).then_some(on_primaries < attempts)
    }

    /// Share of new keys/connections each backend gets now, indexed like
    /// `backends`: the primaries that are available split it as the
    /// algorithm does (down, ejected and drained ones get 0); backups get
    /// it only while no primary is available. Off the hot path (stats, plan).
    pub fn shares(&self) -> Vec<f64> {
        let b = &self.backends;
        let available = |i: usize| b[i].available();
        let primary = self.primary.shares(&available);
        let tier = if primary.iter().any(|&(_, s)| s > 0.0) { primary } else { self.backup.shares(&available) };
        let mut shares = vec![0.0; b.len()];
        for (i, share) in tier {
            shares[i] = share;
        }
        shares
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

    /// Would ejecting one more backend of `backend`'s tier keep that tier
    /// within `max_ejection_percent`? Primaries and backups are counted
    /// apart: idle backups must not make room for ejecting every primary,
    /// nor hold back the ejection of a dead one.
    pub fn may_eject(&self, backend: &Backend) -> bool {
        let tier = || self.backends.iter().filter(|b| b.backup == backend.backup);
        let ejected = tier().filter(|b| b.health.ejected()).count();
        (ejected + 1) * 100 <= self.passive.max_ejection_percent as usize * tier().count()
    }
}

/// A listener's part of the snapshot: how its connections are received
/// (frontend), routed, and forwarded.
#[derive(Debug)]
pub struct Listener {
    /// Its name (the key of `Snapshot::listeners`).
    pub name: Arc<str>,
    pub routes: RouteTable,
    pub idle_timeout: Duration,
    pub splice: SpliceMode,
    pub stats: Arc<ListenerStats>,
    /// TLS termination: the server config and the handshake timeout.
    pub tls: Option<TlsTermination>,
    /// TLS counters and session state (termination or passthrough), kept across swaps.
    pub tls_shared: Option<Arc<TlsShared>>,
    /// How long passthrough waits for a whole ClientHello.
    pub peek_timeout: Duration,
    /// Record every connection in the access log.
    pub access_log: bool,
    /// Routes and limits of an HTTP listener (`None`: it forwards bytes).
    pub http: Option<crate::http::route::HttpTables<Arc<Pool>>>,
    /// Expect a PROXY protocol header first (`None`: the socket's peer is the client).
    pub proxy: Option<ProxyAccept>,
    /// Most connections open at once (accepting pauses at the limit).
    pub max_connections: Option<u64>,
    /// Allow/deny lists and per-source limits (`None`: everyone is admitted).
    pub admission: Option<crate::admission::Admission>,
    /// TCP: the longest a connection lives, and the share of it drawn at
    /// random off each connection's lifetime (see [`Listener::watch`]).
    pub max_lifetime: Option<(Duration, f64)>,
    /// A UDP listener's flow settings (`None`: TCP).
    pub udp: Option<crate::udp::config::UdpListenerConfig>,
}

impl Listener {
    /// When a connection forwarded from now ends by time: the idle timeout,
    /// and its lifetime (a fresh draw in `[max × (1 − jitter), max]`).
    pub fn watch(&self) -> crate::forward::Watch {
        let until = self.max_lifetime.map(|(max, jitter)| {
            let draw = crate::select::fast_rand() as f64 / u64::MAX as f64;
            std::time::Instant::now() + max.mul_f64(1.0 - jitter * draw)
        });
        crate::forward::Watch::new(self.idle_timeout, until)
    }
}

/// Who may send a listener a PROXY header, and how long it may take.
#[derive(Debug)]
pub struct ProxyAccept {
    pub trusted: Vec<crate::cidr::Cidr>,
    pub timeout: Duration,
}

impl ProxyAccept {
    /// Whether `ip` may send a header.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }
}

/// A listener's rustls configuration, and the settings it was built from
/// (equal settings and certificate bytes reuse it).
#[derive(Debug)]
pub struct TlsTermination {
    pub config: Arc<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
    built_from: TlsConfig,
}

/// What a connection is routed by: the listener's policy rules (first match
/// wins), then the SNI of a passthrough listener's ClientHello, then the
/// default pool. The route stage asks it for a decision and hands the pool's
/// key (or the rule's) on to the upstream stage.
#[derive(Debug)]
pub struct RouteTable {
    /// The pool when nothing else matches.
    pub default: Arc<Pool>,
    /// TLS passthrough routing by SNI (the listener peeks the ClientHello).
    pub sni: Option<SniRouter>,
    /// Policy rules, in order.
    pub rules: Vec<L4Rule<Arc<Pool>>>,
    /// Read the ClientHello before routing (passthrough, or rules on the server name without termination).
    peek: bool,
    /// A rule reads the server name / the destination port.
    rules_read_sni: bool,
    rules_read_port: bool,
}

impl RouteTable {
    /// Does routing need the ClientHello's server name (peeked, not terminated)?
    pub fn needs_sni(&self) -> bool {
        self.peek
    }

    /// Does a rule read the server name (a TLS-terminating listener then keeps the handshake's)?
    pub fn reads_sni(&self) -> bool {
        self.rules_read_sni
    }

    /// Does a rule read the destination port?
    pub fn reads_port(&self) -> bool {
        self.rules_read_port
    }

    /// A pool this table routes to, by name: the default, a rule's (or its
    /// hook's fallback), an SNI route's. What a rule's hook may choose.
    pub fn pool_named(&self, name: &str) -> Option<&Arc<Pool>> {
        let rules = self.rules.iter().flat_map(|r| {
            let own = match &r.action {
                crate::rules::l4::Action::Pool(p) => Some(p),
                crate::rules::l4::Action::Deny => None,
            };
            own.into_iter().chain(r.hook.as_ref().and_then(|(_, fallback)| fallback.as_ref()))
        });
        let sni = self.sni.iter().flat_map(|s| s.exact.values().chain(s.wildcard.values()));
        std::iter::once(&self.default).chain(rules).chain(sni).find(|p| p.name == name)
    }

    /// The pool for a connection with server name `sni` when no rule decided.
    pub fn pool_for(&self, sni: Option<&str>) -> &Arc<Pool> {
        self.sni.as_ref().and_then(|r| r.pool_for(sni)).unwrap_or(&self.default)
    }
}

/// Pools by ClientHello server name.
#[derive(Debug)]
pub struct SniRouter {
    exact: HashMap<String, Arc<Pool>>,
    /// Keyed by the parent domain of `*.parent`.
    wildcard: HashMap<String, Arc<Pool>>,
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
    pub listeners: HashMap<String, Arc<Listener>>,
    pub pools: Vec<Arc<Pool>>,
}

impl Snapshot {
    /// Build a snapshot; counters come from `registry` so they survive swaps,
    /// and pools and TLS configs that did not change are taken from `prev`.
    /// `cfg` must have passed [`EngineConfig::check`]. Fails on unusable TLS
    /// material (nothing is published then: the old certificates stay in force).
    pub fn build(cfg: &EngineConfig, registry: &Registry, prev: Option<&Snapshot>) -> Result<Snapshot> {
        let reuse = |p: &PoolConfig| prev.and_then(|s| s.pools.iter().find(|old| old.config == *p)).map(Arc::clone);
        let pools: Vec<Arc<Pool>> =
            cfg.pools.iter().map(|p| reuse(p).map_or_else(|| Pool::build(p, registry).map(Arc::new), Ok)).collect::<Result<_>>()?;
        let by_name: HashMap<&str, &Arc<Pool>> = pools.iter().map(|p| (p.name.as_str(), p)).collect();
        let rates: HashMap<&str, Arc<RateClass>> = cfg
            .rate_classes
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    Arc::new(RateClass::new(&c.name, c.limit, Duration::from_millis(c.per_ms), c.by, registry.rate_class(&c.name, c.by))),
                )
            })
            .collect();
        let mut listeners = HashMap::new();
        for l in &cfg.listeners {
            let old = prev.and_then(|s| s.listeners.get(&l.name));
            let listener = Listener::build(l, &by_name, &rates, registry, old.map(|o| &**o))?;
            listeners.insert(l.name.clone(), Arc::new(listener));
        }
        Ok(Snapshot { listeners, pools })
    }

    /// A snapshot equal to `self` but with pool `pool` replaced: no other
    /// pool's tables and no TLS config are rebuilt (the listeners' route
    /// tables, a few pointers each, are made anew to point at the new pool).
    pub fn with_pool(&self, cfg: &EngineConfig, pool: &PoolConfig, registry: &Registry) -> Result<Snapshot> {
        let mut next = cfg.clone();
        if let Some(p) = next.pools.iter_mut().find(|p| p.name == pool.name) {
            *p = pool.clone();
        }
        Snapshot::build(&next, registry, Some(self))
    }

    /// Forget counters of pools, backends and listeners not in this snapshot.
    /// Called once the snapshot is published, so a failed update loses nothing.
    pub fn prune(&self, registry: &Registry) {
        let pool = |name: &str| self.pools.iter().find(|p| p.name == name);
        registry.retain(
            |p| pool(p).is_some(),
            |p, addr| pool(p).is_some_and(|p| p.backends.iter().any(|b| b.addr == *addr)),
            |name| self.listeners.contains_key(name),
        );
    }
}

/// Address ranges of a checked config (`EngineConfig::check` named any bad one).
fn cidrs(list: &[String]) -> Vec<crate::cidr::Cidr> {
    list.iter().map(|c| crate::cidr::Cidr::parse(c).expect("checked config")).collect()
}

/// A listener's admission rules, if it has any.
fn admission(l: &ListenerConfig, registry: &Registry) -> Option<crate::admission::Admission> {
    let per = l.per_source.as_ref();
    if l.allow.is_none() && l.deny.is_empty() && per.is_none() {
        return None;
    }
    Some(crate::admission::Admission {
        allow: l.allow.as_deref().map(cidrs),
        deny: cidrs(&l.deny),
        per_source_max: per.and_then(|p| p.max_connections).unwrap_or(0),
        rate: per
            .and_then(|p| p.rate.as_ref())
            .map(|r| crate::admission::Rate { connections: r.connections, per: Duration::from_millis(r.per_ms) }),
        table: registry.sources(&l.name),
    })
}

impl Listener {
    /// Build a listener's tables; its TLS config is taken from `old` when
    /// the TLS settings and certificate bytes are unchanged.
    fn build(
        l: &ListenerConfig,
        pools: &HashMap<&str, &Arc<Pool>>,
        rates: &HashMap<&str, Arc<RateClass>>,
        registry: &Registry,
        old: Option<&Listener>,
    ) -> Result<Listener> {
        let at = format!("listeners.{}", l.name);
        let rules = l
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let rate = r.rate_class.as_deref().map(|c| Arc::clone(&rates[c]));
                L4Rule::build(r, |p| Arc::clone(pools[p]), rate, registry.route(&l.name, &r.name), |k| registry.hooks.hook(k))
                    .map_err(|e| crate::error::Error::config_at(format!("{at}.rules[{i}]"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        let rules_read_sni = rules.iter().any(L4Rule::reads_sni);
        let peek = l.sni_routes.is_some() || (rules.iter().any(L4Rule::needs_sni) && l.tls.is_none());
        let tls_shared = if l.tls.is_some() || peek { Some(registry.tls(&l.name)?) } else { None };
        let tls = match (&l.tls, &tls_shared) {
            (Some(t), Some(shared)) => Some(match old.and_then(|o| o.tls.as_ref()).filter(|o| o.built_from == *t) {
                Some(o) => TlsTermination { config: Arc::clone(&o.config), handshake_timeout: o.handshake_timeout, built_from: t.clone() },
                None => {
                    let config = tls::server::build(t, shared, &at)?;
                    registry.builds.tls_configs.fetch_add(1, Relaxed);
                    TlsTermination {
                        config,
                        handshake_timeout: Duration::from_millis(t.handshake_timeout_ms.max(1)),
                        built_from: t.clone(),
                    }
                }
            }),
            _ => None,
        };
        let sni = l.sni_routes.as_ref().map(|rs| {
            let mut router = SniRouter { exact: HashMap::new(), wildcard: HashMap::new() };
            for r in rs {
                let pool = Arc::clone(pools[r.pool.as_str()]);
                let name = r.name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(parent) => router.wildcard.entry(parent.to_owned()).or_insert(pool),
                    None => router.exact.entry(name).or_insert(pool),
                };
            }
            router
        });
        Ok(Listener {
            name: Arc::from(l.name.as_str()),
            routes: RouteTable {
                default: Arc::clone(pools[l.pool.as_str()]),
                sni,
                rules_read_port: rules.iter().any(L4Rule::needs_port),
                rules,
                peek,
                rules_read_sni,
            },
            idle_timeout: Duration::from_millis(l.idle_timeout_ms.max(1)),
            splice: l.splice,
            stats: registry.listener(&l.name),
            tls,
            tls_shared,
            peek_timeout: Duration::from_millis(l.peek_timeout_ms.max(1)),
            access_log: l.access_log,
            http: l
                .http
                .as_ref()
                .map(|h| {
                    crate::http::route::HttpTables::build(
                        h,
                        &l.name,
                        |p| Arc::clone(pools[p]),
                        |c| Arc::clone(&rates[c]),
                        |r| registry.route(&l.name, r),
                        |k| registry.hooks.hook(k),
                    )
                })
                .transpose()?,
            max_connections: l.max_connections.map(u64::from),
            max_lifetime: l.max_lifetime_ms.map(|ms| (Duration::from_millis(ms.max(1)), l.max_lifetime_jitter)),
            udp: l.udp.clone(),
            admission: admission(l, registry),
            proxy: l
                .proxy_protocol
                .as_ref()
                .map(|p| ProxyAccept { trusted: cidrs(&p.trusted), timeout: Duration::from_millis(p.timeout_ms.max(1)) }),
        })
    }
}
