//! The engine: owns the data-plane runtime, the listeners and the current
//! snapshot. Everything the control plane does goes through here:
//! [`Engine::start`], [`Engine::update`], [`Engine::stats`], [`Engine::close`].

use crate::config::{parse_addr, EngineConfig, ListenerConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::forward::PipePool;
use crate::accept::accept_loop;
use crate::net::bind_listener;
use crate::events::{EventBatch, EventLog};
use crate::health::OnDown;
use crate::snapshot::{Backend, Pool, Snapshot};
use crate::stats::{BackendReport, ListenerReport, PoolReport, StatsRegistry, StatsReport};
use crate::tracker::ConnTracker;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use crate::workers::Workers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound on pipes lent at once (each is two descriptors).
const MAX_PIPES: usize = 8192;

/// State shared by every task of the engine.
#[derive(Debug)]
pub struct Shared {
    /// The routing table; replaced whole, read with one atomic load.
    pub snapshot: ArcSwap<Snapshot>,
    pub registry: StatsRegistry,
    pub conns: ConnTracker,
    /// Fired when the drain deadline of `close()` passes (the registry's root token).
    pub cancel_conns: CancellationToken,
    pub pipes: PipePool,
    /// Passive-detection events waiting for the control plane to pull them.
    pub events: EventLog,
}

#[cfg(test)]
impl Shared {
    /// An empty engine state for unit tests.
    pub fn for_tests() -> Shared {
        Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            registry: StatsRegistry::default(),
            conns: ConnTracker::default(),
            cancel_conns: CancellationToken::new(),
            pipes: PipePool::new(1),
            events: EventLog::default(),
        }
    }
}

/// One active-check verdict pushed by the control plane.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthUpdate {
    pub pool: String,
    pub address: String,
    pub up: bool,
}

