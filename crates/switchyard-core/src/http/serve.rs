//! One client connection of an HTTP listener: hyper's HTTP/1.1 server with
//! the listener's limits (head size and field count: 431; head read timeout:
//! the slowloris guard), keep-alive bounded by the listener's idle timeout,
//! upgrades allowed, each request handed to `proxy::handle`. A connection
//! whose TLS handshake chose `h2`, or (with `h2c`) that starts with the
//! HTTP/2 preface, is served by hyper's HTTP/2 server instead: each stream
//! is a request for `proxy::handle` (see [`serve_h2`] for its limits).

use super::proxy::{handle, Conn, IoState};
use super::respond::Refusal;
use crate::pipeline::frontend::{self, ClientStream};
use crate::pipeline::{admit, proxied};
use crate::shared::Shared;
use crate::snapshot::Listener;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// Serve one client of an HTTP listener accepted on `worker` until it
/// closes, idles out, breaks the protocol or the engine's close deadline
/// passes. HTTP logs each request itself; the connection is not logged.
///
/// Memory: hyper's connection keeps an 8 KiB read and an 8 KiB write buffer
/// for its whole life. A plain-TCP keep-alive connection therefore *parks*
/// once it has been quiet for [`PARK_AFTER`] (at once when many connections
/// hold buffers, see [`PARK_PRESSURE`]): if no request is in flight and
/// hyper has flushed everything and waits for the next head, its connection
/// is taken apart (`into_parts`: bytes it already read are kept and replayed)
/// and the socket waits for readability holding no buffer; a new hyper
/// connection serves the next request. TLS connections keep theirs (rustls
/// may hold plaintext).
///
/// Not an `async fn`: the connection's facts go into `Conn` before the task's
/// future exists, so they are not also kept as that future's arguments (an
/// idle connection's task is most of its memory, a benchmark target).
pub fn serve(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    name: Arc<str>,
    client: TcpStream,
    peer: SocketAddr,
    worker: usize,
) -> impl Future<Output = ()> + Send + 'static {
    let conn = Arc::new(Conn {
        shared,
        // An HTTP listener either terminates TLS or reads plain HTTP (no passthrough).
        tls: listener.tls.is_some(),
        listener,
        name,
        client: peer,
        in_flight: AtomicUsize::new(0),
        io: IoState::default(),
    });
    serve_conn(conn, client, worker)
}

/// An HTTP listener behind another balancer: read the PROXY header first
/// (the client is who it declares and is admitted), then serve as
/// [`serve`]. A refused connection is closed.
pub async fn serve_proxied(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    name: Arc<str>,
    client: TcpStream,
    peer: SocketAddr,
    worker: usize,
) {
    let origin = proxied::receive_unless_closed(&shared, &listener, &name, &client, peer).await;
    match origin.map(|o| o.map_or(peer, |o| o.src)).filter(|&src| admit::admit(&listener, &name, src, &shared.events)) {
        Some(src) => serve(shared, listener, name, client, src, worker).await,
        None => admit::closed(&shared, &listener, peer.ip(), false),
    }
}

async fn serve_conn(conn: Arc<Conn>, client: TcpStream, worker: usize) {
    let _guard = conn.shared.conns.enter(worker);
    // (Counted as opened and admitted by `pipeline::spawn` or `serve_proxied`.)
    #[cfg(not(target_os = "linux"))]
    let _ = client.set_nodelay(true);
    // One expression, no locals: only the stream outlives the frontend.
    serve_stream(&conn, frontend::receive(&conn.listener, client).await.map(|r| r.client)).await;
    admit::closed(&conn.shared, &conn.listener, conn.client.ip(), true);
}

