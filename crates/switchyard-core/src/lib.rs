//! Switchyard's data plane: TCP listeners, backend selection, connection
//! forwarding (userspace copy and splice(2)), and the atomic counters the
//! control plane pulls. Pure Rust: no napi here, so `cargo test -p
//! switchyard-core` runs without Node.
//!
//! The control plane (TypeScript) decides *tables*; this crate executes them:
//! an [`config::EngineConfig`] becomes one immutable [`snapshot::Snapshot`],
//! swapped in atomically by [`engine::Engine::update`]. The per-connection
//! path does one atomic load of that snapshot and never calls out.

pub mod accept;
pub mod config;
pub mod connect;
pub mod engine;
pub mod error;
pub mod events;
pub mod forward;
pub mod health;
pub mod limits;
pub mod listener;
pub mod net;
pub mod select;
pub mod snapshot;
pub mod stats;
pub mod tls;
pub mod tracker;
pub mod workers;

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::{Error, ErrorCode};
