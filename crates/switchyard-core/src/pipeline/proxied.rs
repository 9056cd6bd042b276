//! The PROXY protocol at both ends of a connection: reading the header a
//! trusted balancer in front of a listener sends (the codec is
//! `crate::proxy_protocol`; this is its I/O), and writing one before the
//! first bytes to a backend of a pool that asks for it.
//!
//! Reading never over-reads: the header is parsed from `MSG_PEEK`ed bytes
//! and exactly its length is then consumed, so what follows it (a TLS
//! ClientHello, an HTTP request, bytes to relay) stays in the socket for the
//! next stage, whatever the segments (HAProxy sends the header in a segment
//! of its own, other senders with data).

use super::frontend::ClientStream;
use crate::config::ProxyVersion;
use crate::events::EventLog;
use crate::proxy_protocol::{self as pp, Header, Parsed, Tlvs};
use crate::shared::Shared;
use crate::snapshot::{Listener, Pool};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// Where a connection really comes from and goes to, as a trusted PROXY
/// header declared it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The v2 header's TLVs (policy rules match on them).
    pub tlvs: Tlvs,
}

/// Read the PROXY header `listener` expects on `client` (peer `peer`).
/// `Some(Some(origin))`: a relayed connection; `Some(None)`: a `LOCAL`
/// header (the sender's own check: the socket's addresses stay); `None`: the
/// connection must be closed (untrusted source, bad or late header), counted
/// and reported.
pub async fn receive(listener: &Listener, name: &str, client: &TcpStream, peer: SocketAddr, events: &EventLog) -> Option<Option<Origin>> {
    let accept = listener.proxy.as_ref()?;
    let (stats, proxy) = (&listener.stats, &listener.stats.proxy);
    if !accept.trusts(peer.ip()) {
        stats.proxy_refused(&proxy.untrusted, name, format_args!("{peer} is not trusted to send a PROXY header"), events);
        return None;
    }
    match tokio::time::timeout(accept.timeout, read_header(client)).await {
        Err(_) => {
            stats.proxy_refused(&proxy.timeout, name, format_args!("{peer} sent no whole PROXY header in time"), events);
            None
        }
        Ok(Err(why)) => {
            stats.proxy_refused(&proxy.invalid, name, format_args!("{peer} sent a bad PROXY header: {why}"), events);
            None
        }
        Ok(Ok(header)) => match (header.client(), header) {
            (Some(src), Header::Proxy(a)) => {
                proxy.accepted.fetch_add(1, Relaxed);
                Some(Some(Origin { src, dst: a.dst, tlvs: a.tlvs }))
            }
            _ => {
                // LOCAL, or a family without addresses (UNKNOWN, UNIX): the socket's addresses stay.
                proxy.local.fetch_add(1, Relaxed);
                Some(None)
            }
        },
    }
}

/// [`receive`], given up (`None`) when the engine's close deadline passes.
pub async fn receive_unless_closed(
    shared: &Shared,
    listener: &Listener,
    name: &str,
    client: &TcpStream,
    peer: SocketAddr,
) -> Option<Option<Origin>> {
    tokio::select! {
        r = receive(listener, name, client, peer, &shared.events) => r,
        _ = shared.cancel_conns.cancelled() => None,
    }
}

/// Peek until a whole header is there, then consume exactly it. The error
/// is the codec's reason, or `closed`.
async fn read_header(client: &TcpStream) -> Result<Header, &'static str> {
    let mut buf = vec![0u8; pp::V2_HEADER_LEN + pp::MAX_V2_PAYLOAD];
    loop {
        // `recv(MSG_PEEK)` once readable: the bytes stay in the socket.
        let n = client.peek(&mut buf).await.map_err(|_| "closed")?;
        if n == 0 {
            return Err("closed");
        }
        match pp::parse(&buf[..n]) {
            Ok(Parsed::Done { header, consumed }) => {
                consume(client, &mut buf[..consumed]).await.map_err(|_| "closed")?;
                return Ok(header);
            }
            // More is coming: forget this readiness (the bytes peeked are still there), so
            // the next peek waits for new bytes instead of seeing the same ones again.
            Ok(Parsed::Incomplete) => {
                let _ = client.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
            Err(e) => return Err(e.reason()),
        }
    }
}

