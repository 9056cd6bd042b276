//! Bulk data both ways through an echo backend arrives byte-identical in every
//! splice mode, and the byte counters match afterwards.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::net::TcpStream;

const SIZE: usize = 32 * 1024 * 1024;

async fn bulk_echo(mode: &str, seed: u64) {
    let echo = echo_backend().await;
    let engine = Engine::start(simple(mode, 60_000, 0, &[(echo.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    let data = Arc::new(random_bytes(SIZE, seed));

    let stream = TcpStream::connect(addr).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), send_and_collect(stream, Arc::clone(&data), seed))
        .await
        .unwrap_or_else(|_| panic!("splice={mode}: 32 MiB echo did not complete"));
    assert_same(&got, &data, &format!("splice={mode}: echoed stream"));

    // Counters are bumped as bytes move; they must settle at exactly the sizes.
    wait_until(&format!("splice={mode}: bytes_in/bytes_out == {SIZE}"), || {
        let r = engine.stats();
        let b = backend_stats(&r, "p", echo.addr).unwrap();
        assert!(b.bytes_in <= SIZE as u64 && b.bytes_out <= SIZE as u64, "overcounted: {b:?}");
        b.bytes_in == SIZE as u64 && b.bytes_out == SIZE as u64
    })
    .await;
    let r = engine.stats();
    let b = backend_stats(&r, "p", echo.addr).unwrap();
    assert_eq!(b.total, 1);
    assert_eq!(listener_stats(&r, "l").unwrap().accepted, 1);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_32mib_each_way_splice_never() {
    bulk_echo("never", 0x1111).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_32mib_each_way_splice_always() {
    bulk_echo("always", 0x2222).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_32mib_each_way_splice_auto() {
    bulk_echo("auto", 0x3333).await;
}
