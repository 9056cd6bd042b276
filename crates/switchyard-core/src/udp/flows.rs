//! One worker's share of a UDP listener: its socket (one `SO_REUSEPORT`
//! socket per worker; the kernel hashes a client's address to one of them,
//! so a client's datagrams always reach the same worker) and the flows it
//! owns, in a table no other thread touches.
//!
//! A flow is a client address pinned to a backend chosen by the pool's
//! algorithm (hash algorithms keep a client on one backend across flows),
//! with its own socket `connect`ed to that backend: replies are told apart by
//! socket, and an ICMP port unreachable from the backend surfaces as
//! `ECONNREFUSED` on it (passive health). Replies go back through the
//! listener's socket, so they come from the listener's address.
//!
//! A flow ends when it has been quiet for `flow_idle_timeout`, after
//! `responses` replies, or when its backend is no longer usable (its socket
//! got `ECONNREFUSED`, or the backend went down, was drained past its
//! deadline or put in maintenance): the client's next datagram starts a new
//! flow, on another backend if the pool says so.

use super::batch::{Batch, BATCH};
use super::config::{UdpListenerConfig, MAX_DATAGRAM};
use crate::access::{AccessRecord, Ended, UdpRecord};
use crate::health::{now_ms, Failure};
use crate::http::InFlight;
use crate::pipeline::upstream::passive_failure;
use crate::select::PickContext;
use crate::shared::Shared;
use crate::snapshot::{Listener, Pool};
use crate::stats::ListenerStats;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// How often a worker looks for flows to end.
const SWEEP: Duration = Duration::from_millis(250);

/// Replies taken from a flow's socket in one call at most.
const REPLY_BATCH: usize = 4;

thread_local! {
    /// Each worker's buffers for replies: reply tasks of one worker run one
    /// at a time and never hold them across an await.
    static REPLIES: RefCell<Batch> = RefCell::new(Batch::new(MAX_DATAGRAM, REPLY_BATCH));
}

/// What a flow's reply task and the worker's loop share.
#[derive(Debug, Default)]
struct FlowState {
    /// `now_ms()` of the last datagram either way.
    last: AtomicU64,
    /// The flow's own counters (its access-log record).
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Its backend answered `ECONNREFUSED` (or its socket failed).
    broken: AtomicBool,
    /// It sent its `responses` replies.
    answered: AtomicBool,
}

/// One client's flow: its backend (a slot counted there and in the pool
/// while it lives), its socket to that backend and the task relaying replies.
struct Flow {
    upstream: Arc<UdpSocket>,
    state: Arc<FlowState>,
    slot: InFlight,
    replies: tokio::task::JoinHandle<()>,
    stats: Arc<ListenerStats>,
    /// Listeners with `access_log`: where its record goes when it ends.
    log: Option<Box<FlowLog>>,
    /// Why it ends, for that record (`Cancelled` unless told otherwise).
    ended: Ended,
}

/// What a flow's access-log record needs besides its counters.
struct FlowLog {
    shared: Arc<Shared>,
    listener: Arc<str>,
    client: SocketAddr,
    started_ms: u64,
    started: std::time::Instant,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.replies.abort();
        self.stats.udp.flows_active.fetch_sub(1, Relaxed);
        if let Some(log) = self.log.take() {
            let s = &self.state;
            log.shared.access.push(AccessRecord {
                time_ms: log.started_ms,
                listener: log.listener.to_string(),
                client: log.client.to_string(),
                pool: self.slot.pool().name.clone(),
                backend: self.slot.backend().addr.to_string(),
                duration_ms: log.started.elapsed().as_millis() as u64,
                bytes_in: s.bytes_in.load(Relaxed),
                bytes_out: s.bytes_out.load(Relaxed),
                ended: self.ended,
                http: None,
                rule: None,
                tag: None,
                udp: Some(UdpRecord { datagrams_in: s.datagrams_in.load(Relaxed), datagrams_out: s.datagrams_out.load(Relaxed) }),
            });
        }
    }
}

impl Flow {
    /// May it carry the client's next datagram?
    fn usable(&self) -> bool {
        !self.state.broken.load(Relaxed) && !self.state.answered.load(Relaxed) && self.slot.backend().keeps_sessions()
    }
}

/// Serve one worker's socket of listener `name` until `stop`.
pub async fn serve(shared: Arc<Shared>, name: Arc<str>, socket: Arc<UdpSocket>, stop: CancellationToken) {
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut batch = Batch::new(max_datagram(&shared, &name), BATCH);
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = sweep.tick() => {
                expire(&mut flows, &shared, &name);
                // A reload may have changed the largest datagram allowed.
                let max = max_datagram(&shared, &name);
                if !batch.fits(max) {
                    batch = Batch::new(max, BATCH);
                }
            }
            r = socket.readable() => {
                if r.is_err() {
                    break;
                }
                // Drain what waits, a batch per system call, until one comes back short
                // (the socket is empty and its readiness cleared). Other errors of an
                // unconnected socket concern one datagram: go on at the next readiness.
                while let Ok(more) = batch.recv(&socket) {
                    for (data, client, truncated) in batch.datagrams() {
                        datagram(&shared, &name, &socket, &mut flows, data, truncated, client);
                    }
                    if !more {
                        break;
                    }
                }
            }
        }
    }
}

