//! One client connection of an HTTP listener: hyper's HTTP/1.1 server with
//! the listener's limits (head size and field count: 431; head read timeout:
//! the slowloris guard), keep-alive bounded by the listener's idle timeout,
//! upgrades allowed, each request handed to `proxy::handle`.

use super::proxy::{handle, Conn, IoState};
use super::respond::Refusal;
use crate::access::Ended;
use crate::pipeline::frontend::ClientStream;
use crate::shared::Shared;
use crate::snapshot::Listener;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::either::Either;

/// Serve `client` until it closes, idles out, breaks the protocol or the
/// engine's close deadline passes. Returns how it ended and the bytes read
/// from and written to the client.
///
/// Memory: hyper's connection keeps an 8 KiB read and an 8 KiB write buffer
/// for its whole life. A plain-TCP keep-alive connection therefore *parks*
/// once it has been quiet for [`PARK_AFTER`]: if no request is in flight and
/// hyper has flushed everything and waits for the next head, its connection
/// is taken apart (`into_parts`: bytes it already read are kept and replayed)
/// and the socket waits for readability holding no buffer; a new hyper
/// connection serves the next request. A busy connection never parks (that
/// would cost a new hyper connection per request). TLS connections keep
/// theirs (rustls may hold plaintext).
pub async fn serve(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    name: Arc<str>,
    client: ClientStream,
    peer: SocketAddr,
) -> (Ended, u64, u64) {
    let cfg = &listener.http.as_ref().expect("an http listener has tables").config;
    let tls = matches!(client, Either::Right(_));
    let idle = listener.idle_timeout;
    let cancel = shared.cancel_conns.clone();
    let conn = Arc::new(Conn {
        shared,
        listener: Arc::clone(&listener),
        name,
        client: peer,
        tls,
        in_flight: AtomicUsize::new(0),
        io: IoState::default(),
    });
    let state = &conn.io;
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms))
        .max_buf_size(cfg.max_header_bytes as usize)
        .max_headers(cfg.max_headers as usize)
        .keep_alive(true);
    let handler = Arc::clone(&conn);
    let service = service_fn(move |req| handle(Arc::clone(&handler), req));
    let io = Counted { inner: client, conn: Arc::clone(&conn), prefix: Bytes::new() };
    let work = serve_parked(&b, io, service, &conn);
    // The watch first: a tick that finds the connection quiet lets `work` park it in the same wake.
    let ended = tokio::select! {
        biased;
        _ = watch(state, idle, Duration::from_millis(cfg.header_read_timeout_ms)) => {
            listener.stats.idle_timeouts.fetch_add(1, Relaxed);
            Ended::IdleTimeout
        }
        e = work => e,
        _ = cancel.cancelled() => Ended::Cancelled,
    };
    (ended, state.read.load(Relaxed), state.written.load(Relaxed))
}

/// Run hyper connections on `io` one after another, parking the socket
/// between them (see `serve`).
async fn serve_parked<S>(b: &hyper::server::conn::http1::Builder, mut io: Counted, mut service: S, conn: &Conn) -> Ended
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = super::Body> + Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let plain = matches!(io.inner, Either::Left(_));
    let state = &conn.io;
    loop {
        // Resumed with bytes hyper had read (a pipelined head): this connection is not parked
        // again, or a partial head would be handed back and forth.
        let parks = plain && io.prefix.is_empty();
        if parks {
            if let Either::Left(tcp) = &io.inner {
                if tcp.readable().await.is_err() {
                    return Ended::Error;
                }
                // Woken by a new request: not quiet any more (the watch agrees at its next tick).
                state.quiet.store(false, Relaxed);
            }
        }
        // Boxed: a parked connection's task then holds no room for hyper's state.
        let mut served = Box::new(b.serve_connection(TokioIo::new(io), service).with_upgrades());
        let done = std::future::poll_fn(|cx| match Pin::new(&mut *served).poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            // Quiet for a while, nothing in flight, everything written, nothing read since the
            // last response ended (no partial head in hyper's buffer): hyper waits for a new head.
            Poll::Pending
                if parks
                    && state.quiet.load(Relaxed)
                    && conn.in_flight.load(Relaxed) == 0
                    && !state.unflushed.load(Relaxed)
                    && state.read.load(Relaxed) == state.settled.load(Relaxed) =>
            {
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        })
        .await;
        match done {
            Some(Ok(())) => return Ended::Completed,
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
                return Ended::Error;
            }
            Some(Err(_)) => return Ended::Error,
            None => {
                let Some(parts) = served.into_parts() else { return Ended::Completed };
                io = parts.io.into_inner();
                // Bytes hyper read past the last request (a pipelined or early next head).
                if !parts.read_buf.is_empty() {
                    let mut joined = parts.read_buf.to_vec();
                    joined.extend_from_slice(&io.prefix);
                    io.prefix = Bytes::from(joined);
                }
                service = parts.service;
            }
        }
    }
}

/// How long a keep-alive connection stays quiet before it parks.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// Resolve once no byte moved either way for `idle` (the idle timeout),
/// checked each tick (at most [`PARK_AFTER`]: one timer per connection and
/// tick, none per request); after a quiet tick, mark the connection quiet.
/// Ticks are also shorter than a quarter of hyper's head timeout (`head`),
/// which runs while a kept-alive connection waits: it parks before that
/// timer would close it.
async fn watch(state: &IoState, idle: Duration, head: Duration) {
    let tick = (idle / 4).min(head / 4).clamp(Duration::from_millis(1), PARK_AFTER);
    let moved = || state.read.load(Relaxed).wrapping_add(state.written.load(Relaxed));
    let (mut last, mut quiet) = (moved(), Duration::ZERO);
    loop {
        tokio::time::sleep(tick).await;
        let now = moved();
        if now == last {
            quiet += tick;
            state.quiet.store(true, Relaxed);
            if quiet >= idle {
                return;
            }
        } else {
            (last, quiet) = (now, Duration::ZERO);
            state.quiet.store(false, Relaxed);
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
