//! Who may connect to a listener: allow and deny lists by CIDR, and per
//! source address a connection limit and a connection rate (a token
//! bucket), as HAProxy's `tcp-request connection reject` with stick tables
//! (`src_conn_cur`, `src_conn_rate`) and nginx's `allow`/`deny`,
//! `limit_conn` do. A refused connection is closed before anything reaches
//! a backend.
//!
//! The per-source table lives in the registry by listener name, so a reload
//! keeps the counts. It holds an entry per source with connections open or a
//! bucket not yet refilled; idle entries are swept when a shard grows.

use crate::cidr::Cidr;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A listener's admission rules (built from its config).
#[derive(Debug)]
pub struct Admission {
    /// Only these sources may connect (`None`: any).
    pub allow: Option<Vec<Cidr>>,
    /// These sources may not (checked first).
    pub deny: Vec<Cidr>,
    /// Most connections open at once per source (0: no limit).
    pub per_source_max: u32,
    /// New connections per source: a bucket of `burst` tokens refilled at
    /// `burst` per `per` (`None`: no limit).
    pub rate: Option<Rate>,
    /// Per-source counts, shared across snapshots.
    pub table: std::sync::Arc<SourceTable>,
}

/// A connection-rate limit: `connections` per `per`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub connections: u32,
    pub per: Duration,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Denied by `deny`, or not in `allow`.
    Denied,
    /// The source has `per_source.max_connections` open.
    SourceLimit,
    /// The source opened connections faster than `per_source.rate`.
    Rate,
}

impl Refusal {
    /// For logs and events.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Denied => "denied by the listener's allow/deny lists",
            Refusal::SourceLimit => "over the per-source connection limit",
            Refusal::Rate => "over the per-source connection rate",
        }
    }
}

impl Admission {
    /// Admit a connection from `ip` (counting it on its source) or say why not.
    /// An admitted connection must be handed back with [`Admission::leave`].
    pub fn enter(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.deny.iter().any(|c| c.contains(ip)) || self.allow.as_ref().is_some_and(|a| !a.iter().any(|c| c.contains(ip))) {
            return Err(Refusal::Denied);
        }
        if self.per_source_max == 0 && self.rate.is_none() {
            return Ok(());
        }
        self.table.enter(ip, self.per_source_max, self.rate, Instant::now())
    }

    /// A connection admitted by [`Admission::enter`] closed.
    pub fn leave(&self, ip: IpAddr) {
        if self.per_source_max != 0 || self.rate.is_some() {
            self.table.leave(ip);
        }
    }
}

/// Connections open and rate tokens per source address, in shards.
#[derive(Debug)]
pub struct SourceTable {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    open: u32,
    tokens: f64,
    at: Instant,
}

const SHARDS: usize = 16;
/// A shard holding more entries than this sweeps its idle ones first.
const SWEEP_AT: usize = 4096;
/// Most entries a shard keeps: beyond, an idle entry is forgotten for a new
/// source (its bucket starts full again), so sources rotating their address
/// cannot grow the table without bound.
const MAX_PER_SHARD: usize = 16_384;

/// One shard: its entries, and the size at which it sweeps next (twice what
/// the last sweep kept, so sweeping costs O(1) per new source amortised).
/// At most [`MAX_PER_SHARD`] entries (16 shards: ~12 MB per table at most).
#[derive(Debug)]
struct Shard {
    map: HashMap<IpAddr, Source>,
    sweep_at: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { map: HashMap::new(), sweep_at: SWEEP_AT }
    }
}

impl Shard {
    /// Make room before `ip`'s entry is created: sweep the idle entries
    /// `idle` accepts when the shard has grown enough, forget one at the cap.
    fn room_for(&mut self, ip: IpAddr, idle: impl Fn(&Source) -> bool) {
        if self.map.contains_key(&ip) {
            return;
        }
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, s| s.open > 0 || !idle(s));
            self.sweep_at = (self.map.len() * 2).max(SWEEP_AT);
        }
        // At the cap (no sweep comes: the next is at twice the cap), one idle entry goes.
        if self.map.len() >= MAX_PER_SHARD {
            if let Some(k) = self.map.iter().find(|(_, s)| s.open == 0).map(|(k, _)| *k) {
                self.map.remove(&k);
            }
        }
    }
}

impl Default for SourceTable {
    fn default() -> Self {
        SourceTable { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), hasher: Default::default() }
    }
}

