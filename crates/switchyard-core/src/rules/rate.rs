//! Rate classes: named per-client-address token buckets that rules of TCP
//! listeners (connections) and HTTP routes (requests) count against. A
//! class's buckets live in the registry by name, so a reload keeps them and
//! every rule naming the class shares them.

use super::config::RateBy;
use crate::admission::{Rate, SourceTable};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One class, as rules hold it.
#[derive(Debug)]
pub struct RateClass {
    pub name: Arc<str>,
    rate: Rate,
    by: RateBy,
    table: Arc<SourceTable>,
}

impl RateClass {
    /// `limit` per `per`, counted `by`, with its buckets in `table`.
    pub fn new(name: &str, limit: u32, per: Duration, by: RateBy, table: Arc<SourceTable>) -> RateClass {
        RateClass { name: Arc::from(name), rate: Rate { connections: limit, per }, by, table }
    }

    /// Count one connection or request from `ip`; false: over the rate.
    pub fn admit(&self, ip: IpAddr) -> bool {
        // `All`: every client shares the bucket of one address no client has.
        let key = match self.by {
            RateBy::Source => ip,
            RateBy::All => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        self.table.take(key, self.rate, Instant::now())
    }

    /// Whole seconds until a token is back (for `Retry-After`), at least 1.
    pub fn retry_after_s(&self) -> u64 {
        (self.rate.per.as_secs_f64() / self.rate.connections.max(1) as f64).ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_allows_its_burst_per_source() {
        let c = RateClass::new("login", 2, Duration::from_secs(60), RateBy::Source, Arc::default());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!((c.admit(a), c.admit(a), c.admit(a)), (true, true, false));
        assert!(c.admit(b), "another source has its own bucket");
        assert_eq!(c.retry_after_s(), 30);
        let all = RateClass::new("all", 2, Duration::from_secs(60), RateBy::All, Arc::default());
        assert_eq!(
            (all.admit(a), all.admit(b), all.admit("192.0.2.3".parse().unwrap())),
            (true, true, false),
            "one bucket for every source"
        );
    }
}
