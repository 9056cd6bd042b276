//! One HTTP request: route it, choose a backend (sticky cookie, key, the
//! pool's algorithm), send it over a pooled keep-alive connection, and relay
//! the response.
//!
//! Retry contract: a request that never left (connect failure, or hyper
//! hands it back from a stale keep-alive connection) goes to the next
//! backend whatever its method; after a 502/503 *response* only idempotent
//! requests without a body are sent again. A body that reached a backend is
//! never sent twice. Attempts follow the pool's budget (`retries + 1` per
//! tier, see `Pool::next_attempt`). gRPC calls (POST with a body) are thus
//! retried only when they cannot have started, as gRPC requires.
//!
//! HTTP/2: a client's streams arrive here one by one, each routed and
//! balanced on its own; HTTP/2 pools send them as streams over a few shared
//! connections per backend (`multiplex`), HTTP/1.1 pools over keep-alive
//! connections.

use super::answer;
use super::config::RouteAnswer;
use super::grpc;
use super::headers::{self, Forwarding};
use super::logged::{self, Pending};
use super::multiplex::Found;
use super::pool::{BackendConn, Sender};
use super::respond::{self, Refusal};
use super::route::Route as GenericRoute;
use super::stats::RouteStats;
use super::{Body, BoxError, InFlight};
use crate::backend::Backend;
use crate::events::EventLog;
use crate::health::Failure;
use crate::hook::{Hook, HookHeader, HookRequest};
use crate::pipeline::upstream::passive_failure;
use crate::select::{bytes_key, key_hash, PickContext};
use crate::shared::Shared;
use crate::snapshot::{Listener, Pool};
use crate::trace::{self, AttemptError, Attempts, Decision, TraceKind, TraceOutcome};
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, SET_COOKIE, TE, UPGRADE};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// A route of the published snapshot.
type Route = GenericRoute<Arc<Pool>>;

/// How long a pooled connection may take to be ready for its next request.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What every request of one client connection shares.
pub struct Conn {
    pub shared: Arc<Shared>,
    pub listener: Arc<Listener>,
    /// The listener's name (access log).
    pub name: Arc<str>,
    pub client: SocketAddr,
    /// TLS terminated on this listener (`https`, `Secure` cookies).
    pub tls: bool,
    /// Requests whose response has not been relayed whole yet (`serve`
    /// parks an idle connection only at 0).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// The client connection's byte counts and flush state.
    pub io: IoState,
}

/// What the connection's I/O tells the rest: bytes each way (idle watch,
/// access log), whether written bytes still await a flush, and the bytes
/// read when the last response ended (`settled`: more since then means a
/// head is arriving).
#[derive(Debug, Default)]
pub struct IoState {
    pub(super) read: AtomicU64,
    pub(super) written: AtomicU64,
    pub(super) unflushed: AtomicBool,
    pub(super) settled: AtomicU64,
    /// No byte moved for a whole tick of `serve`'s watch (the connection may park).
    pub(super) quiet: AtomicBool,
}

/// Handle one request; every outcome is a response (hyper's service contract).
pub async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let guard = InService::new(Arc::clone(&conn));
    Ok(respond(&conn, req).await.map(|b| guard.wrap(b)))
}

