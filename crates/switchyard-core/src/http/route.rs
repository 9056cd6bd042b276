//! An HTTP listener's compiled route table: conditions on host, path,
//! method, headers, query parameters and cookies; first match wins. Built
//! off the hot path with the snapshot (regexes compiled, names lowered);
//! matching a request allocates nothing but the lazily split cookie list.

pub use super::config::anchored;
use super::config::{HttpListenerConfig, PathMatch, RequestKey, RouteAnswer, RouteConfig, ValueMatch};
use super::headers::Ops;
use super::stats::RouteStats;
use crate::cidr::Cidr;
use crate::hook::{Hook, HookRef};
use crate::rules::rate::RateClass;
use crate::rules::value::{NamePattern, ValueTest};
use http::header::{HeaderMap, COOKIE, HOST};
use http::{Method, Request, Uri};
use regex::Regex;
use std::net::IpAddr;
use std::sync::Arc;

/// One route, ready to match; `P` is the handle of its pool (the
/// snapshot's `Arc<Pool>`: generic so this table does not depend on it).
#[derive(Debug)]
pub struct Route<P> {
    pub name: Arc<str>,
    source: Vec<Cidr>,
    host: Option<NamePattern>,
    path: Option<PathPattern>,
    methods: Option<Vec<Method>>,
    headers: Vec<Condition>,
    query: Vec<Condition>,
    cookies: Vec<Condition>,
    /// Where matching requests go (`None`: `answer` says what Switchyard answers).
    pub pool: Option<P>,
    pub answer: Option<RouteAnswer>,
    pub tag: Option<Arc<str>>,
    pub rate: Option<Arc<RateClass>>,
    /// The key hash algorithms use for this route's requests.
    pub key: Option<RequestKey>,
    pub request_ops: Ops,
    pub response_ops: Ops,
    pub max_body: Option<u64>,
    pub stats: Arc<RouteStats>,
    /// Asked before a backend is chosen (opt-in; `None` costs nothing).
    pub hook: Option<Hook>,
}

#[derive(Debug)]
enum PathPattern {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug)]
struct Condition {
    name: String,
    test: ValueTest,
}

fn condition(v: &ValueMatch, lower: bool) -> Result<Condition, String> {
    let test = ValueTest::build(&v.equals, &v.regex)?;
    Ok(Condition { name: if lower { v.name.to_ascii_lowercase() } else { v.name.clone() }, test })
}

impl<P> Route<P> {
    /// Compile route `r`; `pool` is the pool it names, `rate` its rate
    /// class, `stats` its counters, `hook` its compiled hook.
    pub fn build(
        r: &RouteConfig,
        pool: Option<P>,
        rate: Option<Arc<RateClass>>,
        stats: Arc<RouteStats>,
        hook: Option<Hook>,
    ) -> Result<Route<P>, String> {
        let host = r.host.as_deref().map(NamePattern::build);
        let path = match &r.path {
            None => None,
            Some(PathMatch::Exact(p)) => Some(PathPattern::Exact(p.clone())),
            Some(PathMatch::Prefix(p)) => Some(PathPattern::Prefix(p.clone())),
            Some(PathMatch::Regex(re)) => Some(PathPattern::Regex(anchored(re)?)),
        };
        let methods = r
            .methods
            .as_ref()
            .map(|ms| ms.iter().map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| format!("invalid method {m:?}"))).collect())
            .transpose()?;
        let conds = |list: &[ValueMatch], lower: bool| list.iter().map(|v| condition(v, lower)).collect::<Result<Vec<_>, _>>();
        Ok(Route {
            name: Arc::from(r.name.as_str()),
            source: r.source.iter().map(|c| Cidr::parse(c)).collect::<Result<_, _>>()?,
            host,
            path,
            methods,
            headers: conds(&r.headers, true)?,
            query: conds(&r.query, false)?,
            cookies: conds(&r.cookies, false)?,
            pool,
            answer: r.answer.clone(),
            tag: r.tag.as_deref().map(Arc::from),
            rate,
            key: r.hash_key.clone(),
            request_ops: Ops::compile(&r.request_headers)?,
            response_ops: Ops::compile(&r.response_headers)?,
            max_body: r.max_body_bytes,
            stats,
            hook,
        })
    }

    /// Do all of the route's conditions hold for this request from `client`?
    pub fn matches<B>(&self, req: &Request<B>, client: IpAddr) -> bool {
        if !self.source.is_empty() && !self.source.iter().any(|c| c.contains(client)) {
            return false;
        }
        if let Some(ms) = &self.methods {
            if !ms.contains(req.method()) {
                return false;
            }
        }
        if let Some(h) = &self.host {
            let Some(host) = request_host(req.uri(), req.headers()) else { return false };
            if !h.matches(host) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            let path = req.uri().path();
            let ok = match p {
                PathPattern::Exact(e) => path == e,
                PathPattern::Prefix(x) => path.starts_with(x.as_str()),
                PathPattern::Regex(r) => r.is_match(path),
            };
            if !ok {
                return false;
            }
        }
        self.headers.iter().all(|c| header_holds(req.headers(), c))
            && self.query.iter().all(|c| query_value(req.uri(), &c.name).is_some_and(|v| c.test.holds(&v)))
            && self.cookies.iter().all(|c| cookie(req.headers(), &c.name).is_some_and(|v| c.test.holds(v)))
    }
}

