//! Connecting to a backend: pick, connect with a timeout, and on failure try
//! another backend up to the pool's `retries`.

use crate::select::PickContext;
use crate::snapshot::Pool;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::net::TcpStream;

/// Connect a client from `client` to a backend of `pool`.
/// Returns the connected stream and the backend's index, or `None` when every
/// attempt failed or no backend was eligible. Failures are counted per backend.
pub async fn connect(pool: &Pool, client: SocketAddr) -> Option<(TcpStream, usize)> {
    let ctx = PickContext { client };
    let attempts = pool.retries as usize + 1;
    let mut tried: Vec<usize> = Vec::with_capacity(attempts.min(8));
    while tried.len() < attempts {
        let i = pool.pick(&ctx, &tried)?;
        tried.push(i);
        let b = &pool.backends[i];
        let start = Instant::now();
        match tokio::time::timeout(pool.connect_timeout, TcpStream::connect(b.addr)).await {
            Ok(Ok(stream)) => {
                // Latency over batching: small writes go out at once.
                let _ = stream.set_nodelay(true);
                b.stats.connected(start.elapsed());
                return Some((stream, i));
            }
            Ok(Err(_)) => {
                b.stats.connect_errors.fetch_add(1, Relaxed);
            }
            Err(_) => {
                b.stats.connect_timeouts.fetch_add(1, Relaxed);
            }
        }
    }
    None
}
