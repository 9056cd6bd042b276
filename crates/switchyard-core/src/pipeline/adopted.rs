//! A connection adopted from another process (the new side of a hand-over,
//! see `handoff`), or one whose hand-over failed and continues here: deliver
//! what it still owed, then forward as any plain TCP connection, counted on
//! its listener and backend when the current tables still have them.

use super::admit;
use super::park::{self, AfterPark, Origin};
use crate::access::{AccessRecord, Ended};
use crate::config::SpliceMode;
use crate::events::wall_ms;
use crate::forward::{self, Counters, Outcome, Watch};
use crate::handoff::Parked;
use crate::shared::Shared;
use crate::stats::BackendStats;
use std::sync::Arc;
use std::time::Duration;

/// Idle timeout of a connection whose listener the current tables lack.
const ORPHAN_IDLE: Duration = Duration::from_secs(3600);

/// Serve adopted connection `p` on `worker` until it ends.
pub(crate) async fn serve(shared: Arc<Shared>, p: Parked, worker: usize) {
    let _conn = shared.conns.enter(worker);
    let snapshot = shared.snapshot.load_full();
    let listener = snapshot.listeners.get(p.listener.as_str()).cloned();
    if let Some(l) = &listener {
        admit::adopted(&shared, l);
    }
    let started = wall_ms();
    let (listener_name, pool_name, backend_addr, client_addr) = (p.listener.clone(), p.pool.clone(), p.backend_addr, p.client_addr);
    // Counted on the backend of the current tables (least connections sees
    // it), else on its registry entry (counters and kill token survive tables).
    let pool = snapshot.pools.iter().find(|x| x.name == pool_name);
    let in_pool = pool.and_then(|pl| pl.backends.iter().find(|b| b.addr == backend_addr).map(|b| (pl, b)));
    let _active = in_pool.map(|(pl, b)| super::upstream::Active::adopted(pl, b));
    let (stats, health): (Arc<BackendStats>, _) = match in_pool {
        Some((_, b)) => (Arc::clone(&b.stats), Arc::clone(&b.health)),
        None => shared.registry.backend(&pool_name, backend_addr),
    };
    let splice = listener.as_ref().map_or(SpliceMode::Auto, |l| l.splice);
    let watch = || listener.as_ref().map_or(Watch::new(ORPHAN_IDLE, None), |l| l.watch());
    let mut resumed: Option<tokio_util::sync::CancellationToken> = None;
    let mut moved_total = forward::Moved::default();
    let ended = match park::resume(p).await {
        Err(_) => Ended::Error,
        Ok((mut client, mut backend)) => loop {
            let kill = health.kill_token();
            let park_token = resumed.clone().unwrap_or_else(|| health.park_token());
            let counters = Counters { bytes_in: &stats.bytes_in, bytes_out: &stats.bytes_out };
            shared.parking.forwarding(true);
            let (outcome, moved) = forward::proxy(&client, &backend, splice, watch(), counters, &shared.pipes, &park_token, false).await;
            shared.parking.forwarding(false);
            moved_total.up += moved.up;
            moved_total.down += moved.down;
            match outcome {
                Outcome::Cancelled if resumed.is_none() && !kill.is_cancelled() => {
                    let from = Origin { listener: &listener_name, pool: &pool_name, backend: backend_addr, client: client_addr };
                    match park::park(&shared, from, client, backend).await {
                        AfterPark::HandedOver => break Ended::HandedOver,
                        AfterPark::Resumed(c, b, until) => (client, backend, resumed) = (c, b, Some(park::resumed_token(&kill, until))),
                        AfterPark::Failed(_) => break Ended::Error,
                    }
                }
                Outcome::Cancelled => break Ended::Cancelled,
                Outcome::Completed => break Ended::Completed,
                Outcome::IdleTimeout => break Ended::IdleTimeout,
                Outcome::Lifetime => break Ended::Lifetime,
                Outcome::Failed(_) => break Ended::Error,
            }
        },
    };
    if let Some(l) = &listener {
        admit::closed(&shared, l, client_addr.ip(), false);
        if l.access_log {
            shared.access.push(AccessRecord {
                time_ms: started,
                listener: listener_name,
                client: client_addr.to_string(),
                pool: pool_name,
                backend: backend_addr.to_string(),
                duration_ms: wall_ms().saturating_sub(started),
                bytes_in: moved_total.up,
                bytes_out: moved_total.down,
                ended,
                http: None,
                udp: None,
            });
        }
    }
}
