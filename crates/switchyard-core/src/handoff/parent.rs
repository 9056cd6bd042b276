//! The old process's side of a hand-over (see `wire` for the order): offer
//! the listening sockets when the new process says hello, wait until it
//! accepts, then park the plain TCP connections and send them over in
//! batches until none is left forwarding or the grace period ends.
//!
//! Blocking calls (run them off the event loop). A new process that exits
//! or closes its end fails the step in progress; the old process then keeps
//! (or resumes) serving everything itself.

use super::scm::{self, MAX_FDS, MAX_MESSAGE};
use super::wire::{decode, encode, ConnMeta, Message, SocketMeta};
use super::{Host, Parked};
use crate::error::{Error, ErrorCode, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Connections per `Conns` message (two descriptors each).
const CONNS_PER_BATCH: usize = MAX_FDS / 2;

/// How long to wait for the next parked connection before looking again
/// whether any plain connection is still forwarding.
const POLL: Duration = Duration::from_millis(10);

/// A hand-over failed: the new process went away or broke the protocol.
fn failed(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Runtime, format!("hand-over: {what}"))
}

/// The old process's end of the hand-over socket pair.
pub struct Parent {
    sock: OwnedFd,
    /// The new process's end until it is spawned with it.
    child_end: Mutex<Option<OwnedFd>>,
}

/// What the old process handed over.
#[derive(Debug, Default, Clone, Copy)]
pub struct Handed {
    pub connections: u64,
    /// Bytes in flight that went along (read, not yet delivered).
    pub bytes: u64,
}

impl Parent {
    /// A new socket pair; give [`Self::child_fd`] to the new process (as an
    /// inherited descriptor), then call [`Self::spawned`].
    pub fn new() -> Result<Parent> {
        let (mine, theirs) = scm::pair().map_err(|e| failed(format!("cannot create a socket pair: {e}")))?;
        Ok(Parent { sock: mine, child_end: Mutex::new(Some(theirs)) })
    }

