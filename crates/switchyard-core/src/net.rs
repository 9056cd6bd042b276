//! Socket construction and options that tokio does not expose.

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr};
use tokio::net::TcpStream;

/// Whether several sockets can share a listening address (one accept loop
/// per worker). Without SO_REUSEPORT a listener gets a single socket.
pub const REUSEPORT: bool = cfg!(unix);

/// Bind a listening socket with `SO_REUSEADDR`, `SO_REUSEPORT`, `TCP_NODELAY`
/// (inherited by accepted sockets) and our own backlog (tokio's `bind` fixes
/// it at 128). Non-blocking, ready for tokio.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    #[cfg(unix)]
    sock.set_reuse_port(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one
    // setsockopt here instead of one per connection.
    sock.set_tcp_nodelay(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(sock.into())
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
        let l = bind_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        l.set_nonblocking(false).unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        assert!(a.nodelay().unwrap());
    }
}
