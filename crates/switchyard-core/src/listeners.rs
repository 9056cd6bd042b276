//! Listening sockets and their accept tasks: binding (all or nothing),
//! starting the accept loops on the workers, re-configuring a running
//! socket in place, stopping.
//!
//! `SO_REUSEPORT` is set only in `accept: reuseport` mode, which needs one
//! socket per worker on the same address (and, by design, lets another
//! process join the port). In the default `shared` mode it is off, so a
//! second instance on the same address fails with a `BindError` instead of
//! silently taking part of the traffic; a change of backlog or
//! `defer_accept` is applied to the existing socket (`listen(2)` again), not
//! by binding a second one.

use crate::accept::{accept_loop, accept_shared, register_shared};
use crate::config::{parse_addr, AcceptMode, EngineConfig, ListenerConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::net::{bind_listener, relisten};
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
    /// A duplicate descriptor of each listening socket, to re-configure it in
    /// place. Dropped with the listener, so the port is released once the
    /// accept tasks have dropped theirs too.
    handles: Vec<std::net::TcpListener>,
}

/// Sockets bound for a listener but not yet accepting.
pub struct Bound {
    config: ListenerConfig,
    bound: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
    /// One socket for every worker to accept from (else socket i is worker i's).
    shared: bool,
}

/// Whether listeners get one socket shared by the workers (Linux, `accept: shared`).
fn shares_sockets(config: &EngineConfig) -> bool {
    cfg!(target_os = "linux") && config.accept == AcceptMode::Shared && config.workers > 1
}

/// Bind every listener in `listeners`: one socket to share, or one
/// SO_REUSEPORT socket per worker (see `accept.rs`). All or nothing: on
/// error the sockets bound so far are dropped.
pub fn bind_all<'a>(listeners: impl Iterator<Item = &'a ListenerConfig>, config: &EngineConfig) -> Result<Vec<Bound>> {
    let shared = shares_sockets(config);
    let reuseport = config.accept == AcceptMode::Reuseport && crate::net::REUSEPORT;
    let sockets_wanted = if reuseport { config.workers } else { 1 };
    let mut out = Vec::new();
    for l in listeners {
        let want = parse_addr(&l.address).map_err(|m| Error::config_at(format!("listeners.{}.address", l.name), m))?;
        let bind_err = |e: std::io::Error| Error::new(ErrorCode::Bind, format!("listeners.{}: cannot bind {}: {e}", l.name, l.address));
        let first = bind_listener(want, l.backlog, l.defer_accept, reuseport).map_err(bind_err)?;
        let bound = first.local_addr().map_err(bind_err)?;
        let mut sockets = vec![first];
        for _ in 1..sockets_wanted {
            sockets.push(bind_listener(bound, l.backlog, l.defer_accept, reuseport).map_err(bind_err)?);
        }
        out.push(Bound { config: l.clone(), bound, sockets, shared });
    }
    Ok(out)
}

impl RunningListener {
    /// Start the accept tasks of a bound listener: with one socket per
    /// worker, socket i on worker i; a shared socket on every worker.
    pub fn run(b: Bound, shared: &Arc<Shared>, workers: &Workers) -> RunningListener {
        let stop = CancellationToken::new();
        let name: Arc<str> = Arc::from(b.config.name.as_str());
        let handles = b.sockets.iter().filter_map(|s| s.try_clone().ok()).collect();
        let tasks = if b.shared {
            let runtimes: Arc<[tokio::runtime::Handle]> = Arc::from(workers.handles());
            let socket = &b.sockets[0];
            runtimes
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    let _guard = handle.enter();
                    // Each worker's reactor registers its own descriptor of the socket.
                    let fd = register_shared(socket.try_clone().ok()?).expect("registering a listener with the runtime");
                    let task = accept_shared(Arc::clone(shared), Arc::clone(&name), fd, i, Arc::clone(&runtimes), stop.clone());
                    Some(handle.spawn(task))
                })
                .collect()
        } else {
            let spawn = |(i, s): (usize, std::net::TcpListener)| {
                let handle = workers.handle(i);
                let _guard = handle.enter();
                let listener = tokio::net::TcpListener::from_std(s).expect("registering a listener with the runtime");
                handle.spawn(accept_loop(Arc::clone(shared), Arc::clone(&name), listener, i, stop.clone()))
            };
            b.sockets.into_iter().enumerate().map(spawn).collect()
        };
        RunningListener { config: b.config, bound: b.bound, stop, tasks, handles }
    }

    /// Does `l` need a new socket? Only for another address: the same text,
    /// or the address this socket is bound to (`127.0.0.1:0` became
    /// `127.0.0.1:43101`), keeps it. Backlog and `defer_accept` are changed in
    /// place by [`RunningListener::reconfigure`]. (A new address that
    /// overlaps the old one, e.g. `0.0.0.0:80` → `127.0.0.1:80`, fails to
    /// bind while the old socket is open: remove the listener first.)
    pub fn needs_rebind(&self, l: &ListenerConfig) -> bool {
        self.config.address != l.address && parse_addr(&l.address).ok() != Some(self.bound)
    }

    /// Apply a new backlog or `defer_accept` to the running sockets, then
    /// keep `l` as the listener's configuration.
    pub fn reconfigure(&mut self, l: &ListenerConfig) -> Result<()> {
        if self.config.backlog != l.backlog || self.config.defer_accept != l.defer_accept {
            for s in &self.handles {
                relisten(s, l.backlog, l.defer_accept)
                    .map_err(|e| Error::new(ErrorCode::Bind, format!("listeners.{}: cannot re-configure {}: {e}", l.name, l.address)))?;
            }
        }
        self.config = l.clone();
        Ok(())
    }

    /// Stop accepting; returns the tasks to await (each drops its socket as it returns).
    pub fn stop(self) -> Vec<JoinHandle<()>> {
        self.stop.cancel();
        self.tasks
    }
}
