//! Moving bytes between a client and its backend, both ways, until both
//! directions have ended.
//!
//! Contract: bytes arrive complete and in order or the connection is closed.
//! A FIN read on one side is passed on as `shutdown(SHUT_WR)` of the other
//! while the reverse direction keeps flowing; an error on either direction
//! ends both (the caller drops both sockets).
//!
//! Each direction starts as a userspace copy; with `splice: auto` it moves to
//! splice(2) after three consecutive full reads (HAProxy's splice-auto rule),
//! with `always` it splices from the first byte, with `never` it only copies.

mod buffers;
mod copy;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // pipe2, fcntl(F_SETPIPE_SZ), splice(2)
mod splice;
#[cfg(not(target_os = "linux"))]
#[path = "no_splice.rs"]
mod splice;
pub mod stream;
pub(crate) mod unsent;

pub use copy::read_now;
pub use splice::PipePool;
pub use unsent::take as take_unsent;

use crate::config::SpliceMode;
use crate::net::shutdown_write;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// One direction: from `src` to `dst`, counting into `bytes`.
pub(crate) struct Leg<'a> {
    pub src: &'a TcpStream,
    pub dst: &'a TcpStream,
    pub bytes: &'a AtomicU64,
    /// Bytes read in this direction, added as soon as a read returns data
    /// (the idle watch, "did the backend speak", the retry rule and the
    /// access log read it).
    pub progress: &'a AtomicU64,
    /// The other direction's `progress`, set only on the backend → client leg
    /// of a connection that may still move to another backend: if the backend
    /// ends before either side sent a byte, that leg reports a silent close
    /// instead of passing the FIN to the client.
    pub silent_peer: Option<&'a AtomicU64>,
    /// Set by whichever direction ends first: the second end closes both
    /// sockets right after, so its shutdown(2) would be a wasted syscall.
    pub first_done: &'a AtomicBool,
}

impl Leg<'_> {
    /// The source reached end of stream (`err` None) or failed. Decides what
    /// the destination sees: nothing yet (silent close, the caller retries
    /// elsewhere), a FIN (shutdown of its write side), or the error.
    fn ended(&self, err: Option<io::Error>) -> io::Result<()> {
        if let Some(peer) = self.silent_peer {
            // Nothing read either way, and the client has not closed its side.
            if self.progress.load(Relaxed) == 0 && peer.load(Relaxed) == 0 && !self.first_done.load(Relaxed) {
                return Err(io::Error::other(SilentClose));
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        if self.first_done.swap(true, Relaxed) {
            return Ok(()); // the other direction already ended: close follows at once
        }
        shutdown_write(self.dst)
    }
}

/// The backend closed or reset before anyone sent a byte.
#[derive(Debug)]
pub struct SilentClose;

impl std::fmt::Display for SilentClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the backend closed before sending or receiving a byte")
    }
}

impl std::error::Error for SilentClose {}

/// Is `e` a [`SilentClose`] (the connection may be retried on another backend)?
pub fn is_silent_close(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<SilentClose>())
}

/// How a forwarded connection ended.
#[derive(Debug)]
pub enum Outcome {
    /// Both directions reached end of stream.
    Completed,
    /// No byte moved in either direction for the idle timeout.
    IdleTimeout,
    /// The connection reached its listener's `max_lifetime`.
    Lifetime,
    /// The engine cancelled it (drain deadline passed).
    Cancelled,
    /// A socket error on either side.
    Failed(io::Error),
}

/// What one forwarded connection moved: bytes read from the client (`up`)
/// and from the backend (`down`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Moved {
    pub up: u64,
    pub down: u64,
}

/// When a forwarded connection ends by time: after its idle timeout without
/// a byte either way, and at a deadline whatever it does (the listener's
/// jittered `max_lifetime`), both checked in quarter steps of the idle
/// timeout. Eight bytes (milliseconds, and whole seconds since the process's
/// first watch): every connection's task holds it while it forwards.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    idle_ms: u32,
    /// Seconds since [`watch_epoch`], rounded up; 0: no deadline.
    until_s: u32,
}

/// The instant `Watch` deadlines count from.
fn watch_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Watch {
    /// Idle timeout `idle` (at most ~49 days), deadline `until`.
    pub fn new(idle: Duration, until: Option<std::time::Instant>) -> Watch {
        let idle_ms = idle.as_millis().clamp(1, u32::MAX as u128) as u32;
        let until_s = until.map_or(0, |t| (t.saturating_duration_since(watch_epoch()).as_millis().div_ceil(1000) as u32).max(1));
        Watch { idle_ms, until_s }
    }

    fn idle(self) -> Duration {
        Duration::from_millis(self.idle_ms as u64)
    }

    /// The deadline has passed.
    fn expired(self) -> bool {
        self.until_s != 0 && watch_epoch().elapsed().as_secs() >= self.until_s as u64
    }
}

/// Counters one forwarded connection adds to.
pub struct Counters<'a> {
    /// Client → backend.
    pub bytes_in: &'a AtomicU64,
    /// Backend → client.
    pub bytes_out: &'a AtomicU64,
}

