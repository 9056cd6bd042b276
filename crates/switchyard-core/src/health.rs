//! Backend health as the data plane sees it: the operator's state (ready,
//! drain, maint, from the snapshot), the active-check verdict pushed by the
//! control plane, and passive ejection decided here on real traffic.
//!
//! The mutable parts live in [`BackendHealth`], kept in the stats registry by
//! identity so they survive snapshot swaps. Reading them on the hot path is a
//! couple of relaxed atomic loads; the clock is read only while a backend is
//! ejected.

use crate::events::{Event, EventLog};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the operator wants for a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    /// Takes new connections (if healthy).
    #[default]
    Ready,
    /// No new connections; existing ones finish (the control plane closes them at the drain deadline).
    Drain,
    /// Maintenance: no new connections.
    Maint,
}

/// Passive-detection policy of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PassiveConfig {
    /// Consecutive failures (connect errors, timeouts, resets before the first byte) that eject. 0 = off.
    pub consecutive_failures: u32,
    /// First ejection lasts this long; each repeated ejection doubles it...
    pub ejection_ms: u64,
    /// ...up to this cap.
    pub max_ejection_ms: u64,
    /// Never eject more than this share of the pool's backends (percent).
    pub max_ejection_percent: u32,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        use crate::catalog as c;
        Self {
            consecutive_failures: c::PASSIVE_CONSECUTIVE_FAILURES,
            ejection_ms: c::PASSIVE_EJECTION_MS,
            max_ejection_ms: c::PASSIVE_MAX_EJECTION_MS,
            max_ejection_percent: c::PASSIVE_MAX_EJECTION_PERCENT,
        }
    }
}

/// What happens to established connections when the active check marks a backend down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OnDown {
    #[default]
    Keep,
    Close,
}

/// Verdicts in `BackendHealth::checked` (0, the initial value, is "unknown").
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Milliseconds since the first call (a process-wide monotonic epoch).
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Why a passive failure was recorded.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    ConnectRefused,
    ConnectTimeout,
    ResetBeforeFirstByte,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::ConnectRefused => "connect failed",
            Failure::ConnectTimeout => "connect timeout",
            Failure::ResetBeforeFirstByte => "reset before the first byte",
        }
    }
}

/// Mutable health of one backend, shared by every snapshot that contains it.
#[derive(Debug, Default)]
pub struct BackendHealth {
    checked: AtomicU8,
    failures: AtomicU32,
    ejected_until: AtomicU64,
    ejections: AtomicU32,
    probation: AtomicBool,
    /// Consecutive HTTP 5xx responses (HTTP pools' `eject_after_5xx`).
    streak_5xx: AtomicU32,
    /// The current error-rate window: its start (`now_ms`, 0 = none yet),
    /// responses and 5xx responses in it.
    window_start: AtomicU64,
    window_responses: AtomicU32,
    window_5xx: AtomicU32,
    /// Its drain deadline passed (`close_connections` ran while draining):
    /// sticky clients pinned to it re-pin. Cleared when it is ready again.
    drain_over: AtomicBool,
    /// How many times [`Self::close_connections`] ran: a connection tells a
    /// kill from a park by it (see `kills`).
    kills: AtomicU32,
    /// The engine's token: cancelling it (the close deadline) cancels every kill token.
    root: CancellationToken,
    kill: Mutex<CancellationToken>,
    /// What plain TCP connections watch: a child of `kill`, also cancelled
    /// alone by [`Self::park_connections`] (a hand-over or a spread close).
    park: Mutex<CancellationToken>,
}

impl BackendHealth {
    /// Health whose connections are also cancelled with `root` (the engine's drain deadline).
    pub fn new(root: &CancellationToken) -> Self {
        let kill = root.child_token();
        Self { root: root.clone(), park: Mutex::new(kill.child_token()), kill: Mutex::new(kill), ..Default::default() }
    }

    /// May this backend take a new connection (ignoring the operator's state)?
    #[inline]
    pub fn usable(&self) -> bool {
        self.checked.load(Relaxed) != DOWN && !self.ejected()
    }

