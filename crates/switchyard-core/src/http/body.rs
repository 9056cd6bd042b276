//! The body type of proxied requests and responses.

use bytes::Bytes;

/// Errors of bodies in flight.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type sent to backends and to clients (boxed: one type for
/// streamed, limited, counted and Switchyard's own bodies).
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;
