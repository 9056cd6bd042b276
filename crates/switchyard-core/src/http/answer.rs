//! What a route answers itself instead of a backend: a denial (a status and
//! a body), a redirect, or a 429 when a request is over its rate class.

use super::body::Body;
use super::config::{RedirectTarget, RouteAnswer};
use super::respond::{json_error, with_body};
use http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use http::{Request, Response, StatusCode};

/// Whether the data plane can send `a` (statuses in range, a Location that is a header value).
pub fn check(a: &RouteAnswer) -> Result<(), String> {
    match a {
        RouteAnswer::Deny { status, .. } if !(400..=599).contains(status) => Err(format!("deny status must be 400..599, got {status}")),
        RouteAnswer::Redirect { status, .. } if ![301, 302, 303, 307, 308].contains(status) => {
            Err(format!("redirect status must be 301, 302, 303, 307 or 308, got {status}"))
        }
        RouteAnswer::Redirect { to: RedirectTarget::Location(l) | RedirectTarget::Prefix(l), .. } if HeaderValue::from_str(l).is_err() => {
            Err(format!("not a valid Location: {l:?}"))
        }
        _ => Ok(()),
    }
}

/// The response for a request of route `route` that answers with `a`.
pub fn respond<B>(a: &RouteAnswer, route: &str, req: &Request<B>, tls: bool) -> Response<Body> {
    match a {
        RouteAnswer::Deny { status, body } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN);
            match body {
                Some(b) => with_body(status, "text/plain; charset=utf-8", b.clone()),
                None => json_error(status, "denied", &format!("denied by rule {route}")),
            }
        }
        RouteAnswer::Redirect { to, status } => {
            let rest = || req.uri().path_and_query().map_or("/", |p| p.as_str());
            let location = match to {
                RedirectTarget::Location(l) => l.clone(),
                RedirectTarget::Prefix(p) => format!("{}{}", p.trim_end_matches('/'), rest()),
                RedirectTarget::Scheme(s) => {
                    let host = super::route::request_host(req.uri(), req.headers()).unwrap_or("localhost");
                    let host_port = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(host);
                    // Moving to another scheme drops the port of the one left (`:80` is not https's).
                    let target = if (s == "https") != tls { host } else { host_port };
                    format!("{s}://{target}{}", rest())
                }
            };
            let mut r = Response::new(super::respond::empty());
            *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::FOUND);
            match HeaderValue::from_str(&location) {
                Ok(v) => drop(r.headers_mut().insert(LOCATION, v)),
                Err(_) => *r.status_mut() = StatusCode::BAD_REQUEST, // the request's own bytes made it invalid
            }
            r
        }
    }
}

/// 429 for a request over its route's rate class; `retry_after_s` for `Retry-After`.
pub fn rate_limited(class: &str, retry_after_s: u64, grpc: bool) -> Response<Body> {
    if grpc {
        return super::respond::Refusal::RateLimited.answer(true);
    }
    let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &format!("over the rate of class {class}"));
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query() {
        let req = http::Request::builder().uri("/a/b?x=1").header("host", "ex.com:8080").body(()).unwrap();
        let to = |t, tls| respond(&RouteAnswer::Redirect { to: t, status: 308 }, "r", &req, tls);
        let loc = |r: Response<Body>| r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert_eq!(loc(to(RedirectTarget::Scheme("https".into()), false)), "https://ex.com/a/b?x=1");
        assert_eq!(loc(to(RedirectTarget::Prefix("https://new.example/".into()), false)), "https://new.example/a/b?x=1");
        assert_eq!(loc(to(RedirectTarget::Location("https://x/".into()), false)), "https://x/");
        assert!(check(&RouteAnswer::Redirect { to: RedirectTarget::Location("x".into()), status: 200 }).is_err());
        assert!(check(&RouteAnswer::Deny { status: 302, body: None }).is_err());
    }
}
