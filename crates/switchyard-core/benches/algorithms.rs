//! Selection cost per algorithm at 10, 100 and 1,000 backends, and the cost of
//! building the hash tables (done off the hot path, on update).
//! Targets (issue 4): every pick < 100 ns; round robin and Maglev < 30 ns;
//! Maglev build for 1,000 backends at M = 65537 < 10 ms.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::json;
use std::time::Duration;
use switchyard_core::catalog::Algorithm;
use switchyard_core::config::PoolConfig;
use switchyard_core::plan::synthetic_key;
use switchyard_core::registry::Registry;
use switchyard_core::select::PickContext;
use switchyard_core::snapshot::Pool;

fn pool_config(algorithm: Algorithm, n: usize) -> PoolConfig {
    let bs: Vec<_> = (0..n)
        .map(|i| json!({"address": format!("10.{}.{}.{}:8080", i / 65536, (i / 256) % 256, i % 256), "weight": 1 + (i % 3), "backup": false}))
        .collect();
    serde_json::from_value(json!({"name": "p", "algorithm": algorithm, "connect_timeout_ms": 1000, "retries": 2, "backends": bs})).unwrap()
}

fn bench_picks(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1));
    for algorithm in Algorithm::ALL {
        for n in [10usize, 100, 1000] {
            let pool = Pool::build(&pool_config(algorithm, n), &Registry::default()).expect("a valid pool");
            // The route computes each client's key once; the pick reads it.
            let clients: Vec<PickContext> =
                (0..1024).map(synthetic_key).map(|client| PickContext { key: pool.key_of(client), client }).collect();
            let mut k = 0usize;
            g.bench_with_input(BenchmarkId::new(algorithm.name(), n), &n, |b, _| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    black_box(pool.pick(&clients[k], &[], true))
                })
            });
        }
    }
    g.finish();
}

fn bench_builds(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for algorithm in [Algorithm::Maglev, Algorithm::ConsistentHash, Algorithm::WeightedRoundRobin] {
        let cfg = pool_config(algorithm, 1000);
        g.bench_function(BenchmarkId::new(algorithm.name(), 1000), |b| b.iter(|| black_box(Pool::build(&cfg, &Registry::default()))));
    }
    g.finish();
}

criterion_group!(benches, bench_picks, bench_builds);
criterion_main!(benches);
