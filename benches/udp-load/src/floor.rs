//! `udp-load proxy`: the UDP floor proxy, the UDP counterpart of benches/floor-proxy.c. One
//! thread, one level-triggered epoll loop, a connected socket per flow (client address) to a
//! backend chosen round robin, and as few syscalls as a user-space UDP proxy can make: datagrams
//! from clients taken with one `recvmmsg` per batch, replies from every flow that was ready
//! collected and sent back from the listener with one `sendmmsg`, a flow socket read with one
//! `recvmmsg` (no second read to see EAGAIN: level-triggered epoll reports it again if more came).
//! Only a datagram to a backend costs a syscall of its own (each flow is its own socket). No
//! idle timeout and no flow limit: it lives for one bench run. It measures what the kernel's
//! UDP work costs on this machine, so the proxies' CPU per exchange can be read against it.
//!
//! ```text
//! udp-load proxy --listen 127.0.0.1:P=0[,127.0.0.1:P2=1] --backends 127.0.0.1:B1,127.0.0.1:B2
//! ```
//! `=N` after a listen address: replies after which a flow ends (0: never; 1: a flow per datagram).

use crate::{os_err, sockaddr_of, udp_socket, Opts, BATCH};
use std::collections::HashMap;
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;

/// Largest datagram relayed.
const MAX: usize = 2048;
/// epoll data of a listener: this bit plus its index; a flow: its slot.
const LISTENER_BIT: u64 = 1 << 63;

struct Listener {
    fd: RawFd,
    responses: u32,
}

struct Flow {
    fd: RawFd,
    listener: usize,
    client: libc::sockaddr_in,
    key: (usize, SocketAddrV4),
    replies: u32,
}

fn parse_addr(s: &str) -> Result<SocketAddrV4, String> {
    s.trim().parse().map_err(|_| format!("not an IPv4 address:port: {s}"))
}

/// Run the floor proxy until killed.
pub fn proxy(o: &Opts) -> Result<(), String> {
    let backends: Vec<SocketAddrV4> = o.get("backends").ok_or("proxy needs --backends A,B")?.split(',').map(parse_addr).collect::<Result<_, _>>()?;
    let mut listeners = Vec::new();
    for l in o.get("listen").ok_or("proxy needs --listen ADDR[=RESPONSES],...")?.split(',') {
        let (addr, responses) = l.split_once('=').unwrap_or((l, "0"));
        let responses = responses.parse().map_err(|_| format!("--listen {l}: bad reply count"))?;
        listeners.push(Listener { fd: udp_socket(parse_addr(addr)?, None, false, true)?, responses });
    }
    // SAFETY: epoll on descriptors owned here
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    let watch = |fd: RawFd, data: u64| -> Result<(), String> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: data };
        // SAFETY: as above
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(os_err("epoll_ctl"));
        }
        Ok(())
    };
    for (i, l) in listeners.iter().enumerate() {
        watch(l.fd, LISTENER_BIT | i as u64)?;
    }
    println!("ready");
    use std::io::Write;
    std::io::stdout().flush().ok();

    let mut flows: Vec<Option<Flow>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut by_client: HashMap<(usize, SocketAddrV4), usize> = HashMap::new();
    let mut next_backend = 0usize;
    let mut inb = vec![0u8; BATCH * MAX];
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { zeroed() }; BATCH];
    // replies waiting for the end of this loop turn, per listener: (client, start, len) in its arena
    let mut replies: Vec<Vec<(libc::sockaddr_in, usize, usize)>> = listeners.iter().map(|_| Vec::new()).collect();
    let mut arenas: Vec<Vec<u8>> = listeners.iter().map(|_| Vec::new()).collect();
    let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: events has room for its length
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as libc::c_int, -1) };
        for ev in events.iter().take(n.max(0) as usize) {
            let data = ev.u64;
            if data & LISTENER_BIT != 0 {
                let li = (data & !LISTENER_BIT) as usize;
                let got = recv_batch(listeners[li].fd, &mut inb, Some(&mut names));
                for (i, len) in got.into_iter().enumerate() {
                    let c = names[i];
                    let client = SocketAddrV4::new(u32::from_be(c.sin_addr.s_addr).into(), u16::from_be(c.sin_port));
                    let key = (li, client);
                    let slot = match by_client.get(&key) {
                        Some(&s) => s,
                        None => {
                            let backend = backends[next_backend % backends.len()];
                            next_backend += 1;
                            let fd = flow_socket(backend)?;
                            let slot = free.pop().unwrap_or_else(|| {
                                flows.push(None);
                                flows.len() - 1
                            });
                            watch(fd, slot as u64)?;
                            flows[slot] = Some(Flow { fd, listener: li, client: c, key, replies: 0 });
                            by_client.insert(key, slot);
                            slot
                        }
                    };
                    let f = flows[slot].as_ref().expect("a flow in the table");
                    // SAFETY: a connected socket and a buffer of `len` bytes
                    unsafe { libc::send(f.fd, inb[i * MAX..].as_ptr() as *const libc::c_void, len, 0) };
                }
            } else {
                let slot = data as usize;
                let Some(f) = flows[slot].as_mut() else { continue };
                let got = recv_batch(f.fd, &mut inb, None);
                let arena = &mut arenas[f.listener];
                for (i, &len) in got.iter().enumerate() {
                    replies[f.listener].push((f.client, arena.len(), len));
                    arena.extend_from_slice(&inb[i * MAX..i * MAX + len]);
                }
                f.replies += got.len() as u32;
                let limit = listeners[f.listener].responses;
                if limit > 0 && f.replies >= limit {
                    let f = flows[slot].take().expect("checked above");
                    by_client.remove(&f.key);
                    // SAFETY: closing the flow's own socket (closing also leaves the epoll set)
                    unsafe { libc::close(f.fd) };
                    free.push(slot);
                }
            }
        }
        for (li, batch) in replies.iter_mut().enumerate() {
            if !batch.is_empty() {
                send_batch(listeners[li].fd, batch, &mut arenas[li]);
                batch.clear();
                arenas[li].clear();
            }
        }
    }
}

