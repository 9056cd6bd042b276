//! Policy rules of TCP listeners, compiled: ordered match → action entries
//! evaluated before the listener's SNI routes and default pool, in the same
//! `RouteTable` (one routing mechanism). TypeScript validates and compiles
//! `policy.rules` into [`config::L4RuleConfig`]; an HTTP listener's rules
//! are routes of its HTTP route table instead (`crate::http::route`).
//! Rate classes ([`rate`]) are shared by both kinds.
//!
//! Matching is pure (no I/O, no allocation): [`l4::Facts`] in, the first
//! rule whose conditions all hold out.

pub mod config;
pub mod l4;
pub mod rate;
pub mod value;
