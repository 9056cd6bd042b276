//! Smooth weighted round robin, as nginx does it: no bursts to the heavy
//! backend (weights 5/1/1 give a a b a c a a, never five in a row).
//!
//! nginx mutates per-backend "current weight" under a lock on every pick.
//! Here the smooth sequence for one full cycle is computed once when the
//! snapshot is built, and a pick is one atomic increment and an index.

use super::{Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest precomputed cycle; heavier weight sets are scaled down to fit.
const MAX_CYCLE: u64 = 1 << 16;
/// Sequence slots tried before falling back to a scan of the members.
const MAX_SKIP: usize = 64;

/// Smooth weighted round robin over a precomputed cycle.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    members: Members,
    /// Member positions (into `members.idx`), one full smooth cycle.
    cycle: Vec<u32>,
    next: AtomicUsize,
}

impl WeightedRoundRobin {
    pub fn new(members: Members) -> Self {
        let mut w = members.reduced_weights();
        let total: u64 = w.iter().sum();
        if total > MAX_CYCLE {
            // Keep proportions; every member keeps at least one slot.
            w = w.iter().map(|&x| ((x as u128 * MAX_CYCLE as u128 / total as u128) as u64).max(1)).collect();
        }
        let cycle = smooth_cycle(&w);
        Self { members, cycle, next: AtomicUsize::new(0) }
    }
}

/// nginx's smooth WRR: each step adds every weight to its current value, picks
/// the largest, and subtracts the total from it.
fn smooth_cycle(weights: &[u64]) -> Vec<u32> {
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            let mut best = 0;
            for (i, &w) in weights.iter().enumerate() {
                current[i] += w as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best as u32
        })
        .collect()
}

impl Selector for WeightedRoundRobin {
    fn algorithm(&self) -> Algorithm {
        Algorithm::WeightedRoundRobin
    }

    fn pick(&self, _ctx: &PickContext, _b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        if self.cycle.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let m = &self.members.idx;
        let skip = self.cycle.len().min(MAX_SKIP);
        (0..skip)
            .map(|k| m[self.cycle[(start + k) % self.cycle.len()] as usize])
            .find(|&i| eligible(i))
            .or_else(|| (0..m.len()).map(|k| m[(start + k) % m.len()]).find(|&i| eligible(i)))
    }

    fn shares(&self) -> Vec<(usize, f64)> {
        self.members.weight_shares()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn exact_over_a_full_cycle() {
        let b = backends(&[5, 1, 1]);
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        assert_eq!(spread(&s, &b, 700), vec![500, 100, 100]);
        let b = backends(&[3, 2, 1, 4]);
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        assert_eq!(spread(&s, &b, 1000), vec![300, 200, 100, 400]);
    }

    #[test]
    fn smooth_never_five_in_a_row() {
        let b = backends(&[5, 1, 1]);
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        let seq: Vec<usize> = (0..700).map(|_| s.pick(&client(0), &b, &|_| true).unwrap()).collect();
        // nginx's own sequence is a a b a c a a, so across cycles a runs 4 long at most.
        let longest = seq.chunk_by(|a, b| a == b).map(|r| r.len()).max().unwrap();
        assert!(longest < 5, "longest run {longest}: {:?}", &seq[..14]);
    }

    #[test]
    fn skips_ineligible_heavy_backend() {
        let b = backends(&[100, 1]);
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        for _ in 0..500 {
            assert_eq!(s.pick(&client(0), &b, &|i| i == 1), Some(1));
        }
    }

    #[test]
    fn huge_weights_are_scaled_not_exploded() {
        let b = backends(&vec![997; 1000]);
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        assert_eq!(s.cycle.len(), 1000); // gcd reduces 997s to 1s
        let b = backends(&(1..=1000).collect::<Vec<_>>());
        let s = WeightedRoundRobin::new(Members::of_tier(&b, false));
        assert!(s.cycle.len() as u64 <= MAX_CYCLE + 1000);
    }
}
