//! Forwarding between streams that are not both plain sockets (TLS on either
//! side): a userspace copy each way with the same contract as the socket
//! path — complete and in order, FIN passed on (for TLS: close_notify, then
//! the socket's write side), errors end both, idle timeout, cancellation.

use super::{idle_watch, supervise, Counters, Moved, Outcome, Watch};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Copy buffer per direction (TLS records are at most 16 KiB of plaintext).
const BUF: usize = 16 * 1024;

async fn one_way<R, W>(mut r: R, mut w: W, bytes: &AtomicU64, progress: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        bytes.fetch_add(n as u64, Relaxed);
        progress.fetch_add(n as u64, Relaxed);
    }
}

/// Forward both ways between `client` and `backend` until both directions end,
/// the connection idles out, fails, or a cancel token fires. Also returns
/// the bytes moved each way.
pub async fn proxy_streams<A, B>(
    client: A,
    backend: B,
    watch: Watch,
    counters: Counters<'_>,
    cancel: &CancellationToken,
) -> (Outcome, Moved)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (up_progress, down_progress) = (AtomicU64::new(0), AtomicU64::new(0));
    let (cr, cw) = tokio::io::split(client);
    let (br, bw) = tokio::io::split(backend);
    supervise!(
        async { tokio::try_join!(one_way(cr, bw, counters.bytes_in, &up_progress), one_way(br, cw, counters.bytes_out, &down_progress)) },
        [&up_progress, &down_progress],
        watch,
        cancel
    )
}
