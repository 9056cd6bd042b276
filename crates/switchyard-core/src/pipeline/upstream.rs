//! Stage 3, upstream: pick a backend of the routed pool by the route's key,
//! connect with the pool's timeout (the client's first bytes go out with
//! the connect), and on failure try another backend up to the pool's
//! `retries` (per tier: primaries, then backups); then the backend TLS
//! handshake when the pool asks for one.
//!
//! Failure contract: every failed attempt is counted on its backend and fed
//! to passive detection; an attempt that fails has delivered nothing, so the
//! next backend gets the preface whole. A failure of this process (out of
//! descriptors) is never charged to a backend. `Err` = no backend could be
//! reached (the caller counts why and closes the client).

use crate::backend::Backend;
use crate::events::EventLog;
use crate::health::Failure;
use crate::select::PickContext;
use crate::snapshot::Pool;
use crate::tls::client::BackendTls;
use crate::trace::{AttemptError, Attempts};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
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

impl<'a> Active<'a> {
    /// Count a connection that arrived established (adopted in a hand-over)
    /// on `backend` of `pool`, past its limit if need be: it is already open.
    pub fn adopted(pool: &'a Pool, backend: &'a Backend) -> Active<'a> {
        backend.stats.active.fetch_add(1, Relaxed);
        pool.active.fetch_add(1, Relaxed);
        Active { backend, pool }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.backend.release();
        self.pool.active.fetch_sub(1, Relaxed);
        self.pool.queue.released();
    }
}

/// Why no backend was connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUpstream {
    /// Every attempt failed, or no backend was eligible.
    NoBackend,
    /// This process is out of descriptors or memory (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM): not the backend's fault, so no backend is charged
    /// and no other one is tried (it would fail the same way).
    Local,
    /// Every backend that could take the client was full, and the pool's
    /// queue was full or its timeout passed.
    Queue(crate::queue::Refused),
}

/// Connect a client to a backend of `pool` chosen by `ctx`. Failures are
/// counted per backend. `tried` carries the backends already attempted for
/// this client (a retry after an empty response continues the same budget).
///
/// The budget is `retries + 1` attempts per tier (see `Pool::next_attempt`).
///
/// `preface` (bytes the client already sent) is delivered as part of the
/// connect: an attempt that fails has delivered nothing, so the next backend
/// gets it whole. It is counted in the backend's `bytes_in`.
///
/// A traced connection collects each attempt and its failure in `attempts`.
pub async fn connect<'a>(
    pool: &'a Pool,
    ctx: &PickContext,
    events: &EventLog,
    tried: &mut Vec<usize>,
    preface: &[u8],
    attempts: &mut Attempts,
) -> Result<Upstream<'a>, NoUpstream> {
    loop {
        let Some(i) = pool.next_attempt(ctx, tried) else {
            // Only full backends left: wait in the pool's queue (HAProxy maxconn/maxqueue).
            if pool.waits_for_room(tried) {
                pool.wait_for_room(tried).await.map_err(NoUpstream::Queue)?;
                continue;
            }
            return Err(NoUpstream::NoBackend);
        };
        let b = &pool.backends[i];
        // The slot is taken before connecting; full since the pick: pick again (it is skipped now).
        if !b.reserve() {
            continue;
        }
        tried.push(i);
        attempts.tried(i);
        let start = Instant::now();
        let outcome = tokio::time::timeout(pool.connect_timeout, crate::net::connect(b.addr, preface)).await;
        if !matches!(outcome, Ok(Ok(_))) {
            b.release();
            pool.queue.released();
        }
        match outcome {
            Ok(Ok(stream)) => {
                b.stats.connected(start.elapsed());
                b.stats.bytes_in.fetch_add(preface.len() as u64, Relaxed);
                b.health.record_success();
                pool.active.fetch_add(1, Relaxed);
                return Ok(Upstream { stream, active: Active { backend: b, pool } });
            }
            Ok(Err(e)) if crate::net::is_local_exhaustion(&e) => {
                attempts.failed(i, AttemptError::Local(e));
                return Err(NoUpstream::Local);
            }
            Ok(Err(e)) => {
                b.stats.connect_errors.fetch_add(1, Relaxed);
                passive_failure(pool, b, Failure::ConnectRefused, events);
                attempts.failed(i, AttemptError::Connect(e));
            }
            Err(_) => {
                b.stats.connect_timeouts.fetch_add(1, Relaxed);
                passive_failure(pool, b, Failure::ConnectTimeout, events);
                attempts.failed(i, AttemptError::ConnectTimeout);
            }
        }
    }
}

/// Feed a failure on real traffic to passive detection.
pub fn passive_failure(pool: &Pool, b: &Backend, failure: Failure, events: &EventLog) {
    let addr = b.addr.to_string();
    b.health.record_failure(&pool.passive, failure, || pool.may_eject(b), events, (&pool.name, &addr));
}

/// TLS to a backend within the pool's connect timeout; a failure counts as a
/// connect error (and feeds passive detection).
pub async fn backend_handshake(
    t: &BackendTls,
    pool: &Pool,
    b: &Backend,
    stream: TcpStream,
    events: &EventLog,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&t.config));
    match tokio::time::timeout(pool.connect_timeout, connector.connect(t.server_name(b.addr), stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(_)) => {
            b.stats.connect_errors.fetch_add(1, Relaxed);
            b.stats.tls_errors.fetch_add(1, Relaxed);
            passive_failure(pool, b, Failure::ConnectRefused, events);
            None
        }
        Err(_) => {
            b.stats.connect_timeouts.fetch_add(1, Relaxed);
            passive_failure(pool, b, Failure::ConnectTimeout, events);
            None
        }
    }
}
