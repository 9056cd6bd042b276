//! One client connection of an HTTP listener: hyper's HTTP/1.1 server with
//! the listener's limits (head size and field count: 431; head read timeout:
//! the slowloris guard), keep-alive bounded by the listener's idle timeout,
//! upgrades allowed, each request handed to `proxy::handle`.

use super::proxy::{handle, Conn};
use crate::access::Ended;
use crate::pipeline::frontend::ClientStream;
use crate::shared::Shared;
use crate::snapshot::Listener;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::either::Either;

/// Serve `client` until it closes, idles out, breaks the protocol or the
/// engine's close deadline passes. Returns how it ended and the bytes read
/// from and written to the client.
pub async fn serve(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    name: Arc<str>,
    client: ClientStream,
    peer: SocketAddr,
) -> (Ended, u64, u64) {
    let cfg = &listener.http.as_ref().expect("an http listener has tables").config;
    let tls = matches!(client, Either::Right(_));
    let moved = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let io = TokioIo::new(Counted { inner: client, moved: Arc::clone(&moved) });
    let idle = listener.idle_timeout;
    let cancel = shared.cancel_conns.clone();
    let conn = Arc::new(Conn { shared, listener: Arc::clone(&listener), name, client: peer, tls });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms))
        .max_buf_size(cfg.max_header_bytes as usize)
        .max_headers(cfg.max_headers as usize)
        .keep_alive(true);
    let served = b.serve_connection(io, service_fn(move |req| handle(Arc::clone(&conn), req))).with_upgrades();
    let progress = [&moved[0], &moved[1]];
    let ended = tokio::select! {
        r = served => if r.is_ok() { Ended::Completed } else { Ended::Error },
        _ = crate::forward::idle_watch(progress, idle) => {
            listener.stats.idle_timeouts.fetch_add(1, Relaxed);
            Ended::IdleTimeout
        }
        _ = cancel.cancelled() => Ended::Cancelled,
    };
    (ended, moved[0].load(Relaxed), moved[1].load(Relaxed))
}

/// The client stream, counting bytes read and written (the idle watch and
/// the access log read them).
struct Counted {
    inner: ClientStream,
    moved: Arc<[AtomicU64; 2]>,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.moved[0].fetch_add(n as u64, Relaxed);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved[1].fetch_add(*n as u64, Relaxed);
        }
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved[1].fetch_add(*n as u64, Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
