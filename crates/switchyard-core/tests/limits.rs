//! Backend connection limits and the pool's queue on real sockets (HAProxy
//! `maxconn`, `maxqueue`, `timeout queue`): a full backend is never sent one
//! more connection, clients wait first come first served, and a full queue
//! or its timeout refuses.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An echo backend that records the most connections it held at once.
async fn counting_echo() -> (Backend, Arc<AtomicU64>) {
    let (open, most) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (o, m) = (Arc::clone(&open), Arc::clone(&most));
    let b = backend(move |s| {
        let (o, m) = (Arc::clone(&o), Arc::clone(&m));
        async move {
            let now = o.fetch_add(1, SeqCst) + 1;
            m.fetch_max(now, SeqCst);
            let (mut r, mut w) = s.into_split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            o.fetch_sub(1, SeqCst);
        }
    })
    .await;
    (b, most)
}

fn start(backend: std::net::SocketAddr, max: u32, queue: serde_json::Value) -> (Engine, std::net::SocketAddr) {
    let mut p = pool("p", 0, &[(backend, 1, false)]);
    p["max_connections"] = json!(max);
    p["queue"] = queue;
    let engine = Engine::start(config(&[listener("l", "127.0.0.1:0", "p", 60_000, "never")], &[p])).unwrap();
    let addr = addr_of(&engine, "l");
    (engine, addr)
}

/// Send `msg` and read it back within a generous deadline.
async fn echoed(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut got)).await.expect("echoed in time").unwrap();
    assert_eq!(got, msg);
}

/// A new connection through `addr` that got `msg` echoed.
async fn served(addr: std::net::SocketAddr, msg: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    echoed(&mut s, msg).await;
    s
}

/// A new connection through `addr` that sent `msg` (not waiting for an answer).
async fn sent(addr: std::net::SocketAddr, msg: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(msg).await.unwrap();
    s
}

/// The connection is closed by the balancer (EOF or reset) within the deadline.
async fn closed(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("closed in time") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("got {n} bytes from a refused connection"),
    }
}

