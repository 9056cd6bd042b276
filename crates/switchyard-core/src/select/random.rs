//! Weighted random: a member drawn with probability weight/total (a binary
//! search over cumulative weights). Also the sampler for power of two choices.

use super::{fast_rand, Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;

/// Random draws before falling back to a scan when draws keep hitting ineligible members.
const DRAWS: usize = 4;

/// Weighted random selection.
#[derive(Debug)]
pub struct Random {
    pub(super) members: Members,
    cumulative: Vec<u64>,
}

impl Random {
    pub fn new(members: Members) -> Self {
        let mut acc = 0u64;
        let cumulative = members
            .weights
            .iter()
            .map(|&w| {
                acc += w as u64;
                acc
            })
            .collect();
        Self { members, cumulative }
    }

    /// One weighted draw: a member position.
    pub(super) fn draw(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let r = fast_rand() % total;
        Some(self.cumulative.partition_point(|&c| c <= r))
    }

    /// A weighted draw that is eligible, or a scan from a random start.
    pub(super) fn draw_eligible(&self, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let m = &self.members.idx;
        for _ in 0..DRAWS {
            let j = self.draw()?;
            if eligible(m[j]) {
                return Some(m[j]);
            }
        }
        let start = (fast_rand() % m.len() as u64) as usize;
        (0..m.len()).map(|k| m[(start + k) % m.len()]).find(|&i| eligible(i))
    }
}

impl Selector for Random {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Random
    }

    fn pick(&self, _ctx: &PickContext, _b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.draw_eligible(eligible)
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
    fn uniform_within_chi_square_bounds() {
        let b = backends(&[1; 10]);
        let s = Random::new(Members::of_tier(&b, false));
        let counts = spread(&s, &b, 100_000);
        // 9 degrees of freedom: p = 0.001 critical value is 27.88.
        assert!(chi_square(&counts, &[0.1; 10]) < 27.88, "{counts:?}");
    }

    #[test]
    fn weighted_shares_within_two_percent() {
        let b = backends(&[1, 2, 3, 4]);
        let s = Random::new(Members::of_tier(&b, false));
        let counts = spread(&s, &b, 100_000);
        for (c, w) in counts.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            let share = *c as f64 / 100_000.0;
            assert!((share - w / 10.0).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn finds_the_one_eligible_member() {
        let b = backends(&[100, 100, 1]);
        let s = Random::new(Members::of_tier(&b, false));
        for _ in 0..200 {
            assert_eq!(s.pick(&client(0), &b, &|i| i == 2), Some(2));
        }
        assert_eq!(s.pick(&client(0), &b, &|_| false), None);
    }
}
