//! How connections are spread over the workers: one shared accept queue
//! (default) or one SO_REUSEPORT socket per worker.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use switchyard_core::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn two_workers(accept: &str, backend: std::net::SocketAddr) -> EngineConfig {
    let v = json!({"workers": 2, "accept": accept,
        "listeners": [listener("l", "127.0.0.1:0", "p", 60_000, "never")],
        "pools": [pool("p", 0, &[(backend, 1, false)])]});
    EngineConfig::from_json(&v.to_string()).expect("valid test config")
}

/// Long-lived connections opened one after another: with the shared queue
/// both workers hold an even share (the busier one hands new connections to
/// the other), every byte is echoed, and the per-worker counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_workers_serve_a_shared_listener() {
    let echo = echo_backend().await;
    for accept in ["shared", "reuseport"] {
        let engine = Engine::start(two_workers(accept, echo.addr)).unwrap();
        let addr = addr_of(&engine, "l");
        let mut conns = Vec::new();
        for i in 0..40u8 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&[i]).await.unwrap();
            let mut b = [0u8; 1];
            tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await.expect("echo timed out").unwrap();
            assert_eq!(b[0], i);
            conns.push(s);
        }
        let r = engine.stats();
        assert_eq!(r.connections_active, 40, "{accept}");
        assert_eq!(r.worker_connections.len(), 2, "{accept}");
        assert_eq!(r.worker_connections.iter().sum::<u64>(), 40, "{accept}: {:?}", r.worker_connections);
        if accept == "shared" {
            // Each connection is up before the next is opened, so the counts
            // are current at every accept: hand-offs keep the two within
            // SLACK + 1 of each other.
            let (a, b) = (r.worker_connections[0], r.worker_connections[1]);
            assert!(a.abs_diff(b) <= switchyard_core::ACCEPT_SLACK + 1, "shared: {:?}", r.worker_connections);
        }
        drop(conns);
        wait_until("connections to close", || engine.stats().connections_active == 0).await;
        engine.close(Duration::from_secs(1)).await;
        wait_port_free(addr).await;
    }
}

/// The accept mode is fixed at start, like the number of workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_mode_cannot_change_on_update() {
    let echo = echo_backend().await;
    let engine = Engine::start(two_workers("shared", echo.addr)).unwrap();
    let err = engine.update(two_workers("reuseport", echo.addr)).expect_err("changing accept must be refused");
    assert!(err.message.contains("accept"), "{err}");
    engine.close(Duration::from_secs(1)).await;
}
