//! Bounded load for hash algorithms (HAProxy's `hash-balance-factor`, Google's
//! "consistent hashing with bounded loads"): no backend takes more than
//! `factor` × the average active connections of the pool; a key whose choice
//! is full walks on to its next choice.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The load cap of one pool tier.
#[derive(Debug)]
pub struct Bound {
    factor: f64,
    pool_active: Arc<AtomicU64>,
    members: usize,
}

impl Bound {
    pub fn new(factor: f64, pool_active: Arc<AtomicU64>, members: usize) -> Self {
        Self { factor, pool_active, members }
    }

    /// The most active connections a backend may hold before new keys pass it
    /// by: ceil(factor × (active + 1) / members), counting the new connection.
    pub fn cap(&self) -> u64 {
        let total = self.pool_active.load(Relaxed) as f64 + 1.0;
        (self.factor * total / self.members.max(1) as f64).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{build, BuildParams, Members};
    use crate::catalog::{Algorithm, TABLE_SIZE, VIRTUAL_NODES};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;

    /// Open 2,000 connections whose keys are heavily skewed (10 clients),
    /// holding every one: no backend may exceed the cap at any moment.
    fn skewed_load_respects_cap(algorithm: Algorithm) {
        let b = backends(&[1; 5]);
        let pool_active = Arc::new(AtomicU64::new(0));
        let params = BuildParams {
            algorithm,
            virtual_nodes: VIRTUAL_NODES.default as u32,
            table_size: TABLE_SIZE.default as u32,
            balance_factor: Some(1.25),
            pool_active: Arc::clone(&pool_active),
            names: b.iter().map(|x| x.addr.to_string()).collect::<Vec<String>>(),
        };
        let s = build(&params, Members::of_tier(&b, false));
        let bound = super::Bound::new(1.25, Arc::clone(&pool_active), 5);
        for i in 0..2000u32 {
            let c = client(i % 10);
            let cap = bound.cap();
            let p = s.pick(&c, &b, &|_| true).unwrap();
            let now = b[p].stats.active.fetch_add(1, Relaxed) + 1;
            pool_active.fetch_add(1, Relaxed);
            assert!(now <= cap, "{algorithm}: backend {p} holds {now} > cap {cap}");
        }
        let loads: Vec<u64> = b.iter().map(|x| x.stats.active.load(Relaxed)).collect();
        assert!(loads.iter().all(|&l| l as f64 <= 1.25 * 400.0 + 1.0), "{loads:?}");
    }

    #[test]
    fn ring_with_bounded_load() {
        skewed_load_respects_cap(Algorithm::ConsistentHash);
    }

    #[test]
    fn maglev_with_bounded_load() {
        skewed_load_respects_cap(Algorithm::Maglev);
    }
}
