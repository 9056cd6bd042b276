//! Reading the SNI of a TLS ClientHello without terminating TLS (passthrough).
//! The bytes read are kept and replayed to the backend unchanged.

use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Largest ClientHello accepted (a record is at most 16 KiB; post-quantum
/// key shares make hellos of a few KiB, so allow several records).
pub const MAX_HELLO: usize = 32 * 1024;

/// What the bytes so far are.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole ClientHello: its server name, if it sent one.
    Hello(Option<String>),
    /// Need more bytes.
    Incomplete,
    /// Not a TLS ClientHello.
    NotTls,
}

/// Why no ClientHello was read.
#[derive(Debug, PartialEq, Eq)]
pub enum PeekError {
    Timeout,
    NotTls,
    Oversized,
    /// The client closed or reset first.
    Closed,
}

/// Parse the ClientHello at the start of `buf` (possibly spanning several records).
pub fn parse(buf: &[u8]) -> Parsed {
    // Reassemble the handshake message from consecutive handshake records.
    let mut hs = Vec::new();
    let mut at = 0;
    loop {
        if buf.len() < at + 5 {
            return if at == 0 && !buf.is_empty() && buf[0] != 0x16 { Parsed::NotTls } else { Parsed::Incomplete };
        }
        if buf[at] != 0x16 || buf[at + 1] != 0x03 {
            return Parsed::NotTls;
        }
        let len = u16::from_be_bytes([buf[at + 3], buf[at + 4]]) as usize;
        if len == 0 || len > 16 * 1024 + 2048 {
            return Parsed::NotTls;
        }
        let Some(body) = buf.get(at + 5..at + 5 + len) else { return Parsed::Incomplete };
        hs.extend_from_slice(body);
        at += 5 + len;
        if hs.len() >= 4 {
            if hs[0] != 0x01 {
                return Parsed::NotTls; // not a ClientHello
            }
            let need = 4 + (u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize);
            if hs.len() >= need {
                return hello_sni(&hs[4..need]).map_or(Parsed::NotTls, Parsed::Hello);
            }
        }
    }
}

/// A cursor over the ClientHello body; `None` on truncation.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }
}

/// The server name in a ClientHello body: Some(None) when it has no SNI.
fn hello_sni(body: &[u8]) -> Option<Option<String>> {
    let mut c = Cur(body);
    c.take(2 + 32)?; // version, random
    let n = c.u8()?;
    c.take(n)?; // session id
    let n = c.u16()?;
    c.take(n)?; // cipher suites
    let n = c.u8()?;
    c.take(n)?; // compression methods
    if c.0.is_empty() {
        return Some(None); // no extensions
    }
    let n = c.u16()?;
    let mut ext = Cur(c.take(n)?);
    while !ext.0.is_empty() {
        let kind = ext.u16()?;
        let len = ext.u16()?;
        let data = ext.take(len)?;
        if kind == 0 {
            let mut d = Cur(data);
            let list_len = d.u16()?;
            let mut list = Cur(d.take(list_len)?);
            while !list.0.is_empty() {
                let name_type = list.u8()?;
                let name_len = list.u16()?;
                let name = list.take(name_len)?;
                if name_type == 0 {
                    return Some(std::str::from_utf8(name).ok().map(|s| s.to_ascii_lowercase()));
                }
            }
        }
    }
    Some(None)
}

/// Read from `s` until a whole ClientHello is in hand (or fail). Returns the
/// bytes read (to replay to the backend) and the server name.
pub async fn read_client_hello(s: &mut TcpStream, timeout: Duration) -> Result<(Vec<u8>, Option<String>), PeekError> {
    let mut buf = Vec::with_capacity(2048);
    let read = async {
        loop {
            match parse(&buf) {
                Parsed::Hello(name) => return Ok(name),
                Parsed::NotTls => return Err(PeekError::NotTls),
                Parsed::Incomplete if buf.len() >= MAX_HELLO => return Err(PeekError::Oversized),
                Parsed::Incomplete => {}
            }
            // Read into the Vec itself: a stack array here would live in every
            // connection's task while it waits.
            let mut limited = (&mut *s).take((MAX_HELLO - buf.len()) as u64);
            match limited.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Err(PeekError::Closed),
                Ok(_) => {}
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(PeekError::Timeout),
        Ok(Ok(name)) => Ok((buf, name)),
        Ok(Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello with an SNI extension for `name`, split into records of `split` bytes.
    pub fn hello(name: Option<&str>, split: usize) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one suite
        body.extend([1, 0]); // compression: null
        let mut exts = Vec::new();
        if let Some(n) = name {
            let mut sni = Vec::new();
            sni.extend(((n.len() + 3) as u16).to_be_bytes());
            sni.push(0);
            sni.extend((n.len() as u16).to_be_bytes());
            sni.extend(n.as_bytes());
            exts.extend([0, 0]);
            exts.extend((sni.len() as u16).to_be_bytes());
            exts.extend(sni);
        }
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![1, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut out = Vec::new();
        for part in hs.chunks(split) {
            out.extend([0x16, 0x03, 0x01]);
            out.extend((part.len() as u16).to_be_bytes());
            out.extend(part);
        }
        out
    }

    #[test]
    fn finds_the_name_even_across_records_and_reports_incomplete() {
        for split in [5, 16, 4096] {
            let h = hello(Some("API.example.com"), split);
            assert_eq!(parse(&h), Parsed::Hello(Some("api.example.com".into())), "split {split}");
            for cut in [1, 5, h.len() / 2, h.len() - 1] {
                assert_eq!(parse(&h[..cut]), Parsed::Incomplete, "cut {cut}");
            }
        }
        assert_eq!(parse(&hello(None, 4096)), Parsed::Hello(None));
    }

    #[test]
    fn rejects_what_is_not_tls() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::NotTls);
        assert_eq!(parse(&[0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0]), Parsed::NotTls); // a ServerHello
        let mut h = hello(Some("a.b"), 4096);
        let n = h.len();
        h.truncate(n - 3);
        h[4] -= 3; // consistent record length, truncated extension
        assert_eq!(parse(&h), Parsed::Incomplete);
    }
}
