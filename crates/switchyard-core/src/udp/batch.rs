//! Receiving many datagrams per system call: `recvmmsg(2)` on Linux (the
//! lever quinn-udp and every fast UDP proxy pull), one `recvfrom` elsewhere.
//! Each datagram lands in its own slot of `max_datagram + 1` bytes, so a
//! datagram that fills its slot was larger than allowed (it is truncated,
//! and dropped as oversized by the caller).
//!
//! A receive that returns fewer datagrams than it had room for has emptied
//! the socket: tokio's readiness is cleared then and there, so no second
//! call is made only to learn that nothing is left (half the receives of a
//! request/reply flow otherwise).

use std::io;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// Datagrams taken in one call at most.
pub const BATCH: usize = 32;

/// Buffers for one batch: `count` slots and what each received.
pub struct Batch {
    buf: Box<[u8]>,
    slot: usize,
    count: usize,
    /// Per received datagram: its length (capped at the slot) and source.
    got: Vec<(usize, SocketAddr)>,
}

impl Batch {
    /// `count` (at most [`BATCH`]) slots for datagrams up to `max_datagram`
    /// bytes (one more byte tells a larger one).
    pub fn new(max_datagram: usize, count: usize) -> Batch {
        let (slot, count) = (max_datagram + 1, count.clamp(1, BATCH));
        Batch { buf: vec![0u8; slot * count].into_boxed_slice(), slot, count, got: Vec::with_capacity(count) }
    }

    /// The slot size these buffers were made for (see [`Batch::new`]).
    pub fn fits(&self, max_datagram: usize) -> bool {
        self.slot == max_datagram + 1
    }

    /// The datagrams of the last receive: (bytes, source, truncated).
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr, bool)> + '_ {
        self.got.iter().enumerate().map(|(i, &(n, from))| (&self.buf[i * self.slot..i * self.slot + n], from, n >= self.slot))
    }

    /// Receive what is waiting without blocking, into [`Batch::datagrams`]:
    /// `Ok(true)` when every slot filled (more may wait), `Ok(false)` when
    /// the socket was emptied, `WouldBlock` when nothing waited (in both of
    /// these the readiness is cleared).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<bool> {
        self.got.clear();
        let count = self.count;
        let r = socket.try_io(tokio::io::Interest::READABLE, || match self.recv_now(socket)? {
            // Fewer than there was room for: the queue is empty; `WouldBlock` makes tokio
            // clear the readiness (unless an event came meanwhile).
            n if n < count => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(()),
        });
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.got.is_empty() => Ok(false),
            Err(e) => Err(e),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: zeroed iovec and mmsghdr are valid values (plain C structs).
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut addrs: [socket2::SockAddrStorage; BATCH] = std::array::from_fn(|_| socket2::SockAddrStorage::zeroed());
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..self.count {
            iov[i].iov_base = self.buf[i * self.slot..].as_mut_ptr().cast();
            iov[i].iov_len = self.slot;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_namelen = addrs[i].size_of();
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut socket2::SockAddrStorage).cast();
        }
        // SAFETY: every pointer in `msgs` points into `iov`, `addrs` and `self.buf`, which
        // outlive the call; each iovec covers exactly its own slot of `self.buf`.
        let n = unsafe {
            libc::recvmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), self.count as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let lens: Vec<(usize, libc::socklen_t)> = msgs[..n as usize].iter().map(|m| (m.msg_len as usize, m.msg_hdr.msg_namelen)).collect();
        for ((len, namelen), storage) in lens.into_iter().zip(addrs) {
            // SAFETY: the kernel wrote a socket address of `namelen` bytes into this storage.
            let from = unsafe { socket2::SockAddr::new(storage, namelen) };
            if let Some(from) = from.as_socket() {
                self.got.push((len.min(self.slot), from));
            }
        }
        Ok(self.got.len())
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (n, from) = socket.try_recv_from(&mut self.buf[..self.slot])?;
        self.got.push((n, from));
        Ok(1)
    }
}
