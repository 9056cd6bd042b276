//! Listening sockets and their accept tasks: binding (all or nothing),
//! starting the accept loops on the workers, re-configuring a running socket
//! in place, handing a socket to another listener, stopping.
//!
//! `SO_REUSEPORT` is set only in `accept: reuseport` mode, which needs one
//! socket per worker on the same address (and, by design, lets another
//! process join the port). In the default `shared` mode it is off, so a
//! second instance on the same address fails with a `BindError` instead of
//! silently taking part of the traffic. Without it, an address cannot be
//! bound twice even within one engine, so an update never binds an address a
//! running socket holds: a change of backlog or `defer_accept` is applied to
//! the existing socket (`listen(2)` again), and a renamed listener, or a port
//! moving from a removed listener to a new one, takes over the old socket.

use crate::accept::accept_loop;
#[cfg(target_os = "linux")]
use crate::accept::{accept_shared, register_shared};
use crate::config::{parse_addr, AcceptMode, EngineConfig, ListenerConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::handoff::child::Inherited;
use crate::handoff::wire::Kind;
use crate::net::{bind_error_message, bind_listener, relisten};
use crate::shared::Shared;
use crate::workers::Workers;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A bound listener and its accept tasks.
pub struct RunningListener {
    pub config: ListenerConfig,
    pub bound: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// A duplicate descriptor of each listening socket, to re-configure or
    /// hand it over. Dropped with the listener, so the port is released once
    /// the accept tasks have dropped theirs too.
    handles: Vec<std::net::TcpListener>,
    shared: bool,
}

/// Sockets bound for a listener but not yet accepting.
pub struct Bound {
    config: ListenerConfig,
    bound: SocketAddr,
    /// What the accept tasks take, and duplicates the running listener keeps.
    sockets: Vec<std::net::TcpListener>,
    handles: Vec<std::net::TcpListener>,
    /// One socket for every worker to accept from (else socket i is worker i's).
    shared: bool,
}

/// Whether listeners get one socket shared by the workers (Linux, `accept: shared`).
fn shares_sockets(config: &EngineConfig) -> bool {
    cfg!(target_os = "linux") && config.accept == AcceptMode::Shared && config.workers > 1
}

/// Whether listeners get one SO_REUSEPORT socket per worker: `accept:
/// reuseport`, and off Linux always (there is no shared accept queue there).
fn per_worker_sockets(config: &EngineConfig) -> bool {
    crate::net::REUSEPORT && config.workers > 1 && !shares_sockets(config)
}

/// Duplicate descriptors of `sockets` (the same sockets, for another owner).
fn dup_all(sockets: &[std::net::TcpListener]) -> std::io::Result<Vec<std::net::TcpListener>> {
    sockets.iter().map(|s| s.try_clone()).collect()
}

/// Bind every listener in `listeners`: one socket to share, or one
/// SO_REUSEPORT socket per worker (see `accept.rs`). All or nothing: on
/// error the sockets bound so far are dropped.
///
/// With `inherited` (an upgrade), a listener first takes the sockets the
/// old process handed over for it (its backlog and `defer_accept` applied);
/// it binds only what is missing.
pub fn bind_all<'a>(
    listeners: impl Iterator<Item = &'a ListenerConfig>,
    config: &EngineConfig,
    mut inherited: Option<&mut Inherited>,
) -> Result<Vec<Bound>> {
    let shared = shares_sockets(config);
    let reuseport = per_worker_sockets(config);
    let sockets_wanted = if reuseport { config.workers } else { 1 };
    let mut out = Vec::new();
    for l in listeners {
        let want = parse_addr(&l.address).map_err(|m| Error::config_at(format!("listeners.{}.address", l.name), m))?;
        let bind_err = |e: std::io::Error| {
            Error::new(ErrorCode::Bind, format!("listeners.{}: cannot bind {}: {}", l.name, l.address, bind_error_message(&e, l.freebind)))
        };
        let taken = inherited.as_deref_mut().map(|i| i.take(Kind::Tcp, &l.name, want)).unwrap_or_default();
        let mut sockets: Vec<std::net::TcpListener> = taken.into_iter().map(std::net::TcpListener::from).collect();
        for s in &sockets {
            s.set_nonblocking(true).map_err(bind_err)?;
            relisten(s, l.backlog, l.defer_accept).map_err(bind_err)?;
        }
        if sockets.is_empty() {
            sockets.push(bind_listener(want, l.backlog, l.defer_accept, reuseport, l.freebind).map_err(bind_err)?);
        }
        let bound = sockets[0].local_addr().map_err(bind_err)?;
        // An inherited socket without SO_REUSEPORT (another accept mode before) is served alone.
        let can_add = reuseport && sockets.iter().all(|s| socket2::SockRef::from(s).reuse_port().unwrap_or(false));
        while can_add && sockets.len() < sockets_wanted {
            sockets.push(bind_listener(bound, l.backlog, l.defer_accept, reuseport, l.freebind).map_err(bind_err)?);
        }
        // Several inherited sockets with one shared accept queue wanted: each is served by every worker.
        let handles = dup_all(&sockets).map_err(bind_err)?;
        let shared = shared && handles.len() == 1;
        out.push(Bound { config: l.clone(), bound, sockets, handles, shared });
    }
    Ok(out)
}

