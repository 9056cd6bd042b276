//! The HTTP part of the configuration the control plane sends: a listener's
//! route table and limits, and what a pool adds for HTTP (request keys,
//! sticky cookies, Host rewriting, backend keep-alive). TypeScript compiles
//! the user's routes into these tables (`ts/config/http.ts`); this side checks
//! what the data plane relies on (regexes compile, pools exist).

use serde::Deserialize;

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Bytes both ways (L4).
    #[default]
    Tcp,
    /// HTTP/1.1 and HTTP/2: each request (stream) routed and balanced on its own.
    Http,
    /// Datagrams: flows keyed by the client address, each pinned to a backend.
    Udp,
}

/// An HTTP listener's routes and limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HttpListenerConfig {
    /// First match wins; no match is a 404 from Switchyard.
    pub routes: Vec<RouteConfig>,
    /// Largest request head (request line and headers), bytes; more is a 431.
    pub max_header_bytes: u32,
    /// Most request headers; more is a 431.
    pub max_headers: u32,
    /// A client must send a whole request head within this (slowloris); else 408.
    pub header_read_timeout_ms: u64,
    /// A backend must answer with a response head within this; else 504.
    pub request_timeout_ms: u64,
    /// Add `X-Forwarded-For` (appended), `-Proto`, `-Host` and `X-Real-IP`.
    pub x_forwarded: bool,
    /// Add an RFC 7239 `Forwarded` element.
    pub forwarded: bool,
    /// Share of requests written to the access log (listeners with `access_log`), 0..=1.
    #[serde(default = "all")]
    pub access_log_sample: f64,
    /// A plain listener also serves HTTP/2 with prior knowledge (h2c): a
    /// connection that starts with the HTTP/2 preface. TLS listeners speak
    /// HTTP/2 when ALPN chose `h2`.
    #[serde(default)]
    pub h2c: bool,
    /// HTTP/2: streams a client may have open at once on one connection
    /// (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused.
    #[serde(default = "default_streams")]
    pub max_concurrent_streams: u32,
}

fn all() -> f64 {
    1.0
}

fn default_streams() -> u32 {
    crate::catalog::HTTP2_MAX_CONCURRENT_STREAMS
}

fn default_h2_connections() -> u32 {
    crate::catalog::HTTP2_CONNECTIONS_PER_BACKEND
}

fn default_h2_streams() -> u32 {
    crate::catalog::HTTP2_STREAMS_PER_CONNECTION
}

/// One route: conditions (all must hold), then where the request goes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// For stats, logs and errors (`web.routes[0]` unless the user named it).
    pub name: String,
    /// `api.example.com` (exact, case-insensitive) or `*.example.com` (any subdomain).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Methods (upper case); any when absent.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    #[serde(default)]
    pub query: Vec<ValueMatch>,
    #[serde(default)]
    pub cookies: Vec<ValueMatch>,
    /// Client address ranges (CIDRs); any when empty.
    #[serde(default)]
    pub source: Vec<String>,
    /// Where matching requests go; `None` when the route answers itself (`answer`).
    pub pool: Option<String>,
    /// Switchyard answers instead of a backend: a denial or a redirect.
    #[serde(default)]
    pub answer: Option<RouteAnswer>,
    /// A label for metrics, the access log and traces.
    #[serde(default)]
    pub tag: Option<String>,
    /// The rate class requests of this route count against, per client address (over it: 429).
    #[serde(default)]
    pub rate_class: Option<String>,
    /// Overrides the pool's key for requests of this route.
    #[serde(default)]
    pub hash_key: Option<RequestKey>,
    #[serde(default)]
    pub request_headers: HeaderOps,
    #[serde(default)]
    pub response_headers: HeaderOps,
    /// Largest request body; more is a 413.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Ask this hook before choosing a backend (see `crate::hook`).
    #[serde(default)]
    pub hook: Option<crate::hook::HookRef>,
}

/// What a route answers itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RouteAnswer {
    /// Refuse with `status` (4xx/5xx) and `body` (default: Switchyard's JSON error).
    Deny { status: u16, body: Option<String> },
    /// Redirect with `status` (301, 302, 303, 307, 308).
    Redirect { to: RedirectTarget, status: u16 },
}