/// Route and proxy one request, or answer it.
async fn respond(conn: &Arc<Conn>, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let l = &conn.listener;
    let tables = l.http.as_ref().expect("an http listener has tables");
    // The access-log record, begun only when the listener keeps one and the request is sampled.
    let log = (l.access_log && logged::sampled(tables.config.access_log_sample)).then(|| Pending {
        shared: Arc::clone(&conn.shared),
        start,
        started_ms: crate::events::wall_ms(),
        listener: Arc::clone(&conn.name),
        client: conn.client,
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        bytes_in: Arc::default(),
    });
    let grpc = grpc::is_grpc(req.headers());
    let h1 = req.version() < http::Version::HTTP_2;
    let Some(route) = tables.routes.find(&req, conn.client.ip()) else {
        l.stats.no_route.fetch_add(1, Relaxed);
        let r = Refusal::NoRoute.answer(grpc);
        return match log {
            Some(p) => r.map(|b| p.respond(b, StatusCode::NOT_FOUND, None, None)),
            None => r,
        };
    };
    if req.version() == http::Version::HTTP_2 {
        route.stats.http2();
    }
    // Over its rate class: refused before anything else (a hook is not asked).
    let limited = route.rate.as_ref().filter(|r| !r.admit(conn.client.ip()));
    // An opt-in hook decides next, for routes that forward; a route without one
    // skips it (no allocation, no call).
    let chosen = match (&route.hook, limited, &route.answer) {
        (Some(h), None, None) => Box::pin(decide(conn, route, h, &req)).await,
        _ => Ok(Chosen::default()),
    };
    let pool = match &chosen {
        Ok(Chosen { pool: Some(p), .. }) => Some(p),
        _ => route.pool.as_ref(),
    };
    let (mut response, backend) = match (limited, &route.answer, pool, &chosen) {
        (Some(rate), ..) => {
            route.stats.rate_limited();
            ruled(conn, route, TraceOutcome::RateLimited, (answer::rate_limited(&rate.name, rate.retry_after_s(), grpc), None))
        }
        (None, Some(a), ..) => {
            let outcome = match a {
                RouteAnswer::Deny { .. } => (route.stats.denied(), TraceOutcome::Denied).1,
                RouteAnswer::Redirect { .. } => (route.stats.redirected(), TraceOutcome::Redirected).1,
            };
            // A gRPC client reads a denial as a gRPC status (PERMISSION_DENIED), not an HTTP error.
            let response = match a {
                RouteAnswer::Deny { status, .. } if grpc => {
                    Refusal::Denied(StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN)).answer(true)
                }
                _ => answer::respond(a, &route.name, &req, conn.tls),
            };
            ruled(conn, route, outcome, (response, None))
        }
        (None, None, _, Err(refusal)) => {
            route.stats.denied();
            if grpc {
                route.stats.grpc(refusal.grpc_status());
            }
            ruled(conn, route, TraceOutcome::Denied, (refusal.answer(grpc), None))
        }
        // Boxed: hyper moves a request's future whole (into its stream task for HTTP/2), and this
        // one is kilobytes; boxed, it is written once, where it runs.
        (None, None, Some(pool), Ok(c)) => match Box::pin(proxy_traced(conn, route, pool, c.key, req, log.as_ref(), grpc)).await {
            Ok(answered) => answered,
            Err((refusal, backend)) => {
                if grpc {
                    route.stats.grpc(refusal.grpc_status());
                }
                (refusal.answer(grpc), backend)
            }
        },
        // (`EngineConfig::check` refuses a route with neither a pool nor an answer.)
        (None, None, None, Ok(_)) => (Refusal::NoRoute.answer(grpc), None),
    };
    let status = response.status();
    route.stats.answered(status.as_u16(), start.elapsed());
    route.response_ops.apply(response.headers_mut());
    // Draining (an upgrade's old process, or a close): an HTTP/1 client is told to
    // reconnect after this response, so its next request goes to whoever accepts
    // now instead of meeting a closed connection. (HTTP/2 gets a GOAWAY, see `serve`.)
    if h1 && conn.shared.http_drain.is_cancelled() && status != StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    match log {
        Some(p) => {
            let pool = pool.map_or("", |p| p.name.as_str());
            let tag = chosen.as_ref().ok().and_then(|c| c.tag.as_deref()).or(route.tag.as_deref());
            response.map(|b| p.respond(b, status, Some((&route.name, pool, tag)), backend))
        }
        None => response,
    }
}

/// One request counted in `Conn::in_flight` until its response body is done
/// with (relayed whole, or dropped).
struct InService(Arc<Conn>);

impl InService {
    fn new(conn: Arc<Conn>) -> InService {
        conn.in_flight.fetch_add(1, Relaxed);
        InService(conn)
    }

    /// Hold the count in the response's body.
    fn wrap(self, body: Body) -> Body {
        Guarded { inner: body, _service: self }.boxed()
    }
}

