//! The resolved configuration the control plane sends (as JSON). TypeScript
//! has already validated it and filled every default (`ts/config/types.ts`,
//! `ResolvedConfig`); this side re-checks what the data plane depends on, so a
//! bad table can never reach the hot path.

use crate::error::{Error, Result};
pub use crate::health::{AdminState, OnDown, PassiveConfig};
pub use crate::tls::{BackendTlsConfig, TlsConfig};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;

/// How a direction of a connection moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[serde(rename_all = "snake_case")]
pub enum AcceptMode {
    /// One socket all workers accept from, favouring the least loaded (Linux).
    #[default]
    Shared,
    /// One SO_REUSEPORT socket per worker; the kernel hashes connections to them.
    Reuseport,
}

/// The whole data-plane configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Runtime worker threads; fixed for the life of the engine.
    pub workers: usize,
    /// How connections are spread over the workers; fixed for the life of the engine.
    #[serde(default)]
    pub accept: AcceptMode,
    pub listeners: Vec<ListenerConfig>,
    pub pools: Vec<PoolConfig>,
}

/// One TCP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub address: String,
    pub pool: String,
    pub backlog: u32,
    /// `TCP_DEFER_ACCEPT`: accept only once the client has sent data (Linux).
    #[serde(default)]
    pub defer_accept: bool,
    pub idle_timeout_ms: u64,
    pub splice: SpliceMode,
    /// Terminate TLS on this listener.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// TLS passthrough: route by the ClientHello's SNI (exact names and
    /// `*.domain` wildcards) to pools; `pool` is the default.
    #[serde(default)]
    pub sni_routes: Option<Vec<SniRoute>>,
    /// How long to wait for a whole ClientHello (passthrough).
    #[serde(default = "default_peek_timeout")]
    pub peek_timeout_ms: u64,
}

fn default_peek_timeout() -> u64 {
    5_000
}

/// One passthrough route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniRoute {
    /// `api.example.com` or `*.example.com`.
    pub name: String,
    pub pool: String,
}

/// One pool of backends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    pub algorithm: String,
    pub connect_timeout_ms: u64,
    pub retries: u32,
    pub backends: Vec<BackendConfig>,
    /// What hash algorithms hash (consistent_hash, maglev). Default: source IP.
    #[serde(default)]
    pub hash_key: HashKey,
    /// Ring points per weight unit (consistent_hash). Default 160.
    #[serde(default)]
    pub virtual_nodes: Option<u32>,
    /// Lookup table size, prime (maglev). Default 65537.
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
}

/// The key hash-based algorithms hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    /// The client's IP address.
    #[default]
    SourceIp,
    /// The client's IP address and port (spreads one client's connections).
    SourceIpPort,
}

/// One backend of a pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub address: String,
    pub weight: u32,
    pub backup: bool,
    /// ready, drain or maint.
    #[serde(default)]
    pub state: AdminState,
}

impl EngineConfig {
    /// Parse and check a configuration sent by the control plane.
    pub fn from_json(json: &str) -> Result<Self> {
        let cfg: EngineConfig = serde_json::from_str(json)
            .map_err(|e| Error::config(format!("malformed engine configuration: {e}")))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Check the invariants the data plane relies on.
    pub fn check(&self) -> Result<()> {
        if self.workers == 0 || self.workers > 256 {
            return Err(Error::config(format!("workers: expected 1..256, got {}", self.workers)));
        }
        let mut pool_names = HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            if !pool_names.insert(p.name.as_str()) {
                return Err(Error::config(format!("pools[{i}].name: duplicate pool {:?}", p.name)));
            }
            if p.backends.is_empty() {
                return Err(Error::config(format!("pools.{}.backends: a pool needs at least one backend", p.name)));
            }
            crate::select::check_pool(p).map_err(|m| Error::config(format!("pools.{}.{m}", p.name)))?;
            if p.panic_threshold.is_some_and(|t| t > 100) {
                return Err(Error::config(format!("pools.{}.panic_threshold: expected a percentage 0..100", p.name)));
            }
            if p.passive.max_ejection_percent > 100 {
                return Err(Error::config(format!("pools.{}.passive.max_ejection_percent: expected a percentage 0..100", p.name)));
            }
            let mut seen = HashSet::new();
            for (j, b) in p.backends.iter().enumerate() {
                let addr = parse_addr(&b.address)
                    .map_err(|m| Error::config(format!("pools.{}.backends[{j}].address: {m}", p.name)))?;
                if addr.port() == 0 {
                    return Err(Error::config(format!("pools.{}.backends[{j}].address: port 0 is not a backend port", p.name)));
                }
                if !seen.insert(addr) {
                    return Err(Error::config(format!("pools.{}.backends[{j}].address: duplicate backend {addr}", p.name)));
                }
            }
        }
        let mut names = HashSet::new();
        let mut bound: Vec<(&str, SocketAddr)> = Vec::new();
        for l in &self.listeners {
            if !names.insert(l.name.as_str()) {
                return Err(Error::config(format!("listeners.{}: duplicate listener name", l.name)));
            }
            let addr = parse_addr(&l.address).map_err(|m| Error::config(format!("listeners.{}.address: {m}", l.name)))?;
            // SO_REUSEPORT would let both bind and the kernel would split the
            // port's connections between them at random: refuse it here.
            if let Some((other, _)) = bound.iter().find(|(_, b)| overlaps(*b, addr)) {
                return Err(Error::config(format!(
                    "listeners.{}.address: {} overlaps listeners.{other}.address (same port)",
                    l.name, l.address
                )));
            }
            bound.push((l.name.as_str(), addr));
            if !pool_names.contains(l.pool.as_str()) {
                return Err(Error::config(format!("listeners.{}.pool: no pool named {:?}", l.name, l.pool)));
            }
            for (i, r) in l.sni_routes.iter().flatten().enumerate() {
                if !pool_names.contains(r.pool.as_str()) {
                    return Err(Error::config(format!("listeners.{}.sni_routes[{i}].pool: no pool named {:?}", l.name, r.pool)));
                }
            }
            if l.tls.is_some() && l.sni_routes.is_some() {
                return Err(Error::config(format!("listeners.{}: tls (termination) and sni_routes (passthrough) exclude each other", l.name)));
            }
            if l.tls.as_ref().is_some_and(|t| t.certificates.is_empty()) {
                return Err(Error::config(format!("listeners.{}.tls.certificates: at least one certificate is needed", l.name)));
            }
            if l.backlog == 0 {
                return Err(Error::config(format!("listeners.{}.backlog: must be at least 1", l.name)));
            }
        }
        Ok(())
    }
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
}