/// Serve the (plain or decrypted) client stream until it ends: hyper
/// connections (parked between them), the idle watch and the close deadline.
/// The futures are built inside `select!`: a future held in a local first
/// would keep its room in this one after being moved.
async fn serve_stream(conn: &Arc<Conn>, stream: Option<ClientStream>) {
    let Some(inner) = stream else { return };
    let listener = &conn.listener;
    let head = Duration::from_millis(listener.http.as_ref().expect("an http listener has tables").config.header_read_timeout_ms);
    let handler = Arc::clone(conn);
    // The watch first: a tick that finds the connection quiet lets the serving park it in the same wake.
    tokio::select! {
        biased;
        _ = watch(&conn.io, listener.idle_timeout, head) => {
            listener.stats.idle_timeouts.fetch_add(1, Relaxed);
        }
        _ = serve_parked(
            Counted { inner, conn: Arc::clone(conn), prefix: Bytes::new() },
            service_fn(move |req| handle(Arc::clone(&handler), req)),
            conn,
        ) => {}
        _ = conn.shared.cancel_conns.cancelled() => {}
    }
}

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Read until the bytes are the HTTP/2 preface or cannot be (at most 24):
/// true for HTTP/2 with prior knowledge. What was read is kept in `io`'s
/// prefix for the server that follows, and counted as read (so a head in
/// progress is seen as such, see `run`). An error or EOF first ends the
/// connection.
async fn sniff_preface(io: &mut Counted) -> io::Result<bool> {
    let Either::Left(tcp) = &mut io.inner else { return Ok(false) };
    let mut got = [0u8; 24];
    let mut n = 0;
    while n < PREFACE.len() && got[..n] == PREFACE[..n] {
        match tcp.read(&mut got[n..]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            k => n += k,
        }
    }
    io.conn.io.read.fetch_add(n as u64, Relaxed);
    io.prefix = Bytes::copy_from_slice(&got[..n]);
    Ok(n == PREFACE.len() && got == *PREFACE)
}

/// HTTP/2 streams on one client connection until it ends. Limits, as the
/// maintained HTTP/2 stacks handle abuse (h2 ≥ 0.4.18): at most
/// `max_concurrent_streams` streams at once (more are refused), a header
/// list of at most `max_header_size` (more is refused, and a CONTINUATION
/// flood ends the connection at that size), at most 20 streams reset by
/// the client while they wait to be served and 1024 errors h2 must answer
/// with a reset (rapid reset: GOAWAY ENHANCE_YOUR_CALM above them). h2
/// keeps one pending PING and SETTINGS acknowledgement and sends them
/// before reading on, so a flood of either from a client that does not read
/// stalls only that client. A connection-level error ends this connection
/// only.
async fn serve_h2<S>(io: Counted, service: S, conn: &Conn)
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = super::Body> + Clone + Send + Unpin + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cfg = &conn.listener.http.as_ref().expect("an http listener has tables").config;
    let unparked = &conn.shared.http_unparked;
    unparked.fetch_add(1, Relaxed);
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(cfg.max_concurrent_streams)
        .max_header_list_size(cfg.max_header_bytes)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    // Draining (an upgrade's old process, or a close): GOAWAY, the streams in flight
    // finish, and the client opens its next ones on a new connection.
    tokio::select! {
        _ = served.as_mut() => {}
        _ = conn.shared.http_drain.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
    unparked.fetch_sub(1, Relaxed);
}

