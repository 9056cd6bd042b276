//! Many small segments queued on the client socket before the balancer starts
//! forwarding (its first connect attempt hangs on a full accept queue) must
//! all be forwarded, without the client having to send anything more.

mod common;

use common::*;
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A listener whose accept queue is full: further SYNs are dropped, so a
/// connect to it hangs until the connect timeout.
fn full_listener() -> (Socket, Vec<std::net::TcpStream>, SocketAddr) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(c) => held.push(c),
            Err(_) => return (s, held, addr),
        }
    }
    panic!("could not fill the accept queue of {addr}");
}

const SEGMENTS: usize = 20000;
const SEG: usize = 16;

async fn small_segments(mode: &str) {
    let (_full, _held, full_addr) = full_listener();
    // Replies only once it has the whole request: no backend→client traffic
    // can wake the client socket up in the meantime.
    let echo = backend(|mut s| async move {
        let mut req = vec![0u8; SEGMENTS * SEG];
        if s.read_exact(&mut req).await.is_ok() {
            let _ = s.write_all(&req).await;
        }
        let _ = s.shutdown().await;
    })
    .await;
    let cfg = config(
        &[listener("l", "127.0.0.1:0", "p", 60_000, mode)],
        &[pool_with_timeout("p", 1, 1000, &[(full_addr, 1, false), (echo.addr, 1, false)])],
    );
    let engine = Engine::start(cfg).unwrap();
    let addr = addr_of(&engine, "l");

    let data = random_bytes(SEGMENTS * SEG, 42);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for chunk in data.chunks(SEG) {
        s.write_all(chunk).await.unwrap();
    }
    // No FIN: the client waits for its echo, as a request/response client would.
    let mut got = vec![0u8; data.len()];
    let res = tokio::time::timeout(DEADLINE, s.read_exact(&mut got)).await;
    let r = engine.stats();
    let b = backend_stats(&r, "p", echo.addr).unwrap();
    let timeouts = backend_stats(&r, "p", full_addr).unwrap().connect_timeouts;
    assert!(
        res.is_ok(),
        "splice={mode}: echo of {} bytes sent as {SEGMENTS} small segments stalled; backend got bytes_in={} \
         (first connect attempt timed out: {timeouts})",
        data.len(),
        b.bytes_in
    );
    res.unwrap().unwrap();
    assert!(timeouts >= 1, "the first connect attempt should have timed out (queueing the segments)");
    assert_same(&got, &data, &format!("splice={mode}: echoed small segments"));
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_splice_never() {
    small_segments("never").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_splice_always() {
    small_segments("always").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_splice_auto() {
    small_segments("auto").await;
}
