//! Userspace copy of one direction.
//!
//! Readiness trick: a read that returns less than the buffer drained the
//! socket, so the closure reports `WouldBlock` (after keeping the bytes) and
//! tokio clears the readiness then, saving the extra `read` → `EAGAIN` per
//! burst. tokio only clears readiness of the tick it observed and never
//! clears the read-closed bit, so a FIN or later data is not lost.

use super::splice::{Lease, PipePool};
use super::unsent::Owed;
use super::{buffers, Leg};
use socket2::SockRef;
use std::io::{self, Read};
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
        leg.progress.fetch_add(n as u64, Relaxed);
        write_all(Owed { dst: leg.dst, rest: &buf[..n] }).await?;
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

/// Deliver bytes a direction owed from before (see `proxy_resumed`), counted as written.
pub(super) async fn write_owed(leg: &Leg<'_>, owed: &[u8]) -> io::Result<()> {
    write_all(Owed { dst: leg.dst, rest: owed }).await?;
    leg.bytes.fetch_add(owed.len() as u64, Relaxed);
    Ok(())
}

/// Write all of `owed.rest` to `owed.dst`. Interrupted at its await (the
/// connection is being handed over or closed), what was not written yet is
/// stashed for whoever continues the connection (see `unsent`); on an error
/// nothing is. The guard is the only state kept across the await (a copy of
/// the arguments beside it would grow every connection's task).
async fn write_all(mut owed: Owed<'_>) -> io::Result<()> {
    let r = loop {
        if owed.rest.is_empty() {
            break Ok(());
        }
        match owed.dst.try_write(owed.rest) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => owed.rest = &owed.rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = owed.dst.writable().await {
                    break Err(e);
                }
            }
            Err(e) => break Err(e),
        }
    };
    owed.rest = &[];
    r
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
/// the backend with the connect. A direct `recv`: tokio's own view of a
/// fresh socket is a guess (its accept assumes readable, a socket adopted
/// with `from_std` starts not ready). A short read then clears tokio's
/// readiness, so the copy loop waits for the next event instead of paying
/// a `recv` → `EAGAIN`.
pub fn read_now(src: &TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = buffers::take();
    let r = (&*SockRef::from(src)).read(&mut buf);
    let out = match r {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    if !matches!(&out, Ok(v) if v.len() == buf.len()) {
        let _ = src.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }
    buffers::give(buf);
    out
}
