//! The engine: owns the workers, the running listeners and the shared state.
//! Everything the control plane does goes through here: [`Engine::start`],
//! [`Engine::update`], [`Engine::update_pool`], [`Engine::stats`],
//! [`Engine::close`], health verdicts and events.

use crate::backend::Backend;
use crate::config::{EngineConfig, ListenerConfig, PoolConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::events::EventBatch;
use crate::handoff::child::Inherited;
use crate::handoff::wire::{Kind, SocketMeta};
use crate::handoff::Parked;
use crate::health::OnDown;
use crate::http::config::Protocol;
use crate::listeners::{bind_all, reconfigure_all, Bound, RunningListener};
use crate::registry::Registry;
use crate::shared::Shared;
use crate::snapshot::{Pool, Snapshot};
use crate::stats::{ListenerReport, PoolReport, StatsReport};
use crate::trace::{Trace, TraceFilter};
use crate::udp::{self, UdpListener};
use crate::workers::Workers;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One active-check verdict pushed by the control plane.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HealthUpdate {
    pub pool: String,
    pub address: String,
    pub up: bool,
}

struct State {
    config: EngineConfig,
    /// TCP (and HTTP) listeners.
    listeners: HashMap<String, RunningListener>,
    udp: HashMap<String, UdpListener>,
    closed: bool,
}

/// Is `l` a UDP listener (its own sockets and tasks, see `udp`)?
fn is_udp(l: &&ListenerConfig) -> bool {
    l.protocol == Protocol::Udp
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
        Engine::start_inheriting(config, None)
    }

    /// [`Engine::start`], taking listening sockets from `inherited` (what an
    /// old process handed over in an upgrade) before binding any: a listener
    /// keeps its socket, with the connections waiting in its queue.
    pub fn start_inheriting(config: EngineConfig, mut inherited: Option<&mut Inherited>) -> Result<Engine> {
        config.check()?;
        let workers = Workers::start(config.workers)
            .map_err(|e| Error::new(ErrorCode::Runtime, format!("cannot start the data-plane workers: {e}")))?;
        let registry = Registry::default();
        let snapshot = Snapshot::build(&config, &registry, None)?;
        let shared = Arc::new(Shared::new(snapshot, registry, config.workers, 0));
        apply_limits(&shared, &config);
        apply_trace_samples(&shared.registry, &config, None);
        drop(workers.handle(0).spawn(sweep_idle(Arc::downgrade(&shared))));
        let bound = bind_all(config.listeners.iter().filter(|l| !is_udp(l)), &config, inherited.as_deref_mut())?;
        let udp_bound = udp::bind_all(config.listeners.iter().filter(is_udp), config.workers, inherited)?;
        let listeners = bound.into_iter().map(|b| RunningListener::run(b, &shared, &workers)).map(|r| (r.config.name.clone(), r)).collect();
        let udp = udp_bound.into_iter().map(|b| b.run(&shared, &workers)).map(|r| (r.config.name.clone(), r)).collect();
        let state = Mutex::new(State { config, listeners, udp, closed: false });
        Ok(Engine { workers, shared, state })
    }

    /// Apply a new configuration atomically: new listeners are bound first
    /// (any failure leaves everything as it was), then the snapshot is swapped
    /// and removed listeners stop accepting. Established connections keep the
    /// tables they started with and are never interrupted. Pools and TLS
    /// configs that did not change are shared with the previous snapshot.
    pub fn update(&self, config: EngineConfig) -> Result<()> {
        config.check()?;
        let mut state = self.lock()?;
        if config.workers != state.config.workers {
            return Err(Error::config_at(
                "workers",
                format!(
                    "the number of worker threads is fixed at start ({}), got {}; restart to change it",
                    state.config.workers, config.workers
                ),
            ));
        }
        if config.accept != state.config.accept {
            return Err(Error::config_at(
                "accept",
                format!("fixed at start ({:?}), got {:?}; restart to change it", state.config.accept, config.accept),
            ));
        }
        // Running listeners that keep their socket: same name, same address.
        let kept: Vec<&ListenerConfig> =
            config.listeners.iter().filter(|l| !is_udp(l) && state.listeners.get(&l.name).is_some_and(|r| !r.needs_rebind(l))).collect();
        let udp_kept: Vec<&ListenerConfig> =
            config.listeners.iter().filter(|l| is_udp(l) && state.udp.get(&l.name).is_some_and(|r| !r.needs_rebind(l))).collect();
        let udp_leaving: Vec<String> = state.udp.keys().filter(|n| !udp_kept.iter().any(|k| &k.name == *n)).cloned().collect();
        let leaving: Vec<String> = state.listeners.keys().filter(|n| !kept.iter().any(|k| &k.name == *n)).cloned().collect();
        // A new listener on the address of a leaving one (a rename, or a port
        // moving between listeners) takes over its socket: without SO_REUSEPORT
        // the address cannot be bound a second time while that socket is open.
        let mut takeovers: Vec<(&str, &ListenerConfig)> = Vec::new();
        let mut fresh: Vec<&ListenerConfig> = Vec::new();
        for l in config.listeners.iter().filter(|l| !is_udp(l) && !kept.iter().any(|k| k.name == l.name)) {
            let free = |n: &&String| !takeovers.iter().any(|(t, _)| t == n) && state.listeners[n.as_str()].holds(l);
            match leaving.iter().find(free) {
                Some(n) => takeovers.push((n.as_str(), l)),
                None => fresh.push(l),
            }
        }
        // Build first: a bad certificate must fail the update before any port changes.
        let snapshot = Snapshot::build(&config, &self.shared.registry, Some(&self.shared.snapshot.load()))?;
        let handed: Vec<Bound> = takeovers.iter().map(|(old, l)| state.listeners[*old].hand_over(l)).collect::<Result<_>>()?;
        let bound = bind_all(fresh.into_iter(), &config, None)?;
        // UDP sockets are SO_REUSEPORT with more than one worker: a new one may share a leaving one's address.
        let udp_bound = udp::bind_all(
            config.listeners.iter().filter(|l| is_udp(l) && !udp_kept.iter().any(|k| k.name == l.name)),
            config.workers,
            None,
        )?;
        // New backlogs and defer_accept, on the sockets that stay, all or nothing.
        let running = |name: &str| &state.listeners[name];
        let changes: Vec<_> = kept
            .iter()
            .map(|l| (running(&l.name).sockets(), &running(&l.name).config, *l))
            .chain(takeovers.iter().map(|(old, l)| (running(old).sockets(), &running(old).config, *l)))
            .collect();
        reconfigure_all(&changes)?;
        drop(changes);
        // Committed from here on: nothing below can fail.
        apply_limits(&self.shared, &config);
        apply_trace_samples(&self.shared.registry, &config, Some(&state.config));
        for l in &kept {
            if let Some(r) = state.listeners.get_mut(&l.name) {
                r.config = (*l).clone();
            }
        }
        for l in &udp_kept {
            if let Some(r) = state.udp.get_mut(&l.name) {
                r.config = (*l).clone();
            }
        }
        for name in &udp_leaving {
            if let Some(r) = state.udp.remove(name) {
                drop(r.stop());
            }
        }
        for name in &leaving {
            // Its accept tasks end on their own; a taken-over socket stays open
            // through `handed`, so connections arriving meanwhile wait in its
            // backlog. (One accepted in the instant before the swap under the
            // old name finds no listener in the new snapshot and is closed.)
            if let Some(r) = state.listeners.remove(name) {
                drop(r.stop());
            }
        }
        self.publish(snapshot);
        for b in bound.into_iter().chain(handed) {
            let running = RunningListener::run(b, &self.shared, &self.workers);
            state.listeners.insert(running.config.name.clone(), running);
        }
        for b in udp_bound {
            let running = b.run(&self.shared, &self.workers);
            state.udp.insert(running.config.name.clone(), running);
        }
        state.config = config;
        Ok(())
    }

    /// Replace one pool (weights, states, backends, algorithm) without
    /// touching anything else: no other pool's tables and no TLS config are
    /// rebuilt. The pool must exist.
    pub fn update_pool(&self, pool: PoolConfig) -> Result<()> {
        pool.check()?;
        let mut state = self.lock()?;
        let Some(slot) = state.config.pools.iter().position(|p| p.name == pool.name) else {
            return Err(Error::new(ErrorCode::NotFound, format!("no pool named {:?}", pool.name)));
        };
        let snapshot = self.shared.snapshot.load().with_pool(&state.config, &pool, &self.shared.registry)?;
        self.publish(snapshot);
        state.config.pools[slot] = pool;
        Ok(())
    }

    /// Swap in a snapshot and forget counters of what left it.
    fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        self.shared.snapshot.store(Arc::clone(&snapshot));
        snapshot.prune(&self.shared.registry);
    }

    /// The bound address of each listener (useful with port 0).
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let state = self.state();
        let tcp = state.listeners.iter().map(|(n, r)| (n.clone(), r.bound));
        let mut v: Vec<_> = tcp.chain(state.udp.iter().map(|(n, r)| (n.clone(), r.bound))).collect();
        v.sort();
        v
    }

    /// A copy of every counter.
    pub fn stats(&self) -> StatsReport {
        let state = self.state();
        let snap = self.shared.snapshot.load();
        let listeners = state
            .config
            .listeners
            .iter()
            .filter_map(|l| {
                let bound = state.listeners.get(&l.name).map(|r| r.bound).or_else(|| state.udp.get(&l.name).map(|r| r.bound))?;
                let tables = snap.listeners.get(&l.name)?;
                Some(ListenerReport {
                    name: l.name.clone(),
                    address: bound.to_string(),
                    pool: l.pool.clone(),
                    accepted: tables.stats.accepted.load(Relaxed),
                    active: tables.stats.active.load(Relaxed),
                    no_backend: tables.stats.no_backend.load(Relaxed),
                    local_errors: tables.stats.local_errors.load(Relaxed),
                    accept_errors: tables.stats.accept_errors.load(Relaxed),
                    idle_timeouts: tables.stats.idle_timeouts.load(Relaxed),
                    no_route: tables.stats.no_route.load(Relaxed),
                    routes: match tables.http.as_ref() {
                        Some(h) => h
                            .routes
                            .routes
                            .iter()
                            .map(|r| r.stats.report(&l.name, &r.name, r.pool.as_ref().map_or("", |p| &p.name), r.tag.as_deref()))
                            .collect(),
                        None => tables
                            .routes
                            .rules
                            .iter()
                            .map(|r| {
                                let pool = match &r.action {
                                    crate::rules::l4::Action::Pool(p) => p.name.as_str(),
                                    crate::rules::l4::Action::Deny => "",
                                };
                                r.stats.report(&l.name, &r.name, pool, r.tag.as_deref())
                            })
                            .collect(),
                    },
                    tls: tables.tls_shared.as_ref().map(|t| t.stats.report()),
                    proxy: tables.proxy.as_ref().map(|_| tables.stats.proxy.report()),
                    refused_denied: tables.stats.refused_denied.load(Relaxed),
                    refused_source_limit: tables.stats.refused_source_limit.load(Relaxed),
                    refused_rate: tables.stats.refused_rate.load(Relaxed),
                    lifetime_ends: tables.stats.lifetime_ends.load(Relaxed),
                    udp: tables.udp.is_some().then(|| tables.stats.udp.report()),
                })
            })
            .collect();
        let pools = snap.pools.iter().map(|p| pool_report(p)).collect();
        StatsReport {
            connections_active: self.shared.conns.active(),
            max_connections: self.shared.max_open.load(Relaxed),
            worker_connections: self.shared.conns.per_worker(),
            pipes_in_use: self.shared.pipes.in_use() as u64,
            max_pipes: self.shared.pipes.max() as u64,
            splice_leases_total: self.shared.pipes.leased(),
            listeners,
            pools,
            builds: self.shared.registry.builds.report(),
            hooks: self.shared.registry.hooks.reports(),
        }
    }

    /// Stop accepting (the ports are released before the drain starts), let
    /// connections finish for up to `drain`, then close the rest and stop the
    /// runtime. Idempotent.
    pub async fn close(&self, drain: Duration) {
        self.close_with(drain, false).await
    }

    /// [`Engine::close`]; with `spread`, plain TCP connections still open
    /// are closed at random instants over the drain window (HAProxy's
    /// `close-spread-time`) instead of all at its end.
    pub async fn close_with(&self, drain: Duration, spread: bool) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.state();
            if state.closed {
                return;
            }
            state.closed = true;
            let udp: Vec<_> = state.udp.drain().flat_map(|(_, r)| r.stop()).collect();
            state.listeners.drain().flat_map(|(_, r)| r.stop()).chain(udp).collect()
        };
        // Each accept task drops its socket as it returns: after this the ports are free.
        for t in tasks {
            let _ = t.await;
        }
        let shared = Arc::clone(&self.shared);
        shared.http_drain.cancel();
        if spread && !drain.is_zero() {
            // Long-lived plain connections end at random instants over the
            // window instead of all at its end: their clients reconnect
            // spread out, not in one burst.
            shared.parking.spread(drain);
            park_all(&shared);
        }
        let _ = tokio::time::timeout(drain, shared.conns.wait_idle()).await;
        shared.cancel_conns.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), shared.conns.wait_idle()).await;
        // The handler (a JavaScript function's thread-safe handle) goes with the engine.
        shared.hooks.set_sink(None, 0);
        self.workers.shutdown();
    }

    /// Duplicates of every listening socket (TCP and UDP), to hand over to
    /// a new process in an upgrade.
    pub fn listening_sockets(&self) -> Result<Vec<(SocketMeta, OwnedFd)>> {
        let state = self.state();
        let dup_err = |e: std::io::Error| Error::new(ErrorCode::Runtime, format!("cannot duplicate a listening socket: {e}"));
        let mut out = Vec::new();
        for (name, r) in &state.listeners {
            for s in r.sockets() {
                let meta = SocketMeta { kind: Kind::Tcp, name: name.clone(), address: r.bound.to_string() };
                out.push((meta, OwnedFd::from(s.try_clone().map_err(dup_err)?)));
            }
        }
        for (name, r) in &state.udp {
            for s in r.sockets() {
                let meta = SocketMeta { kind: Kind::Udp, name: name.clone(), address: r.bound.to_string() };
                out.push((meta, OwnedFd::from(s.try_clone().map_err(dup_err)?)));
            }
        }
        Ok(out)
    }

    /// Stop accepting on every listener but keep the sockets open (an
    /// upgrade: the new process accepts from them now, so no connection
    /// attempt is refused). Resolves once no accept task runs.
    pub async fn stop_accepting(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.state();
            let udp: Vec<_> = state.udp.values_mut().flat_map(|r| r.halt()).collect();
            state.listeners.values_mut().flat_map(|r| r.halt()).chain(udp).collect()
        };
        for t in tasks {
            let _ = t.await;
        }
        self.shared.http_drain.cancel();
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

    /// Take the queued access-log records.
    pub fn access_log(&self) -> crate::access::AccessBatch {
        self.shared.access.drain()
    }

    /// Register the handler opt-in hooks are asked through (`None`: none,
    /// every hook call gets its fallback). At most `max_in_flight` calls wait
    /// for answers at once; beyond, the fallback at once (see [`crate::hook`]).
    pub fn set_hook_sink(&self, sink: Option<Box<dyn crate::hook::HookSink>>, max_in_flight: usize) {
        self.shared.hooks.set_sink(sink, max_in_flight);
    }

    /// The handler's answer to hook call `id` (JSON `HookReply`). False when
    /// the call no longer waits (its budget passed: counted as late).
    pub fn hook_reply(&self, id: u64, reply_json: &str) -> bool {
        self.shared.hooks.reply(id, reply_json, &self.shared.registry.hooks)
    }

    /// Take the queued data-plane events.
    pub fn events(&self) -> EventBatch {
        self.shared.events.drain()
    }

    /// The kept decision traces that pass `filter`, oldest first.
    pub fn traces(&self, filter: &TraceFilter) -> Vec<Trace> {
        self.shared.traces.query(filter)
    }

    /// Trace a share `rate` (0..=1) of listener `listener`'s connections (HTTP:
    /// requests) from now on, without a reload. A reload that changes the
    /// listener's `trace_sample` replaces it; one that does not keeps it.
    pub fn set_trace_sample(&self, listener: &str, rate: f64) -> Result<()> {
        let state = self.lock()?;
        let Some(l) = state.config.listeners.iter().find(|l| l.name == listener) else {
            return Err(Error::new(ErrorCode::NotFound, format!("no listener named {listener:?}")));
        };
        let at = format!("listeners.{listener}.trace_sample");
        crate::config::check_trace_sample(rate).map_err(|m| Error::config_at(&at, m))?;
        if is_udp(&l) {
            return Err(Error::config_at(at, "only for tcp and http listeners (UDP flows are not traced)"));
        }
        let snap = self.shared.snapshot.load();
        if let Some(tables) = snap.listeners.get(listener) {
            crate::trace::set_rate(&tables.stats.trace, rate);
        }
        Ok(())
    }

    /// Live connections right now.
    pub fn active_connections(&self) -> u64 {
        self.shared.conns.active()
    }

    /// The state, for a change: refused once closed.
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        let state = self.state();
        if state.closed {
            return Err(Error::new(ErrorCode::Closed, "the balancer is closed"));
        }
        Ok(state)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Set each listener's trace sample rate from `config`, except where `old`
