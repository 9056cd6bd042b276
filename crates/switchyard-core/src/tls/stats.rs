//! TLS counters of a listener (termination and SNI passthrough).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Counters, kept per listener across snapshot swaps.
#[derive(Debug, Default)]
pub struct TlsStats {
    pub handshakes: AtomicU64,
    pub resumed: AtomicU64,
    pub tls12: AtomicU64,
    pub tls13: AtomicU64,
    pub fail_timeout: AtomicU64,
    /// Strict SNI refused a client (no SNI or unknown name).
    pub fail_sni: AtomicU64,
    /// Not TLS, bad records, no common parameters, alerts.
    pub fail_protocol: AtomicU64,
    /// Passthrough: connections routed by their SNI.
    pub sni_routed: AtomicU64,
    /// Passthrough: ClientHellos that never completed in time.
    pub sni_timeout: AtomicU64,
    /// Passthrough: first bytes were not a TLS ClientHello.
    pub sni_not_tls: AtomicU64,
    /// Passthrough: ClientHello larger than the peek limit.
    pub sni_oversized: AtomicU64,
    alpn: Mutex<BTreeMap<String, u64>>,
}

impl TlsStats {
    /// Count a negotiated ALPN protocol (handshakes only, so the lock is cold).
    pub fn alpn(&self, proto: &[u8]) {
        let name = String::from_utf8_lossy(proto).into_owned();
        *self.alpn.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_default() += 1;
    }

    pub fn report(&self) -> TlsReport {
        TlsReport {
            handshakes: self.handshakes.load(Relaxed),
            resumed: self.resumed.load(Relaxed),
            tls12: self.tls12.load(Relaxed),
            tls13: self.tls13.load(Relaxed),
            failures_timeout: self.fail_timeout.load(Relaxed),
            failures_sni: self.fail_sni.load(Relaxed),
            failures_protocol: self.fail_protocol.load(Relaxed),
            alpn: self.alpn.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            sni_routed: self.sni_routed.load(Relaxed),
            sni_timeout: self.sni_timeout.load(Relaxed),
            sni_not_tls: self.sni_not_tls.load(Relaxed),
            sni_oversized: self.sni_oversized.load(Relaxed),
        }
    }
}

/// A copy of the counters.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TlsReport {
    pub handshakes: u64,
    pub resumed: u64,
    pub tls12: u64,
    pub tls13: u64,
    pub failures_timeout: u64,
    pub failures_sni: u64,
    pub failures_protocol: u64,
    pub alpn: BTreeMap<String, u64>,
    pub sni_routed: u64,
    pub sni_timeout: u64,
    pub sni_not_tls: u64,
    pub sni_oversized: u64,
}
