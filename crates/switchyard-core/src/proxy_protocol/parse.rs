//! Reading a PROXY header from the start of a growing buffer (see the
//! contract in `mod.rs`). Both versions are read strictly left to right and
//! every check looks only at bytes already seen, so a prefix of an input
//! gives either `Incomplete` or the very answer the whole input gives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::tlv::parse_tlvs;
use super::{Addresses, Command, Crc32c, Header, ParseError, Parsed, Transport, MAX_V2_PAYLOAD, V1_MAX_LEN, V2_HEADER_LEN, V2_SIGNATURE};

/// Parses the PROXY header (v1 or v2) at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ParseError> {
    let r = match buf.first() {
        None => Err(Stop::Incomplete),
        Some(b'P') => parse_v1(buf),
        Some(0x0D) => parse_v2(buf),
        Some(_) => Err(Stop::Bad(ParseError::NotProxy)),
    };
    match r {
        Ok((header, consumed)) => Ok(Parsed::Done { header, consumed }),
        Err(Stop::Incomplete) => Ok(Parsed::Incomplete),
        Err(Stop::Bad(e)) => Err(e),
    }
}

/// Why parsing stopped before a header.
enum Stop {
    /// The bytes so far are a prefix of a valid header.
    Incomplete,
    /// They are not.
    Bad(ParseError),
}

impl From<ParseError> for Stop {
    fn from(e: ParseError) -> Self {
        Stop::Bad(e)
    }
}

type Step<T> = Result<T, Stop>;

/// Checks that `buf` starts with `prefix` (or is a prefix of it: Incomplete).
fn expect_prefix(buf: &[u8], prefix: &[u8]) -> Step<()> {
    for (i, want) in prefix.iter().enumerate() {
        match buf.get(i) {
            None => return Err(Stop::Incomplete),
            Some(b) if b != want => return Err(ParseError::NotProxy.into()),
            Some(_) => {}
        }
    }
    Ok(())
}

// ---- v1 ----

/// A cursor over a v1 line that enforces the 107-byte bound.
struct Line<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Line<'a> {
    fn next(&mut self) -> Step<u8> {
        if self.at >= V1_MAX_LEN {
            return Err(ParseError::V1TooLong.into());
        }
        let b = *self.buf.get(self.at).ok_or(Stop::Incomplete)?;
        self.at += 1;
        Ok(b)
    }

    /// Reads a field up to its delimiter (a space or CR), which is returned
    /// with it. `ok` judges the field so far after every byte (so a bad field
    /// fails before its end arrives) and fails with `bad`.
    fn field(&mut self, ok: impl Fn(&[u8]) -> bool, bad: ParseError) -> Step<(&'a [u8], u8)> {
        let start = self.at;
        loop {
            let b = self.next()?;
            match b {
                b' ' | b'\r' if self.at - 1 == start => return Err(ParseError::V1BadLine.into()),
                b' ' | b'\r' => return Ok((&self.buf[start..self.at - 1], b)),
                b'\n' => return Err(ParseError::V1BadLine.into()),
                _ if !ok(&self.buf[start..self.at]) => return Err(bad.into()),
                _ => {}
            }
        }
    }

    /// The LF after a CR.
    fn lf(&mut self) -> Step<()> {
        if self.next()? != b'\n' {
            return Err(ParseError::V1BadLine.into());
        }
        Ok(())
    }

    /// Expects `want` as the delimiter just read.
    fn delimiter(got: u8, want: u8) -> Step<()> {
        if got != want {
            return Err(ParseError::V1BadLine.into());
        }
        Ok(())
    }
}

const PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

fn parse_v1(buf: &[u8]) -> Step<(Header, usize)> {
    expect_prefix(buf, b"PROXY ")?;
    let mut line = Line { buf, at: 6 };
    let (proto, d) = line.field(|t| PROTOCOLS.iter().any(|p| p.starts_with(t)), ParseError::V1BadProtocol)?;
    let v6 = match proto {
        b"TCP4" => false,
        b"TCP6" => true,
        b"UNKNOWN" => {
            // The rest of the line is ignored (the spec lets a sender put
            // anything there), but it must still end in CRLF within the bound.
            let mut b = d;
            while b != b'\r' {
                b = line.next()?;
                if b == b'\n' {
                    return Err(ParseError::V1BadLine.into());
                }
            }
            line.lf()?;
            return Ok((Header::Unknown, line.at));
        }
        _ => return Err(ParseError::V1BadProtocol.into()),
    };
    Line::delimiter(d, b' ')?;
    let src = address(&mut line, v6)?;
    let dst = address(&mut line, v6)?;
    let sport = port(&mut line, b' ')?;
    let dport = port(&mut line, b'\r')?;
    line.lf()?;
    let addrs = Addresses {
        transport: Transport::Stream,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        tlvs: Default::default(),
    };
    Ok((Header::Proxy(addrs), line.at))
}

