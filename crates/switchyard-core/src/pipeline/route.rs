//! Stage 2, route: decide where a received connection goes — a pool from
//! the listener's compiled route table, and the selection key the pool's
//! algorithm will map (a `u64`, so an L7 route can later key by a header or
//! a cookie and every algorithm works unchanged). Pure: no I/O, no failure
//! (the table always has a default pool).

use crate::snapshot::{Pool, RouteTable};
use std::net::SocketAddr;

/// The decision.
pub struct Routed<'a> {
    pub pool: &'a Pool,
    /// The selection key for the pool's algorithm.
    pub key: u64,
}

/// Route a client from `client` whose frontend saw server name `sni`.
#[inline]
pub fn route<'a>(table: &'a RouteTable, sni: Option<&str>, client: SocketAddr) -> Routed<'a> {
    let pool = table.pool_for(sni);
    Routed { pool, key: pool.key_of(client) }
}