/// Read exactly `buf.len()` bytes that a peek has shown are there.
async fn consume(client: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        client.readable().await?;
        match client.try_read(&mut buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Put the PROXY header `pool` asks for (`src → dst`, see [`first_bytes`])
/// in front of `preface`, the client's first bytes.
pub fn prepend_header(
    pool: &Pool,
    src: SocketAddr,
    dst: Option<&SocketAddr>,
    client: &ClientStream,
    preface: &mut Vec<u8>,
) -> io::Result<()> {
    *preface = first_bytes(pool, src, dst, || local_addr(client), &TlsFacts::of(client), preface)?;
    Ok(())
}

/// What a TLS-terminating listener knows of the client's session, for the
/// v2 TLVs (ALPN, AUTHORITY, SSL) of the header sent to a backend.
#[derive(Debug, Default)]
pub struct TlsFacts {
    pub sni: Option<String>,
    pub alpn: Option<Vec<u8>>,
    /// `TLSv1.3`, as HAProxy's `ssl_fc_protocol` names it.
    pub version: Option<String>,
    /// The IANA name of the cipher suite.
    pub cipher: Option<String>,
    /// TLS was terminated here (else there is nothing to tell).
    pub terminated: bool,
}

/// The bytes a backend of `pool` gets first: the PROXY header the pool asks
/// for (none: empty) describing `src → dst`, then `preface`. `dst` is the
/// address a PROXY header declared the client connected to, else `local()`
/// (the socket's own address; its error is returned).
pub fn first_bytes(
    pool: &Pool,
    src: SocketAddr,
    dst: Option<&SocketAddr>,
    local: impl FnOnce() -> io::Result<SocketAddr>,
    tls: &TlsFacts,
    preface: &[u8],
) -> io::Result<Vec<u8>> {
    let dst = match dst {
        Some(d) => *d,
        None if pool.config.proxy_protocol.is_some() => local()?,
        None => src, // unused: no header
    };
    let mut out = Vec::with_capacity(preface.len() + 128);
    match pool.config.proxy_protocol {
        None => {}
        Some(ProxyVersion::V1) => pp::write_v1(&mut out, src, dst),
        Some(ProxyVersion::V2) => {
            let mut tlvs = Tlvs::default();
            if tls.terminated {
                tlvs.authority = tls.sni.clone();
                tlvs.alpn = tls.alpn.clone();
                tlvs.ssl = Some(pp::Ssl {
                    client: pp::CLIENT_SSL,
                    verify: 0,
                    version: tls.version.clone(),
                    cipher: tls.cipher.clone(),
                    ..pp::Ssl::default()
                });
            }
            // Only an over-long TLV can fail (a host name is at most 255 bytes): then send the addresses alone.
            if pp::write_v2(&mut out, pp::Command::Proxy, pp::Transport::Stream, src, dst, &tlvs, false).is_err() {
                let _ = pp::write_v2(&mut out, pp::Command::Proxy, pp::Transport::Stream, src, dst, &Tlvs::default(), false);
            }
        }
    }
    out.extend_from_slice(preface);
    Ok(out)
}

impl TlsFacts {
    /// What `client` negotiated, if TLS was terminated on it.
    pub fn of(client: &ClientStream) -> TlsFacts {
        let Either::Right(tls) = client else { return TlsFacts::default() };
        let c = tls.get_ref().1;
        let version = c.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        });
        let cipher = c.negotiated_cipher_suite().map(|s| s.suite().as_str().map_or_else(|| format!("{:?}", s.suite()), str::to_owned));
        TlsFacts { sni: c.server_name().map(str::to_owned), alpn: c.alpn_protocol().map(<[u8]>::to_vec), version, cipher, terminated: true }
    }
}

/// The address the client connected to (the header's destination when no
/// PROXY header declared one).
pub fn local_addr(client: &ClientStream) -> io::Result<SocketAddr> {
    match client {
        Either::Left(tcp) => tcp.local_addr(),
        Either::Right(tls) => tls.get_ref().0.local_addr(),
    }
}
