//! Replies to clients, sent in batches: the flows' reply tasks of one worker
//! queue their datagrams here, and one flush task, spawned by the first reply
//! of a turn, runs after the tasks already woken and sends everything queued
//! with one `sendmmsg(2)` per listener socket (a `sendto` per datagram
//! elsewhere). On a busy worker that turns a send per reply into a send per
//! event-loop turn; on an idle one it costs a task spawn per reply.
//!
//! A datagram that cannot be sent (the socket buffer is full) is dropped and
//! counted, as UDP does.

use crate::stats::ListenerStats;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Replies queued on this worker, by listener socket.
#[derive(Default)]
struct Outbox {
    groups: Vec<Group>,
    /// A flush task is on its way.
    scheduled: bool,
}

/// The replies for one listener socket.
struct Group {
    socket: Arc<UdpSocket>,
    stats: Arc<ListenerStats>,
    /// Each reply's client and its bytes in `bytes`.
    to: Vec<(SocketAddr, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
}

thread_local! {
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
}

/// Queue `data` for `client` on `socket`; must run on a worker's runtime.
pub fn send(socket: &Arc<UdpSocket>, stats: &Arc<ListenerStats>, client: SocketAddr, data: &[u8]) {
    let spawn = OUTBOX.with(|o| {
        let mut o = o.borrow_mut();
        let g = match o.groups.iter().position(|g| Arc::ptr_eq(&g.socket, socket)) {
            Some(i) => &mut o.groups[i],
            None => {
                o.groups.push(Group { socket: Arc::clone(socket), stats: Arc::clone(stats), to: Vec::new(), bytes: Vec::new() });
                o.groups.last_mut().expect("just pushed")
            }
        };
        let start = g.bytes.len();
        g.bytes.extend_from_slice(data);
        g.to.push((client, start..g.bytes.len()));
        !std::mem::replace(&mut o.scheduled, true)
    });
    if spawn {
        drop(tokio::spawn(async { flush() }));
    }
}

/// Send everything queued on this worker.
fn flush() {
    let groups = OUTBOX.with(|o| {
        let mut o = o.borrow_mut();
        o.scheduled = false;
        std::mem::take(&mut o.groups)
    });
    for g in groups {
        let mut at = 0;
        while at < g.to.len() {
            match send_batch(&g, at) {
                Ok(0) | Err(_) => {
                    // The first of the rest could not go: drop it, try the others.
                    g.stats.udp.dropped_reply.fetch_add(1, Relaxed);
                    at += 1;
                }
                Ok(n) => at += n,
            }
        }
    }
}

/// Send the replies of `g` from index `at` on; how many went.
#[cfg(target_os = "linux")]
fn send_batch(g: &Group, at: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let rest = &g.to[at..g.to.len().min(at + MAX_BATCH)];
    let addrs: Vec<socket2::SockAddr> = rest.iter().map(|(to, _)| (*to).into()).collect();
    let mut iov: Vec<libc::iovec> =
        rest.iter().map(|(_, r)| libc::iovec { iov_base: g.bytes[r.clone()].as_ptr() as *mut libc::c_void, iov_len: r.len() }).collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(&addrs)
        .map(|(iov, addr)| {
            // SAFETY: a zeroed mmsghdr is a valid value (a plain C struct).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = addr.len();
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: every pointer in `msgs` points into `addrs`, `iov` and `g.bytes`, which outlive
    // the call; sendmmsg only reads them (the kernel writes each message's msg_len).
    let n = unsafe { libc::sendmmsg(g.socket.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as libc::c_uint, libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn send_batch(g: &Group, at: usize) -> std::io::Result<usize> {
    let (to, r) = &g.to[at];
    socket2::SockRef::from(&*g.socket).send_to(&g.bytes[r.clone()], &(*to).into()).map(|_| 1)
}

/// Messages per `sendmmsg` (the kernel's UIO_MAXIOV is 1024).
const MAX_BATCH: usize = 64;
