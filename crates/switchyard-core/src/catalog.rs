//! The data plane's facts, owned here and nowhere else: which algorithms
//! exist and what they read, the limits the data plane enforces, and the
//! defaults it applies. The control plane does not restate them: a unit test
//! renders this module to `ts/binding/catalog.generated.ts` and fails when the
//! committed file differs (see `binding_export.rs`), and the TypeScript
//! validator, slow start, the admin schema and the docs read that file.

use serde::{Deserialize, Serialize};

/// A balancing algorithm, by its configuration name. Adding a variant makes
/// every `match` on it (building the selector, the catalog) fail to compile
/// until it is handled: there is no fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Smooth weighted round robin, as nginx (5/1/1 → a a b a c a a).
    #[default]
    RoundRobin,
    /// The same as `RoundRobin` (an alias).
    WeightedRoundRobin,
    /// Fewest active connections per unit of weight; ties by weighted round robin.
    LeastConnections,
    /// Weighted random.
    Random,
    /// Two weighted random choices; the less loaded wins.
    PowerOfTwo,
    /// The client IP modulo a weighted slot table (adding a backend remaps most clients).
    IpHash,
    /// Ketama ring with `virtual_nodes` points per weight unit.
    ConsistentHash,
    /// Maglev lookup table of prime `table_size`.
    Maglev,
}

/// What keyed algorithms hash, when the route does not supply its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    /// The client's IP address.
    #[default]
    SourceIp,
    /// The client's IP address and port (spreads one client's connections).
    SourceIpPort,
}

/// A pool option that only some algorithms read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolOption {
    HashKey,
    VirtualNodes,
    TableSize,
    HashBalanceFactor,
}

impl PoolOption {
    /// Every option some algorithm reads.
    pub const ALL: [PoolOption; 4] = [PoolOption::HashKey, PoolOption::VirtualNodes, PoolOption::TableSize, PoolOption::HashBalanceFactor];

