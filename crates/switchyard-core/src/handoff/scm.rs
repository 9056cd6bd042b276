//! Descriptors over a Unix socket (`SCM_RIGHTS`), one message at a time on
//! a `SOCK_SEQPACKET` pair: each `sendmsg` is one record that arrives whole,
//! with its descriptors attached to it.
//!
//! Kernel facts this relies on: at most [`MAX_FDS`] descriptors per message
//! (`SCM_MAX_FD` is 253); the receiver gets new descriptors for the same open
//! sockets (state, queues and `O_NONBLOCK` are shared); descriptors arrive
//! close-on-exec (`MSG_CMSG_CLOEXEC`); a control buffer too small for them
//! would close the excess (`MSG_CTRUNC`), so the buffer holds `MAX_FDS`.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD` is 253).
pub const MAX_FDS: usize = 252;

/// The largest message: a record of a `SOCK_SEQPACKET` socket must fit its send buffer.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Bytes of control buffer for `n` descriptors (`CMSG_SPACE`).
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((n * size_of::<RawFd>()) as u32) as usize }
}

/// A connected pair of `SOCK_SEQPACKET` Unix sockets, close-on-exec (the
/// end given to a child is made inheritable by the spawn's `dup2`).
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two new descriptors into the array we own.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Own inherited descriptor `fd` if it is a `SOCK_SEQPACKET` socket (the
/// hand-over socket a parent process gave us), else leave it alone.
pub fn inherited(fd: RawFd) -> Option<OwnedFd> {
    let mut ty: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `ty`, which we own;
    // on a descriptor that is not open or not a socket it fails and writes nothing.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, &mut ty as *mut _ as *mut libc::c_void, &mut len) };
    if r != 0 || ty != libc::SOCK_SEQPACKET {
        return None;
    }
    // SAFETY: an open socket descriptor our parent handed us for the
    // hand-over; nothing else in this process uses it, so from here the
    // OwnedFd owns (and closes) it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Send one message with `fds` attached (blocking). At least one byte of
/// data always goes with descriptors.
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS && !data.is_empty() && data.len() <= MAX_MESSAGE);
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // u64 elements: the buffer is aligned for `cmsghdr`.
    let mut control = vec![0u64; cmsg_space(MAX_FDS).div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = cmsg_space(fds.len()) as _;
        // SAFETY: the control buffer is aligned and holds CMSG_SPACE(fds) bytes,
        // so the first header and its data (fds.len() ints) fit in it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * size_of::<RawFd>()) as u32) as _;
            let dst = libc::CMSG_DATA(c) as *mut RawFd;
            for (i, fd) in fds.iter().enumerate() {
                dst.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: msg points at iov, data and control, all alive for the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receive one message into `buf` (blocking): its length (0: the peer
/// closed) and the descriptors that came with it.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let mut control = vec![0u64; cmsg_space(MAX_FDS + 1).div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = (control.len() * 8) as _;
    let n = loop {
        // SAFETY: msg points at iov, buf and control, all alive for the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // headers; CMSG_FIRSTHDR/NXTHDR walk them within that length, and each
    // SCM_RIGHTS header carries (len - CMSG_LEN(0)) / 4 descriptors that are
    // now ours (we own them from here and close them on drop).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                let src = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(src.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a hand-off message was truncated"));
    }
    Ok((n, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_end_crosses_and_still_works() {
        let (a, b) = pair().unwrap();
        let (mut r, mut w) = std::io::pipe().unwrap();
        send(a.as_fd(), b"pipe", &[w.as_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"pipe");
        assert_eq!(fds.len(), 1);
        let mut theirs = std::fs::File::from(fds.into_iter().next().unwrap());
        theirs.write_all(b"through the copy").unwrap();
        drop(theirs);
        w.flush().unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the copy");
    }

    #[test]
    fn many_descriptors_in_one_message_and_eof_after_close() {
        let (a, b) = pair().unwrap();
        let pipes: Vec<_> = (0..100).map(|_| std::io::pipe().unwrap()).collect();
        let fds: Vec<BorrowedFd<'_>> = pipes.iter().flat_map(|(r, w)| [r.as_fd(), w.as_fd()]).collect();
        send(a.as_fd(), b"x", &fds).unwrap();
        let mut buf = [0u8; 4];
        let (n, got) = recv(b.as_fd(), &mut buf).unwrap();
        assert_eq!((n, got.len()), (1, 200));
        drop(a);
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap().0, 0);
    }
}