/// Streams a client may reset while they wait to be served (h2's default).
const H2_MAX_PENDING_RESETS: usize = 20;
/// Resets h2 may send in answer to a client's protocol errors (h2's default).
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Serve HTTP/2 when the client speaks it (ALPN `h2`, or the preface on an
/// `h2c` listener); else run hyper HTTP/1.1 connections on `io` one after
/// another, parking the socket between them (see `serve`). Its state while
/// parked is the socket, the service and a pointer: this future lives in
/// every idle connection's task, so what serves requests is boxed and
/// exists only while it runs.
async fn serve_parked<S>(mut io: Counted, mut service: S, conn: &Conn)
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = super::Body> + Clone + Send + Unpin + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let h2 = match &io.inner {
        Either::Right(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        Either::Left(_) if conn.listener.http.as_ref().is_some_and(|h| h.config.h2c) => match Box::pin(sniff_preface(&mut io)).await {
            Ok(h2) => h2,
            Err(_) => return,
        },
        Either::Left(_) => false,
    };
    if h2 {
        return Box::pin(serve_h2(io, service, conn)).await;
    }
    let plain = matches!(io.inner, Either::Left(_));
    // Bytes read to look for the HTTP/2 preface: counted as read, so hyper's connection parks
    // only once their request has been answered; nothing to wait for before serving them.
    let mut sniffed = !io.prefix.is_empty();
    loop {
        // Resumed with bytes hyper had read (a pipelined head): this connection is not parked
        // again, or a partial head would be handed back and forth.
        let parks = plain && (io.prefix.is_empty() || sniffed);
        let wait = parks && !sniffed;
        sniffed = false;
        if wait {
            if let Either::Left(tcp) = &io.inner {
                // `poll_read_ready`, not `readable()`: no future of 150 bytes kept while parked.
                if std::future::poll_fn(|cx| tcp.poll_read_ready(cx)).await.is_err() {
                    return;
                }
                // Woken by a new request: not quiet any more (the watch agrees at its next tick).
                conn.io.quiet.store(false, Relaxed);
            }
        }
        match Box::pin(run(io, service, conn, parks)).await {
            Run::Closed => return,
            Run::Parked(i, s) => (io, service) = (i, s),
        }
    }
}

/// How one hyper connection ended: the client's connection too, or parked
/// (its socket and service back for the next one).
enum Run<S> {
    Closed,
    Parked(Counted, S),
}

/// Serve requests with one hyper connection until the client's connection
/// ends or (when `parks`) it may park.
async fn run<S>(io: Counted, service: S, conn: &Conn, parks: bool) -> Run<S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = super::Body> + Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cfg = &conn.listener.http.as_ref().expect("an http listener has tables").config;
    let state = &conn.io;
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms))
        .max_buf_size(cfg.max_header_bytes as usize)
        .max_headers(cfg.max_headers as usize)
        .keep_alive(true);
    let mut served = b.serve_connection(TokioIo::new(io), service).with_upgrades();
    let unparked = &conn.shared.http_unparked;
    unparked.fetch_add(1, Relaxed);
    let done = std::future::poll_fn(|cx| match Pin::new(&mut served).poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        // Quiet for a while (or many connections hold buffers now), nothing in flight,
        // everything written, nothing read since the last response ended (no partial head
        // in hyper's buffer): hyper waits for a new head.
        Poll::Pending
            if parks
                && (state.quiet.load(Relaxed) || unparked.load(Relaxed) > PARK_PRESSURE)
                && conn.in_flight.load(Relaxed) == 0
                && !state.unflushed.load(Relaxed)
                && state.read.load(Relaxed) == state.settled.load(Relaxed) =>
        {
            Poll::Ready(None)
        }
        Poll::Pending => Poll::Pending,
    })
    .await;
    // Parked or ended: hyper's buffers are about to be freed (see `crate::heap`).
    unparked.fetch_sub(1, Relaxed);
    crate::heap::freed(HYPER_BUFFERS);
    match done {
        Some(Ok(())) => Run::Closed,
        // hyper's head timer also runs while a kept-alive connection waits for its next
        // request: then it just closes. A head that started and did not arrive in time
        // (slowloris) gets Switchyard's 408 first (hyper would only close).
        Some(Err(e)) if e.is_timeout() => {
            let started = state.read.load(Relaxed) != state.settled.load(Relaxed);
            if let Some(parts) = served.into_parts().filter(|_| started) {
                let mut io = parts.io.into_inner();
                let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(&super::respond::raw(Refusal::HeaderTimeout))).await;
                let _ = io.shutdown().await;
            }
            Run::Closed
        }
        Some(Err(_)) => Run::Closed,
        None => {
            let Some(parts) = served.into_parts() else { return Run::Closed };
            let mut io = parts.io.into_inner();
            // Bytes hyper read past the last request (a pipelined or early next head).
            if !parts.read_buf.is_empty() {
                let mut joined = parts.read_buf.to_vec();
                joined.extend_from_slice(&io.prefix);
                io.prefix = Bytes::from(joined);
            }
            Run::Parked(io, parts.service)
        }
    }
}

/// What a hyper HTTP/1 connection holds while it lives: its read and write
/// buffers (`INIT_BUFFER_SIZE` each).
const HYPER_BUFFERS: usize = 16 << 10;

/// Above this many unparked HTTP connections in the engine, a keep-alive
/// connection parks as soon as its response is out, not after a quiet tick:
/// a crowd of idle connections then never holds a crowd of buffers. Below
/// it (the usual case: fewer connections, each busy) a busy connection keeps
/// its hyper connection; parking after every response cost ~10 % of
/// keep-alive throughput (a new hyper connection per request).
const PARK_PRESSURE: usize = 256;

