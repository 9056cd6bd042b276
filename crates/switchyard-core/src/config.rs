//! The resolved configuration the control plane sends (as JSON). TypeScript
//! has already validated it and filled every default (`ts/config/types.ts`,
//! `ResolvedConfig`); this side re-checks what the data plane depends on, so a
//! bad table can never reach the hot path. The TypeScript types of these
//! structs are generated from them (`ts/binding/types.generated.ts`).

pub use crate::catalog::HashKey;
use crate::catalog::{self, Algorithm, PoolOption};
use crate::error::{Error, Result};
pub use crate::health::{AdminState, OnDown, PassiveConfig};
pub use crate::http::config::{
    HeaderOps, HeaderPair, HttpListenerConfig, HttpPoolConfig, PathMatch, Protocol, RequestKey, RouteConfig, StickyConfig, ValueMatch,
};
pub use crate::rules::config::{L4Action, L4Key, L4RuleConfig, RateBy, RateClassConfig, TlvKind, TlvMatch};
pub use crate::tls::{BackendTlsConfig, CertConfig, TlsConfig};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;

/// How a direction of a connection moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SpliceMode {
    /// Start with a userspace copy; move to splice(2) after sustained full reads.
    Auto,
    /// splice(2) from the first byte (falls back to copy if no pipe is available).
    Always,
    /// Userspace copy only.
    Never,
}

/// How a listener's connections are spread over the workers (see `accept.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AcceptMode {
    /// One socket all workers accept from, favouring the least loaded (Linux).
    #[default]
    Shared,
    /// One SO_REUSEPORT socket per worker; the kernel hashes connections to them.
    Reuseport,
}

/// The whole data-plane configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Runtime worker threads; fixed for the life of the engine.
    pub workers: usize,
    /// How connections are spread over the workers; fixed for the life of the engine.
    #[serde(default)]
    pub accept: AcceptMode,
    /// Most client connections open at once in the whole engine (HAProxy's
    /// global `maxconn`); at the limit every listener stops accepting.
    /// Default: derived from `RLIMIT_NOFILE` (see `limits::derived_max_connections`).
    #[serde(default)]
    pub max_connections: Option<u64>,
    pub listeners: Vec<ListenerConfig>,
    pub pools: Vec<PoolConfig>,
    /// Named per-client rates that rules and routes count against.
    #[serde(default)]
    pub rate_classes: Vec<RateClassConfig>,
}

/// One TCP listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub address: String,
    pub pool: String,
    pub backlog: u32,
    /// `TCP_DEFER_ACCEPT`: accept only once the client has sent data (Linux).
    #[serde(default)]
    pub defer_accept: bool,
    /// `IP_FREEBIND` (Linux): bind the address even if no interface holds it
    /// yet (a virtual IP that moves here on failover). Read when the socket
    /// is bound.
    #[serde(default)]
    pub freebind: bool,
    pub idle_timeout_ms: u64,
    pub splice: SpliceMode,
    /// Terminate TLS on this listener.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// TLS passthrough: route by the ClientHello's SNI (exact names and
    /// `*.domain` wildcards) to pools; `pool` is the default.
    #[serde(default)]
    pub sni_routes: Option<Vec<SniRoute>>,
    /// TCP listeners: policy rules, first match wins, before `sni_routes` and `pool`.
    #[serde(default)]
    pub rules: Vec<L4RuleConfig>,
    /// How long to wait for a whole ClientHello (passthrough).
    #[serde(default = "default_peek_timeout")]
    pub peek_timeout_ms: u64,
    /// Keep an access log: one record per client connection (see `access.rs`).
    #[serde(default)]
    pub access_log: bool,
    /// What the listener speaks; `http` needs `http`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Routes and limits of an HTTP listener.
    #[serde(default)]
    pub http: Option<HttpListenerConfig>,
    /// `protocol: udp`: flows and their limits.
    #[serde(default)]
    pub udp: Option<crate::udp::config::UdpListenerConfig>,
    /// Expect a PROXY protocol header (v1 or v2) first on every connection,
    /// from trusted sources only.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyAcceptConfig>,
    /// Most connections open at once; at the limit the listener stops
    /// accepting and new clients wait in the backlog (HAProxy `maxconn`).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Only sources in these CIDRs may connect (absent: any).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Sources in these CIDRs may not connect (checked before `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Limits per source address (the PROXY-declared client's, if any).
    #[serde(default)]
    pub per_source: Option<PerSourceConfig>,
    /// TCP listeners: close a connection this long after it started,
    /// whatever it does (so long-lived clients reconnect and rebalance).
    #[serde(default)]
    pub max_lifetime_ms: Option<u64>,
    /// Each connection's lifetime is drawn from `[max × (1 − jitter), max]`,
    /// so a fleet of connections opened together does not reconnect together.
    #[serde(default)]
    pub max_lifetime_jitter: f64,
    /// Share (0..=1) of connections (HTTP: requests) whose balancing decision
    /// is traced (see `trace.rs`); 0 = none. `Engine::set_trace_sample`
    /// changes it at runtime until a reload changes this value.
    #[serde(default)]
    pub trace_sample: f64,
}

