//! UDP listeners on real sockets: flows pinned by the pool's algorithm,
//! replies from the listener's address, ICMP unreachable moving a flow,
//! idle timeout, max flows and bad datagrams.

mod common;

use common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::stats::UdpReport;
use switchyard_core::{Engine, EngineConfig};
use tokio::net::UdpSocket;

/// A UDP backend answering each datagram with its id, a space and the datagram.
async fn echo(id: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let mut reply = format!("{id} ").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, from).await;
        }
    });
    (addr, task)
}

fn udp_config(algorithm: &str, backends: &[SocketAddr], udp: serde_json::Value) -> EngineConfig {
    udp_config_logged(algorithm, backends, udp, false)
}

fn udp_config_logged(algorithm: &str, backends: &[SocketAddr], udp: serde_json::Value, access_log: bool) -> EngineConfig {
    let bs: Vec<_> = backends.iter().map(|a| json!({"address": a.to_string(), "weight": 1, "backup": false})).collect();
    let v = json!({"workers": 2,
        "listeners": [{"name": "u", "address": "127.0.0.1:0", "pool": "p", "backlog": 16, "idle_timeout_ms": 60000,
                       "splice": "never", "protocol": "udp", "udp": udp, "access_log": access_log}],
        "pools": [{"name": "p", "algorithm": algorithm, "connect_timeout_ms": 1000, "retries": 1, "hash_key": "source_ip", "backends": bs,
                   "passive": {"consecutive_failures": 1, "ejection_ms": 60000, "max_ejection_ms": 60000, "max_ejection_percent": 100}}]});
    EngineConfig::from_json(&v.to_string()).expect("valid udp config")
}

fn flows(idle_ms: u64, max: u32) -> serde_json::Value {
    json!({"flow_idle_timeout_ms": idle_ms, "max_flows": max, "responses": 0, "max_datagram_bytes": 1024})
}

/// A client on `ip` connected to the listener: it only takes replies from the listener's address.
async fn client(ip: &str, to: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(format!("{ip}:0")).await.unwrap();
    s.connect(to).await.unwrap();
    s
}

