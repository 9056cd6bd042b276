//! Plain round robin: each pick starts one past the previous start and takes
//! the first eligible member from there. Weights only decide membership
//! (weight 0 takes nothing); use `weighted_round_robin` for shares.

use super::{Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over the members, skipping ineligible ones.
#[derive(Debug)]
pub struct RoundRobin {
    members: Members,
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(members: Members) -> Self {
        Self { members, next: AtomicUsize::new(0) }
    }
}

impl Selector for RoundRobin {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RoundRobin
    }

    fn pick(&self, _ctx: &PickContext, _b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let m = &self.members.idx;
        if m.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % m.len();
        (0..m.len()).map(|i| m[(start + i) % m.len()]).find(|&i| eligible(i))
    }

    fn shares(&self) -> Vec<(usize, f64)> {
        let n = self.members.len() as f64;
        self.members.idx.iter().map(|&i| (i, 1.0 / n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn exact_over_a_full_cycle() {
        let b = backends(&[1, 5, 1]);
        let rr = RoundRobin::new(Members::of_tier(&b, false));
        assert_eq!(spread(&rr, &b, 300), vec![100, 100, 100]);
    }

    #[test]
    fn skips_ineligible_and_reports_none() {
        let b = backends(&[1, 1, 1]);
        let rr = RoundRobin::new(Members::of_tier(&b, false));
        for _ in 0..10 {
            assert_eq!(rr.pick(&client(0), &b, &|i| i == 2), Some(2));
        }
        assert_eq!(rr.pick(&client(0), &b, &|_| false), None);
        let empty = RoundRobin::new(Members::of_tier(&backends(&[0]), false));
        assert_eq!(empty.pick(&client(0), &b, &|_| true), None);
    }
}
