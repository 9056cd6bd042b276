//! Hot-path micro-benchmarks: backend selection on a built snapshot, and the
//! per-connection snapshot load + route lookup.

use arc_swap::ArcSwap;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::sync::Arc;
use switchyard_core::registry::Registry;
use switchyard_core::select::PickContext;
use switchyard_core::snapshot::Snapshot;
use switchyard_core::EngineConfig;

fn config(backends: usize, backups: usize, listeners: usize) -> EngineConfig {
    let bs: Vec<_> = (0..backends + backups)
        .map(|i| json!({"address": format!("10.0.{}.{}:8080", i / 250, i % 250 + 1), "weight": 1, "backup": i >= backends}))
        .collect();
    let ls: Vec<_> = (0..listeners)
        .map(|i| {
            json!({"name": format!("listener-{i}"), "address": format!("127.0.0.1:{}", 20000 + i), "pool": "p",
                        "backlog": 128, "idle_timeout_ms": 1000, "splice": "auto"})
        })
        .collect();
    let v = json!({"workers": 1, "listeners": ls,
                   "pools": [{"name": "p", "algorithm": "round_robin", "connect_timeout_ms": 1000, "retries": 2, "backends": bs}]});
    EngineConfig::from_json(&v.to_string()).unwrap()
}

fn bench_pick(c: &mut Criterion) {
    let ctx = PickContext { key: 0x5eed, client: "192.0.2.1:40000".parse().unwrap() };
    let registry = Registry::default();

    let snap = Snapshot::build(&config(10, 0, 1), &registry, None).expect("a valid snapshot");
    let pool = Arc::clone(&snap.pools[0]);
    c.bench_function("pool_pick/round_robin_10", |b| b.iter(|| black_box(pool.pick(black_box(&ctx), black_box(&[]), true))));

    // A retry: two backends already tried.
    c.bench_function("pool_pick/round_robin_10_two_tried", |b| b.iter(|| black_box(pool.pick(black_box(&ctx), black_box(&[0, 1]), true))));

    // Every primary tried: falls through to the backup tier (two selector passes).
    let snap_b = Snapshot::build(&config(10, 2, 1), &registry, None).expect("a valid snapshot");
    let pool_b = Arc::clone(&snap_b.pools[0]);
    let all: Vec<usize> = (0..10).collect();
    c.bench_function("pool_pick/round_robin_10_to_backup", |b| b.iter(|| black_box(pool_b.pick(black_box(&ctx), black_box(&all), true))));
}

fn bench_route(c: &mut Criterion) {
    let registry = Registry::default();
    for listeners in [1usize, 32] {
        let swap = ArcSwap::from_pointee(Snapshot::build(&config(10, 0, listeners), &registry, None).expect("a valid snapshot"));
        let name = format!("listener-{}", listeners - 1);
        c.bench_function(&format!("snapshot_load_route/{listeners}_listeners"), |b| {
            b.iter(|| {
                let snap = swap.load();
                black_box(snap.listeners.get(black_box(name.as_str())).cloned())
            })
        });
    }
    // The whole per-connection decision: load, route, pick.
    let swap = ArcSwap::from_pointee(Snapshot::build(&config(10, 0, 1), &registry, None).expect("a valid snapshot"));
    let ctx = PickContext { key: 0x5eed, client: "192.0.2.1:40000".parse().unwrap() };
    c.bench_function("snapshot_load_route_pick/10_backends", |b| {
        b.iter(|| {
            let listener = swap.load().listeners.get(black_box("listener-0")).cloned().unwrap();
            let pool = listener.routes.pool_for(None);
            black_box(pool.pick(&PickContext { key: pool.key_of(ctx.client), ..ctx }, &[], true))
        })
    });
}

criterion_group!(benches, bench_pick, bench_route);
criterion_main!(benches);
