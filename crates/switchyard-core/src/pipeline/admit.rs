//! A listener's side of a connection's start and end: admission (allow and
//! deny lists, per-source limits; see `crate::admission`), the counts of open
//! connections (the listener's and the engine's), and the room their
//! `max_connections` leave to the accept loops.
//!
//! Contract: every connection counted by [`opened`] is closed with exactly
//! one [`closed`]; one admitted by [`admit`] passes the same address to it.

use crate::admission::Refusal;
use crate::events::EventLog;
use crate::shared::Shared;
use crate::snapshot::Listener;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

/// Count a connection accepted on `listener` (before its task runs, so the
/// accept loops' `max_connections` checks see it at once).
pub fn opened(shared: &Shared, listener: &Listener) {
    shared.open.fetch_add(1, Relaxed);
    listener.stats.accepted.fetch_add(1, Relaxed);
    listener.stats.active.fetch_add(1, Relaxed);
}

/// Count a connection adopted established (an upgrade's hand-over): open,
/// but not accepted here. Closed with [`closed`] (`admitted: false`).
pub fn adopted(shared: &Shared, listener: &Listener) {
    shared.open.fetch_add(1, Relaxed);
    listener.stats.active.fetch_add(1, Relaxed);
}

/// Admit a client from `peer` (allow/deny, per-source limits). A refusal is
/// counted, reported, and ends the connection: the caller closes it and
/// calls [`closed`] with `admitted: false`.
pub fn admit(listener: &Listener, name: &str, peer: SocketAddr, events: &EventLog) -> bool {
    let Some(a) = &listener.admission else { return true };
    let Err(why) = a.enter(peer.ip()) else { return true };
    let s = &listener.stats;
    let counter = match why {
        Refusal::Denied => &s.refused_denied,
        Refusal::SourceLimit => &s.refused_source_limit,
        Refusal::Rate => &s.refused_rate,
    };
    s.refused(counter, name, format_args!("{} refused: {}", peer.ip(), why.reason()), events);
    false
}

/// A connection counted by [`opened`] ended; `admitted`: [`admit`] counted
/// it on its source `ip`.
pub fn closed(shared: &Shared, listener: &Listener, ip: IpAddr, admitted: bool) {
    shared.open.fetch_sub(1, Relaxed);
    if shared.waiting_for_room.load(Relaxed) > 0 {
        shared.room_freed.notify_waiters();
    }
    listener.stats.active.fetch_sub(1, Relaxed);
    if listener.max_connections.is_some() {
        listener.stats.freed.notify_waiters();
    }
    if let Some(a) = listener.admission.as_ref().filter(|_| admitted) {
        a.leave(ip);
    }
}

/// Whether `listener` is at its `max_connections` now.
pub fn full(listener: &Listener) -> bool {
    listener.max_connections.is_some_and(|m| listener.stats.active.load(Relaxed) >= m)
}

/// Whether the engine is at its connection limit now.
pub fn engine_full(shared: &Shared) -> bool {
    shared.open.load(Relaxed) >= shared.max_open.load(Relaxed)
}
