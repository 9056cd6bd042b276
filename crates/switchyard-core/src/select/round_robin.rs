//! Plain round robin: each pick starts one past the previous start and takes
//! the first eligible backend from there.

use super::{PickContext, Selector};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over all backends, skipping ineligible ones.
#[derive(Debug)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(_n: usize) -> Self {
        Self { next: AtomicUsize::new(0) }
    }
}

impl Selector for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn pick(&self, _ctx: &PickContext, n: usize, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|i| (start + i) % n).find(|&i| eligible(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PickContext {
        PickContext { client: "127.0.0.1:1".parse().unwrap() }
    }

    #[test]
    fn exact_over_a_full_cycle() {
        let rr = RoundRobin::new(3);
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[rr.pick(&ctx(), 3, &|_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 100, 100]);
    }

    #[test]
    fn skips_ineligible_and_reports_none() {
        let rr = RoundRobin::new(3);
        for _ in 0..10 {
            assert_eq!(rr.pick(&ctx(), 3, &|i| i == 2), Some(2));
        }
        assert_eq!(rr.pick(&ctx(), 3, &|_| false), None);
        assert_eq!(rr.pick(&ctx(), 0, &|_| true), None);
    }
}
