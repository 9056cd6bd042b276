//! Asking a hook: the engine's sink, the table of calls in flight (id →
//! the asker's one-shot), the budget, and the fallback.

use super::{Hook, HookCall, HookDecision, HookOutcome, HookReply, HookRequest, HookSink, HookTable};
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Calls in flight at once by default (beyond: the fallback, counted `full`).
pub const DEFAULT_IN_FLIGHT: usize = 1024;

/// What the handler's reply turned into for the waiting asker.
type Answer = Result<HookDecision, HookOutcome>;

/// The registered handler and how many calls may wait on it at once.
struct Sink {
    sink: Box<dyn HookSink>,
    max_in_flight: usize,
}

/// The engine's hook machinery: one per engine (in `Shared`).
#[derive(Default)]
pub struct Hooks {
    sink: ArcSwapOption<Sink>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("registered", &self.sink.load().is_some()).field("in_flight", &self.in_flight()).finish()
    }
}

/// Removes its call from the table however the ask ends (answered, timed
/// out, refused, or the asker dropped because its client left).
struct Entry<'a> {
    hooks: &'a Hooks,
    id: u64,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.hooks.pending().remove(&self.id);
    }
}

impl Hooks {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answer>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register the handler (`None`: none; calls then get their fallback,
    /// counted `unregistered`). At most `max_in_flight` calls wait at once.
    /// Calls waiting on a replaced handler end now, with their fallback (`error`).
    pub fn set_sink(&self, sink: Option<Box<dyn HookSink>>, max_in_flight: usize) {
        self.sink.store(sink.map(|sink| Arc::new(Sink { sink, max_in_flight: max_in_flight.max(1) })));
        self.pending().clear();
    }

    /// Calls waiting for an answer now.
    pub fn in_flight(&self) -> usize {
        self.pending().len()
    }

    /// Ask `hook` about `request`: its decision, or its fallback within the
    /// budget; counted either way.
    pub async fn ask(&self, hook: &Hook, request: HookRequest) -> (HookDecision, HookOutcome) {
        self.ask_with(hook, request, |_| true).await
    }

    /// [`Hooks::ask`], where `accept` may reject an answer the caller cannot
    /// carry out (an HTTP route: a pool that does not exist): the fallback
    /// then, counted `invalid`.
    pub async fn ask_with(
        &self,
        hook: &Hook,
        request: HookRequest,
        accept: impl FnOnce(&HookDecision) -> bool,
    ) -> (HookDecision, HookOutcome) {
        let (decision, outcome) = match self.wait(hook, request).await {
            Ok(d) if accept(&d) => (d, HookOutcome::Answered),
            Ok(_) => (hook.config.fallback.clone(), HookOutcome::Invalid),
            Err(why) => (hook.config.fallback.clone(), why),
        };
        hook.counters.ended(outcome);
        (decision, outcome)
    }

    /// Send the call and wait for its answer, at most the budget.
    async fn wait(&self, hook: &Hook, request: HookRequest) -> Answer {
        let Some(sink) = self.sink.load_full() else { return Err(HookOutcome::Unregistered) };
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= sink.max_in_flight {
                return Err(HookOutcome::Full);
            }
            pending.insert(id, tx);
        }
        let _entry = Entry { hooks: self, id };
        if sink.sink.call(HookCall { id, hook: hook.config.name.clone(), request }).is_err() {
            return Err(HookOutcome::Full);
        }
        match tokio::time::timeout(hook.budget, rx).await {
            Ok(Ok(answer)) => answer,
            // The handler was replaced while this call waited.
            Ok(Err(_)) => Err(HookOutcome::Error),
            Err(_) => Err(HookOutcome::Timeout),
        }
    }

    /// The handler's answer to call `id` (JSON [`HookReply`]). False when
    /// no call waits for it any more (counted `late` under its hook).
    pub fn reply(&self, id: u64, reply_json: &str, table: &HookTable) -> bool {
        let waiting = self.pending().remove(&id);
        let reply: Option<HookReply> = serde_json::from_str(reply_json).ok();
        let Some(tx) = waiting else {
            if let Some(r) = reply {
                table.counters(&r.hook).late();
            }
            return false;
        };
        let answer = match reply {
            Some(HookReply { unregistered: true, .. }) => Err(HookOutcome::Unregistered),
            Some(HookReply { decision: Some(d), error: None, .. }) => d.check().map(|()| d).map_err(|_| HookOutcome::Invalid),
            Some(HookReply { decision: None, error: Some(_), .. }) => Err(HookOutcome::Error),
            _ => Err(HookOutcome::Invalid),
        };
        tx.send(answer).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HookRef, SinkFull};
    use super::*;

