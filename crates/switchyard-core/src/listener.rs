//! Accept loops and the life of one client connection.

use crate::connect::{connect, passive_failure};
use crate::health::Failure;
use crate::engine::Shared;
use crate::forward::{self, Counters, Outcome};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Accept on one (SO_REUSEPORT) socket of listener `name` until `stop` fires.
/// Dropping the socket on return releases the port.
pub async fn accept_loop(shared: Arc<Shared>, name: Arc<str>, listener: TcpListener, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve(Arc::clone(&shared), Arc::clone(&name), stream, peer));
            }
            // EMFILE/ENFILE/ENOBUFS: back off briefly instead of spinning; the
            // pending connection stays in the backlog.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Serve one client: route, connect to a backend, forward, count.
async fn serve(shared: Arc<Shared>, name: Arc<str>, client: TcpStream, peer: SocketAddr) {
    let _conn = shared.conns.enter();
    // One atomic load of the current table; the route is kept for the
    // connection's life so a later update never changes it mid-stream.
    let Some(route) = shared.snapshot.load().routes.get(&*name).cloned() else {
        return; // listener removed between accept and now
    };
    route.stats.accepted.fetch_add(1, Relaxed);
    route.stats.active.fetch_add(1, Relaxed);
    let _ = client.set_nodelay(true);
    if let Some(up) = connect(&route.pool, peer, &shared.events).await {
        let s = &up.backend.stats;
        let counters = Counters { bytes_in: &s.bytes_in, bytes_out: &s.bytes_out };
        let kill = up.backend.health.kill_token();
        let (outcome, backend_spoke) =
            forward::proxy(&client, &up.stream, route.splice, route.idle_timeout, counters, &shared.pipes, [&shared.cancel_conns, &kill]).await;
        match outcome {
            Outcome::IdleTimeout => {
                route.stats.idle_timeouts.fetch_add(1, Relaxed);
            }
            Outcome::Failed(e) if !backend_spoke && e.kind() == std::io::ErrorKind::ConnectionReset => {
                passive_failure(&route.pool, up.backend, Failure::ResetBeforeFirstByte, &shared.events);
            }
            _ => {}
        }
    } else {
        route.stats.no_backend.fetch_add(1, Relaxed);
    }
    route.stats.active.fetch_sub(1, Relaxed);
}
