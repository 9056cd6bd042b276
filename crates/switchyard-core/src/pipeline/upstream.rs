//! Connecting to a backend: pick, connect with a timeout, and on failure try
//! another backend up to the pool's `retries`.

use crate::events::EventLog;
use crate::health::Failure;
use crate::select::PickContext;
use crate::snapshot::{Backend, Pool};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::net::TcpStream;

/// A connected backend: the socket, and a guard that counts one active
/// connection on the backend and its pool while it lives (least connections
/// and bounded load read these).
pub struct Upstream<'a> {
    pub stream: TcpStream,
    pub active: Active<'a>,
}

/// Counts one active connection on a backend and its pool until dropped.
pub struct Active<'a> {
    pub backend: &'a Backend,
    pool: &'a Pool,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.backend.stats.active.fetch_sub(1, Relaxed);
        self.pool.active.fetch_sub(1, Relaxed);
    }
}

/// Connect a client from `client` to a backend of `pool`, or `None` when every
/// attempt failed or no backend was eligible. Failures are counted per backend.
/// `tried` carries the backends already attempted for this client (a retry
/// after an empty response continues the same budget of `retries + 1`).
/// `preface` (bytes the client already sent) is delivered as part of the
/// connect: an attempt that fails has delivered nothing, so the next backend
/// gets it whole. It is counted in the backend's `bytes_in`.
pub async fn connect<'a>(
    pool: &'a Pool,
    client: SocketAddr,
    events: &EventLog,
    tried: &mut Vec<usize>,
    preface: &[u8],
) -> Option<Upstream<'a>> {
    let ctx = PickContext { client };
    let attempts = pool.retries as usize + 1;
    while tried.len() < attempts {
        let i = pool.pick(&ctx, tried)?;
        tried.push(i);
        let b = &pool.backends[i];
        let start = Instant::now();
        match tokio::time::timeout(pool.connect_timeout, crate::net::connect(b.addr, preface)).await {
            Ok(Ok(stream)) => {
                b.stats.connected(start.elapsed());
                b.stats.bytes_in.fetch_add(preface.len() as u64, Relaxed);
                b.health.record_success();
                pool.active.fetch_add(1, Relaxed);
                return Some(Upstream { stream, active: Active { backend: b, pool } });
            }
            Ok(Err(_)) => {
                b.stats.connect_errors.fetch_add(1, Relaxed);
                passive_failure(pool, b, Failure::ConnectRefused, events);
            }
            Err(_) => {
                b.stats.connect_timeouts.fetch_add(1, Relaxed);
                passive_failure(pool, b, Failure::ConnectTimeout, events);
            }
        }
    }
    None
}

/// Feed a failure on real traffic to passive detection.
pub fn passive_failure(pool: &Pool, b: &Backend, failure: Failure, events: &EventLog) {
    let addr = b.addr.to_string();
    b.health.record_failure(&pool.passive, failure, || pool.may_eject(), events, (&pool.name, &addr));
}
