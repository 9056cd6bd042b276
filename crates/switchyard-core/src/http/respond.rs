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
    /// 400: hyper could not parse the request.
    BadRequest,
    /// 404: no route matched.
    NoRoute,
    /// 408: the request head did not arrive within the header read timeout.
    HeaderTimeout,
    /// 413: the body is larger than the route allows.
    TooLarge,
    /// 414: the request target is longer than the head may be.
    UriTooLong,
    /// 431: the request head is larger than `max_header_size` or has too many fields.
    HeadersTooLarge,
    /// 502: the backend failed mid-exchange (reset, broken response).
    BadGateway,
    /// 503: no backend could be reached.
    NoBackend,
    /// 503: every backend was full and the pool's queue was full or timed out.
    QueueRefused,
    /// 504: the backend did not answer within the request timeout.
    Timeout,
    /// 429: over the route's rate class (see `answer::rate_limited`, which adds `Retry-After`).
    RateLimited,
    /// A route's hook denied the request with this status (4xx/5xx).
    Denied(StatusCode),
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::BadRequest => StatusCode::BAD_REQUEST,
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::UriTooLong => StatusCode::URI_TOO_LONG,
            Refusal::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::HeaderTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BadGateway => StatusCode::BAD_GATEWAY,
            Refusal::NoBackend | Refusal::QueueRefused => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Denied(s) => s,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::NoRoute => "no_route",
            Refusal::UriTooLong => "uri_too_long",
            Refusal::HeadersTooLarge => "headers_too_large",
            Refusal::HeaderTimeout => "request_timeout",
            Refusal::TooLarge => "payload_too_large",
            Refusal::BadGateway => "bad_gateway",
            Refusal::NoBackend => "no_backend",
            Refusal::QueueRefused => "queue_full",
            Refusal::Timeout => "gateway_timeout",
            Refusal::RateLimited => "rate_limited",
            Refusal::Denied(_) => "denied",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::BadRequest => "the request is not valid HTTP/1.1",
            Refusal::NoRoute => "no route matches this request",
            Refusal::UriTooLong => "the request target is too long",
            Refusal::HeadersTooLarge => "the request head is too large or has too many fields",
            Refusal::HeaderTimeout => "the request head did not arrive in time",
            Refusal::TooLarge => "the request body is larger than this route allows",
            Refusal::BadGateway => "the backend failed to answer",
            Refusal::NoBackend => "no backend is available",
            Refusal::QueueRefused => "every backend is at its connection limit and the queue is full or timed out",
            Refusal::Timeout => "the backend did not answer in time",
            Refusal::RateLimited => "over the route's rate class",
            Refusal::Denied(_) => "a rule or its hook denied this request",
        }
    }

    fn body(self) -> String {
        error_body(self.status(), self.code(), self.message())
    }

    /// The response. After a 413 the connection closes (the rest of the body is not read).
    pub fn response(self) -> Response<Body> {
        let mut r = json_error(self.status(), self.code(), self.message());
        if self == Refusal::TooLarge {
            r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

impl Refusal {
    /// The gRPC status this refusal ends a gRPC call with.
    pub fn grpc_status(self) -> u32 {
        use super::grpc::code;
        match self {
            Refusal::NoRoute => code::UNIMPLEMENTED,
            Refusal::TooLarge | Refusal::HeadersTooLarge | Refusal::UriTooLong | Refusal::RateLimited => code::RESOURCE_EXHAUSTED,
            Refusal::Timeout | Refusal::HeaderTimeout => code::DEADLINE_EXCEEDED,
            Refusal::BadGateway | Refusal::NoBackend | Refusal::QueueRefused => code::UNAVAILABLE,
            Refusal::BadRequest => code::INTERNAL,
            Refusal::Denied(_) => code::PERMISSION_DENIED,
        }
    }

    /// The answer to a request: Switchyard's JSON error, or for a gRPC call
    /// a Trailers-Only gRPC status (gRPC clients read HTTP errors only as a
    /// broken call).
    pub fn answer(self, grpc: bool) -> Response<Body> {
        if grpc {
            trailers_only(self.grpc_status(), self.message())
        } else {
            self.response()
        }
    }
}

/// A gRPC Trailers-Only response: HTTP 200 whose headers end the call with
/// `status` and `message` (printable ASCII, so no percent-encoding needed).
fn trailers_only(status: u32, message: &'static str) -> Response<Body> {
    let mut r = Response::new(empty());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(status));
    h.insert("grpc-message", HeaderValue::from_static(message));
    r
}

/// hyper answers a request it could not parse itself (400, 414, 431, with
/// an empty body) before any service runs: the same answer in Switchyard's
/// format, if `head` is the start of one of those.
pub fn replace_hyper_error(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let r = match status {
        b"400" => Refusal::BadRequest,
        b"414" => Refusal::UriTooLong,
        b"431" => Refusal::HeadersTooLarge,
        _ => return None,
    };
    Some(raw(r))
}

/// The whole response as bytes on the wire, for a connection hyper no
/// longer serves (it closes after it).
pub fn raw(r: Refusal) -> Vec<u8> {
    let (status, body) = (r.status(), r.body());
    let reason = status.canonical_reason().unwrap_or("");
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        body.len()
    )
    .into_bytes()
}

/// Switchyard's JSON error body. `code` and `message` are written as they
/// are: they must need no JSON escaping (codes, fixed texts, config names).
fn error_body(status: StatusCode, code: &str, message: &str) -> String {
    format!(r#"{{"error":{{"status":{},"code":"{code}","message":"{message}"}}}}"#, status.as_u16())
}

/// A response with Switchyard's JSON error body (see [`error_body`]).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    with_body(status, "application/json", error_body(status, code, message))
}

/// A response of `status` with `body` of content type `kind`.
pub fn with_body(status: StatusCode, kind: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

/// A body of these bytes.
pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|e: std::convert::Infallible| -> BoxError { match e {} }).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|e: std::convert::Infallible| -> BoxError { match e {} }).boxed()
}