/// Limits per source address of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PerSourceConfig {
    /// Most connections open at once from one source.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Most new connections from one source over a period (a token bucket:
    /// a burst of `connections`, refilled evenly over `per_ms`).
    #[serde(default)]
    pub rate: Option<RateConfig>,
}

/// A connection rate: `connections` per `per_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub connections: u32,
    pub per_ms: u64,
}

/// A listener behind another balancer: every connection starts with a PROXY
/// protocol header (v1 or v2) whose source address is then the client's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ProxyAcceptConfig {
    /// Source addresses allowed to send a header, as CIDRs (`10.0.0.0/8`,
    /// `::1/128`); a connection from any other source is closed.
    pub trusted: Vec<String>,
    /// How long a connection may take to send its whole header.
    pub timeout_ms: u64,
}

/// The PROXY protocol version a pool writes to its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum ProxyVersion {
    /// The text line (`PROXY TCP4 ...`).
    V1,
    /// The binary header, with TLS TLVs where this listener terminated TLS.
    V2,
}

fn default_peek_timeout() -> u64 {
    catalog::PEEK_TIMEOUT_MS
}

/// One passthrough route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SniRoute {
    /// `api.example.com` or `*.example.com`.
    pub name: String,
    pub pool: String,
}

/// One pool of backends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    pub algorithm: Algorithm,
    pub connect_timeout_ms: u64,
    pub retries: u32,
    pub backends: Vec<BackendConfig>,
    /// What hash algorithms hash (consistent_hash, maglev). Default: source IP.
    #[serde(default)]
    pub hash_key: HashKey,
    /// Ring points per weight unit (consistent_hash). Default [`catalog::VIRTUAL_NODES`].
    #[serde(default)]
    pub virtual_nodes: Option<u32>,
    /// Lookup table size, prime (maglev). Default [`catalog::TABLE_SIZE`].
    #[serde(default)]
    pub table_size: Option<u32>,
    /// Bounded load: no backend takes more than this × the average active connections.
    #[serde(default)]
    pub hash_balance_factor: Option<f64>,
    /// Passive ejection policy.
    #[serde(default)]
    pub passive: PassiveConfig,
    /// Fail open: when no primary or backup is available and fewer than this
    /// percentage of primaries is healthy, use every primary not in maintenance.
    #[serde(default)]
    pub panic_threshold: Option<u32>,
    /// What to do with established connections when a backend is marked down.
    #[serde(default)]
    pub on_down: OnDown,
    /// TLS to the backends.
    #[serde(default)]
    pub backend_tls: Option<BackendTlsConfig>,
    /// What HTTP listeners use of this pool (request keys, sticky cookies,
    /// Host, keep-alive); defaults when absent.
    #[serde(default)]
    pub http: Option<HttpPoolConfig>,
    /// Write a PROXY protocol header before the first byte to each backend
    /// connection (TCP listeners only: HTTP reuses backend connections).
    #[serde(default)]
    pub proxy_protocol: Option<ProxyVersion>,
    /// Most connections (HTTP: requests in flight) per backend, unless the
    /// backend sets its own; a full backend is skipped (HAProxy `maxconn`).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// When every backend that could take a client is full: wait in a FIFO
    /// queue (HAProxy `maxqueue`, `timeout queue`); absent: refuse at once.
    #[serde(default)]
    pub queue: Option<QueueConfig>,
}

