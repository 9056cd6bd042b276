//! The idle timeout closes quiet connections and spares active ones.

mod common;

use common::*;
use std::time::{Duration, Instant};
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn engine_with_idle(backend: std::net::SocketAddr) -> Engine {
    Engine::start(config(
        &[
            listener("idle", "127.0.0.1:0", "p", 300, "auto"),
            listener("busy", "127.0.0.1:0", "p", 300, "never"),
            listener("spliced", "127.0.0.1:0", "p", 300, "always"),
        ],
        &[pool("p", 0, &[(backend, 1, false)])],
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_and_counted() {
    let echo = echo_backend().await;
    let engine = engine_with_idle(echo.addr);
    for name in ["idle", "spliced"] {
        let mut s = TcpStream::connect(addr_of(&engine, name)).await.unwrap();
        s.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await.unwrap().unwrap();
        let quiet_since = Instant::now();
        let (rest, _) = read_until_closed(&mut s).await;
        assert!(rest.is_empty());
        let waited = quiet_since.elapsed();
        assert!(waited >= Duration::from_millis(290), "{name}: closed after only {waited:?} of silence");
        wait_until(&format!("{name}: idle_timeouts == 1"), || listener_stats(&engine.stats(), name).unwrap().idle_timeouts == 1).await;
    }
    // The timeout is counted just before the connection's task ends and stops being active.
    wait_until("no connection active", || engine.stats().connections_active == 0).await;
    assert_eq!(listener_stats(&engine.stats(), "busy").unwrap().idle_timeouts, 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_connection_survives_the_idle_timeout() {
    let echo = echo_backend().await;
    let engine = engine_with_idle(echo.addr);
    let mut s = TcpStream::connect(addr_of(&engine, "busy")).await.unwrap();
    let start = Instant::now();
    let mut sent = 0u32;
    // A byte every 100 ms for well over 1 s (3x the idle timeout each way).
    while start.elapsed() < Duration::from_millis(1300) {
        s.write_all(&[sent as u8]).await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(DEADLINE, s.read_exact(&mut b))
            .await
            .unwrap_or_else(|_| panic!("echo {sent} did not come back"))
            .unwrap_or_else(|e| panic!("connection closed after {:?} despite activity: {e}", start.elapsed()));
        assert_eq!(b[0], sent as u8);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent >= 10);
    let r = engine.stats();
    let l = listener_stats(&r, "busy").unwrap();
    assert_eq!((l.idle_timeouts, l.active), (0, 1));
    // Still usable at the end.
    s.write_all(b"!").await.unwrap();
    let mut b = [0u8; 1];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await.unwrap().unwrap();
    assert_eq!(&b, b"!");
    engine.close(Duration::from_secs(1)).await;
}
