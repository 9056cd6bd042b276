//! Accept loops: one per listener socket and worker. A connection lives on
//! the worker that accepted it.
//!
//! Two ways to spread connections over workers (`EngineConfig::accept`):
//! - `reuseport`: one SO_REUSEPORT socket per worker; the kernel hashes each
//!   new connection to one of them. No wake-up is shared, but a burst hashed
//!   onto a busy worker waits in its queue while another sits idle.
//! - `shared` (Linux): one socket, registered with every worker; each new
//!   connection wakes them all and the first to call accept gets it. A worker
//!   holding more than [`SLACK`] connections above the least loaded one
//!   yields once before accepting, leaving the connection to a less busy
//!   worker if that one is free to take it (HAProxy hands accepted connections
//!   to its least loaded thread for the same reason).

use crate::engine::Shared;
use crate::listener::serve;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections a worker may hold above the least loaded worker before it
/// defers new ones from a shared queue.
pub const SLACK: u64 = 2;

/// Back-off after an accept error (EMFILE, ENFILE, ENOBUFS) instead of
/// spinning; the pending connection stays in the backlog.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(5);

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
                tokio::spawn(serve(Arc::clone(&shared), Arc::clone(&name), stream, peer, worker));
            }
            Err(_) => tokio::time::sleep(ACCEPT_ERROR_PAUSE).await,
        }
    }
}

/// A listening socket shared by every worker, each registered in its own reactor.
#[cfg(target_os = "linux")]
pub type SharedSocket = tokio::io::unix::AsyncFd<socket2::Socket>;

/// Accept from a socket every worker watches until `stop` fires (see the module comment).
#[cfg(target_os = "linux")]
pub async fn accept_shared(shared: Arc<Shared>, name: Arc<str>, listener: SharedSocket, worker: usize, stop: CancellationToken) {
    let mut deferred = false;
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
        if !deferred && shared.conns.busier_than_least(worker, SLACK) {
            // Deferred, not skipped: the readiness stays set, so after one
            // turn of this worker's loop it accepts whatever the others left.
            drop(guard);
            deferred = true;
            tokio::task::yield_now().await;
            continue;
        }
        deferred = false;
        match guard.try_io(|l| l.get_ref().accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)) {
            Ok(Ok((sock, addr))) => match (addr.as_socket(), tokio::net::TcpStream::from_std(sock.into())) {
                (Some(peer), Ok(stream)) => {
                    tokio::spawn(serve(Arc::clone(&shared), Arc::clone(&name), stream, peer, worker));
                }
                _ => {} // not an IP peer, or registration failed: the socket closes here
            },
            Ok(Err(_)) => tokio::time::sleep(ACCEPT_ERROR_PAUSE).await,
            Err(_would_block) => {} // another worker took it; readiness cleared
        }
    }
}
