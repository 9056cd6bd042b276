//! Decision traces: for a sampled TCP connection or HTTP request, why it went
//! where it went — the rule that matched, every backend of the pool with its
//! verdict (chosen, eligible, skipped and why, failed and how), the attempts
//! in order, the winner (or why there was none) and the outcome.
//!
//! Cost contract: a listener whose sample rate is 0 (the default) pays one
//! relaxed load and one branch per connection or request ([`sampled`]);
//! nothing is collected. A sampled decision collects its attempts while it
//! runs ([`Attempts`]) and is explained *after* the pick, from the same state
//! atomics the selectors read (operator state, check verdict, ejection,
//! connection limit): no selector is instrumented, so the explanation is what
//! that state said right after the decision, which a concurrent change may
//! already have moved. Traces go to a ring of the last [`CAPACITY`] that the
//! control plane reads without draining ([`TraceLog::query`]).

use crate::backend::Backend;
use crate::catalog::Algorithm;
use crate::health::AdminState;
use crate::snapshot::Pool;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Most traces kept (the oldest is dropped for a new one).
pub const CAPACITY: usize = 512;

/// Set a listener's sample rate (`ListenerStats::trace`, kept in the
/// registry so it survives snapshot swaps and changes at runtime without a
/// reload): a share `rate` (clamped to 0..=1) of connections or requests,
/// stored as a threshold of [`crate::select::fast_rand`] (0: off).
pub fn set_rate(threshold: &AtomicU64, rate: f64) {
    let t = if rate.is_nan() || rate <= 0.0 {
        0
    } else if rate >= 1.0 {
        u64::MAX
    } else {
        ((rate * u64::MAX as f64) as u64).max(1)
    };
    threshold.store(t, Relaxed);
}

/// Is this connection or request traced? Unsampled listeners: one load, one branch.
#[inline]
pub fn sampled(threshold: &AtomicU64) -> bool {
    let t = threshold.load(Relaxed);
    t != 0 && crate::select::fast_rand() <= t
}

/// Why an attempt on a backend failed.
#[derive(Debug)]
pub enum AttemptError {
    /// `connect(2)` failed (refused, unreachable, reset).
    Connect(std::io::Error),
    /// No connection within the pool's `connect_timeout`.
    ConnectTimeout,
    /// This process is out of descriptors or memory (not the backend's fault).
    Local(std::io::Error),
    /// The TLS handshake with the backend failed.
    Tls,
    /// The HTTP (or HTTP/2) handshake with the backend failed.
    Handshake,
    /// HTTP/2: no shared connection had room within the connect timeout.
    Busy,
    /// A kept-alive connection was closed before the request was written.
    Stale,
    /// The backend closed or reset before its first byte (nothing delivered).
    ClosedEarly,
    /// The backend answered this status and the request went elsewhere.
    Status(u16),
    /// An earlier attempt of the same connection (its own trace says how it failed).
    Earlier,
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Connect(e) => write!(f, "connect failed: {e}"),
            AttemptError::ConnectTimeout => f.write_str("connect timed out"),
            AttemptError::Local(e) => write!(f, "out of local resources: {e}"),
            AttemptError::Tls => f.write_str("backend TLS handshake failed"),
            AttemptError::Handshake => f.write_str("HTTP handshake failed"),
            AttemptError::Busy => f.write_str("no HTTP/2 connection had room in time"),
            AttemptError::Stale => f.write_str("a kept-alive connection closed before the request was written"),
            AttemptError::ClosedEarly => f.write_str("closed before its first byte"),
            AttemptError::Status(s) => write!(f, "answered {s}, retried elsewhere"),
            AttemptError::Earlier => f.write_str("failed on an earlier attempt"),
        }
    }
}

/// What a decision collects while it runs: the backends attempted, in
/// order, and how each failed. Off (not sampled): every method returns at
/// once and nothing is allocated.
#[derive(Debug, Default)]
pub struct Attempts {
    on: bool,
    list: Vec<(usize, Option<AttemptError>)>,
    /// HTTP: the backend a sticky cookie pinned the request to, if it could stay.
    pub pinned: Option<usize>,
    /// The selection key the pool's algorithm was given.
    pub key: u64,
}

impl Attempts {
    /// Collect (`on`) or not.
    pub fn new(on: bool) -> Self {
        Attempts { on, ..Default::default() }
    }

    /// Is this decision traced?
    #[inline]
    pub fn on(&self) -> bool {
        self.on
    }

