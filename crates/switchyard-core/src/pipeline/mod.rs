//! The life of one client connection, as a pipeline of stages (see
//! `LIFECYCLE.md` next to this file for states, ownership and failures):
//!
//! ```text
//! accept ─▶ frontend ─▶ route ─▶ upstream ─▶ forward
//! ```
//! - [`frontend`]: SNI peek, TLS termination, or the client's first bytes;
//! - [`route`]: the listener's route table → pool and selection key;
//! - [`upstream`]: pick by key, connect (+ retries), backend TLS;
//! - forward (`crate::forward`): both directions until both sides are done,
//!   with a retry on another backend when a plain backend closes before its
//!   first byte while the client has said nothing.

pub mod frontend;
pub mod route;
pub mod upstream;

use crate::access::{AccessRecord, Ended};
use crate::events::wall_ms;
use crate::forward::{self, stream::proxy_streams, Counters, Outcome};
use crate::health::Failure;
use crate::select::PickContext;
use crate::shared::Shared;
use crate::snapshot::{Listener, Pool};
use frontend::Received;
use route::Routed;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::either::Either;
use upstream::{backend_handshake, connect, passive_failure, NoUpstream};

/// Spawn the task serving one client accepted for listener `name` on `rt`
/// (worker `worker`'s runtime). HTTP listeners get a task of their own kind:
/// an idle keep-alive connection then holds no space for the TCP relay's
/// state (and a TCP connection none for HTTP's).
pub(crate) fn spawn(rt: &tokio::runtime::Handle, shared: Arc<Shared>, name: Arc<str>, client: TcpStream, peer: SocketAddr, worker: usize) {
    // A TCP task loads the listener again itself (one atomic load and a map
    // lookup): handing it over as an argument, or counting it in through a
    // shared helper, made that task 32-40 bytes larger, and idle memory per
    // connection is a benchmark target.
    let http = shared.snapshot.load().listeners.get(&*name).filter(|l| l.http.is_some()).cloned();
    match http {
        Some(listener) => drop(rt.spawn(crate::http::serve::serve(shared, listener, name, client, peer, worker))),
        None => drop(rt.spawn(serve(shared, name, client, peer, worker))),
    }
}

/// Serve one client of a TCP listener accepted on `worker`: every stage,
/// then count (and log the connection when the listener keeps an access log).
pub(crate) async fn serve(shared: Arc<Shared>, name: Arc<str>, client: TcpStream, peer: SocketAddr, worker: usize) {
    let _conn = shared.conns.enter(worker);
    // One atomic load of the current tables; the listener's tables are kept
    // for the connection's life so a later update never changes it mid-stream.
    let Some(listener) = shared.snapshot.load().listeners.get(&*name).cloned() else {
        return; // listener removed between accept and now
    };
    listener.stats.accepted.fetch_add(1, Relaxed);
    listener.stats.active.fetch_add(1, Relaxed);
    // Linux: inherited from the listener (see net::bind_listener).
    #[cfg(not(target_os = "linux"))]
    let _ = client.set_nodelay(true);
    let started = if listener.access_log { wall_ms() } else { 0 };
    let done = relay(&shared, &listener, client, peer).await;
    listener.stats.active.fetch_sub(1, Relaxed);
    if listener.access_log {
        shared.access.push(done.record(&name, peer, started));
    }
}

/// How one client's connection went, for the access log.
struct Done<'l> {
    ended: Ended,
    pool: Option<&'l str>,
    backend: Option<SocketAddr>,
    /// Bytes read from the client (the preface included) and from the backend.
    bytes_in: u64,
    bytes_out: u64,
}

impl<'l> Done<'l> {
    /// Ended before any backend served it.
    fn early(ended: Ended, pool: Option<&'l str>) -> Self {
        Done { ended, pool, backend: None, bytes_in: 0, bytes_out: 0 }
    }

    fn record(self, listener: &str, client: SocketAddr, started: u64) -> AccessRecord {
        AccessRecord {
            time_ms: started,
            listener: listener.to_owned(),
            client: client.to_string(),
            pool: self.pool.unwrap_or_default().to_owned(),
            backend: self.backend.map(|b| b.to_string()).unwrap_or_default(),
            duration_ms: wall_ms().saturating_sub(started),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            ended: self.ended,
            http: None,
        }
    }
}

