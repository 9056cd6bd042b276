//! Platforms without splice(2): the pool never lends a pipe, so every
//! direction stays on the userspace copy path (`splice: always` and `auto`
//! behave like `never`).

use super::Leg;
use std::io;

/// A pipe pool that is always empty.
#[derive(Debug)]
pub struct PipePool;

/// Never constructed: no pipes on this platform.
pub struct Lease<'a>(std::convert::Infallible, std::marker::PhantomData<&'a ()>);

impl PipePool {
    pub fn new(_max: usize) -> Self {
        PipePool
    }
    pub fn set_max(&self, _max: usize) {}
    pub fn max(&self) -> usize {
        0
    }
    pub fn in_use(&self) -> usize {
        0
    }
    pub fn leased(&self) -> u64 {
        0
    }
    pub fn take(&self) -> Option<Lease<'_>> {
        None
    }
}

pub async fn pump(_leg: &Leg<'_>, lease: Lease<'_>) -> io::Result<()> {
    match lease.0 {}
}