/// The listener's largest datagram (the most a datagram can be when the
/// listener is gone from the tables: this task ends at its next wake-up).
fn max_datagram(shared: &Shared, name: &str) -> usize {
    shared.snapshot.load().listeners.get(name).and_then(|l| l.udp.as_ref()).map_or(MAX_DATAGRAM, |u| u.max_datagram_bytes as usize)
}

/// Forward one datagram from `client` (`truncated`: it was larger than its buffer).
#[allow(clippy::too_many_arguments)] // one call site: a datagram and where it goes
fn datagram(
    shared: &Arc<Shared>,
    name: &str,
    socket: &Arc<UdpSocket>,
    flows: &mut HashMap<SocketAddr, Flow>,
    data: &[u8],
    truncated: bool,
    client: SocketAddr,
) {
    let snap = shared.snapshot.load();
    let Some(l) = snap.listeners.get(name) else { return };
    let Some(cfg) = &l.udp else { return };
    let stats = &l.stats.udp;
    stats.datagrams_in.fetch_add(1, Relaxed);
    stats.bytes_in.fetch_add(data.len() as u64, Relaxed);
    if data.is_empty() {
        stats.dropped_empty.fetch_add(1, Relaxed);
        return;
    }
    if truncated || data.len() > cfg.max_datagram_bytes as usize {
        stats.dropped_oversized.fetch_add(1, Relaxed);
        return;
    }
    if let Some(f) = flows.get(&client) {
        // A backend that went away may say so on this send (the ICMP error is
        // reported by whichever call comes next): then this datagram starts a new flow.
        if f.usable() && send(f, data, shared, &l.stats) {
            return;
        }
        let mut f = flows.remove(&client).expect("just found");
        count_end(&mut f, stats);
    }
    if stats.flows_active.load(Relaxed) >= u64::from(cfg.max_flows) {
        stats.dropped_max_flows.fetch_add(1, Relaxed);
        return;
    }
    match open(shared, name, l, cfg, socket, client) {
        Some(f) => {
            send(&f, data, shared, &l.stats);
            flows.insert(client, f);
        }
        None => {
            stats.dropped_no_backend.fetch_add(1, Relaxed);
        }
    }
}

/// Send `data` to the flow's backend; false when the backend turned out
/// unreachable. A full socket buffer drops the datagram (UDP). The send is a
/// plain non-blocking `send(2)`: tokio's `try_send` would refuse on a new
/// socket until the reactor has reported it writable.
fn send(f: &Flow, data: &[u8], shared: &Shared, stats: &ListenerStats) -> bool {
    f.state.last.store(now_ms(), Relaxed);
    let b = f.slot.backend();
    match socket2::SockRef::from(&*f.upstream).send(data) {
        Ok(_) => {
            b.stats.bytes_in.fetch_add(data.len() as u64, Relaxed);
            f.state.datagrams_in.fetch_add(1, Relaxed);
            f.state.bytes_in.fetch_add(data.len() as u64, Relaxed);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            backend_unreachable(&f.state, stats, f.slot.pool(), f.slot.backend(), shared);
            false
        }
        Err(_) => true,
    }
}

/// The backend answered a datagram with ICMP port unreachable: nothing
/// listens there (any more). Fed to passive detection; the flow moves.
fn backend_unreachable(state: &FlowState, stats: &ListenerStats, pool: &Pool, b: &crate::backend::Backend, shared: &Shared) {
    stats.udp.backend_unreachable.fetch_add(1, Relaxed);
    b.stats.connect_errors.fetch_add(1, Relaxed);
    passive_failure(pool, b, Failure::ConnectRefused, &shared.events);
    state.broken.store(true, Relaxed);
}

/// A new flow for `client`: a backend by the pool's algorithm (keyed by the
/// client address), a socket connected to it and the task relaying its
/// replies. `None` when no backend is available (or none could be reached).
fn open(
    shared: &Arc<Shared>,
    name: &str,
    l: &Listener,
    cfg: &UdpListenerConfig,
    socket: &Arc<UdpSocket>,
    client: SocketAddr,
) -> Option<Flow> {
    let pool = &l.routes.default;
    let ctx = PickContext { key: pool.key_of(client), client };
    let mut tried = Vec::with_capacity(2);
    while let Some(i) = pool.next_attempt(&ctx, &tried) {
        tried.push(i);
        let Some(slot) = InFlight::reserve(Arc::clone(pool), i) else { continue };
        let b = &pool.backends[i];
        let upstream = match connect(b.addr) {
            Ok(s) => Arc::new(s),
            // Out of descriptors (each flow holds one): no backend is to blame.
            Err(e) if crate::net::is_local_exhaustion(&e) => return None,
            Err(_) => {
                b.stats.connect_errors.fetch_add(1, Relaxed);
                continue;
            }
        };
        b.stats.total.fetch_add(1, Relaxed);
        let state = Arc::new(FlowState { last: AtomicU64::new(now_ms()), ..FlowState::default() });
        let replies = tokio::spawn(relay_replies(
            Arc::clone(&upstream),
            Arc::clone(socket),
            client,
            Arc::clone(&state),
            Arc::clone(&l.stats),
            (Arc::clone(pool), i),
            Arc::clone(shared),
            cfg.responses,
        ));
        l.stats.udp.flows_active.fetch_add(1, Relaxed);
        l.stats.udp.flows_created.fetch_add(1, Relaxed);
        let log = l.access_log.then(|| {
            Box::new(FlowLog {
                shared: Arc::clone(shared),
                listener: Arc::from(name),
                client,
                started_ms: crate::events::wall_ms(),
                started: std::time::Instant::now(),
            })
        });
        return Some(Flow { upstream, state, slot, replies, stats: Arc::clone(&l.stats), log, ended: Ended::Cancelled });
    }
    None
}