/// How long a keep-alive connection stays quiet before it parks.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// Resolve once no byte moved either way for `idle` (the idle timeout),
/// checked each tick (at most [`PARK_AFTER`]: one timer per connection and
/// tick, none per request); after a quiet tick, mark the connection quiet.
/// Ticks are also shorter than a quarter of hyper's head timeout (`head`),
/// which runs while a kept-alive connection waits: it parks before that
/// timer would close it.
fn watch(state: &IoState, idle: Duration, head: Duration) -> impl Future<Output = ()> + '_ {
    let tick = (idle / 4).min(head / 4).clamp(Duration::from_millis(1), PARK_AFTER);
    // Quiet ticks that make the idle timeout. Computed before the future
    // exists: every idle connection holds this future, so it keeps only
    // `state`, `tick`, this count and its own two counters beside the timer.
    let ticks = idle.as_nanos().div_ceil(tick.as_nanos()).clamp(1, u32::MAX as u128) as u32;
    let moved = |s: &IoState| s.read.load(Relaxed).wrapping_add(s.written.load(Relaxed));
    async move {
        let (mut last, mut quiet) = (moved(state), 0u32);
        loop {
            tokio::time::sleep(tick).await;
            let now = moved(state);
            if now == last {
                quiet += 1;
                state.quiet.store(true, Relaxed);
                if quiet >= ticks {
                    return;
                }
            } else {
                (last, quiet) = (now, 0);
                state.quiet.store(false, Relaxed);
            }
        }
    }
}

impl IoState {
    /// Bytes read from the client so far.
    pub(super) fn read(&self) -> u64 {
        self.read.load(Relaxed)
    }
}

/// The client stream, counting bytes read and written; `prefix` (bytes a
/// parked hyper connection had read) is served before the socket.
struct Counted {
    inner: ClientStream,
    conn: Arc<Conn>,
    prefix: Bytes,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.conn.io.read.fetch_add(n as u64, Relaxed);
        }
        r
    }
}

impl Counted {
    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            self.conn.io.written.fetch_add(*n as u64, Relaxed);
            self.conn.io.unflushed.store(true, Relaxed);
        }
    }
}

impl Counted {
    /// hyper's own error response (written while no request is in service):
    /// send Switchyard's JSON version instead, whole, and tell hyper its
    /// `len` bytes went out. hyper closes the connection after it.
    fn poll_replaced(&mut self, cx: &mut Context<'_>, first: &[u8], len: usize) -> Option<Poll<io::Result<usize>>> {
        if self.conn.in_flight.load(Relaxed) != 0 {
            return None;
        }
        let mut ours = super::respond::replace_hyper_error(first)?;
        while !ours.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &ours) {
                Poll::Ready(Ok(0)) => return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => drop(ours.drain(..n)),
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                // A fresh connection's send buffer takes a few hundred bytes: give up the rewrite.
                Poll::Pending => return Some(Poll::Ready(Err(io::ErrorKind::WouldBlock.into()))),
            }
        }
        self.wrote(&Poll::Ready(Ok(len)));
        Some(Poll::Ready(Ok(len)))
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(r) = self.poll_replaced(cx, data, data.len()) {
            return r;
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(&r);
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(r) = self.poll_replaced(cx, first, len) {
                return r;
            }
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.conn.io.unflushed.store(false, Relaxed);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    /// An idle HTTP connection holds its task (this future), its `Conn` and
    /// its socket's registration: the task is most of it, and idle memory per
    /// keep-alive connection is a benchmark target (≤ HAProxy's). Release:
    /// 1600 bytes before the serving was boxed and the facts moved into
    /// `Conn`, 616 after.
    #[test]
    fn idle_connection_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let v = serde_json::json!({"workers": 1, "listeners": [{"name": "web", "address": "127.0.0.1:0", "pool": "p", "backlog": 16,
              "idle_timeout_ms": 1000, "splice": "never", "protocol": "http",
              "http": {"routes": [{"name": "d", "pool": "p"}], "max_header_bytes": 16384, "max_headers": 100,
                "header_read_timeout_ms": 2000, "request_timeout_ms": 5000, "x_forwarded": true, "forwarded": true}}],
              "pools": [{"name": "p", "algorithm": "round_robin", "connect_timeout_ms": 1000, "retries": 1,
                "backends": [{"address": "127.0.0.1:9", "weight": 1, "backup": false}]}]});
            let cfg = crate::EngineConfig::from_json(&v.to_string()).unwrap();
            let snapshot = crate::snapshot::Snapshot::build(&cfg, &crate::registry::Registry::default(), None).unwrap();
            let listener = snapshot.listeners.values().next().cloned().unwrap();
            let shared = std::sync::Arc::new(crate::shared::Shared::for_tests());
            let f = super::serve(shared, listener, std::sync::Arc::from("web"), client, "127.0.0.1:1".parse().unwrap(), 0);
            let size = std::mem::size_of_val(&f);
            let budget = if cfg!(debug_assertions) { 1536 } else { 640 };
            assert!(size <= budget, "the HTTP connection's future is {size} bytes (budget {budget})");
        });
    }
}