fn queue_of(engine: &Engine) -> switchyard_core::stats::QueueReport {
    let s = engine.stats();
    let p = s.pools.into_iter().find(|p| p.name == "p").unwrap();
    p.queue
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backend_queues_clients_in_order_and_a_full_queue_refuses() {
    let (b, most) = counting_echo().await;
    let (engine, addr) = start(b.addr, 2, json!({"max": 2, "timeout_ms": 60_000}));
    let (first, second) = (served(addr, b"1").await, served(addr, b"2").await);
    // Both slots taken: the next two wait (their bytes are kept for the backend).
    let mut third = sent(addr, b"3").await;
    wait_for("the third client queued", || async { queue_of(&engine).waiting == 1 }).await;
    let mut fourth = sent(addr, b"4").await;
    wait_for("the fourth client queued", || async { queue_of(&engine).waiting == 2 }).await;
    // The queue holds two: the fifth is refused at once.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    closed(&mut fifth).await;
    assert_eq!(queue_of(&engine).full, 1);
    // A slot frees: the longest waiter goes first.
    drop(first);
    let mut got = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(20), third.read_exact(&mut got)).await.expect("the third served").unwrap();
    assert_eq!(&got, b"3");
    assert_eq!(queue_of(&engine).waiting, 1, "the fourth still waits");
    drop(second);
    tokio::time::timeout(Duration::from_secs(20), fourth.read_exact(&mut got)).await.expect("the fourth served").unwrap();
    assert_eq!(&got, b"4");
    echoed(&mut third, b"more").await;
    assert!(most.load(SeqCst) <= 2, "the backend held {} connections at once", most.load(SeqCst));
    let q = queue_of(&engine);
    assert_eq!((q.waiting, q.queued, q.timeouts), (0, 2, 0));
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_client_is_refused_at_the_queue_timeout_and_without_a_queue_at_once() {
    let (b, most) = counting_echo().await;
    let (engine, addr) = start(b.addr, 1, json!({"max": 10, "timeout_ms": 300}));
    let mut holder = TcpStream::connect(addr).await.unwrap();
    echoed(&mut holder, b"h").await;
    let mut late = TcpStream::connect(addr).await.unwrap();
    late.write_all(b"x").await.unwrap();
    closed(&mut late).await;
    let q = queue_of(&engine);
    assert_eq!((q.timeouts, q.waiting), (1, 0));
    assert!(q.wait_ms >= 250.0, "waited {} ms", q.wait_ms);
    engine.close(Duration::from_secs(1)).await;

    // No queue: a client finding the backend full is refused at once.
    let (engine, addr) = start(b.addr, 1, serde_json::Value::Null);
    let mut holder2 = TcpStream::connect(addr).await.unwrap();
    echoed(&mut holder2, b"h").await;
    let mut refused = TcpStream::connect(addr).await.unwrap();
    closed(&mut refused).await;
    assert_eq!(queue_of(&engine).full, 1);
    assert!(most.load(SeqCst) <= 2, "one connection per engine at most");
    drop(holder);
    engine.close(Duration::from_secs(1)).await;
}

fn start_listener(backend: std::net::SocketAddr, extra: serde_json::Value) -> (Engine, std::net::SocketAddr) {
    let mut l = listener("l", "127.0.0.1:0", "p", 60_000, "never");
    l.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let engine = Engine::start(config(&[l], &[pool("p", 0, &[(backend, 1, false)])])).unwrap();
    let addr = addr_of(&engine, "l");
    (engine, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_at_its_max_connections_leaves_new_clients_in_the_backlog_until_one_closes() {
    let (b, most) = counting_echo().await;
    let (engine, addr) = start_listener(b.addr, json!({"max_connections": 2}));
    let (first, _second) = (served(addr, b"1").await, served(addr, b"2").await);
    // The kernel completes the handshake (backlog); Switchyard does not accept it yet.
    let mut third = sent(addr, b"3").await;
    let mut got = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read_exact(&mut got)).await;
    assert!(early.is_err(), "served past max_connections: {:?}", listener_stats(&engine.stats(), "l"));
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().accepted, 2);
    drop(first);
    tokio::time::timeout(Duration::from_secs(20), third.read_exact(&mut got)).await.expect("served once one closed").unwrap();
    assert_eq!(&got, b"3");
    assert!(most.load(SeqCst) <= 2);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_allow_lists_close_refused_sources_before_any_backend() {
    let b = echo_backend().await;
    let (engine, addr) = start_listener(b.addr, json!({"deny": ["127.0.0.0/8"]}));
    let mut s = TcpStream::connect(addr).await.unwrap();
    closed(&mut s).await;
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().refused_denied, 1);
    engine.close(Duration::from_secs(1)).await;
    let (engine, addr) = start_listener(b.addr, json!({"allow": ["10.0.0.0/8", "::1"]}));
    let mut s = TcpStream::connect(addr).await.unwrap();
    closed(&mut s).await;
    let (engine2, addr2) = start_listener(b.addr, json!({"allow": ["127.0.0.1/32"], "deny": ["10.0.0.0/8"]}));
    let mut ok = TcpStream::connect(addr2).await.unwrap();
    echoed(&mut ok, b"allowed").await;
    assert_eq!(b.accepted(), 1, "only the allowed client reached the backend");
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().refused_denied, 1);
    let events = engine.events();
    assert!(events.events.iter().any(|e| e.kind == "connection_refused" && e.reason.contains("127.0.0.1")), "{:?}", events.events);
    engine.close(Duration::from_secs(1)).await;
    engine2.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_limits_refuse_one_source_over_its_count_or_rate() {
    let b = echo_backend().await;
    let (engine, addr) = start_listener(b.addr, json!({"per_source": {"max_connections": 1}}));
    let mut first = TcpStream::connect(addr).await.unwrap();
    echoed(&mut first, b"a").await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    closed(&mut second).await;
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().refused_source_limit, 1);
    drop(first);
    // Once the first closed, the source may connect again.
    wait_for("the first connection to close", || async { listener_stats(&engine.stats(), "l").unwrap().active == 0 }).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    echoed(&mut again, b"b").await;
    engine.close(Duration::from_secs(1)).await;

    let (engine, addr) = start_listener(b.addr, json!({"per_source": {"rate": {"connections": 2, "per_ms": 600_000}}}));
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        echoed(&mut s, b"r").await;
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    closed(&mut third).await;
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().refused_rate, 1);
    // Another source (127.0.0.2: all of 127/8 is loopback) has its own bucket and is served.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(addr).await.unwrap();
    echoed(&mut other, b"o").await;
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().refused_rate, 1);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_closed_at_its_max_lifetime_even_while_busy() {
    let b = echo_backend().await;
    // The lifetime is checked each quarter of the idle timeout (here 0.5 s).
    let mut l = listener("l", "127.0.0.1:0", "p", 2_000, "never");
    l["max_lifetime_ms"] = json!(1_000);
    l["max_lifetime_jitter"] = json!(0.2);
    let engine = Engine::start(config(&[l], &[pool("p", 0, &[(b.addr, 1, false)])])).unwrap();
    let addr = addr_of(&engine, "l");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    // Busy: a byte echoed every 50 ms, so the idle timeout never fires.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            let mut got = [0u8; 1];
            match s.read(&mut got).await {
                Ok(1) => {}
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // the client's pace, not a synchronization
        }
    })
    .await;
    assert!(ended.is_ok(), "still open after 20 s");
    assert!(started.elapsed() >= Duration::from_millis(750), "closed after {:?}, before its lifetime", started.elapsed());
    wait_for("the lifetime end to be counted", || async { listener_stats(&engine.stats(), "l").unwrap().lifetime_ends == 1 }).await;
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().idle_timeouts, 0);
    engine.close(Duration::from_secs(1)).await;
}
