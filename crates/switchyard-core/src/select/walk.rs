//! The walk shared by the hash tables: from a key's position, visit owners in
//! table order until one is eligible and (with bounded load) under the cap.

use super::bounded::Bound;
use crate::backend::Backend;
use std::sync::atomic::Ordering::Relaxed;

/// Visit `owner_at(0..len)` (member positions) and return the first backend
/// index that is eligible and under `bound`'s cap; if every eligible one is
/// full, the first eligible (bounded load fails open rather than refusing).
/// Stops early once every member has been seen (pools of up to 256 members).
pub fn walk(
    len: usize,
    members: &[usize],
    owner_at: impl Fn(usize) -> usize,
    b: &[Backend],
    eligible: &dyn Fn(usize) -> bool,
    bound: Option<&Bound>,
) -> Option<usize> {
    let cap = bound.map(|x| x.cap());
    let mut seen = [0u64; 4];
    let track = members.len() <= 256;
    let mut distinct = 0;
    let mut first_eligible = None;
    for k in 0..len {
        let j = owner_at(k);
        if track {
            let (w, bit) = (j / 64, 1u64 << (j % 64));
            if seen[w] & bit != 0 {
                continue;
            }
            seen[w] |= bit;
            distinct += 1;
        }
        let i = members[j];
        if eligible(i) {
            match cap {
                Some(c) if b[i].stats.active.load(Relaxed) >= c => {
                    first_eligible.get_or_insert(i);
                }
                _ => return Some(i),
            }
        }
        if track && distinct == members.len() {
            break;
        }
    }
    first_eligible
}
