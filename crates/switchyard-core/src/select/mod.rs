//! Backend selection: one trait, one file per algorithm.
//!
//! A selector is built off the hot path when a snapshot is built, and is
//! immutable apart from its own atomics. `pick` runs once per connection
//! attempt; it must not lock or allocate.

mod round_robin;

pub use round_robin::RoundRobin;

use crate::snapshot::Backend;
use std::fmt::Debug;
use std::net::SocketAddr;

/// What a selector may look at for one decision.
#[derive(Debug, Clone, Copy)]
pub struct PickContext {
    /// The client's address (for hash-based algorithms).
    pub client: SocketAddr,
}

/// A balancing algorithm.
pub trait Selector: Send + Sync + Debug {
    /// The algorithm's configuration name.
    fn name(&self) -> &'static str;
    /// Choose a backend index in `0..n` for which `eligible` holds, or `None`.
    /// `eligible` folds in everything the pool knows (weight 0, backup tier,
    /// already tried); the selector only decides the order.
    fn pick(&self, ctx: &PickContext, n: usize, eligible: &dyn Fn(usize) -> bool) -> Option<usize>;
}

/// The algorithms this build knows, by configuration name.
pub const ALGORITHMS: &[&str] = &["round_robin"];

/// Check an algorithm name; the error lists the known ones.
pub fn check_algorithm(name: &str) -> Result<(), String> {
    if ALGORITHMS.contains(&name) {
        Ok(())
    } else {
        Err(format!("unknown algorithm {name:?}, expected one of {}", ALGORITHMS.join(", ")))
    }
}

/// Build the selector for `algorithm` over `backends` (already checked).
pub fn build(algorithm: &str, backends: &[Backend]) -> Box<dyn Selector> {
    match algorithm {
        _ => Box::new(RoundRobin::new(backends.len())),
    }
}
