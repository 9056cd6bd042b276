//! Counters of a UDP listener (kept across snapshot swaps with the
//! listener's other counters).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One UDP listener's counters.
#[derive(Debug, Default)]
pub struct UdpStats {
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Flows now (every worker's).
    pub flows_active: AtomicU64,
    pub flows_created: AtomicU64,
    /// Flows ended by the idle timeout, by `responses`, or because their
    /// backend became unusable (unreachable, down, drained).
    pub flows_expired: AtomicU64,
    pub flows_answered: AtomicU64,
    pub flows_moved: AtomicU64,
    /// Datagrams dropped, by reason.
    pub dropped_empty: AtomicU64,
    pub dropped_oversized: AtomicU64,
    pub dropped_max_flows: AtomicU64,
    pub dropped_no_backend: AtomicU64,
    /// Replies that could not be sent back to the client.
    pub dropped_reply: AtomicU64,
    /// ICMP port unreachable from a backend (`ECONNREFUSED` on its socket).
    pub backend_unreachable: AtomicU64,
}

/// A UDP listener's counters, for stats and `/metrics`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UdpReport {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub flows_active: u64,
    pub flows_created: u64,
    /// Flows ended by `flow_idle_timeout`.
    pub flows_expired: u64,
    /// Flows ended after `responses` replies.
    pub flows_answered: u64,
    /// Flows whose backend became unusable (unreachable, down, drained, in
    /// maintenance): the client's next datagram went to another backend.
    pub flows_moved: u64,
    pub dropped_empty: u64,
    pub dropped_oversized: u64,
    pub dropped_max_flows: u64,
    pub dropped_no_backend: u64,
    pub dropped_reply: u64,
    pub backend_unreachable: u64,
}

impl UdpStats {
    pub fn report(&self) -> UdpReport {
        let l = |c: &AtomicU64| c.load(Relaxed);
        UdpReport {
            datagrams_in: l(&self.datagrams_in),
            datagrams_out: l(&self.datagrams_out),
            bytes_in: l(&self.bytes_in),
            bytes_out: l(&self.bytes_out),
            flows_active: l(&self.flows_active),
            flows_created: l(&self.flows_created),
            flows_expired: l(&self.flows_expired),
            flows_answered: l(&self.flows_answered),
            flows_moved: l(&self.flows_moved),
            dropped_empty: l(&self.dropped_empty),
            dropped_oversized: l(&self.dropped_oversized),
            dropped_max_flows: l(&self.dropped_max_flows),
            dropped_no_backend: l(&self.dropped_no_backend),
            dropped_reply: l(&self.dropped_reply),
            backend_unreachable: l(&self.backend_unreachable),
        }
    }
}
