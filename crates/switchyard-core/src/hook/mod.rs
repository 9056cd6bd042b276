//! Opt-in hooks: the rare routing decision that needs code (an auth lookup,
//! a tenant map) asked of a function the control plane registered, within a
//! time budget, with a declared fallback.
//!
//! Contract:
//! - Only what a rule names reaches a hook (an HTTP route with `hook`, later an
//!   L4 rule); everything else never touches this module.
//! - A call goes out through the engine's [`HookSink`] (the napi crate's
//!   bounded thread-safe function) and is answered by [`Hooks::reply`]. The
//!   asker waits at most the hook's budget; on a timeout, an error, a full
//!   queue, no handler, or an invalid decision it gets the hook's declared
//!   fallback. It never waits longer than the budget, whatever the handler does.
//! - In flight at once: at most the sink's bound (set with the sink); beyond,
//!   the fallback ("full") at once.
//! - Every call is counted per hook name ([`HookReport`]), in the registry,
//!   so counts survive configuration updates.
//!
//! Use from the data plane: compile a [`HookRef`] with
//! `registry.hooks.hook(&r)` when the tables are built, then
//! `shared.hooks.ask(&hook, request).await` (or [`Hooks::ask_with`] to
//! reject decisions the caller cannot carry out, e.g. an unknown pool).

mod ask;
mod counters;

pub use ask::{Hooks, DEFAULT_IN_FLIGHT};
pub use counters::{Hook, HookCounters, HookReport, HookTable};
use serde::{Deserialize, Serialize};

/// A hook's time budget, ms (default 2; the control plane applies it).
pub const BUDGET_MS: crate::catalog::IntLimit = crate::catalog::IntLimit { min: 1, max: 10_000, default: 2 };
/// Request header fields sent to a hook: the first this many.
pub const MAX_HEADERS: usize = 64;

/// Where a rule asks a hook: which, how long to wait, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HookRef {
    /// The name the handler registered the function under.
    pub name: String,
    /// Longest wait for the answer, ms ([`BUDGET_MS`]).
    pub budget_ms: u64,
    /// The decision on timeout, error, full queue, no handler or an invalid answer.
    pub fallback: HookDecision,
}

impl HookRef {
    /// Check a rule's hook at `at` (its path in the configuration);
    /// `pool_exists` says whether the fallback's pool exists.
    pub fn check(&self, at: &str, pool_exists: impl Fn(&str) -> bool) -> crate::error::Result<()> {
        use crate::error::Error;
        if self.name.is_empty() {
            return Err(Error::config_at(format!("{at}.name"), "a hook needs a name"));
        }
        if !BUDGET_MS.contains(self.budget_ms) {
            return Err(Error::config_at(
                format!("{at}.budget_ms"),
                format!("expected {}..={} ms, got {}", BUDGET_MS.min, BUDGET_MS.max, self.budget_ms),
            ));
        }
        self.fallback.check().map_err(|e| Error::config_at(format!("{at}.fallback"), e))?;
        match &self.fallback.pool {
            Some(p) if !pool_exists(p) => Err(Error::config_at(format!("{at}.fallback.pool"), format!("no pool named {p:?}"))),
            _ => Ok(()),
        }
    }
}

/// A hook's answer. `pool` and `deny` exclude each other; neither keeps the
/// rule's own pool.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HookDecision {
    /// Send it to this pool instead.
    #[serde(default)]
    pub pool: Option<String>,
    /// Refuse it: this HTTP status (400..=599) from Switchyard; an L4 connection is closed.
    #[serde(default)]
    pub deny: Option<u16>,
    /// Hash this string as the selection key (keyed algorithms).
    #[serde(default)]
    pub hash_key: Option<String>,
    /// A label for logs and metrics.
    #[serde(default)]
    pub tag: Option<String>,
}

impl HookDecision {
    /// What every decision must satisfy, whatever the caller (pool names are the caller's to check).
    pub fn check(&self) -> Result<(), String> {
        if self.pool.is_some() && self.deny.is_some() {
            return Err("pool and deny exclude each other".to_owned());
        }
        match self.deny {
            Some(s) if !(400..=599).contains(&s) => Err(format!("deny: expected an HTTP error status 400..599, got {s}")),
            _ => Ok(()),
        }
    }
}

/// One header field as a hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HookHeader {
    pub name: String,
    pub value: String,
}

/// What a hook is told about the connection or request it decides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HookRequest {
    pub listener: String,
    /// The route (HTTP) or rule (L4) that asked.
    pub rule: String,
    /// The client's `ip:port`.
    pub client: String,
    /// HTTP: the method, host (without port), path and raw query.
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    /// HTTP: the request's header fields, in order, the first [`MAX_HEADERS`].
    pub headers: Vec<HookHeader>,
    /// L4: the ClientHello's server name.
    pub sni: Option<String>,
    /// L4: the port the client connected to.
    pub dst_port: Option<u16>,
}

/// One call as the sink hands it to the handler.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HookCall {
    /// Answer with [`Hooks::reply`] and this id.
    pub id: u64,
    pub hook: String,
    pub request: HookRequest,
}

/// The handler's answer to a call: a decision, the error its function
/// threw, or `unregistered` (no function of that name). `hook` names the
/// hook (a late answer is counted under it).
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct HookReply {
    pub hook: String,
    #[serde(default)]
    pub decision: Option<HookDecision>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub unregistered: bool,
}

/// The sink refused a call (its queue is full, or it is closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkFull;

/// Where calls go: implemented by the binding (a bounded thread-safe
/// function into JavaScript). `call` must not block: a full queue is `Err` at once.
pub trait HookSink: Send + Sync {
    fn call(&self, call: HookCall) -> Result<(), SinkFull>;
}

/// How a call ended: answered, or why the fallback was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOutcome {
    Answered,
    /// No answer within the budget.
    Timeout,
    /// The function threw (or its promise rejected).
    Error,
    /// Too many calls in flight, or the sink's queue is full.
    Full,
    /// No handler registered, or none under the hook's name.
    Unregistered,
    /// An answer that breaks the decision's rules (or the caller's check).
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(budget_ms: u64, fallback: HookDecision) -> HookRef {
        HookRef { name: "tenant".into(), budget_ms, fallback }
    }

    #[test]
    fn a_hook_reference_is_checked_with_its_path() {
        let at = "listeners.web.http.routes[0].hook";
        let exists = |p: &str| p == "web";
        let path = |r: HookRef| r.check(at, exists).unwrap_err().issues[0].path.clone();
        assert!(hook(2, HookDecision::default()).check(at, exists).is_ok());
        assert!(hook(2, HookDecision { pool: Some("web".into()), hash_key: Some("k".into()), ..HookDecision::default() })
            .check(at, exists)
            .is_ok());
        assert_eq!(path(hook(0, HookDecision::default())), format!("{at}.budget_ms"));
        assert_eq!(path(hook(10_001, HookDecision::default())), format!("{at}.budget_ms"));
        assert_eq!(path(hook(2, HookDecision { pool: Some("nope".into()), ..HookDecision::default() })), format!("{at}.fallback.pool"));
        assert_eq!(
            path(hook(2, HookDecision { pool: Some("web".into()), deny: Some(403), ..HookDecision::default() })),
            format!("{at}.fallback")
        );
        assert_eq!(path(hook(2, HookDecision { deny: Some(302), ..HookDecision::default() })), format!("{at}.fallback"));
        assert_eq!(path(HookRef { name: String::new(), ..hook(2, HookDecision::default()) }), format!("{at}.name"));
    }
}