/// One non-blocking recvmmsg of up to BATCH datagrams into `inb` (MAX bytes each); their lengths,
/// and their senders in `names` when given.
fn recv_batch(fd: RawFd, inb: &mut [u8], mut names: Option<&mut Vec<libc::sockaddr_in>>) -> Vec<usize> {
    // SAFETY: zeroed iovec/mmsghdr are valid; they point into inb and names, which outlive the call
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for i in 0..BATCH {
        iovs[i] = libc::iovec { iov_base: inb[i * MAX..].as_mut_ptr() as *mut libc::c_void, iov_len: MAX };
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if let Some(n) = names.as_deref_mut() {
            msgs[i].msg_hdr.msg_name = &mut n[i] as *mut _ as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
    }
    // SAFETY: as above
    let r = unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
    (0..r.max(0) as usize).map(|i| msgs[i].msg_len as usize).collect()
}

/// A non-blocking socket connected to `backend` (connect binds it to an ephemeral port).
fn flow_socket(backend: SocketAddrV4) -> Result<RawFd, String> {
    // SAFETY: plain socket syscalls on a descriptor owned here
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if fd < 0 {
            return Err(os_err("socket"));
        }
        let sa = sockaddr_of(backend);
        if libc::connect(fd, &sa as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_in>() as libc::socklen_t) != 0 {
            return Err(os_err(&format!("connect {backend}")));
        }
        Ok(fd)
    }
}

/// sendmmsg the replies of one loop turn from listener `fd`, BATCH at a time (bytes in `arena`).
fn send_batch(fd: RawFd, batch: &mut [(libc::sockaddr_in, usize, usize)], arena: &mut [u8]) {
    for chunk in batch.chunks_mut(BATCH) {
        // SAFETY: as in recv_batch, pointing into `chunk`
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (to, start, len)) in chunk.iter_mut().enumerate() {
            iovs[i] = libc::iovec { iov_base: arena[*start..].as_mut_ptr() as *mut libc::c_void, iov_len: *len };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = to as *mut _ as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        let mut sent = 0;
        while sent < chunk.len() {
            // SAFETY: as above
            let r = unsafe { libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (chunk.len() - sent) as libc::c_uint, 0) };
            if r <= 0 {
                break; // a full buffer: drop the rest, as UDP may
            }
            sent += r as usize;
        }
    }
}
