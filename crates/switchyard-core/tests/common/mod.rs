//! Shared helpers for the integration tests: config builders, scripted
//! backends on real sockets, pseudo-random data and polling with deadlines.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::stats::{BackendReport, ListenerReport, StatsReport};
use switchyard_core::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Generous deadline for anything event-driven: the box is loaded.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const MODES: [&str; 3] = ["never", "always", "auto"];

// ---------------------------------------------------------------- configs

pub fn listener(name: &str, address: &str, pool: &str, idle_timeout_ms: u64, splice: &str) -> Value {
    json!({"name": name, "address": address, "pool": pool, "backlog": 1024,
           "idle_timeout_ms": idle_timeout_ms, "splice": splice})
}

/// A round-robin pool; `backends` are (address, weight, backup).
pub fn pool(name: &str, retries: u32, backends: &[(SocketAddr, u32, bool)]) -> Value {
    pool_with_timeout(name, retries, 2000, backends)
}

pub fn pool_with_timeout(name: &str, retries: u32, connect_timeout_ms: u64, backends: &[(SocketAddr, u32, bool)]) -> Value {
    let bs: Vec<Value> = backends.iter().map(|(a, w, b)| json!({"address": a.to_string(), "weight": w, "backup": b})).collect();
    json!({"name": name, "algorithm": "round_robin", "connect_timeout_ms": connect_timeout_ms,
           "retries": retries, "backends": bs})
}

pub fn config(listeners: &[Value], pools: &[Value]) -> EngineConfig {
    let v = json!({"workers": 2, "listeners": listeners, "pools": pools});
    EngineConfig::from_json(&v.to_string()).expect("valid test config")
}

/// One listener `l` on an ephemeral port routed to pool `p` over `backends`.
pub fn simple(splice: &str, idle_timeout_ms: u64, retries: u32, backends: &[(SocketAddr, u32, bool)]) -> EngineConfig {
    config(&[listener("l", "127.0.0.1:0", "p", idle_timeout_ms, splice)], &[pool("p", retries, backends)])
}

pub fn addr_of(engine: &Engine, name: &str) -> SocketAddr {
    engine.addresses().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener named {name}")).1
}

pub fn backend_stats<'a>(report: &'a StatsReport, pool: &str, addr: SocketAddr) -> Option<&'a BackendReport> {
    let addr = addr.to_string();
    report.pools.iter().find(|p| p.name == pool)?.backends.iter().find(|b| b.address == addr)
}

pub fn listener_stats<'a>(report: &'a StatsReport, name: &str) -> Option<&'a ListenerReport> {
    report.listeners.iter().find(|l| l.name == name)
}

// ---------------------------------------------------------------- backends

/// A test backend: a real tokio listener running `handler` per connection.
/// Dropping it stops accepting and closes the listening socket.
pub struct Backend {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Backend {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stop accepting and wait until the port refuses connections.
    pub async fn shut(mut self) -> SocketAddr {
        let addr = self.addr;
        self.task.abort();
        let _ = (&mut self.task).await;
        wait_for("backend port to refuse", || async move { TcpStream::connect(addr).await.is_err() }).await;
        addr
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn backend<F, Fut>(handler: F) -> Backend
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    backend_on(l, handler)
}

pub fn backend_on<F, Fut>(l: TcpListener, handler: F) -> Backend
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handler(s));
        }
    });
    Backend { addr, accepted, task }
}

/// Echo everything back; pass the client's FIN on once all is echoed.
pub async fn echo_backend() -> Backend {
    backend(|s| async move {
        let (mut r, mut w) = s.into_split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    })
    .await
}

/// Write one identifying byte, half-close, then wait for the client to go.
pub async fn id_backend(id: u8) -> Backend {
    backend(move |mut s| async move {
        let _ = s.write_all(&[id]).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    })
    .await
}

/// An address nothing listens on (bound once, then released).
pub fn refused_addr() -> SocketAddr {
    refused_addrs::<1>()[0]
}

/// `N` distinct addresses nothing listens on: all are bound at once before
/// any is released (one at a time, the kernel may hand out the same port twice).
pub fn refused_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap())
}

// ---------------------------------------------------------------- clients

/// Connect through the balancer and read the backend's id byte (then EOF).
pub async fn fetch_id(addr: SocketAddr) -> u8 {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf.len(), 1, "expected one id byte, got {buf:?}");
        buf[0]
    };
    tokio::time::timeout(DEADLINE, fut).await.expect("fetch_id timed out")
}

/// Send `data` (in uneven chunks) and half-close, while reading everything
/// the other side sends until EOF. Returns what was read.
pub async fn send_and_collect(stream: TcpStream, data: Arc<Vec<u8>>, seed: u64) -> Vec<u8> {
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut rng = Rng(seed | 1);
        let mut off = 0;
        while off < data.len() {
            let n = (1 + (rng.next() % (256 * 1024)) as usize).min(data.len() - off);
            w.write_all(&data[off..off + n]).await.unwrap();
            off += n;
        }
        w.shutdown().await.unwrap();
        w // keep the socket open until the reader is done
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    drop(writer.await.unwrap());
    got
}

// ---------------------------------------------------------------- data

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Index of the first differing byte (for readable failures on big buffers).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or(if a.len() != b.len() { Some(a.len().min(b.len())) } else { None })
}

pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        panic!("{what}: got {} bytes, want {}; first difference at byte {:?}", got.len(), want.len(), first_difference(got, want));
    }
}

// ---------------------------------------------------------------- waiting

/// Poll `cond` until it holds; panic after [`DEADLINE`].
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Poll a synchronous condition until it holds; panic after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, || std::future::ready(cond())).await
}

/// Poll until a plain (no SO_REUSEPORT) bind of `addr` succeeds: the port is free.
pub async fn wait_port_free(addr: SocketAddr) {
    wait_until(&format!("{addr} to be released"), || std::net::TcpListener::bind(addr).is_ok()).await
}

/// Read until EOF or error; returns the bytes read and whether it ended cleanly.
pub async fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let fut = async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => return true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    };
    let clean = tokio::time::timeout(DEADLINE, fut).await.expect("connection was not closed within the deadline");
    (buf, clean)
}
