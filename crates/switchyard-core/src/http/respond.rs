//! Switchyard's own HTTP responses: a small JSON body with a stable code, so
//! clients and tests can tell Switchyard's 502 from a backend's:
//! `{"error":{"status":503,"code":"no_backend","message":"…"}}`.

use super::body::{Body, BoxError};
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

/// Why Switchyard answered itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 404: no route matched.
    NoRoute,
    /// 413: the body is larger than the route allows.
    TooLarge,
    /// 502: the backend failed mid-exchange (reset, broken response).
    BadGateway,
    /// 503: no backend could be reached.
    NoBackend,
    /// 504: the backend did not answer within the request timeout.
    Timeout,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BadGateway => StatusCode::BAD_GATEWAY,
            Refusal::NoBackend => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoRoute => "no_route",
            Refusal::TooLarge => "payload_too_large",
            Refusal::BadGateway => "bad_gateway",
            Refusal::NoBackend => "no_backend",
            Refusal::Timeout => "gateway_timeout",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::NoRoute => "no route matches this request",
            Refusal::TooLarge => "the request body is larger than this route allows",
            Refusal::BadGateway => "the backend failed to answer",
            Refusal::NoBackend => "no backend is available",
            Refusal::Timeout => "the backend did not answer in time",
        }
    }

    /// The response. After a 413 the connection closes (the rest of the body is not read).
    pub fn response(self) -> Response<Body> {
        let status = self.status();
        let body = format!(r#"{{"error":{{"status":{},"code":"{}","message":"{}"}}}}"#, status.as_u16(), self.code(), self.message());
        let mut r = Response::new(full(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self == Refusal::TooLarge {
            r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// A body of these bytes.
pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|e: std::convert::Infallible| -> BoxError { match e {} }).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|e: std::convert::Infallible| -> BoxError { match e {} }).boxed()
}
