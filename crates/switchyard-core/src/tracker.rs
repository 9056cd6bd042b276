//! Counts live connections so `close()` can wait for them to finish.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// Live-connection counter with a wake-up when it reaches zero.
#[derive(Debug, Default)]
pub struct ConnTracker {
    active: AtomicU64,
    idle: Notify,
}

impl ConnTracker {
    /// Count a new connection; it is uncounted when the guard drops.
    pub fn enter(&self) -> ConnGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ConnGuard(self)
    }
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
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
pub struct ConnGuard<'a>(&'a ConnTracker);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
