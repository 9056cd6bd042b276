//! The queue of a pool whose backends are full: HAProxy's `maxconn` on
//! servers with `maxqueue` and `timeout queue`. A client that finds every
//! backend it could use at its `max_connections` waits here, first come
//! first served, until a slot frees or the queue timeout passes; a full
//! queue refuses at once.
//!
//! The state is kept by pool name in the registry, so a snapshot swap keeps
//! the waiters and the counts.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Waiters and counters of one pool's queue.
#[derive(Debug, Default)]
pub struct PoolQueue {
    /// Clients waiting now.
    pub waiting: AtomicU64,
    /// Clients that waited (served or refused) since start.
    pub queued: AtomicU64,
    /// Their total wait, in microseconds.
    pub wait_us: AtomicU64,
    /// Refused after waiting the whole queue timeout.
    pub timeouts: AtomicU64,
    /// Refused at once: the queue was full.
    pub full: AtomicU64,
    /// Signalled when a backend slot frees; wakes the longest waiter first.
    released: Notify,
}

/// Why a queued client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max` clients were waiting already.
    Full,
    /// No slot freed within the timeout.
    Timeout,
}

/// How often a waiter looks again without a wake-up: a slot freed by a
/// connection of an older snapshot's pool wakes nobody in this one.
const RECHECK: Duration = Duration::from_millis(100);

impl PoolQueue {
    /// A copy of the counters.
    pub fn report(&self) -> crate::stats::QueueReport {
        crate::stats::QueueReport {
            waiting: self.waiting.load(Relaxed),
            queued: self.queued.load(Relaxed),
            wait_ms: self.wait_us.load(Relaxed) as f64 / 1000.0,
            timeouts: self.timeouts.load(Relaxed),
            full: self.full.load(Relaxed),
        }
    }

    /// A slot of a backend freed: wake the longest waiter, if any.
    pub fn released(&self) {
        if self.waiting.load(Relaxed) > 0 {
            self.released.notify_one();
        }
    }

    /// Wait (at most `max` waiters, each at most `timeout`) until `room()`
    /// says a backend can take one more client.
    pub async fn wait(&self, max: u64, timeout: Duration, room: impl Fn() -> bool) -> Result<(), Refused> {
        if self.waiting.fetch_add(1, Relaxed) >= max {
            self.waiting.fetch_sub(1, Relaxed);
            self.full.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        }
        let start = Instant::now();
        let deadline = start + timeout;
        let outcome = loop {
            // Registered before looking, so a release between the look and the wait is not lost.
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if room() {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                self.timeouts.fetch_add(1, Relaxed);
                break Err(Refused::Timeout);
            }
            let _ = tokio::time::timeout((deadline - now).min(RECHECK), notified).await;
        };
        self.waiting.fetch_sub(1, Relaxed);
        self.queued.fetch_add(1, Relaxed);
        self.wait_us.fetch_add(start.elapsed().as_micros() as u64, Relaxed);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_waiter_is_served_when_a_slot_frees_and_refused_after_the_timeout() {
        let q = Arc::new(PoolQueue::default());
        let room = Arc::new(AtomicBool::new(false));
        let (q2, r2) = (Arc::clone(&q), Arc::clone(&room));
        let waiter = tokio::spawn(async move { q2.wait(4, Duration::from_secs(30), || r2.load(Relaxed)).await });
        while q.waiting.load(Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        room.store(true, Relaxed);
        q.released();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(q.wait(4, Duration::from_millis(20), || false).await, Err(Refused::Timeout));
        assert_eq!((q.queued.load(Relaxed), q.timeouts.load(Relaxed), q.waiting.load(Relaxed)), (2, 1, 0));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let q = PoolQueue::default();
        assert_eq!(q.wait(0, Duration::from_secs(30), || false).await, Err(Refused::Full));
        assert_eq!((q.full.load(Relaxed), q.waiting.load(Relaxed)), (1, 0));
    }
}
