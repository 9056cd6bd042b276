//! Keep-alive connections to one backend: an idle list (LIFO, bounded by
//! `max_idle_per_backend`, each closed once idle for `idle_timeout`: at the
//! next checkout or by the engine's sweep, whichever comes first) shared by every
//! worker and kept across snapshot swaps (the registry holds it by backend
//! identity). A connection goes back to the list only once its response
//! body has been relayed whole and hyper says it is ready for another
//! request; anything else closes it. Reuse is counted per backend.

use super::body::Body;
use super::config::{HttpPoolConfig, RequestKey};
use super::multiplex::{H2Conns, H2Lease};
use super::sticky::Sticky;
use crate::config::PoolConfig;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a hyper client connection holds while it lives: its read and write
/// buffers (8 KiB each).
const CONN_BUFFERS: usize = 16 << 10;

/// An HTTP/1.1 keep-alive connection ready to send a request on.
pub type Sender = http1::SendRequest<Body>;

/// Where one request goes: its own HTTP/1.1 connection, or a stream on a
/// shared HTTP/2 one.
pub enum BackendConn {
    H1(Sender),
    H2(H2Lease),
}

impl BackendConn {
    /// Send `req`; a request that was not written is handed back in the error.
    pub async fn send(&mut self, req: Request<Body>) -> Result<Response<Incoming>, TrySendError<Request<Body>>> {
        match self {
            BackendConn::H1(tx) => tx.try_send_request(req).await,
            BackendConn::H2(l) => l.tx.try_send_request(req).await,
        }
    }
}

/// The keep-alive connections of one backend: idle HTTP/1.1 ones and the
/// shared HTTP/2 ones.
#[derive(Debug, Default)]
pub struct IdleConns {
    /// Each connection with the instant its idle timeout ends.
    idle: Mutex<Vec<(Sender, Instant)>>,
    /// HTTP/2 pools: the multiplexed connections.
    pub h2: H2Conns,
}

impl IdleConns {
    /// The most recently used idle connection that is fresh and open, if any
    /// (stale and closed ones are dropped). It may not be ready yet (its task
    /// is finishing the previous exchange): the caller awaits `ready()`.
    pub fn checkout(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while let Some((tx, expires)) = idle.pop() {
            if now < expires && !tx.is_closed() {
                return Some(tx);
            }
        }
        None
    }

    /// Put a connection back after a complete exchange, unless `max` are idle
    /// already or it is closed; it may stay idle for `idle_timeout`.
    pub fn checkin(&self, tx: Sender, max: usize, idle_timeout: Duration) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < max {
            idle.push((tx, Instant::now() + idle_timeout));
        }
    }

    /// Close (drop) the connections idle past their timeout or closed by the
    /// backend: dropping the last handle ends hyper's connection task.
    pub fn sweep(&self, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let before = idle.len();
        idle.retain(|(tx, expires)| now < *expires && !tx.is_closed());
        let gone = before - idle.len() + self.h2.sweep(now);
        // Their buffers are freed with them (see `crate::heap`).
        crate::heap::freed(gone * CONN_BUFFERS);
    }

    /// Idle connections now.
    pub fn len(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// What a pool holds for HTTP listeners.
#[derive(Debug)]
pub struct HttpPool {
    /// The key of keyed algorithms for requests (else the pool's `key_source`).
    pub key: Option<RequestKey>,
    pub sticky: Option<Sticky>,
    /// `Host` sent to the backends instead of the client's.
    pub host: Option<HeaderValue>,
    /// Idle keep-alive connections, per backend index (kept across swaps).
    pub idle: Vec<Arc<IdleConns>>,
    pub max_idle: usize,
    pub idle_timeout: Duration,
    pub eject_after_5xx: u32,
    pub error_rate: Option<super::config::ErrorRate>,
    /// HTTP/2 to the backends: at most `connections` per backend, each
    /// carrying up to `streams` before another is opened.
    pub http2: Option<Http2Limits>,
}

/// How an HTTP/2 pool multiplexes.
#[derive(Debug, Clone, Copy)]
pub struct Http2Limits {
    pub connections: usize,
    pub streams: usize,
}

impl HttpPool {
    /// Build the HTTP side of pool `p` over its built `backends`; `idle` are
    /// their keep-alive lists (from the registry, kept across swaps).
    pub fn build(p: &PoolConfig, backends: &[crate::backend::Backend], idle: Vec<Arc<IdleConns>>) -> HttpPool {
        // A pool sent without `http` (Rust tests; the control plane always sends it).
        let defaults = HttpPoolConfig {
            key: None,
            sticky: None,
            host: None,
            max_idle_per_backend: crate::catalog::HTTP_MAX_IDLE_PER_BACKEND,
            idle_timeout_ms: crate::catalog::HTTP_IDLE_TIMEOUT_MS,
            eject_after_5xx: 0,
            error_rate: None,
            http2: false,
            http2_connections: crate::catalog::HTTP2_CONNECTIONS_PER_BACKEND,
            http2_streams: crate::catalog::HTTP2_STREAMS_PER_CONNECTION,
        };
        let h = p.http.as_ref().unwrap_or(&defaults);
        HttpPool {
            key: h.key.clone(),
            sticky: h.sticky.as_ref().map(|s| Sticky::build(s, &p.name, backends)),
            host: h.host.as_deref().and_then(|v| HeaderValue::from_str(v).ok()),
            idle,
            max_idle: h.max_idle_per_backend as usize,
            idle_timeout: Duration::from_millis(h.idle_timeout_ms.max(1)),
            eject_after_5xx: h.eject_after_5xx,
            error_rate: h.error_rate,
            http2: h
                .http2
                .then(|| Http2Limits { connections: h.http2_connections.max(1) as usize, streams: h.http2_streams.max(1) as usize }),
        }
    }
}
