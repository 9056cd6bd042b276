//! close(drain): listeners go first, in-flight connections may finish within
//! the drain time, the rest are cut at the deadline.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_lets_an_inflight_transfer_finish() {
    let echo = echo_backend().await;
    let engine = Arc::new(Engine::start(simple("auto", 60_000, 0, &[(echo.addr, 1, false)])).unwrap());
    let addr = addr_of(&engine, "l");
    let data = random_bytes(6 * 1024 * 1024, 5);
    let half = data.len() / 2;

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&data[..1024]).await.unwrap();
    let mut first = vec![0u8; 1024];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut first)).await.unwrap().unwrap();
    let (mut r, mut w) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut got = first;
        r.read_to_end(&mut got).await.map(|_| got)
    });
    w.write_all(&data[1024..half]).await.unwrap();

    let drain = Duration::from_secs(20);
    let started = Instant::now();
    let closer = {
        let e = Arc::clone(&engine);
        tokio::spawn(async move { e.close(drain).await })
    };
    // The listener goes first: the port is free while the transfer is still open.
    wait_port_free(addr).await;
    assert!(!closer.is_finished(), "close() returned while a connection was still in flight");

    // The established connection keeps working during the drain.
    w.write_all(&data[half..]).await.unwrap();
    w.shutdown().await.unwrap();
    let got = tokio::time::timeout(DEADLINE, reader).await.expect("transfer stalled during drain").unwrap().unwrap();
    assert_same(&got, &data, "transfer finished during drain");

    // close() returns once the last connection is done, well before the deadline.
    tokio::time::timeout(DEADLINE, closer).await.expect("close() did not return after the last connection").unwrap();
    assert!(started.elapsed() < drain, "close() waited for the full drain time");
    assert_eq!(engine.active_connections(), 0);
    wait_port_free(addr).await;
    // The engine is closed: updates are refused, close is idempotent.
    let err = engine.update(simple("auto", 60_000, 0, &[(echo.addr, 1, false)])).unwrap_err();
    assert_eq!(err.code, switchyard_core::ErrorCode::Closed);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_cuts_a_connection_that_never_finishes() {
    let echo = echo_backend().await;
    let engine = Engine::start(simple("never", 60_000, 0, &[(echo.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await.unwrap().unwrap();
    wait_until("the connection to be active", || engine.active_connections() == 1).await;

    let drain = Duration::from_millis(500);
    let started = Instant::now();
    let (client_closed, ()) = tokio::join!(
        async {
            // Sees EOF (or a reset) once the deadline passes; never within it.
            let (rest, _) = read_until_closed(&mut s).await;
            assert!(rest.is_empty());
            started.elapsed()
        },
        engine.close(drain)
    );
    assert!(client_closed >= drain, "connection cut after {client_closed:?}, before the {drain:?} drain deadline");
    assert!(started.elapsed() >= drain);
    assert_eq!(engine.active_connections(), 0);
    wait_port_free(addr).await;
}
