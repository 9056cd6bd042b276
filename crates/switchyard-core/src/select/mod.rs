//! Backend selection: one trait, one file per algorithm.
//!
//! A pool has one selector per tier (primaries, and backups used only when no
//! primary is eligible). A selector is built off the hot path when a snapshot
//! is built, over the tier's *members* (backends with weight > 0), and is
//! immutable apart from its own atomics. `pick` runs once per connection
//! attempt: no lock, no allocation.

mod bounded;
mod consistent_hash;
mod cycle;
mod ip_hash;
mod least_connections;
mod maglev;
mod power_of_two;
mod random;
mod walk;

use crate::backend::Backend;
use crate::catalog::{self, Algorithm, HashKey};
use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Default ring points per weight unit (from the catalog).
pub const DEFAULT_VIRTUAL_NODES: u32 = catalog::VIRTUAL_NODES.default as u32;
/// Default Maglev table size (from the catalog).
pub const DEFAULT_TABLE_SIZE: u32 = catalog::TABLE_SIZE.default as u32;
/// Seed of every key hash: fixed, so processes and restarts agree.
const KEY_SEED: u64 = 0x5377_6974_6368_7964; // "Switchyd"

/// What a selector may look at for one decision.
#[derive(Debug, Clone, Copy)]
pub struct PickContext {
    /// The key keyed algorithms map to a backend, computed by the route
    /// (today a hash of the client address, see [`key_hash`]; later a header
    /// or cookie). Selectors never parse addresses or requests themselves.
    pub key: u64,
    /// The client's address, for policies that look at it (no algorithm
    /// hashes it: the key does that).
    #[allow(dead_code)] // no built-in algorithm reads it
    pub client: SocketAddr,
}

/// A balancing algorithm over one tier of a pool.
pub trait Selector: Send + Sync + Debug {
    /// The algorithm it implements.
    fn algorithm(&self) -> Algorithm;
    /// Choose a backend (an index into `backends`, the whole pool) for which
    /// `eligible` holds, or `None`. `eligible` folds in what the pool knows
    /// (already tried, health); the selector decides the order.
    fn pick(&self, ctx: &PickContext, backends: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize>;
    /// Share of new keys or connections each member receives while exactly
    /// the members for which `eligible` holds are, as `(backend index,
    /// share)`: what traffic gets, not what the weights say. For hash
    /// algorithms, the share of the table whose walk ends at each member.
    fn shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)>;
}

/// The backends one selector chooses among: pool indices and weights (> 0).
#[derive(Debug, Clone)]
pub struct Members {
    pub idx: Vec<usize>,
    pub weights: Vec<u32>,
}

