//! Weighted least connections: the eligible member with the lowest
//! active/weight wins. Active counts live in the backend's counters, which
//! survive snapshot swaps, so a backend that stays keeps its count.
//! Ties are broken by weighted round robin, as nginx does: an idle pool (say
//! sequential requests) gets 3/1/1 weights as 60/20/20, not 33/33/33.

use super::cycle::SmoothCycle;
use super::{lighter, Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;
use std::sync::atomic::Ordering::Relaxed;

/// Least active connections per unit of weight (a scan of the members).
#[derive(Debug)]
pub struct LeastConnections {
    members: Members,
    /// Decides among the members tied for the lightest load.
    ties: SmoothCycle,
}

impl LeastConnections {
    pub fn new(members: Members) -> Self {
        Self { ties: SmoothCycle::new(&members), members }
    }
}

impl Selector for LeastConnections {
    fn algorithm(&self) -> Algorithm {
        Algorithm::LeastConnections
    }

    fn pick(&self, _ctx: &PickContext, b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let m = &self.members;
        // The lightest load per weight among the eligible, and how many share it.
        let mut best: Option<(usize, u64, u32)> = None;
        let mut tied = 0;
        for (j, &i) in m.idx.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let (load, w) = (b[i].stats.active.load(Relaxed), m.weights[j]);
            match best {
                Some((_, bl, bw)) if !lighter(load, w, bl, bw) => tied += !lighter(bl, bw, load, w) as usize,
                _ => (best, tied) = (Some((i, load, w)), 1),
            }
        }
        let (first, bl, bw) = best?;
        if tied == 1 {
            return Some(first);
        }
        // Loads are read again: another worker may have moved one meanwhile.
        let is_tied = |i: usize| eligible(i) && !lighter(bl, bw, b[i].stats.active.load(Relaxed), b[i].weight);
        Some(self.ties.next(m, is_tied).map_or(first, |j| m.idx[j]))
    }

    fn shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        self.members.weight_shares(eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn prefers_the_least_loaded_per_weight() {
        let b = backends(&[1, 1, 2]);
        b[0].stats.active.store(5, Relaxed);
        b[1].stats.active.store(2, Relaxed);
        b[2].stats.active.store(5, Relaxed); // 2.5 per weight unit
        let s = LeastConnections::new(Members::of_tier(&b, false));
        assert_eq!(s.pick(&client(0), &b, &|_| true), Some(1));
        b[1].stats.active.store(3, Relaxed);
        assert_eq!(s.pick(&client(0), &b, &|_| true), Some(2));
        assert_eq!(s.pick(&client(0), &b, &|i| i == 0), Some(0));
    }

    #[test]
    fn ties_go_by_weight() {
        let b = backends(&[1, 1, 1]);
        let s = LeastConnections::new(Members::of_tier(&b, false));
        assert_eq!(spread(&s, &b, 300), vec![100, 100, 100]);
        // nginx: an idle pool weighted 3/1/1 gets 60/20/20.
        let b = backends(&[3, 1, 1]);
        let s = LeastConnections::new(Members::of_tier(&b, false));
        assert_eq!(spread(&s, &b, 100), vec![60, 20, 20]);
        // Only the tied lightest take part: 0/3 and 0/1 tie, 1/1 does not.
        b[2].stats.active.store(1, Relaxed);
        assert_eq!(spread(&s, &b, 100), vec![75, 25, 0]);
    }
}
