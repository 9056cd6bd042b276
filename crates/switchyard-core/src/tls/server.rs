//! TLS termination: certificates chosen by SNI (exact, then wildcard, then
//! the default unless `strict_sni`), ALPN, minimum version, resumption.

use super::stats::TlsStats;
use super::{provider, CertConfig, TlsConfig};
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ProtocolVersion, ServerConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Sessions remembered per listener for resumption by ID.
const SESSION_CACHE: usize = 16 * 1024;

/// What survives certificate reloads: session cache, ticket keys, counters.
#[derive(Debug)]
pub struct TlsShared {
    cache: Arc<ServerSessionMemoryCache>,
    ticketer: Arc<dyn ProducesTickets>,
    pub stats: TlsStats,
}

impl TlsShared {
    pub fn new() -> Result<Self> {
        let ticketer =
            rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| Error::config(format!("tls: cannot create a session ticketer: {e}")))?;
        Ok(Self { cache: ServerSessionMemoryCache::new(SESSION_CACHE), ticketer, stats: TlsStats::default() })
    }
}

/// Picks the certificate for a ClientHello.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the parent domain of `*.parent`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return Some(Arc::clone(k));
        }
        // A wildcard covers exactly one label: *.example.com matches a.example.com, not a.b.example.com.
        let parent = name.split_once('.').map(|(_, p)| p)?;
        self.wildcard.get(parent).cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello.server_name().and_then(|n| self.lookup(n)).or_else(|| self.default.clone())
    }
}

/// Parse one certificate entry; errors name its source file.
fn certified_key(c: &CertConfig, at: &str) -> Result<Arc<CertifiedKey>> {
    let src = if c.source.is_empty() { at.to_owned() } else { c.source.clone() };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::config(format!("{at}: {src}: cannot parse the certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::config(format!("{at}: {src}: no certificate found in the PEM")));
    }
    let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())
        .map_err(|e| Error::config(format!("{at}: {src}: cannot parse the private key PEM: {e}")))?;
    let ck = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| Error::config(format!("{at}: {src}: the key does not fit the certificate: {e}")))?;
    Ok(Arc::new(ck))
}

/// Build the `ServerConfig` of a listener. `at` names the listener in errors.
pub fn build(cfg: &TlsConfig, shared: &TlsShared, at: &str) -> Result<Arc<ServerConfig>> {
    let mut resolver = SniResolver { exact: HashMap::new(), wildcard: HashMap::new(), default: None };
    for (i, c) in cfg.certificates.iter().enumerate() {
        let key = certified_key(c, &format!("{at}.tls.certificates[{i}]"))?;
        if i == 0 && !cfg.strict_sni {
            resolver.default = Some(Arc::clone(&key));
        }
        for name in &c.names {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => resolver.wildcard.entry(parent.to_owned()).or_insert_with(|| Arc::clone(&key)),
                None => resolver.exact.entry(name).or_insert_with(|| Arc::clone(&key)),
            };
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg.min_version.as_str() {
        "1.3" => &[&rustls::version::TLS13],
        "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
        v => return Err(Error::config(format!("{at}.tls.min_version: expected \"1.2\" or \"1.3\", got {v:?}"))),
    };
    let mut sc = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| Error::config(format!("{at}.tls: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    sc.alpn_protocols = cfg.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if cfg.session_resumption {
        sc.session_storage = Arc::clone(&shared.cache) as _;
        sc.ticketer = Arc::clone(&shared.ticketer);
    } else {
        sc.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        sc.send_tls13_tickets = 0;
    }
    Ok(Arc::new(sc))
}

/// Run the server handshake under `timeout`, counting the result.
pub async fn accept(config: &Arc<ServerConfig>, timeout: Duration, stream: TcpStream, stats: &TlsStats) -> Option<TlsStream<TcpStream>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(config));
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Err(_) => {
            stats.fail_timeout.fetch_add(1, Relaxed);
            None
        }
        Ok(Err(e)) => {
            // rustls reports a refused (strict) SNI as "no server certificate chain resolved".
            let text = e.to_string();
            if text.contains("no server certificate") {
                stats.fail_sni.fetch_add(1, Relaxed);
            } else {
                stats.fail_protocol.fetch_add(1, Relaxed);
            }
            None
        }
        Ok(Ok(tls)) => {
            let conn = tls.get_ref().1;
            stats.handshakes.fetch_add(1, Relaxed);
            if conn.handshake_kind() == Some(HandshakeKind::Resumed) {
                stats.resumed.fetch_add(1, Relaxed);
            }
            match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => stats.tls13.fetch_add(1, Relaxed),
                _ => stats.tls12.fetch_add(1, Relaxed),
            };
            if let Some(p) = conn.alpn_protocol() {
                stats.alpn(p);
            }
            Some(tls)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_names_the_source() {
        let c = CertConfig { names: vec![], cert_pem: "garbage".into(), key_pem: "garbage".into(), source: "/etc/x.pem".into() };
        let e = certified_key(&c, "listeners.web").unwrap_err();
        assert!(e.message.contains("/etc/x.pem") && e.message.contains("no certificate"), "{e}");
    }
}
