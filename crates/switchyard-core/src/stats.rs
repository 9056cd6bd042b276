//! Counters kept in atomics on the data plane, and the reports the control
//! plane pulls (their TypeScript types are generated from these structs).
//!
//! Counter objects live in the [`Registry`](crate::registry::Registry) keyed by
//! identity (pool and backend address, listener name), not in the snapshot,
//! so a backend that stays across a configuration update keeps its counts.

use crate::health::AdminState;
pub use crate::udp::stats::UdpReport;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Per-backend counters. `bytes_in` is what clients sent towards the backend,
/// `bytes_out` what the backend sent back (HAProxy's `bin`/`bout`).
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Connections (L4) or requests in flight (HTTP) now.
    pub active: AtomicU64,
    /// Connections (L4) or requests (HTTP) served since start.
    pub total: AtomicU64,
    /// Successful TCP connects (L4: one per client connection; HTTP: one
    /// per new keep-alive connection).
    pub connects: AtomicU64,
    /// HTTP requests sent on a pooled keep-alive connection.
    pub conns_reused: AtomicU64,
    /// HTTP responses with a 5xx status.
    pub responses_5xx: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Connects that failed (refused, unreachable, reset).
    pub connect_errors: AtomicU64,
    /// Connects that did not complete within the pool's connect timeout.
    pub connect_timeouts: AtomicU64,
    /// TLS handshakes to the backend that failed (also counted in `connect_errors`).
    pub tls_errors: AtomicU64,
    /// Sum of successful connect times, microseconds (for the average).
    pub connect_time_us: AtomicU64,
}

impl BackendStats {
    /// Record a successful connect that took `took`.
    pub fn connect_took(&self, took: Duration) {
        self.connect_time_us.fetch_add(took.as_micros() as u64, Relaxed);
        self.connects.fetch_add(1, Relaxed);
    }

    /// Record an L4 connection established in `took` (its slot in `active`
    /// was taken before connecting, see `Backend::reserve`).
    pub fn connected(&self, took: Duration) {
        self.connect_took(took);
        self.total.fetch_add(1, Relaxed);
    }
}

/// Per-listener counters.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    /// The share of connections (HTTP: requests) traced, as a threshold
    /// (see `trace::set_rate`): read once per connection or request, beside
    /// the counters it touches anyway.
    pub trace: AtomicU64,
    /// Connections closed because no backend could be reached.
    pub no_backend: AtomicU64,
    /// Connections closed because this process ran out of descriptors or
    /// memory while connecting to a backend (no backend is blamed).
    pub local_errors: AtomicU64,
    /// Failed `accept` calls (EMFILE, ENFILE, ENOBUFS...): the client waits
    /// in the backlog while the loop backs off.
    pub accept_errors: AtomicU64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Connections closed at the end of their `max_lifetime`.
    pub lifetime_ends: AtomicU64,
    /// HTTP requests no route matched (answered 404).
    pub no_route: AtomicU64,
    /// PROXY protocol headers received (listeners that expect them).
    pub proxy: ProxyCounters,
    /// Connections closed at once by the allow/deny lists, the per-source
    /// connection limit, or the per-source connection rate.
    pub refused_denied: AtomicU64,
    pub refused_source_limit: AtomicU64,
    pub refused_rate: AtomicU64,
    /// UDP listeners: datagrams, flows, drops.
    pub udp: crate::udp::stats::UdpStats,
    /// Signalled when a connection closes on a listener with
    /// `max_connections` (its accept loops wait for room).
    pub freed: tokio::sync::Notify,
    /// `connection_refused` events: at most one a second.
    refused_reports: Throttle,
    /// `accept_error` events: at most one a second.
    accept_error_reports: Throttle,
    /// `proxy_refused` events: at most one a second.
    proxy_refused_reports: Throttle,
}

/// What became of the PROXY headers a listener expected.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Relayed connections: the header's source is the client.
    pub accepted: AtomicU64,
    /// `LOCAL` headers (the sender's own health checks): the socket's addresses stay.
    pub local: AtomicU64,
    /// Closed: the source is not trusted to send a header.
    pub untrusted: AtomicU64,
    /// Closed: a malformed, oversized or missing header (the client closed first, or sent something else).
    pub invalid: AtomicU64,
    /// Closed: the whole header did not arrive in time.
    pub timeout: AtomicU64,
}

/// A report sent at most once a second, carrying how many occurrences
/// happened since the one before (thousands a second must not flood the
/// event queue).
#[derive(Debug, Default)]
struct Throttle {
    /// When the last report went out (ms since the epoch).
    at: AtomicU64,
    /// The total count at that report.
    total: AtomicU64,
}

