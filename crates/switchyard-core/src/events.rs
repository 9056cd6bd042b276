//! Data-plane events (passive ejections, accept errors) for the control
//! plane, in a bounded queue that TypeScript pulls. A stalled event loop can
//! never block the data plane or grow memory: when the queue is full, new
//! events are dropped and counted.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Most events held between two pulls.
pub const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Event {
    /// `ejected`, `ejection_skipped` (a backend's); `accept_error`,
    /// `proxy_refused`, `connection_refused` (a listener's: `pool` is empty
    /// and `address` is the listener's name).
    #[cfg_attr(test, ts(type = "\"ejected\" | \"ejection_skipped\" | \"accept_error\" | \"proxy_refused\" | \"connection_refused\""))]
    pub kind: &'static str,
    pub pool: String,
    pub address: String,
    pub reason: String,
    /// For `ejected`: how long the ejection lasts.
    pub duration_ms: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Event {
    pub fn new(kind: &'static str, (pool, address): (&str, &str), reason: String, duration_ms: u64) -> Self {
        Self { kind, pool: pool.to_owned(), address: address.to_owned(), reason, duration_ms, time_ms: wall_ms() }
    }
}

/// Milliseconds since the Unix epoch (the time events carry).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A batch handed to the control plane.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EventBatch {
    pub events: Vec<Event>,
    /// Events dropped since the previous pull because the queue was full.
    pub dropped: u64,
}

/// A bounded queue the control plane pulls: when full, new items are
/// dropped and counted, so a stalled event loop never blocks the data plane
/// nor grows its memory.
#[derive(Debug)]
pub struct Bounded<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl<T> Bounded<T> {
    /// A queue holding at most `capacity` items between two pulls.
    pub fn new(capacity: usize) -> Self {
        Self { queue: Mutex::new(VecDeque::new()), capacity, dropped: AtomicU64::new(0) }
    }

    /// Queue an item, or count it as dropped when full. Never blocks for
    /// long: the lock is held for a push.
    pub fn push(&self, item: T) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= self.capacity {
            self.dropped.fetch_add(1, Relaxed);
        } else {
            q.push_back(item);
        }
    }

    /// Take everything queued, and the count dropped since the last take.
    pub fn take(&self) -> (Vec<T>, u64) {
        let items = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner())).into();
        (items, self.dropped.swap(0, Relaxed))
    }
}

/// The data plane's event queue ([`CAPACITY`] events).
pub type EventLog = Bounded<Event>;

impl EventLog {
    /// An empty event queue.
    pub fn events() -> Self {
        Bounded::new(CAPACITY)
    }

    /// Take everything queued, as the batch the control plane pulls.
    pub fn drain(&self) -> EventBatch {
        let (events, dropped) = self.take();
        EventBatch { events, dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_counts_drops() {
        let log = EventLog::events();
        for _ in 0..CAPACITY + 10 {
            log.push(Event::new("ejected", ("p", "a"), String::new(), 1));
        }
        let b = log.drain();
        assert_eq!((b.events.len(), b.dropped), (CAPACITY, 10));
        assert_eq!(log.drain().events.len(), 0);
    }
}
