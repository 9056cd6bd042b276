//! The fuzz targets and the properties they check (see `mod.rs`). Run one
//! with `SWITCHYARD_FUZZ_SECONDS=30 cargo test -p switchyard-core --lib
//! fuzz::targets::proxy_protocol -- --nocapture`.

use super::{run, Rng, Target};
use crate::proxy_protocol::{self as pp, Command, Header, ParseError, Parsed, Transport};
use crate::tls::sni;

/// Feeds `input[..end]` as growing prefixes split at random points, as reads
/// would deliver it, and returns the first prefix length whose answer `judge`
/// rejects, with the reason.
fn growing_prefixes<R>(
    input: &[u8],
    end: usize,
    rng: &mut Rng,
    parse: impl Fn(&[u8]) -> R,
    judge: impl Fn(usize, &R) -> Result<(), String>,
) -> Result<(), String> {
    let mut at = 0;
    while at < end {
        // Mostly small reads (one byte at a time now and then), sometimes large ones.
        let step = if rng.one_in(4) { 1 } else { 1 + rng.below(end.div_ceil(4).max(1)) };
        at = (at + step).min(end);
        judge(at, &parse(&input[..at])).map_err(|why| format!("prefix of {at} bytes: {why}"))?;
    }
    Ok(())
}

/// The outcome class of a PROXY parse: the error reason, or the kind of header and which TLVs it has.
fn proxy_class(input: &[u8], r: &Result<Parsed, ParseError>) -> String {
    let version = match input.first() {
        Some(b'P') => "v1",
        Some(_) => "v2",
        None => "empty",
    };
    match r {
        Err(ParseError::V2BadTlv(what)) => format!("err:v2_bad_tlv:{what}"),
        Err(e) => format!("err:{}", e.reason()),
        Ok(Parsed::Incomplete) => format!("incomplete:{version}"),
        Ok(Parsed::Done { header: Header::Local, .. }) => "local".into(),
        Ok(Parsed::Done { header: Header::Unknown, .. }) => format!("unknown:{version}"),
        Ok(Parsed::Done { header: Header::Proxy(a), .. }) => {
            let t = &a.tlvs;
            let ssl = t.ssl.as_ref().map_or(String::new(), |s| {
                let subs = [&s.version, &s.cn, &s.cipher, &s.sig_alg, &s.key_alg];
                format!("ssl{}{}", subs.iter().map(|v| if v.is_some() { '1' } else { '0' }).collect::<String>(), !s.other.is_empty() as u8)
            });
            let flags = [
                t.alpn.is_some(),
                t.authority.is_some(),
                t.crc32c.is_some(),
                t.unique_id.is_some(),
                t.netns.is_some(),
                !t.other.is_empty(),
            ];
            let flags: String = flags.iter().map(|f| if *f { '1' } else { '0' }).collect();
            format!("proxy:{version}:{:?}:{}:{flags}:{ssl}", a.transport, if a.src.is_ipv4() { 4 } else { 6 })
        }
    }
}

/// PROXY header parse: no panic; `consumed` within the input and the version's
/// bound; the header alone parses the same; growing prefixes are Incomplete
/// (or the same error) until the end; a parsed header re-encoded (v2, and v1
/// for TCP) parses to the same addresses and TLVs.
fn check_proxy(input: &[u8], rng: &mut Rng) -> Result<String, String> {
    let full = pp::parse(input);
    let end = match &full {
        Ok(Parsed::Done { consumed, .. }) => {
            let bound = if input[0] == b'P' { pp::V1_MAX_LEN } else { pp::V2_HEADER_LEN + pp::MAX_V2_PAYLOAD };
            if *consumed == 0 || *consumed > input.len() || *consumed > bound {
                return Err(format!("consumed {consumed} of {} bytes (bound {bound})", input.len()));
            }
            if pp::parse(&input[..*consumed]) != full {
                return Err("the header alone parses differently".into());
            }
            *consumed
        }
        _ => input.len(),
    };
    growing_prefixes(input, end, rng, pp::parse, |at, got| match (got, &full) {
        (got, full) if at == end && got != full => Err(format!("{got:?}, the whole input gives {full:?}")),
        (Ok(Parsed::Incomplete), _) => Ok(()),
        (Err(e), Err(f)) if e == f => Ok(()),
        // At the end, the first arm has checked it is the whole input's answer.
        _ if at == end => Ok(()),
        (got, full) => Err(format!("{got:?} before the end, the whole input gives {full:?}")),
    })?;
    if let Ok(Parsed::Done { header: Header::Proxy(a), .. }) = &full {
        let crc = a.tlvs.crc32c.is_some();
        let v2 = pp::encode_v2(Command::Proxy, a.transport, a.src, a.dst, &a.tlvs, crc).map_err(|e| format!("re-encoding {a:?}: {e}"))?;
        match pp::parse(&v2) {
            Ok(Parsed::Done { header: Header::Proxy(b), consumed })
                if consumed == v2.len()
                    && (b.transport, b.src, b.dst) == (a.transport, a.src, a.dst)
                    && pp::Tlvs { crc32c: None, ..b.tlvs.clone() } == pp::Tlvs { crc32c: None, ..a.tlvs.clone() } => {}
            other => return Err(format!("{a:?} re-encoded as v2 parses as {other:?}")),
        }
        if a.transport == Transport::Stream {
            let v1 = pp::encode_v1(a.src, a.dst);
            match pp::parse(&v1) {
                Ok(Parsed::Done { header: Header::Proxy(b), consumed }) if consumed == v1.len() && (b.src, b.dst) == (a.src, a.dst) => {}
                other => return Err(format!("{a:?} re-encoded as v1 parses as {other:?}")),
            }
        }
    }
    Ok(proxy_class(input, &full))
}

