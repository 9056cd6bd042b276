//! What a proxy must know about gRPC (`grpc/grpc:doc/PROTOCOL-HTTP2.md`):
//! which requests are gRPC, their deadline (`grpc-timeout`), the status a
//! call ended with (`grpc-status` in the trailers, or in the headers of a
//! Trailers-Only answer), which statuses are the backend's failure, and
//! which refusal is which status (see `respond::Refusal::answer`).

use http::header::{HeaderMap, CONTENT_TYPE};
use std::time::Duration;

/// gRPC status codes a proxy produces or judges by.
pub mod code {
    pub const UNKNOWN: u32 = 2;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const DATA_LOSS: u32 = 15;
    /// Codes are 0..=16.
    pub const COUNT: usize = 17;
}

/// Is this a gRPC request or response (`content-type: application/grpc`,
/// with or without a `+format` suffix)?
pub fn is_grpc(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc") && matches!(v.get(16), None | Some(b'+' | b';'))
    })
}

/// The call's deadline from `grpc-timeout`: at most 8 digits and a unit
/// (H, M, S, m, u, n). `None` when absent or malformed (a malformed one is
/// ignored, as gRPC servers do).
pub fn timeout(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("grpc-timeout")?.as_bytes();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n * 3600),
        b"M" => Duration::from_secs(n * 60),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The `grpc-status` of trailers (or of a Trailers-Only response's headers).
pub fn status(h: &HeaderMap) -> Option<u32> {
    h.get("grpc-status")?.to_str().ok()?.parse().ok().filter(|&c| (c as usize) < code::COUNT)
}

/// Does this status say the backend failed (as a 5xx does), rather than the
/// call or the client? UNKNOWN (an exception in the handler), INTERNAL,
/// UNAVAILABLE and DATA_LOSS; the rest are answers (NOT_FOUND,
/// PERMISSION_DENIED …) or the client's doing (CANCELLED, DEADLINE_EXCEEDED).
pub fn is_failure(c: u32) -> bool {
    matches!(c, code::UNKNOWN | code::INTERNAL | code::UNAVAILABLE | code::DATA_LOSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (http::HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn grpc_content_types() {
        assert!(is_grpc(&headers(&[("content-type", "application/grpc")])));
        assert!(is_grpc(&headers(&[("content-type", "application/grpc+proto")])));
        assert!(is_grpc(&headers(&[("content-type", "Application/GRPC+json")])));
        assert!(!is_grpc(&headers(&[("content-type", "application/grpc-web")])));
        assert!(!is_grpc(&headers(&[("content-type", "application/json")])));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn timeouts_in_every_unit_and_malformed_ones_ignored() {
        let t = |v: &'static str| timeout(&headers(&[("grpc-timeout", v)]));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("2M"), Some(Duration::from_secs(120)));
        assert_eq!(t("3S"), Some(Duration::from_secs(3)));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(t("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "10x", "-1S", "1.5S", "10"] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
        assert_eq!(timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_and_failures() {
        assert_eq!(status(&headers(&[("grpc-status", "14")])), Some(14));
        assert_eq!(status(&headers(&[("grpc-status", "17")])), None);
        assert_eq!(status(&headers(&[("grpc-status", "x")])), None);
        assert!(is_failure(code::UNAVAILABLE) && is_failure(code::INTERNAL));
        assert!(!is_failure(0) && !is_failure(5) && !is_failure(code::DEADLINE_EXCEEDED));
    }
}
