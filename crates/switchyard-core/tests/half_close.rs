//! A FIN on one side is passed on while the other direction keeps flowing.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Client half-closes first: the backend reads to EOF, replies with its byte
/// count and closes; the client gets the whole reply.
async fn client_half_closes_first(mode: &str) {
    let counter = backend(|mut s| async move {
        let mut n = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(_) => return,
            }
        }
        // A reply bigger than one socket buffer, so it really streams after the FIN.
        let mut reply = format!("{n}\n").into_bytes();
        reply.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
        let _ = s.write_all(&reply).await;
        let _ = s.shutdown().await;
    })
    .await;
    let engine = Engine::start(simple(mode, 60_000, 0, &[(counter.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");

    for (i, n) in [1usize, 100_000, 5 * 1024 * 1024 + 17].into_iter().enumerate() {
        let data = Arc::new(random_bytes(n, 77 + i as u64));
        let stream = TcpStream::connect(addr).await.unwrap();
        let got = tokio::time::timeout(DEADLINE, send_and_collect(stream, data, 5))
            .await
            .unwrap_or_else(|_| panic!("splice={mode}: reply after half-close did not arrive"));
        let text = String::from_utf8_lossy(&got[..got.len().min(32)]).to_string();
        let want = format!("{n}\n");
        assert!(got.starts_with(want.as_bytes()), "splice={mode}: reply {text:?}, want count {n}");
        assert_eq!(got.len(), want.len() + 3 * 1024 * 1024, "splice={mode}: reply truncated");
        assert!(got[want.len()..].iter().all(|&b| b == b'x'), "splice={mode}: reply corrupted");
    }
    engine.close(Duration::from_secs(1)).await;
}

/// Backend half-closes first: the client sees EOF, keeps sending, and the
/// backend still receives every byte.
async fn backend_half_closes_first(mode: &str) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let hello = backend(move |mut s| {
        let tx = tx.clone();
        async move {
            s.write_all(b"hello").await.unwrap();
            s.shutdown().await.unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            let _ = tx.send(got);
        }
    })
    .await;
    let engine = Engine::start(simple(mode, 60_000, 0, &[(hello.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");

    for (i, n) in [1usize, 4 * 1024 * 1024 + 3].into_iter().enumerate() {
        let data = random_bytes(n, 991 + i as u64);
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (head, clean) = read_until_closed(&mut s).await;
        assert!(clean, "splice={mode}: expected a clean EOF from the backend's FIN");
        assert_eq!(head, b"hello");
        // The other direction must still be open end to end.
        tokio::time::timeout(DEADLINE, async {
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
        })
        .await
        .unwrap_or_else(|_| panic!("splice={mode}: client could not send after the backend's FIN"));
        let got = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("splice={mode}: backend never saw the client's bytes + EOF"))
            .unwrap();
        assert_same(&got, &data, &format!("splice={mode}: bytes sent after the backend's FIN"));
    }
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_half_close_never() {
    client_half_closes_first("never").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_half_close_always() {
    client_half_closes_first("always").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_half_close_auto() {
    client_half_closes_first("auto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_half_close_never() {
    backend_half_closes_first("never").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_half_close_always() {
    backend_half_closes_first("always").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_half_close_auto() {
    backend_half_closes_first("auto").await;
}