/// The queue of a pool whose backends are full.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Most clients waiting; one more is refused at once.
    pub max: u32,
    /// How long a client waits for a free backend before it is refused.
    pub timeout_ms: u64,
}

/// One backend of a pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub address: String,
    pub weight: u32,
    pub backup: bool,
    /// ready, drain or maint.
    #[serde(default)]
    pub state: AdminState,
    /// Most connections (HTTP: requests in flight) to this backend; default:
    /// the pool's `max_connections`.
    #[serde(default)]
    pub max_connections: Option<u32>,
}

impl EngineConfig {
    /// Parse and check a configuration sent by the control plane. A
    /// malformed document names the field (`pools[0].algorithm`).
    pub fn from_json(json: &str) -> Result<Self> {
        let cfg: EngineConfig = parse_json(json)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Check the invariants the data plane relies on.
    pub fn check(&self) -> Result<()> {
        if !catalog::WORKERS.contains(self.workers as u64) {
            let (min, max) = (catalog::WORKERS.min, catalog::WORKERS.max);
            return Err(Error::config_at("workers", format!("expected {min}..{max}, got {}", self.workers)));
        }
        let mut pool_names = HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            if !pool_names.insert(p.name.as_str()) {
                return Err(Error::config_at(format!("pools[{i}].name"), format!("duplicate pool {:?}", p.name)));
            }
            p.check()?;
        }
        let mut classes = HashSet::new();
        for (i, c) in self.rate_classes.iter().enumerate() {
            if !classes.insert(c.name.as_str()) {
                return Err(Error::config_at(format!("rate_classes[{i}].name"), format!("duplicate rate class {:?}", c.name)));
            }
            if c.limit == 0 || c.per_ms == 0 {
                return Err(Error::config_at(format!("rate_classes[{i}]"), "limit and per must be at least 1"));
            }
        }
        let mut names = HashSet::new();
        let mut bound: Vec<(&str, SocketAddr, bool)> = Vec::new();
        for l in &self.listeners {
            let at = format!("listeners.{}", l.name);
            if !names.insert(l.name.as_str()) {
                return Err(Error::config_at(at, "duplicate listener name"));
            }
            let addr = parse_addr(&l.address).map_err(|m| Error::config_at(format!("{at}.address"), m))?;
            // Two listeners on one port would either fail to bind or, with
            // SO_REUSEPORT, split the port's connections at random: refuse it here.
            // Ports are per transport: a TCP and a UDP listener may share one.
            let udp = l.protocol == Protocol::Udp;
            if let Some((other, ..)) = bound.iter().find(|(_, b, u)| *u == udp && overlaps(*b, addr)) {
                return Err(Error::config_at(
                    format!("{at}.address"),
                    format!("{} overlaps listeners.{other}.address (same port)", l.address),
                ));
            }
            bound.push((l.name.as_str(), addr, udp));
            if !pool_names.contains(l.pool.as_str()) {
                return Err(Error::config_at(format!("{at}.pool"), format!("no pool named {:?}", l.pool)));
            }
            for (i, r) in l.sni_routes.iter().flatten().enumerate() {
                if !pool_names.contains(r.pool.as_str()) {
                    return Err(Error::config_at(format!("{at}.sni_routes[{i}].pool"), format!("no pool named {:?}", r.pool)));
                }
            }
            if l.tls.is_some() && l.sni_routes.is_some() {
                return Err(Error::config_at(at, "tls (termination) and sni_routes (passthrough) exclude each other"));
            }
            if l.tls.as_ref().is_some_and(|t| t.certificates.is_empty()) {
                return Err(Error::config_at(format!("{at}.tls.certificates"), "at least one certificate is needed"));
            }
            if l.backlog == 0 {
                return Err(Error::config_at(format!("{at}.backlog"), "must be at least 1"));
            }
            check_http_listener(l, &at, |name| self.pool(name), &classes)?;
            check_rules(l, &at, |name| self.pool(name), &classes)?;
            check_udp_listener(l, &at)?;
            check_cidrs(l.allow.as_deref().unwrap_or_default(), &format!("{at}.allow"))?;
            check_cidrs(&l.deny, &format!("{at}.deny"))?;
            if !(0.0..=0.5).contains(&l.max_lifetime_jitter) {
                return Err(Error::config_at(
                    format!("{at}.max_lifetime_jitter"),
                    format!("expected 0..0.5, got {}", l.max_lifetime_jitter),
                ));
            }
            check_trace_sample(l.trace_sample).map_err(|m| Error::config_at(format!("{at}.trace_sample"), m))?;
            if l.max_lifetime_ms.is_some() && l.protocol == Protocol::Http {
                return Err(Error::config_at(
                    format!("{at}.max_lifetime"),
                    "only for tcp listeners (an http listener's connections end by their idle timeout)",
                ));
            }
            if let Some(r) = l.per_source.as_ref().and_then(|p| p.rate.as_ref()) {
                if r.connections == 0 || r.per_ms == 0 {
                    return Err(Error::config_at(format!("{at}.per_source.rate"), "connections and per must be at least 1"));
                }
            }
            if let Some(p) = &l.proxy_protocol {
                check_cidrs(&p.trusted, &format!("{at}.proxy_protocol.trusted"))?;
                if p.timeout_ms == 0 {
                    return Err(Error::config_at(format!("{at}.proxy_protocol.timeout"), "must be at least 1 ms"));
                }
            }
        }
        Ok(())
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }
}

