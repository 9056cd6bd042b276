//! "What moves if I change this?": map a sample of client keys through a
//! pool before and after a change, and report each backend's share and the
//! fraction of keys whose backend changed. Runs the real selectors, so the
//! answer is what the data plane would do.

use crate::catalog::Algorithm;
use crate::config::PoolConfig;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::select::PickContext;
use crate::snapshot::Pool;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Default number of synthetic keys.
pub const DEFAULT_SAMPLES: u32 = 100_000;

/// A plan request: the pool before and after the change, and the keys.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub before: PoolConfig,
    pub after: PoolConfig,
    /// Client keys (`ip` or `ip:port`); absent → `samples` synthetic keys.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    #[serde(default)]
    pub samples: Option<u32>,
    /// Also return the backend of every key, before and after.
    #[serde(default)]
    pub assignments: bool,
}

/// One backend's share before or after.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Share {
    pub address: String,
    /// Fraction of sample keys it receives (keyed algorithms) or its expected
    /// share of new connections (the others).
    pub share: f64,
}

/// The answer.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PlanReport {
    pub algorithm_before: Algorithm,
    pub algorithm_after: Algorithm,
    pub keys: usize,
    /// True when both algorithms map keys to backends.
    pub keyed: bool,
    /// Fraction of keys whose backend changed (keyed algorithms only).
    pub moved: Option<f64>,
    pub before: Vec<Share>,
    pub after: Vec<Share>,
    /// With `assignments`: per key, the backend address before and after (keyed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Vec<Assignment>>,
}

/// One key's backend address before and after (`None`: no backend).
pub type Assignment = (String, Option<String>, Option<String>);

/// Synthetic client `i`: spread over IPv4 space, deterministic.
pub fn synthetic_key(i: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000u32 ^ i.wrapping_mul(0x9E37_79B9));
    SocketAddr::new(IpAddr::V4(ip), 1024 + (i % 64_000) as u16)
}

fn parse_key(s: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| Error::config(format!("keys: expected an IP address or ip:port, got {s:?}")))
}

/// Compute the plan.
pub fn plan(req: &PlanRequest) -> Result<PlanReport> {
    for (what, p) in [("before", &req.before), ("after", &req.after)] {
        // Report `before.table_size`, not `pools.<name>.table_size`.
        p.check().map_err(|e| {
            let prefix = format!("pools.{}", p.name);
            let issue = &e.issues[0];
            Error::config_at(issue.path.replacen(&prefix, what, 1), issue.message.clone())
        })?;
    }
    let keys: Vec<SocketAddr> = match &req.keys {
        Some(k) => k.iter().map(|s| parse_key(s)).collect::<Result<_>>()?,
        None => (0..req.samples.unwrap_or(DEFAULT_SAMPLES)).map(synthetic_key).collect(),
    };
    let registry = Registry::default();
    let (before, after) = (Pool::build(&req.before, &registry)?, Pool::build(&req.after, &registry)?);
    let keyed = before.algorithm().keyed() && after.algorithm().keyed();
    let mut moved = 0usize;
    let mut assignments = (req.assignments && keyed).then(|| Vec::with_capacity(keys.len()));
    let mut count_b = vec![0usize; before.backends.len()];
    let mut count_a = vec![0usize; after.backends.len()];
    if keyed {
        for &client in &keys {
            let ctx = |p: &Pool| PickContext { key: p.key_of(client), client };
            let (b, a) = (before.pick(&ctx(&before), &[], true), after.pick(&ctx(&after), &[], true));
            if let Some(i) = b {
                count_b[i] += 1;
            }
            if let Some(i) = a {
                count_a[i] += 1;
            }
            let (ab, aa) = (b.map(|i| before.backends[i].addr), a.map(|i| after.backends[i].addr));
            if ab != aa {
                moved += 1;
            }
            if let Some(v) = assignments.as_mut() {
                v.push((client.to_string(), ab.map(|x| x.to_string()), aa.map(|x| x.to_string())));
            }
        }
    }
    let shares = |p: &Pool, counts: &[usize]| -> Vec<Share> {
        let live = p.shares();
        p.backends
            .iter()
            .enumerate()
            .map(|(i, b)| Share {
                address: b.addr.to_string(),
                share: if keyed { counts[i] as f64 / keys.len().max(1) as f64 } else { live[i] },
            })
            .collect()
    };
    Ok(PlanReport {
        algorithm_before: before.algorithm(),
        algorithm_after: after.algorithm(),
        keys: keys.len(),
        keyed,
        moved: keyed.then(|| moved as f64 / keys.len().max(1) as f64),
        before: shares(&before, &count_b),
        after: shares(&after, &count_a),
        assignments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(algorithm: &str, n: usize) -> PoolConfig {
        let backends: Vec<String> = (1..=n).map(|i| format!(r#"{{"address":"10.0.0.{i}:80","weight":1,"backup":false}}"#)).collect();
        serde_json::from_str(&format!(
            r#"{{"name":"p","algorithm":"{algorithm}","connect_timeout_ms":100,"retries":2,"backends":[{}]}}"#,
            backends.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn ring_moves_a_quarter_and_modulo_moves_most() {
        let ring = plan(&PlanRequest {
            before: pool("consistent_hash", 3),
            after: pool("consistent_hash", 4),
            keys: None,
            samples: None,
            assignments: false,
        })
        .unwrap();
        let moved = ring.moved.unwrap();
        assert!((0.18..=0.28).contains(&moved), "ring moved {moved}");
        let modulo =
            plan(&PlanRequest { before: pool("ip_hash", 3), after: pool("ip_hash", 4), keys: None, samples: None, assignments: false })
                .unwrap();
        assert!(modulo.moved.unwrap() > 0.5, "ip_hash moved {:?}", modulo.moved);
        assert_eq!(modulo.keys, DEFAULT_SAMPLES as usize);
    }

    #[test]
    fn unkeyed_algorithms_report_shares_without_moves() {
        let r = plan(&PlanRequest {
            before: pool("round_robin", 2),
            after: pool("round_robin", 4),
            keys: None,
            samples: Some(10),
            assignments: false,
        })
        .unwrap();
        assert!(!r.keyed && r.moved.is_none());
        assert_eq!(r.after.iter().map(|s| s.share).collect::<Vec<_>>(), vec![0.25; 4]);
    }

    #[test]
    fn explicit_keys_and_bad_keys() {
        let keys = Some(vec!["192.0.2.1".to_owned(), "192.0.2.2:5000".to_owned()]);
        let r =
            plan(&PlanRequest { before: pool("maglev", 2), after: pool("maglev", 2), keys, samples: None, assignments: false }).unwrap();
        assert_eq!((r.keys, r.moved), (2, Some(0.0)));
        let bad = Some(vec!["not-an-ip".to_owned()]);
        let e = plan(&PlanRequest { before: pool("maglev", 2), after: pool("maglev", 2), keys: bad, samples: None, assignments: false })
            .unwrap_err();
        assert!(e.message.contains("not-an-ip"));
    }
}