impl Drop for InService {
    fn drop(&mut self) {
        let io = &self.0.io;
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            io.settled.store(io.read(), Relaxed);
        }
    }
}

/// A body that keeps its request counted in flight while it lives.
struct Guarded {
    inner: Body,
    _service: InService,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The backend that answered (or was tried last), if any.
type Answered = (Response<Body>, Option<SocketAddr>);

/// Why Switchyard answers a request itself, and the backend tried last.
type Refused = (Refusal, Option<SocketAddr>);

/// A request `route` answered itself (`outcome`): traced when sampled; `answered` passes through.
fn ruled(conn: &Conn, route: &Route, outcome: TraceOutcome, answered: Answered) -> Answered {
    if trace::sampled(&conn.listener.stats.trace) {
        let status = Some(answered.0.status().as_u16());
        trace::record_ruled(&conn.shared.traces, &conn.name, TraceKind::Http, conn.client, &route.name, outcome, status);
    }
    answered
}

/// [`proxy`], and the trace of its decision when the request is sampled.
async fn proxy_traced(
    conn: &Conn,
    route: &Route,
    pool: &Arc<Pool>,
    key: Option<u64>,
    req: Request<Incoming>,
    log: Option<&Pending>,
    grpc: bool,
) -> Result<Answered, Refused> {
    let mut attempts = Attempts::new(trace::sampled(&conn.listener.stats.trace));
    let result = proxy(conn, route, (pool, key), req, log, grpc, &mut attempts).await;
    if attempts.on() {
        record_trace(conn, route, pool, attempts, &result);
    }
    result
}

/// Keep the trace of a sampled request's decision.
fn record_trace(conn: &Conn, route: &Route, pool: &Pool, attempts: Attempts, result: &Result<Answered, Refused>) {
    let (backend, outcome, status) = match result {
        Ok((r, b)) => (*b, TraceOutcome::Answered, r.status()),
        Err((refusal, b)) => {
            let outcome = match refusal {
                Refusal::NoBackend => TraceOutcome::NoBackend,
                Refusal::QueueRefused => TraceOutcome::QueueRefused,
                Refusal::Timeout => TraceOutcome::Timeout,
                Refusal::BadGateway if b.is_some() => TraceOutcome::BadGateway,
                _ => TraceOutcome::Refused,
            };
            (*b, outcome, refusal.status())
        }
    };
    let winner = backend.and_then(|a| pool.backends.iter().position(|b| b.addr == a));
    let d = Decision { listener: &conn.name, kind: TraceKind::Http, client: conn.client, rule: Some(&route.name), pool };
    trace::record(&conn.shared.traces, d, attempts, winner, outcome, Some(status.as_u16()));
}

/// Route, pick, send, retry; the response and the backend that gave it, or
/// why Switchyard answers itself (in JSON, or as a gRPC status for `grpc`).
/// `pool` is the route's or the one its hook chose; `key`, a key its hook chose.
/// A traced request collects its attempts in `attempts`.
async fn proxy(
    conn: &Conn,
    route: &Route,
    (pool, key): (&Arc<Pool>, Option<u64>),
    mut req: Request<Incoming>,
    log: Option<&Pending>,
    grpc: bool,
    attempts: &mut Attempts,
) -> Result<Answered, Refused> {
    let cfg = &conn.listener.http.as_ref().expect("http listener").config;
    // A gRPC call's deadline is its request timeout.
    let wait = grpc::timeout(req.headers()).filter(|_| grpc).unwrap_or(std::time::Duration::from_millis(cfg.request_timeout_ms));
    // 413 before anything is read or sent, when the length is declared.
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let (Some(max), Some(len)) = (route.max_body, declared) {
        if len > max {
            return Err((Refusal::TooLarge, None));
        }
    }
    let upgrade = headers::is_upgrade(req.headers());
    if upgrade && pool.http.http2.is_some() {
        // HTTP/2 backends cannot take an HTTP/1.1 upgrade (WebSocket) over a stream.
        return Err((Refusal::BadGateway, None));
    }
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let ctx = PickContext { key: key.unwrap_or_else(|| request_key(conn, route, pool, &req)), client: conn.client };
    let pinned = pool.http.sticky.as_ref().and_then(|s| s.pinned(req.headers()));
    let (mut head, body) = req.into_parts();
    prepare(conn, route, pool, cfg, &mut head, upgrade);
    let bodiless = body.is_end_stream();
    // A body-less idempotent request may be sent again after a 502/503:
    // only then is its head copied for each attempt.
    let resendable = bodiless && is_idempotent(&head.method);
    let mut parts = Some(head);
    let body = limit(body, route.max_body);
    let mut body = Some(match log {
        Some(p) => p.count_request(body),
        None => body,
    });
    let mut tried: Vec<usize> = Vec::with_capacity(4);
    let mut pin = pinned.filter(|&i| pool.backends[i].keeps_sessions());
    (attempts.key, attempts.pinned) = (ctx.key, pin);
    loop {
        let next = pin.take().or_else(|| pool.next_attempt(&ctx, &tried));
        let Some(i) = next else {
            // Only full backends left: wait in the pool's queue (HAProxy maxconn/maxqueue).
            if pool.waits_for_room(&tried) {
                match Box::pin(pool.wait_for_room(&tried)).await {
                    Ok(()) => continue,
                    Err(_) => return Err((Refusal::QueueRefused, None)),
                }
            }
            return Err((Refusal::NoBackend, None));
        };
        // The slot first (requests in flight per backend); full since the pick: pick again.
        let Some(in_flight) = InFlight::reserve(Arc::clone(pool), i) else { continue };
        tried.push(i);
        attempts.tried(i);
        let b = &pool.backends[i];
        let mut tx = match checkout_or_connect(pool, i, upgrade, conn).await {
            Ok(tx) => tx,
            Err(e) => {
                attempts.failed(i, e);
                continue; // connect failed: counted, fed to passive detection
            }
        };
        if tried.len() > 1 {
            route.stats.retried();
        }
        let head = if resendable { parts.clone() } else { parts.take() };
        let out = Request::from_parts(head.expect("a head while attempts remain"), body.take().unwrap_or_else(respond::empty));
        b.stats.total.fetch_add(1, Relaxed);
        let sent = tokio::time::timeout(wait, tx.send(out)).await;
        let response = match sent {
            Err(_) => return Err((Refusal::Timeout, Some(b.addr))),
            Ok(Ok(r)) => r,
            Ok(Err(mut e)) => match e.take_message() {
                // Never written: another connection may take it, body and all.
                Some(back) => {
                    let (head, b) = back.into_parts();
                    (parts, body) = (Some(head), Some(b));
                    attempts.failed(i, AttemptError::Stale);
                    continue;
                }
                None => {
                    passive_failure(pool, b, Failure::ResetBeforeFirstByte, &conn.shared.events);
                    if resendable {
                        if let Some(j) = pool.next_attempt(&ctx, &tried) {
                            attempts.failed(i, AttemptError::ClosedEarly);
                            pin = Some(j);
                            continue;
                        }
                    }
                    return Err((Refusal::BadGateway, Some(b.addr)));
                }
            },
        };
        let status = response.status();
        // A gRPC answer is judged by the status it ends with: at once for a
        // Trailers-Only answer, else when its trailers pass (see `Relayed`).
        let grpc_answer = grpc && status == StatusCode::OK && grpc::is_grpc(response.headers());
        let ended = grpc_answer.then(|| grpc::status(response.headers())).flatten();
        if let Some(c) = ended {
            route.stats.grpc(c);
            judge(pool, b, grpc::is_failure(c), &conn.shared.events);
        } else if !grpc_answer {
            judge(pool, b, status.is_server_error(), &conn.shared.events);
        }
        if status.is_server_error() {
            b.stats.responses_5xx.fetch_add(1, Relaxed);
            // Another backend may answer better; with none left, this answer goes out.
            if matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE) && resendable {
                if let Some(j) = pool.next_attempt(&ctx, &tried) {
                    attempts.failed(i, AttemptError::Status(status.as_u16()));
                    pin = Some(j);
                    continue;
                }
            }
        }
        let mut response = if status == StatusCode::SWITCHING_PROTOCOLS {
            match (client_upgrade, tx) {
                (Some(on), BackendConn::H1(_)) => tunnel(response, on, in_flight),
                _ => return Err((Refusal::BadGateway, Some(b.addr))),
            }
        } else {
            let watch = (grpc_answer && ended.is_none()).then(|| Arc::clone(&conn.shared));
            relay(response, tx, in_flight, upgrade, Arc::clone(&route.stats), watch)
        };
        if let Some(s) = &pool.http.sticky {
            if pinned != Some(i) {
                response.headers_mut().append(SET_COOKIE, s.set_cookie(i, conn.tls));
            }
        }
        return Ok((response, Some(b.addr)));
    }
}