impl PoolConfig {
    /// Parse and check one pool sent by the control plane (a pool-only update).
    pub fn from_json(json: &str) -> Result<Self> {
        let p: PoolConfig = parse_json(json)?;
        p.check()?;
        Ok(p)
    }

    /// Check a pool: backends, weights, and the options of its algorithm
    /// against the limits in [`catalog`].
    pub fn check(&self) -> Result<()> {
        let at = format!("pools.{}", self.name);
        if self.backends.is_empty() {
            return Err(Error::config_at(format!("{at}.backends"), "a pool needs at least one backend"));
        }
        let reads = |o: PoolOption| self.algorithm.options().contains(&o);
        if let Some(m) = self.table_size {
            let limit = catalog::TABLE_SIZE;
            if !reads(PoolOption::TableSize) {
                return Err(not_read(&at, "table_size", self.algorithm));
            }
            if !limit.contains(m as u64) || !catalog::is_prime(m as u64) {
                return Err(Error::config_at(format!("{at}.table_size"), format!("expected a prime number up to {}, got {m}", limit.max)));
            }
        }
        if let Some(v) = self.virtual_nodes {
            let limit = catalog::VIRTUAL_NODES;
            if !reads(PoolOption::VirtualNodes) {
                return Err(not_read(&at, "virtual_nodes", self.algorithm));
            }
            if !limit.contains(v as u64) {
                return Err(Error::config_at(format!("{at}.virtual_nodes"), format!("expected {}..{}, got {v}", limit.min, limit.max)));
            }
        }
        if let Some(f) = self.hash_balance_factor {
            if !reads(PoolOption::HashBalanceFactor) {
                return Err(not_read(&at, "hash_balance_factor", self.algorithm));
            }
            catalog::check_balance_factor(f).map_err(|m| Error::config_at(format!("{at}.hash_balance_factor"), m))?;
        }
        if self.hash_key != HashKey::default() && !reads(PoolOption::HashKey) {
            return Err(not_read(&at, "hash_key", self.algorithm));
        }
        let percent = catalog::PERCENT;
        if self.panic_threshold.is_some_and(|t| !percent.contains(t as u64)) {
            return Err(Error::config_at(format!("{at}.panic_threshold"), "expected a percentage 0..100"));
        }
        if !percent.contains(self.passive.max_ejection_percent as u64) {
            return Err(Error::config_at(format!("{at}.passive.max_ejection_percent"), "expected a percentage 0..100"));
        }
        if let Some(r) = self.http.as_ref().and_then(|h| h.error_rate) {
            if !(1..=100).contains(&r.percent) || r.window_ms == 0 {
                return Err(Error::config_at(format!("{at}.passive.error_rate"), "expected percent 1..100 and a window of at least 1 ms"));
            }
        }
        let mut seen = HashSet::new();
        for (j, b) in self.backends.iter().enumerate() {
            let bat = format!("{at}.backends[{j}]");
            let addr = parse_addr(&b.address).map_err(|m| Error::config_at(format!("{bat}.address"), m))?;
            if addr.port() == 0 {
                return Err(Error::config_at(format!("{bat}.address"), "port 0 is not a backend port"));
            }
            if !seen.insert(addr) {
                return Err(Error::config_at(format!("{bat}.address"), format!("duplicate backend {addr}")));
            }
            let w = catalog::WEIGHT;
            if !w.contains(b.weight as u64) {
                return Err(Error::config_at(format!("{bat}.weight"), format!("expected {}..{}, got {}", w.min, w.max, b.weight)));
            }
        }
        Ok(())
    }
}

