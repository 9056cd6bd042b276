//! Bytes a direction had read but not yet written when its connection was
//! interrupted (the `proxy` future dropped at an await: a hand-over to a new
//! process, or a close spread over a drain window, both of which continue
//! the connection elsewhere).
//!
//! Kept beside the connection, not in it: every connection's task would
//! otherwise carry room for them while it waits (its size is a benchmark
//! target), and they exist only in the instant between the interruption
//! and [`take`]. The side table is the worker thread's own (a connection's
//! task never leaves its worker), keyed by the destination socket's
//! descriptor, which is unique among live sockets.
//!
//! Contract: bytes are kept only while the cancel branch of `supervise!`
//! drops the directions ([`keep`]); whoever gets `Outcome::Cancelled` from
//! `forward::proxy` calls [`take`] for both sockets before they close (to
//! continue the connection elsewhere, or to drop the bytes). Other
//! interruptions (idle timeout, lifetime) keep nothing.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;

thread_local! {
    static UNSENT: RefCell<Vec<(RawFd, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    static KEEP: Cell<bool> = const { Cell::new(false) };
}

/// Whether directions dropped from now on keep what they owed (set around a cancel's drop).
pub(crate) fn keep(on: bool) {
    KEEP.set(on);
}

/// Keep `bytes`, still owed to socket `dst`, if a cancel is dropping its connection.
pub(super) fn stash(dst: RawFd, bytes: Vec<u8>) {
    if !bytes.is_empty() && KEEP.get() {
        UNSENT.with_borrow_mut(|u| u.push((dst, bytes)));
    }
}

/// Does a cancel drop connections on this thread right now (so owed bytes are worth reading out)?
pub(super) fn keeping() -> bool {
    KEEP.get()
}

/// The bytes still owed to socket `dst`, in order (empty if none).
pub fn take(dst: RawFd) -> Vec<u8> {
    UNSENT.with_borrow_mut(|u| {
        let mut out = Vec::new();
        u.retain_mut(|(fd, bytes)| {
            if *fd != dst {
                return true;
            }
            out.append(bytes);
            false
        });
        out
    })
}

/// Bytes owed to `dst` while a write is pending: stashed if the write is
/// dropped before they went out (the future was interrupted at its await).
pub(super) struct Owed<'b> {
    pub dst: &'b tokio::net::TcpStream,
    pub rest: &'b [u8],
}

impl Drop for Owed<'_> {
    fn drop(&mut self) {
        if !self.rest.is_empty() {
            use std::os::fd::AsRawFd;
            stash(self.dst.as_raw_fd(), self.rest.to_vec());
        }
    }
}
