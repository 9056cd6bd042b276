//! TLS from the balancer to backends (`backend_tls` of a pool). Verification
//! is on by default; `verify: false` accepts any certificate (for lab use).

use super::{provider, BackendTlsConfig};
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;

/// A pool's backend TLS: the client config and the name to present.
#[derive(Debug)]
pub struct BackendTls {
    pub config: Arc<ClientConfig>,
    sni: Option<String>,
}

impl BackendTls {
    /// The server name for `addr`: the configured SNI, else the IP.
    pub fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        match &self.sni {
            Some(n) => ServerName::try_from(n.clone()).unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into())),
            None => ServerName::IpAddress(addr.ip().into()),
        }
    }
}

/// Build a pool's backend TLS, offering the `alpn` protocols (`h2` for
/// HTTP/2 pools, none otherwise). `at` names the pool in errors.
pub fn build(cfg: &BackendTlsConfig, at: &str, alpn: &[&[u8]]) -> Result<BackendTls> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("{at}.backend_tls: {e}")))?;
    let mut config = if cfg.verify {
        let mut roots = RootCertStore::empty();
        let pem = cfg.ca_pem.as_deref().ok_or_else(|| Error::config(format!("{at}.backend_tls.ca: required when verify is on")))?;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| Error::config(format!("{at}.backend_tls.ca: cannot parse the PEM: {e}")))?;
            roots.add(cert).map_err(|e| Error::config(format!("{at}.backend_tls.ca: unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::config(format!("{at}.backend_tls.ca: no certificate found in the PEM")));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny)).with_no_client_auth()
    };
    config.resumption = rustls::client::Resumption::in_memory_sessions(1024);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if let Some(n) = &cfg.sni {
        ServerName::try_from(n.clone()).map_err(|_| Error::config(format!("{at}.backend_tls.sni: not a valid server name: {n:?}")))?;
    }
    Ok(BackendTls { config: Arc::new(config), sni: cfg.sni.clone() })
}

/// `verify: false`: accepts every certificate (signatures are still checked).
#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}
