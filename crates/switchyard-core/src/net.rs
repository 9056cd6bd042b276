//! Socket construction and options that tokio does not expose.

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Whether several sockets can share a listening address (one accept loop
/// per worker). Without SO_REUSEPORT a listener gets a single socket.
pub const REUSEPORT: bool = cfg!(unix);

/// Bind a listening socket with `SO_REUSEADDR`, `TCP_NODELAY` (inherited by
/// accepted sockets) and our own backlog (tokio's `bind` fixes it at 128).
/// Non-blocking, ready for tokio. `SO_REUSEPORT` only when `reuseport`: it
/// lets any other socket of the same user bind the address too, so it is set
/// only where several sockets must share it. With `defer_accept`, see
/// [`set_defer_accept`]; with `freebind`, see [`set_freebind`].
pub fn bind_listener(
    addr: SocketAddr,
    backlog: u32,
    defer_accept: bool,
    reuseport: bool,
    freebind: bool,
) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if freebind {
        set_freebind(&sock, addr)?;
    }
    #[cfg(unix)]
    if reuseport {
        sock.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one
    // setsockopt here instead of one per connection.
    sock.set_tcp_nodelay(true)?;
    sock.set_nonblocking(true)?;
    if defer_accept {
        set_defer_accept(&sock, true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(clamp_backlog(backlog))?;
    Ok(sock.into())
}

/// Change the backlog and `defer_accept` of a listening socket in place:
/// `listen(2)` on a listening socket only updates its backlog, and its queue
/// of pending connections is kept.
pub fn relisten(sock: &std::net::TcpListener, backlog: u32, defer_accept: bool) -> io::Result<()> {
    let s = SockRef::from(sock);
    set_defer_accept(&s, defer_accept)?;
    s.listen(clamp_backlog(backlog))
}

/// `IP_FREEBIND` / `IPV6_FREEBIND` (Linux), set before `bind(2)`: the socket
/// may bind an address this host does not hold (yet), such as a virtual IP
/// that keepalived moves to this host on failover; it receives traffic as
/// soon as the address arrives. Other systems: `Unsupported`.
pub fn set_freebind(sock: &Socket, addr: SocketAddr) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return if addr.is_ipv6() { sock.set_freebind_v6(true) } else { sock.set_freebind_v4(true) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (sock, addr);
        Err(io::Error::new(io::ErrorKind::Unsupported, "IP_FREEBIND exists on Linux only"))
    }
}

/// The message of a failed bind: the OS error, and for an address this host
/// does not hold (`EADDRNOTAVAIL`) without `freebind`, the way to bind it anyway.
pub fn bind_error_message(e: &io::Error, freebind: bool) -> String {
    if e.kind() == io::ErrorKind::AddrNotAvailable && !freebind {
        format!("{e} (the address is on no interface of this host; `freebind: true` binds it anyway, e.g. for a virtual IP)")
    } else {
        e.to_string()
    }
}

fn clamp_backlog(backlog: u32) -> i32 {
    backlog.min(i32::MAX as u32) as i32
}

/// `TCP_DEFER_ACCEPT` (1 s): the kernel completes the handshake but hands the
/// connection to `accept` only once the client has sent data, so the first
/// read finds the request and it leaves with the backend connect (see
/// [`connect`]). Under a connection-per-request load most clients have not
/// written yet when an idle worker accepts (measured: 83 % of first reads
/// empty), and the backend then wakes twice per connection. For protocols
/// where the client speaks first (HTTP, TLS, Redis); a server-first protocol
/// (SMTP, MySQL, FTP) would wait ≥ 1 s for its banner. HAProxy's
/// `defer-accept`, nginx's `deferred`.
#[cfg(target_os = "linux")]
fn set_defer_accept(sock: &Socket, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let secs: libc::c_int = if on { 1 } else { 0 };
    // SAFETY: a valid socket fd, and a pointer to a c_int that outlives the call with its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_defer_accept(_: &Socket, on: bool) -> io::Result<()> {
    if !on {
        return Ok(());
    }
    Err(io::Error::new(io::ErrorKind::Unsupported, "defer_accept (TCP_DEFER_ACCEPT) exists on Linux only"))
}

/// Connect to a backend and deliver `preface` (bytes the client already
/// sent): a non-blocking socket with `TCP_NODELAY` (latency over batching),
/// registered with tokio. Returns once connected and `preface` is written.
///
/// Two savings over `TcpStream::connect` + write, both per connection:
/// - the preface is sent right after `connect(2)`: on loopback and fast LANs
///   the handshake completes inside that call, so the backend finds the
///   request together with the connection (one wake-up of its process, not
///   two: measured on nginx, 17 → 13 µs CPU per connection) and no epoll
///   round trip is spent waiting for writability. While still connecting the
///   send fails with `EAGAIN` and we wait as usual; a refused connection
///   fails it with the connect error, nothing delivered, so retrying on
///   another backend is safe;
/// - the outcome of a pending connect is read from the readiness event
///   (`EPOLLERR`/`EPOLLHUP` mean failure), so `getsockopt(SO_ERROR)` runs only
///   on failure, to name the error.
pub async fn connect(addr: SocketAddr, preface: &[u8]) -> io::Result<TcpStream> {
    let sock = nonblocking_socket(addr)?;
    sock.set_tcp_nodelay(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(einprogress()) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(sock.into())?;
    let mut sent = 0;
    if !preface.is_empty() {
        // A direct send: tokio's try_write would report WouldBlock without
        // trying, as it has seen no readiness event yet.
        match SockRef::from(&stream).send(preface) {
            Ok(n) => sent = n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    if sent == 0 {
        let ready = stream.ready(Interest::WRITABLE | Interest::ERROR).await?;
        if ready.is_error() || ready.is_write_closed() {
            return Err(match stream.take_error()? {
                Some(e) => e,
                None => io::ErrorKind::ConnectionRefused.into(),
            });
        }
    }
    write_all(&stream, &preface[sent..]).await?;
    Ok(stream)
}

/// A non-blocking TCP socket for `addr`'s family; on Linux created so in one
/// syscall (`SOCK_NONBLOCK | SOCK_CLOEXEC`), elsewhere with a second call.
fn nonblocking_socket(addr: SocketAddr) -> io::Result<Socket> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    return Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP));
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        Ok(sock)
    }
}

#[cfg(unix)]
fn einprogress() -> i32 {
    libc::EINPROGRESS
}

#[cfg(not(unix))]
fn einprogress() -> i32 {
    -1
}

/// Is `e` this process running out of descriptors or memory (EMFILE,
/// ENFILE, ENOBUFS, ENOMEM) rather than a peer refusing? Such a failure
/// says nothing about the backend or the client.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::OutOfMemory
    }
}

