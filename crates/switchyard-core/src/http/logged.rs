//! The access-log record of one HTTP request: started when the request
//! arrives (if the listener keeps a log and the request is sampled), written
//! when its response body has been relayed whole or abandoned, with the bytes
//! each way, the time to the response head and the total time.

use super::body::{Body, BoxError};
use crate::access::{AccessRecord, Ended, HttpRecord};
use crate::shared::Shared;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Is this request in the sample (`rate` in 0..=1)?
pub fn sampled(rate: f64) -> bool {
    rate >= 1.0 || (crate::select::fast_rand() as f64 / u64::MAX as f64) < rate
}

/// A request being logged.
pub struct Pending {
    pub shared: Arc<Shared>,
    pub start: Instant,
    pub started_ms: u64,
    pub listener: Arc<str>,
    pub client: SocketAddr,
    pub method: Method,
    pub path: String,
    /// Request body bytes, counted as they pass.
    pub bytes_in: Arc<AtomicU64>,
}

impl Pending {
    /// Count the request body's bytes into `bytes_in`.
    pub fn count_request(&self, body: Body) -> Body {
        let n = Arc::clone(&self.bytes_in);
        body.map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                n.fetch_add(d.len() as u64, Relaxed);
            }
            f
        })
        .boxed()
    }

    /// The response head is ready: wrap its body so the record is written when it ends.
    /// `route`: the matched route's name, pool ("" if it answers itself) and tag.
    pub fn respond(self, body: Body, status: StatusCode, route: Option<(&str, &str, Option<&str>)>, backend: Option<SocketAddr>) -> Body {
        let (route, pool, tag) = route.unwrap_or_default();
        let record = AccessRecord {
            time_ms: self.started_ms,
            listener: self.listener.to_string(),
            client: self.client.to_string(),
            pool: pool.to_owned(),
            backend: backend.map(|b| b.to_string()).unwrap_or_default(),
            duration_ms: 0,
            bytes_in: 0,
            bytes_out: 0,
            ended: Ended::Error,
            rule: None,
            tag: tag.map(str::to_owned),
            http: Some(HttpRecord {
                route: route.to_owned(),
                method: self.method.to_string(),
                path: self.path.clone(),
                status: status.as_u16(),
                head_ms: self.start.elapsed().as_millis() as u64,
            }),
            udp: None,
        };
        Logged { inner: body, record: Some(record), pending: self, bytes_out: 0 }.boxed()
    }
}

/// A response body that writes its request's record when it ends or is dropped.
struct Logged {
    inner: Body,
    record: Option<AccessRecord>,
    pending: Pending,
    bytes_out: u64,
}

impl Logged {
    fn finish(&mut self, ended: Ended) {
        if let Some(mut r) = self.record.take() {
            r.duration_ms = self.pending.start.elapsed().as_millis() as u64;
            r.bytes_in = self.pending.bytes_in.load(Relaxed);
            r.bytes_out = self.bytes_out;
            r.ended = ended;
            self.pending.shared.access.push(r);
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                self.bytes_out += f.data_ref().map_or(0, |d| d.len() as u64);
                if self.inner.is_end_stream() {
                    self.finish(Ended::Completed);
                }
            }
            Poll::Ready(None) => self.finish(Ended::Completed),
            Poll::Ready(Some(Err(_))) => self.finish(Ended::Error),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // Ended before its body did (the client left), or a body-less response.
        let ended = if self.inner.is_end_stream() { Ended::Completed } else { Ended::Error };
        self.finish(ended);
    }
}
