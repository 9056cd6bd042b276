//! A connection adopted from another process (the new side of a hand-over,
//! see `handoff`), or one whose hand-over failed and continues here: deliver
//! what it still owed, then forward as any plain TCP connection, counted on
//! its listener and backend when the current tables still have them.

use super::admit;
use super::park::{self, Origin};
use crate::access::{AccessRecord, Ended};
use crate::events::wall_ms;
use crate::forward::{Moved, Outcome};
use crate::handoff::Parked;
use crate::shared::Shared;
use crate::stats::BackendStats;
use std::sync::Arc;

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
    let (ended, moved) = match park::resume(p) {
        Err(_) => (Ended::Error, Moved::default()),
        Ok(r) => {
            let (park_token, kills) = (health.park_token(), health.kills());
            shared.parking.forwarding(true);
            let (outcome, moved) = park::forward_resumed(&shared, listener.as_deref(), &r, &stats, &park_token).await;
            // Parked: still counted as forwarding until it is handed over or back (see `after_park`).
            if matches!(outcome, Outcome::Cancelled) && park::parked(&shared, &health, kills) {
                let from = Origin { listener: &listener_name, pool: &pool_name, backend: backend_addr, client: client_addr };
                let (ended, more) = park::after_park(&shared, listener.as_deref(), from, r.client, r.backend, &stats, &health).await;
                (ended, Moved { up: moved.up + more.up, down: moved.down + more.down })
            } else {
                shared.parking.forwarding(false);
                park::discard_unsent(&outcome, &r.client, &r.backend);
                (super::ended_by(outcome, listener.as_deref()), moved)
            }
        }
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
                bytes_in: moved.up,
                bytes_out: moved.down,
                ended,
                http: None,
                rule: None,
                tag: None,
                udp: None,
            });
        }
    }
}
