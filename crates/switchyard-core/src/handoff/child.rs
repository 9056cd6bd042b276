//! The new process's side of a hand-over (see `wire` for the order): say
//! hello, take the listening sockets (the engine binds its listeners from
//! them), say ready once accepting, adopt the connections until done.

use super::parent::{set_timeout, Handed};
use super::scm::{self, MAX_MESSAGE};
use super::wire::{decode, encode, Kind, Message, SocketMeta};
use super::{Host, Parked};
use crate::error::{Error, ErrorCode, Result};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::time::Duration;

/// How long the new process waits for each message of the old one while
/// connections come over (the old one sends `Done` after its grace period).
const BETWEEN_MESSAGES: Duration = Duration::from_secs(120);

fn failed(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Runtime, format!("hand-over: {what}"))
}

/// The new process's end of the hand-over socket pair.
pub struct Child {
    sock: OwnedFd,
}

/// Listening sockets received from the old process, taken by the listeners
/// of the new configuration that match them; the rest close when dropped
/// (listeners the new configuration removed).
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: Vec<(SocketMeta, OwnedFd)>,
}

impl Inherited {
    /// How many sockets are left.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The admin API's listening socket, if the old process had one.
    pub fn take_admin(&mut self) -> Option<OwnedFd> {
        let i = self.sockets.iter().position(|(m, _)| m.kind == Kind::Admin)?;
        Some(self.sockets.remove(i).1)
    }

    /// The sockets of a `kind` listener named `name` that listens on `want`
    /// (port 0: any port), else those bound to exactly `want` (a renamed
    /// listener keeps its socket).
    pub(crate) fn take(&mut self, kind: Kind, name: &str, want: SocketAddr) -> Vec<OwnedFd> {
        let addr = |m: &SocketMeta| m.address.parse::<SocketAddr>().ok();
        let by_name = |m: &SocketMeta| {
            m.kind == kind && m.name == name && addr(m).is_some_and(|a| a == want || (want.port() == 0 && a.ip() == want.ip()))
        };
        let by_addr = |m: &SocketMeta| m.kind == kind && want.port() != 0 && addr(m) == Some(want);
        let pick: &dyn Fn(&SocketMeta) -> bool = if self.sockets.iter().any(|(m, _)| by_name(m)) { &by_name } else { &by_addr };
        let (taken, kept) = std::mem::take(&mut self.sockets).into_iter().partition(|(m, _)| pick(m));
        self.sockets = kept;
        taken.into_iter().map(|(_, fd)| fd).collect()
    }
}

impl Child {
    /// Take the inherited descriptor `fd` (the old process's socket pair end).
    /// Fails unless it is a `SOCK_SEQPACKET` socket.
    pub fn from_inherited(fd: RawFd) -> Result<Child> {
        match scm::inherited(fd) {
            Some(sock) => Ok(Child { sock }),
            None => Err(Error::config_at("SWITCHYARD_HANDOFF_FD", format!("descriptor {fd} is not a hand-over socket"))),
        }
    }

    fn recv(&self, timeout: Duration) -> Result<(Message, Vec<u8>, Vec<OwnedFd>)> {
        set_timeout(self.sock.as_fd(), timeout)?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (n, fds) = scm::recv(self.sock.as_fd(), &mut buf).map_err(|e| failed(format!("cannot read from the old process: {e}")))?;
        if n == 0 {
            return Err(failed("the old process closed the hand-over socket"));
        }
        let (m, payload) = decode(&buf[..n]).map_err(failed)?;
        Ok((m, payload.to_vec(), fds))
    }

    fn send(&self, m: &Message) -> Result<()> {
        scm::send(self.sock.as_fd(), &encode(m, &[]), &[]).map_err(|e| failed(format!("cannot write to the old process: {e}")))
    }

    /// Say hello (with our `version`) and receive the listening sockets.
    pub fn receive_sockets(&self, version: &str, timeout: Duration) -> Result<Inherited> {
        self.send(&Message::Hello { version: version.to_owned() })?;
        let mut out = Inherited::default();
        loop {
            let (m, _, fds) = self.recv(timeout)?;
            let Message::Sockets { sockets, more } = m else { return Err(failed(format!("expected sockets, got {m:?}"))) };
            if sockets.len() != fds.len() {
                return Err(failed(format!("{} sockets announced, {} descriptors received", sockets.len(), fds.len())));
            }
            out.sockets.extend(sockets.into_iter().zip(fds));
            if !more {
                return Ok(out);
            }
        }
    }

    /// We accept on the sockets: the old process may stop.
    pub fn ready(&self) -> Result<()> {
        self.send(&Message::Ready)
    }

    /// Adopt the connections the old process sends until it is done; each
    /// continues on one of `engine`'s workers.
    pub fn adopt_connections(&self, engine: &dyn Host) -> Result<Handed> {
        let mut handed = Handed::default();
        loop {
            let (m, _, fds) = self.recv(BETWEEN_MESSAGES)?;
            let conns = match m {
                Message::Done { .. } => return Ok(handed),
                Message::Conns { conns } => conns,
                m => return Err(failed(format!("expected connections or done, got {m:?}"))),
            };
            if fds.len() != conns.len() * 2 {
                return Err(failed(format!("{} connections announced, {} descriptors received", conns.len(), fds.len())));
            }
            let mut fds = fds.into_iter();
            let mut parked = Vec::with_capacity(conns.len());
            for c in &conns {
                let (Some(client), Some(backend)) = (fds.next(), fds.next()) else { unreachable!("counted above") };
                let addr = |s: &str, what: &str| s.parse::<SocketAddr>().map_err(|_| failed(format!("a malformed {what} address: {s:?}")));
                parked.push(Parked {
                    listener: c.listener.clone(),
                    pool: c.pool.clone(),
                    backend_addr: addr(&c.backend, "backend")?,
                    client_addr: addr(&c.client, "client")?,
                    client: std::net::TcpStream::from(client),
                    backend: std::net::TcpStream::from(backend),
                    up: Vec::with_capacity(c.up as usize),
                    down: Vec::with_capacity(c.down as usize),
                });
            }
            // The bytes each connection still owed, in order.
            let mut missing: u64 = conns.iter().map(|c| c.up as u64 + c.down as u64).sum();
            while missing > 0 {
                let (m, payload, _) = self.recv(BETWEEN_MESSAGES)?;
                let Message::Bytes { conn, up } = m else { return Err(failed(format!("expected bytes, got {m:?}"))) };
                if payload.is_empty() {
                    return Err(failed(format!("an empty bytes message for connection {conn}")));
                }
                let (p, c) = parked
                    .get_mut(conn as usize)
                    .zip(conns.get(conn as usize))
                    .ok_or_else(|| failed(format!("bytes for connection {conn} of {}", conns.len())))?;
                let (owed, want) = if up { (&mut p.up, c.up) } else { (&mut p.down, c.down) };
                if owed.len() + payload.len() > want as usize {
                    return Err(failed(format!("more bytes than announced for connection {conn}")));
                }
                owed.extend_from_slice(&payload);
                missing -= payload.len() as u64;
            }
            let count = parked.len() as u32;
            for p in parked {
                handed.connections += 1;
                handed.bytes += (p.up.len() + p.down.len()) as u64;
                engine.adopt(p);
            }
            self.send(&Message::Adopted { count })?;
        }
    }
}
