//! Giving freed heap back to the kernel after a burst.
//!
//! An HTTP connection holds hyper's read and write buffers (8 KiB each)
//! while it is busy and frees them when it parks or closes (`http/serve.rs`).
//! After a burst of many connections that then go idle, glibc's allocator
//! keeps those freed chunks in its free lists: the process's memory stays at
//! the burst's peak although idle connections hold only a few hundred bytes
//! each. glibc returns free pages only at the top of a heap, or when asked by
//! `malloc_trim` (which also releases whole free pages inside the heap with
//! `MADV_DONTNEED`), as HAProxy does in its pool garbage collection.
//!
//! Contract: code that frees a large amount of per-connection memory calls
//! [`freed`] with an estimate of the bytes; each worker's heartbeat calls
//! [`tick`] about once a second, and the first tick that finds at least
//! [`TRIM_AFTER`] bytes freed since the last trim runs `malloc_trim(0)` on
//! that worker's thread. That costs a few milliseconds per hundred MiB of
//! heap, once after a burst, never per request. Other allocators (musl's)
//! return memory themselves: there `tick` does nothing.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Freed bytes (estimated) since the last trim.
static FREED: AtomicUsize = AtomicUsize::new(0);

/// How much must have been freed before a trim is worth its cost (64
/// parked HTTP connections): low enough that the last connections of a
/// burst to park (those parked by their quiet tick) are handed back too.
pub const TRIM_AFTER: usize = 1 << 20;

/// Record that about `bytes` of heap were freed.
pub fn freed(bytes: usize) {
    FREED.fetch_add(bytes, Relaxed);
}

/// Trim the heap if enough was freed since the last trim (see the module
/// docs). Returns whether it trimmed.
pub fn tick() -> bool {
    // `swap` by one worker only: the others see 0 and go on.
    if FREED.load(Relaxed) < TRIM_AFTER || FREED.swap(0, Relaxed) < TRIM_AFTER {
        return false;
    }
    trim();
    true
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and only walks glibc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_enough_was_freed() {
        // The counter is process-wide; this is the only test that touches it.
        FREED.store(0, Relaxed);
        freed(TRIM_AFTER - 1);
        assert!(!tick(), "below the threshold");
        freed(1);
        assert!(tick(), "at the threshold");
        assert!(!tick(), "the counter starts again");
    }
}
