//! Sticky sessions by an inserted cookie. The value is a keyed hash
//! (HMAC-SHA256 with the configured secret) of the pool and the backend's
//! address, truncated: it reveals neither the address nor the pool, yet every
//! process and node with the same secret reads it the same way, across
//! restarts and upgrades.

use super::config::StickyConfig;
use crate::backend::Backend;
use aws_lc_rs::hmac;
use http::header::{HeaderMap, HeaderValue};

/// Hex characters of a cookie value (64 bits of the HMAC).
const VALUE_LEN: usize = 16;

/// A pool's sticky cookie: its name, attributes and each backend's value.
#[derive(Debug)]
pub struct Sticky {
    pub cookie: String,
    /// Per backend index.
    values: Vec<String>,
    max_age_s: Option<u64>,
}

impl Sticky {
    pub fn build(cfg: &StickyConfig, pool: &str, backends: &[Backend]) -> Sticky {
        let key = hmac::Key::new(hmac::HMAC_SHA256, cfg.secret.as_bytes());
        let values = backends
            .iter()
            .map(|b| {
                let tag = hmac::sign(&key, format!("{pool}\0{}", b.addr).as_bytes());
                tag.as_ref()[..VALUE_LEN / 2].iter().map(|x| format!("{x:02x}")).collect()
            })
            .collect();
        Sticky { cookie: cfg.cookie.clone(), values, max_age_s: cfg.max_age_s }
    }

    /// The backend the request's cookie pins it to, if the cookie names one of this pool's.
    pub fn pinned(&self, headers: &HeaderMap) -> Option<usize> {
        let v = super::route::cookie(headers, &self.cookie)?;
        self.values.iter().position(|x| x == v)
    }

    /// The `Set-Cookie` that pins a client to backend `i` (`Secure` on TLS listeners).
    pub fn set_cookie(&self, i: usize, secure: bool) -> HeaderValue {
        let mut c = format!("{}={}; Path=/; HttpOnly; SameSite=Lax", self.cookie, self.values[i]);
        if let Some(s) = self.max_age_s {
            c.push_str(&format!("; Max-Age={s}"));
        }
        if secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).expect("cookie names and hex values are valid header text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::testutil::backends;

    #[test]
    fn stable_opaque_and_secret_dependent() {
        let b = backends(&[1, 1]);
        let cfg = StickyConfig { cookie: "SY".into(), secret: "0123456789abcdef".into(), max_age_s: Some(60) };
        let (s1, s2) = (Sticky::build(&cfg, "api", &b), Sticky::build(&cfg, "api", &b));
        assert_eq!(s1.values, s2.values);
        assert_ne!(s1.values[0], s1.values[1]);
        assert!(!s1.values[0].contains("10.0.0"));
        let other = Sticky::build(&StickyConfig { secret: "another secret!!".into(), ..cfg.clone() }, "api", &b);
        assert_ne!(s1.values[0], other.values[0]);
        let set = s1.set_cookie(1, true);
        assert!(set.to_str().unwrap().ends_with("; Max-Age=60; Secure"));
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(&format!("x=1; SY={}", s1.values[1])).unwrap());
        assert_eq!(s1.pinned(&h), Some(1));
        h.insert("cookie", HeaderValue::from_static("SY=0000000000000000"));
        assert_eq!(s1.pinned(&h), None);
    }
}
