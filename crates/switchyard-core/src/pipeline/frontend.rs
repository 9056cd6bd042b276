//! Stage 1, frontend: turn an accepted socket into a client stream the
//! route stage can decide on. Exactly one of (by the listener's tables):
//! - passthrough (the route table routes by SNI): read the ClientHello
//!   without consuming it for the backend — its bytes become the preface
//!   replayed to the backend — and hand on its server name;
//! - TLS termination: complete the rustls handshake (nothing is read before);
//! - plain: read whatever the client already sent, without waiting, so it
//!   leaves with the backend connect (see `net::connect`).
//!
//! Failure contract: a peek timeout, an oversized or non-TLS ClientHello, a
//! failed handshake or a read error closes the client here and is counted
//! (TLS counters); nothing reaches a backend. Future stages slot in front
//! (PROXY header) without changing what this stage hands on.

use crate::forward;
use crate::snapshot::Listener;
use crate::tls::{
    self,
    sni::{read_client_hello, PeekError},
    stats::TlsStats,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// The client side after the frontend: plain, or TLS terminated here. The TLS
/// state is boxed: plain connections should not carry its space.
pub type ClientStream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// What the frontend hands to the route stage.
pub struct Received {
    pub client: ClientStream,
    /// Bytes already read from the client, owed to the backend first.
    pub preface: Vec<u8>,
    /// The server name of a passthrough ClientHello (or of a terminated
    /// handshake, when policy rules read it).
    pub sni: Option<String>,
}

/// Receive a client on `listener`; `None` = closed here (and counted).
pub async fn receive(listener: &Listener, mut client: TcpStream) -> Option<Received> {
    if listener.routes.needs_sni() {
        return match Box::pin(read_client_hello(&mut client, listener.peek_timeout)).await {
            Ok((preface, sni)) => {
                count_tls(listener, |t| &t.sni_routed);
                Some(Received { client: Either::Left(client), preface, sni })
            }
            Err(e) => {
                count_tls(listener, |t| match e {
                    PeekError::Timeout => &t.sni_timeout,
                    PeekError::Oversized => &t.sni_oversized,
                    PeekError::NotTls | PeekError::Closed => &t.sni_not_tls,
                });
                None
            }
        };
    }
    match &listener.tls {
        Some(t) => {
            let stats = &listener.tls_shared.as_ref().expect("a TLS listener has TLS state").stats;
            let tls = Box::pin(tls::server::accept(&t.config, t.handshake_timeout, client, stats)).await?;
            // Policy rules may route by the server name the handshake saw.
            let sni = if listener.routes.reads_sni() { tls.get_ref().1.server_name().map(str::to_owned) } else { None };
            Some(Received { client: Either::Right(Box::new(tls)), preface: Vec::new(), sni })
        }
        // HTTP reads the request itself; nothing is taken from it here.
        None if listener.http.is_some() => Some(Received { client: Either::Left(client), preface: Vec::new(), sni: None }),
        None => {
            let preface = forward::read_now(&client).ok()?;
            Some(Received { client: Either::Left(client), preface, sni: None })
        }
    }
}

/// Bump one TLS counter of the listener.
fn count_tls(listener: &Listener, which: impl FnOnce(&TlsStats) -> &AtomicU64) {
    if let Some(t) = &listener.tls_shared {
        which(&t.stats).fetch_add(1, Relaxed);
    }
}
