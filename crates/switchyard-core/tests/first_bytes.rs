//! The client's first bytes: read at accept, delivered with the backend
//! connect (and again to the next backend if that connect fails), and
//! `defer_accept`, which makes the kernel wait for them.

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request written before the balancer accepts is the connect's preface.
/// Half the connect attempts hit a refused backend first: the retry must
/// deliver the whole preface, once, to the live one, and count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_bytes_reach_the_backend_whole_after_a_refused_connect() {
    let dead = refused_addr();
    let echo = echo_backend().await;
    let engine = Engine::start(simple("auto", 60_000, 2, &[(dead, 1, false), (echo.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    let mut sent = 0u64;
    for i in 0..20u64 {
        // Sizes around one read buffer (32 KiB): all in the preface, or a
        // preface plus more bytes through the copy loop.
        let data = Arc::new(random_bytes(1 + (i as usize * 7919) % 80_000, i));
        let s = TcpStream::connect(addr).await.unwrap();
        let got = tokio::time::timeout(DEADLINE, send_and_collect(s, Arc::clone(&data), i)).await.expect("echo timed out");
        assert_same(&got, &data, &format!("connection {i}"));
        sent += data.len() as u64;
    }
    let r = engine.stats();
    let live = backend_stats(&r, "p", echo.addr).unwrap();
    assert_eq!(live.bytes_in, sent, "bytes_in counts the preface once");
    assert_eq!(live.bytes_out, sent);
    assert!(backend_stats(&r, "p", dead).unwrap().connect_errors > 0);
    engine.close(Duration::from_secs(1)).await;
}

/// With `defer_accept` the kernel holds a connection until the client has
/// sent data: a silent client is not accepted while one that speaks is
/// served end to end; once it speaks, it is served too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defer_accept_hands_over_clients_once_they_speak() {
    let echo = echo_backend().await;
    let mut l = listener("l", "127.0.0.1:0", "p", 60_000, "never");
    l["defer_accept"] = json!(true);
    let engine = Engine::start(config(&[l], &[pool("p", 0, &[(echo.addr, 1, false)])])).unwrap();
    let addr = addr_of(&engine, "l");
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut talker = TcpStream::connect(addr).await.unwrap();
    talker.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    tokio::time::timeout(DEADLINE, talker.read_exact(&mut buf)).await.expect("echo timed out").unwrap();
    assert_eq!(&buf, b"hello");
    // The silent client connected first, yet only the talker was accepted
    // (the kernel's defer period is 1 s; this round trip takes milliseconds).
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().accepted, 1);
    assert_eq!(echo.accepted(), 1);
    silent.write_all(b"later").await.unwrap();
    tokio::time::timeout(DEADLINE, silent.read_exact(&mut buf)).await.expect("echo timed out").unwrap();
    assert_eq!(&buf, b"later");
    assert_eq!(listener_stats(&engine.stats(), "l").unwrap().accepted, 2);
    engine.close(Duration::from_secs(1)).await;
}