    /// The option's configuration name.
    pub const fn name(self) -> &'static str {
        match self {
            PoolOption::HashKey => "hash_key",
            PoolOption::VirtualNodes => "virtual_nodes",
            PoolOption::TableSize => "table_size",
            PoolOption::HashBalanceFactor => "hash_balance_factor",
        }
    }
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::RoundRobin,
        Algorithm::WeightedRoundRobin,
        Algorithm::LeastConnections,
        Algorithm::Random,
        Algorithm::PowerOfTwo,
        Algorithm::IpHash,
        Algorithm::ConsistentHash,
        Algorithm::Maglev,
    ];

    /// The configuration name.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::WeightedRoundRobin => "weighted_round_robin",
            Algorithm::LeastConnections => "least_connections",
            Algorithm::Random => "random",
            Algorithm::PowerOfTwo => "power_of_two",
            Algorithm::IpHash => "ip_hash",
            Algorithm::ConsistentHash => "consistent_hash",
            Algorithm::Maglev => "maglev",
        }
    }

    /// The algorithm called `name`, if any.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Does it map a key to a backend (so a change of the pool moves keys)?
    pub const fn keyed(self) -> bool {
        matches!(self, Algorithm::IpHash | Algorithm::ConsistentHash | Algorithm::Maglev)
    }

    /// Do weights shape each backend's share of new connections (beyond 0 = none)?
    /// Every algorithm does, as in nginx and HAProxy.
    pub const fn weighted(self) -> bool {
        true
    }

    /// Does a gradual weight ramp (slow start) make sense? Weighted, and not
    /// keyed: ramping a keyed table would move keys at every step.
    pub const fn ramps_weights(self) -> bool {
        self.weighted() && !self.keyed()
    }

    /// The options this algorithm reads; giving another one is a configuration error.
    pub const fn options(self) -> &'static [PoolOption] {
        match self {
            Algorithm::ConsistentHash => &[PoolOption::HashKey, PoolOption::VirtualNodes, PoolOption::HashBalanceFactor],
            Algorithm::Maglev => &[PoolOption::HashKey, PoolOption::TableSize, PoolOption::HashBalanceFactor],
            Algorithm::RoundRobin
            | Algorithm::WeightedRoundRobin
            | Algorithm::LeastConnections
            | Algorithm::Random
            | Algorithm::PowerOfTwo
            | Algorithm::IpHash => &[],
        }
    }

    /// One line for docs and error messages.
    pub const fn summary(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "smooth weighted round robin, as nginx (5/1/1 → a a b a c a a; equal weights take turns)",
            Algorithm::WeightedRoundRobin => "the same as round_robin (an alias kept for configs that spell it out)",
            Algorithm::LeastConnections => "fewest active connections per unit of weight; ties by weighted round robin",
            Algorithm::Random => "weighted random",
            Algorithm::PowerOfTwo => "two weighted random choices, the less loaded wins",
            Algorithm::IpHash => "source IP modulo a weighted slot table (adding a backend remaps most clients)",
            Algorithm::ConsistentHash => "ketama ring with virtual_nodes points per weight unit",
            Algorithm::Maglev => "Maglev lookup table of prime table_size",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive integer range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IntRange {
    pub min: u64,
    pub max: u64,
}

impl IntRange {
    /// Is `v` within the range?
    pub const fn contains(&self, v: u64) -> bool {
        v >= self.min && v <= self.max
    }
}

/// An inclusive integer range with its default.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IntLimit {
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

impl IntLimit {
    /// Is `v` within the range?
    pub const fn contains(&self, v: u64) -> bool {
        v >= self.min && v <= self.max
    }
}

/// Backend weight: 0 takes no new connections.
pub const WEIGHT: IntLimit = IntLimit { min: 0, max: 1000, default: 1 };
/// Ring points per weight unit (consistent_hash; ketama, as nginx and pingora use).
pub const VIRTUAL_NODES: IntLimit = IntLimit { min: 1, max: 10_000, default: 160 };
/// Maglev table size, a prime (default: Envoy's; largest: Envoy's limit).
pub const TABLE_SIZE: IntLimit = IntLimit { min: 2, max: 5_000_011, default: 65_537 };
/// Data-plane worker threads (fixed for the life of an engine; the control
/// plane's default is one per CPU).
pub const WORKERS: IntRange = IntRange { min: 1, max: 256 };
/// Percentages (panic threshold, max ejection percent).
pub const PERCENT: IntRange = IntRange { min: 0, max: 100 };
/// Bounded load: the factor must be above 1 (1 would forbid any imbalance) and at most this.
pub const MAX_BALANCE_FACTOR: f64 = 100.0;

/// Passive detection defaults: 3 failures in a row eject for 10 s, doubling
/// up to 5 min, never more than half the pool.
pub const PASSIVE_CONSECUTIVE_FAILURES: u32 = 3;
pub const PASSIVE_EJECTION_MS: u64 = 10_000;
pub const PASSIVE_MAX_EJECTION_MS: u64 = 300_000;
pub const PASSIVE_MAX_EJECTION_PERCENT: u32 = 50;

/// How long a passthrough listener waits for a whole ClientHello by default.
pub const PEEK_TIMEOUT_MS: u64 = 5_000;

/// HTTP pools by default keep this many idle keep-alive connections per
/// backend, each for at most `HTTP_IDLE_TIMEOUT_MS` (below the backends' own
/// keep-alive timeout, Node's being 5 s, so none closes one about to be reused).
pub const HTTP_MAX_IDLE_PER_BACKEND: u32 = 32;
pub const HTTP_IDLE_TIMEOUT_MS: u64 = 4_000;

/// HTTP/2 streams a client may open at once on one connection (HAProxy's
/// `tune.h2.max-concurrent-streams`, nginx's `http2_max_concurrent_streams`
/// default 128; 100 is the value RFC 9113 recommends as a minimum).
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// HTTP/2 pools: most multiplexed connections per backend, and streams in
/// flight on one before another is opened.
pub const HTTP2_CONNECTIONS_PER_BACKEND: u32 = 4;
pub const HTTP2_STREAMS_PER_CONNECTION: u32 = 100;

/// Upper bounds (seconds) of the HTTP request latency histogram buckets; a
/// route reports one cumulative count per bound, then +Inf.
pub const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Deterministic primality test (trial division; table sizes are small).
pub fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}

/// Check bounded load's factor; the error says what was expected.
pub fn check_balance_factor(f: f64) -> Result<(), String> {
    if f.is_finite() && f > 1.0 && f <= MAX_BALANCE_FACTOR {
        Ok(())
    } else {
        Err(format!("expected a number greater than 1 and at most {MAX_BALANCE_FACTOR}, got {f}"))
    }
}

