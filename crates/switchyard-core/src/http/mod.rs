//! HTTP/1.1 listeners (L7): each request is routed by the listener's compiled
//! table, balanced by the route's pool (its key, sticky cookie, retries),
//! and proxied over a pooled keep-alive backend connection; `Upgrade`s
//! (WebSocket) become byte forwarding. Built on hyper's connection-level
//! API, server and client: hyper parses and frames, this module decides.
//!
//! - [`serve`]: one client connection (limits, idle timeout, hyper's server);
//! - [`proxy`]: one request (route, key, pick, send, retry, respond);
//! - [`route`], [`headers`], [`sticky`]: the tables a request is read against;
//! - [`pool`]: idle keep-alive connections per backend.

pub mod answer;
pub mod body;
pub mod config;
pub mod grpc;
pub mod headers;
mod logged;
pub mod multiplex;
pub mod pool;
mod proxy;
mod respond;
pub mod route;
pub mod serve;
pub mod stats;
pub mod sticky;

use crate::snapshot::Pool;
pub use body::{Body, BoxError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// One request in flight on backend `i` of `pool`: counted as active on
/// the backend and the pool (least connections reads requests in flight)
/// until dropped, which is when its response has been relayed or abandoned.
#[derive(Debug)]
pub struct InFlight {
    pool: Arc<Pool>,
    i: usize,
}

impl InFlight {
    /// Take a slot on backend `i` (see `Backend::reserve`); `None`: it is full.
    pub fn reserve(pool: Arc<Pool>, i: usize) -> Option<InFlight> {
        if !pool.backends[i].reserve() {
            return None;
        }
        pool.active.fetch_add(1, Relaxed);
        Some(InFlight { pool, i })
    }

    /// The backend it counts on.
    pub fn backend(&self) -> &crate::backend::Backend {
        &self.pool.backends[self.i]
    }

    /// The pool it counts in.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.pool.backends[self.i].release();
        self.pool.active.fetch_sub(1, Relaxed);
        self.pool.queue.released();
    }
}
