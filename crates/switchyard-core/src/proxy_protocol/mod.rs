//! The PROXY protocol, versions 1 (text) and 2 (binary): a pure codec, bytes in
//! and header or error out, with no I/O. The specification is HAProxy's
//! `doc/proxy-protocol.txt`; notes on what real peers send are in
//! `/work/shared/notes/next.md` section D.
//!
//! # Contract
//!
//! * [`parse`] reads the header at the start of a buffer that grows as reads
//!   arrive. It answers [`Parsed::Incomplete`] only while the bytes so far are a
//!   prefix of some valid header; as soon as they cannot be, it answers the
//!   error. Feeding the same bytes split at any points therefore gives
//!   `Incomplete` until the header's last byte, then exactly the result of the
//!   whole input (the fuzzer checks this, see `src/fuzz/`).
//! * [`Parsed::Done`] carries `consumed`, the header's exact length: v1 is at
//!   most [`V1_MAX_LEN`] (107) bytes, v2 is 16 + the declared length, at most
//!   16 + [`MAX_V2_PAYLOAD`]. Bytes after it are the client's first payload
//!   bytes; the caller keeps them (HAProxy sends the header in its own segment,
//!   others send header and data together).
//! * Version detection is by the first bytes, never a guess: v2 is the 12-byte
//!   signature followed by a byte `0x2?`, v1 starts with `PROXY `. A buffer
//!   that disagrees with both prefixes is [`ParseError::NotProxy`] from its
//!   first differing byte. Receivers must only call this for sources they
//!   trust (the spec forbids auto-detection: anyone could claim an address).
//! * Every [`ParseError`] has a stable short [`ParseError::reason`] for logs
//!   and counters.
//! * The encoders write what HAProxy writes: v1 for TCP only (mixed address
//!   families become `TCP6` with the IPv4 address mapped, `::ffff:a.b.c.d`, as
//!   HAProxy's `make_proxy_line_v1` does), v2 with TLVs in HAProxy's order
//!   (CRC32C, ALPN, AUTHORITY, UNIQUE_ID, SSL, NETNS, then the others).

// The pipeline uses `parse`, `write_v1`, `write_v2`; the allocating encoders, the LOCAL header,
// the bare CRC function and the SSL client bits serve the tests and the fuzzer.
#![allow(dead_code, unused_imports)]

mod crc32c;
mod encode;
mod parse;
mod tlv;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

pub use crc32c::{crc32c, Crc32c};
pub use encode::{encode_v1, encode_v2, encode_v2_local, write_v1, write_v2, EncodeError};
pub use parse::parse;
pub use tlv::{Ssl, Tlvs, CLIENT_CERT_CONN, CLIENT_CERT_SESS, CLIENT_SSL, MAX_UNIQUE_ID};

/// The longest v1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6
/// addresses and ports; the spec's 108-byte buffer holds it plus a NUL).
pub const V1_MAX_LEN: usize = 107;

/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_HEADER_LEN: usize = 16;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// The largest v2 payload (the bytes after the fixed 16) accepted. The
/// addresses take at most 216 bytes (UNIX); HAProxy's senders add ALPN (≤ 255),
/// AUTHORITY (a host name, ≤ 255), UNIQUE_ID (≤ 128), CRC32C (7) and an SSL
/// TLV with version, cipher, algorithms and the client certificate's CN (a few
/// hundred bytes), well under 2 KiB together. 4096 leaves room for custom TLVs
/// while bounding what an untrusted-but-allowed peer can make us buffer per
/// connection (the field itself allows 64 KiB).
pub const MAX_V2_PAYLOAD: usize = 4096;

/// The transport the proxied connection used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (v1 `TCP4`/`TCP6`, v2 `0x11`/`0x21`).
    Stream,
    /// UDP (v2 only: `0x12`/`0x22`).
    Datagram,
}