/// Check a UDP listener: its flow settings are there and sane, and it has
/// nothing only a TCP listener can have (TLS, passthrough, PROXY headers).
/// A trace sample rate must be a share, 0..=1.
pub(crate) fn check_trace_sample(rate: f64) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("expected 0..1, got {rate}"))
    }
}

fn check_udp_listener(l: &ListenerConfig, at: &str) -> Result<()> {
    match (l.protocol, &l.udp) {
        (Protocol::Udp, None) => Err(Error::config_at(format!("{at}.udp"), "protocol udp needs its flow settings")),
        (Protocol::Udp, Some(u)) => {
            let tcp_only = [
                ("tls", l.tls.is_some()),
                ("sni_routes", l.sni_routes.is_some()),
                ("proxy_protocol", l.proxy_protocol.is_some()),
                ("max_lifetime", l.max_lifetime_ms.is_some()),
                // UDP flows are not traced.
                ("trace_sample", l.trace_sample > 0.0),
            ];
            if let Some((key, _)) = tcp_only.iter().find(|(_, set)| *set) {
                return Err(Error::config_at(format!("{at}.{key}"), "only for tcp and http listeners (this one is udp)"));
            }
            if u.max_flows == 0 || u.flow_idle_timeout_ms == 0 {
                return Err(Error::config_at(format!("{at}.udp"), "max_flows and flow_idle_timeout must be at least 1"));
            }
            if u.max_datagram_bytes == 0 || u.max_datagram_bytes as usize > crate::udp::config::MAX_DATAGRAM {
                return Err(Error::config_at(
                    format!("{at}.udp.max_datagram_bytes"),
                    format!("expected 1..={}, got {}", crate::udp::config::MAX_DATAGRAM, u.max_datagram_bytes),
                ));
            }
            Ok(())
        }
        (_, Some(_)) => Err(Error::config_at(format!("{at}.udp"), "only for protocol udp")),
        (_, None) => Ok(()),
    }
}