const PROXY_DICTIONARY: &[&[u8]] = &[
    &pp::V2_SIGNATURE,
    b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x21\x11",
    b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x21\x21",
    b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x20\x00\x00\x00",
    b"PROXY ",
    b"PROXY TCP4 ",
    b"PROXY TCP6 ",
    b"PROXY UNKNOWN",
    b"\r\n",
    b" ",
    b"65535",
    b"255.255.255.255",
    b"::ffff:",
    b"ffff:",
    b"\x03\x00\x04",
    b"\x20\x00\x05\x07\x00\x00\x00\x00",
    b"\x02\x00\x00",
    b"\x05\x00\x80",
];

/// ClientHello peek: no panic; the reader hands it at most `MAX_HELLO` bytes;
/// growing prefixes give Incomplete or the whole input's answer (so a prefix
/// of an input that holds a hello is Incomplete or that same hello); a name is
/// no longer than the input. Then the input's hello body (what follows the
/// first record and handshake headers) is wrapped again with correct lengths,
/// so mutations reach the body parser instead of breaking the framing: the
/// answer for a complete message is never Incomplete and does not depend on
/// how the message is split into records.
fn check_client_hello(input: &[u8], rng: &mut Rng) -> Result<String, String> {
    let input = &input[..input.len().min(sni::MAX_HELLO)];
    let full = sni::parse(input);
    growing_prefixes(input, input.len(), rng, sni::parse, |_, got| match got {
        sni::Parsed::Incomplete => Ok(()),
        got if *got == full => Ok(()),
        got => Err(format!("{got:?}, the whole input gives {full:?}")),
    })?;
    if let sni::Parsed::Hello(Some(name)) = &full {
        if name.len() > input.len() || name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("name {name:?} from {} bytes", input.len()));
        }
    }
    let body = &input[input.len().min(9)..input.len().min(9 + 16 * 1024)];
    let whole = sni::parse(&wrap(body, 16 * 1024));
    let split = 1 + rng.below(body.len().max(1));
    let pieces = sni::parse(&wrap(body, split));
    if whole == sni::Parsed::Incomplete || pieces != whole {
        return Err(format!("the body alone gives {whole:?}, in records of {split} bytes {pieces:?}"));
    }
    Ok(format!("{}:{}:{}", hello_class(&full), hello_class(&whole), body_depth(body)))
}

fn hello_class(r: &sni::Parsed) -> String {
    match r {
        sni::Parsed::Hello(None) => "hello".into(),
        sni::Parsed::Hello(Some(n)) => format!("name{}", n.len().min(64) / 16),
        sni::Parsed::Incomplete => "incomplete".into(),
        sni::Parsed::NotTls => "not_tls".into(),
    }
}

/// `body` as a ClientHello handshake message in handshake records of at most `split` bytes.
fn wrap(body: &[u8], split: usize) -> Vec<u8> {
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut out = Vec::with_capacity(hs.len() + 5 * hs.len().div_ceil(split));
    for part in hs.chunks(split) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// How far a ClientHello body is well formed (its fields in order, then each
/// extension), as an outcome class: inputs that get further are kept.
fn body_depth(body: &[u8]) -> String {
    let mut at = 0;
    let mut take = |n: usize| -> Option<&[u8]> {
        let v = body.get(at..at + n)?;
        at += n;
        Some(v)
    };
    let mut depth = 0;
    let mut ext = 0;
    let mut walk = || -> Option<()> {
        take(34)?;
        depth += 1;
        let n = take(1)?[0] as usize;
        take(n)?;
        depth += 1;
        let n = take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
        take(n)?;
        depth += 1;
        let n = take(1)?[0] as usize;
        take(n)?;
        depth += 1;
        let n = take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
        let mut exts = take(n)?;
        depth += 1;
        while exts.len() >= 4 {
            let kind = u16::from_be_bytes([exts[0], exts[1]]);
            let len = u16::from_be_bytes([exts[2], exts[3]]) as usize;
            exts = exts.get(4 + len..)?;
            ext += 1;
            if kind == 0 {
                depth += 1;
            }
        }
        Some(())
    };
    walk();
    format!("depth{depth}:ext{}", ext.min(8))
}

const HELLO_DICTIONARY: &[&[u8]] = &[
    b"\x16\x03\x01",
    b"\x16\x03\x03",
    b"\x16\x03\x01\x00\x05\x01\x00",
    b"\x01\x00",
    b"\x03\x03",
    b"\x00\x00",                             // server_name extension
    b"\x00\x00\x00\x05\x00\x03\x00\x00\x00", // server_name with an empty host name
    b"\x00\x10",                             // ALPN
    b"\x00\x2b",                             // supported_versions
    b"\x00\x33",                             // key_share
];

#[test]
fn proxy_protocol() {
    run(&Target { name: "proxy_protocol", max_len: 8192, dictionary: PROXY_DICTIONARY, check: check_proxy });
}

#[test]
fn client_hello() {
    run(&Target { name: "client_hello", max_len: sni::MAX_HELLO + 1024, dictionary: HELLO_DICTIONARY, check: check_client_hello });
}