    /// Backend `i` is being attempted.
    #[inline]
    pub fn tried(&mut self, i: usize) {
        if self.on {
            self.list.push((i, None));
        }
    }

    /// The attempt on backend `i` failed (its latest one).
    #[inline]
    pub fn failed(&mut self, i: usize, e: AttemptError) {
        if self.on {
            match self.list.iter_mut().rev().find(|(j, e)| *j == i && e.is_none()) {
                Some(slot) => slot.1 = Some(e),
                None => self.list.push((i, Some(e))),
            }
        }
    }
}

/// TCP connection or HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    Tcp,
    Http,
}

/// What a backend was in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It took the connection or request.
    Chosen,
    /// It could have; the algorithm (or the attempt order) preferred the winner.
    Eligible,
    /// It could not take new traffic (see `reason`).
    Skipped,
    /// It was attempted and the attempt failed (see `reason` and `detail`).
    Failed,
}

/// Why a backend was skipped or failed. Stable codes (tests and tools match on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Operator state `drain`: no new connections.
    Drain,
    /// Operator state `maint`.
    Maint,
    /// The active health check says down.
    CheckDown,
    /// Passively ejected (consecutive failures, 5xx) for a while.
    Ejected,
    /// Weight 0: in no tier's table, takes no new connections.
    WeightZero,
    /// At its `max_connections`.
    Full,
    /// A backup, and the primaries were still serving.
    BackupIdle,
    /// Attempted; the attempt failed (`detail` says how).
    AttemptFailed,
}

/// One backend of the pool, as the decision saw it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Candidate {
    pub address: String,
    /// Its weight now (a slow-start ramp shows here as a lowered weight).
    pub weight: u32,
    pub backup: bool,
    pub state: AdminState,
    /// The active-check verdict: `up`, `down` or `unknown`.
    #[cfg_attr(test, ts(type = "\"up\" | \"down\" | \"unknown\""))]
    pub health: &'static str,
    /// Its connections (HTTP: requests in flight) right after the decision.
    pub active: u64,
    pub verdict: Verdict,
    /// Set when `verdict` is `skipped` or `failed`.
    pub reason: Option<Reason>,
    /// More words: the error of a failed attempt, the time left of an
    /// ejection, the limit of a full backend, a sticky pin, a fail-open pick.
    pub detail: Option<String>,
}

/// One attempt, in order.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TraceAttempt {
    pub backend: String,
    /// Why it failed; `None`: it succeeded.
    pub error: Option<String>,
}

/// How the decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    /// TCP: connected to the winner (forwarding follows).
    Connected,
    /// HTTP: the winner answered (`status`).
    Answered,
    /// No backend was eligible: nothing was attempted.
    NoBackend,
    /// Every attempt failed.
    AllFailed,
    /// Every usable backend was full and the pool's queue refused.
    QueueRefused,
    /// This process was out of descriptors or memory.
    LocalError,
    /// HTTP: the winner did not answer within the request timeout (504).
    Timeout,
    /// HTTP: the winner failed mid-exchange (502).
    BadGateway,
    /// HTTP: refused before a backend was picked (too large, an upgrade the pool cannot carry).
    Refused,
    /// A rule (or its hook) denied it: a status (HTTP), closed (TCP).
    Denied,
    /// HTTP: a rule redirected it.
    Redirected,
    /// Over the rule's rate class: 429 (HTTP), closed (TCP).
    RateLimited,
}

/// One decision.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Trace {
    /// Increases by one per trace of the engine (a reader asks for newer ones with `since`).
    pub seq: u64,
    /// When it was decided, ms since the Unix epoch.
    pub time_ms: u64,
    pub listener: String,
    pub kind: TraceKind,
    /// The client's `ip:port`.
    pub client: String,
    /// The rule (HTTP: route) that matched; `None`: the listener's default pool.
    pub rule: Option<String>,
    pub pool: String,
    /// `None` when a rule answered before any pool was consulted.
    pub algorithm: Option<Algorithm>,
    /// The selection key (hex) when the pool's algorithm reads one.
    pub key: Option<String>,
    /// Every backend of the pool, in configuration order.
    pub candidates: Vec<Candidate>,
    /// The backends attempted, in order (retries included).
    pub attempts: Vec<TraceAttempt>,
    /// The backend that took it; `None` when none did (`outcome` says why).
    pub winner: Option<String>,
    pub outcome: TraceOutcome,
    /// HTTP: the status the client got.
    pub status: Option<u16>,
}

