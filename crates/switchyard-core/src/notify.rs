//! systemd's readiness protocol (`sd_notify(3)`): one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET` (a path, or
//! an abstract name written with a leading `@`). Without that variable (not
//! run by systemd with `Type=notify`) nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Send `state` (e.g. `READY=1` or `MAINPID=123\nREADY=1`) to systemd.
/// Returns false when not run under a notify socket.
pub fn sd_notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(false) };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(true);
        }
        #[cfg(not(target_os = "linux"))]
        return Err(io::Error::new(io::ErrorKind::Unsupported, format!("abstract socket names need Linux: {:?}", name)));
    }
    sock.send_to(state.as_bytes(), &path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_datagram_reaches_the_socket_named_in_the_environment() {
        let dir = std::env::temp_dir().join(format!("sy-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // No other test reads NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(super::sd_notify("MAINPID=42\nREADY=1").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=42\nREADY=1");
        assert!(!super::sd_notify("READY=1").unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
