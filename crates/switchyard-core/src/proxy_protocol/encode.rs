//! Writing PROXY headers, as HAProxy's `make_proxy_line_v1/_v2` do. The
//! pipeline writes the header into the buffer that carries the client's first
//! bytes to the backend, hence the `write_*` forms that append to a `Vec`.

use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::tlv::{encoded_len, write_tlvs, Tlvs, MAX_UNIQUE_ID};
use super::{Command, Crc32c, Transport, MAX_V2_PAYLOAD, V2_SIGNATURE};

/// Why a v2 header could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The addresses and TLVs are over [`MAX_V2_PAYLOAD`] (our own receiver,
    /// and any receiver with a similar bound, would refuse it).
    TooLong,
    /// UNIQUE_ID is over [`MAX_UNIQUE_ID`] bytes.
    UniqueIdTooLong,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::TooLong => write!(f, "PROXY v2 header over {MAX_V2_PAYLOAD} bytes"),
            EncodeError::UniqueIdTooLong => write!(f, "PROXY v2 UNIQUE_ID over {MAX_UNIQUE_ID} bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Both addresses in one family: unchanged when they already are, else both
/// IPv6 with IPv4 mapped (`::ffff:a.b.c.d`), as HAProxy does for v1 and v2.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (IpAddr, IpAddr) {
    match (src.ip(), dst.ip()) {
        (s @ IpAddr::V4(_), d @ IpAddr::V4(_)) => (s, d),
        (s, d) => (IpAddr::V6(ipv6(s)), IpAddr::V6(ipv6(d))),
    }
}

/// Appends the v1 line `PROXY TCP4|TCP6 src dst sport dport\r\n` (at most 104 bytes).
pub fn write_v1(out: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr) {
    let (s, d) = same_family(src, dst);
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing to a Vec cannot fail.
    let _ = write!(out, "PROXY {proto} {s} {d} {} {}\r\n", src.port(), dst.port());
}

/// The v1 line for a TCP connection from `src` to `dst`.
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(104);
    write_v1(&mut out, src, dst);
    out
}

/// Appends a v2 header: `cmd` (a LOCAL header may carry addresses too; the
/// receiver ignores them), `transport`, the addresses, `tlvs` and, with `crc`,
/// a CRC32C TLV over the whole header. Nothing is appended on error.
pub fn write_v2(
    out: &mut Vec<u8>,
    cmd: Command,
    transport: Transport,
    src: SocketAddr,
    dst: SocketAddr,
    tlvs: &Tlvs,
    crc: bool,
) -> Result<(), EncodeError> {
    if tlvs.unique_id.as_ref().is_some_and(|id| id.len() > MAX_UNIQUE_ID) {
        return Err(EncodeError::UniqueIdTooLong);
    }
    let (s, d) = same_family(src, dst);
    let addr_len = if s.is_ipv4() { 12 } else { 36 };
    let len = addr_len + encoded_len(tlvs, crc);
    if len > MAX_V2_PAYLOAD {
        return Err(EncodeError::TooLong);
    }
    let start = out.len();
    out.reserve(16 + len);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(match cmd {
        Command::Local => 0x20,
        Command::Proxy => 0x21,
    });
    let family = if s.is_ipv4() { 0x10 } else { 0x20 };
    out.push(
        family
            | match transport {
                Transport::Stream => 0x01,
                Transport::Datagram => 0x02,
            },
    );
    out.extend_from_slice(&(len as u16).to_be_bytes());
    match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.extend_from_slice(&ipv6(s).octets());
            out.extend_from_slice(&ipv6(d).octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    let crc_at = write_tlvs(out, tlvs, crc);
    debug_assert_eq!(out.len() - start, 16 + len);
    if let Some(at) = crc_at {
        let mut c = Crc32c::new();
        c.update(&out[start..]);
        out[at..at + 4].copy_from_slice(&c.finish().to_be_bytes());
    }
    Ok(())
}

/// An address as IPv6 (IPv4 mapped).
fn ipv6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V6(v6) => v6,
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
    }
}

/// A v2 header (see [`write_v2`]).
pub fn encode_v2(
    cmd: Command,
    transport: Transport,
    src: SocketAddr,
    dst: SocketAddr,
    tlvs: &Tlvs,
    crc: bool,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    write_v2(&mut out, cmd, transport, src, dst, tlvs, crc)?;
    Ok(out)
}

/// The 16-byte v2 LOCAL header with no addresses, as HAProxy sends on its
/// health checks (`…0A 20 00 0000`).
pub fn encode_v2_local() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..12].copy_from_slice(&V2_SIGNATURE);
    h[12] = 0x20;
    h
}
