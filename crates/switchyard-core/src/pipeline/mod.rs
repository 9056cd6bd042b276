//! The life of one client connection.

use crate::connect::{connect, passive_failure};
use crate::engine::Shared;
use crate::forward::{self, stream::proxy_streams, Counters, Outcome};
use crate::health::Failure;
use crate::events::EventLog;
use crate::snapshot::{Backend, Pool, Route};
use crate::tls::{self, client::BackendTls, sni::{read_client_hello, PeekError}, stats::TlsStats};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio_util::either::Either;
use tokio::net::TcpStream;

/// Serve one client accepted on `worker`: route, connect to a backend, forward, count.
pub(crate) async fn serve(shared: Arc<Shared>, name: Arc<str>, client: TcpStream, peer: SocketAddr, worker: usize) {
    let _conn = shared.conns.enter(worker);
    // One atomic load of the current table; the route is kept for the
    // connection's life so a later update never changes it mid-stream.
    let Some(route) = shared.snapshot.load().routes.get(&*name).cloned() else {
        return; // listener removed between accept and now
    };
    route.stats.accepted.fetch_add(1, Relaxed);
    route.stats.active.fetch_add(1, Relaxed);
    // Linux: inherited from the listener (see net::bind_listener).
    #[cfg(not(target_os = "linux"))]
    let _ = client.set_nodelay(true);
    serve_routed(&shared, &route, client, peer).await;
    route.stats.active.fetch_sub(1, Relaxed);
}

async fn serve_routed(shared: &Shared, route: &Route, mut client: TcpStream, peer: SocketAddr) {
    // Passthrough: read the ClientHello (kept, replayed to the backend) and route by its SNI.
    let (pool, preface) = match &route.sni {
        Some(router) => match Box::pin(read_client_hello(&mut client, router.peek_timeout)).await {
            Ok((bytes, name)) => {
                count_tls(route, |t| &t.sni_routed);
                (router.pool_for(name.as_deref()).unwrap_or(&route.pool), bytes)
            }
            Err(e) => {
                count_tls(route, |t| match e {
                    PeekError::Timeout => &t.sni_timeout,
                    PeekError::Oversized => &t.sni_oversized,
                    PeekError::NotTls | PeekError::Closed => &t.sni_not_tls,
                });
                return;
            }
        },
        // Plain: whatever the client sent already goes out with the connect
        // (see net::connect); TLS termination reads nothing before its handshake.
        None if route.tls.is_none() => match forward::read_now(&client) {
            Ok(bytes) => (&route.pool, bytes),
            Err(_) => return,
        },
        None => (&route.pool, Vec::new()),
    };
    // Termination: the handshake completes before a backend is chosen.
    let client = match &route.tls {
        Some((config, timeout)) => {
            let stats = &route.tls_shared.as_ref().expect("a TLS route has TLS state").stats;
            // Boxed: the TLS state is large and plain connections should not carry its space.
            match Box::pin(tls::server::accept(config, *timeout, client, stats)).await {
                Some(tls) => Either::Right(Box::new(tls)),
                None => return,
            }
        }
        None => Either::Left(client),
    };
    let mut tried = Vec::with_capacity(4);
    let mut up = match connect(pool, peer, &shared.events, &mut tried, &preface).await {
        Some(up) => up,
        None => {
            route.stats.no_backend.fetch_add(1, Relaxed);
            return;
        }
    };
    let client_spoke = !preface.is_empty();
    drop(preface); // delivered: not kept for the connection's life
    let (outcome, backend_spoke, b) = match (client, &pool.backend_tls) {
        // Plain on both sides: the socket path, splice-capable.
        (Either::Left(client), None) => loop {
            let b = up.active.backend;
            let counters = Counters { bytes_in: &b.stats.bytes_in, bytes_out: &b.stats.bytes_out };
            let kill = b.health.kill_token();
            // While the client has not spoken (no preface either), a backend that
            // closes before its first byte (it died after accepting) has received
            // nothing: another backend can take the client, who never notices.
            let retry = !client_spoke;
            let (outcome, spoke) =
                forward::proxy(&client, &up.stream, route.splice, route.idle_timeout, counters, &shared.pipes, &kill, retry).await;
            if let Outcome::Failed(e) = &outcome {
                if forward::is_silent_close(e) {
                    passive_failure(pool, b, Failure::ResetBeforeFirstByte, &shared.events);
                    drop(up);
                    up = match connect(pool, peer, &shared.events, &mut tried, &[]).await {
                        Some(next) => next,
                        None => {
                            route.stats.no_backend.fetch_add(1, Relaxed);
                            return;
                        }
                    };
                    continue;
                }
            }
            break (outcome, spoke, b);
        },
        (client, backend_tls) => {
            let b = up.active.backend;
            let counters = Counters { bytes_in: &b.stats.bytes_in, bytes_out: &b.stats.bytes_out };
            let kill = b.health.kill_token();
            let backend = match backend_tls {
                None => Either::Left(up.stream),
                Some(t) => match Box::pin(backend_handshake(t, pool, b, up.stream, &shared.events)).await {
                    Some(tls) => Either::Right(Box::new(tls)),
                    None => return,
                },
            };
            let (outcome, spoke) = Box::pin(proxy_streams(client, backend, route.idle_timeout, counters, &kill)).await;
            (outcome, spoke, b)
        }
    };
    match outcome {
        Outcome::IdleTimeout => {
            route.stats.idle_timeouts.fetch_add(1, Relaxed);
        }
        Outcome::Failed(e) if !backend_spoke && e.kind() == std::io::ErrorKind::ConnectionReset => {
            passive_failure(pool, b, Failure::ResetBeforeFirstByte, &shared.events);
        }
        _ => {}
    }
}

/// TLS to a backend within the pool's connect timeout; a failure counts as a
/// connect error (and feeds passive detection).
async fn backend_handshake(
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

/// Bump one TLS counter of the route.
fn count_tls(route: &Route, which: impl FnOnce(&TlsStats) -> &AtomicU64) {
    if let Some(t) = &route.tls_shared {
        which(&t.stats).fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    /// Each connection's task holds this future while it waits, so it is most
    /// of a connection's userspace memory (a benchmark target: idle memory per
    /// connection ≤ HAProxy's). The budget catches a regression such as a
    /// large TLS state or a stack buffer kept across an await.
    #[test]
    fn connection_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let c = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let shared = std::sync::Arc::new(crate::engine::Shared::for_tests());
            let f = super::serve(shared, std::sync::Arc::from("x"), c, "127.0.0.1:1".parse().unwrap(), 0);
            let size = std::mem::size_of_val(&f);
            let budget = if cfg!(debug_assertions) { 4096 } else { 2304 };
            assert!(size <= budget, "the per-connection future is {size} bytes (budget {budget})");
        });
    }
}
