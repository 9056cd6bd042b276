//! Retries past refused backends, no-backend accounting, weight 0 and backups.

mod common;

use common::*;
use std::time::Duration;
use switchyard_core::Engine;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_backend_is_retried_on_a_live_one() {
    let dead = refused_addr();
    let live = id_backend(7).await;
    let engine = Engine::start(simple("auto", 60_000, 2, &[(dead, 1, false), (live.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    for i in 0..50 {
        assert_eq!(fetch_id(addr).await, 7, "connection {i} not served by the live backend");
    }
    assert_eq!(live.accepted(), 50);
    let r = engine.stats();
    let d = backend_stats(&r, "p", dead).unwrap();
    assert!(d.connect_errors > 0, "refused backend should count connect errors: {d:?}");
    assert_eq!(d.total, 0);
    assert_eq!(backend_stats(&r, "p", live.addr).unwrap().total, 50);
    let l = listener_stats(&r, "l").unwrap();
    assert_eq!((l.accepted, l.no_backend), (50, 0));
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_backends_refused_closes_the_client_and_counts_no_backend() {
    let [a, b] = refused_addrs();
    let engine = Engine::start(simple("auto", 60_000, 2, &[(a, 1, false), (b, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    for n in 1..=3u64 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // read_until_closed panics unless the balancer closes us within the deadline.
        let (got, _) = read_until_closed(&mut s).await;
        assert!(got.is_empty());
        wait_until("no_backend to count the connection", || listener_stats(&engine.stats(), "l").unwrap().no_backend == n).await;
    }
    let r = engine.stats();
    let errors: u64 = [a, b].iter().map(|x| backend_stats(&r, "p", *x).unwrap().connect_errors).sum();
    // Two backends, retries=2: each attempt tries an untried backend, so 2 per connection.
    assert_eq!(errors, 6, "{:?}", r.pools);
    // The client may see the close a moment before the counter drops.
    wait_until("the listener's active count to drop", || listener_stats(&engine.stats(), "l").unwrap().active == 0).await;
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_backend_receives_nothing() {
    let zero = id_backend(0).await;
    let one = id_backend(1).await;
    let two = id_backend(2).await;
    let engine = Engine::start(simple("never", 60_000, 0, &[(zero.addr, 0, false), (one.addr, 1, false), (two.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    let mut counts = [0u32; 3];
    for _ in 0..30 {
        counts[fetch_id(addr).await as usize] += 1;
    }
    assert_eq!(counts[0], 0, "weight-0 backend got connections: {counts:?}");
    assert_eq!(counts[1] + counts[2], 30);
    assert_eq!(zero.accepted(), 0);
    assert_eq!(backend_stats(&engine.stats(), "p", zero.addr).unwrap().connect_errors, 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_serves_only_when_primaries_are_down() {
    let p1 = id_backend(1).await;
    let p2 = id_backend(2).await;
    let backup = id_backend(9).await;
    let engine = Engine::start(simple("never", 60_000, 2, &[(backup.addr, 1, true), (p1.addr, 1, false), (p2.addr, 1, false)])).unwrap();
    let addr = addr_of(&engine, "l");
    for _ in 0..20 {
        assert_ne!(fetch_id(addr).await, 9, "backup used while primaries are up");
    }
    assert_eq!(backup.accepted(), 0);

    // One primary down: the other primary takes everything, still no backup.
    let p1_addr = p1.shut().await;
    for _ in 0..10 {
        assert_eq!(fetch_id(addr).await, 2, "expected the remaining primary");
    }
    assert_eq!(backup.accepted(), 0);

    // All primaries down: the backup takes over.
    let p2_addr = p2.shut().await;
    for _ in 0..10 {
        assert_eq!(fetch_id(addr).await, 9, "expected the backup once every primary is down");
    }
    assert_eq!(backup.accepted(), 10);
    let r = engine.stats();
    assert!(backend_stats(&r, "p", p1_addr).unwrap().connect_errors > 0);
    assert!(backend_stats(&r, "p", p2_addr).unwrap().connect_errors > 0);
    assert_eq!(listener_stats(&r, "l").unwrap().no_backend, 0);
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primaries_not_yet_known_down_move_on_to_the_backup() {
    // Four dead primaries (not checked down, passive detection off) and retries=1:
    // the primaries' two attempts fail, then the backup tier gets its own.
    let dead = refused_addrs::<4>();
    let backup = id_backend(9).await;
    let mut backends: Vec<_> = dead.iter().map(|&a| (a, 1, false)).collect();
    backends.push((backup.addr, 1, true));
    let mut p = pool("p", 1, &backends);
    p["passive"] = serde_json::json!({"consecutive_failures": 0, "ejection_ms": 1000, "max_ejection_ms": 1000, "max_ejection_percent": 50});
    let engine = Engine::start(config(&[listener("l", "127.0.0.1:0", "p", 60_000, "never")], &[p])).unwrap();
    let addr = addr_of(&engine, "l");
    for i in 0..20 {
        assert_eq!(fetch_id(addr).await, 9, "connection {i} failed instead of reaching the backup");
    }
    let r = engine.stats();
    assert_eq!(listener_stats(&r, "l").unwrap().no_backend, 0);
    let errors: u64 = dead.iter().map(|&a| backend_stats(&r, "p", a).unwrap().connect_errors).sum();
    assert_eq!(errors, 40, "two primary attempts per connection, then the backup");
    engine.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejection_limits_count_primaries_and_backups_apart() {
    // 3 primaries + 3 backups, max_ejection_percent 34: one primary may be
    // ejected (1 of 3), not two -- counting the backups in would allow two (2 of 6).
    let live = id_backend(1).await;
    let [d1, d2] = refused_addrs();
    let b = id_backends(20..23).await;
    let mut backends = vec![(d1, 1, false), (d2, 1, false), (live.addr, 1, false)];
    backends.extend(b.iter().map(|x| (x.addr, 1, true)));
    let mut p = pool("p", 2, &backends);
    p["passive"] =
        serde_json::json!({"consecutive_failures": 1, "ejection_ms": 60_000, "max_ejection_ms": 60_000, "max_ejection_percent": 34});
    let engine = Engine::start(config(&[listener("l", "127.0.0.1:0", "p", 60_000, "never")], &[p])).unwrap();
    let addr = addr_of(&engine, "l");
    for _ in 0..12 {
        assert_eq!(fetch_id(addr).await, 1);
    }
    let r = engine.stats();
    let ejected = [d1, d2].iter().filter(|&&a| backend_stats(&r, "p", a).unwrap().ejected).count();
    assert_eq!(ejected, 1, "{:?}", r.pools[0].backends);
    assert!(b.iter().all(|x| x.accepted() == 0));
    let events = engine.events().events;
    assert!(events.iter().any(|e| e.kind == "ejection_skipped"), "{events:?}");
    engine.close(Duration::from_secs(1)).await;
}

/// One `id_backend` per id.
async fn id_backends(ids: std::ops::Range<u8>) -> Vec<Backend> {
    let mut v = Vec::new();
    for id in ids {
        v.push(id_backend(id).await);
    }
    v
}