/// Forward both ways between `client` and `backend` until both directions end,
/// the connection idles out, fails, or `cancel` fires (the backend's kill
/// token: its drain deadline, `on_down: close`, or the engine's close deadline).
/// With `retry_if_silent`, a backend that ends before any byte moved yields
/// `Outcome::Failed` with a [`SilentClose`] and the client is left untouched.
/// After `Outcome::Cancelled`, bytes read but not yet written are kept for
/// the caller: [`take_unsent`] of each socket (the caller must take them).
/// Also returns the bytes moved each way (passive detection counts a reset
/// before the backend's first byte as a failure; the access log reports them).
#[allow(clippy::too_many_arguments)] // the hot path's inputs, passed as they are
pub async fn proxy(
    client: &TcpStream,
    backend: &TcpStream,
    mode: SpliceMode,
    watch: Watch,
    counters: Counters<'_>,
    pipes: &PipePool,
    cancel: &CancellationToken,
    retry_if_silent: bool,
) -> (Outcome, Moved) {
    let (up_progress, down_progress) = (AtomicU64::new(0), AtomicU64::new(0));
    let first_done = AtomicBool::new(false);
    let silent_peer = retry_if_silent.then_some(&up_progress);
    // Built inside the call, not bound to a local first: a future moved from a
    // local would be stored twice in every connection's task.
    supervise!(
        async {
            tokio::try_join!(
                direction(
                    Leg {
                        src: client,
                        dst: backend,
                        bytes: counters.bytes_in,
                        progress: &up_progress,
                        silent_peer: None,
                        first_done: &first_done
                    },
                    mode,
                    pipes
                ),
                direction(
                    Leg {
                        src: backend,
                        dst: client,
                        bytes: counters.bytes_out,
                        progress: &down_progress,
                        silent_peer,
                        first_done: &first_done
                    },
                    mode,
                    pipes
                ),
            )
        },
        [&up_progress, &down_progress],
        watch,
        cancel
    )
}

/// [`proxy`] for a connection that continues where it did not begin (adopted
/// in a hand-over, or resumed after a park): each direction first delivers
/// what it still owed — `up` to the backend, `down` to the client — while the
/// other direction already reads. Delivering them before forwarding could
/// wait forever: a backend whose answers nobody reads stops reading too.
#[allow(clippy::too_many_arguments)] // `proxy`'s inputs and the two owed byte runs
pub async fn proxy_resumed(
    client: &TcpStream,
    backend: &TcpStream,
    owed: [&[u8]; 2],
    mode: SpliceMode,
    watch: Watch,
    counters: Counters<'_>,
    pipes: &PipePool,
    cancel: &CancellationToken,
) -> (Outcome, Moved) {
    let (up_progress, down_progress) = (AtomicU64::new(0), AtomicU64::new(0));
    let first_done = AtomicBool::new(false);
    let leg = |src, dst, bytes, progress| Leg { src, dst, bytes, progress, silent_peer: None, first_done: &first_done };
    let up = leg(client, backend, counters.bytes_in, &up_progress);
    let down = leg(backend, client, counters.bytes_out, &down_progress);
    supervise!(
        async { tokio::try_join!(owed_then(up, owed[0], mode, pipes), owed_then(down, owed[1], mode, pipes)) },
        [&up_progress, &down_progress],
        watch,
        cancel
    )
}

/// Deliver `owed` to `leg.dst` (interrupted again, the rest is kept as
/// before), then forward the direction.
async fn owed_then(leg: Leg<'_>, owed: &[u8], mode: SpliceMode, pipes: &PipePool) -> io::Result<()> {
    copy::write_owed(&leg, owed).await?;
    direction(leg, mode, pipes).await
}

/// Run `$both` (the two directions joined) until it ends, the connection
/// idles out or `$cancel` fires; `$progress` is [client → backend, backend →
/// client]. Evaluates to (Outcome, Moved).
/// A macro, not an async fn: a future passed to an async fn is stored twice
/// in the caller's task (once as the argument, once as the awaited local).
macro_rules! supervise {
    ($both:expr, $progress:expr, $idle:expr, $cancel:expr) => {{
        let progress: [&AtomicU64; 2] = $progress;
        let outcome = tokio::select! {
            r = $both => match r {
                Ok(_) => Outcome::Completed,
                Err(e) => Outcome::Failed(e),
            },
            o = idle_watch(progress, $idle) => o,
            // Set as the cancel resolves: select! drops the directions right after,
            // before this branch runs, and what they still owed is kept (see `unsent`).
            _ = async {
                $cancel.cancelled().await;
                $crate::forward::unsent::keep(true);
            } => Outcome::Cancelled,
        };
        $crate::forward::unsent::keep(false);
        (outcome, Moved { up: progress[0].load(Relaxed), down: progress[1].load(Relaxed) })
    }};
}
pub(crate) use supervise;

/// One await of each pump, so the task holds the larger of the two, not the sum
/// (every connection's task carries this state while it waits).
async fn direction(leg: Leg<'_>, mode: SpliceMode, pipes: &PipePool) -> io::Result<()> {
    let lease = match mode {
        SpliceMode::Always => pipes.take(),
        _ => None,
    };
    let lease = match lease {
        Some(l) => Some(l),
        None => copy::pump(&leg, (mode != SpliceMode::Never).then_some(pipes)).await?,
    };
    match lease {
        Some(pipe) => splice::pump(&leg, pipe).await,
        None => Ok(()),
    }
}

/// Resolve with `IdleTimeout` once `progress` has not moved for the idle
/// timeout, or `Lifetime` once `watch.until` passed. Checked in quarter
/// steps, so the idle timeout fires between 1.0× and 1.25× of it (the
/// lifetime up to a step late); this keeps the hot path free of clock reads
/// (it only bumps a counter).
pub(crate) async fn idle_watch(progress: [&AtomicU64; 2], watch: Watch) -> Outcome {
    let step = (watch.idle() / 4).max(Duration::from_millis(1));
    let read = || progress[0].load(Relaxed).wrapping_add(progress[1].load(Relaxed));
    let mut last = read();
    let mut quiet = 0;
    loop {
        tokio::time::sleep(step).await;
        if watch.expired() {
            return Outcome::Lifetime;
        }
        let now = read();
        if now == last {
            quiet += 1;
            if quiet >= 4 {
                return Outcome::IdleTimeout;
            }
        } else {
            quiet = 0;
            last = now;
        }
    }
}
