//! The hand-over handles of an upgrade (`switchyard_core::handoff`): the old
//! process's `NativeHandoffParent`, the new process's `NativeHandoffChild`.
//! Their blocking steps run on the blocking pool and resolve as promises;
//! results cross as JSON. The control plane (`ts/upgrade/`) orders the steps.

use crate::{to_js, NativeEngine};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_core::handoff::child::{Child, Inherited};
use switchyard_core::handoff::parent::{Handed, Parent};
use switchyard_core::handoff::wire::{Kind, SocketMeta};
use switchyard_core::{Engine, Error, ErrorCode};

/// Run blocking `f` off the event loop.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> switchyard_core::error::Result<T> + Send + 'static) -> Result<T> {
    let joined = napi::tokio::task::spawn_blocking(f).await;
    joined.map_err(|e| to_js(Error::new(ErrorCode::Runtime, format!("hand-over task failed: {e}"))))?.map_err(to_js)
}

fn handed_json(h: Handed) -> String {
    serde_json::json!({ "connections": h.connections, "bytes": h.bytes }).to_string()
}

/// The old process's side of an upgrade.
#[napi]
pub struct NativeHandoffParent {
    inner: Arc<Parent>,
}

#[napi]
impl NativeHandoffParent {
    /// A new socket pair for one upgrade.
    #[napi(constructor)]
    pub fn new() -> Result<Self> {
        Ok(NativeHandoffParent { inner: Arc::new(Parent::new().map_err(to_js)?) })
    }

    /// The descriptor to give the new process (stdio slot), until `spawned`.
    #[napi]
    pub fn child_fd(&self) -> Option<i32> {
        self.inner.child_fd()
    }

    /// The new process has its copy of the descriptor: close ours.
    #[napi]
    pub fn spawned(&self) {
        self.inner.spawned()
    }

    /// Wait for the new process's hello, then send it the engine's listening
    /// sockets and the admin API's (`adminFd`, duplicated; the caller keeps
    /// its own). Resolves with the version it announced.
    #[napi]
    pub fn offer<'env>(
        &self,
        env: &'env Env,
        engine: &NativeEngine,
        admin_fd: Option<i32>,
        admin_address: Option<String>,
        timeout_ms: u32,
    ) -> Result<PromiseRaw<'env, String>> {
        let mut sockets = engine.inner.listening_sockets().map_err(to_js)?;
        if let Some(fd) = admin_fd {
            let dup = dup_fd(fd)?;
            sockets.push((SocketMeta { kind: Kind::Admin, name: "admin".into(), address: admin_address.unwrap_or_default() }, dup));
        }
        let parent = Arc::clone(&self.inner);
        env.spawn_future(async move { blocking(move || parent.offer_sockets(&sockets, Duration::from_millis(timeout_ms as u64))).await })
    }

    /// Wait until the new process accepts.
    #[napi]
    pub fn wait_ready<'env>(&self, env: &'env Env, timeout_ms: u32) -> Result<PromiseRaw<'env, ()>> {
        let parent = Arc::clone(&self.inner);
        env.spawn_future(async move { blocking(move || parent.wait_ready(Duration::from_millis(timeout_ms as u64))).await })
    }

    /// Park the engine's plain TCP connections and send them over, for up to
    /// `graceMs`. Resolves with JSON `{ connections, bytes }`.
    #[napi]
    pub fn hand_connections<'env>(&self, env: &'env Env, engine: &NativeEngine, grace_ms: u32) -> Result<PromiseRaw<'env, String>> {
        let (parent, engine): (_, Arc<Engine>) = (Arc::clone(&self.inner), Arc::clone(&engine.inner));
        env.spawn_future(async move {
            blocking(move || parent.hand_connections(&*engine, Duration::from_millis(grace_ms as u64)).map(handed_json)).await
        })
    }
}

/// Duplicate descriptor `fd` (the caller keeps owning it).
fn dup_fd(fd: i32) -> Result<OwnedFd> {
    // SAFETY: the caller keeps `fd` open for the duration of this call; it is only borrowed here.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned().map_err(|e| to_js(Error::new(ErrorCode::Runtime, format!("cannot duplicate descriptor {fd}: {e}"))))
}

/// The new process's side of an upgrade.
#[napi]
pub struct NativeHandoffChild {
    inner: Arc<Child>,
    /// The listening sockets received, until the engine takes them.
    inherited: Arc<Mutex<Option<Inherited>>>,
}

#[napi]
impl NativeHandoffChild {
    /// Take inherited descriptor `fd` (throws unless it is a hand-over socket).
    #[napi(factory)]
    pub fn open(fd: i32) -> Result<Self> {
        Ok(NativeHandoffChild { inner: Arc::new(Child::from_inherited(fd).map_err(to_js)?), inherited: Arc::default() })
    }

    /// Say hello and receive the old process's listening sockets. Resolves
    /// with the admin API's socket descriptor (now owned by the caller:
    /// `server.listen({ fd })`), or null.
    #[napi]
    pub fn receive<'env>(&self, env: &'env Env, version: String, timeout_ms: u32) -> Result<PromiseRaw<'env, Option<i32>>> {
        let (child, out) = (Arc::clone(&self.inner), Arc::clone(&self.inherited));
        env.spawn_future(async move {
            let mut inherited = blocking(move || child.receive_sockets(&version, Duration::from_millis(timeout_ms as u64))).await?;
            let admin = inherited.take_admin().map(|fd| fd.into_raw_fd());
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(inherited);
            Ok(admin)
        })
    }

    /// The sockets received (once): the engine binds from them.
    pub(crate) fn take_inherited(&self) -> Option<Inherited> {
        self.inherited.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// We accept now: the old process may stop.
    #[napi]
    pub fn ready(&self) -> Result<()> {
        self.inner.ready().map_err(to_js)
    }

    /// Adopt the connections the old process sends until it is done.
    /// Resolves with JSON `{ connections, bytes }`.
    #[napi]
    pub fn adopt<'env>(&self, env: &'env Env, engine: &NativeEngine) -> Result<PromiseRaw<'env, String>> {
        let (child, engine): (_, Arc<Engine>) = (Arc::clone(&self.inner), Arc::clone(&engine.inner));
        env.spawn_future(async move { blocking(move || child.adopt_connections(&*engine).map(handed_json)).await })
    }
}
