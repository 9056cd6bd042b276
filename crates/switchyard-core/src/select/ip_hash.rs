//! Source-IP hash by modulo over a weighted slot table (HAProxy's map-based
//! `balance source`). Cheap and even, but adding one backend remaps most
//! clients — `switchyard plan` shows how many; use consistent_hash or maglev
//! when that matters. An ineligible slot walks on to the next slots.

use super::{Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;

/// Largest slot table; heavier weight sets are scaled down to fit.
const MAX_SLOTS: u64 = 1 << 16;

/// Modulo hash of the client IP.
#[derive(Debug)]
pub struct IpHash {
    members: Members,
    /// Member positions, each repeated by its (reduced) weight, interleaved.
    slots: Vec<u32>,
}

impl IpHash {
    pub fn new(members: Members) -> Self {
        let mut w = members.reduced_weights();
        let total: u64 = w.iter().sum();
        if total > MAX_SLOTS {
            w = w.iter().map(|&x| ((x as u128 * MAX_SLOTS as u128 / total as u128) as u64).max(1)).collect();
        }
        // Interleave (round by round) so neighbouring slots belong to different members.
        let mut slots = Vec::with_capacity(w.iter().sum::<u64>() as usize);
        let mut left = w.clone();
        while slots.len() < w.iter().sum::<u64>() as usize {
            for (j, l) in left.iter_mut().enumerate() {
                if *l > 0 {
                    *l -= 1;
                    slots.push(j as u32);
                }
            }
        }
        Self { members, slots }
    }
}

impl Selector for IpHash {
    fn algorithm(&self) -> Algorithm {
        Algorithm::IpHash
    }

    fn pick(&self, ctx: &PickContext, _b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let start = (ctx.key % n as u64) as usize;
        (0..n).map(|k| self.members.idx[self.slots[(start + k) % n] as usize]).find(|&i| eligible(i))
    }

    fn shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        self.members.walked_shares(self.slots.len(), |p| self.slots[p] as usize, |_| 1.0, eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn even_and_sticky() {
        let b = backends(&[1; 5]);
        let s = IpHash::new(Members::of_tier(&b, false));
        let counts = spread(&s, &b, 100_000);
        assert!(chi_square(&counts, &[0.2; 5]) < 18.47, "{counts:?}"); // df 4, p = 0.001
        let c = client(42);
        let first = s.pick(&c, &b, &|_| true);
        assert!((0..100).all(|_| s.pick(&c, &b, &|_| true) == first));
    }
}
