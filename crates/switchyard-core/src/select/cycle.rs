//! Round robin, weighted as nginx and HAProxy weight theirs: the smooth
//! weighted sequence (weights 5/1/1 give a a b a c a a, never five in a row;
//! equal weights give plain a b c). Serves both `round_robin` and its alias
//! `weighted_round_robin`, and breaks ties for least connections.
//!
//! nginx mutates per-backend "current weight" under a lock on every pick.
//! Here the smooth sequence for one full cycle is computed once when the
//! snapshot is built, and a pick takes the next slot with one atomic add.
//!
//! A slot whose backend is not eligible (down, ejected, drained, already
//! tried) is *consumed*, and the pick takes the next slot: over a cycle every
//! eligible slot is taken once, so the survivors split the load by their
//! weights. (Scanning on from a skipped slot instead would hand a failed
//! backend's whole share to its neighbour in the list.)

use super::{Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest precomputed cycle; heavier weight sets are scaled down to fit.
const MAX_CYCLE: u64 = 1 << 16;
/// Slots consumed before falling back to a scan of the members (reached only
/// when nearly every member is ineligible).
const MAX_SKIP: usize = 64;

/// The smooth weighted sequence of a tier and the position of the next pick.
#[derive(Debug)]
pub struct SmoothCycle {
    /// Member positions (into `Members::idx`), one full smooth cycle.
    cycle: Vec<u32>,
    next: AtomicUsize,
}

impl SmoothCycle {
    pub fn new(members: &Members) -> Self {
        let mut w = members.reduced_weights();
        let total: u64 = w.iter().sum();
        if total > MAX_CYCLE {
            // Keep proportions; every member keeps at least one slot.
            w = w.iter().map(|&x| ((x as u128 * MAX_CYCLE as u128 / total as u128) as u64).max(1)).collect();
        }
        Self { cycle: smooth_cycle(&w), next: AtomicUsize::new(0) }
    }

    /// The member position of the next slot whose backend passes `ok`
    /// (given the backend index), consuming the slots it passes over.
    pub fn next(&self, members: &Members, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.cycle.len();
        if n == 0 {
            return None;
        }
        for _ in 0..n.min(MAX_SKIP) {
            let j = self.cycle[self.next.fetch_add(1, Ordering::Relaxed) % n] as usize;
            if ok(members.idx[j]) {
                return Some(j);
            }
        }
        let start = self.next.load(Ordering::Relaxed);
        (0..members.len()).map(|k| (start + k) % members.len()).find(|&j| ok(members.idx[j]))
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

/// Smooth weighted round robin over a tier.
#[derive(Debug)]
pub struct RoundRobin {
    algorithm: Algorithm,
    members: Members,
    cycle: SmoothCycle,
}

impl RoundRobin {
    /// `algorithm` is the name it was configured by (`round_robin` or its alias).
    pub fn new(algorithm: Algorithm, members: Members) -> Self {
        Self { algorithm, cycle: SmoothCycle::new(&members), members }
    }
}

impl Selector for RoundRobin {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn pick(&self, _ctx: &PickContext, _b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.cycle.next(&self.members, eligible).map(|j| self.members.idx[j])
    }

    fn shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        self.members.weight_shares(eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn rr(weights: &[u32]) -> (Vec<Backend>, RoundRobin) {
        let b = backends(weights);
        let s = RoundRobin::new(Algorithm::RoundRobin, Members::of_tier(&b, false));
        (b, s)
    }

    #[test]
    fn exact_over_a_full_cycle() {
        let (b, s) = rr(&[5, 1, 1]);
        assert_eq!(spread(&s, &b, 700), vec![500, 100, 100]);
        let (b, s) = rr(&[3, 2, 1, 4]);
        assert_eq!(spread(&s, &b, 1000), vec![300, 200, 100, 400]);
        let (b, s) = rr(&[1, 1, 1]);
        assert_eq!(spread(&s, &b, 300), vec![100, 100, 100]);
    }

    #[test]
    fn smooth_never_five_in_a_row() {
        let (b, s) = rr(&[5, 1, 1]);
        let seq: Vec<usize> = (0..700).map(|_| s.pick(&client(0), &b, &|_| true).unwrap()).collect();
        // nginx's own sequence is a a b a c a a, so across cycles a runs 4 long at most.
        let longest = seq.chunk_by(|a, b| a == b).map(|r| r.len()).max().unwrap();
        assert!(longest < 5, "longest run {longest}: {:?}", &seq[..14]);
    }

    #[test]
    fn survivors_split_a_failed_backends_share_by_weight() {
        // HAProxy gives 1500/1500 with the middle one of three down; scanning on
        // from the skipped slot would give 1000/2000.
        let (b, s) = rr(&[1, 1, 1]);
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[s.pick(&client(0), &b, &|i| i != 1).unwrap()] += 1;
        }
        assert_eq!(counts, [1500, 0, 1500]);
        let (b, s) = rr(&[3, 1, 1]);
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[s.pick(&client(0), &b, &|i| i != 1).unwrap()] += 1;
        }
        assert_eq!(counts, [3000, 0, 1000]);
        assert_eq!(s.shares(&|i| i != 1), vec![(0, 0.75), (1, 0.0), (2, 0.25)]);
    }

    #[test]
    fn skips_ineligible_and_reports_none() {
        let (b, s) = rr(&[100, 1]);
        for _ in 0..500 {
            assert_eq!(s.pick(&client(0), &b, &|i| i == 1), Some(1));
        }
        assert_eq!(s.pick(&client(0), &b, &|_| false), None);
        let (_, empty) = rr(&[0]);
        assert_eq!(empty.pick(&client(0), &b, &|_| true), None);
    }

    #[test]
    fn huge_weights_are_scaled_not_exploded() {
        let (_, s) = rr(&vec![997; 1000]);
        assert_eq!(s.cycle.cycle.len(), 1000); // gcd reduces 997s to 1s
        let (_, s) = rr(&(1..=1000).collect::<Vec<_>>());
        assert!(s.cycle.cycle.len() as u64 <= MAX_CYCLE + 1000);
    }
}