/// Which traces to read.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TraceFilter {
    /// Only this listener's.
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub listener: Option<String>,
    /// Only decisions in this pool.
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub pool: Option<String>,
    /// Only traces with a greater `seq`.
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub since: Option<u64>,
    /// At most this many, the newest (default: every one kept).
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub limit: Option<usize>,
}

/// The ring of the last [`CAPACITY`] traces of an engine.
#[derive(Debug, Default)]
pub struct TraceLog {
    ring: Mutex<VecDeque<Trace>>,
    seq: AtomicU64,
}

impl TraceLog {
    /// Keep `t` (numbered here), dropping the oldest beyond [`CAPACITY`].
    pub fn push(&self, mut t: Trace) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        t.seq = self.seq.fetch_add(1, Relaxed) + 1;
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(t);
    }

    /// The kept traces that pass `f`, oldest first (the newest `limit`).
    pub fn query(&self, f: &TraceFilter) -> Vec<Trace> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let keep = |t: &&Trace| {
            f.listener.as_ref().is_none_or(|l| *l == t.listener)
                && f.pool.as_ref().is_none_or(|p| *p == t.pool)
                && f.since.is_none_or(|s| t.seq > s)
        };
        let mut out: Vec<Trace> = ring.iter().rev().filter(keep).take(f.limit.unwrap_or(CAPACITY)).cloned().collect();
        out.reverse();
        out
    }
}

/// Who asked, and where the decision was made: what a trace records besides the pool's state.
pub struct Decision<'a> {
    pub listener: &'a str,
    pub kind: TraceKind,
    pub client: SocketAddr,
    pub rule: Option<&'a str>,
    pub pool: &'a Pool,
}

/// Explain a finished decision and keep it in `log`. Out of line: only
/// sampled decisions come here.
#[inline(never)]
pub fn record(log: &TraceLog, d: Decision<'_>, attempts: Attempts, winner: Option<usize>, outcome: TraceOutcome, status: Option<u16>) {
    let pool = d.pool;
    let winner_backup = winner.map(|w| pool.backends[w].backup);
    let candidates = pool.backends.iter().enumerate().map(|(i, b)| explain(b, i, winner, winner_backup, &attempts)).collect();
    let outcome = match outcome {
        TraceOutcome::NoBackend if attempts.list.iter().any(|(_, e)| e.is_some()) => TraceOutcome::AllFailed,
        o => o,
    };
    log.push(Trace {
        seq: 0,
        time_ms: crate::events::wall_ms(),
        listener: d.listener.to_owned(),
        kind: d.kind,
        client: d.client.to_string(),
        rule: d.rule.map(str::to_owned),
        pool: pool.name.clone(),
        algorithm: Some(pool.algorithm()),
        key: pool.algorithm().keyed().then(|| format!("{:016x}", attempts.key)),
        candidates,
        attempts: attempts
            .list
            .iter()
            .map(|(i, e)| TraceAttempt { backend: pool.backends[*i].addr.to_string(), error: e.as_ref().map(|e| e.to_string()) })
            .collect(),
        winner: winner.map(|w| pool.backends[w].addr.to_string()),
        outcome,
        status,
    });
}

/// Keep the trace of a decision a rule took itself (denied, redirected, over
/// its rate class): no pool was consulted, so it has no candidates. Out of
/// line: only sampled decisions come here.
#[inline(never)]
pub fn record_ruled(
    log: &TraceLog,
    listener: &str,
    kind: TraceKind,
    client: SocketAddr,
    rule: &str,
    outcome: TraceOutcome,
    status: Option<u16>,
) {
    log.push(Trace {
        seq: 0,
        time_ms: crate::events::wall_ms(),
        listener: listener.to_owned(),
        kind,
        client: client.to_string(),
        rule: Some(rule.to_owned()),
        pool: String::new(),
        algorithm: None,
        key: None,
        candidates: Vec::new(),
        attempts: Vec::new(),
        winner: None,
        outcome,
        status,
    });
}

