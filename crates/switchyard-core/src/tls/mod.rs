//! TLS: termination with rustls (aws-lc-rs provider), TLS to backends, and reading
//! the SNI of a ClientHello for passthrough routing.
//!
//! The control plane reads the PEM files, checks them (expiry, key match,
//! names) and sends their contents; this side parses them with
//! rustls-pki-types and builds one `ServerConfig` per listener when a snapshot
//! is built. Session caches and ticket keys live in the registry, so a
//! certificate reload does not break resumption; established sessions keep
//! the certificate they started with.

pub mod client;
pub mod server;
pub mod sni;
pub mod stats;

use serde::Deserialize;

/// One certificate chain with its key, and the names it serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// Exact names (`api.example.com`) and wildcards (`*.example.com`).
    pub names: Vec<String>,
    /// The chain, leaf first, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// Where it came from (a file path), for error messages.
    #[serde(default)]
    pub source: String,
}

/// TLS termination settings of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The first is the default certificate (clients without SNI or with an unknown name).
    pub certificates: Vec<CertConfig>,
    /// Refuse clients without SNI or with an unknown name instead of serving the default.
    pub strict_sni: bool,
    /// ALPN protocols offered, in preference order.
    pub alpn: Vec<String>,
    /// `"1.2"` or `"1.3"`.
    pub min_version: String,
    /// Session tickets and a session cache.
    pub session_resumption: bool,
    pub handshake_timeout_ms: u64,
}

/// TLS from the balancer to a pool's backends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// Name sent as SNI and verified against the certificate (default: the backend IP).
    pub sni: Option<String>,
    /// CA bundle (PEM) to verify backends with.
    pub ca_pem: Option<String>,
    /// Verify the backend's certificate (default true).
    pub verify: bool,
}

/// The crypto provider every TLS object uses (aws-lc-rs: fastest RSA and ECDSA signing).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