/// Check the HTTP side of listener `l` (at `at`): protocol and tables agree,
/// routes name pools that exist and their regexes compile; a TCP listener
/// uses no pool whose key needs a request.
fn check_http_listener<'a>(
    l: &ListenerConfig,
    at: &str,
    pool: impl Fn(&str) -> Option<&'a PoolConfig>,
    classes: &HashSet<&str>,
) -> Result<()> {
    match (l.protocol, &l.http) {
        (Protocol::Tcp | Protocol::Udp, Some(_)) => return Err(Error::config_at(format!("{at}.http"), "only for protocol http")),
        (Protocol::Http, None) => return Err(Error::config_at(format!("{at}.http"), "protocol http needs its routes")),
        (Protocol::Http, Some(_)) if l.sni_routes.is_some() => {
            return Err(Error::config_at(
                format!("{at}.sni_routes"),
                "TLS passthrough is for tcp listeners (an http listener terminates TLS)",
            ))
        }
        _ => {}
    }
    // A PROXY header describes one client connection; a kept-alive HTTP backend
    // connection carries many clients' requests (the spec forbids it there).
    if let Some(h) = &l.http {
        // (A route's hook may send its requests to its fallback's pool too.)
        let fallbacks = h.routes.iter().filter_map(|r| r.hook.as_ref()?.fallback.pool.as_deref());
        let pools = std::iter::once(l.pool.as_str()).chain(h.routes.iter().filter_map(|r| r.pool.as_deref())).chain(fallbacks);
        for name in pools {
            if pool(name).is_some_and(|p| p.proxy_protocol.is_some()) {
                return Err(Error::config_at(
                    format!("pools.{name}.proxy_protocol"),
                    format!("only for pools of tcp listeners, but {at} (protocol http) uses this pool: HTTP reuses backend connections across clients; X-Forwarded-For and Forwarded carry the client's address"),
                ));
            }
        }
    }
    let Some(h) = &l.http else {
        // A TCP connection has an address (and maybe a server name), no request.
        let pools = std::iter::once(l.pool.as_str()).chain(l.sni_routes.iter().flatten().map(|r| r.pool.as_str()));
        for name in pools {
            if let Some(k) = pool(name).and_then(|p| p.http.as_ref()).and_then(|h| h.key.as_ref()).filter(|k| k.needs_request()) {
                return Err(Error::config_at(
                    format!("pools.{name}.hash_key"),
                    format!(
                        "{k:?} needs an http listener, but {at} (protocol {}) uses this pool",
                        if l.protocol == Protocol::Udp { "udp" } else { "tcp" }
                    ),
                ));
            }
        }
        return Ok(());
    };
    if !(0.0..=1.0).contains(&h.access_log_sample) {
        return Err(Error::config_at(format!("{at}.http.access_log_sample"), format!("expected 0..1, got {}", h.access_log_sample)));
    }
    if h.max_header_bytes < 8192 {
        return Err(Error::config_at(format!("{at}.http.max_header_bytes"), "at least 8192"));
    }
    for (i, r) in h.routes.iter().enumerate() {
        let rat = format!("{at}.http.routes[{i}]");
        match (&r.pool, &r.answer) {
            (Some(p), None) if pool(p).is_none() => return Err(Error::config_at(format!("{rat}.pool"), format!("no pool named {p:?}"))),
            (Some(_), Some(_)) | (None, None) => {
                return Err(Error::config_at(rat, "a route either forwards to a pool or answers itself (deny, redirect)"))
            }
            _ => {}
        }
        if let Some(a) = &r.answer {
            crate::http::answer::check(a).map_err(|e| Error::config_at(format!("{rat}.answer"), e))?;
        }
        check_rule(&rat, &r.source, r.rate_class.as_deref(), classes)?;
        if let Some(h) = &r.hook {
            if r.answer.is_some() {
                return Err(Error::config_at(format!("{rat}.hook"), "a route that answers itself (deny, redirect) asks no hook"));
            }
            h.check(&format!("{rat}.hook"), |p| pool(p).is_some())?;
        }
        if let Some(PathMatch::Regex(re)) = &r.path {
            crate::http::config::anchored(re).map_err(|e| Error::config_at(format!("{rat}.path.regex"), e))?;
        }
        for (what, list) in [("headers", &r.headers), ("query", &r.query), ("cookies", &r.cookies)] {
            for (j, v) in list.iter().enumerate() {
                if let Some(re) = &v.regex {
                    crate::http::config::anchored(re).map_err(|e| Error::config_at(format!("{rat}.{what}[{j}].regex"), e))?;
                }
            }
        }
        for (what, ops) in [("request_headers", &r.request_headers), ("response_headers", &r.response_headers)] {
            let names = ops.remove.iter().map(|n| crate::http::config::header_name(n).map(drop));
            let pairs = ops.set.iter().chain(&ops.add).map(|p| crate::http::config::header_pair(&p.name, &p.value).map(drop));
            names.chain(pairs).collect::<std::result::Result<(), String>>().map_err(|e| Error::config_at(format!("{rat}.{what}"), e))?;
        }
    }
    Ok(())
}

