//! HTTP/2 connections to one backend, shared by every request: each carries
//! many streams at once. A request takes a lease on the least loaded open
//! connection that has room (fewer than `streams` in flight); when every
//! connection is full and fewer than `connections` are open, the caller opens
//! another; at the cap the least loaded one is used anyway and h2 queues the
//! stream until the backend's own SETTINGS limit lets it go. One connection
//! is opened at a time per backend: a burst of requests to a backend with
//! none open waits for the first instead of each opening its own. A
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
    /// A connection is being opened: wait for
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
            _ if opening == 0 => {
                conns.opening += 1;
                Found::Open(Opening(self))
            }
            // One is being opened: it will have room.
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    /// A client connection to an HTTP/2 server that never answers (h2c handshake only).
    async fn conn() -> SendRequest<Body> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(crate::http::respond::empty()))
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(s), svc).await;
        });
        let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (tx, c) = hyper::client::conn::http2::Builder::new(TokioExecutor::new()).handshake::<_, Body>(io).await.unwrap();
        tokio::spawn(c);
        tx
    }

    #[tokio::test]
    async fn one_opening_at_a_time_then_streams_fill_a_connection_before_another_opens() {
        let (conns, idle) = (H2Conns::default(), Duration::from_secs(60));
        let Found::Open(first) = conns.lease(2, 3) else { panic!("nothing open: open one") };
        assert!(matches!(conns.lease(2, 3), Found::Wait), "one is opening: wait for it");
        let a = conns.add(first, conn().await, idle);
        let b = match conns.lease(2, 3) {
            Found::Lease(l) => l,
            _ => panic!("room on the first"),
        };
        assert_eq!(a.streams.load(Relaxed), 2, "both streams on the first connection");
        let Found::Open(second) = conns.lease(2, 3) else { panic!("the first is full: open another") };
        drop(second); // the connect failed
        let Found::Open(second) = conns.lease(2, 3) else { panic!("a failed opening frees the way") };
        let c = conns.add(second, conn().await, idle);
        drop(a);
        let d = match conns.lease(2, 3) {
            Found::Lease(l) => l,
            _ => panic!("room again on the first"),
        };
        assert!(Arc::ptr_eq(&d.streams, &b.streams), "the least loaded connection is taken");
        drop((b, c, d));
        assert_eq!(conns.sweep(Instant::now()), 0, "used just now");
        assert_eq!(conns.sweep(Instant::now() + idle * 2), 2, "idle past their timeout");
    }

    #[tokio::test]
    async fn at_the_cap_the_least_loaded_connection_takes_more_streams() {
        let conns = H2Conns::default();
        let Found::Open(o) = conns.lease(1, 1) else { panic!() };
        let _a = conns.add(o, conn().await, Duration::from_secs(60));
        assert!(matches!(conns.lease(1, 1), Found::Lease(_)), "full, but the cap is reached: share it");
    }
}
