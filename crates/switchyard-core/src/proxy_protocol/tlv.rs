//! PROXY v2 TLVs (`{type u8, length u16 BE, value}` after the addresses):
//! the typed set HAProxy sends and reads, their parsing and their writing.

use super::ParseError;

/// `PP2_TYPE_ALPN`: the negotiated application protocol.
pub const ALPN: u8 = 0x01;
/// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI), UTF-8.
pub const AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_CRC32C`: a checksum of the whole header with this value zeroed.
pub const CRC32C: u8 = 0x03;
/// `PP2_TYPE_NOOP`: padding, ignored.
pub const NOOP: u8 = 0x04;
/// `PP2_TYPE_UNIQUE_ID`: an opaque connection id of at most 128 bytes.
pub const UNIQUE_ID: u8 = 0x05;
/// `PP2_TYPE_SSL`: `{client u8, verify u32 BE, sub-TLVs}`.
pub const SSL: u8 = 0x20;
/// `PP2_SUBTYPE_SSL_VERSION`: e.g. `TLSv1.3`.
pub const SSL_VERSION: u8 = 0x21;
/// `PP2_SUBTYPE_SSL_CN`: the client certificate's Common Name.
pub const SSL_CN: u8 = 0x22;
/// `PP2_SUBTYPE_SSL_CIPHER`: e.g. `TLS_AES_128_GCM_SHA256`.
pub const SSL_CIPHER: u8 = 0x23;
/// `PP2_SUBTYPE_SSL_SIG_ALG`: the client certificate's signature algorithm.
pub const SSL_SIG_ALG: u8 = 0x24;
/// `PP2_SUBTYPE_SSL_KEY_ALG`: the client certificate's key algorithm.
pub const SSL_KEY_ALG: u8 = 0x25;
/// `PP2_TYPE_NETNS`: the network namespace name.
pub const NETNS: u8 = 0x30;

/// `client` bit: the client connected over TLS.
pub const CLIENT_SSL: u8 = 0x01;
/// `client` bit: the client sent a certificate on this connection.
pub const CLIENT_CERT_CONN: u8 = 0x02;
/// `client` bit: the client sent a certificate on this session.
pub const CLIENT_CERT_SESS: u8 = 0x04;

/// The longest UNIQUE_ID the spec allows.
pub const MAX_UNIQUE_ID: usize = 128;

/// The TLVs of a v2 header. Each known type appears at most once (a repeated
/// one is an error: which of two authorities would be the real one?); NOOP is
/// dropped; other types are kept in order. Bounded by the payload bound,
/// [`super::MAX_V2_PAYLOAD`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tlvs {
    /// ALPN (0x01).
    pub alpn: Option<Vec<u8>>,
    /// AUTHORITY (0x02), the SNI.
    pub authority: Option<String>,
    /// CRC32C (0x03) as received (already verified). Ignored when encoding:
    /// the encoder's `crc` argument decides.
    pub crc32c: Option<u32>,
    /// UNIQUE_ID (0x05), at most [`MAX_UNIQUE_ID`] bytes.
    pub unique_id: Option<Vec<u8>>,
    /// SSL (0x20).
    pub ssl: Option<Ssl>,
    /// NETNS (0x30).
    pub netns: Option<Vec<u8>>,
    /// Any other type (custom 0xE0–0xEF, experimental, future), in order.
    pub other: Vec<(u8, Vec<u8>)>,
}

/// The SSL TLV (0x20).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssl {
    /// [`CLIENT_SSL`], [`CLIENT_CERT_CONN`], [`CLIENT_CERT_SESS`] bits.
    pub client: u8,
    /// The certificate verification result; 0 is success.
    pub verify: u32,
    /// VERSION (0x21).
    pub version: Option<String>,
    /// CN (0x22).
    pub cn: Option<String>,
    /// CIPHER (0x23).
    pub cipher: Option<String>,
    /// SIG_ALG (0x24).
    pub sig_alg: Option<String>,
    /// KEY_ALG (0x25).
    pub key_alg: Option<String>,
    /// Other sub-TLVs, in order.
    pub other: Vec<(u8, Vec<u8>)>,
}

/// Splits `buf` into TLVs; `at` is the offset of each value in `buf`.
fn each_tlv(buf: &[u8], mut f: impl FnMut(u8, usize, &[u8]) -> Result<(), ParseError>) -> Result<(), ParseError> {
    let mut at = 0;
    while at < buf.len() {
        let Some(head) = buf.get(at..at + 3) else { return Err(ParseError::V2BadTlv("truncated TLV header")) };
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        let Some(value) = buf.get(at + 3..at + 3 + len) else { return Err(ParseError::V2BadTlv("TLV overruns the header")) };
        f(head[0], at + 3, value)?;
        at += 3 + len;
    }
    Ok(())
}

/// Sets a known field once.
fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::V2BadTlv("repeated TLV"));
    }
    *slot = Some(value);
    Ok(())
}

fn utf8(value: &[u8], what: &'static str) -> Result<String, ParseError> {
    std::str::from_utf8(value).map(str::to_owned).map_err(|_| ParseError::V2BadTlv(what))
}

/// Parses the TLV block of a v2 header (the bytes after the addresses).
/// Returns the TLVs and, when a CRC32C TLV is present, the offset of its
/// 4-byte value within `buf` (the caller checks it over the whole header).
pub(super) fn parse_tlvs(buf: &[u8]) -> Result<(Tlvs, Option<usize>), ParseError> {
    let mut t = Tlvs::default();
    let mut crc_at = None;
    each_tlv(buf, |kind, at, value| match kind {
        ALPN => once(&mut t.alpn, value.to_vec()),
        AUTHORITY => once(&mut t.authority, utf8(value, "AUTHORITY is not UTF-8")?),
        CRC32C => {
            let v: [u8; 4] = value.try_into().map_err(|_| ParseError::V2BadTlv("CRC32C is not 4 bytes"))?;
            crc_at = Some(at);
            once(&mut t.crc32c, u32::from_be_bytes(v))
        }
        NOOP => Ok(()),
        UNIQUE_ID if value.len() > MAX_UNIQUE_ID => Err(ParseError::V2BadTlv("UNIQUE_ID is over 128 bytes")),
        UNIQUE_ID => once(&mut t.unique_id, value.to_vec()),
        SSL => once(&mut t.ssl, parse_ssl(value)?),
        NETNS => once(&mut t.netns, value.to_vec()),
        _ => {
            t.other.push((kind, value.to_vec()));
            Ok(())
        }
    })?;
    Ok((t, crc_at))
}

fn parse_ssl(value: &[u8]) -> Result<Ssl, ParseError> {
    if value.len() < 5 {
        return Err(ParseError::V2BadTlv("SSL is under 5 bytes"));
    }
    let mut s = Ssl { client: value[0], verify: u32::from_be_bytes([value[1], value[2], value[3], value[4]]), ..Ssl::default() };
    each_tlv(&value[5..], |kind, _, v| match kind {
        SSL_VERSION => once(&mut s.version, utf8(v, "SSL version is not UTF-8")?),
        SSL_CN => once(&mut s.cn, utf8(v, "SSL CN is not UTF-8")?),
        SSL_CIPHER => once(&mut s.cipher, utf8(v, "SSL cipher is not UTF-8")?),
        SSL_SIG_ALG => once(&mut s.sig_alg, utf8(v, "SSL sig_alg is not UTF-8")?),
        SSL_KEY_ALG => once(&mut s.key_alg, utf8(v, "SSL key_alg is not UTF-8")?),
        _ => {
            s.other.push((kind, v.to_vec()));
            Ok(())
        }
    })?;
    Ok(s)
}

/// Appends one TLV. `value` must be under 64 KiB (the encoder checks the total first).
fn put(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// The encoded size of `tlvs` (plus 7 with a CRC32C TLV).
pub(super) fn encoded_len(t: &Tlvs, crc: bool) -> usize {
    let opt = |v: Option<&[u8]>| v.map_or(0, |v| 3 + v.len());
    let ssl = t.ssl.as_ref().map_or(0, |s| {
        let subs = [&s.version, &s.cn, &s.cipher, &s.sig_alg, &s.key_alg];
        3 + 5
            + subs.iter().map(|v| opt(v.as_deref().map(str::as_bytes))).sum::<usize>()
            + s.other.iter().map(|(_, v)| 3 + v.len()).sum::<usize>()
    });
    (if crc { 7 } else { 0 })
        + opt(t.alpn.as_deref())
        + opt(t.authority.as_deref().map(str::as_bytes))
        + opt(t.unique_id.as_deref())
        + ssl
        + opt(t.netns.as_deref())
        + t.other.iter().map(|(_, v)| 3 + v.len()).sum::<usize>()
}

/// Appends `tlvs` in HAProxy's order. Returns the offset in `out` of the
/// CRC32C value (zeroed) when `crc` is set.
pub(super) fn write_tlvs(out: &mut Vec<u8>, t: &Tlvs, crc: bool) -> Option<usize> {
    let crc_at = crc.then(|| {
        put(out, CRC32C, &[0; 4]);
        out.len() - 4
    });
    if let Some(v) = &t.alpn {
        put(out, ALPN, v);
    }
    if let Some(v) = &t.authority {
        put(out, AUTHORITY, v.as_bytes());
    }
    if let Some(v) = &t.unique_id {
        put(out, UNIQUE_ID, v);
    }
    if let Some(s) = &t.ssl {
        let start = out.len();
        out.extend_from_slice(&[SSL, 0, 0, s.client]);
        out.extend_from_slice(&s.verify.to_be_bytes());
        let subs =
            [(SSL_VERSION, &s.version), (SSL_CN, &s.cn), (SSL_CIPHER, &s.cipher), (SSL_SIG_ALG, &s.sig_alg), (SSL_KEY_ALG, &s.key_alg)];
        for (kind, v) in subs {
            if let Some(v) = v {
                put(out, kind, v.as_bytes());
            }
        }
        for (kind, v) in &s.other {
            put(out, *kind, v);
        }
        let len = (out.len() - start - 3) as u16;
        out[start + 1..start + 3].copy_from_slice(&len.to_be_bytes());
    }
    if let Some(v) = &t.netns {
        put(out, NETNS, v);
    }
    for (kind, v) in &t.other {
        put(out, *kind, v);
    }
    crc_at
}