    /// The descriptor the new process inherits (its end), while not spawned yet.
    pub fn child_fd(&self) -> Option<RawFd> {
        self.child_end.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|f| f.as_raw_fd())
    }

    /// The new process has its copy: close ours, so its exit reads as end of file here.
    pub fn spawned(&self) {
        self.child_end.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn recv(&self, timeout: Duration) -> Result<(Message, Vec<u8>)> {
        set_timeout(self.sock.as_fd(), timeout)?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (n, _fds) = scm::recv(self.sock.as_fd(), &mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                failed(format!("the new process did not answer within {timeout:?}"))
            }
            _ => failed(format!("cannot read from the new process: {e}")),
        })?;
        if n == 0 {
            return Err(failed("the new process exited or closed the hand-over socket"));
        }
        let (m, payload) = decode(&buf[..n]).map_err(failed)?;
        Ok((m, payload.to_vec()))
    }

    fn send(&self, m: &Message, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        scm::send(self.sock.as_fd(), &encode(m, payload), fds).map_err(|e| failed(format!("cannot write to the new process: {e}")))
    }

    /// Wait up to `timeout` for the new process's hello, then send it
    /// `sockets` (the engine's listening sockets and any others, e.g. the
    /// admin API's). Returns the version the new process announced.
    pub fn offer_sockets(&self, sockets: &[(SocketMeta, OwnedFd)], timeout: Duration) -> Result<String> {
        let version = match self.recv(timeout)? {
            (Message::Hello { version }, _) => version,
            (m, _) => return Err(failed(format!("expected hello, got {m:?}"))),
        };
        let mut chunks = sockets.chunks(MAX_FDS).peekable();
        if chunks.peek().is_none() {
            return self.send(&Message::Sockets { sockets: Vec::new(), more: false }, &[], &[]).map(|_| version);
        }
        while let Some(chunk) = chunks.next() {
            let metas = chunk.iter().map(|(m, _)| m.clone()).collect();
            let fds: Vec<BorrowedFd<'_>> = chunk.iter().map(|(_, f)| f.as_fd()).collect();
            self.send(&Message::Sockets { sockets: metas, more: chunks.peek().is_some() }, &[], &fds)?;
        }
        Ok(version)
    }

    /// Wait up to `timeout` for the new process to accept on the sockets.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match self.recv(timeout)? {
            (Message::Ready, _) => Ok(()),
            (m, _) => Err(failed(format!("expected ready, got {m:?}"))),
        }
    }

    /// Park every plain TCP connection of `engine` and send them to the new
    /// process, batch by batch, until none is left forwarding or `grace`
    /// passes; then stop parking (a connection that gets there later resumes
    /// here) and say done. Call after the engine stopped accepting.
    pub fn hand_connections(&self, engine: &dyn Host, grace: Duration) -> Result<Handed> {
        let rx = engine.park_for_hand_over();
        let deadline = Instant::now() + grace;
        let mut handed = Handed::default();
        let mut batch: Vec<Parked> = Vec::new();
        let mut stopped = false;
        loop {
            match rx.recv_timeout(POLL) {
                // What has parked so far goes at once (a connection waits from its park to
                // its adoption: no waiting for a batch to fill).
                Ok(p) => batch.extend(std::iter::once(p).chain(rx.try_iter()).take(CONNS_PER_BATCH)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopped = true,
            }
            if !batch.is_empty() {
                match self.send_batch(&batch) {
                    Ok(bytes) => {
                        handed.connections += batch.len() as u64;
                        handed.bytes += bytes;
                        batch.clear();
                    }
                    Err(e) => {
                        // The new process is gone: what it did not adopt continues here.
                        engine.stop_parking();
                        batch.into_iter().chain(rx.try_iter()).for_each(|p| engine.adopt(p));
                        return Err(e);
                    }
                }
                continue;
            }
            if stopped {
                break;
            }
            if engine.plain_forwarding() == 0 || Instant::now() >= deadline {
                // Late parkers resume here; those already queued still go.
                engine.stop_parking();
                stopped = true;
            }
        }
        self.send(&Message::Done { handed: handed.connections }, &[], &[])?;
        Ok(handed)
    }

    /// Send one batch and wait for the new process to adopt it (then our
    /// copies may close). Returns the bytes in flight it carried.
    fn send_batch(&self, batch: &[Parked]) -> Result<u64> {
        let metas: Vec<ConnMeta> = batch
            .iter()
            .map(|p| ConnMeta {
                listener: p.listener.clone(),
                pool: p.pool.clone(),
                backend: p.backend_addr.to_string(),
                client: p.client_addr.to_string(),
                up: p.up.len() as u32,
                down: p.down.len() as u32,
            })
            .collect();
        let fds: Vec<BorrowedFd<'_>> = batch.iter().flat_map(|p| [p.client.as_fd(), p.backend.as_fd()]).collect();
        self.send(&Message::Conns { conns: metas }, &[], &fds)?;
        let mut bytes = 0u64;
        let chunk = MAX_MESSAGE - 64;
        for (i, p) in batch.iter().enumerate() {
            for (up, owed) in [(true, &p.up), (false, &p.down)] {
                bytes += owed.len() as u64;
                for part in owed.chunks(chunk) {
                    self.send(&Message::Bytes { conn: i as u32, up }, part, &[])?;
                }
            }
        }
        match self.recv(Duration::from_secs(10))? {
            (Message::Adopted { count }, _) if count as usize == batch.len() => Ok(bytes),
            (m, _) => Err(failed(format!("expected adopted {}, got {m:?}", batch.len()))),
        }
    }
}

/// Blocking reads on `sock` give up after `timeout` (`SO_RCVTIMEO`).
pub(super) fn set_timeout(sock: BorrowedFd<'_>, timeout: Duration) -> Result<()> {
    socket2::SockRef::from(&sock)
        .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(|e| failed(format!("cannot set a read timeout: {e}")))
}