/// A bound listener and its accept tasks (one per SO_REUSEPORT socket).
struct RunningListener {
    config: ListenerConfig,
    bound: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Sockets bound for a listener but not yet accepting.
struct Bound {
    config: ListenerConfig,
    bound: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
    /// One socket for every worker to accept from (else socket i is worker i's).
    shared: bool,
}

struct State {
    config: EngineConfig,
    listeners: HashMap<String, RunningListener>,
    closed: bool,
}

/// A running data plane.
pub struct Engine {
    workers: Workers,
    shared: Arc<Shared>,
    state: Mutex<State>,
}

impl Engine {
    /// Start the runtime and bind every listener. Fails without side effects
    /// (no port stays bound) if any listener cannot bind.
    pub fn start(config: EngineConfig) -> Result<Engine> {
        config.check()?;
        crate::limits::raise_nofile();
        let workers = Workers::start(config.workers)
            .map_err(|e| Error::new(ErrorCode::Runtime, format!("cannot start the data-plane workers: {e}")))?;
        let registry = StatsRegistry::default();
        let cancel_conns = registry.root.clone();
        let snapshot = Snapshot::build(&config, &registry)?;
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            conns: ConnTracker::new(config.workers),
            cancel_conns,
            pipes: PipePool::new(MAX_PIPES),
            events: EventLog::default(),
        });
        let engine = Engine {
            workers,
            shared,
            state: Mutex::new(State { config: config.clone(), listeners: HashMap::new(), closed: false }),
        };
        let bound = engine.bind_all(config.listeners.iter(), &config)?;
        let mut state = engine.lock();
        for b in bound {
            let running = engine.run(b);
            state.listeners.insert(running.config.name.clone(), running);
        }
        drop(state);
        Ok(engine)
    }

    /// Apply a new configuration atomically: new listeners are bound first
    /// (any failure leaves everything as it was), then the snapshot is swapped
    /// and removed listeners stop accepting. Established connections keep the
    /// route they started with and are never interrupted.
    pub fn update(&self, config: EngineConfig) -> Result<()> {
        config.check()?;
        let mut state = self.lock();
        if state.closed {
            return Err(Error::new(ErrorCode::Closed, "the balancer is closed"));
        }
        if config.workers != state.config.workers {
            return Err(Error::config(format!(
                "workers: the number of worker threads is fixed at start ({}), got {}; restart to change it",
                state.config.workers, config.workers
            )));
        }
        if config.accept != state.config.accept {
            return Err(Error::config(format!(
                "accept: fixed at start ({:?}), got {:?}; restart to change it",
                state.config.accept, config.accept
            )));
        }
        let unchanged = |l: &ListenerConfig| {
            state.listeners.get(&l.name).is_some_and(|r| r.config.address == l.address && r.config.backlog == l.backlog && r.config.defer_accept == l.defer_accept)
        };
        let added: Vec<&ListenerConfig> = config.listeners.iter().filter(|l| !unchanged(l)).collect();
        // Build first: a bad certificate must fail the update before any port changes.
        let snapshot = Snapshot::build(&config, &self.shared.registry)?;
        let bound = self.bind_all(added.into_iter(), &config)?;
        let keep: Vec<String> = config.listeners.iter().filter(|l| unchanged(l)).map(|l| l.name.clone()).collect();
        let removed: Vec<String> = state.listeners.keys().filter(|n| !keep.contains(n)).cloned().collect();
        for name in removed {
            if let Some(r) = state.listeners.remove(&name) {
                r.stop.cancel();
            }
        }
        let snapshot = Arc::new(snapshot);
        self.shared.snapshot.store(Arc::clone(&snapshot));
        snapshot.prune(&self.shared.registry);
        for l in config.listeners.iter() {
            if let Some(r) = state.listeners.get_mut(&l.name) {
                r.config = l.clone(); // same socket; idle timeout etc. come from the snapshot
            }
        }
        for b in bound {
            let running = self.run(b);
            state.listeners.insert(running.config.name.clone(), running);
        }
        state.config = config;
        Ok(())
    }

    /// The bound address of each listener (useful with port 0).
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let state = self.lock();
        let mut v: Vec<_> = state.listeners.iter().map(|(n, r)| (n.clone(), r.bound)).collect();
        v.sort();
        v
    }

    /// A copy of every counter.
    pub fn stats(&self) -> StatsReport {
        let state = self.lock();
        let snap = self.shared.snapshot.load();
        let listeners = state
            .config
            .listeners
            .iter()
            .filter_map(|l| {
                let r = state.listeners.get(&l.name)?;
                let route = snap.routes.get(&l.name)?;
                Some(ListenerReport {
                    name: l.name.clone(),
                    address: r.bound.to_string(),
                    pool: l.pool.clone(),
                    accepted: route.stats.accepted.load(Relaxed),
                    active: route.stats.active.load(Relaxed),
                    no_backend: route.stats.no_backend.load(Relaxed),
                    idle_timeouts: route.stats.idle_timeouts.load(Relaxed),
                    tls: route.tls_shared.as_ref().map(|t| t.stats.report()),
                })
            })
            .collect();
        let pools = snap
            .pools
            .iter()
            .map(|p| {
                let primaries = || p.backends.iter().zip(&p.shares).filter(|(b, _)| !b.backup && b.weight > 0).map(|(_, &s)| s);
                PoolReport {
                    name: p.name.clone(),
                    algorithm: p.algorithm().to_owned(),
                    active: p.active.load(Relaxed),
                    share_min: primaries().fold(f64::INFINITY, f64::min).min(1.0),
                    share_max: primaries().fold(0.0, f64::max),
                    backends: p
                        .backends
                        .iter()
                        .zip(&p.shares)
                        .map(|(b, &share)| BackendReport::read(b, share))
                        .collect(),
                }
            })
            .collect();
        StatsReport {
            connections_active: self.shared.conns.active(),
            worker_connections: self.shared.conns.per_worker(),
            pipes_in_use: self.shared.pipes.in_use() as u64,
            splice_leases_total: self.shared.pipes.leased(),
            listeners,
            pools,
        }
    }

    /// Stop accepting (ports are released before this returns... see below),
    /// let connections finish for up to `drain`, then close the rest and stop
    /// the runtime. Idempotent.
    pub async fn close(&self, drain: Duration) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state
                .listeners
                .drain()
                .flat_map(|(_, r)| {
                    r.stop.cancel();
                    r.tasks
                })
                .collect()
        };
        // Each accept task drops its socket as it returns: after this the ports are free.
        for t in tasks {
            let _ = t.await;
        }
        let shared = Arc::clone(&self.shared);
        let _ = tokio::time::timeout(drain, shared.conns.wait_idle()).await;
        shared.cancel_conns.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), shared.conns.wait_idle()).await;
        self.workers.shutdown();
    }

    /// Apply a batch of active-check verdicts at once. A backend marked down in
    /// a pool with `on_down: close` has its connections closed. Unknown
    /// pools/backends are skipped (the batch may race a config update).
    /// Returns how many verdicts changed a backend's state.
    pub fn set_health(&self, batch: &[HealthUpdate]) -> usize {
        let snap = self.shared.snapshot.load();
        let mut changed = 0;
        for u in batch {
            let Some((pool, b)) = find_backend(&snap, &u.pool, &u.address) else { continue };
            if b.health.set_checked(u.up) {
                changed += 1;
                if !u.up && pool.on_down == OnDown::Close {
                    b.health.close_connections();
                }
            }
        }
        changed
    }

    /// Close every established connection to one backend (the drain deadline).
    /// Returns false if there is no such backend.
    pub fn close_backend_connections(&self, pool: &str, address: &str) -> bool {
        let snap = self.shared.snapshot.load();
        find_backend(&snap, pool, address).map(|(_, b)| b.health.close_connections()).is_some()
    }

    /// Take the queued data-plane events.
    pub fn events(&self) -> EventBatch {
        self.shared.events.drain()
    }

    /// Live connections right now.
    pub fn active_connections(&self) -> u64 {
        self.shared.conns.active()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bind every listener in `listeners`: one socket to share, or one
    /// SO_REUSEPORT socket per worker (see `accept.rs`).
    /// All or nothing: on error the sockets bound so far are dropped.
    fn bind_all<'a>(&self, listeners: impl Iterator<Item = &'a ListenerConfig>, config: &EngineConfig) -> Result<Vec<Bound>> {
        let mut out = Vec::new();
        for l in listeners {
            let want = parse_addr(&l.address).map_err(|m| Error::config(format!("listeners.{}.address: {m}", l.name)))?;
            let bind_err =
                |e: std::io::Error| Error::new(ErrorCode::Bind, format!("listeners.{}: cannot bind {}: {e}", l.name, l.address));
            let first = bind_listener(want, l.backlog, l.defer_accept).map_err(bind_err)?;
            let bound = first.local_addr().map_err(bind_err)?;
            let mut sockets = vec![first];
            let shared = shares_sockets(config);
            let sockets_wanted = if shared || !crate::net::REUSEPORT { 1 } else { config.workers };
            for _ in 1..sockets_wanted {
                sockets.push(bind_listener(bound, l.backlog, l.defer_accept).map_err(bind_err)?);
            }
            out.push(Bound { config: l.clone(), bound, sockets, shared });
        }
        Ok(out)
    }

    /// Start the accept tasks of a bound listener: with one socket per
    /// worker, socket i on worker i; a shared socket on every worker.
    fn run(&self, b: Bound) -> RunningListener {
        let stop = CancellationToken::new();
        let name: Arc<str> = Arc::from(b.config.name.as_str());
        let tasks = if b.shared {
            b.sockets.into_iter().flat_map(|s| self.run_shared(s, &name, &stop)).collect()
        } else {
            let spawn = |(i, s): (usize, std::net::TcpListener)| {
                let handle = self.workers.handle(i);
                let _guard = handle.enter();
                let listener = tokio::net::TcpListener::from_std(s).expect("registering a listener with the runtime");
                handle.spawn(accept_loop(Arc::clone(&self.shared), Arc::clone(&name), listener, i, stop.clone()))
            };
            b.sockets.into_iter().enumerate().map(spawn).collect()
        };
        RunningListener { config: b.config, bound: b.bound, stop, tasks }
    }

    /// One accept task per worker on duplicates of one listening socket.
    #[cfg(target_os = "linux")]
    fn run_shared(&self, s: std::net::TcpListener, name: &Arc<str>, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let runtimes: Arc<[tokio::runtime::Handle]> = Arc::from(self.workers.handles());
        runtimes
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                let _guard = handle.enter();
                // Each worker's reactor registers its own descriptor of the socket.
                let dup = s.try_clone().ok()?;
                // SAFETY: the Socket owns `dup`, an open descriptor that stays open
                // and unchanged until the AsyncFd (which owns the Socket) drops.
                let fd = unsafe { crate::accept::SharedSocket::register(socket2::Socket::from(dup)) }
                    .map_err(|e| e.into_parts().1)
                    .expect("registering a listener with the runtime");
                Some(handle.spawn(crate::accept::accept_shared(Arc::clone(&self.shared), Arc::clone(name), fd, i, Arc::clone(&runtimes), stop.clone())))
            })
            .collect()
    }

    #[cfg(not(target_os = "linux"))]
    fn run_shared(&self, _: std::net::TcpListener, _: &Arc<str>, _: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        unreachable!("shares_sockets is false off Linux")
    }
}

/// Whether listeners get one socket shared by the workers (Linux, `accept: shared`).
fn shares_sockets(config: &EngineConfig) -> bool {
    cfg!(target_os = "linux") && config.accept == crate::config::AcceptMode::Shared && config.workers > 1
}

/// Find a backend by pool name and address text (`ip:port`, as the snapshot prints it).
fn find_backend<'a>(snap: &'a Snapshot, pool: &str, address: &str) -> Option<(&'a Pool, &'a Backend)> {
    let p = snap.pools.iter().find(|p| p.name == pool)?;
    let addr: SocketAddr = address.parse().ok()?;
    p.backends.iter().find(|b| b.addr == addr).map(|b| (&**p, b))
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.workers.shutdown();
    }
}