/// The v2 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The sender's own connection (health checks): use the real endpoints.
    Local,
    /// A relayed connection: the header's addresses are the client's.
    Proxy,
}

/// The addresses a PROXY header declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// Stream or datagram.
    pub transport: Transport,
    /// The client's address as the sender saw it.
    pub src: SocketAddr,
    /// The address the client connected to.
    pub dst: SocketAddr,
    /// The v2 TLVs (empty for v1).
    pub tlvs: Tlvs,
}

/// A parsed header.
// The large variant is the common one (every relayed connection); boxing it
// would add an allocation per connection to save bytes only on health checks.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// v2 `LOCAL`: the sender's own connection (a health check); use the real
    /// connection endpoints.
    Local,
    /// v1 `UNKNOWN`, or v2 `PROXY` with an unspecified or UNIX family: the
    /// sender could not say; use the real connection endpoints.
    Unknown,
    /// A relayed connection with its addresses.
    Proxy(Addresses),
}

impl Header {
    /// The client address this header declares, if any. IPv4-mapped IPv6
    /// addresses are returned as IPv4 so they match IPv4 CIDRs and hash
    /// like the same client connecting directly.
    pub fn client(&self) -> Option<SocketAddr> {
        match self {
            Header::Proxy(a) => Some(SocketAddr::new(canonical(a.src.ip()), a.src.port())),
            Header::Local | Header::Unknown => None,
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What the bytes so far are.
#[allow(clippy::large_enum_variant)] // as for `Header`: `Done` is the answer that matters
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A prefix of a valid header: read more.
    Incomplete,
    /// A whole header of `consumed` bytes; the bytes after it are payload.
    Done {
        /// The header.
        header: Header,
        /// The header's length in bytes.
        consumed: usize,
    },
}

/// Why the bytes are not a valid PROXY header. The connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Neither the v1 nor the v2 prefix.
    NotProxy,
    /// v1: no CRLF within 107 bytes.
    V1TooLong,
    /// v1: a lone CR or LF, a doubled space, or a missing field.
    V1BadLine,
    /// v1: the protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1BadProtocol,
    /// v1: an address that is not a valid address of the declared family.
    V1BadAddress,
    /// v1: a port that is not decimal 0–65535 without leading zeros.
    V1BadPort,
    /// v2: the signature is followed by a version other than 2.
    V2BadVersion,
    /// v2: a command other than LOCAL (0) or PROXY (1).
    V2BadCommand,
    /// v2: an address family / transport byte outside the spec's list.
    V2BadFamily,
    /// v2: the declared length does not cover the address block.
    V2ShortAddresses,
    /// v2: the declared length is over [`MAX_V2_PAYLOAD`].
    TooLong,
    /// v2: a malformed TLV (what is wrong with it).
    V2BadTlv(&'static str),
    /// v2: the CRC32C TLV does not match the header.
    CrcMismatch,
}

impl ParseError {
    /// A stable short reason, for logs and counter labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::NotProxy => "not_proxy",
            ParseError::V1TooLong => "v1_too_long",
            ParseError::V1BadLine => "v1_bad_line",
            ParseError::V1BadProtocol => "v1_bad_protocol",
            ParseError::V1BadAddress => "v1_bad_address",
            ParseError::V1BadPort => "v1_bad_port",
            ParseError::V2BadVersion => "v2_bad_version",
            ParseError::V2BadCommand => "v2_bad_command",
            ParseError::V2BadFamily => "v2_bad_family",
            ParseError::V2ShortAddresses => "v2_short_addresses",
            ParseError::TooLong => "too_long",
            ParseError::V2BadTlv(_) => "v2_bad_tlv",
            ParseError::CrcMismatch => "crc_mismatch",
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::V2BadTlv(what) => write!(f, "PROXY header: {} ({what})", self.reason()),
            _ => write!(f, "PROXY header: {}", self.reason()),
        }
    }
}

impl std::error::Error for ParseError {}