impl RunningListener {
    /// Start the accept tasks of a bound listener: with one socket per
    /// worker, socket i on worker i; a shared socket on every worker.
    pub fn run(b: Bound, shared: &Arc<Shared>, workers: &Workers) -> RunningListener {
        let stop = CancellationToken::new();
        let name: Arc<str> = Arc::from(b.config.name.as_str());
        let tasks = if b.shared {
            Self::run_shared(&b.sockets[0], &name, shared, workers, &stop)
        } else {
            let spawn = |(i, s): (usize, std::net::TcpListener)| {
                let handle = workers.handle(i);
                let _guard = handle.enter();
                let listener = tokio::net::TcpListener::from_std(s).expect("registering a listener with the runtime");
                handle.spawn(accept_loop(Arc::clone(shared), Arc::clone(&name), listener, i, stop.clone()))
            };
            b.sockets.into_iter().enumerate().map(spawn).collect()
        };
        RunningListener { config: b.config, bound: b.bound, stop, tasks, handles: b.handles, shared: b.shared }
    }

    /// One accept task per worker on duplicates of one listening socket.
    #[cfg(target_os = "linux")]
    fn run_shared(
        socket: &std::net::TcpListener,
        name: &Arc<str>,
        shared: &Arc<Shared>,
        workers: &Workers,
        stop: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let runtimes: Arc<[tokio::runtime::Handle]> = Arc::from(workers.handles());
        runtimes
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                let _guard = handle.enter();
                // Each worker's reactor registers its own descriptor of the socket.
                let fd = socket.try_clone().and_then(register_shared).expect("registering a listener with the runtime");
                handle.spawn(accept_shared(Arc::clone(shared), Arc::clone(name), fd, i, Arc::clone(&runtimes), stop.clone()))
            })
            .collect()
    }

    #[cfg(not(target_os = "linux"))]
    fn run_shared(_: &std::net::TcpListener, _: &Arc<str>, _: &Arc<Shared>, _: &Workers, _: &CancellationToken) -> Vec<JoinHandle<()>> {
        unreachable!("listeners share a socket on Linux only (shares_sockets)")
    }

    /// Does `l` need a new socket? Only for another address: the same text,
    /// or the address this socket is bound to (`127.0.0.1:0` became
    /// `127.0.0.1:43101`), keeps it. (A new address that overlaps the old
    /// one, e.g. `0.0.0.0:80` → `127.0.0.1:80`, cannot bind while the old
    /// socket is open: remove the listener in one update, add it in the next.)
    pub fn needs_rebind(&self, l: &ListenerConfig) -> bool {
        self.config.address != l.address && !self.holds(l)
    }

    /// Is this socket bound to exactly `l`'s address (a real port, not 0)?
    pub fn holds(&self, l: &ListenerConfig) -> bool {
        parse_addr(&l.address).is_ok_and(|a| a.port() != 0 && a == self.bound)
    }

    /// The sockets of this listener, ready to be run for `l` (a renamed
    /// listener, or a port moving to another listener) once this one stops.
    pub fn hand_over(&self, l: &ListenerConfig) -> Result<Bound> {
        let err = |e: std::io::Error| Error::new(ErrorCode::Bind, format!("listeners.{}: cannot take over {}: {e}", l.name, self.bound));
        let sockets = dup_all(&self.handles).map_err(err)?;
        let handles = dup_all(&self.handles).map_err(err)?;
        Ok(Bound { config: l.clone(), bound: self.bound, sockets, handles, shared: self.shared })
    }

    /// The listening sockets (to re-configure in place).
    pub fn sockets(&self) -> &[std::net::TcpListener] {
        &self.handles
    }

    /// Stop accepting but keep the sockets (an upgrade: the new process
    /// accepts from them now); returns the tasks to await.
    pub fn halt(&mut self) -> Vec<JoinHandle<()>> {
        self.stop.cancel();
        std::mem::take(&mut self.tasks)
    }

    /// Stop accepting; returns the tasks to await (each drops its socket as it returns).
    pub fn stop(mut self) -> Vec<JoinHandle<()>> {
        // The sockets kept for a hand-over go with `self`.
        self.halt()
    }
}

/// Apply new backlogs and `defer_accept` settings to running sockets, all or
/// nothing: on a failure the sockets changed so far get their old settings
/// back. `changes` are (sockets, old config, new config).
pub fn reconfigure_all(changes: &[(&[std::net::TcpListener], &ListenerConfig, &ListenerConfig)]) -> Result<()> {
    let differs = |old: &ListenerConfig, new: &ListenerConfig| old.backlog != new.backlog || old.defer_accept != new.defer_accept;
    let mut done: Vec<(&std::net::TcpListener, &ListenerConfig)> = Vec::new();
    for (sockets, old, new) in changes.iter().filter(|(_, old, new)| differs(old, new)) {
        for s in sockets.iter() {
            if let Err(e) = relisten(s, new.backlog, new.defer_accept) {
                for (s, old) in done {
                    let _ = relisten(s, old.backlog, old.defer_accept);
                }
                return Err(Error::new(ErrorCode::Bind, format!("listeners.{}: cannot re-configure {}: {e}", new.name, new.address)));
            }
            done.push((s, old));
        }
    }
    Ok(())
}