/// Write all of `data`, trying first and waiting for writability only on `EAGAIN`.
pub async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Pass a FIN on: shut down the write half of `s`. A socket the peer already
/// reset reports `ENOTCONN`, which is not an error for a proxy.
pub fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    match SockRef::from(s).shutdown(Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-connection setsockopt(TCP_NODELAY) is skipped on Linux because
    /// accepted sockets inherit it from the listener; this holds the kernel to it.
    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let l = bind_listener("127.0.0.1:0".parse().unwrap(), 16, false, false, false).unwrap();
        l.set_nonblocking(false).unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        assert!(a.nodelay().unwrap());
    }

    /// Without SO_REUSEPORT a second socket on the same address fails; with
    /// it on both, both bind (the `accept: reuseport` mode, by design).
    #[test]
    fn reuseport_only_when_asked() {
        let a = bind_listener("127.0.0.1:0".parse().unwrap(), 16, false, false, false).unwrap();
        let err = bind_listener(a.local_addr().unwrap(), 16, false, false, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let b = bind_listener("127.0.0.1:0".parse().unwrap(), 16, false, true, false).unwrap();
        bind_listener(b.local_addr().unwrap(), 16, false, true, false).unwrap();
        relisten(&a, 64, true).unwrap();
        relisten(&a, 64, false).unwrap();
    }

    /// An address no interface holds (TEST-NET-3): refused without
    /// IP_FREEBIND, with a message naming the option; bound with it.
    #[cfg(target_os = "linux")]
    #[test]
    fn freebind_binds_an_address_not_held() {
        let addr: SocketAddr = "203.0.113.77:0".parse().unwrap();
        let err = bind_listener(addr, 16, false, false, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
        assert!(bind_error_message(&err, false).contains("freebind: true"));
        let l = bind_listener(addr, 16, false, false, true).unwrap();
        assert_eq!(l.local_addr().unwrap().ip(), addr.ip());
    }
}
