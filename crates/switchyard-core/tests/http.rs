//! HTTP listeners on real sockets: routing, forwarded and hop-by-hop headers,
//! Switchyard's own errors, keep-alive reuse toward backends, retries and
//! sticky cookies. Backends here are minimal HTTP/1.1 servers that answer
//! with their id and the request head they received.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A keep-alive HTTP backend: answers every request with `id\n` and the
/// request head it got; `x-status: N` in the request makes it answer N.
async fn http_backend(id: &'static str) -> Backend {
    http_backend_with(id, true).await
}

/// The same; without `keep_alive` it closes each connection after one answer
/// (so a backend shut down stops answering at once).
async fn http_backend_with(id: &'static str, keep_alive: bool) -> Backend {
    http_backend_full(id, keep_alive, None).await
}

/// A keep-alive backend that answers every request with `status`.
async fn failing_backend(id: &'static str, status: &'static str) -> Backend {
    http_backend_full(id, true, Some(status)).await
}

async fn http_backend_full(id: &'static str, keep_alive: bool, fixed: Option<&'static str>) -> Backend {
    backend(move |mut s| async move {
        let mut buf = Vec::new();
        loop {
            let Some(end) = read_head(&mut s, &mut buf).await else { return };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            let status = fixed.or_else(|| head.lines().find_map(|l| l.strip_prefix("x-status: "))).unwrap_or("200").to_owned();
            let body = format!("{id}\n{head}");
            let close = if keep_alive { "" } else { "connection: close\r\n" };
            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{close}x-backend: {id}\r\n\r\n{body}", body.len());
            if s.write_all(resp.as_bytes()).await.is_err() || !keep_alive {
                return;
            }
        }
    })
    .await
}

/// Read until a whole head is in `buf`; its length, or None at EOF.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(p + 4);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One response: status, head (lower-cased names), body.
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    }
}

/// Send `req` on `s` and read one content-length framed response.
async fn exchange(s: &mut TcpStream, req: &str) -> Resp {
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), read_head(s, &mut buf)).await.expect("a response in time").expect("a response");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
    while buf.len() < end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Resp { status, head, body: String::from_utf8_lossy(&buf[end..end + len]).into_owned() }
}

async fn get(addr: SocketAddr, req: &str) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    exchange(&mut s, req).await
}

fn http_pool(name: &str, backends: &[SocketAddr], http: Value) -> Value {
    let mut p = pool(name, 2, &backends.iter().map(|&a| (a, 1, false)).collect::<Vec<_>>());
    p["http"] = http;
    p
}

fn pool_http(extra: Value) -> Value {
    let mut h = json!({"max_idle_per_backend": 8, "idle_timeout_ms": 4000, "eject_after_5xx": 0});
    h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    h
}

fn http_listener(routes: Value) -> Value {
    let mut l = listener("web", "127.0.0.1:0", "web", 60_000, "never");
    l["protocol"] = json!("http");
    l["http"] = json!({"routes": routes, "max_header_bytes": 16384, "max_headers": 100,
        "header_read_timeout_ms": 2000, "request_timeout_ms": 5000, "x_forwarded": true, "forwarded": true});
    l
}