/// (the configuration before a reload) had the same value: a rate set at
/// runtime then stays.
fn apply_trace_samples(registry: &Registry, config: &EngineConfig, old: Option<&EngineConfig>) {
    for l in &config.listeners {
        let before = old.and_then(|o| o.listeners.iter().find(|o| o.name == l.name)).map(|o| o.trace_sample);
        if before != Some(l.trace_sample) {
            crate::trace::set_rate(&registry.listener(&l.name).trace, l.trace_sample);
        }
    }
}

/// One pool's counters.
fn pool_report(p: &Pool) -> PoolReport {
    let shares = p.shares();
    // Balance among the primaries taking traffic (a down one's 0 is its health, not imbalance).
    let primaries = || p.backends.iter().zip(&shares).filter(|(b, _)| !b.backup && b.weight > 0 && b.available()).map(|(_, &s)| s);
    PoolReport {
        name: p.name.clone(),
        algorithm: p.algorithm(),
        active: p.active.load(Relaxed),
        share_min: primaries().fold(f64::INFINITY, f64::min).min(1.0),
        share_max: primaries().fold(0.0, f64::max),
        backends: p.backends.iter().zip(&shares).zip(&p.http.idle).map(|((b, &share), idle)| b.report(share, idle.len())).collect(),
        queue: p.queue.report(),
    }
}