/// What a route's hook chose for one request (nothing: the route's own pool and key).
#[derive(Default)]
struct Chosen {
    pool: Option<Arc<Pool>>,
    key: Option<u64>,
    /// The hook's tag, for the access log (else the route's).
    tag: Option<String>,
}

/// Ask the route's hook about this request: a pool (one that exists and can
/// take HTTP requests, else the hook's fallback), a selection key, or a
/// refusal with its status.
async fn decide(conn: &Conn, route: &Route, hook: &Hook, req: &Request<Incoming>) -> Result<Chosen, Refusal> {
    let snapshot = conn.shared.snapshot.load_full();
    // A pool that writes PROXY headers serves tcp listeners only (see `config::check_http_listener`).
    let find = |name: &str| snapshot.pools.iter().find(|p| p.name == name && p.config.proxy_protocol.is_none());
    let request = hook_request(conn, route, req);
    let (d, _) = conn.shared.hooks.ask_with(hook, request, |d| d.pool.as_deref().is_none_or(|p| find(p).is_some())).await;
    if let Some(status) = d.deny {
        return Err(Refusal::Denied(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN)));
    }
    Ok(Chosen { pool: d.pool.as_deref().and_then(find).cloned(), key: d.hash_key.map(|k| bytes_key(k.as_bytes())), tag: d.tag })
}

