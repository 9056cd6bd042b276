//! The data plane's threads: one single-threaded tokio runtime per worker
//! ("thread per core", as nginx's worker processes and HAProxy's threads).
//! Each listener has one SO_REUSEPORT socket per worker, accepted on that
//! worker, and a connection lives on the worker that accepted it: no work
//! stealing, no cross-thread wake-ups, no atomics on the scheduler's hot path.

use std::io;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// The worker runtimes. Dropping it (or `shutdown`) stops them.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
}

impl Workers {
    /// Start `n` worker threads, each driving its own runtime until `shutdown`.
    pub fn start(n: usize) -> io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            let until = stop.clone();
            let spawned = std::thread::Builder::new().name(format!("switchyard-w{i}")).spawn(move || {
                rt.block_on(until.cancelled());
                // Tasks still alive (connections past every deadline) are dropped here.
                rt.shutdown_timeout(Duration::from_millis(500));
            });
            if let Err(e) = spawned {
                stop.cancel();
                return Err(e);
            }
        }
        Ok(Workers { handles, stop })
    }

    /// The runtime of worker `i` (modulo the number of workers).
    pub fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Stop every worker thread; it drops its runtime on its own thread (a
    /// runtime must not be dropped inside async context). Returns at once.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
