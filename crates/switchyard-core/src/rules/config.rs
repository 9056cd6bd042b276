//! The rule tables the control plane sends for TCP listeners, and the rate
//! classes rules of either kind may name.

use serde::Deserialize;

/// Most rules a TCP listener may have: an index fits a `u16` below `l4::NO_RULE`.
pub const MAX_RULES: usize = 10_000;

/// One rule of a TCP listener: every condition given must hold (a list
/// holds when any of its entries does); the first matching rule decides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct L4RuleConfig {
    /// For stats, logs, traces and errors.
    pub name: String,
    /// Client address ranges (`10.0.0.0/8`, a bare address); the PROXY header's source when the listener expects one.
    #[serde(default)]
    pub source: Vec<String>,
    /// Server names: `api.example.com` (exact, case-insensitive) or `*.example.com` (one or more labels).
    /// The ClientHello's on passthrough listeners, the handshake's on TLS-terminating ones.
    #[serde(default)]
    pub sni: Vec<String>,
    /// Destination ports: the PROXY header's destination, else the listening socket's port.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// PROXY protocol v2 TLVs the header must carry (all of them).
    #[serde(default)]
    pub tlvs: Vec<TlvMatch>,
    /// What happens to a matching connection.
    pub action: L4Action,
    /// The selection key of hash algorithms for matching connections (default: the pool's).
    #[serde(default)]
    pub hash_key: Option<L4Key>,
    /// A label for metrics, the access log and traces.
    #[serde(default)]
    pub tag: Option<String>,
    /// A rate class matching connections count against (per client address).
    #[serde(default)]
    pub rate_class: Option<String>,
    /// Ask this hook (JavaScript) before connecting: it may choose another pool
    /// the listener routes to, close the connection, or set the key.
    #[serde(default)]
    pub hook: Option<crate::hook::HookRef>,
}

/// What a TCP rule does with a connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum L4Action {
    /// Forward to this pool.
    Pool(String),
    /// Close at once; nothing reaches a backend.
    Deny,
}

/// A PROXY v2 TLV condition: present when neither `equals` nor `regex` is given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TlvMatch {
    pub tlv: TlvKind,
    /// The value (as text; bytes that are not UTF-8 never equal).
    #[serde(default)]
    pub equals: Option<String>,
    /// Anchored regular expression over the value as text.
    #[serde(default)]
    pub regex: Option<String>,
}

/// Which TLV a condition or key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TlvKind {
    /// PP2_TYPE_ALPN (0x01).
    Alpn,
    /// PP2_TYPE_AUTHORITY (0x02), the client's SNI as the sender saw it.
    Authority,
    /// PP2_TYPE_UNIQUE_ID (0x05).
    UniqueId,
    /// Any other type by number (custom types are 0xE0–0xEF).
    Type(u8),
}

/// What a TCP rule keys hash algorithms by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum L4Key {
    SourceIp,
    SourceIpPort,
    /// The server name (absent: the client IP).
    Sni,
    /// A TLV's value (absent: the client IP).
    Tlv(TlvKind),
}

/// A named rate: `limit` connections (TCP rules) or requests (HTTP routes)
/// per `per_ms`, with bursts up to `limit`: per client address, or for all
/// of the class's traffic together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RateClassConfig {
    pub name: String,
    pub limit: u32,
    pub per_ms: u64,
    #[serde(default)]
    pub by: RateBy,
}

/// What a rate class counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RateBy {
    /// Each client address has its own bucket.
    #[default]
    Source,
    /// One bucket for everything the class's rules match (a global limit).
    All,
}
