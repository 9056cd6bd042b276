//! The Node.js binding. It converts types and owns the engine handle; every
//! decision lives in TypeScript (`ts/`) and every byte moves in
//! `switchyard-core`. Configuration and counters cross as JSON: their
//! TypeScript types are generated from the core's Rust definitions
//! (`ts/binding/types.generated.ts`), and `ts/binding/engine.ts`, the only
//! TypeScript module that loads this addon, types every call with them.
//!
//! Errors cross as data: the thrown error's message is the JSON of
//! `switchyard_core::Error` — `{ code, message, issues: [{ path, message }] }`.

mod handoff;
mod hooks;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::config::PoolConfig;
use switchyard_core::{Engine, EngineConfig};

pub(crate) fn to_js(e: switchyard_core::Error) -> napi::Error {
    napi::Error::from_reason(e.to_json())
}

/// A serialisation failure of a report (never expected): an internal error.
fn internal(e: serde_json::Error) -> napi::Error {
    to_js(switchyard_core::Error::new(switchyard_core::ErrorCode::Runtime, format!("cannot serialise a report: {e}")))
}

/// A running data plane: listeners, forwarding, counters.
#[napi]
pub struct NativeEngine {
    pub(crate) inner: Arc<Engine>,
}

#[napi]
impl NativeEngine {
    /// Start the data plane from a resolved configuration (JSON `EngineConfig`).
    /// Binds every listener before returning; throws (message: JSON
    /// `NativeError`, code `SWITCHYARD_ERR_BIND`) if one cannot bind.
    #[napi(factory)]
    pub fn start(config_json: String) -> Result<NativeEngine> {
        let config = EngineConfig::from_json(&config_json).map_err(to_js)?;
        let engine = Engine::start(config).map_err(to_js)?;
        Ok(NativeEngine { inner: Arc::new(engine) })
    }

    /// [`NativeEngine::start`] in the new process of an upgrade: listeners
    /// take the sockets `handoff` received from the old process first.
    #[napi(factory)]
    pub fn start_inheriting(config_json: String, handoff: &handoff::NativeHandoffChild) -> Result<NativeEngine> {
        let config = EngineConfig::from_json(&config_json).map_err(to_js)?;
        let mut inherited = handoff.take_inherited();
        let engine = Engine::start_inheriting(config, inherited.as_mut()).map_err(to_js)?;
        Ok(NativeEngine { inner: Arc::new(engine) })
    }

    /// Stop accepting but keep the listening sockets open (an upgrade: the
    /// new process accepts on them now).
    #[napi]
    pub async fn stop_accepting(&self) -> Result<()> {
        let engine = Arc::clone(&self.inner);
        engine.stop_accepting().await;
        Ok(())
    }

    /// Swap in a new resolved configuration (JSON `EngineConfig`), all or nothing.
    #[napi]
    pub fn update(&self, config_json: String) -> Result<()> {
        let config = EngineConfig::from_json(&config_json).map_err(to_js)?;
        self.inner.update(config).map_err(to_js)
    }

    /// Replace one existing pool (JSON `PoolConfig`): only its tables are
    /// rebuilt; other pools and TLS configs are untouched.
    #[napi]
    pub fn update_pool(&self, pool_json: String) -> Result<()> {
        let pool = PoolConfig::from_json(&pool_json).map_err(to_js)?;
        self.inner.update_pool(pool).map_err(to_js)
    }