/// Receive, route, connect and forward one client. One function on purpose:
/// its locals share space in the connection's task as their lives allow (a
/// value passed to a nested `async fn` stays in its future for the
/// connection's life), and that task's size is a benchmark target (idle
/// memory per connection; see the test below).
async fn relay<'l>(shared: &Shared, listener: &'l Listener, client: TcpStream, peer: SocketAddr) -> Done<'l> {
    let Some(Received { client, preface, sni }) = frontend::receive(listener, client).await else {
        return Done::early(Ended::FrontendFailed, None);
    };
    let Routed { pool, key } = route::route(&listener.routes, sni.as_deref(), peer);
    drop(sni);
    let mut tried = Vec::with_capacity(4);
    let mut up = match connect(pool, &PickContext { key, client: peer }, &shared.events, &mut tried, &preface).await {
        Ok(up) => up,
        Err(why) => return no_upstream(listener, pool, why),
    };
    // The preface is at most one ClientHello or one read: u32 keeps the task small.
    let preface_len = preface.len() as u32;
    drop(preface); // delivered: not kept for the connection's life
    let (outcome, moved, b) = match (client, &pool.backend_tls) {
        // Plain on both sides: the socket path, splice-capable.
        (Either::Left(client), None) => loop {
            let b = up.active.backend;
            let counters = Counters { bytes_in: &b.stats.bytes_in, bytes_out: &b.stats.bytes_out };
            let kill = b.health.kill_token();
            // While the client has not spoken (no preface either), a backend that
            // closes before its first byte (it died after accepting) has received
            // nothing: another backend can take the client, who never notices.
            let retry = preface_len == 0;
            let (outcome, moved) =
                forward::proxy(&client, &up.stream, listener.splice, listener.idle_timeout, counters, &shared.pipes, &kill, retry).await;
            if let Outcome::Failed(e) = &outcome {
                if forward::is_silent_close(e) {
                    passive_failure(pool, b, Failure::ResetBeforeFirstByte, &shared.events);
                    drop(up);
                    up = match connect(pool, &PickContext { key, client: peer }, &shared.events, &mut tried, &[]).await {
                        Ok(next) => next,
                        Err(why) => return no_upstream(listener, pool, why),
                    };
                    continue;
                }
            }
            break (outcome, moved, b);
        },
        // TLS on either side: the stream path.
        (client, backend_tls) => {
            let b = up.active.backend;
            let counters = Counters { bytes_in: &b.stats.bytes_in, bytes_out: &b.stats.bytes_out };
            let kill = b.health.kill_token();
            let backend = match backend_tls {
                None => Either::Left(up.stream),
                Some(t) => match Box::pin(backend_handshake(t, pool, b, up.stream, &shared.events)).await {
                    Some(tls) => Either::Right(Box::new(tls)),
                    None => return Done { backend: Some(b.addr), ..Done::early(Ended::BackendTlsFailed, Some(&pool.name)) },
                },
            };
            let (outcome, moved) = Box::pin(proxy_streams(client, backend, listener.idle_timeout, counters, &kill)).await;
            (outcome, moved, b)
        }
    };
    let ended = match outcome {
        Outcome::Completed => Ended::Completed,
        Outcome::Cancelled => Ended::Cancelled,
        Outcome::IdleTimeout => {
            listener.stats.idle_timeouts.fetch_add(1, Relaxed);
            Ended::IdleTimeout
        }
        Outcome::Failed(e) => {
            if moved.down == 0 && e.kind() == std::io::ErrorKind::ConnectionReset {
                passive_failure(pool, b, Failure::ResetBeforeFirstByte, &shared.events);
            }
            Ended::Error
        }
    };
    Done { ended, pool: Some(&pool.name), backend: Some(b.addr), bytes_in: preface_len as u64 + moved.up, bytes_out: moved.down }
}

/// Count a client closed for want of an upstream, by reason.
fn no_upstream<'l>(listener: &Listener, pool: &'l Pool, why: NoUpstream) -> Done<'l> {
    let s = &listener.stats;
    let (counter, ended) = match why {
        NoUpstream::NoBackend => (&s.no_backend, Ended::NoBackend),
        NoUpstream::Local => (&s.local_errors, Ended::LocalError),
    };
    counter.fetch_add(1, Relaxed);
    Done::early(ended, Some(&pool.name))
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
            let shared = std::sync::Arc::new(crate::shared::Shared::for_tests());
            let f = super::serve(shared, std::sync::Arc::from("x"), c, "127.0.0.1:1".parse().unwrap(), 0);
            let size = std::mem::size_of_val(&f);
            // Release: 2080 bytes at the reshape (as before it); a slip to 2232 went
            // unnoticed under a looser budget and cost ~0.4 KiB per idle connection.
            // 2120 with the access log (start time, bytes moved each way): +40 bytes,
            // about 1% of an idle connection's memory.
            let budget = if cfg!(debug_assertions) { 4096 } else { 2128 };
            assert!(size <= budget, "the per-connection future is {size} bytes (budget {budget})");
        });
    }
}
