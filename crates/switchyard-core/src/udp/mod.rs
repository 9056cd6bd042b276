//! UDP listeners (`protocol: udp`): datagrams from a client form a flow
//! pinned to one backend (see [`flows`]); replies come back from the
//! listener's address.
//!
//! Sockets: one per worker, all bound to the listener's address with
//! `SO_REUSEPORT`, so the kernel hashes each client to one worker and that
//! worker's flow table needs no lock (with one worker there is one socket and
//! no `SO_REUSEPORT`, so a second instance on the address fails to bind, as
//! for TCP). A reload that keeps a UDP listener's name and address keeps its
//! sockets and flows; other settings (pool, timeouts, limits) apply to the
//! next datagram. Bind the listener to a specific address: a socket bound to
//! `0.0.0.0` would answer from whatever source address the kernel picks.

#[allow(unsafe_code)] // recvmmsg(2)
mod batch;
pub mod config;
pub mod flows;
#[allow(unsafe_code)] // sendmmsg(2)
mod outbox;
pub mod stats;

use crate::config::{parse_addr, ListenerConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::handoff::child::Inherited;
use crate::handoff::wire::Kind;
use crate::shared::Shared;
use crate::workers::Workers;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Receive buffer asked for each listener socket: a burst of datagrams
/// waits here while the worker is busy (the kernel caps it at `rmem_max`).
const RECV_BUFFER: usize = 4 << 20;

/// A UDP listener's sockets, bound but not yet served.
pub struct UdpBound {
    config: ListenerConfig,
    bound: SocketAddr,
    sockets: Vec<std::net::UdpSocket>,
    /// Duplicates the running listener keeps (to hand them over in an upgrade).
    handles: Vec<std::net::UdpSocket>,
}

/// A running UDP listener.
pub struct UdpListener {
    pub config: ListenerConfig,
    pub bound: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    handles: Vec<std::net::UdpSocket>,
}

/// Bind every UDP listener of `listeners`, one socket per worker; all or
/// nothing. With `inherited` (an upgrade), a listener first takes the
/// sockets the old process handed over for it and binds only what is missing.
pub fn bind_all<'a>(
    listeners: impl Iterator<Item = &'a ListenerConfig>,
    workers: usize,
    mut inherited: Option<&mut Inherited>,
) -> Result<Vec<UdpBound>> {
    let mut out = Vec::new();
    for l in listeners {
        let want = parse_addr(&l.address).map_err(|m| Error::config_at(format!("listeners.{}.address", l.name), m))?;
        let bind_err = |e: std::io::Error| {
            let why = crate::net::bind_error_message(&e, l.freebind);
            Error::new(ErrorCode::Bind, format!("listeners.{}: cannot bind {} (udp): {why}", l.name, l.address))
        };
        let taken = inherited.as_deref_mut().map(|i| i.take(Kind::Udp, &l.name, want)).unwrap_or_default();
        let mut sockets: Vec<std::net::UdpSocket> = taken.into_iter().map(std::net::UdpSocket::from).collect();
        for s in &sockets {
            s.set_nonblocking(true).map_err(bind_err)?;
        }
        if sockets.is_empty() {
            sockets.push(bind(want, workers > 1, l.freebind).map_err(bind_err)?);
        }
        let bound = sockets[0].local_addr().map_err(bind_err)?;
        let can_add = workers > 1 && sockets.iter().all(|s| socket2::SockRef::from(s).reuse_port().unwrap_or(false));
        while can_add && sockets.len() < workers {
            sockets.push(bind(bound, true, l.freebind).map_err(bind_err)?);
        }
        let handles = sockets.iter().map(|s| s.try_clone()).collect::<std::io::Result<_>>().map_err(bind_err)?;
        out.push(UdpBound { config: l.clone(), bound, sockets, handles });
    }
    Ok(out)
}

/// One non-blocking UDP socket on `addr` (`freebind`: see `net::set_freebind`).
fn bind(addr: SocketAddr, reuseport: bool, freebind: bool) -> std::io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if freebind {
        crate::net::set_freebind(&sock, addr)?;
    }
    #[cfg(unix)]
    if reuseport {
        sock.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only drops earlier under bursts.
    let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

impl UdpBound {
    /// Serve socket i on worker i.
    pub fn run(self, shared: &Arc<Shared>, workers: &Workers) -> UdpListener {
        let stop = CancellationToken::new();
        let name: Arc<str> = Arc::from(self.config.name.as_str());
        let tasks = self
            .sockets
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let handle = workers.handle(i);
                let _guard = handle.enter();
                let socket = Arc::new(tokio::net::UdpSocket::from_std(s).expect("registering a UDP socket with the runtime"));
                handle.spawn(flows::serve(Arc::clone(shared), Arc::clone(&name), socket, stop.clone()))
            })
            .collect();
        UdpListener { config: self.config, bound: self.bound, stop, tasks, handles: self.handles }
    }
}

impl UdpListener {
    /// Does `l` need new sockets (another address; see `RunningListener::needs_rebind`)?
    pub fn needs_rebind(&self, l: &ListenerConfig) -> bool {
        self.config.address != l.address && !parse_addr(&l.address).is_ok_and(|a| a.port() != 0 && a == self.bound)
    }

    /// The listener's sockets (to hand them over in an upgrade).
    pub fn sockets(&self) -> &[std::net::UdpSocket] {
        &self.handles
    }

    /// Stop serving but keep the sockets (an upgrade: the new process reads
    /// them now); each task drops its flows as it returns.
    pub fn halt(&mut self) -> Vec<JoinHandle<()>> {
        self.stop.cancel();
        std::mem::take(&mut self.tasks)
    }

    /// Stop serving: each task drops its socket and its flows as it returns.
    pub fn stop(mut self) -> Vec<JoinHandle<()>> {
        // The sockets kept for a hand-over go with `self`.
        self.halt()
    }
}