impl Members {
    /// Members of the tier `backup` (weight-0 backends take no new connections).
    pub fn of_tier(backends: &[Backend], backup: bool) -> Members {
        let (idx, weights) =
            backends.iter().enumerate().filter(|(_, b)| b.backup == backup && b.weight > 0).map(|(i, b)| (i, b.weight)).unzip();
        Members { idx, weights }
    }
    pub fn len(&self) -> usize {
        self.idx.len()
    }
    #[allow(dead_code)] // beside `len`, as clippy::len_without_is_empty asks
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }
    /// Weight shares among the eligible members (0 for the others): the
    /// answer of `Selector::shares` for the algorithms that follow weights.
    pub fn weight_shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        let ok: Vec<bool> = self.idx.iter().map(|&i| eligible(i)).collect();
        let total: u64 = self.weights.iter().zip(&ok).filter(|(_, &ok)| ok).map(|(&w, _)| w as u64).sum();
        let share = |w: u32, ok: bool| if ok { w as f64 / total.max(1) as f64 } else { 0.0 };
        self.idx.iter().zip(&self.weights).zip(ok).map(|((&i, &w), ok)| (i, share(w, ok))).collect()
    }

    /// Shares of a circular lookup table whose picks walk forward past
    /// ineligible owners: position `p` is owned by member `owner_at(p)` and
    /// weighs `weight_at(p)`; its weight goes to the first eligible owner at
    /// or after it. Off the hot path (stats): one pass over the table.
    pub fn walked_shares(
        &self,
        len: usize,
        owner_at: impl Fn(usize) -> usize,
        weight_at: impl Fn(usize) -> f64,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, f64)> {
        let ok: Vec<bool> = self.idx.iter().map(|&i| eligible(i)).collect();
        let mut acc = vec![0f64; self.len()];
        // Positions after the last eligible one wrap around to the first.
        if let Some(mut owner) = (0..len).map(&owner_at).find(|&j| ok[j]) {
            for p in (0..len).rev() {
                if ok[owner_at(p)] {
                    owner = owner_at(p);
                }
                acc[owner] += weight_at(p);
            }
        }
        let total: f64 = acc.iter().sum();
        self.idx.iter().zip(acc).map(|(&i, a)| (i, if total > 0.0 { a / total } else { 0.0 })).collect()
    }

    /// Weights divided by their greatest common divisor (5/5/10 → 1/1/2).
    pub fn reduced_weights(&self) -> Vec<u64> {
        let g = self.weights.iter().fold(0u64, |g, &w| gcd(g, w as u64)).max(1);
        self.weights.iter().map(|&w| w as u64 / g).collect()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Everything a selector is built from.
pub struct BuildParams {
    pub algorithm: Algorithm,
    pub virtual_nodes: u32,
    pub table_size: u32,
    pub balance_factor: Option<f64>,
    /// Live connections of the whole pool (bounded load); survives snapshot swaps.
    pub pool_active: Arc<AtomicU64>,
    /// Backend names hashed into tables: the address, so tables are stable.
    pub names: Vec<String>,
}

/// Hash the client by `key` with the fixed seed: the same client gives the
/// same hash in every process.
pub fn key_hash(client: SocketAddr, key: HashKey) -> u64 {
    let mut buf = [0u8; 18];
    let n = match client.ip() {
        IpAddr::V4(ip) => {
            buf[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            buf[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    let n = match key {
        HashKey::SourceIp => n,
        HashKey::SourceIpPort => {
            buf[n..n + 2].copy_from_slice(&client.port().to_be_bytes());
            n + 2
        }
    };
    xxh3_64_with_seed(&buf[..n], KEY_SEED)
}

/// Hash request bytes (a header, cookie or path) as a key, with the fixed
/// seed: the same value gives the same key in every process.
pub fn bytes_key(b: &[u8]) -> u64 {
    xxh3_64_with_seed(b, KEY_SEED)
}

/// Hash a table entry name with a seed (ring points, Maglev permutations).
pub fn name_hash(name: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(name, seed)
}

/// A fast per-thread pseudo-random number (xorshift64*), for random and p2c.
pub fn fast_rand() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
            (t ^ (&t as *const u64 as u64)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Build the selector for one tier. Exhaustive: a new [`Algorithm`] does
/// not compile until it has a selector here.
pub fn build(p: &BuildParams, members: Members) -> Box<dyn Selector> {
    let bound = p.balance_factor.map(|f| bounded::Bound::new(f, Arc::clone(&p.pool_active), members.len()));
    match p.algorithm {
        Algorithm::RoundRobin | Algorithm::WeightedRoundRobin => Box::new(cycle::RoundRobin::new(p.algorithm, members)),
        Algorithm::LeastConnections => Box::new(least_connections::LeastConnections::new(members)),
        Algorithm::Random => Box::new(random::Random::new(members)),
        Algorithm::PowerOfTwo => Box::new(power_of_two::PowerOfTwo::new(members)),
        Algorithm::IpHash => Box::new(ip_hash::IpHash::new(members)),
        Algorithm::ConsistentHash => Box::new(consistent_hash::Ring::new(members, &p.names, p.virtual_nodes, bound)),
        Algorithm::Maglev => Box::new(maglev::Maglev::new(members, &p.names, p.table_size, bound)),
    }
}

/// `a/wa < b/wb` without division: is backend load `a` at weight `wa` lighter?
#[inline]
pub(crate) fn lighter(a: u64, wa: u32, b: u64, wb: u32) -> bool {
    (a as u128) * (wb as u128) < (b as u128) * (wa as u128)
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::stats::BackendStats;

    /// Backends 10.0.0.i:80 with the given weights (all primaries).
    pub fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Backend {
                addr: SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0001u32 + i as u32).into(), 80),
                weight: w,
                backup: false,
                state: Default::default(),
                stats: Arc::new(BackendStats::default()),
                health: Default::default(),
                max_conns: 0,
            })
            .collect()
    }

    pub fn client(i: u32) -> PickContext {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i.wrapping_mul(2654435761)));
        let client = SocketAddr::new(ip.into(), 1024 + (i % 60000) as u16);
        PickContext { key: key_hash(client, HashKey::SourceIp), client }
    }

    /// Picks over `n` distinct clients, counted per backend.
    pub fn spread(s: &dyn Selector, b: &[Backend], n: u32) -> Vec<u32> {
        let mut counts = vec![0; b.len()];
        for i in 0..n {
            counts[s.pick(&client(i), b, &|_| true).unwrap()] += 1;
        }
        counts
    }

    /// Chi-square statistic of `counts` against `expected` shares.
    pub fn chi_square(counts: &[u32], shares: &[f64]) -> f64 {
        let n: u32 = counts.iter().sum();
        counts
            .iter()
            .zip(shares)
            .map(|(&c, &p)| {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum()
    }
}