/// Any value of the header satisfies the test.
fn header_holds(headers: &HeaderMap, c: &Condition) -> bool {
    headers.get_all(c.name.as_str()).iter().any(|v| v.to_str().is_ok_and(|v| c.test.holds(v)))
}

/// The request's host name without the port: the `Host` header, or the
/// authority of an absolute-form target.
pub fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let h = headers.get(HOST).and_then(|v| v.to_str().ok()).or_else(|| uri.host())?;
    Some(strip_port(h))
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h.split_inclusive(']').next().unwrap_or(h);
    }
    h.rsplit_once(':').map_or(h, |(host, _)| host)
}

/// A query parameter's first value, percent-decoded (`+` is a space).
pub fn query_value(uri: &Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    q.split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, "")))).find(|(k, _)| decode(k) == name).map(|(_, v)| decode(v))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cookie's value from the `Cookie` header(s).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The routes of a listener, in order.
#[derive(Debug)]
pub struct RouteTable<P> {
    pub routes: Vec<Route<P>>,
}

impl<P> RouteTable<P> {
    /// The first route whose conditions hold for a request from `client`.
    pub fn find<B>(&self, req: &Request<B>, client: IpAddr) -> Option<&Route<P>> {
        self.routes.iter().find(|r| r.matches(req, client))
    }
}

/// An HTTP listener's compiled routes and its limits.
#[derive(Debug)]
pub struct HttpTables<P> {
    pub routes: RouteTable<P>,
    pub config: HttpListenerConfig,
}

impl<P> HttpTables<P> {
    /// Compile listener `name`'s routes; `pool`, `rate`, `stats` and `hook`
    /// give each route's pool handle, rate class, counters and compiled hook.
    /// Errors name the route.
    pub fn build(
        h: &HttpListenerConfig,
        name: &str,
        pool: impl Fn(&str) -> P,
        rate: impl Fn(&str) -> Arc<RateClass>,
        stats: impl Fn(&str) -> Arc<RouteStats>,
        hook: impl Fn(&HookRef) -> Hook,
    ) -> crate::error::Result<HttpTables<P>> {
        let routes = h
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Route::build(
                    r,
                    r.pool.as_deref().map(&pool),
                    r.rate_class.as_deref().map(&rate),
                    stats(&r.name),
                    r.hook.as_ref().map(&hook),
                )
                .map_err(|e| crate::error::Error::config_at(format!("listeners.{name}.http.routes[{i}]"), e))
            })
            .collect::<crate::error::Result<_>>()?;
        Ok(HttpTables { routes: RouteTable { routes }, config: h.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn hosts_paths_queries_cookies() {
        let p = parts("/api/v1?user=a%20b&x", &[("host", "API.example.com:8080"), ("cookie", "a=1; sid=\"xyz\"")]);
        assert_eq!(request_host(p.uri(), p.headers()), Some("API.example.com"));
        assert_eq!(query_value(p.uri(), "user").as_deref(), Some("a b"));
        assert_eq!(query_value(p.uri(), "x").as_deref(), Some(""));
        assert_eq!(query_value(p.uri(), "nope"), None);
        assert_eq!(cookie(p.headers(), "sid"), Some("xyz"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
