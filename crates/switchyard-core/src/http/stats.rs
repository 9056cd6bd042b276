//! Counters of an HTTP route (kept across snapshot swaps by the registry):
//! requests by status class, a latency histogram in Prometheus' cumulative
//! bucket form, retries, and Switchyard's own error responses.

use crate::catalog::LATENCY_BUCKETS;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// One route's counters.
#[derive(Debug, Default)]
pub struct RouteStats {
    /// By status class: 1xx..5xx (index 0..4).
    by_class: [AtomicU64; 5],
    /// Non-cumulative counts per bucket; the extra last one is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_us_sum: AtomicU64,
    retries: AtomicU64,
    /// Requests that came as HTTP/2 streams.
    http2: AtomicU64,
    /// Responses cut before their end: an HTTP/2 stream reset (by the
    /// client or the backend), a connection closed mid-body.
    resets: AtomicU64,
    /// gRPC calls by the status they ended with (0..=16).
    grpc: [AtomicU64; super::grpc::code::COUNT],
    /// TCP rules: connections forwarded.
    connections: AtomicU64,
    /// Answered by the rule itself: denied, redirected, over its rate class.
    denied: AtomicU64,
    redirected: AtomicU64,
    rate_limited: AtomicU64,
}

impl RouteStats {
    /// Count a response of `status` sent `took` after the request arrived.
    pub fn answered(&self, status: u16, took: Duration) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        let s = took.as_secs_f64();
        let b = LATENCY_BUCKETS.iter().position(|&le| s <= le).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.latency_us_sum.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// A request that came as an HTTP/2 stream.
    pub fn http2(&self) {
        self.http2.fetch_add(1, Relaxed);
    }

    /// A response cut before its end.
    pub fn reset(&self) {
        self.resets.fetch_add(1, Relaxed);
    }

    /// A gRPC call that ended with `status` (0..=16; others are not counted).
    pub fn grpc(&self, status: u32) {
        if let Some(c) = self.grpc.get(status as usize) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// A TCP rule's connection forwarded.
    pub fn connected(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    pub fn denied(&self) {
        self.denied.fetch_add(1, Relaxed);
    }

    pub fn redirected(&self) {
        self.redirected.fetch_add(1, Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }

    /// A copy for the control plane: route (or TCP rule) `name` of
    /// `listener`, forwarding to `pool` ("" when it answers itself), labelled `tag`.
    pub fn report(&self, listener: &str, name: &str, pool: &str, tag: Option<&str>) -> RouteReport {
        let mut acc = 0;
        let buckets = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Relaxed);
                acc
            })
            .collect();
        let c = |i: usize| self.by_class[i].load(Relaxed);
        RouteReport {
            listener: listener.to_owned(),
            name: name.to_owned(),
            pool: pool.to_owned(),
            tag: tag.unwrap_or_default().to_owned(),
            connections: self.connections.load(Relaxed),
            denied: self.denied.load(Relaxed),
            redirected: self.redirected.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            responses_1xx: c(0),
            responses_2xx: c(1),
            responses_3xx: c(2),
            responses_4xx: c(3),
            responses_5xx: c(4),
            latency_buckets: buckets,
            latency_us_sum: self.latency_us_sum.load(Relaxed),
            retries: self.retries.load(Relaxed),
            http2_requests: self.http2.load(Relaxed),
            resets: self.resets.load(Relaxed),
            grpc_statuses: self.grpc.iter().map(|c| c.load(Relaxed)).collect(),
        }
    }
}

/// A route's (or a TCP rule's) counters, for stats and `/metrics`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RouteReport {
    pub listener: String,
    pub name: String,
    /// "" for a route that answers itself (deny, redirect) or a TCP rule that denies.
    pub pool: String,
    /// The rule's tag ("" when it has none).
    pub tag: String,
    /// TCP rules: connections forwarded.
    pub connections: u64,
    /// Requests (connections) the route (rule) denied, redirected, or refused over its rate class.
    pub denied: u64,
    pub redirected: u64,
    pub rate_limited: u64,
    pub responses_1xx: u64,
    pub responses_2xx: u64,
    pub responses_3xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`](crate::catalog::LATENCY_BUCKETS) seconds, then +Inf (the total).
    pub latency_buckets: Vec<u64>,
    /// Sum of the latencies, microseconds.
    pub latency_us_sum: u64,
    /// Requests sent again to another backend.
    pub retries: u64,
    /// Requests that came as HTTP/2 streams.
    pub http2_requests: u64,
    /// Responses cut before their end: an HTTP/2 stream reset (by the client
    /// or the backend), a connection closed mid-body.
    pub resets: u64,
    /// gRPC calls by the status they ended with: index = code (0 OK … 16 UNAUTHENTICATED).
    pub grpc_statuses: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_cumulative_buckets() {
        let s = RouteStats::default();
        s.answered(200, Duration::from_micros(300));
        s.answered(503, Duration::from_millis(30));
        s.answered(204, Duration::from_secs(9));
        let r = s.report("l", "r", "p", None);
        assert_eq!((r.responses_2xx, r.responses_5xx), (2, 1));
        assert_eq!(r.latency_buckets[0], 1); // ≤ 0.5 ms
        assert_eq!(r.latency_buckets[6], 2); // ≤ 50 ms
        assert_eq!(*r.latency_buckets.last().unwrap(), 3); // +Inf
    }
}