    /// Is it passively ejected right now?
    #[inline]
    pub fn ejected(&self) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && now_ms() < until
    }

    /// The active-check verdict: `"up"`, `"down"` or `"unknown"` (no check configured or run yet).
    pub fn checked(&self) -> &'static str {
        match self.checked.load(Relaxed) {
            UP => "up",
            DOWN => "down",
            _ => "unknown",
        }
    }

    /// Consecutive passive failures so far, and ejections in the current streak.
    pub fn passive_counts(&self) -> (u32, u32) {
        (self.failures.load(Relaxed), self.ejections.load(Relaxed))
    }

    /// Apply an active-check verdict. Up also ends a passive ejection (the
    /// check proved the backend healthy). Returns true if it changed.
    pub fn set_checked(&self, up: bool) -> bool {
        let new = if up { UP } else { DOWN };
        if up {
            self.ejected_until.store(0, Relaxed);
            self.probation.store(false, Relaxed);
            self.failures.store(0, Relaxed);
            self.ejections.store(0, Relaxed);
        }
        self.checked.swap(new, Relaxed) != new
    }

    /// The one token connections to this backend watch: cancelled by
    /// [`Self::close_connections`] and by the engine's close deadline.
    pub fn kill_token(&self) -> CancellationToken {
        self.kill.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Close every established connection to this backend (drain deadline,
    /// `on_down: close`). Later connections get a fresh token.
    pub fn close_connections(&self) {
        self.drain_over.store(true, Relaxed);
        self.kills.fetch_add(1, Relaxed);
        let kill = self.root.child_token();
        *self.park.lock().unwrap_or_else(|p| p.into_inner()) = kill.child_token();
        let old = std::mem::replace(&mut *self.kill.lock().unwrap_or_else(|p| p.into_inner()), kill);
        old.cancel();
    }

    /// Bumped each time this backend's connections are killed: a connection
    /// whose park token fired was parked, not killed, if this did not change
    /// since it took the token (and the engine's close deadline did not pass).
    pub fn kills(&self) -> u32 {
        self.kills.load(Relaxed)
    }

    /// The token a plain TCP connection to this backend watches while it
    /// forwards: cancelled with the kill token, and by [`Self::park_connections`].
    pub fn park_token(&self) -> CancellationToken {
        self.park.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Interrupt every plain TCP connection to this backend, now and later
    /// (the token stays cancelled): each one stops where it is, its bytes in
    /// flight kept, for the engine to hand it over or resume it (see
    /// `handoff`). Other connections are untouched.
    pub fn park_connections(&self) {
        self.park.lock().unwrap_or_else(|p| p.into_inner()).cancel();
    }

    /// A connection succeeded: the failure streak ends, probation passes.
    #[inline]
    pub fn record_success(&self) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
        if self.probation.load(Relaxed) {
            self.probation.store(false, Relaxed);
            self.ejections.store(0, Relaxed);
        }
    }

    /// A failure on real traffic. Ejects when the streak reaches the policy's
    /// threshold (at once while on probation after an ejection), unless
    /// `may_eject` says the pool already has too many ejected.
    pub fn record_failure(
        &self,
        policy: &PassiveConfig,
        failure: Failure,
        may_eject: impl FnOnce() -> bool,
        events: &EventLog,
        who: (&str, &str),
    ) {
        if policy.consecutive_failures == 0 || self.ejected() {
            return;
        }
        let streak = self.failures.fetch_add(1, Relaxed) + 1;
        let on_probation = self.probation.load(Relaxed);
        if streak < policy.consecutive_failures && !on_probation {
            return;
        }
        // Once per streak: every further failure of the same streak would
        // say the same thing again (a busy backend fails many per millisecond).
        let first = if on_probation { streak == 1 } else { streak == policy.consecutive_failures };
        self.eject(policy, &format!("{} ({streak} in a row)", failure.reason()), first, may_eject, events, who);
    }

    /// An HTTP response below 500 from this backend: a 5xx streak ends.
    #[inline]
    pub fn status_ok(&self) {
        if self.streak_5xx.load(Relaxed) != 0 {
            self.streak_5xx.store(0, Relaxed);
        }
    }

    /// A 5xx response from this backend: a streak of `threshold` in a row
    /// ejects it like connect failures do (0 = off).
    pub fn record_5xx(
        &self,
        threshold: u32,
        policy: &PassiveConfig,
        may_eject: impl FnOnce() -> bool,
        events: &EventLog,
        who: (&str, &str),
    ) {
        if threshold == 0 || self.ejected() {
            return;
        }
        let streak = self.streak_5xx.fetch_add(1, Relaxed) + 1;
        if streak >= threshold {
            // (A gRPC call that ended UNAVAILABLE-like counts as a 5xx, see `http::grpc::is_failure`.)
            self.eject(
                policy,
                &format!("HTTP 5xx or gRPC failure responses ({streak} in a row)"),
                streak == threshold,
                may_eject,
                events,
                who,
            );
            self.streak_5xx.store(0, Relaxed);
        }
    }

    /// Count an HTTP response in the error-rate window; when the window has
    /// run its length, judge it: at least `min_requests` responses of which
    /// `percent` or more were 5xx eject the backend. Then a new window starts.
    pub fn record_rate(
        &self,
        is_5xx: bool,
        rate: &crate::http::config::ErrorRate,
        policy: &PassiveConfig,
        may_eject: impl FnOnce() -> bool,
        events: &EventLog,
        (pool, addr): (&str, std::net::SocketAddr),
    ) {
        let now = now_ms();
        let start = self.window_start.load(Relaxed);
        if start == 0 {
            let _ = self.window_start.compare_exchange(0, now, Relaxed, Relaxed);
        } else if now.saturating_sub(start) >= rate.window_ms && self.window_start.compare_exchange(start, now, Relaxed, Relaxed).is_ok() {
            let (n, bad) = (self.window_responses.swap(0, Relaxed), self.window_5xx.swap(0, Relaxed));
            if n >= rate.min_requests.max(1) && (bad as u64) * 100 >= rate.percent as u64 * n as u64 && !self.ejected() {
                let reason = format!("HTTP 5xx (or gRPC failure) rate {bad}/{n} over {} ms", rate.window_ms);
                self.eject(policy, &reason, true, may_eject, events, (pool, &addr.to_string()));
            }
        }
        self.window_responses.fetch_add(1, Relaxed);
        if is_5xx {
            self.window_5xx.fetch_add(1, Relaxed);
        }
    }

    /// Eject for the policy's (doubling) time unless `may_eject` refuses;
    /// a refusal is reported when `report_skip`.
    fn eject(
        &self,
        policy: &PassiveConfig,
        reason: &str,
        report_skip: bool,
        may_eject: impl FnOnce() -> bool,
        events: &EventLog,
        who: (&str, &str),
    ) {
        if !may_eject() {
            if report_skip {
                events.push(Event::new("ejection_skipped", who, format!("{reason}: max_ejection_percent reached"), 0));
            }
            return;
        }
        let n = self.ejections.fetch_add(1, Relaxed).min(20);
        let ms = policy.ejection_ms.saturating_mul(1u64 << n).min(policy.max_ejection_ms.max(policy.ejection_ms));
        self.ejected_until.store(now_ms() + ms, Relaxed);
        self.failures.store(0, Relaxed);
        self.probation.store(true, Relaxed);
        events.push(Event::new("ejected", who, reason.to_owned(), ms));
    }

    /// Has its drain deadline passed (see `drain_over`)?
    pub fn drain_over(&self) -> bool {
        self.drain_over.load(Relaxed)
    }

    /// It is ready again: a later drain starts over.
    pub fn drain_reset(&self) {
        if self.drain_over.load(Relaxed) {
            self.drain_over.store(false, Relaxed);
        }
    }

    /// How long until the current ejection ends, if ejected.
    pub fn ejection_left(&self) -> Option<Duration> {
        let until = self.ejected_until.load(Relaxed);
        let now = now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }
}
