//! Stage 2, route: decide where a received connection goes — the first
//! policy rule that matches (forward to its pool, or close: denied or over
//! its rate class), else a pool by SNI or the default — and the selection
//! key the pool's algorithm will map (a `u64`, so every algorithm works
//! unchanged whatever the key is made of). Pure but for the rate buckets: no
//! I/O, and the table always has a default pool.

use crate::http::stats::RouteStats;
pub use crate::rules::l4::NO_RULE;
use crate::rules::l4::{first, Action, Facts, L4Rule};
use crate::snapshot::{Pool, RouteTable};
use std::sync::Arc;

/// A rule of the published snapshot.
pub type Rule = L4Rule<Arc<Pool>>;

/// The decision.
pub enum Decision<'a> {
    Forward(Routed<'a>),
    /// Closed by `rule`: denied, or over its rate class (its counters tell which).
    Refused {
        rule: &'a Rule,
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
        return Decision::Refused { rule };
    }
    match &rule.action {
        Action::Deny => {
            stats.denied();
            Decision::Refused { rule }
        }
        Action::Pool(pool) => {
            stats.connected();
            Decision::Forward(Routed { pool, key: rule.key_of(f).unwrap_or_else(|| pool.key_of(f.client)), rule: index })
        }
    }
}
