//! HTTP/2 connections to one backend, shared by every request: each carries
//! many streams at once. A request takes a lease on the least loaded open
//! connection that has room (fewer than `streams` in flight); when every
//! connection is full and fewer than `connections` are open, the caller opens
//! another; at the cap the least loaded one is used anyway and h2 queues the
//! stream until the backend's own SETTINGS limit lets it go. Connections
//! being opened count toward the cap: a burst of requests to a backend with
//! none open waits for the first ones instead of each opening its own. A
//! connection with no stream for `idle_timeout` is closed by the engine's
//! sweep, as HTTP/1.1 idle connections are.

use super::body::Body;
use hyper::client::conn::http2::SendRequest;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One multiplexed connection: its sender (cloned per stream) and the
/// streams in flight on it.
#[derive(Debug)]
struct Shared {
    tx: SendRequest<Body>,
    streams: Arc<AtomicUsize>,
    /// When a stream last took it (or it was opened): the idle sweep reads it.
    last_used: Instant,
    /// Closed after this long without a stream (the pool's idle timeout).
    idle_timeout: Duration,
}

/// The HTTP/2 connections of one backend.
#[derive(Debug, Default)]
pub struct H2Conns {
    conns: Mutex<Conns>,
    /// Woken when a connection being opened is ready or failed.
    opened: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Conns {
    open: Vec<Shared>,
    /// Connections being opened now.
    opening: usize,
}

/// A stream's hold on a connection: counted in its streams until dropped
/// (when the response has been relayed whole, or abandoned).
#[derive(Debug)]
pub struct H2Lease {
    pub tx: SendRequest<Body>,
    streams: Arc<AtomicUsize>,
}

impl Drop for H2Lease {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Relaxed);
    }
}

/// What [`H2Conns::lease`] found.
pub enum Found<'a> {
    Lease(H2Lease),
    /// Every open connection is full and another may be opened: by the
    /// holder of this, who gives it to [`H2Conns::add`] (dropped: it failed).
    Open(Opening<'a>),
    /// Connections are being opened up to the cap: wait for
    /// [`H2Conns::opened`] and ask again.
    Wait,
}

/// The right to open one connection, counted in `opening` until dropped.
pub struct Opening<'a>(&'a H2Conns);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.lock().opening -= 1;
        self.0.opened.notify_waiters();
    }
}

impl H2Conns {
    /// A lease on the least loaded open connection with fewer than `streams`
    /// in flight; at `connections` open, the least loaded one whatever its load.
    pub fn lease(&self, streams: usize, connections: usize) -> Found<'_> {
        let mut conns = self.lock();
        conns.open.retain(|c| !c.tx.is_closed());
        let (open, opening) = (conns.open.len(), conns.opening);
        match conns.open.iter_mut().min_by_key(|c| c.streams.load(Relaxed)) {
            Some(c) if c.streams.load(Relaxed) < streams || open >= connections => {
                c.last_used = Instant::now();
                Found::Lease(take(c))
            }
            _ if open + opening < connections => {
                conns.opening += 1;
                Found::Open(Opening(self))
            }
            // Full up to the cap with some still opening: they will have room.
            _ => Found::Wait,
        }
    }

    /// Resolves when a connection being opened is ready or has failed; take
    /// it *before* [`lease`](Self::lease) answers `Wait`, so no wake-up is missed.
    pub fn opened(&self) -> tokio::sync::futures::Notified<'_> {
        self.opened.notified()
    }

    /// Keep the connection `opening` produced and lease it.
    pub fn add(&self, opening: Opening<'_>, tx: SendRequest<Body>, idle_timeout: Duration) -> H2Lease {
        let c = Shared { tx, streams: Arc::new(AtomicUsize::new(0)), last_used: Instant::now(), idle_timeout };
        let lease = take(&c);
        self.lock().open.push(c);
        drop(opening);
        lease
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close connections that are closed already, or have no stream in
    /// flight and none taken for their idle timeout; returns how many went.
    /// Dropping the last sender ends hyper's connection task (GOAWAY).
    pub fn sweep(&self, now: Instant) -> usize {
        let open = &mut self.lock().open;
        let before = open.len();
        open.retain(|c| !c.tx.is_closed() && (c.streams.load(Relaxed) > 0 || now.duration_since(c.last_used) < c.idle_timeout));
        before - open.len()
    }
}

/// Count one more stream on `c` and hand out its sender.
fn take(c: &Shared) -> H2Lease {
    c.streams.fetch_add(1, Relaxed);
    H2Lease { tx: c.tx.clone(), streams: Arc::clone(&c.streams) }
}