/// Send `msg` and wait for the reply; `None` after a generous wait.
async fn ask(s: &UdpSocket, msg: &str) -> Option<String> {
    s.send(msg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

fn udp_stats(engine: &Engine) -> UdpReport {
    let r = engine.stats();
    let l = r.listeners.into_iter().find(|l| l.name == "u").unwrap();
    l.udp.expect("a udp listener reports udp counters")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stay_on_one_backend_and_spread_over_both_replies_come_from_the_listener() {
    let ((a, _ta), (b, _tb)) = (echo("a").await, echo("b").await);
    let engine = Arc::new(Engine::start(udp_config("ip_hash", &[a, b], flows(60_000, 1000))).unwrap());
    let addr = addr_of(&engine, "u");
    let mut seen = std::collections::HashSet::new();
    for i in 1..=20 {
        let c = client(&format!("127.0.0.{}", i + 1), addr).await;
        let first = ask(&c, "hello").await.expect("a reply from the listener's address");
        let id = first.split(' ').next().unwrap().to_owned();
        assert_eq!(first, format!("{id} hello"));
        for k in 0..3 {
            assert_eq!(ask(&c, &format!("m{k}")).await.unwrap(), format!("{id} m{k}"), "client {i} stays on {id}");
        }
        seen.insert(id);
    }
    assert_eq!(seen.len(), 2, "20 clients spread over both backends: {seen:?}");
    let s = udp_stats(&engine);
    assert_eq!((s.flows_created, s.flows_active, s.datagrams_in, s.datagrams_out), (20, 20, 80, 80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_port_closes_loses_its_flows_to_the_other() {
    let (a, ta) = echo("a").await;
    let (b, _tb) = echo("b").await;
    let engine = Arc::new(Engine::start(udp_config("round_robin", &[a, b], flows(60_000, 1000))).unwrap());
    let addr = addr_of(&engine, "u");
    // Find a client on backend a.
    let mut on_a = None;
    for i in 1..=10 {
        let c = client(&format!("127.0.1.{i}"), addr).await;
        if ask(&c, "x").await.unwrap().starts_with("a ") {
            on_a = Some(c);
            break;
        }
    }
    let c = on_a.expect("round robin puts some client on a");
    ta.abort();
    // The port is closed: the next datagram draws an ICMP port unreachable; later ones go to b.
    wait_for("the flow to move to b", || async { ask(&c, "again").await.as_deref() == Some("b again") }).await;
    let s = udp_stats(&engine);
    assert!(s.backend_unreachable >= 1 && s.flows_moved >= 1, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flows_end_max_flows_hold_and_bad_datagrams_are_counted() {
    let (a, _ta) = echo("a").await;
    let engine = Arc::new(Engine::start(udp_config("round_robin", &[a], flows(300, 3))).unwrap());
    let addr = addr_of(&engine, "u");
    let mut cs = Vec::new();
    for i in 1..=3 {
        let c = client(&format!("127.0.2.{i}"), addr).await;
        assert!(ask(&c, "hi").await.is_some());
        cs.push(c);
    }
    let fourth = client("127.0.2.4", addr).await;
    assert_eq!(ask(&fourth, "hi").await, None, "a fourth flow is over max_flows");
    assert_eq!(udp_stats(&engine).dropped_max_flows, 1);
    // Empty and oversized datagrams are dropped and counted.
    cs[0].send(&[]).await.unwrap();
    cs[0].send(&vec![7u8; 1500]).await.unwrap();
    wait_until("the bad datagrams to be counted", || {
        let s = udp_stats(&engine);
        s.dropped_empty == 1 && s.dropped_oversized == 1
    })
    .await;
    // Quiet flows end after the idle timeout; then there is room again.
    wait_until("the idle flows to end", || udp_stats(&engine).flows_active == 0).await;
    assert!(udp_stats(&engine).flows_expired >= 3);
    assert_eq!(ask(&fourth, "now").await.as_deref(), Some("a now"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_responses_1_each_request_is_its_own_flow() {
    let ((a, _ta), (b, _tb)) = (echo("a").await, echo("b").await);
    let mut f = flows(60_000, 1000);
    f["responses"] = json!(1);
    let engine = Arc::new(Engine::start(udp_config("round_robin", &[a, b], f)).unwrap());
    let c = client("127.0.0.1", addr_of(&engine, "u")).await;
    let mut ids = std::collections::HashSet::new();
    for k in 0..6 {
        let r = ask(&c, &format!("q{k}")).await.unwrap();
        ids.insert(r.split(' ').next().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 2, "one client's requests spread over both backends: {ids:?}");
    let s = udp_stats(&engine);
    assert_eq!(s.flows_created, 6, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flow_ends_with_an_access_record_of_its_counters() {
    let (a, _ta) = echo("a").await;
    let engine = Arc::new(Engine::start(udp_config_logged("round_robin", &[a], flows(200, 10), true)).unwrap());
    let c = client("127.0.0.1", addr_of(&engine, "u")).await;
    for k in 0..3 {
        assert!(ask(&c, &format!("m{k}")).await.is_some());
    }
    let mut records = Vec::new();
    wait_for("the flow's record after its idle timeout", || {
        records.extend(engine.access_log().records);
        std::future::ready(!records.is_empty())
    })
    .await;
    let r = &records[0];
    assert_eq!((r.listener.as_str(), r.pool.as_str(), r.backend.clone()), ("u", "p", a.to_string()));
    assert_eq!(r.client, c.local_addr().unwrap().to_string());
    assert_eq!((r.bytes_in, r.bytes_out), (6, 12), "three 2-byte datagrams in, three 4-byte replies out");
    let u = r.udp.as_ref().expect("a udp record");
    assert_eq!((u.datagrams_in, u.datagrams_out), (3, 3));
    assert_eq!(serde_json::to_value(r.ended).unwrap(), "idle_timeout");
}
