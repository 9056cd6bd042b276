//! An upgrade in one process: engine A (the old process) hands its listening
//! sockets and its established connections to engine B (the new one) over a
//! hand-over socket pair. A transfer in flight arrives byte-identical, idle
//! connections keep working, new connections go to B, and A can close.

mod common;

use common::*;
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::handoff::child::Child;
use switchyard_core::handoff::parent::Parent;
use switchyard_core::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SIZE: usize = 48 * 1024 * 1024;
const IDLE: usize = 40;

/// A hand-over pair whose child end is owned separately, as if inherited.
fn pair() -> (Arc<Parent>, Arc<Child>) {
    let parent = Parent::new().unwrap();
    // SAFETY: the parent keeps its end open until `spawned`, after the dup.
    let theirs = unsafe { BorrowedFd::borrow_raw(parent.child_fd().unwrap()) }.try_clone_to_owned().unwrap();
    parent.spawned();
    let child = Child::from_inherited(theirs.into_raw_fd()).unwrap();
    (Arc::new(parent), Arc::new(child))
}

async fn ping(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut got)).await.expect("echo timed out").unwrap();
    assert_eq!(got, msg);
}

async fn upgrade(mode: &str) {
    let echo = echo_backend().await;
    let old = Arc::new(Engine::start(simple(mode, 60_000, 0, &[(echo.addr, 1, false)])).unwrap());
    let addr = addr_of(&old, "l");
    let mut idle = Vec::new();
    for i in 0..IDLE {
        let mut s = TcpStream::connect(addr).await.unwrap();
        ping(&mut s, format!("hello {i}").as_bytes()).await;
        idle.push(s);
    }
    let data = Arc::new(random_bytes(SIZE, 7));
    let transfer = tokio::spawn(send_and_collect(TcpStream::connect(addr).await.unwrap(), Arc::clone(&data), 7));
    wait_until("the transfer is under way", || backend_stats(&old.stats(), "p", echo.addr).unwrap().bytes_out > 4 << 20).await;

    let (parent, child) = pair();
    let sockets = old.listening_sockets().unwrap();
    let offer = tokio::task::spawn_blocking({
        let parent = Arc::clone(&parent);
        move || parent.offer_sockets(&sockets, DEADLINE)
    });
    let mut inherited = tokio::task::spawn_blocking({
        let child = Arc::clone(&child);
        move || child.receive_sockets("test", DEADLINE)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(offer.await.unwrap().unwrap(), "test");
    let new = Arc::new(Engine::start_inheriting(simple(mode, 60_000, 0, &[(echo.addr, 1, false)]), Some(&mut inherited)).unwrap());
    assert!(inherited.is_empty(), "the listener took its socket");
    assert_eq!(addr_of(&new, "l"), addr, "same socket, same address");
    child.ready().unwrap();
    parent.wait_ready(DEADLINE).unwrap();
    old.stop_accepting().await;

    let adopt = tokio::task::spawn_blocking({
        let (child, new) = (Arc::clone(&child), Arc::clone(&new));
        move || child.adopt_connections(&*new)
    });
    let handed = tokio::task::spawn_blocking({
        let (parent, old) = (Arc::clone(&parent), Arc::clone(&old));
        move || parent.hand_connections(&*old, DEADLINE)
    })
    .await
    .unwrap()
    .unwrap();
    let adopted = adopt.await.unwrap().unwrap();
    assert_eq!(handed.connections, IDLE as u64 + 1, "splice={mode}: every plain connection went over");
    assert_eq!(adopted.connections, handed.connections);
    assert_eq!(adopted.bytes, handed.bytes);
    // The old engine holds nothing any more and can go.
    wait_until("the old engine's connections are gone", || old.stats().connections_active == 0).await;
    old.close(Duration::from_secs(1)).await;

    let got = match tokio::time::timeout(Duration::from_secs(20), transfer).await {
        Ok(r) => r.unwrap(),
        Err(_) => {
            let r = new.stats();
            panic!(
                "splice={mode}: the transfer did not finish; handed {handed:?}; new engine: {:?} active {}",
                backend_stats(&r, "p", echo.addr),
                r.connections_active
            );
        }
    };
    assert_same(&got, &data, &format!("splice={mode}: a transfer handed over mid-way"));
    for (i, s) in idle.iter_mut().enumerate() {
        ping(s, format!("still here {i}").as_bytes()).await;
    }
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    ping(&mut fresh, b"new connection").await;
    let r = new.stats();
    assert_eq!(listener_stats(&r, "l").unwrap().accepted, 1, "only the fresh connection was accepted by the new engine");
    assert_eq!(r.connections_active, IDLE as u64 + 1, "the adopted idle connections and the fresh one");
    drop((idle, fresh));
    new.close(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_copy() {
    upgrade("never").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_splice() {
    upgrade("always").await;
}

/// Parked connections that no hand-over takes continue where they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spread_close_lets_connections_finish_then_ends_them_within_the_window() {
    let echo = echo_backend().await;
    let engine = Arc::new(Engine::start(simple("auto", 60_000, 0, &[(echo.addr, 1, false)])).unwrap());
    let addr = addr_of(&engine, "l");
    let mut conns = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        ping(&mut s, format!("c{i}").as_bytes()).await;
        conns.push(s);
    }
    let started = std::time::Instant::now();
    let closing = tokio::spawn({
        let engine = Arc::clone(&engine);
        async move { engine.close_with(Duration::from_secs(3), true).await }
    });
    // Parked and resumed: each still echoes until its own instant in the window (one drawn
    // near its start may already be closed: then it was closed cleanly, not reset).
    let watchers: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let _ = s.write_all(b"during the drain").await; // may meet a connection closed already
                let (got, _) = tokio::time::timeout(DEADLINE, read_until_closed(&mut s)).await.expect("closed by the end of the window");
                assert!(got.is_empty() || got == b"during the drain", "echoed {got:?}");
                (!got.is_empty(), started.elapsed())
            })
        })
        .collect();
    let mut ended_at = Vec::new();
    let mut echoed = 0;
    for w in watchers {
        let (ok, at) = w.await.unwrap();
        echoed += usize::from(ok);
        ended_at.push(at);
    }
    // Uniform instants over 3 s: nearly all still answer right after the close began.
    assert!(echoed >= 10, "{echoed} of 20 answered during the drain");
    closing.await.unwrap();
    ended_at.sort();
    // Spread, not all at the end: the first ends well before the last.
    assert!(ended_at[0] + Duration::from_millis(500) < ended_at[19], "ends: {ended_at:?}");
}