/// A socket on an ephemeral port connected to `backend`.
/// (Created non-blocking; `connect` picks the port: two system calls, which
/// matters with `responses: 1`, where every request opens a flow.)
fn connect(backend: SocketAddr) -> io::Result<UdpSocket> {
    #[cfg(target_os = "linux")]
    let ty = socket2::Type::DGRAM.nonblocking().cloexec();
    #[cfg(not(target_os = "linux"))]
    let ty = socket2::Type::DGRAM;
    let s = socket2::Socket::new(socket2::Domain::for_address(backend), ty, Some(socket2::Protocol::UDP))?;
    #[cfg(not(target_os = "linux"))]
    s.set_nonblocking(true)?;
    s.connect(&backend.into())?;
    UdpSocket::from_std(s.into())
}

/// Relay the backend's replies to `client` through the listener's socket
/// until the flow ends (the task is aborted), `responses` replies went out,
/// or the backend is unreachable.
#[allow(clippy::too_many_arguments)] // one call site: the parts of one flow
async fn relay_replies(
    upstream: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    state: Arc<FlowState>,
    stats: Arc<ListenerStats>,
    (pool, i): (Arc<Pool>, usize),
    shared: Arc<Shared>,
    responses: u32,
) {
    let b = &pool.backends[i];
    let mut sent = 0u32;
    loop {
        if upstream.readable().await.is_err() {
            state.broken.store(true, Relaxed);
            return;
        }
        let got = REPLIES.with(|replies| {
            let mut replies = replies.borrow_mut();
            replies.recv(&upstream)?;
            let mut n = 0u32;
            for (data, _, _) in replies.datagrams() {
                // Past `responses`, the flow has ended: a late reply is not relayed.
                if responses != 0 && sent + n >= responses {
                    break;
                }
                n += 1;
                stats.udp.datagrams_out.fetch_add(1, Relaxed);
                stats.udp.bytes_out.fetch_add(data.len() as u64, Relaxed);
                state.datagrams_out.fetch_add(1, Relaxed);
                state.bytes_out.fetch_add(data.len() as u64, Relaxed);
                b.stats.bytes_out.fetch_add(data.len() as u64, Relaxed);
                super::outbox::send(&listener, &stats, client, data);
            }
            Ok::<_, io::Error>(n)
        });
        match got {
            Ok(n) => {
                state.last.store(now_ms(), Relaxed);
                b.health.record_success();
                sent += n;
                if responses != 0 && sent >= responses {
                    state.answered.store(true, Relaxed);
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                backend_unreachable(&state, &stats, &pool, b, &shared);
                return;
            }
            Err(_) => {
                state.broken.store(true, Relaxed);
                return;
            }
        }
    }
}

/// End flows that are done: quiet past the idle timeout, answered, or whose
/// backend is no longer usable.
fn expire(flows: &mut HashMap<SocketAddr, Flow>, shared: &Shared, name: &str) {
    if flows.is_empty() {
        return;
    }
    let snap = shared.snapshot.load();
    let Some(l) = snap.listeners.get(name) else {
        flows.clear();
        return;
    };
    let idle = l.udp.as_ref().map_or(0, |c| c.flow_idle_timeout_ms);
    let now = now_ms();
    let stats = &l.stats.udp;
    flows.retain(|_, f| {
        // Answered or unusable first: such a flow is also quiet soon, but ended for that reason.
        if !f.usable() {
            count_end(f, stats);
            return false;
        }
        if now.saturating_sub(f.state.last.load(Relaxed)) >= idle {
            stats.flows_expired.fetch_add(1, Relaxed);
            f.ended = Ended::IdleTimeout;
            return false;
        }
        true
    });
}

/// Count (and note for its record) why a flow that is no longer usable ends.
fn count_end(f: &mut Flow, stats: &super::stats::UdpStats) {
    if f.state.answered.load(Relaxed) {
        stats.flows_answered.fetch_add(1, Relaxed);
        f.ended = Ended::Completed;
    } else {
        stats.flows_moved.fetch_add(1, Relaxed);
        f.ended = Ended::Error;
    }
}
