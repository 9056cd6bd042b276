//! Live configuration updates: established transfers keep their backend and
//! complete intact, new connections follow the new table, listeners come and
//! go, and a failed update changes nothing.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::{Engine, ErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Barrier};

const HALF: usize = 4 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_swaps_backends_without_breaking_transfers() {
    let a = echo_backend().await;
    let b = echo_backend().await;
    let cfg_a = config(
        &[listener("l", "127.0.0.1:0", "p", 60_000, "auto"), listener("gone", "127.0.0.1:0", "p", 60_000, "never")],
        &[pool("p", 0, &[(a.addr, 1, false)])],
    );
    let engine = Arc::new(Engine::start(cfg_a).unwrap());
    let addr = addr_of(&engine, "l");
    let gone_addr = addr_of(&engine, "gone");

    // Three long transfers through A: each sends half, waits for its echo
    // (so it is surely established and flowing), then waits for the update.
    const N: usize = 3;
    let ready = Arc::new(Barrier::new(N + 1));
    let mut go = Vec::new();
    let mut transfers = Vec::new();
    for i in 0..N {
        let (tx, rx) = oneshot::channel::<()>();
        go.push(tx);
        let ready = Arc::clone(&ready);
        transfers.push(tokio::spawn(async move {
            let data = random_bytes(2 * HALF, 100 + i as u64);
            let s = TcpStream::connect(addr).await.unwrap();
            let (mut r, mut w) = s.into_split();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            });
            w.write_all(&data[..HALF]).await.unwrap();
            ready.wait().await;
            rx.await.unwrap();
            for chunk in data[HALF..].chunks(64 * 1024) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
            let got = reader.await.unwrap();
            assert_same(&got, &data, &format!("transfer {i} across the update"));
        }));
    }
    tokio::time::timeout(DEADLINE, ready.wait()).await.expect("transfers did not start");
    wait_until("A to carry the first halves", || a.accepted() == N as u64).await;

    // Replace A by B and drop listener "gone"; add listener "new".
    let cfg_b = config(
        &[listener("l", "127.0.0.1:0", "p", 60_000, "auto"), listener("new", "127.0.0.1:0", "p", 60_000, "always")],
        &[pool("p", 0, &[(b.addr, 1, false)])],
    );
    engine.update(cfg_b.clone()).unwrap();
    for tx in go {
        tx.send(()).unwrap();
    }
    for t in transfers {
        tokio::time::timeout(Duration::from_secs(60), t).await.expect("transfer stalled across the update").unwrap();
    }
    assert_eq!(a.accepted(), N as u64, "the old backend got new connections");
    assert_eq!(b.accepted(), 0, "established transfers moved to the new backend");

    // The unchanged listener keeps its port; new connections go to B.
    assert_eq!(addr_of(&engine, "l"), addr);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!((a.accepted(), b.accepted()), (N as u64, 1));
    drop(s);

    // The removed listener releases its port; the added one serves via B.
    wait_port_free(gone_addr).await;
    let names: Vec<String> = engine.addresses().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["l", "new"]);
    let new_addr = addr_of(&engine, "new");
    let got = send_and_collect(TcpStream::connect(new_addr).await.unwrap(), Arc::new(b"via new".to_vec()), 1).await;
    assert_eq!(got, b"via new");
    assert_eq!(b.accepted(), 2);

    // Stats follow the new table: pool p lists B only.
    let r = engine.stats();
    let backends: Vec<&str> = r.pools[0].backends.iter().map(|x| x.address.as_str()).collect();
    assert_eq!(backends, [b.addr.to_string()]);
    assert!(listener_stats(&r, "gone").is_none());

    Arc::try_unwrap(engine).ok().unwrap().close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_update_changes_nothing() {
    let a = id_backend(1).await;
    let c = id_backend(3).await;
    let cfg = config(&[listener("l", "127.0.0.1:0", "p", 60_000, "auto")], &[pool("p", 0, &[(a.addr, 1, false)])]);
    let engine = Engine::start(cfg).unwrap();
    let addr = addr_of(&engine, "l");
    let before = engine.addresses();

    // A port held by a plain socket (no SO_REUSEPORT) cannot be shared.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap();
    let bad = config(
        &[
            listener("l", "127.0.0.1:0", "q", 60_000, "never"),
            listener("extra", "127.0.0.1:0", "q", 60_000, "never"),
            listener("clash", &held.to_string(), "q", 60_000, "never"),
        ],
        &[pool("q", 0, &[(c.addr, 1, false)])],
    );
    let err = engine.update(bad).unwrap_err();
    assert_eq!(err.code, ErrorCode::Bind, "{err}");
    assert!(err.message.contains("clash"), "{err}");

    // Nothing changed: same listeners, same routing, same stats shape.
    assert_eq!(engine.addresses(), before);
    for _ in 0..5 {
        assert_eq!(fetch_id(addr).await, 1, "routing changed after a failed update");
    }
    assert_eq!(c.accepted(), 0);
    let r = engine.stats();
    assert_eq!(r.pools.len(), 1);
    assert_eq!(r.pools[0].name, "p");
    assert_eq!(backend_stats(&r, "p", a.addr).unwrap().total, 5);
    drop(holder);

    // An update with a mismatched worker count is refused the same way.
    let v = serde_json::json!({"workers": 3, "listeners": [listener("l", "127.0.0.1:0", "p", 60_000, "auto")],
                              "pools": [pool("p", 0, &[(c.addr, 1, false)])]});
    let err = engine.update(switchyard_core::EngineConfig::from_json(&v.to_string()).unwrap()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Config, "{err}");
    assert_eq!(fetch_id(addr).await, 1);

    // And after a good update, the table does change.
    engine.update(config(&[listener("l", "127.0.0.1:0", "q", 60_000, "auto")], &[pool("q", 0, &[(c.addr, 1, false)])])).unwrap();
    assert_eq!(engine.addresses(), before);
    assert_eq!(fetch_id(addr).await, 3);
    engine.close(Duration::from_secs(1)).await;
}
