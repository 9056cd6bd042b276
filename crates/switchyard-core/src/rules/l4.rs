//! A TCP listener's compiled rules: conditions on the client's address, the
//! server name, the destination port and PROXY v2 TLVs; first match wins.

use super::config::{L4Action, L4Key, L4RuleConfig, TlvKind};
use super::rate::RateClass;
use super::value::{NamePattern, ValueTest};
use crate::cidr::Cidr;
use crate::http::stats::RouteStats;
use crate::proxy_protocol::Tlvs;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a connection is matched on, as far as it is known.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The client (as a PROXY header declared it, if any).
    pub client: SocketAddr,
    /// The server name (ClientHello or TLS handshake).
    pub sni: Option<&'a str>,
    /// The destination port (0: unknown).
    pub port: u16,
    /// The PROXY header's TLVs.
    pub tlvs: Option<&'a Tlvs>,
}

/// What a rule does; `P` is the pool handle (generic so this table does not
/// depend on the snapshot).
#[derive(Debug)]
pub enum Action<P> {
    Pool(P),
    Deny,
}

/// One rule, ready to match.
#[derive(Debug)]
pub struct L4Rule<P> {
    pub name: Arc<str>,
    source: Vec<Cidr>,
    sni: Vec<NamePattern>,
    ports: Vec<u16>,
    tlvs: Vec<(TlvKind, ValueTest)>,
    pub action: Action<P>,
    pub key: Option<L4Key>,
    pub tag: Option<Arc<str>>,
    pub rate: Option<Arc<RateClass>>,
    /// Counted with the HTTP routes' counters: one family for both kinds.
    pub stats: Arc<RouteStats>,
    /// Asked before connecting (opt-in; `None` costs nothing), and the pool
    /// of its fallback (a pool the listener routes to, so a decision can name it).
    pub hook: Option<(crate::hook::Hook, Option<P>)>,
}

impl<P> L4Rule<P> {
    /// Compile `r`; `pool` resolves a pool name, `rate` a class name (both
    /// checked before, see `EngineConfig::check`), `hook` compiles its hook.
    pub fn build(
        r: &L4RuleConfig,
        pool: impl Fn(&str) -> P,
        rate: Option<Arc<RateClass>>,
        stats: Arc<RouteStats>,
        hook: impl Fn(&crate::hook::HookRef) -> crate::hook::Hook,
    ) -> Result<L4Rule<P>, String> {
        Ok(L4Rule {
            name: Arc::from(r.name.as_str()),
            source: r.source.iter().map(|c| Cidr::parse(c)).collect::<Result<_, _>>()?,
            sni: r.sni.iter().map(|n| NamePattern::build(n)).collect(),
            ports: r.ports.clone(),
            tlvs: r.tlvs.iter().map(|t| Ok((t.tlv, ValueTest::build(&t.equals, &t.regex)?))).collect::<Result<_, String>>()?,
            action: match &r.action {
                L4Action::Pool(p) => Action::Pool(pool(p)),
                L4Action::Deny => Action::Deny,
            },
            key: r.hash_key,
            tag: r.tag.as_deref().map(Arc::from),
            rate,
            stats,
            hook: r.hook.as_ref().map(|h| (hook(h), h.fallback.pool.as_deref().map(&pool))),
        })
    }

    /// Do all of the rule's conditions hold?
    pub fn matches(&self, f: &Facts) -> bool {
        (self.source.is_empty() || self.source.iter().any(|c| c.contains(f.client.ip())))
            && (self.ports.is_empty() || self.ports.contains(&f.port))
            && (self.sni.is_empty() || f.sni.is_some_and(|n| self.sni.iter().any(|p| p.matches(n))))
            && self.tlvs.iter().all(|(kind, test)| f.tlvs.and_then(|t| tlv_text(t, *kind)).is_some_and(|v| test.holds(v)))
    }

    /// Does matching need the server name (a plain listener then reads the ClientHello)?
    pub fn needs_sni(&self) -> bool {
        !self.sni.is_empty()
    }

    /// Does the rule read the server name, to match or as its key (a
    /// terminating listener then keeps the handshake's)? A key alone does not
    /// make a plain listener read the ClientHello: without one it keys by the client IP.
    pub fn reads_sni(&self) -> bool {
        self.needs_sni() || self.key == Some(L4Key::Sni)
    }

    /// Does the rule need the destination port (to match, or to tell its hook)?
    pub fn needs_port(&self) -> bool {
        !self.ports.is_empty() || self.hook.is_some()
    }

