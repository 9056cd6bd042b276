//! Userspace copy of one direction.
//!
//! Readiness trick: a read that returns less than the buffer drained the
//! socket, so the closure reports `WouldBlock` (after keeping the bytes) and
//! tokio clears the readiness then, saving the extra `read` → `EAGAIN` per
//! burst. tokio only clears readiness of the tick it observed and never
//! clears the read-closed bit, so a FIN or later data is not lost.

use super::{buffers, Leg};
use super::splice::{Lease, PipePool};
use socket2::SockRef;
use std::future::Future;
use std::io::{self, Read};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Consecutive full reads after which a direction counts as a bulk stream.
const STREAMING_AFTER: u32 = 3;

/// Why a burst stopped.
enum End {
    /// Source reached end of stream; the FIN was passed on.
    Eof,
    /// Sustained full reads: time to try splice. Every byte read so far has been written.
    Streaming,
}

/// Copy `leg.src` → `leg.dst` until EOF (`Ok(None)`). With `splice`, a
/// direction that looks like a bulk stream leaves with a pipe lease
/// (`Ok(Some)`) for the caller to splice with; if no pipe is available it
/// stays on copy.
pub async fn pump<'p>(leg: &Leg<'_>, mut splice: Option<&'p PipePool>) -> io::Result<Option<Lease<'p>>> {
    let mut full_reads = 0u32;
    loop {
        leg.src.readable().await?;
        let mut buf = buffers::take();
        let step = burst(leg, &mut buf, splice.is_some(), &mut full_reads).await;
        buffers::give(buf);
        match step? {
            None => {}
            Some(End::Eof) => return Ok(None),
            Some(End::Streaming) => match splice.and_then(|p| p.take()) {
                Some(lease) => return Ok(Some(lease)),
                // No pipe to spare (cap reached or pipe2 failed): keep copying.
                None => splice = None,
            },
        }
    }
}

/// Read and forward until the source is drained (`Ok(None)`), ends, or streams.
async fn burst(leg: &Leg<'_>, buf: &mut [u8], watch_streaming: bool, full_reads: &mut u32) -> io::Result<Option<End>> {
    loop {
        let n = match read_clearing(leg.src, buf) {
            Ok(0) => return leg.ended(None).map(|_| Some(End::Eof)),
            Ok(n) => n,
            // Spurious wake-up: nothing to read.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return leg.ended(Some(e)).map(|_| Some(End::Eof)),
        };
        leg.progress.fetch_add(1, Relaxed);
        // The last bytes before a FIN: held back so the shutdown that follows
        // at once leaves in the same segment (one packet fewer per connection).
        let fin_next = n < buf.len() && fin_follows(leg.src);
        send_all(leg.dst, &buf[..n], fin_next).await?;
        leg.bytes.fetch_add(n as u64, Relaxed);
        if n < buf.len() {
            *full_reads = 0;
            return Ok(None);
        }
        *full_reads += 1;
        if watch_streaming && *full_reads >= STREAMING_AFTER {
            return Ok(Some(End::Streaming));
        }
    }
}

/// One read of `src` into `buf` (`Ok(0)` is end of stream, `WouldBlock` means
/// nothing to read) that clears tokio's readiness when the read came back
/// short (the readiness trick in the module comment).
fn read_clearing(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = 0;
    let r = src.try_io(Interest::READABLE, || {
        let n = (&*SockRef::from(src)).read(&mut *buf)?;
        if n > 0 && n < buf.len() {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        r => r,
    }
}

/// What the client has already sent: empty when nothing is there yet or the
/// client already closed (the copy loop sees the EOF again later). Sent to
/// the backend with the connect. tokio assumes an accepted socket readable;
/// a short read clears that, so the copy loop waits for the next event
/// instead of paying a `recv` → `EAGAIN`.
pub fn read_now(src: &TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = buffers::take();
    let out = match read_clearing(src, &mut buf) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    buffers::give(buf);
    out
}

/// Has `src` seen the peer's FIN (`EPOLLRDHUP`)? After a read that drained
/// the socket, the next read then returns end of stream. Asks tokio's
/// readiness without waiting (a no-op waker; a pending answer is "no").
fn fin_follows(src: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let ready = pin!(src.ready(Interest::READABLE));
    matches!(ready.poll(&mut cx), Poll::Ready(Ok(r)) if r.is_read_closed())
}

/// Write all of `data`, trying first and waiting for writability only on `EAGAIN`.
pub async fn write_all(dst: &TcpStream, data: &[u8]) -> io::Result<()> {
    send_all(dst, data, false).await
}

/// [`write_all`], optionally with `MSG_MORE` (Linux): the kernel holds the
/// bytes for the caller's next send or shutdown, which must follow at once.
async fn send_all(dst: &TcpStream, mut data: &[u8], more: bool) -> io::Result<()> {
    while !data.is_empty() {
        let sent = if more { send_more(dst, data) } else { dst.try_write(data) };
        match sent {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One send with `MSG_MORE` where the platform has it.
fn send_more(dst: &TcpStream, data: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    return dst.try_io(Interest::WRITABLE, || SockRef::from(dst).send_with_flags(data, libc::MSG_MORE | libc::MSG_NOSIGNAL));
    #[cfg(not(target_os = "linux"))]
    return dst.try_write(data);
}