/// Check a listener's policy rules: only TCP listeners have them; pools and
/// rate classes exist; ranges parse; regexes compile.
fn check_rules<'a>(l: &ListenerConfig, at: &str, pool: impl Fn(&str) -> Option<&'a PoolConfig>, classes: &HashSet<&str>) -> Result<()> {
    if l.rules.len() > crate::rules::config::MAX_RULES {
        return Err(Error::config_at(
            format!("{at}.rules"),
            format!("at most {} rules, got {}", crate::rules::config::MAX_RULES, l.rules.len()),
        ));
    }
    if !l.rules.is_empty() && l.protocol != Protocol::Tcp {
        return Err(Error::config_at(format!("{at}.rules"), "only for tcp listeners (an http listener's rules are its routes)"));
    }
    for (i, r) in l.rules.iter().enumerate() {
        let rat = format!("{at}.rules[{i}]");
        if let L4Action::Pool(p) = &r.action {
            match pool(p) {
                None => return Err(Error::config_at(format!("{rat}.action.pool"), format!("no pool named {p:?}"))),
                Some(p) if p.http.as_ref().and_then(|h| h.key.as_ref()).is_some_and(|k| k.needs_request()) => {
                    return Err(Error::config_at(
                        format!("{rat}.action.pool"),
                        format!("pool {:?} keys by an HTTP request; {at} is tcp", p.name),
                    ))
                }
                Some(_) => {}
            }
        }
        check_rule(&rat, &r.source, r.rate_class.as_deref(), classes)?;
        for (j, t) in r.tlvs.iter().enumerate() {
            if let Some(re) = &t.regex {
                crate::rules::value::anchored(re).map_err(|e| Error::config_at(format!("{rat}.tlvs[{j}].regex"), e))?;
            }
        }
        if let Some(h) = &r.hook {
            if r.action == L4Action::Deny {
                return Err(Error::config_at(format!("{rat}.hook"), "a rule that denies asks no hook"));
            }
            h.check(&format!("{rat}.hook"), |p| pool(p).is_some())?;
        }
    }
    Ok(())
}

/// Address ranges at `at` (each error names its index).
fn check_cidrs(list: &[String], at: &str) -> Result<()> {
    for (i, c) in list.iter().enumerate() {
        crate::cidr::Cidr::parse(c).map_err(|e| Error::config_at(format!("{at}[{i}]"), e))?;
    }
    Ok(())
}

/// What rules of either kind (an HTTP route, a TCP rule at `at`) share: source ranges and a rate class that exists.
fn check_rule(at: &str, source: &[String], rate_class: Option<&str>, classes: &HashSet<&str>) -> Result<()> {
    check_cidrs(source, &format!("{at}.source"))?;
    match rate_class.filter(|c| !classes.contains(c)) {
        Some(c) => Err(Error::config_at(format!("{at}.rate_class"), format!("no rate class named {c:?}"))),
        None => Ok(()),
    }
}