/// Where a redirect points.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RedirectTarget {
    /// This exact URL.
    Location(String),
    /// This prefix (`https://new.example.com`) followed by the request's path and query.
    Prefix(String),
    /// The same host, path and query with this scheme (`https`).
    Scheme(String),
}

/// How a route matches the path (without the query).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    /// A regular expression matched against the whole path (anchored).
    Regex(String),
}

/// A named value (header, query parameter, cookie): present when neither
/// `equals` nor `regex` is given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ValueMatch {
    pub name: String,
    #[serde(default)]
    pub equals: Option<String>,
    /// Anchored regular expression.
    #[serde(default)]
    pub regex: Option<String>,
}

/// Header changes, applied in order: remove, set (replace), add (append).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HeaderOps {
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub set: Vec<HeaderPair>,
    #[serde(default)]
    pub add: Vec<HeaderPair>,
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HeaderPair {
    pub name: String,
    pub value: String,
}

/// What a request's selection key is made of (hash algorithms).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RequestKey {
    SourceIp,
    SourceIpPort,
    /// A request header's value (absent: the client IP).
    Header(String),
    /// A cookie's value (absent: the client IP).
    Cookie(String),
    /// The path, without the query.
    Path,
}

/// Sticky sessions by an inserted cookie.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    /// Cookie name.
    pub cookie: String,
    /// HMAC key: the cookie carries HMAC(secret, backend address), so it does
    /// not reveal the backend and every process with the secret reads it.
    pub secret: String,
    /// `Max-Age` in seconds; a session cookie when absent.
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

/// What a pool adds for HTTP listeners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HttpPoolConfig {
    /// The key of hash algorithms for HTTP requests (instead of `hash_key`).
    #[serde(default)]
    pub key: Option<RequestKey>,
    #[serde(default)]
    pub sticky: Option<StickyConfig>,
    /// Send this `Host` to the backends (else the client's is kept).
    #[serde(default)]
    pub host: Option<String>,
    /// Idle keep-alive connections kept per backend.
    pub max_idle_per_backend: u32,
    /// An idle backend connection is closed after this (below the backend's own keep-alive timeout).
    pub idle_timeout_ms: u64,
    /// Consecutive 5xx responses of a backend that eject it (0 = off).
    pub eject_after_5xx: u32,
    /// Eject a backend whose share of 5xx responses over a window is too high.
    #[serde(default)]
    pub error_rate: Option<ErrorRate>,
    /// Speak HTTP/2 to the backends: h2 over TLS (ALPN) with `backend_tls`,
    /// else h2c with prior knowledge. Streams are multiplexed over a few
    /// connections per backend.
    #[serde(default)]
    pub http2: bool,
    /// HTTP/2: most connections per backend (opened as streams need them).
    #[serde(default = "default_h2_connections")]
    pub http2_connections: u32,
    /// HTTP/2: streams in flight on one backend connection before another is
    /// opened (the backend's own SETTINGS limit applies too: above it h2 queues).
    #[serde(default = "default_h2_streams")]
    pub http2_streams: u32,
}

/// Passive ejection by the share of 5xx responses over a window (the
/// chapter's "more than 50 % errors"), checked when a window closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ErrorRate {
    /// Eject at this share of 5xx or more, 1..=100.
    pub percent: u32,
    pub window_ms: u64,
    /// Fewer responses in a window decide nothing.
    pub min_requests: u32,
}

impl RequestKey {
    /// Is it read from a request (so a TCP listener cannot use it)?
    pub fn needs_request(&self) -> bool {
        matches!(self, RequestKey::Header(_) | RequestKey::Cookie(_) | RequestKey::Path)
    }
}

pub use crate::rules::value::anchored;

/// A header name as `http` accepts it.
pub fn header_name(n: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name {n:?}"))
}

/// A header field as `http` accepts it.
pub fn header_pair(n: &str, v: &str) -> Result<(http::HeaderName, http::HeaderValue), String> {
    Ok((header_name(n)?, http::HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {n}: {v:?}"))?))
}