/// What a hook is told about an HTTP request.
fn hook_request(conn: &Conn, route: &Route, req: &Request<Incoming>) -> HookRequest {
    let header = |(n, v): (&http::HeaderName, &HeaderValue)| HookHeader {
        name: n.as_str().to_owned(),
        value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
    };
    HookRequest {
        listener: conn.name.to_string(),
        rule: route.name.to_string(),
        client: conn.client.to_string(),
        method: Some(req.method().to_string()),
        host: super::route::request_host(req.uri(), req.headers()).map(str::to_owned),
        path: Some(req.uri().path().to_owned()),
        query: req.uri().query().map(str::to_owned),
        headers: req.headers().iter().take(crate::hook::MAX_HEADERS).map(header).collect(),
        ..HookRequest::default()
    }
}

/// Passive health of one answer of backend `b`: a failure (a 5xx, a gRPC
/// status such as UNAVAILABLE) counts toward ejection, anything else ends a
/// streak; both feed the error-rate window.
fn judge(pool: &Pool, b: &Backend, failed: bool, events: &EventLog) {
    if let Some(rate) = &pool.http.error_rate {
        b.health.record_rate(failed, rate, &pool.passive, || pool.may_eject(b), events, (&pool.name, b.addr));
    }
    if failed {
        let addr = b.addr.to_string();
        b.health.record_5xx(pool.http.eject_after_5xx, &pool.passive, || pool.may_eject(b), events, (&pool.name, &addr));
    } else {
        b.health.status_ok();
    }
}

/// GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 §9.2.2).
fn is_idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// The selection key of a request: the route's key, else the pool's HTTP
/// key, else the pool's L4 key of the client address (0 when unkeyed).
fn request_key(conn: &Conn, route: &Route, pool: &Pool, req: &Request<Incoming>) -> u64 {
    use super::config::RequestKey;
    use crate::catalog::HashKey;
    let Some(key) = route.key.as_ref().or(pool.http.key.as_ref()) else {
        return pool.key_of(conn.client);
    };
    let by_ip = || key_hash(conn.client, HashKey::SourceIp);
    match key {
        RequestKey::SourceIp => by_ip(),
        RequestKey::SourceIpPort => key_hash(conn.client, HashKey::SourceIpPort),
        RequestKey::Header(n) => req.headers().get(n.as_str()).map_or_else(by_ip, |v| bytes_key(v.as_bytes())),
        RequestKey::Cookie(n) => super::route::cookie(req.headers(), n).map_or_else(by_ip, |v| bytes_key(v.as_bytes())),
        RequestKey::Path => bytes_key(req.uri().path().as_bytes()),
    }
}

/// Turn the client's request head into the backend's: origin-form target and
/// HTTP/1.1 (or for HTTP/2 pools the absolute target and HTTP/2), hop-by-hop fields out, forwarding fields and the route's
/// changes in, Host kept or rewritten; an upgrade keeps its two fields.
fn prepare(conn: &Conn, route: &Route, pool: &Pool, cfg: &crate::config::HttpListenerConfig, parts: &mut Parts, upgrade: bool) {
    let upgrade_to = if upgrade { parts.headers.get(UPGRADE).cloned() } else { None };
    // `TE: trailers` is how gRPC detects a proxy that would drop trailers; an
    // HTTP/2 backend gets it (an HTTP/1.1 hop would need `Connection: TE`).
    let te_trailers = pool.http.http2.is_some()
        && parts
            .headers
            .get_all(TE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers"))));
    let client_host = parts
        .headers
        .get(http::header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    headers::strip_hop_by_hop(&mut parts.headers);
    let f = Forwarding {
        client: conn.client,
        proto: if conn.tls { "https" } else { "http" },
        host: client_host.as_ref(),
        x_forwarded: cfg.x_forwarded,
        forwarded: cfg.forwarded,
    };
    headers::add_forwarding(&mut parts.headers, &f);
    match (&pool.http.host, &client_host) {
        (Some(h), _) => headers::set_host(&mut parts.headers, h),
        (None, Some(h)) => headers::set_host(&mut parts.headers, h),
        (None, None) => {}
    }
    route.request_ops.apply(&mut parts.headers);
    if let Some(u) = upgrade_to {
        parts.headers.insert(UPGRADE, u);
        parts.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if pool.http.http2.is_some() {
        // HTTP/2 carries the target as :scheme, :authority and :path (RFC 9113 §8.3.1);
        // the Host field becomes :authority.
        let scheme = if pool.backend_tls.is_some() { "https" } else { "http" };
        let authority =
            parts.headers.remove(HOST).and_then(|h| h.to_str().ok().map(str::to_owned)).unwrap_or_else(|| "localhost".to_owned());
        parts.uri = Uri::try_from(format!("{scheme}://{authority}{pq}")).unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = http::Version::HTTP_2;
        if te_trailers {
            parts.headers.insert(TE, HeaderValue::from_static("trailers"));
        }
    } else {
        parts.uri = Uri::try_from(pq).unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = http::Version::HTTP_11;
    }
}

/// The client's body, capped at the route's limit (a chunked body that
/// exceeds it fails mid-stream: the backend sees an aborted request).
fn limit(body: Incoming, max: Option<u64>) -> Body {
    match max {
        Some(m) => http_body_util::Limited::new(body, m as usize).boxed(),
        None => body.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
    }
}

/// A fresh pooled connection to backend `i`, or a new one (an upgrade always
/// gets its own); for HTTP/2 pools a stream on a shared connection.
/// `Err` when connecting failed (counted and reported), saying how.
async fn checkout_or_connect(pool: &Pool, i: usize, upgrade: bool, conn: &Conn) -> Result<BackendConn, AttemptError> {
    let b = &pool.backends[i];
    let mut opening = None;
    if let Some(h2) = pool.http.http2 {
        let conns = &pool.http.idle[i].h2;
        while opening.is_none() {
            let wake = conns.opened();
            match conns.lease(h2.streams, h2.connections) {
                Found::Lease(l) => {
                    b.stats.conns_reused.fetch_add(1, Relaxed);
                    return Ok(BackendConn::H2(l));
                }
                Found::Open(o) => opening = Some(o),
                // Another request is opening the last connection allowed: it will have room.
                Found::Wait => {
                    if tokio::time::timeout(pool.connect_timeout, wake).await.is_err() {
                        return Err(AttemptError::Busy);
                    }
                }
            }
        }
    } else if !upgrade {
        while let Some(mut tx) = pool.http.idle[i].checkout() {
            // Ready at once, or as soon as its task has finished the previous exchange.
            if matches!(tokio::time::timeout(READY_WAIT, tx.ready()).await, Ok(Ok(()))) {
                b.stats.conns_reused.fetch_add(1, Relaxed);
                return Ok(BackendConn::H1(tx));
            }
        }
    }
    // Boxed: connecting (and a TLS handshake) is most of this future's size, and a request's
    // future is moved whole into hyper's stream task; most requests reuse a connection.
    Box::pin(connect(pool, i, conn, opening)).await
}

/// A new connection to backend `i` (for HTTP/2 pools, the one `opening` allows).
async fn connect(pool: &Pool, i: usize, conn: &Conn, opening: Option<super::multiplex::Opening<'_>>) -> Result<BackendConn, AttemptError> {
    let b = &pool.backends[i];
    let start = Instant::now();
    let stream = match tokio::time::timeout(pool.connect_timeout, crate::net::connect(b.addr, &[])).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if crate::net::is_local_exhaustion(&e) => return Err(AttemptError::Local(e)),
        Ok(Err(e)) => {
            b.stats.connect_errors.fetch_add(1, Relaxed);
            passive_failure(pool, b, Failure::ConnectRefused, &conn.shared.events);
            return Err(AttemptError::Connect(e));
        }
        Err(_) => {
            b.stats.connect_timeouts.fetch_add(1, Relaxed);
            passive_failure(pool, b, Failure::ConnectTimeout, &conn.shared.events);
            return Err(AttemptError::ConnectTimeout);
        }
    };
    b.stats.connect_took(start.elapsed());
    b.health.record_success();
    let io = match &pool.backend_tls {
        None => Either::Left(stream),
        Some(t) => Either::Right(Box::new(
            crate::pipeline::upstream::backend_handshake(t, pool, b, stream, &conn.shared.events).await.ok_or(AttemptError::Tls)?,
        )),
    };
    match opening {
        Some(o) => {
            let h2 = handshake_h2(io, b).await.ok_or(AttemptError::Handshake)?;
            Ok(BackendConn::H2(pool.http.idle[i].h2.add(o, h2, pool.http.idle_timeout)))
        }
        None => handshake(io, b).await.map(BackendConn::H1).ok_or(AttemptError::Handshake),
    }
}

/// A backend connection: plain, or TLS.
type BackendIo = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// hyper's client handshake over `io`; its connection task runs until the
/// sender is dropped, the backend closes, or the backend's kill token fires.
async fn handshake(io: BackendIo, b: &Backend) -> Option<Sender> {
    let (tx, connection) = hyper::client::conn::http1::Builder::new().handshake::<_, Body>(TokioIo::new(io)).await.ok()?;
    let kill = b.health.kill_token();
    tokio::spawn(async move {
        tokio::select! {
            _ = connection.with_upgrades() => {}
            _ = kill.cancelled() => {}
        }
    });
    Some(tx)
}

/// hyper's HTTP/2 client handshake over `io` (h2 after ALPN, or h2c with
/// prior knowledge); its connection task runs until every sender is
/// dropped, the backend closes (GOAWAY), or the backend's kill token fires.
async fn handshake_h2(io: BackendIo, b: &Backend) -> Option<hyper::client::conn::http2::SendRequest<Body>> {
    let (tx, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake::<_, Body>(TokioIo::new(io))
        .await
        .ok()?;
    let kill = b.health.kill_token();
    tokio::spawn(async move {
        tokio::select! {
            _ = connection => {}
            _ = kill.cancelled() => {}
        }
    });
    Some(tx)
}

/// The backend's response for the client: hop-by-hop fields out, the body
/// streamed, the connection back to the idle list (HTTP/2: the stream's
/// lease given up) once the body ended. `in_flight` names the backend.
fn relay(
    response: Response<Incoming>,
    tx: BackendConn,
    in_flight: InFlight,
    upgrade: bool,
    route: Arc<RouteStats>,
    grpc: Option<Arc<Shared>>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let (pool, i) = (in_flight.pool(), in_flight.i);
    let back = match tx {
        BackendConn::H1(tx) => (!upgrade).then(|| Back::H1(tx, Arc::clone(&pool.http.idle[i]), pool.http.max_idle, pool.http.idle_timeout)),
        BackendConn::H2(lease) => Some(Back::H2(lease)),
    };
    let body = Relayed { inner: body, back, in_flight, route, grpc, ended: false };
    Response::from_parts(parts, body.boxed())
}

/// What a relayed response gives back when it ends.
enum Back {
    /// The keep-alive connection, to its backend's idle list (at most `max`, for `idle_timeout`).
    H1(Sender, Arc<super::pool::IdleConns>, usize, std::time::Duration),
    /// The stream's place on a shared connection.
    H2(super::multiplex::H2Lease),
}

/// A 101: answer the client with the backend's head, then join the two
/// upgraded connections and forward bytes both ways until both end.
fn tunnel(mut response: Response<Incoming>, client: hyper::upgrade::OnUpgrade, in_flight: InFlight) -> Response<Body> {
    let backend = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let _in_flight = in_flight;
        if let Ok((c, b)) = tokio::try_join!(client, backend) {
            let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
            let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
        }
    });
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, respond::empty())
}