/// The catalog as one serialisable value (rendered for TypeScript).
#[derive(Debug, Serialize)]
pub struct Catalog {
    pub algorithms: Vec<AlgorithmInfo>,
    pub limits: Limits,
    pub passive: PassiveDefaults,
    pub peek_timeout_ms: u64,
    pub http_keepalive: HttpKeepalive,
    pub http2_max_concurrent_streams: u32,
    pub latency_buckets: [f64; 12],
    pub hash_keys: [HashKey; 2],
    pub pool_options: [PoolOption; 4],
}

/// Keep-alive defaults of HTTP pools.
#[derive(Debug, Serialize)]
pub struct HttpKeepalive {
    pub max_idle_per_backend: u32,
    pub idle_timeout_ms: u64,
    pub http2_connections: u32,
    pub http2_streams: u32,
}

/// One algorithm's facts.
#[derive(Debug, Serialize)]
pub struct AlgorithmInfo {
    pub name: &'static str,
    pub keyed: bool,
    pub weighted: bool,
    pub ramps_weights: bool,
    pub options: &'static [PoolOption],
    pub summary: &'static str,
}

/// The limits, by field.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub weight: IntLimit,
    pub virtual_nodes: IntLimit,
    pub table_size: IntLimit,
    pub workers: IntRange,
    pub percent: IntRange,
    pub max_balance_factor: f64,
}

/// Passive detection defaults, shaped like the pool's `passive` block.
#[derive(Debug, Serialize)]
pub struct PassiveDefaults {
    pub consecutive_failures: u32,
    pub ejection_ms: u64,
    pub max_ejection_ms: u64,
    pub max_ejection_percent: u32,
}

/// Every fact above, in one value.
pub fn catalog() -> Catalog {
    Catalog {
        algorithms: Algorithm::ALL
            .into_iter()
            .map(|a| AlgorithmInfo {
                name: a.name(),
                keyed: a.keyed(),
                weighted: a.weighted(),
                ramps_weights: a.ramps_weights(),
                options: a.options(),
                summary: a.summary(),
            })
            .collect(),
        limits: Limits {
            weight: WEIGHT,
            virtual_nodes: VIRTUAL_NODES,
            table_size: TABLE_SIZE,
            workers: WORKERS,
            percent: PERCENT,
            max_balance_factor: MAX_BALANCE_FACTOR,
        },
        passive: PassiveDefaults {
            consecutive_failures: PASSIVE_CONSECUTIVE_FAILURES,
            ejection_ms: PASSIVE_EJECTION_MS,
            max_ejection_ms: PASSIVE_MAX_EJECTION_MS,
            max_ejection_percent: PASSIVE_MAX_EJECTION_PERCENT,
        },
        peek_timeout_ms: PEEK_TIMEOUT_MS,
        http_keepalive: HttpKeepalive {
            max_idle_per_backend: HTTP_MAX_IDLE_PER_BACKEND,
            idle_timeout_ms: HTTP_IDLE_TIMEOUT_MS,
            http2_connections: HTTP2_CONNECTIONS_PER_BACKEND,
            http2_streams: HTTP2_STREAMS_PER_CONNECTION,
        },
        http2_max_concurrent_streams: HTTP2_MAX_CONCURRENT_STREAMS,
        latency_buckets: LATENCY_BUCKETS,
        hash_keys: [HashKey::SourceIp, HashKey::SourceIpPort],
        pool_options: PoolOption::ALL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()), "serde and name() agree");
        }
        assert_eq!(Algorithm::from_name("fastest"), None);
    }

    #[test]
    fn defaults_are_within_their_limits() {
        for l in [WEIGHT, VIRTUAL_NODES, TABLE_SIZE] {
            assert!(l.contains(l.default), "{l:?}");
        }
        assert!(is_prime(TABLE_SIZE.default) && is_prime(TABLE_SIZE.max));
        assert!(!is_prime(1) && !is_prime(65_536));
        assert!(check_balance_factor(1.0).is_err() && check_balance_factor(100.5).is_err() && check_balance_factor(f64::NAN).is_err());
        assert!(check_balance_factor(1.25).is_ok() && check_balance_factor(100.0).is_ok());
    }
}
