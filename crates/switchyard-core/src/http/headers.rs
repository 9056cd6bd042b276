//! Header work of a proxied request and its response: hop-by-hop fields
//! removed (RFC 9110 §7.6.1), forwarding headers added, per-route
//! set/add/remove applied. Names and values are validated when the snapshot
//! is built, so applying them cannot fail.

use super::config::{header_name as name, header_pair as pair, HeaderOps};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use std::net::SocketAddr;

/// Compiled header changes: remove, then set (replace), then add (append).
#[derive(Debug, Default)]
pub struct Ops {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl Ops {
    /// Validate and compile `ops`.
    pub fn compile(ops: &HeaderOps) -> Result<Ops, String> {
        Ok(Ops {
            remove: ops.remove.iter().map(|n| name(n)).collect::<Result<_, _>>()?,
            set: ops.set.iter().map(|p| pair(&p.name, &p.value)).collect::<Result<_, _>>()?,
            add: ops.add.iter().map(|p| pair(&p.name, &p.value)).collect::<Result<_, _>>()?,
        })
    }

    /// Apply to `h`.
    pub fn apply(&self, h: &mut HeaderMap) {
        for n in &self.remove {
            h.remove(n);
        }
        for (n, v) in &self.set {
            h.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            h.append(n.clone(), v.clone());
        }
    }
}

/// Fields that describe one hop, never forwarded (besides those `Connection` names).
const HOP_BY_HOP: [&str; 6] = ["keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "trailer", "upgrade"];

/// Remove the hop-by-hop fields of `h`: those listed in `Connection`, then
/// `Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding` (hyper frames the
/// body itself), `Upgrade` and the proxy fields.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    h.remove(CONNECTION);
    h.remove(TE);
    h.remove(TRANSFER_ENCODING);
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

/// Is this a protocol upgrade request/response (`Connection: upgrade` and an `Upgrade` field)?
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(UPGRADE)
        && h.get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the forwarding headers say about a request.
pub struct Forwarding<'a> {
    pub client: SocketAddr,
    /// `https` on TLS-terminating listeners.
    pub proto: &'static str,
    /// The Host the client asked for.
    pub host: Option<&'a HeaderValue>,
    pub x_forwarded: bool,
    pub forwarded: bool,
}

/// Add `X-Forwarded-For` (appended to what the client sent), `-Proto`,
/// `-Host`, `X-Real-IP`, and optionally an RFC 7239 `Forwarded` element.
pub fn add_forwarding(h: &mut HeaderMap, f: &Forwarding<'_>) {
    let ip = f.client.ip().to_string();
    if f.x_forwarded {
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip.clone(),
        };
        set(h, "x-forwarded-for", &xff);
        set(h, "x-forwarded-proto", f.proto);
        if let Some(host) = f.host {
            h.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
        }
        set(h, "x-real-ip", &ip);
    }
    if f.forwarded {
        let node = match f.client {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("\"[{}]\"", a.ip()),
        };
        let mut el = format!("for={node};proto={}", f.proto);
        if let Some(host) = f.host.and_then(|v| v.to_str().ok()) {
            el.push_str(&format!(";host=\"{host}\""));
        }
        match h.get("forwarded").and_then(|v| v.to_str().ok()) {
            Some(prev) => set(h, "forwarded", &format!("{prev}, {el}")),
            None => set(h, "forwarded", &el),
        }
    }
}

fn set(h: &mut HeaderMap, n: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(HeaderName::from_static(n), v);
    }
}

/// Replace `Host` (a pool's `host` setting).
pub fn set_host(h: &mut HeaderMap, host: &HeaderValue) {
    h.insert(HOST, host.clone());
}

#[cfg(test)]
mod tests {
    use super::super::config::HeaderPair;
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_what_connection_names() {
        let mut h = HeaderMap::new();
        for (k, v) in [("connection", "keep-alive, x-secret"), ("x-secret", "1"), ("keep-alive", "5"), ("te", "trailers"), ("x-kept", "y")]
        {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarding_appends_and_brackets_v6() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        let host = HeaderValue::from_static("example.com");
        let f = Forwarding {
            client: "[2001:db8::1]:4711".parse().unwrap(),
            proto: "https",
            host: Some(&host),
            x_forwarded: true,
            forwarded: true,
        };
        add_forwarding(&mut h, &f);
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 2001:db8::1");
        assert_eq!(h["x-real-ip"], "2001:db8::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=https;host=\"example.com\"");
    }

    #[test]
    fn ops_remove_set_add_in_order() {
        let ops = HeaderOps {
            remove: vec!["server".into()],
            set: vec![HeaderPair { name: "cache-control".into(), value: "public".into() }],
            add: vec![HeaderPair { name: "via".into(), value: "switchyard".into() }],
        };
        let ops = Ops::compile(&ops).unwrap();
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("x"));
        h.insert("cache-control", HeaderValue::from_static("no-store"));
        h.insert("via", HeaderValue::from_static("1.1 a"));
        ops.apply(&mut h);
        assert!(!h.contains_key("server"));
        assert_eq!(h["cache-control"], "public");
        assert_eq!(h.get_all("via").iter().count(), 2);
        let bad = HeaderOps { set: vec![HeaderPair { name: "bad name".into(), value: "v".into() }], ..Default::default() };
        assert!(Ops::compile(&bad).unwrap_err().contains("invalid header name"));
    }
}