/// A response body on its way to the client: counts bytes, reads a gRPC
/// call's final status, and on its end returns the keep-alive connection
/// for the next request. Dropped before its end: counted as a reset.
struct Relayed {
    inner: Incoming,
    back: Option<Back>,
    /// The backend (and its counters) the response comes from.
    in_flight: InFlight,
    route: Arc<RouteStats>,
    /// A gRPC call whose status comes in the trailers: where the backend's
    /// passive-health verdict on it is reported when they pass.
    grpc: Option<Arc<Shared>>,
    ended: bool,
}

impl Relayed {
    /// The exchange is complete: the connection may serve the next request.
    fn give_back(&mut self) {
        self.ended = true;
        match self.back.take() {
            Some(Back::H1(tx, idle, max, idle_timeout)) => idle.checkin(tx, max, idle_timeout),
            Some(Back::H2(lease)) => drop(lease),
            None => {}
        }
    }

    /// Trailers passed: a gRPC call ends with their status.
    fn trailers(&mut self, t: &http::HeaderMap) {
        let (Some(shared), Some(c)) = (self.grpc.take(), grpc::status(t)) else { return };
        self.route.grpc(c);
        judge(self.in_flight.pool(), self.in_flight.backend(), grpc::is_failure(c), &shared.events);
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        // (A body that was empty from the start may never be polled.)
        if !self.ended && !self.inner.is_end_stream() {
            self.route.reset();
        }
    }
}

impl http_body::Body for Relayed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.in_flight.backend().stats.bytes_out.fetch_add(d.len() as u64, Relaxed);
                } else if let Some(t) = f.trailers_ref() {
                    self.trailers(t);
                }
            }
            Poll::Ready(None) => self.give_back(),
            _ => {}
        }
        // hyper stops polling once the body says it has ended.
        if self.inner.is_end_stream() {
            self.give_back();
        }
        polled.map(|o| o.map(|r| r.map_err(|e| -> BoxError { Box::new(e) })))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, Fut, F: FnOnce(A, B) -> Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// hyper moves each request's future whole (for HTTP/2 into the stream's
    /// task): the proxying is boxed so what moves stays small. Release: 3,328
    /// bytes unboxed (memmove was 8 % of an HTTP/2 request's CPU), 864 boxed.
    #[test]
    fn request_future_stays_small() {
        let size = future_size(&handle);
        let budget = if cfg!(debug_assertions) { 2048 } else { 1024 };
        assert!(size <= budget, "a request's future is {size} bytes (budget {budget})");
    }
}
