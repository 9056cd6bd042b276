//! Copy buffers, lent per read burst and returned when the socket is drained,
//! so an idle connection holds no buffer (idle memory per connection is a
//! benchmark target). A small per-thread free list avoids malloc churn.

use std::cell::RefCell;

/// Size of one copy buffer. Three consecutive full reads mark a direction as
/// streaming (splice-auto).
pub const BUF_SIZE: usize = 32 * 1024;

/// Free buffers kept per worker thread.
const KEEP_PER_THREAD: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `BUF_SIZE` bytes (contents unspecified).
pub fn take() -> Box<[u8]> {
    FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(|| vec![0u8; BUF_SIZE].into_boxed_slice())
}

/// Return a buffer to this thread's free list (or free it).
pub fn give(buf: Box<[u8]>) {
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP_PER_THREAD {
            f.push(buf);
        }
    });
}
