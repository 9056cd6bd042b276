//! Stage 2, route: decide where a received connection goes — the first
//! policy rule that matches (forward to its pool, or close: denied or over
//! its rate class), else a pool by SNI or the default — and the selection
//! key the pool's algorithm will map (a `u64`, so every algorithm works
//! unchanged whatever the key is made of). Pure but for the rate buckets: no
//! I/O, and the table always has a default pool.

use crate::hook::{Hook, HookRequest};
use crate::http::stats::RouteStats;
pub use crate::rules::l4::NO_RULE;
use crate::rules::l4::{first, Action, Facts, L4Rule};
use crate::shared::Shared;
use crate::snapshot::{Pool, RouteTable};
use std::sync::Arc;

/// A rule of the published snapshot.
pub type Rule = L4Rule<Arc<Pool>>;

/// The decision.
pub enum Decision<'a> {
    Forward(Routed<'a>),
    /// Closed by `rule`: denied, or (`limited`) over its rate class.
    Refused {
        rule: &'a Rule,
        limited: bool,
    },
}

/// Where a connection goes.
pub struct Routed<'a> {
    pub pool: &'a Pool,
    /// The selection key for the pool's algorithm.
    pub key: u64,
    /// The index of the rule that decided ([`NO_RULE`]: SNI routes or the
    /// default pool). An index, not a reference: a connection keeps it for its
    /// access-log record, and its task's size is a benchmark target.
    pub rule: u16,
}

/// Route a connection by what is known of it, counting on the rule that decides.
#[inline]
pub fn route<'a>(table: &'a RouteTable, f: &Facts) -> Decision<'a> {
    let Some((index, rule)) = first(&table.rules, f) else {
        let pool = table.pool_for(f.sni);
        return Decision::Forward(Routed { pool, key: pool.key_of(f.client), rule: NO_RULE });
    };
    let stats: &RouteStats = &rule.stats;
    if rule.rate.as_ref().is_some_and(|r| !r.admit(f.client.ip())) {
        stats.rate_limited();
        return Decision::Refused { rule, limited: true };
    }
    match &rule.action {
        Action::Deny => {
            stats.denied();
            Decision::Refused { rule, limited: false }
        }
        Action::Pool(pool) => {
            // (A rule with a hook counts once its hook has decided, see `ask_hook`.)
            if rule.hook.is_none() {
                stats.connected();
            }
            Decision::Forward(Routed { pool, key: rule.key_of(f).unwrap_or_else(|| pool.key_of(f.client)), rule: index })
        }
    }
}

/// What a rule's hook decided for a connection.
pub enum Hooked<'a> {
    /// Close it (the hook, or its fallback, denied it).
    Closed,
    /// Connect: to this pool instead (`None`: the rule's), by this key (`None`: the rule's).
    Go { pool: Option<&'a Pool>, key: Option<u64> },
}

/// Ask `rule`'s hook about a connection: it may choose another pool of the
/// listener's table (one it does not route to is invalid: the fallback
/// applies), close it, or set the key.
pub async fn ask_hook<'a>(shared: &Shared, listener: &str, table: &'a RouteTable, rule: &Rule, hook: &Hook, f: &Facts<'_>) -> Hooked<'a> {
    let request = HookRequest {
        listener: listener.to_owned(),
        rule: rule.name.to_string(),
        client: f.client.to_string(),
        sni: f.sni.map(str::to_owned),
        dst_port: (f.port != 0).then_some(f.port),
        ..HookRequest::default()
    };
    let (d, _) = shared.hooks.ask_with(hook, request, |d| d.pool.as_deref().is_none_or(|p| table.pool_named(p).is_some())).await;
    if d.deny.is_some() {
        rule.stats.denied();
        return Hooked::Closed;
    }
    rule.stats.connected();
    Hooked::Go {
        pool: d.pool.as_deref().and_then(|p| table.pool_named(p)).map(|p| &**p),
        key: d.hash_key.map(|k| crate::select::bytes_key(k.as_bytes())),
    }
}