    /// The selection key this rule sets, if it sets one.
    pub fn key_of(&self, f: &Facts) -> Option<u64> {
        use crate::select::{bytes_key, key_hash};
        let by_ip = || key_hash(f.client, crate::config::HashKey::SourceIp);
        Some(match self.key? {
            L4Key::SourceIp => by_ip(),
            L4Key::SourceIpPort => key_hash(f.client, crate::config::HashKey::SourceIpPort),
            L4Key::Sni => f.sni.map_or_else(by_ip, |n| bytes_key(n.to_ascii_lowercase().as_bytes())),
            L4Key::Tlv(kind) => f.tlvs.and_then(|t| tlv_text(t, kind)).map_or_else(by_ip, |v| bytes_key(v.as_bytes())),
        })
    }
}

/// A TLV's value as text (`None`: absent, or not UTF-8).
pub fn tlv_text(t: &Tlvs, kind: TlvKind) -> Option<&str> {
    let bytes = match kind {
        TlvKind::Authority => return t.authority.as_deref(),
        TlvKind::Alpn => t.alpn.as_deref(),
        TlvKind::UniqueId => t.unique_id.as_deref(),
        TlvKind::Type(n) => t.other.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_slice()),
    }?;
    std::str::from_utf8(bytes).ok()
}

/// "No rule decided", as a rule index (above [`super::config::MAX_RULES`]).
pub const NO_RULE: u16 = u16::MAX;

/// The first rule of `rules` whose conditions hold, with its index.
pub fn first<'r, P>(rules: &'r [L4Rule<P>], f: &Facts) -> Option<(u16, &'r L4Rule<P>)> {
    rules.iter().enumerate().find(|(_, r)| r.matches(f)).map(|(i, r)| (i as u16, r))
}

#[cfg(test)]
mod tests {
    use super::super::config::TlvMatch;
    use super::*;

    fn rule(f: impl FnOnce(&mut L4RuleConfig)) -> L4Rule<&'static str> {
        let mut c = L4RuleConfig {
            name: "r".into(),
            source: vec![],
            sni: vec![],
            ports: vec![],
            tlvs: vec![],
            action: L4Action::Pool("p".into()),
            hash_key: None,
            tag: None,
            rate_class: None,
            hook: None,
        };
        f(&mut c);
        L4Rule::build(&c, |_| "p", None, Arc::default(), |_| unreachable!("no hook")).unwrap()
    }

    fn facts<'a>(client: &str, sni: Option<&'a str>, port: u16, tlvs: Option<&'a Tlvs>) -> Facts<'a> {
        Facts { client: client.parse().unwrap(), sni, port, tlvs }
    }

    #[test]
    fn every_condition_must_hold_and_lists_are_any_of() {
        let r = rule(|c| {
            c.source = vec!["10.0.0.0/8".into(), "192.0.2.7".into()];
            c.ports = vec![443, 8443];
            c.sni = vec!["*.example.com".into()];
        });
        assert!(r.matches(&facts("10.1.1.1:5", Some("a.example.com"), 8443, None)));
        assert!(r.matches(&facts("192.0.2.7:5", Some("A.EXAMPLE.com"), 443, None)));
        assert!(!r.matches(&facts("192.0.2.8:5", Some("a.example.com"), 443, None)), "source");
        assert!(!r.matches(&facts("10.1.1.1:5", Some("a.example.com"), 80, None)), "port");
        assert!(!r.matches(&facts("10.1.1.1:5", None, 443, None)), "no server name");
        assert!(rule(|_| ()).matches(&facts("[::1]:1", None, 0, None)), "no condition: every connection");
    }

    #[test]
    fn tlv_conditions_and_keys() {
        let r = rule(|c| {
            c.tlvs = vec![
                TlvMatch { tlv: TlvKind::Type(0xE0), equals: Some("tenant-a".into()), regex: None },
                TlvMatch { tlv: TlvKind::Authority, equals: None, regex: None },
            ];
            c.hash_key = Some(L4Key::Tlv(TlvKind::Type(0xE0)));
        });
        let mut t = Tlvs { authority: Some("x.example".into()), ..Default::default() };
        assert!(!r.matches(&facts("10.0.0.1:1", None, 0, Some(&t))), "custom TLV absent");
        t.other.push((0xE0, b"tenant-a".to_vec()));
        let f = facts("10.0.0.1:1", None, 0, Some(&t));
        assert!(r.matches(&f));
        assert!(!r.matches(&facts("10.0.0.1:1", None, 0, None)), "no PROXY header");
        assert_eq!(r.key_of(&f), Some(crate::select::bytes_key(b"tenant-a")));
        assert_eq!(rule(|_| ()).key_of(&f), None, "no key: the pool's");
    }
}