/// Find a backend by pool name and address text (`ip:port`, as the snapshot prints it).
fn find_backend<'a>(snap: &'a Snapshot, pool: &str, address: &str) -> Option<(&'a Pool, &'a Backend)> {
    let p = snap.pools.iter().find(|p| p.name == pool)?;
    let addr: SocketAddr = address.parse().ok()?;
    p.backends.iter().find(|b| b.addr == addr).map(|b| (&**p, b))
}

/// Park every plain TCP connection of the engine (see `Parking` for where they go).
fn park_all(shared: &Shared) {
    shared.registry.backend_healths().iter().for_each(|h| h.park_connections());
}

/// Set the engine-wide connection limit (the configured one, else what the
/// descriptor limit allows; none where that is unknown) and the pipe budget
/// that goes with it.
fn apply_limits(shared: &Shared, config: &EngineConfig) {
    use crate::limits::{derived_max_connections, derived_max_pipes, raise_nofile};
    let nofile = raise_nofile();
    let open = match (config.max_connections, nofile) {
        (Some(m), _) => m.max(1),
        (None, 0) => u64::MAX,
        (None, n) => derived_max_connections(n),
    };
    shared.max_open.store(open, Relaxed);
    shared.pipes.set_max(derived_max_pipes(open, nofile) as usize);
}