impl SourceTable {
    fn shard(&self, ip: &IpAddr) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(ip) as usize % SHARDS]
    }

    fn enter(&self, ip: IpAddr, max: u32, rate: Option<Rate>, now: Instant) -> Result<(), Refusal> {
        let mut shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        shard.room_for(ip, |s| refilled(s, rate, now));
        let burst = rate.map_or(0.0, |r| r.connections as f64);
        let s = shard.map.entry(ip).or_insert(Source { open: 0, tokens: burst, at: now });
        if max != 0 && s.open >= max {
            return Err(Refusal::SourceLimit);
        }
        if rate.is_some_and(|r| !spend(s, r, now)) {
            return Err(Refusal::Rate);
        }
        s.open += 1;
        Ok(())
    }

    /// Take one token from `ip`'s bucket (a rate class: nothing is held
    /// open); false when the bucket is empty.
    pub fn take(&self, ip: IpAddr, rate: Rate, now: Instant) -> bool {
        let mut shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        shard.room_for(ip, |s| refilled(s, Some(rate), now));
        let s = shard.map.entry(ip).or_insert(Source { open: 0, tokens: rate.connections as f64, at: now });
        spend(s, rate, now)
    }

    fn leave(&self, ip: IpAddr) {
        let mut shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shard.map.get_mut(&ip) {
            s.open = s.open.saturating_sub(1);
        }
    }

    /// Connections open from `ip` now.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner()).map.get(&ip).map_or(0, |s| s.open)
    }
}

/// Take one token after refilling; false (nothing taken) when none is left.
fn spend(s: &mut Source, r: Rate, now: Instant) -> bool {
    refill(s, r, now);
    if s.tokens < 1.0 {
        return false;
    }
    s.tokens -= 1.0;
    true
}

/// Add the tokens earned since the last look, up to the burst.
fn refill(s: &mut Source, r: Rate, now: Instant) {
    let per_token = r.per.as_secs_f64() / r.connections.max(1) as f64;
    let earned = now.saturating_duration_since(s.at).as_secs_f64() / per_token;
    s.tokens = (s.tokens + earned).min(r.connections as f64);
    s.at = now;
}

/// Whether an idle entry has nothing left to remember (its bucket is full again).
fn refilled(s: &Source, rate: Option<Rate>, now: Instant) -> bool {
    rate.is_none_or(|r| {
        let mut copy = *s;
        refill(&mut copy, r, now);
        copy.tokens >= r.connections as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn admission(allow: Option<&[&str]>, deny: &[&str], max: u32, rate: Option<Rate>) -> Admission {
        let cidrs = |l: &[&str]| l.iter().map(|c| Cidr::parse(c).unwrap()).collect::<Vec<_>>();
        Admission { allow: allow.map(cidrs), deny: cidrs(deny), per_source_max: max, rate, table: Arc::default() }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_wins_over_allow_and_allow_is_exclusive() {
        let a = admission(Some(&["10.0.0.0/8"]), &["10.6.6.0/24"], 0, None);
        assert_eq!(a.enter(ip("10.1.2.3")), Ok(()));
        assert_eq!(a.enter(ip("10.6.6.1")), Err(Refusal::Denied));
        assert_eq!(a.enter(ip("192.0.2.1")), Err(Refusal::Denied));
    }

    #[test]
    fn a_source_over_its_limit_is_refused_until_one_closes() {
        let a = admission(None, &[], 2, None);
        let (one, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!((a.enter(one), a.enter(one), a.enter(one)), (Ok(()), Ok(()), Err(Refusal::SourceLimit)));
        assert_eq!(a.enter(other), Ok(()), "another source is not affected");
        a.leave(one);
        assert_eq!(a.enter(one), Ok(()));
        assert_eq!(a.table.open(one), 2);
    }

    #[test]
    fn the_rate_bucket_allows_a_burst_then_refills_with_time() {
        let t = SourceTable::default();
        let r = Some(Rate { connections: 3, per: Duration::from_secs(3) });
        let (src, t0) = (ip("198.51.100.4"), Instant::now());
        for _ in 0..3 {
            assert_eq!(t.enter(src, 0, r, t0), Ok(()));
        }
        assert_eq!(t.enter(src, 0, r, t0), Err(Refusal::Rate));
        // One token a second.
        assert_eq!(t.enter(src, 0, r, t0 + Duration::from_millis(1100)), Ok(()));
        assert_eq!(t.enter(src, 0, r, t0 + Duration::from_millis(1200)), Err(Refusal::Rate));
    }

    #[test]
    fn idle_sources_are_swept_when_a_shard_fills() {
        let t = SourceTable::default();
        let now = Instant::now();
        for i in 0..(SWEEP_AT * SHARDS * 2) as u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.enter(src, 1, None, now).unwrap();
            t.leave(src);
        }
        let held: usize = t.shards.iter().map(|s| s.lock().unwrap().map.len()).sum();
        assert!(held <= SWEEP_AT * SHARDS, "{held} entries kept for idle sources");
    }

    #[test]
    fn sources_that_stay_limited_are_capped_per_shard() {
        // A long period: no bucket refills during the test, so nothing is idle to sweep.
        let t = SourceTable::default();
        let (r, now) = (Rate { connections: 1, per: Duration::from_secs(3600) }, Instant::now());
        for i in 0..(MAX_PER_SHARD * SHARDS + 5000) as u32 {
            t.take(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), r, now);
        }
        let most = t.shards.iter().map(|s| s.lock().unwrap().map.len()).max().unwrap();
        assert!(most <= MAX_PER_SHARD, "a shard holds {most} entries");
    }
}