    /// A sink that records calls, or refuses them.
    struct Recorder(Mutex<Vec<u64>>, bool);

    impl HookSink for Arc<Recorder> {
        fn call(&self, call: HookCall) -> Result<(), SinkFull> {
            if self.1 {
                return Err(SinkFull);
            }
            self.0.lock().unwrap().push(call.id);
            Ok(())
        }
    }

    fn hook(table: &HookTable, budget_ms: u64) -> Hook {
        table.hook(&HookRef {
            name: "h".into(),
            budget_ms,
            fallback: HookDecision { pool: Some("fallback".into()), ..HookDecision::default() },
        })
    }

    fn recorder(refuse: bool) -> Arc<Recorder> {
        Arc::new(Recorder(Mutex::new(Vec::new()), refuse))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn answers_fallbacks_and_late_replies_are_counted() {
        let (hooks, table) = (Arc::new(Hooks::default()), HookTable::default());
        let h = hook(&table, 5);
        // No handler: the fallback at once.
        assert_eq!(hooks.ask(&h, HookRequest::default()).await.1, HookOutcome::Unregistered);
        let rec = recorder(false);
        hooks.set_sink(Some(Box::new(Arc::clone(&rec))), 1);
        // Answered: the reply arrives while the ask waits.
        let asked = {
            let hooks = Arc::clone(&hooks);
            let h = hook(&table, 5_000);
            tokio::spawn(async move { hooks.ask(&h, HookRequest::default()).await })
        };
        while rec.0.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let id = rec.0.lock().unwrap()[0];
        // One call in flight is the bound: another gets the fallback at once.
        assert_eq!(hooks.ask(&h, HookRequest::default()).await.1, HookOutcome::Full);
        assert!(hooks.reply(id, r#"{"hook":"h","decision":{"pool":"b","hash_key":"k"}}"#, &table));
        let (d, o) = asked.await.unwrap();
        assert_eq!((d.pool.as_deref(), d.hash_key.as_deref(), o), (Some("b"), Some("k"), HookOutcome::Answered));
        // Nobody answers: the budget passes, then the answer is late.
        let (d, o) = hooks.ask(&h, HookRequest::default()).await;
        assert_eq!((d.pool.as_deref(), o), (Some("fallback"), HookOutcome::Timeout));
        let late = rec.0.lock().unwrap()[1];
        assert!(!hooks.reply(late, r#"{"hook":"h","decision":{}}"#, &table));
        assert_eq!(hooks.in_flight(), 0);
        // A refusing sink (its queue full).
        hooks.set_sink(Some(Box::new(recorder(true))), 8);
        assert_eq!(hooks.ask(&h, HookRequest::default()).await.1, HookOutcome::Full);
        let r = &table.reports()[0];
        assert_eq!((r.calls, r.answered, r.full, r.timeout, r.unregistered, r.late), (5, 1, 2, 1, 1, 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn errors_and_invalid_answers_get_the_fallback() {
        let (hooks, table) = (Arc::new(Hooks::default()), HookTable::default());
        let rec = recorder(false);
        hooks.set_sink(Some(Box::new(Arc::clone(&rec))), 8);
        let replies = [
            (r#"{"hook":"h","error":"boom"}"#, HookOutcome::Error),
            (r#"{"hook":"h","decision":{"pool":"a","deny":403}}"#, HookOutcome::Invalid),
            (r#"{"hook":"h","decision":{"deny":200}}"#, HookOutcome::Invalid),
            (r#"{"hook":"h","decision":{"pool":"unknown"}}"#, HookOutcome::Invalid),
            ("not json", HookOutcome::Invalid),
            (r#"{"hook":"h","unregistered":true}"#, HookOutcome::Unregistered),
            (r#"{"hook":"h","decision":{"deny":403}}"#, HookOutcome::Answered),
        ];
        for (i, (reply, want)) in replies.into_iter().enumerate() {
            let asked = {
                let (hooks, h) = (Arc::clone(&hooks), hook(&table, 5_000));
                tokio::spawn(async move { hooks.ask_with(&h, HookRequest::default(), |d| d.pool.as_deref() != Some("unknown")).await })
            };
            while rec.0.lock().unwrap().len() <= i {
                tokio::task::yield_now().await;
            }
            let id = rec.0.lock().unwrap()[i];
            hooks.reply(id, reply, &table);
            let (d, o) = asked.await.unwrap();
            assert_eq!(o, want, "{reply}");
            if want != HookOutcome::Answered {
                assert_eq!(d.pool.as_deref(), Some("fallback"));
            }
        }
        let r = &table.reports()[0];
        assert_eq!((r.calls, r.answered, r.error, r.invalid, r.unregistered), (7, 1, 1, 4, 1));
    }
}