/// How often idle HTTP keep-alive connections to backends are looked at.
const IDLE_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Close idle backend keep-alive connections past their idle timeout, even
/// while no request comes to reuse (and so check) them, until the engine is
/// gone. Runs on worker 0.
async fn sweep_idle(shared: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(IDLE_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        shared.registry.sweep_idle();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.workers.shutdown();
    }
}

/// The hand-over's view of the engine (see `handoff`).
impl crate::handoff::Host for Engine {
    /// Park every plain TCP connection (now, and those that get to
    /// forwarding later) and send it to the returned receiver, until
    /// [`Engine::stop_parking`].
    fn park_for_hand_over(&self) -> std::sync::mpsc::Receiver<Parked> {
        let rx = self.shared.parking.hand_over();
        park_all(&self.shared);
        rx
    }

    /// Stop parking: connections that park from now on continue here.
    fn stop_parking(&self) {
        self.shared.parking.stop();
    }

    /// Plain TCP connections forwarding now (what a hand-over waits for).
    fn plain_forwarding(&self) -> u64 {
        self.shared.parking.forwarding_now()
    }

    /// Continue a parked connection (from an old process, or one a failed
    /// hand-over gave back) on the least loaded worker.
    fn adopt(&self, p: Parked) {
        let load = self.shared.conns.per_worker();
        let worker = (0..load.len()).min_by_key(|&i| load[i]).unwrap_or(0);
        self.shared.conns.assign(worker);
        drop(self.workers.handle(worker).spawn(crate::pipeline::adopted::serve(Arc::clone(&self.shared), p, worker)));
    }
}
