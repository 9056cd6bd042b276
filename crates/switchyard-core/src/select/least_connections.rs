//! Weighted least connections: the eligible member with the lowest
//! active/weight wins. Active counts live in the backend's counters, which
//! survive snapshot swaps, so a backend that stays keeps its count.
//! Ties rotate, so an idle pool is not filled one backend at a time.

use super::{lighter, Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Least active connections per unit of weight (a scan of the members).
#[derive(Debug)]
pub struct LeastConnections {
    members: Members,
    rotate: AtomicUsize,
}

impl LeastConnections {
    pub fn new(members: Members) -> Self {
        Self { members, rotate: AtomicUsize::new(0) }
    }
}

impl Selector for LeastConnections {
    fn algorithm(&self) -> Algorithm {
        Algorithm::LeastConnections
    }

    fn pick(&self, _ctx: &PickContext, b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.rotate.fetch_add(1, Relaxed) % n;
        let mut best: Option<(usize, u64, u32)> = None;
        for k in 0..n {
            let j = (start + k) % n;
            let i = self.members.idx[j];
            if !eligible(i) {
                continue;
            }
            let (load, w) = (b[i].stats.active.load(Relaxed), self.members.weights[j]);
            if best.is_none_or(|(_, bl, bw)| lighter(load, w, bl, bw)) {
                best = Some((i, load, w));
            }
        }
        best.map(|(i, _, _)| i)
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
    fn ties_rotate() {
        let b = backends(&[1, 1, 1]);
        let s = LeastConnections::new(Members::of_tier(&b, false));
        assert_eq!(spread(&s, &b, 300), vec![100, 100, 100]);
    }
}