/// The error for an option the pool's algorithm does not read.
fn not_read(at: &str, option: &str, algorithm: Algorithm) -> Error {
    let readers: Vec<&str> =
        Algorithm::ALL.into_iter().filter(|a| a.options().iter().any(|o| o.name() == option)).map(Algorithm::name).collect();
    Error::config_at(format!("{at}.{option}"), format!("applies only to {}, but the algorithm is {algorithm}", readers.join(" and ")))
}

/// Deserialize JSON from the control plane; a malformed document names the field.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::config_at(if path == "." { "(engine)".to_owned() } else { path }, format!("malformed engine configuration: {}", e.inner()))
    })
}

/// Do two listener addresses claim the same port (same IP, or one is the wildcard)?
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Parse `ip:port` / `[ipv6]:port`.
pub fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| format!("expected \"ip:port\", got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(backends: &str) -> String {
        format!(
            r#"{{"workers":1,"listeners":[{{"name":"l","address":"127.0.0.1:0","pool":"p","backlog":16,"idle_timeout_ms":1000,"splice":"auto"}}],
               "pools":[{{"name":"p","algorithm":"round_robin","connect_timeout_ms":100,"retries":2,"backends":{backends}}}]}}"#
        )
    }

    #[test]
    fn accepts_a_valid_config() {
        let c = EngineConfig::from_json(&sample(r#"[{"address":"127.0.0.1:1","weight":1,"backup":false}]"#)).unwrap();
        assert_eq!(c.pools[0].backends.len(), 1);
        assert_eq!(c.listeners[0].splice, SpliceMode::Auto);
    }

    #[test]
    fn rejects_empty_pool_duplicate_and_bad_address() {
        let e = EngineConfig::from_json(&sample("[]")).unwrap_err();
        assert!(e.message.contains("pools.p.backends"), "{e}");
        let e = EngineConfig::from_json(&sample(
            r#"[{"address":"127.0.0.1:1","weight":1,"backup":false},{"address":"127.0.0.1:1","weight":1,"backup":false}]"#,
        ))
        .unwrap_err();
        assert!(e.message.contains("backends[1].address: duplicate"), "{e}");
        let e = EngineConfig::from_json(&sample(r#"[{"address":"10.0.0.300:1","weight":1,"backup":false}]"#)).unwrap_err();
        assert!(e.message.contains("10.0.0.300:1"), "{e}");
        assert_eq!(e.to_string().split(']').next().unwrap(), "[SWITCHYARD_ERR_CONFIG");
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = EngineConfig::from_json(r#"{"workers":1,"listeners":[],"pools":[],"bogus":1}"#).unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn enforces_the_catalog_limits_with_paths() {
        let e = EngineConfig::from_json(&sample(r#"[{"address":"127.0.0.1:1","weight":1001,"backup":false}]"#)).unwrap_err();
        assert_eq!(e.issues[0].path, "pools.p.backends[0].weight", "{e}");
        assert!(e.issues[0].message.contains("0..1000"), "{e}");
        let json = sample(r#"[{"address":"127.0.0.1:1","weight":1,"backup":false}]"#);
        let e = EngineConfig::from_json(&json.replace(r#""round_robin""#, r#""maglev","hash_balance_factor":101"#)).unwrap_err();
        assert_eq!(e.issues[0].path, "pools.p.hash_balance_factor", "{e}");
        let e = EngineConfig::from_json(&json.replace(r#""round_robin""#, r#""round_robin","virtual_nodes":100"#)).unwrap_err();
        assert_eq!(e.issues[0].message, "applies only to consistent_hash, but the algorithm is round_robin", "{e}");
        let e = EngineConfig::from_json(&json.replace("round_robin", "fastest")).unwrap_err();
        assert_eq!(e.issues[0].path, "pools[0].algorithm", "{e}");
    }
}