    /// Bound addresses as JSON: `{ "listenerName": "127.0.0.1:40123", ... }`.
    #[napi]
    pub fn addresses(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> =
            self.inner.addresses().into_iter().map(|(n, a)| (n, a.to_string().into())).collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Every counter as JSON `StatsReport`.
    #[napi]
    pub fn stats(&self) -> Result<String> {
        serde_json::to_string(&self.inner.stats()).map_err(internal)
    }

    /// Apply a batch of active-check verdicts: JSON `HealthUpdate[]`.
    /// Returns how many changed a backend's state.
    #[napi]
    pub fn set_health(&self, batch_json: String) -> Result<u32> {
        let batch: Vec<switchyard_core::HealthUpdate> = serde_json::from_str(&batch_json)
            .map_err(|e| to_js(switchyard_core::Error::config_at("(health batch)", format!("malformed: {e}"))))?;
        Ok(self.inner.set_health(&batch) as u32)
    }

    /// Close every established connection to one backend. False if unknown.
    #[napi]
    pub fn close_backend_connections(&self, pool: String, address: String) -> bool {
        self.inner.close_backend_connections(&pool, &address)
    }

    /// Register the function opt-in hooks are asked through: it is called
    /// with one JSON `HookCall` per call and answers with [`NativeEngine::hook_reply`].
    /// At most `maxInFlight` calls (default 1024) wait for answers at once;
    /// beyond, or when the queue to this thread is full, a call gets its
    /// hook's fallback at once. Replaces any handler registered before.
    #[napi]
    pub fn set_hook_handler(&self, handler: Function<String, Unknown<'static>>, max_in_flight: Option<u32>) -> Result<()> {
        let sink = hooks::sink(handler)?;
        let max = max_in_flight.map_or(switchyard_core::hook::DEFAULT_IN_FLIGHT, |n| n as usize);
        self.inner.set_hook_sink(Some(Box::new(sink)), max);
        Ok(())
    }

    /// Unregister the hook handler: every hook call gets its fallback (`unregistered`).
    #[napi]
    pub fn clear_hook_handler(&self) {
        self.inner.set_hook_sink(None, 0);
    }

    /// Answer hook call `id` with JSON `HookReply` (a decision, or the
    /// error the function threw). False when the call no longer waits
    /// (its budget passed; counted as late).
    #[napi]
    pub fn hook_reply(&self, id: i64, reply_json: String) -> bool {
        self.inner.hook_reply(id as u64, &reply_json)
    }

    /// Take the queued data-plane events as JSON `EventBatch`.
    #[napi]
    pub fn events(&self) -> Result<String> {
        serde_json::to_string(&self.inner.events()).map_err(internal)
    }

    /// Take the queued access-log records as JSON `AccessBatch`.
    #[napi]
    pub fn access_log(&self) -> Result<String> {
        serde_json::to_string(&self.inner.access_log()).map_err(internal)
    }

    /// The kept decision traces as JSON `Trace[]` (oldest first), filtered
    /// by a JSON `TraceFilter`.
    #[napi]
    pub fn traces(&self, filter_json: String) -> Result<String> {
        let filter: switchyard_core::TraceFilter = serde_json::from_str(&filter_json)
            .map_err(|e| to_js(switchyard_core::Error::config_at("(trace filter)", format!("malformed: {e}"))))?;
        serde_json::to_string(&self.inner.traces(&filter)).map_err(internal)
    }

    /// Trace a share `rate` (0..=1) of a listener's connections (HTTP:
    /// requests) from now on, without a reload.
    #[napi]
    pub fn set_trace_sample(&self, listener: String, rate: f64) -> Result<()> {
        self.inner.set_trace_sample(&listener, rate).map_err(to_js)
    }

    /// Stop accepting, let connections finish for up to `drainMs`, close the
    /// rest and stop the runtime. With `spread`, plain TCP connections still
    /// open end at random instants over the window. Resolves once done.
    #[napi]
    pub async fn close(&self, drain_ms: u32, spread: bool) -> Result<()> {
        let engine = Arc::clone(&self.inner);
        engine.close_with(Duration::from_millis(drain_ms as u64), spread).await;
        Ok(())
    }
}

/// "What moves if I change this?": a `PlanRequest` as JSON in (pool before and
/// after, optional keys), a `PlanReport` as JSON out. Pure computation.
#[napi]
pub fn plan(request_json: String) -> Result<String> {
    let req: switchyard_core::plan::PlanRequest = serde_json::from_str(&request_json)
        .map_err(|e| to_js(switchyard_core::Error::config_at("(plan request)", format!("malformed: {e}"))))?;
    let report = switchyard_core::plan::plan(&req).map_err(to_js)?;
    serde_json::to_string(&report).map_err(internal)
}

/// Tell systemd (`NOTIFY_SOCKET`, `Type=notify`) about a state change, e.g.
/// `READY=1`, or `MAINPID=<pid>\nREADY=1` from the new process of an
/// upgrade. False when not run under a notify socket.
#[napi]
pub fn sd_notify(state: String) -> Result<bool> {
    switchyard_core::notify::sd_notify(&state)
        .map_err(|e| to_js(switchyard_core::Error::new(switchyard_core::ErrorCode::Runtime, format!("sd_notify: {e}"))))
}
