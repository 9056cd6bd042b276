//! Consistent hashing on a ketama-style ring: each member places
//! `virtual_nodes × weight` points (xxh3 of "address#n", fixed seed); a key
//! belongs to the first point clockwise of its hash. Adding or removing one
//! of N backends moves about 1/N of the keys, and only keys of that backend.
//! An ineligible or (bounded load) full owner passes the key on clockwise.

use super::bounded::Bound;
use super::walk::walk;
use super::{name_hash, Members, PickContext, Selector};
use crate::backend::Backend;
use crate::catalog::Algorithm;

/// Most ring points; larger weight sets are scaled down to fit (16 MiB of ring).
const MAX_POINTS: u64 = 1 << 20;
const POINT_SEED: u64 = 0x6b65_7461_6d61; // "ketama"

/// A sorted ring of (hash, member) points, stored as two arrays so the binary
/// search touches only hashes.
#[derive(Debug)]
pub struct Ring {
    members: Members,
    hashes: Vec<u64>,
    owners: Vec<u32>,
    bound: Option<Bound>,
}

impl Ring {
    /// `names` is indexed by pool backend index (the address, so rings agree across processes).
    pub fn new(members: Members, names: &[String], virtual_nodes: u32, bound: Option<Bound>) -> Self {
        let want: u64 = members.weights.iter().map(|&w| w as u64 * virtual_nodes as u64).sum();
        let scale = if want > MAX_POINTS { MAX_POINTS as f64 / want as f64 } else { 1.0 };
        let mut points: Vec<(u64, u32)> = Vec::with_capacity(want.min(MAX_POINTS) as usize + members.len());
        for (j, (&i, &w)) in members.idx.iter().zip(&members.weights).enumerate() {
            let count = ((w as u64 * virtual_nodes as u64) as f64 * scale).max(1.0) as u64;
            let mut label = format!("{}#", names[i]).into_bytes();
            let base = label.len();
            for n in 0..count {
                label.truncate(base);
                label.extend_from_slice(n.to_string().as_bytes());
                points.push((name_hash(&label, POINT_SEED), j as u32));
            }
        }
        // Equal hashes (astronomically rare) are ordered by name, not by list
        // position, so the ring never depends on the order backends are listed in.
        let name_of = |j: u32| &names[members.idx[j as usize]];
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| name_of(a.1).cmp(name_of(b.1))));
        let (hashes, owners) = points.into_iter().unzip();
        Self { members, hashes, owners, bound }
    }
}

impl Selector for Ring {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ConsistentHash
    }

    fn pick(&self, ctx: &PickContext, b: &[Backend], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let len = self.hashes.len();
        if len == 0 {
            return None;
        }
        let h = ctx.key;
        let start = self.hashes.partition_point(|&x| x < h);
        walk(len, &self.members.idx, |k| self.owners[(start + k) % len] as usize, b, eligible, self.bound.as_ref())
    }

    fn shares(&self, eligible: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        // Each point owns the arc from its predecessor up to itself (a lone
        // point owns the whole circle).
        let len = self.hashes.len();
        let arc = |p: usize| match p {
            _ if len == 1 => 1.0,
            0 => self.hashes[0].wrapping_sub(self.hashes[len - 1]) as f64,
            _ => self.hashes[p].wrapping_sub(self.hashes[p - 1]) as f64,
        };
        self.members.walked_shares(len, |p| self.owners[p] as usize, arc, eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Members, DEFAULT_VIRTUAL_NODES};
    use super::*;

    fn ring(b: &[Backend]) -> Ring {
        let names: Vec<String> = b.iter().map(|x| x.addr.to_string()).collect();
        Ring::new(Members::of_tier(b, false), &names, DEFAULT_VIRTUAL_NODES, None)
    }

    fn owners(r: &Ring, b: &[Backend], n: u32) -> Vec<std::net::SocketAddr> {
        (0..n).map(|i| b[r.pick(&client(i), b, &|_| true).unwrap()].addr).collect()
    }

    /// The ring depends on the backends, not on the order they are listed in.
    #[test]
    fn ring_ignores_list_order() {
        let b = backends(&[1, 2, 1, 3]);
        let mut r = backends(&[1, 2, 1, 3]);
        r.reverse();
        assert_eq!(owners(&ring(&b), &b, 20_000), owners(&ring(&r), &r, 20_000));
    }

    #[test]
    fn balanced_within_bounds() {
        let b = backends(&[1; 4]);
        let r = ring(&b);
        let counts = spread(&r, &b, 100_000);
        for c in &counts {
            assert!((*c as f64 / 100_000.0 - 0.25).abs() < 0.05, "{counts:?}");
        }
        let shares: f64 = r.shares(&|_| true).iter().map(|s| s.1).sum();
        assert!((shares - 1.0).abs() < 1e-9);
    }

    #[test]
    fn adding_one_moves_about_one_over_n_and_only_to_the_new_one() {
        let three = backends(&[1; 3]);
        let four = backends(&[1; 4]);
        let (before, after) = (owners(&ring(&three), &three, 100_000), owners(&ring(&four), &four, 100_000));
        let moved: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
        let share = moved.len() as f64 / 100_000.0;
        assert!(share <= 0.25 + 0.03, "moved {share}");
        assert!(moved.iter().all(|(_, to)| **to == four[3].addr), "keys moved between untouched backends");
    }

    #[test]
    fn removing_one_moves_only_its_keys() {
        let four = backends(&[1; 4]);
        let three = backends(&[1; 3]);
        let (before, after) = (owners(&ring(&four), &four, 100_000), owners(&ring(&three), &three, 100_000));
        for (a, b) in before.iter().zip(&after) {
            if *a != four[3].addr {
                assert_eq!(a, b, "a key of an untouched backend moved");
            }
        }
    }

    #[test]
    fn ineligible_owner_passes_keys_clockwise() {
        let b = backends(&[1; 3]);
        let r = ring(&b);
        for i in 0..1000 {
            let c = client(i);
            let p = r.pick(&c, &b, &|x| x != 0).unwrap();
            assert_ne!(p, 0);
            if r.pick(&c, &b, &|_| true) != Some(0) {
                assert_eq!(Some(p), r.pick(&c, &b, &|_| true), "keys of healthy backends must stay");
            }
        }
    }
}