impl Throttle {
    /// With the running `total`: `Some(occurrences since the last report)`
    /// when a report is due now.
    fn due(&self, total: u64) -> Option<u64> {
        let now = crate::events::wall_ms();
        let last = self.at.load(Relaxed);
        if now.saturating_sub(last) < 1000 || self.at.compare_exchange(last, now, Relaxed, Relaxed).is_err() {
            return None;
        }
        Some(total - self.total.swap(total, Relaxed))
    }

    /// With the running `total`: queue listener `name`'s event `kind` saying
    /// `why` and how many happened since the last one, if one is due.
    fn report(&self, total: u64, kind: &'static str, name: &str, why: std::fmt::Arguments<'_>, events: &crate::events::EventLog) {
        if let Some(since) = self.due(total) {
            events.push(crate::events::Event::new(kind, ("", name), format!("{why} ({since} since the last report)"), 0));
        }
    }
}

impl ListenerStats {
    /// Count a failed accept of listener `name`; queue an `accept_error`
    /// event unless one went out less than a second ago (a descriptor
    /// shortage fails thousands of accepts a second).
    pub fn accept_failed(&self, name: &str, e: &std::io::Error, events: &crate::events::EventLog) {
        let total = self.accept_errors.fetch_add(1, Relaxed) + 1;
        self.accept_error_reports.report(total, "accept_error", name, format_args!("accept failed: {e}"), events);
    }

    /// Count a connection refused by the listener's admission rules
    /// (`counter`: one of `refused_*`); queue a `connection_refused` event
    /// naming the source and why, at most one a second.
    pub fn refused(&self, counter: &AtomicU64, name: &str, why: std::fmt::Arguments<'_>, events: &crate::events::EventLog) {
        counter.fetch_add(1, Relaxed);
        let total = [&self.refused_denied, &self.refused_source_limit, &self.refused_rate].iter().map(|c| c.load(Relaxed)).sum();
        self.refused_reports.report(total, "connection_refused", name, why, events);
    }

    /// Count a connection closed for its PROXY header (`counter`: one of
    /// `proxy`'s); queue a `proxy_refused` event naming the source and why,
    /// at most one a second.
    pub fn proxy_refused(&self, counter: &AtomicU64, name: &str, why: std::fmt::Arguments<'_>, events: &crate::events::EventLog) {
        counter.fetch_add(1, Relaxed);
        let p = &self.proxy;
        let total = [&p.untrusted, &p.invalid, &p.timeout].iter().map(|c| c.load(Relaxed)).sum();
        self.proxy_refused_reports.report(total, "proxy_refused", name, why, events);
    }
}

/// A point-in-time copy of every counter, serialised to the control plane.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StatsReport {
    pub connections_active: u64,
    /// The engine-wide connection limit in effect (configured, or derived
    /// from the descriptor limit); at it, every listener stops accepting.
    pub max_connections: u64,
    /// Open connections per worker thread (index = worker).
    pub worker_connections: Vec<u64>,
    pub pipes_in_use: u64,
    /// The most splice pipes lent at once (HAProxy's `maxpipes`): a quarter
    /// of `max_connections`, within the descriptor limit; beyond it a
    /// connection copies instead.
    pub max_pipes: u64,
    /// Directions moved to splice(2) since start.
    pub splice_leases_total: u64,
    pub listeners: Vec<ListenerReport>,
    pub pools: Vec<PoolReport>,
    /// What updates have rebuilt since start (unchanged parts are shared).
    pub builds: BuildReport,
    /// Opt-in hooks' calls and how they ended, by hook name.
    pub hooks: Vec<crate::hook::HookReport>,
}

/// How many times each kind of table was built since start. An update
/// rebuilds only what changed: the rest of the snapshot is shared.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct BuildReport {
    /// Pools (backends, selector tables, backend TLS).
    pub pools: u64,
    /// rustls server configurations of TLS-terminating listeners.
    pub tls_configs: u64,
}

/// Build counters (see [`BuildReport`]).
#[derive(Debug, Default)]
pub struct BuildCounters {
    pub pools: AtomicU64,
    pub tls_configs: AtomicU64,
}

