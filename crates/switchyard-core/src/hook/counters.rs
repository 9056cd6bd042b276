//! Per-hook counters (by name, in the registry: they outlive snapshots) and
//! the compiled form of a [`HookRef`] that carries them to the asker.

use super::{HookOutcome, HookRef};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A hook as the tables hold it: its configuration, budget and counters.
#[derive(Debug)]
pub struct Hook {
    pub config: HookRef,
    pub budget: Duration,
    pub counters: Arc<HookCounters>,
}

/// How one hook's calls ended. `calls` = `answered` + the fallbacks.
#[derive(Debug, Default)]
pub struct HookCounters {
    calls: AtomicU64,
    answered: AtomicU64,
    timeout: AtomicU64,
    error: AtomicU64,
    full: AtomicU64,
    unregistered: AtomicU64,
    invalid: AtomicU64,
    late: AtomicU64,
}

impl HookCounters {
    /// Count one call that ended so.
    pub fn ended(&self, outcome: HookOutcome) {
        self.calls.fetch_add(1, Relaxed);
        let c = match outcome {
            HookOutcome::Answered => &self.answered,
            HookOutcome::Timeout => &self.timeout,
            HookOutcome::Error => &self.error,
            HookOutcome::Full => &self.full,
            HookOutcome::Unregistered => &self.unregistered,
            HookOutcome::Invalid => &self.invalid,
        };
        c.fetch_add(1, Relaxed);
    }

    /// An answer arrived after its call had given up (dropped).
    pub fn late(&self) {
        self.late.fetch_add(1, Relaxed);
    }

    fn report(&self, name: &str) -> HookReport {
        HookReport {
            name: name.to_owned(),
            calls: self.calls.load(Relaxed),
            answered: self.answered.load(Relaxed),
            timeout: self.timeout.load(Relaxed),
            error: self.error.load(Relaxed),
            full: self.full.load(Relaxed),
            unregistered: self.unregistered.load(Relaxed),
            invalid: self.invalid.load(Relaxed),
            late: self.late.load(Relaxed),
        }
    }
}

/// One hook's counts since start. The fallback was used for `timeout`,
/// `error`, `full`, `unregistered` and `invalid`; `late` answers came after
/// their call's budget (they are not in `calls`' split).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HookReport {
    pub name: String,
    pub calls: u64,
    pub answered: u64,
    pub timeout: u64,
    pub error: u64,
    pub full: u64,
    pub unregistered: u64,
    pub invalid: u64,
    pub late: u64,
}

/// Counters of every hook named so far, by name. A hook a reload removed
/// keeps its counts (hook names are few; counters are monotonic for Prometheus).
#[derive(Debug, Default)]
pub struct HookTable {
    by_name: Mutex<HashMap<String, Arc<HookCounters>>>,
}

impl HookTable {
    /// The counters of hook `name`, created on first use.
    pub fn counters(&self, name: &str) -> Arc<HookCounters> {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(m.entry(name.to_owned()).or_default())
    }

    /// Compile a rule's hook reference (off the hot path, when tables are built).
    pub fn hook(&self, r: &HookRef) -> Hook {
        Hook { config: r.clone(), budget: Duration::from_millis(r.budget_ms.max(1)), counters: self.counters(&r.name) }
    }

    /// Every hook's counts, by name.
    pub fn reports(&self) -> Vec<HookReport> {
        let m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<HookReport> = m.iter().map(|(n, c)| c.report(n)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
