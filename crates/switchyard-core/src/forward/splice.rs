//! Zero-copy forwarding with splice(2): socket → pipe → socket, never through
//! userspace. Linux only.
//!
//! Invariant (as in Go's poll package and tokio-splice2): we only splice from
//! the source socket into an *empty* pipe, so `EAGAIN` on that leg always
//! means "socket empty", and `EAGAIN` on the pipe → socket leg always means
//! "send buffer full". Every splice goes through `try_io`, so tokio's
//! readiness is cleared on `EAGAIN` and we never spin.

use super::Leg;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::Mutex;
use tokio::io::Interest;

/// Requested pipe capacity. The kernel may grant less (pipe-user-pages-soft),
/// so the size actually granted is read back and used.
pub const PIPE_SIZE: usize = 1 << 20;

/// Idle pipes kept for reuse; beyond this they are closed.
const KEEP_IDLE: usize = 256;

/// A pipe: read end, write end, its capacity and how many bytes sit in it,
/// and the socket they are owed to (-1: none; see `Lease`'s drop).
#[derive(Debug)]
pub struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    cap: usize,
    buffered: u32,
    owed_to: RawFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two new descriptors into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int and returns the granted size.
        let granted = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) };
        let cap = if granted > 0 {
            granted as usize
        } else {
            // SAFETY: as above; F_GETPIPE_SZ only reads the pipe's size.
            let cur = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
            if cur > 0 {
                cur as usize
            } else {
                64 * 1024
            }
        };
        Ok(Pipe { r, w, cap, buffered: 0, owed_to: -1 })
    }
}

/// A bounded pool of pipes (HAProxy's `maxpipes`): at most `max` lent at once.
#[derive(Debug)]
pub struct PipePool {
    idle: Mutex<Vec<Pipe>>,
    in_use: AtomicUsize,
    /// Leases ever granted: shows whether splice is really in use.
    leased: AtomicU64,
    /// Changed by config updates (it follows the connection limit); pipes
    /// lent above a lowered cap are returned as their connections end.
    max: AtomicUsize,
}

impl PipePool {
    pub fn new(max: usize) -> Self {
        Self { idle: Mutex::new(Vec::new()), in_use: AtomicUsize::new(0), leased: AtomicU64::new(0), max: AtomicUsize::new(max) }
    }

    /// The most pipes lent at once from now on.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Relaxed);
    }

    /// The cap in effect.
    pub fn max(&self) -> usize {
        self.max.load(Relaxed)
    }

    /// Pipes currently lent to connections.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Leases granted since start.
    pub fn leased(&self) -> u64 {
        self.leased.load(Ordering::Relaxed)
    }

    /// Borrow a pipe, or `None` when the cap is reached or pipe2 fails
    /// (the caller then keeps copying).
    pub fn take(&self) -> Option<Lease<'_>> {
        if self.in_use.fetch_add(1, Ordering::Relaxed) >= self.max() {
            self.in_use.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match reused.map(Ok).unwrap_or_else(Pipe::new) {
            Ok(pipe) => {
                self.leased.fetch_add(1, Ordering::Relaxed);
                Some(Lease { pool: self, pipe: Some(pipe) })
            }
            Err(_) => {
                self.in_use.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// A borrowed pipe. Returned to the pool on drop if empty. Dropped with
/// bytes owed to a socket (the connection was interrupted while they
/// drained: handed over or closed), the bytes are read out and stashed for
/// whoever continues the connection (see `unsent`); a pipe whose connection
/// failed mid-transfer is closed with its bytes.
pub struct Lease<'a> {
    pool: &'a PipePool,
    pipe: Option<Pipe>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            if pipe.buffered > 0 && pipe.owed_to >= 0 && super::unsent::keeping() {
                stash_pipe(&mut pipe);
            }
            if pipe.buffered == 0 {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < KEEP_IDLE {
                    idle.push(pipe);
                }
            }
        }
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Read the bytes `pipe` holds and stash them for the socket they are owed to.
fn stash_pipe(pipe: &mut Pipe) {
    let mut out = vec![0u8; pipe.buffered as usize];
    let mut got = 0;
    while got < out.len() {
        // SAFETY: reads into the unwritten tail of `out`, which we own, from
        // the pipe's read end, which lives as long as `pipe`.
        let n = unsafe { libc::read(pipe.r.as_raw_fd(), out[got..].as_mut_ptr() as *mut libc::c_void, out.len() - got) };
        if n <= 0 {
            return; // cannot happen (the bytes are in the pipe); the pipe is closed with them
        }
        got += n as usize;
    }
    let dst = std::mem::replace(&mut pipe.owed_to, -1);
    pipe.buffered = 0;
    super::unsent::stash(dst, out);
}

/// One splice(2) call between two descriptors, non-blocking.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed from live sockets/pipes for the
    // duration of the call; null offsets are required for pipes and sockets.
    let n =
        unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Forward `leg.src` → `leg.dst` through `lease`'s pipe until EOF.
pub async fn pump(leg: &Leg<'_>, mut lease: Lease<'_>) -> io::Result<()> {
    let pipe = lease.pipe.as_mut().expect("lease holds a pipe until dropped");
    let (src, dst) = (leg.src.as_raw_fd(), leg.dst.as_raw_fd());
    pipe.owed_to = dst;
    loop {
        // Fill: socket → empty pipe. A short splice drained the socket: report
        // WouldBlock so tokio clears readiness (see copy.rs for why this is safe).
        leg.src.readable().await?;
        let mut short = 0usize;
        let r = leg.src.try_io(Interest::READABLE, || {
            let n = splice(src, pipe.w.as_raw_fd(), pipe.cap)?;
            if n > 0 && n < pipe.cap {
                short = n;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        let n = match r {
            Ok(0) => return leg.ended(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => short,
            Err(e) => return leg.ended(Some(e)),
        };
        if n == 0 {
            continue; // spurious wake-up
        }
        pipe.buffered = n as u32; // at most the pipe's capacity (≤ 1 MiB)
        leg.progress.fetch_add(n as u64, Relaxed);
        // Drain: pipe → destination socket, all of it, before reading again.
        // Interrupted at the await, the lease stashes what is left (see `Lease`).
        while pipe.buffered > 0 {
            let r = match leg.dst.try_io(Interest::WRITABLE, || splice(pipe.r.as_raw_fd(), dst, pipe.buffered as usize)) {
                Ok(m) => {
                    pipe.buffered -= m as u32;
                    leg.bytes.fetch_add(m as u64, Relaxed);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => leg.dst.writable().await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                pipe.owed_to = -1; // failed: the bytes go with the connection
                return Err(e);
            }
        }
    }
}
