//! Accept loops: one per listener socket and worker. A connection lives on
//! the worker that accepted it.
//!
//! Two ways to spread connections over workers (`EngineConfig::accept`):
//! - `reuseport`: one SO_REUSEPORT socket per worker; the kernel hashes each
//!   new connection to one of them. No wake-up is shared, but a burst hashed
//!   onto a busy worker waits in its queue while another sits idle.
//! - `shared` (Linux): one socket, registered with every worker; each new
//!   connection wakes them all and the first to call accept gets it. A worker
//!   holding more than [`SLACK`] connections above the least loaded one hands
//!   the accepted socket (not yet registered with any reactor) to that worker
//!   instead, as HAProxy hands accepted connections to its least loaded
//!   thread: the first awake worker takes a burst at once, so without this
//!   long-lived connections pile up on one worker.

use crate::pipeline::spawn;
use crate::shared::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections a worker may hold above the least loaded worker before it
/// hands new ones from a shared queue to that worker.
pub const SLACK: u64 = 2;

/// Back-off after an accept error (EMFILE, ENFILE, ENOBUFS) instead of
/// spinning; the pending connection stays in the backlog.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(5);

/// Count and report a failed accept, then back off instead of spinning.
async fn accept_failed(shared: &Shared, name: &str, e: &std::io::Error) {
    if let Some(l) = shared.snapshot.load().listeners.get(name) {
        l.stats.accept_failed(name, e, &shared.events);
    }
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Return once listener `name` is below its `max_connections` and the
/// engine below its own (at once without limits). Meanwhile new clients wait
/// in the kernel's backlog, as with HAProxy's `maxconn`.
async fn room(shared: &Shared, name: &str) {
    engine_room(shared).await;
    loop {
        let stats = {
            let snapshot = shared.snapshot.load();
            match snapshot.listeners.get(name) {
                Some(l) if crate::pipeline::admit::full(l) => Arc::clone(&l.stats),
                _ => return,
            }
        };
        // Registered before looking again, so a close in between is not missed.
        let freed = stats.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if !full(shared, name) {
            return;
        }
        // A reload may lift the limit without a close: look again now and then.
        let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
    }
}

/// Whether listener `name` is at its `max_connections`, or the engine at
/// its own, now.
fn full(shared: &Shared, name: &str) -> bool {
    crate::pipeline::admit::engine_full(shared)
        || shared.snapshot.load().listeners.get(name).is_some_and(|l| crate::pipeline::admit::full(l))
}

/// Wait while the whole engine is at its connection limit.
async fn engine_room(shared: &Shared) {
    use std::sync::atomic::Ordering::Relaxed;
    while crate::pipeline::admit::engine_full(shared) {
        shared.waiting_for_room.fetch_add(1, Relaxed);
        let freed = shared.room_freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if crate::pipeline::admit::engine_full(shared) {
            // A reload may raise the limit without a close: look again now and then.
            let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
        }
        shared.waiting_for_room.fetch_sub(1, Relaxed);
    }
}

/// Accept on this worker's own (SO_REUSEPORT) socket until `stop` fires.
/// Dropping the socket on return releases the port.
pub async fn accept_loop(shared: Arc<Shared>, name: Arc<str>, listener: TcpListener, worker: usize, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                // At a limit (reached while this worker waited in `accept`): this client
                // waits, accepted but not served, until there is room.
                if full(&shared, &name) {
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => return,
                        _ = room(&shared, &name) => {}
                    }
                }
                shared.conns.assign(worker);
                spawn(&tokio::runtime::Handle::current(), Arc::clone(&shared), Arc::clone(&name), stream, peer, worker);
            }
            Err(e) => accept_failed(&shared, &name, &e).await,
        }
    }
}

/// A listening socket shared by every worker, each registered in its own reactor.
#[cfg(target_os = "linux")]
pub type SharedSocket = tokio::io::unix::AsyncFd<socket2::Socket>;

/// Register a descriptor of a shared listening socket with the current
/// worker's reactor (call inside that runtime).
#[cfg(target_os = "linux")]
pub fn register_shared(dup: std::net::TcpListener) -> std::io::Result<SharedSocket> {
    // SAFETY: the Socket owns `dup`, an open descriptor that stays open and
    // unchanged until the AsyncFd (which owns the Socket) drops.
    unsafe { SharedSocket::register(socket2::Socket::from(dup)) }.map_err(|e| e.into_parts().1)
}

/// Accept from a socket every worker watches until `stop` fires (see the
/// module comment). `workers` are the runtimes of all workers, by index.
#[cfg(target_os = "linux")]
pub async fn accept_shared(
    shared: Arc<Shared>,
    name: Arc<str>,
    listener: SharedSocket,
    worker: usize,
    workers: Arc<[tokio::runtime::Handle]>,
    stop: CancellationToken,
) {
    loop {
        let ready = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = listener.readable() => r,
        };
        let Ok(mut guard) = ready else {
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            continue;
        };
        // At a limit: leave the client in the backlog (the readiness stays) until there is room.
        if full(&shared, &name) {
            drop(guard);
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = room(&shared, &name) => {}
            }
            continue;
        }
        match guard.try_io(|l| l.get_ref().accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)) {
            Ok(Ok((sock, addr))) => {
                // Not an IP peer: the socket closes here.
                let Some(peer) = addr.as_socket() else { continue };
                // Not registered anywhere yet, so it can go to any worker for free:
                // the least loaded one when this one is ahead by more than SLACK.
                let owner = shared.conns.hand_off_target(worker, SLACK).unwrap_or(worker);
                let runtime = &workers[owner];
                let _in_owner = runtime.enter();
                if let Ok(stream) = tokio::net::TcpStream::from_std(sock.into()) {
                    shared.conns.assign(owner);
                    spawn(runtime, Arc::clone(&shared), Arc::clone(&name), stream, peer, owner);
                }
            }
            Ok(Err(e)) => accept_failed(&shared, &name, &e).await,
            Err(_would_block) => {} // another worker took it; readiness cleared
        }
    }
}