/// An address field of the declared family, followed by a space.
fn address(line: &mut Line, v6: bool) -> Step<IpAddr> {
    let (text, d) = if v6 {
        // Up to 45 characters (INET6_ADDRSTRLEN - 1, with an embedded IPv4).
        line.field(|t| t.len() <= 45 && t.iter().all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.'), ParseError::V1BadAddress)?
    } else {
        line.field(|t| t.len() <= 15 && t.iter().all(|b| b.is_ascii_digit() || *b == b'.'), ParseError::V1BadAddress)?
    };
    Line::delimiter(d, b' ')?;
    let text = std::str::from_utf8(text).map_err(|_| ParseError::V1BadAddress)?;
    let ip = if v6 {
        IpAddr::V6(text.parse::<Ipv6Addr>().map_err(|_| ParseError::V1BadAddress)?)
    } else {
        let ip = text.parse::<Ipv4Addr>().map_err(|_| ParseError::V1BadAddress)?;
        // Only the canonical dotted quad: no leading zeros (octal ambiguity).
        if ip.to_string() != text {
            return Err(ParseError::V1BadAddress.into());
        }
        IpAddr::V4(ip)
    };
    Ok(ip)
}

/// A port field (decimal 0–65535, no leading zeros) followed by `delimiter`.
fn port(line: &mut Line, delimiter: u8) -> Step<u16> {
    let ok = |t: &[u8]| {
        t.iter().all(u8::is_ascii_digit)
            && !(t.len() > 1 && t[0] == b'0')
            && t.len() <= 5
            && t.iter().fold(0u32, |n, d| n * 10 + (d - b'0') as u32) <= 65535
    };
    let (text, d) = line.field(ok, ParseError::V1BadPort)?;
    Line::delimiter(d, delimiter)?;
    Ok(text.iter().fold(0u16, |n, d| n * 10 + (d - b'0') as u16))
}

// ---- v2 ----

fn parse_v2(buf: &[u8]) -> Step<(Header, usize)> {
    expect_prefix(buf, &V2_SIGNATURE)?;
    let ver_cmd = *buf.get(12).ok_or(Stop::Incomplete)?;
    if ver_cmd >> 4 != 2 {
        return Err(ParseError::V2BadVersion.into());
    }
    let cmd = match ver_cmd & 0x0F {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(ParseError::V2BadCommand.into()),
    };
    let fam = *buf.get(13).ok_or(Stop::Incomplete)?;
    // LOCAL: the receiver discards the whole block, family included.
    let addr_len = match (cmd, fam) {
        (Command::Local, _) | (_, 0x00) => 0,
        (_, 0x11 | 0x12) => 12,
        (_, 0x21 | 0x22) => 36,
        (_, 0x31 | 0x32) => 216,
        _ => return Err(ParseError::V2BadFamily.into()),
    };
    let Some(len) = buf.get(14..16) else { return Err(Stop::Incomplete) };
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    if len > MAX_V2_PAYLOAD {
        return Err(ParseError::TooLong.into());
    }
    if len < addr_len {
        return Err(ParseError::V2ShortAddresses.into());
    }
    let total = V2_HEADER_LEN + len;
    let Some(header) = buf.get(..total) else { return Err(Stop::Incomplete) };
    let (transport, v6) = match (cmd, fam) {
        (Command::Local, _) => return Ok((Header::Local, total)),
        (_, 0x11) => (Transport::Stream, false),
        (_, 0x12) => (Transport::Datagram, false),
        (_, 0x21) => (Transport::Stream, true),
        (_, 0x22) => (Transport::Datagram, true),
        // UNSPEC or UNIX: nothing we can route by; skip the block (TLVs included).
        _ => return Ok((Header::Unknown, total)),
    };
    let a = &header[V2_HEADER_LEN..V2_HEADER_LEN + addr_len];
    let (src, dst, ports) = if v6 {
        let ip = |b: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")));
        (ip(&a[0..16]), ip(&a[16..32]), &a[32..36])
    } else {
        let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        (ip(&a[0..4]), ip(&a[4..8]), &a[8..12])
    };
    let tlv_start = V2_HEADER_LEN + addr_len;
    let (tlvs, crc_at) = parse_tlvs(&header[tlv_start..])?;
    if let (Some(rel), Some(want)) = (crc_at, tlvs.crc32c) {
        let at = tlv_start + rel;
        let mut c = Crc32c::new();
        c.update(&header[..at]);
        c.update(&[0; 4]);
        c.update(&header[at + 4..]);
        if c.finish() != want {
            return Err(ParseError::CrcMismatch.into());
        }
    }
    let addrs = Addresses {
        transport,
        src: SocketAddr::new(src, u16::from_be_bytes([ports[0], ports[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
        tlvs,
    };
    Ok((Header::Proxy(addrs), total))
}
