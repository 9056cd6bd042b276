//! What a `protocol: udp` listener adds to its configuration.

use serde::Deserialize;

/// The largest UDP payload (IPv4: 65,535 − 8 − 20).
pub const MAX_DATAGRAM: usize = 65_507;

/// Flows of a UDP listener: how long one lives without a datagram, how many
/// may exist, how many replies end one, and the largest datagram taken.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UdpListenerConfig {
    /// A flow with no datagram either way for this long ends (its backend
    /// socket is closed; the client's next datagram starts a new flow).
    pub flow_idle_timeout_ms: u64,
    /// Most flows at once in the listener; a datagram that would start one
    /// more is dropped and counted.
    pub max_flows: u32,
    /// Replies after which a flow ends (nginx `proxy_responses`; 1 for DNS);
    /// 0: no limit.
    #[serde(default)]
    pub responses: u32,
    /// Largest datagram forwarded, bytes; a larger one is dropped and counted.
    pub max_datagram_bytes: u32,
}