fn start(listeners: &[Value], pools: &[Value]) -> (Engine, SocketAddr) {
    let cfg: EngineConfig = config(listeners, pools);
    let engine = Engine::start(cfg).unwrap();
    let addr = addr_of(&engine, "web");
    (engine, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_header_path_and_host_with_forwarding_headers_and_404() {
    let (canary, api, stat, web) =
        (http_backend("canary").await, http_backend("api").await, http_backend("static").await, http_backend("web").await);
    let routes = json!([
        {"name": "canary", "headers": [{"name": "X-Canary", "equals": "true"}], "pool": "canary"},
        {"name": "api", "path": {"prefix": "/api/"}, "pool": "api"},
        {"name": "static", "host": "static.example.com", "path": {"prefix": "/static/"}, "pool": "static",
         "response_headers": {"set": [{"name": "cache-control", "value": "public, max-age=2592000"}]}},
        {"name": "only-get", "methods": ["GET"], "path": {"regex": "/web/[0-9]+"}, "pool": "web"},
    ]);
    let pools = [
        http_pool("canary", &[canary.addr], pool_http(json!({}))),
        http_pool("api", &[api.addr], pool_http(json!({}))),
        http_pool("static", &[stat.addr], pool_http(json!({}))),
        http_pool("web", &[web.addr], pool_http(json!({}))),
    ];
    let (engine, addr) = start(&[http_listener(routes)], &pools);
    let r = get(addr, "GET /api/users HTTP/1.1\r\nhost: a.example.com\r\nx-canary: true\r\n\r\n").await;
    assert_eq!((r.status, r.body.lines().next()), (200, Some("canary")));
    let r = get(addr, "GET /api/users?x=1 HTTP/1.1\r\nhost: a.example.com\r\nx-forwarded-for: 192.0.2.9\r\nconnection: keep-alive, x-secret\r\nx-secret: s\r\n\r\n").await;
    assert_eq!(r.body.lines().next(), Some("api"));
    let got = r.body.to_ascii_lowercase();
    assert!(got.starts_with("api\nget /api/users?x=1 http/1.1\r\n"), "{got}");
    assert!(got.contains("x-forwarded-for: 192.0.2.9, 127.0.0.1\r\n"), "{got}");
    assert!(got.contains("x-real-ip: 127.0.0.1\r\n") && got.contains("x-forwarded-proto: http\r\n"), "{got}");
    assert!(got.contains("x-forwarded-host: a.example.com\r\n") && got.contains("host: a.example.com\r\n"), "{got}");
    assert!(got.contains("forwarded: for=127.0.0.1;proto=http;host=\"a.example.com\"\r\n"), "{got}");
    assert!(!got.contains("x-secret"), "a field named in Connection was forwarded: {got}");
    let r = get(addr, "GET /static/a.css HTTP/1.1\r\nhost: static.example.com:8080\r\n\r\n").await;
    assert_eq!((r.body.lines().next(), r.header("cache-control")), (Some("static"), Some("public, max-age=2592000")));
    // The host must match: another host's /static/ falls through to no route.
    let r = get(addr, "GET /static/a.css HTTP/1.1\r\nhost: other.example.com\r\n\r\n").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, r#"{"error":{"status":404,"code":"no_route","message":"no route matches this request"}}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(get(addr, "GET /web/12 HTTP/1.1\r\nhost: x\r\n\r\n").await.body.lines().next(), Some("web"));
    assert_eq!(get(addr, "GET /web/12/x HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 404);
    assert_eq!(get(addr, "DELETE /web/12 HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 404);
    let report = engine.stats();
    let l = listener_stats(&report, "web").unwrap();
    assert_eq!(l.no_route, 3);
    let api_route = l.routes.iter().find(|r| r.name == "api").unwrap();
    assert_eq!((api_route.responses_2xx, *api_route.latency_buckets.last().unwrap()), (1, 1));
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_backend_connections_are_reused() {
    let b = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[b.addr], pool_http(json!({})))]);
    let mut s = TcpStream::connect(addr).await.unwrap();
    for _ in 0..20 {
        assert_eq!(exchange(&mut s, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
    }
    // Separate client connections share the backend's idle connection too.
    for _ in 0..5 {
        assert_eq!(get(addr, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
    }
    wait_until("responses to be relayed whole", || backend_stats(&engine.stats(), "web", b.addr).unwrap().active == 0).await;
    let report = engine.stats();
    let r = backend_stats(&report, "web", b.addr).unwrap();
    assert_eq!(r.total, 25, "requests");
    assert!(b.accepted() <= 2, "backend connections: {}", b.accepted());
    assert!(r.conns_reused >= 23, "reused: {}", r.conns_reused);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_backend_connections_close_at_their_idle_timeout_without_new_requests() {
    // The backend notices the close: its connection handler ends when Switchyard closes it.
    let open = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&open);
    let b = backend(move |mut s| {
        let open = Arc::clone(&counted);
        async move {
            open.fetch_add(1, Ordering::SeqCst);
            let mut buf = Vec::new();
            while let Some(end) = read_head(&mut s, &mut buf).await {
                buf.drain(..end);
                if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
                    break;
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        }
    })
    .await;
    let (engine, addr) = start(
        &[http_listener(json!([{"name": "all", "pool": "web"}]))],
        &[http_pool("web", &[b.addr], pool_http(json!({"idle_timeout_ms": 300})))],
    );
    assert_eq!(get(addr, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
    wait_until("the backend connection to be kept idle", || backend_stats(&engine.stats(), "web", b.addr).unwrap().conns_idle == 1).await;
    // No request comes to reuse it: the sweep closes it.
    wait_until("the idle connection to close", || backend_stats(&engine.stats(), "web", b.addr).unwrap().conns_idle == 0).await;
    wait_until("the backend to see the close", || open.load(Ordering::SeqCst) == 0).await;
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backend_queues_requests_and_a_full_queue_answers_503() {
    // A backend that answers each request only once the test hands it a permit.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let permits = Arc::clone(&gate);
    let b = backend(move |mut s| {
        let permits = Arc::clone(&permits);
        async move {
            let mut buf = Vec::new();
            while let Some(end) = read_head(&mut s, &mut buf).await {
                buf.drain(..end);
                permits.acquire().await.unwrap().forget();
                if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
                    break;
                }
            }
        }
    })
    .await;
    let mut pool = http_pool("web", &[b.addr], pool_http(json!({})));
    pool["max_connections"] = json!(1);
    pool["queue"] = json!({"max": 1, "timeout_ms": 30_000});
    let (engine, addr) = start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[pool]);
    let waiting = |engine: &Engine| engine.stats().pools.iter().find(|p| p.name == "web").unwrap().queue.waiting;
    // The first request takes the backend's only slot; the second waits in the queue.
    let first = tokio::spawn(get(addr, "GET /1 HTTP/1.1\r\nhost: x\r\n\r\n"));
    wait_until("the first request in flight", || backend_stats(&engine.stats(), "web", b.addr).unwrap().active == 1).await;
    let second = tokio::spawn(get(addr, "GET /2 HTTP/1.1\r\nhost: x\r\n\r\n"));
    wait_until("the second request queued", || waiting(&engine) == 1).await;
    // The queue is full: the third is refused at once, in Switchyard's format.
    let third = get(addr, "GET /3 HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(third.status, 503);
    assert!(third.body.contains("\"code\":\"queue_full\""), "{}", third.body);
    gate.add_permits(2);
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200, "the queued request is served once the slot frees");
    assert_eq!(waiting(&engine), 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_are_retried_after_503_and_bodies_are_not_sent_twice() {
    let (a, b) = (http_backend("a").await, http_backend("b").await);
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr, b.addr], pool_http(json!({})))]);
    // Both answer 503 when asked: a GET is tried on each, then the last 503 goes out.
    let r = get(addr, "GET / HTTP/1.1\r\nhost: x\r\nx-status: 503\r\n\r\n").await;
    assert_eq!(r.status, 503);
    let tried: u64 = [a.addr, b.addr].iter().map(|x| backend_stats(&engine.stats(), "web", *x).unwrap().total).sum();
    assert!(tried >= 2, "a GET after a 503 goes to the other backend too ({tried} attempts)");
    let before: u64 = [a.addr, b.addr].iter().map(|x| backend_stats(&engine.stats(), "web", *x).unwrap().total).sum();
    let r = get(addr, "POST / HTTP/1.1\r\nhost: x\r\nx-status: 503\r\ncontent-length: 5\r\n\r\nhello").await;
    assert_eq!(r.status, 503);
    let after: u64 = [a.addr, b.addr].iter().map(|x| backend_stats(&engine.stats(), "web", *x).unwrap().total).sum();
    assert_eq!(after - before, 1, "a POST with a body is sent once");
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_is_retried_and_sticky_clients_repin() {
    let (a, b) = (http_backend_with("a", false).await, http_backend_with("b", false).await);
    let sticky = json!({"sticky": {"cookie": "SY", "secret": "0123456789abcdef"}});
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr, b.addr], pool_http(sticky))]);
    let first = get(addr, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let who = first.body.lines().next().unwrap().to_owned();
    let cookie = first.header("set-cookie").expect("a sticky cookie").split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("SY=") && !cookie.contains("127.0.0.1"), "{cookie}");
    for _ in 0..10 {
        let r = get(addr, &format!("GET / HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\n\r\n")).await;
        assert_eq!(r.body.lines().next(), Some(who.as_str()));
        assert!(r.header("set-cookie").is_none(), "a pinned client is not re-pinned");
    }
    // Its backend dies: the next request goes to the other one and re-pins there.
    let (dead, other) = if who == "a" { (a, "b") } else { (b, "a") };
    dead.shut().await;
    let r = get(addr, &format!("GET / HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\n\r\n")).await;
    assert_eq!((r.status, r.body.lines().next()), (200, Some(other)));
    let repinned = r.header("set-cookie").expect("re-pinned").split(';').next().unwrap().to_owned();
    assert_ne!(repinned, cookie);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_bodies_over_the_route_limit_get_413() {
    let b = http_backend("a").await;
    let (engine, addr) = start(
        &[http_listener(json!([{"name": "small", "pool": "web", "max_body_bytes": 4}]))],
        &[http_pool("web", &[b.addr], pool_http(json!({})))],
    );
    let r = get(addr, "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello").await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("\"code\":\"payload_too_large\""));
    assert_eq!(b.accepted(), 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_other_backend_the_backends_own_503_goes_out() {
    let a = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    let r = get(addr, "GET / HTTP/1.1\r\nhost: x\r\nx-status: 503\r\n\r\n").await;
    assert_eq!((r.status, r.header("x-backend")), (503, Some("a")), "{}", r.body);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_a_record_per_request_with_bytes_and_status() {
    let a = http_backend("a").await;
    let mut l = http_listener(json!([{"name": "all", "pool": "web", "path": {"prefix": "/"}}]));
    l["access_log"] = json!(true);
    let (engine, addr) = start(&[l], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let r = exchange(&mut s, "POST /x?q=1 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello").await;
    assert_eq!(r.status, 200);
    let nothing = exchange(&mut s, "GET nowhere HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(nothing.status, 404);
    let mut records = Vec::new();
    wait_until("two access records", || {
        records.extend(engine.access_log().records);
        records.len() >= 2
    })
    .await;
    let ok = records.iter().find(|r| r.http.as_ref().unwrap().status == 200).unwrap();
    let h = ok.http.as_ref().unwrap();
    assert_eq!((h.method.as_str(), h.path.as_str(), h.route.as_str()), ("POST", "/x", "all"));
    assert_eq!((ok.bytes_in, ok.bytes_out, ok.backend.as_str()), (5, r.body.len() as u64, a.addr.to_string().as_str()));
    let missed = records.iter().find(|r| r.http.as_ref().unwrap().status == 404).unwrap();
    assert_eq!((missed.pool.as_str(), missed.backend.as_str(), missed.http.as_ref().unwrap().route.as_str()), ("", "", ""));
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_error_rate_passes_the_limit_is_ejected() {
    let (bad, good) = (failing_backend("bad", "500").await, http_backend("good").await);
    let rate = json!({"error_rate": {"percent": 50, "window_ms": 200, "min_requests": 4}});
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[bad.addr, good.addr], pool_http(rate))]);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !backend_stats(&engine.stats(), "web", bad.addr).unwrap().ejected {
        assert!(std::time::Instant::now() < deadline, "the failing backend was not ejected");
        exchange(&mut s, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    }
    for _ in 0..10 {
        assert_eq!(exchange(&mut s, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.body.lines().next(), Some("good"));
    }
    let events = engine.events().events;
    assert!(events.iter().any(|e| e.kind == "ejected" && e.reason.starts_with("HTTP 5xx (or gRPC failure) rate")), "{events:?}");
    assert!(!backend_stats(&engine.stats(), "web", good.addr).unwrap().ejected);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_backend_keeps_its_sticky_clients_until_its_deadline() {
    let (a, b) = (http_backend_with("a", false).await, http_backend_with("b", false).await);
    let sticky = json!({"sticky": {"cookie": "SY", "secret": "0123456789abcdef"}});
    let mut p = http_pool("web", &[a.addr, b.addr], pool_http(sticky));
    let (engine, addr) = start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[p.clone()]);
    let first = get(addr, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let who = first.body.lines().next().unwrap().to_owned();
    let cookie = first.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let pinned = if who == "a" { a.addr } else { b.addr };
    let i = if who == "a" { 0 } else { 1 };
    p["backends"][i]["state"] = json!("drain");
    engine.update_pool(serde_json::from_value(p).unwrap()).unwrap();
    // Draining: new clients go elsewhere, the pinned one stays.
    for _ in 0..5 {
        assert_ne!(get(addr, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.body.lines().next(), Some(who.as_str()));
        let r = get(addr, &format!("GET / HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\n\r\n")).await;
        assert_eq!(r.body.lines().next(), Some(who.as_str()));
    }
    // The drain deadline closes its connections: the pinned client re-pins.
    assert!(engine.close_backend_connections("web", &pinned.to_string()));
    let r = get(addr, &format!("GET / HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\n\r\n")).await;
    assert_ne!(r.body.lines().next(), Some(who.as_str()));
    assert!(r.header("set-cookie").is_some());
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() {
    let a = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
    let (got, _) = read_until_closed(&mut s).await; // header_read_timeout_ms is 2000 here
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
    assert!(
        text.ends_with(r#"{"error":{"status":408,"code":"request_timeout","message":"the request head did not arrive in time"}}"#),
        "{text}"
    );
    assert_eq!(a.accepted(), 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_keep_alive_connection_parks_and_serves_its_next_request() {
    // Quiet longer than the head timeout (2 s here): the connection parks after about a second
    // (no hyper state, so no head timer), is not answered 408, and serves the next request.
    let a = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut s, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
    tokio::time::sleep(Duration::from_millis(3500)).await; // the quiet period under test, not a synchronization
    assert_eq!(exchange(&mut s, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
    assert_eq!(listener_stats(&engine.stats(), "web").unwrap().accepted, 1);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_keep_alive_connections_parks_at_once_and_serves_pipelined_requests() {
    // More open connections than the engine lets hold hyper's buffers (256): each parks as soon as
    // its response is out and is served again from the parked socket, also when the next two
    // requests arrive in one segment (the second is read by the first hyper connection and must
    // be handed to the next one, whole and in order).
    let a = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    let mut crowd = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(exchange(&mut s, "GET /first HTTP/1.1\r\nhost: x\r\n\r\n").await.status, 200);
        crowd.push(s);
    }
    for (i, s) in crowd.iter_mut().enumerate() {
        let two = format!("GET /second/{i} HTTP/1.1\r\nhost: x\r\n\r\nGET /third/{i} HTTP/1.1\r\nhost: x\r\n\r\n");
        s.write_all(two.as_bytes()).await.unwrap();
        // Both responses, in order (they may arrive in one read).
        let (second, third) = (format!("GET /second/{i} "), format!("GET /third/{i} "));
        let mut got = String::new();
        let read_both = async {
            while !got.contains(&third) {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed before both responses: {got}");
                got.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read_both).await.expect("both responses in time");
        assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got}");
        assert!(got.find(&second).expect("the second request answered") < got.find(&third).unwrap(), "{got}");
    }
    assert_eq!(listener_stats(&engine.stats(), "web").unwrap().accepted, 300);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypers_own_errors_go_out_in_switchyards_format() {
    let a = http_backend("a").await;
    let (engine, addr) =
        start(&[http_listener(json!([{"name": "all", "pool": "web"}]))], &[http_pool("web", &[a.addr], pool_http(json!({})))]);
    // A head over max_header_bytes (16 KiB here): 431.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(20_000)).as_bytes()).await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert!(text.ends_with(r#""code":"headers_too_large","message":"the request head is too large or has too many fields"}}"#), "{text}");
    // Not HTTP at all: 400.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x16\x03\x01 hello\r\n\r\n").await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 ") && text.contains(r#""code":"bad_request""#), "{text}");
    assert_eq!(a.accepted(), 0);
    engine.close(Duration::from_secs(1)).await;
}
