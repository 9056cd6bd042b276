//! Switchyard's data plane: TCP listeners, a connection pipeline (frontend →
//! route → upstream → forward), backend selection, forwarding (userspace
//! copy and splice(2)), and the atomic counters the control plane pulls.
//! Pure Rust: no napi here, so `cargo test -p switchyard-core` runs without
//! Node.
//!
//! The control plane (TypeScript) decides *tables*; this crate executes them:
//! an [`EngineConfig`] becomes one immutable snapshot, swapped in atomically
//! by [`Engine::update`] (or [`Engine::update_pool`] for one pool). The
//! per-connection path does one atomic load of that snapshot and never calls
//! out.
//!
//! The public API is what the binding and the tests need: [`Engine`], the
//! configuration ([`config`]), the data plane's facts ([`catalog`]), errors,
//! reports ([`stats`], [`EventBatch`], [`AccessBatch`], [`Trace`]), [`plan`] and opt-in [`hook`]s. Everything else is
//! private; the feature `internals` opens the selection internals to the
//! criterion benches.
#![deny(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod error;
pub mod plan;
pub mod stats;

#[allow(unsafe_code)] // registers a shared listening socket with each worker's reactor
mod accept;
mod access;
mod admission;
mod backend;
mod cidr;
mod engine;
mod events;
mod forward;
pub mod handoff;
mod health;
#[allow(unsafe_code)] // malloc_trim
mod heap;
pub mod hook;
mod http;
#[allow(unsafe_code)] // getrlimit/setrlimit
mod limits;
mod listeners;
#[allow(unsafe_code)] // setsockopt(TCP_DEFER_ACCEPT)
mod net;
pub mod notify;
mod pipeline;
mod proxy_protocol;
mod queue;
mod rules;
mod shared;
mod tls;
mod trace;
mod tracker;
mod udp;
mod workers;

/// Selection internals, public only for the criterion benches (`--features internals`).
#[cfg(feature = "internals")]
pub mod registry;
#[cfg(not(feature = "internals"))]
mod registry;
/// Selection internals, public only for the criterion benches (`--features internals`).
#[cfg(feature = "internals")]
pub mod select;
#[cfg(not(feature = "internals"))]
mod select;
/// The snapshot, public only for the criterion benches (`--features internals`).
#[cfg(feature = "internals")]
pub mod snapshot;
#[cfg(not(feature = "internals"))]
mod snapshot;

pub use accept::SLACK as ACCEPT_SLACK;
pub use access::{AccessBatch, AccessRecord, Ended};
pub use config::EngineConfig;
pub use engine::{Engine, HealthUpdate};
pub use error::{Error, ErrorCode, Issue};
pub use events::{Event, EventBatch};
pub use trace::{Trace, TraceFilter};

#[cfg(test)]
mod binding_export;
#[cfg(test)]
mod fuzz;
