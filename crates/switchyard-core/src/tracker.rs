//! Counts live connections, in total (so `close()` can wait for them to
//! finish) and per worker (so a shared accept queue can favour the least
//! loaded worker).

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// One worker's live connections, alone on its cache line: each worker
/// writes its own counter on every connection, and the others read it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct WorkerCount(AtomicU64);

/// Live-connection counter with a wake-up when it reaches zero.
#[derive(Debug)]
pub struct ConnTracker {
    active: AtomicU64,
    idle: Notify,
    per_worker: Box<[WorkerCount]>,
}

impl Default for ConnTracker {
    fn default() -> Self {
        ConnTracker::new(1)
    }
}

impl ConnTracker {
    /// A tracker for `workers` worker threads (at least one).
    pub fn new(workers: usize) -> ConnTracker {
        ConnTracker {
            active: AtomicU64::new(0),
            idle: Notify::new(),
            per_worker: (0..workers.max(1)).map(|_| WorkerCount::default()).collect(),
        }
    }

    /// Count a connection just accepted for `worker`, before its task runs:
    /// a burst accepted in one go must already weigh on the next choice.
    /// Contract: the connection's task then calls [`enter`](Self::enter) with
    /// the same worker, whose guard uncounts it.
    pub fn assign(&self, worker: usize) {
        self.per_worker[worker % self.per_worker.len()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a live connection (assigned to `worker`); it is uncounted, in
    /// total and on its worker, when the guard drops.
    pub fn enter(&self, worker: usize) -> ConnGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ConnGuard(self, worker % self.per_worker.len())
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }

    /// Open connections of each worker.
    pub fn per_worker(&self) -> Vec<u64> {
        self.per_worker.iter().map(|w| w.0.load(Ordering::Relaxed)).collect()
    }

    /// The least loaded worker, if `worker` holds more than `slack`
    /// connections above it: where a connection accepted on `worker` from a
    /// shared queue should go instead.
    pub fn hand_off_target(&self, worker: usize, slack: u64) -> Option<usize> {
        let load = |w: &WorkerCount| w.0.load(Ordering::Relaxed);
        let mine = load(&self.per_worker[worker % self.per_worker.len()]);
        let (least, n) = self.per_worker.iter().enumerate().map(|(i, w)| (i, load(w))).min_by_key(|&(_, n)| n)?;
        (mine > n + slack).then_some(least)
    }

    /// Resolve once no connection is live.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Keeps one connection counted while alive.
pub struct ConnGuard<'a>(&'a ConnTracker, usize);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.per_worker[self.1].0.fetch_sub(1, Ordering::Relaxed);
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
