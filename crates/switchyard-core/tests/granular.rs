//! Granular updates and listener sockets: a pool-only update rebuilds that
//! pool alone; a full update rebuilds only pools that changed; a changed
//! backlog or `defer_accept` is applied to the running socket (same port,
//! no second bind); and without `accept: reuseport` a second engine cannot
//! bind an address in use.

mod common;

use common::*;
use switchyard_core::config::PoolConfig;
use switchyard_core::{Engine, ErrorCode};

fn two_pools(a: std::net::SocketAddr, b: std::net::SocketAddr, weight_b: u32) -> switchyard_core::EngineConfig {
    config(
        &[listener("l", "127.0.0.1:0", "p", 60_000, "never"), listener("m", "127.0.0.1:0", "q", 60_000, "never")],
        &[pool("p", 0, &[(a, 1, false), (b, weight_b, false)]), pool("q", 0, &[(a, 1, false)])],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_rebuild_only_what_changed() {
    let (a, b) = (id_backend(1).await, id_backend(2).await);
    let engine = Engine::start(two_pools(a.addr, b.addr, 1)).unwrap();
    let built = |e: &Engine| (e.stats().builds.pools, e.stats().builds.tls_configs);
    assert_eq!(built(&engine), (2, 0));

    engine.update(two_pools(a.addr, b.addr, 1)).unwrap();
    assert_eq!(built(&engine), (2, 0), "an equal config rebuilds nothing");

    engine.update(two_pools(a.addr, b.addr, 0)).unwrap();
    assert_eq!(built(&engine), (3, 0), "one changed pool is rebuilt, the other shared");
    let l = addr_of(&engine, "l");
    for _ in 0..4 {
        assert_eq!(fetch_id(l).await, 1, "weight 0 takes no new connections");
    }

    let p: PoolConfig = serde_json::from_value(pool("p", 0, &[(a.addr, 0, false), (b.addr, 1, false)])).unwrap();
    engine.update_pool(p).unwrap();
    assert_eq!(built(&engine), (4, 0), "a pool-only update builds that pool alone");
    for _ in 0..4 {
        assert_eq!(fetch_id(l).await, 2);
    }
    assert_eq!(fetch_id(addr_of(&engine, "m")).await, 1, "pool q is untouched");

    let missing: PoolConfig = serde_json::from_value(pool("nope", 0, &[(a.addr, 1, false)])).unwrap();
    assert_eq!(engine.update_pool(missing).unwrap_err().code, ErrorCode::NotFound);
    engine.close(std::time::Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_and_defer_accept_change_in_place_and_a_second_engine_cannot_bind() {
    let a = id_backend(7).await;
    let base = || config(&[listener("l", "127.0.0.1:0", "p", 60_000, "never")], &[pool("p", 0, &[(a.addr, 1, false)])]);
    let engine = Engine::start(base()).unwrap();
    let addr = addr_of(&engine, "l");

    // Same address (the bound port), new backlog and defer_accept: applied to the running socket.
    let mut next = base();
    next.listeners[0].address = addr.to_string();
    next.listeners[0].backlog = 64;
    next.listeners[0].defer_accept = true;
    engine.update(next.clone()).unwrap();
    assert_eq!(addr_of(&engine, "l"), addr, "the listener kept its socket");
    assert_eq!(fetch_id(addr).await, 7);

    // Default accept mode shares one socket among the workers without SO_REUSEPORT:
    // another engine on the same address fails to bind instead of taking connections.
    let err = Engine::start(next).err().expect("the address is in use");
    assert_eq!(err.code, ErrorCode::Bind);
    assert!(err.message.contains(&format!("cannot bind {addr}")), "{}", err.message);
    assert_eq!(fetch_id(addr).await, 7);
    engine.close(std::time::Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_listener_takes_over_its_socket() {
    let a = id_backend(3).await;
    let with = |name: &str, address: &str| config(&[listener(name, address, "p", 60_000, "never")], &[pool("p", 0, &[(a.addr, 1, false)])]);
    let engine = Engine::start(with("old", "127.0.0.1:0")).unwrap();
    let addr = addr_of(&engine, "old");
    // Without SO_REUSEPORT the address cannot be bound twice: the new name takes the old socket.
    engine.update(with("new", &addr.to_string())).unwrap();
    assert_eq!(engine.addresses(), vec![("new".to_owned(), addr)]);
    for _ in 0..3 {
        assert_eq!(fetch_id(addr).await, 3);
    }
    engine.close(std::time::Duration::ZERO).await;
}