impl BuildCounters {
    pub fn report(&self) -> BuildReport {
        BuildReport { pools: self.pools.load(Relaxed), tls_configs: self.tls_configs.load(Relaxed) }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ListenerReport {
    pub name: String,
    pub address: String,
    pub pool: String,
    pub accepted: u64,
    pub active: u64,
    pub no_backend: u64,
    /// Clients closed because this process ran out of descriptors or memory.
    pub local_errors: u64,
    /// Failed accept calls (the clients wait in the backlog).
    pub accept_errors: u64,
    pub idle_timeouts: u64,
    /// HTTP requests no route matched (answered 404).
    pub no_route: u64,
    /// HTTP routes and their counters (empty for TCP listeners).
    pub routes: Vec<crate::http::stats::RouteReport>,
    /// PROXY protocol counters (listeners that expect a header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyReport>,
    /// Connections closed at once by `allow`/`deny`, the per-source
    /// connection limit and the per-source connection rate.
    pub refused_denied: u64,
    pub refused_source_limit: u64,
    pub refused_rate: u64,
    /// Connections closed at the end of their `max_lifetime`.
    pub lifetime_ends: u64,
    /// TLS counters (termination or SNI passthrough listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::stats::TlsReport>,
    /// UDP counters (`protocol: udp` listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpReport>,
}

/// What became of the PROXY headers a listener expected (see [`ProxyCounters`]).
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ProxyReport {
    pub accepted: u64,
    pub local: u64,
    pub untrusted: u64,
    pub invalid: u64,
    pub timeout: u64,
}

impl ProxyCounters {
    pub fn report(&self) -> ProxyReport {
        ProxyReport {
            accepted: self.accepted.load(Relaxed),
            local: self.local.load(Relaxed),
            untrusted: self.untrusted.load(Relaxed),
            invalid: self.invalid.load(Relaxed),
            timeout: self.timeout.load(Relaxed),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PoolReport {
    pub name: String,
    pub algorithm: crate::catalog::Algorithm,
    pub active: u64,
    /// Smallest and largest share of new keys/connections an available
    /// primary backend gets now (balance; 1/N each is perfect).
    pub share_min: f64,
    pub share_max: f64,
    pub backends: Vec<BackendReport>,
    /// Clients waiting for a backend slot (pools with `max_connections`).
    pub queue: QueueReport,
}

/// A pool's queue (see `crate::queue`).
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct QueueReport {
    /// Waiting now.
    pub waiting: u64,
    /// Clients that waited (served or refused) since start, and their total wait.
    pub queued: u64,
    pub wait_ms: f64,
    /// Refused after the queue timeout; refused at once (the queue was full).
    pub timeouts: u64,
    pub full: u64,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct BackendReport {
    pub address: String,
    /// Most connections (HTTP: requests in flight) at once; 0: no limit.
    pub max_connections: u64,
    pub weight: u32,
    pub backup: bool,
    /// Share of new keys/connections this backend gets with all eligible.
    pub share: f64,
    /// Operator state: ready, drain or maint.
    pub state: AdminState,
    /// Active-check verdict pushed by the control plane: up, down or unknown.
    #[cfg_attr(test, ts(type = "\"up\" | \"down\" | \"unknown\""))]
    pub health: &'static str,
    /// Passively ejected right now, and for how much longer.
    pub ejected: bool,
    pub ejection_left_ms: u64,
    /// Consecutive passive failures, and ejections in the current streak.
    pub failures: u32,
    pub ejections: u32,
    /// Would a new connection be allowed here now (state ready and healthy)?
    pub available: bool,
    pub active: u64,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub connect_timeouts: u64,
    pub tls_errors: u64,
    pub connect_time_avg_us: u64,
    /// Time spent in successful connects since start, in microseconds (with
    /// `connects`, the `_sum`/`_count` pair of a Prometheus summary).
    pub connect_time_us_sum: u64,
    /// Successful TCP connects since start.
    pub connects: u64,
    /// HTTP requests sent on a reused keep-alive connection.
    pub conns_reused: u64,
    /// Idle keep-alive connections now (HTTP).
    pub conns_idle: u64,
    /// HTTP responses with a 5xx status.
    pub responses_5xx: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventLog;

    #[test]
    fn accept_errors_are_all_counted_and_reported_at_most_once_a_second() {
        let (stats, events) = (ListenerStats::default(), EventLog::events());
        let emfile = std::io::Error::from_raw_os_error(24);
        for _ in 0..1000 {
            stats.accept_failed("front", &emfile, &events);
        }
        assert_eq!(stats.accept_errors.load(Relaxed), 1000);
        let batch = events.drain();
        assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
        let e = &batch.events[0];
        assert_eq!((e.kind, e.pool.as_str(), e.address.as_str()), ("accept_error", "", "front"));
        assert!(e.reason.contains("(1 since the last report)"), "{}", e.reason);
        // A second later the next failure reports the ones in between.
        stats.accept_error_reports.at.store(crate::events::wall_ms() - 1000, Relaxed);
        stats.accept_failed("front", &emfile, &events);
        assert!(events.drain().events[0].reason.contains("(1000 since the last report)"));
    }
}
