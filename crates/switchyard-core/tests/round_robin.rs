//! Plain round robin over three backends is exact over whole cycles.

mod common;

use common::*;
use std::time::Duration;
use switchyard_core::Engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_connections_split_exactly() {
    let bs = [id_backend(0).await, id_backend(1).await, id_backend(2).await];
    let engine =
        Engine::start(simple("auto", 60_000, 0, &[(bs[0].addr, 1, false), (bs[1].addr, 1, false), (bs[2].addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    let mut counts = [0u32; 3];
    for _ in 0..300 {
        counts[fetch_id(addr).await as usize] += 1;
    }
    assert_eq!(counts, [100, 100, 100]);
    let accepted: Vec<u64> = bs.iter().map(|b| b.accepted()).collect();
    assert_eq!(accepted, [100, 100, 100]);
    let r = engine.stats();
    for b in &bs {
        assert_eq!(backend_stats(&r, "p", b.addr).unwrap().total, 100);
    }
    engine.close(Duration::from_secs(1)).await;
}
