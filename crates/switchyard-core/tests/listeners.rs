//! Listener address clashes inside one configuration.

mod common;

use common::*;
use serde_json::json;
use switchyard_core::EngineConfig;

/// Two listeners of one configuration on the same address: with SO_REUSEPORT
/// both would bind and the kernel would spread connections between two
/// different pools at random. The configuration must be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_listener_address_is_rejected() {
    let a = id_backend(1).await;
    let port = refused_addr();
    let wildcard = format!("0.0.0.0:{}", port.port());
    for second in [port.to_string(), wildcard] {
        let v = json!({"workers": 2,
            "listeners": [listener("a", &port.to_string(), "pa", 60_000, "never"), listener("b", &second, "pa", 60_000, "never")],
            "pools": [pool("pa", 0, &[(a.addr, 1, false)])]});
        let err = EngineConfig::from_json(&v.to_string()).expect_err("overlapping listeners must be refused");
        assert!(err.message.contains("listeners.b.address") && err.message.contains(&second), "{err}");
    }
}
