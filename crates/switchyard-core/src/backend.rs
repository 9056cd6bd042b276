//! One backend as the hot path sees it: its address and weight from the
//! configuration, and the counters and health it shares with every snapshot
//! that contains it (see [`Registry`](crate::registry::Registry)).

use crate::health::{AdminState, BackendHealth};
use crate::stats::{BackendReport, BackendStats};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// One backend of a pool.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    pub state: AdminState,
    pub stats: Arc<BackendStats>,
    pub health: Arc<BackendHealth>,
    /// Most connections (HTTP: requests in flight) at once; 0: no limit.
    pub max_conns: u64,
}

impl Backend {
    /// May it take a new connection: ready, not checked down, not ejected?
    #[inline]
    pub fn available(&self) -> bool {
        self.state == AdminState::Ready && self.health.usable()
    }

    /// May a client pinned to it (a sticky cookie, a UDP flow) stay? Available,
    /// or draining before its deadline and not down (HAProxy keeps persistent
    /// clients on a draining server).
    #[inline]
    pub fn keeps_sessions(&self) -> bool {
        self.available() || (self.state == AdminState::Drain && self.health.usable() && !self.health.drain_over())
    }

    /// Below its connection limit (always, without one).
    #[inline]
    pub fn has_room(&self) -> bool {
        self.max_conns == 0 || self.stats.active.load(Relaxed) < self.max_conns
    }

    /// Count one more connection (HTTP: request) on the backend, unless that
    /// would pass its limit: the slot is taken before connecting, so
    /// concurrent clients never overshoot. Undo with [`Backend::release`].
    #[inline]
    pub fn reserve(&self) -> bool {
        let active = &self.stats.active;
        if self.max_conns == 0 {
            active.fetch_add(1, Relaxed);
            return true;
        }
        active.fetch_update(Relaxed, Relaxed, |n| (n < self.max_conns).then_some(n + 1)).is_ok()
    }

    /// Give back a slot taken by [`Backend::reserve`].
    #[inline]
    pub fn release(&self) {
        self.stats.active.fetch_sub(1, Relaxed);
    }
}

impl Backend {
    /// A copy of the backend's counters and state; `share` is its table share,
    /// `idle` its idle keep-alive connections.
    pub fn report(&self, share: f64, idle: usize) -> BackendReport {
        let b = self;
        let s = &b.stats;
        let total = s.total.load(Relaxed);
        let (failures, ejections) = b.health.passive_counts();
        let left = b.health.ejection_left();
        BackendReport {
            address: b.addr.to_string(),
            max_connections: b.max_conns,
            weight: b.weight,
            backup: b.backup,
            share,
            state: b.state,
            health: b.health.checked(),
            ejected: left.is_some(),
            ejection_left_ms: left.map_or(0, |d| d.as_millis() as u64),
            failures,
            ejections,
            available: b.available(),
            active: s.active.load(Relaxed),
            total,
            bytes_in: s.bytes_in.load(Relaxed),
            bytes_out: s.bytes_out.load(Relaxed),
            connect_errors: s.connect_errors.load(Relaxed),
            connect_timeouts: s.connect_timeouts.load(Relaxed),
            tls_errors: s.tls_errors.load(Relaxed),
            connect_time_avg_us: s.connect_time_us.load(Relaxed).checked_div(s.connects.load(Relaxed)).unwrap_or(0),
            connect_time_us_sum: s.connect_time_us.load(Relaxed),
            connects: s.connects.load(Relaxed),
            conns_reused: s.conns_reused.load(Relaxed),
            conns_idle: idle as u64,
            responses_5xx: s.responses_5xx.load(Relaxed),
        }
    }
}