/// The verdict on backend `i` of a decision won by `winner` (in the backup
/// tier: `winner_backup`): the first reason in the order the pick applies them.
fn explain(b: &Backend, i: usize, winner: Option<usize>, winner_backup: Option<bool>, attempts: &Attempts) -> Candidate {
    let failed = attempts.list.iter().rev().find(|(j, e)| *j == i && e.is_some()).and_then(|(_, e)| e.as_ref());
    let (verdict, reason, detail) = if winner == Some(i) {
        let detail = if attempts.pinned == Some(i) {
            Some("pinned by its sticky cookie".to_owned())
        } else if !b.available() {
            Some("picked failing open (panic_threshold): no backend was available".to_owned())
        } else {
            None
        };
        (Verdict::Chosen, None, detail)
    } else if let Some(e) = failed {
        (Verdict::Failed, Some(Reason::AttemptFailed), Some(e.to_string()))
    } else if let Some((reason, detail)) = skipped(b, winner_backup) {
        (Verdict::Skipped, Some(reason), detail)
    } else {
        (Verdict::Eligible, None, None)
    };
    Candidate {
        address: b.addr.to_string(),
        weight: b.weight,
        backup: b.backup,
        state: b.state,
        health: b.health.checked(),
        active: b.stats.active.load(Relaxed),
        verdict,
        reason,
        detail,
    }
}

/// Why `b` could not take new traffic now, if it could not (`Pool::pick`'s
/// eligibility: weight > 0, ready, not checked down, not ejected, room).
fn skipped(b: &Backend, winner_backup: Option<bool>) -> Option<(Reason, Option<String>)> {
    if b.weight == 0 {
        return Some((Reason::WeightZero, None));
    }
    match b.state {
        AdminState::Drain => return Some((Reason::Drain, None)),
        AdminState::Maint => return Some((Reason::Maint, None)),
        AdminState::Ready => {}
    }
    if b.health.checked() == "down" {
        return Some((Reason::CheckDown, None));
    }
    if let Some(left) = b.health.ejection_left() {
        return Some((Reason::Ejected, Some(format!("{} ms left", left.as_millis()))));
    }
    if !b.has_room() {
        return Some((Reason::Full, Some(format!("at its max_connections ({})", b.max_conns))));
    }
    if b.backup && winner_backup == Some(false) {
        return Some((Reason::BackupIdle, Some("backups serve only when no primary can".to_owned())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_bounds() {
        let s = AtomicU64::default();
        assert!(!(0..1000).any(|_| sampled(&s)), "off by default");
        set_rate(&s, 1.0);
        assert!((0..1000).all(|_| sampled(&s)));
        assert_eq!(s.load(Relaxed), u64::MAX);
        set_rate(&s, 0.5);
        let n = (0..10_000).filter(|_| sampled(&s)).count();
        assert!((4000..6000).contains(&n), "about half: {n}");
        set_rate(&s, 0.0);
        assert!(!(0..1000).any(|_| sampled(&s)));
    }

    #[test]
    fn attempts_off_collect_nothing() {
        let mut a = Attempts::new(false);
        a.tried(0);
        a.failed(0, AttemptError::ConnectTimeout);
        assert!(a.list.is_empty());
        let mut a = Attempts::new(true);
        a.tried(2);
        a.failed(2, AttemptError::ConnectTimeout);
        a.tried(1);
        assert_eq!(a.list.len(), 2);
        assert!(a.list[0].1.is_some() && a.list[1].1.is_none());
    }

    fn trace(listener: &str) -> Trace {
        Trace {
            seq: 0,
            time_ms: 0,
            listener: listener.to_owned(),
            kind: TraceKind::Tcp,
            client: String::new(),
            rule: None,
            pool: "p".to_owned(),
            algorithm: Some(Algorithm::RoundRobin),
            key: None,
            candidates: vec![],
            attempts: vec![],
            winner: None,
            outcome: TraceOutcome::NoBackend,
            status: None,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let log = TraceLog::default();
        for i in 0..CAPACITY + 10 {
            log.push(trace(if i % 2 == 0 { "a" } else { "b" }));
        }
        let all = log.query(&TraceFilter::default());
        assert_eq!(all.len(), CAPACITY);
        assert_eq!((all[0].seq, all[CAPACITY - 1].seq), (11, (CAPACITY + 10) as u64));
        let a = log.query(&TraceFilter { listener: Some("a".into()), limit: Some(3), ..Default::default() });
        assert_eq!(a.iter().map(|t| t.seq).collect::<Vec<_>>(), [517, 519, 521]);
        assert!(a.iter().all(|t| t.listener == "a"));
        let newer = log.query(&TraceFilter { since: Some(520), ..Default::default() });
        assert_eq!(newer.iter().map(|t| t.seq).collect::<Vec<_>>(), [521, 522]);
    }
}
