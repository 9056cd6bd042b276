//! The access log of listeners with `access_log: true`: one record per
//! client connection (TCP) or per request (HTTP), queued in a bounded queue the control
//! plane pulls and writes out (JSON lines). Listeners without it pay
//! nothing: no clock read, no allocation.

use crate::events::Bounded;
use serde::Serialize;

/// Most records held between two pulls (about 2 MB); beyond, records are
/// dropped and counted rather than grow memory.
pub const CAPACITY: usize = 16 * 1024;

/// How a client connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Both directions reached end of stream.
    Completed,
    /// No byte moved either way for the listener's idle timeout.
    IdleTimeout,
    /// Closed by a drain deadline, `on_down: close` or the engine's close.
    Cancelled,
    /// A socket error on either side.
    Error,
    /// The TLS handshake or the ClientHello peek failed (or the client left).
    FrontendFailed,
    /// No backend could be reached.
    NoBackend,
    /// This process ran out of descriptors or memory connecting to a backend.
    LocalError,
    /// The TLS handshake with the backend failed.
    BackendTlsFailed,
    /// Refused by the listener's allow/deny lists or per-source limits.
    Refused,
    /// Closed at the end of its `max_lifetime`.
    Lifetime,
    /// Handed over to a new process (an upgrade), which continues it.
    HandedOver,
}

/// One client connection, as the access log records it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AccessRecord {
    /// When the connection was accepted, ms since the Unix epoch.
    pub time_ms: u64,
    pub listener: String,
    /// The client's `ip:port`.
    pub client: String,
    /// The pool it was routed to ("" when it never got that far).
    pub pool: String,
    /// The backend that served it ("" when none did).
    pub backend: String,
    /// From accept to close.
    pub duration_ms: u64,
    /// Bytes read from the client / from the backend.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub ended: Ended,
    /// The policy rule of a TCP listener that decided (HTTP: `http.route`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub rule: Option<String>,
    /// The tag of the rule or route that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tag: Option<String>,
    /// The request, on HTTP listeners (one record per request there).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub http: Option<HttpRecord>,
    /// The flow's datagrams, on UDP listeners (one record per flow there:
    /// `ended` is `idle_timeout`, `completed` after `udp.responses` replies,
    /// `error` when its backend became unusable, `cancelled` when the
    /// listener stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub udp: Option<UdpRecord>,
}

/// What a UDP flow adds to its access-log record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UdpRecord {
    /// Datagrams from the client / replies from the backend.
    pub datagrams_in: u64,
    pub datagrams_out: u64,
}

/// What an HTTP request adds to its access-log record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HttpRecord {
    /// The route that matched ("" for a 404 from Switchyard).
    pub route: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// From the request's arrival to the response head, ms (`duration_ms`
    /// runs until the response body has been relayed).
    pub head_ms: u64,
}

/// A batch handed to the control plane.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AccessBatch {
    pub records: Vec<AccessRecord>,
    /// Records dropped since the previous pull because the queue was full.
    pub dropped: u64,
}

/// The access log's queue ([`CAPACITY`] records).
pub type AccessLog = Bounded<AccessRecord>;

impl AccessLog {
    /// An empty access log.
    pub fn records() -> Self {
        Bounded::new(CAPACITY)
    }

    /// Take everything queued, as the batch the control plane pulls.
    pub fn drain(&self) -> AccessBatch {
        let (records, dropped) = self.take();
        AccessBatch { records, dropped }
    }
}
