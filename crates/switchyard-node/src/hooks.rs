//! The hook handler: a JavaScript function the core asks through a bounded
//! thread-safe function (`ts/hooks/dispatch.ts` is that function). Each call
//! crosses as JSON `HookCall`; the answer comes back through
//! `NativeEngine.hookReply`. The queue towards the JavaScript thread is
//! bounded and called without blocking, so a data-plane worker never waits
//! on it: a full queue refuses the call at once (the hook's fallback, `full`).

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use switchyard_core::hook::{HookCall, HookSink, SinkFull};

/// Calls waiting for the JavaScript thread at most (napi's queue bound is a
/// compile-time constant; the core's in-flight bound, set at registration, can be lower).
const QUEUE: usize = 1024;

/// The handler: one string argument, no result read; weak, so it does not keep
/// Node running (the balancer's own timer does while it runs).
type Handler = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true, QUEUE>;

/// The core's sink over the JavaScript handler.
pub(crate) struct JsSink(Handler);

impl HookSink for JsSink {
    fn call(&self, call: HookCall) -> std::result::Result<(), SinkFull> {
        let json = serde_json::to_string(&call).map_err(|_| SinkFull)?;
        match self.0.call(json, ThreadsafeFunctionCallMode::NonBlocking) {
            Status::Ok => Ok(()),
            _ => Err(SinkFull),
        }
    }
}

/// Wrap `handler` (called with one JSON `HookCall` per hook call).
pub(crate) fn sink(handler: Function<String, Unknown<'static>>) -> Result<JsSink> {
    let tsfn = handler.build_threadsafe_function::<String>().callee_handled::<false>().weak::<true>().max_queue_size::<QUEUE>().build()?;
    Ok(JsSink(tsfn))
}
