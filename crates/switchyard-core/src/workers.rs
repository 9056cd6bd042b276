//! The data plane's threads: one single-threaded tokio runtime per worker
//! ("thread per core", as nginx's worker processes and HAProxy's threads).
//! Every worker accepts from each listener (see `accept.rs`), and a connection
//! lives on the worker that accepted it: no work
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
                rt.block_on(async {
                    tokio::select! {
                        _ = until.cancelled() => {}
                        _ = heartbeat() => {}
                    }
                });
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

    /// The runtime of every worker, by index.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
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

/// How often an otherwise idle worker wakes up; see [`heartbeat`].
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Keep a timer due within [`HEARTBEAT`] at all times, so a new connection's
/// connect timeout (seconds away) is never the earliest timer of the worker.
///
/// Why: tokio's timer wheel remembers, each time the worker parks, when it
/// promised to wake; inserting a timer earlier than that promise "unparks"
/// the driver with a `write(2)` to its eventfd, plus one more `epoll_wait`
/// event, even when the insert runs on the worker itself. Without a nearer
/// timer, every connection's connect timeout (2 s) came before the only other
/// timers (idle watches, 15 s and more) and paid that syscall: measured ≈ 0.9
/// `write` per `Connection: close` connection. One wake-up per second per
/// idle worker buys it back. Each beat also runs [`crate::heap::tick`].
async fn heartbeat() {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A worker that wakes anyway also hands back heap freed after a burst.
        crate::heap::tick();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
