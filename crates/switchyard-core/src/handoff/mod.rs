//! Zero-downtime upgrades: a running engine hands its listening sockets and
//! its established plain TCP connections to a new process over a Unix
//! socket pair (`SCM_RIGHTS`), and connections can be parked and resumed in
//! place (a close spread over a drain window).
//!
//! - [`parent`]: the old process's side: offer the sockets, wait until the
//!   new process accepts, then park and send the connections.
//! - [`child`]: the new process's side: take the sockets (the engine binds
//!   from them), say ready, adopt the connections.
//! - [`Parking`]: how a connection's task learns that it should stop where
//!   it is, and where it goes then (to the hand-over, or back to work with a
//!   deadline).
//!
//! What is handed over: plain TCP connections while they forward (both
//! sockets, with the bytes read but not yet delivered in either direction,
//! from the copy buffer or the splice pipe). What is not: TLS-terminated or
//! backend-TLS connections (their session state lives in this process), HTTP
//! connections, and connections still connecting; they finish in the old
//! process, which drains them.

pub mod child;
pub mod parent;
#[allow(unsafe_code)] // sendmsg/recvmsg with SCM_RIGHTS, socketpair
pub mod scm;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the hand-over needs of an engine (the engine implements it; this
/// module does not depend on the engine).
pub trait Host {
    /// Park every plain TCP connection and send it to the returned receiver
    /// until [`Host::stop_parking`].
    fn park_for_hand_over(&self) -> Receiver<Parked>;
    /// Stop parking: connections that park from now on continue here.
    fn stop_parking(&self);
    /// Plain TCP connections forwarding now.
    fn plain_forwarding(&self) -> u64;
    /// Continue a parked connection here.
    fn adopt(&self, p: Parked);
}

/// A plain TCP connection stopped in the middle of forwarding, ready to
/// continue elsewhere.
#[derive(Debug)]
pub struct Parked {
    pub listener: String,
    pub pool: String,
    pub backend_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub client: std::net::TcpStream,
    pub backend: std::net::TcpStream,
    /// Read from the client, not yet written to the backend.
    pub up: Vec<u8>,
    /// Read from the backend, not yet written to the client.
    pub down: Vec<u8>,
}

/// Where a parked connection goes.
#[derive(Debug)]
enum Mode {
    /// Not parking.
    Off,
    /// To the hand-over (a new process adopts it).
    HandOver(Sender<Parked>),
    /// Back to work in this process, ending at a random instant before the
    /// deadline (a close spread over the drain window).
    Spread { from: Instant, window: Duration },
}

/// The engine's parking state, read by connection tasks when their park
/// token fires (see `BackendHealth::park_connections`).
#[derive(Debug)]
pub struct Parking {
    on: AtomicBool,
    mode: Mutex<Mode>,
    /// Plain TCP connections forwarding now (those a hand-over can take).
    forwarding: AtomicU64,
}

impl Default for Parking {
    fn default() -> Self {
        Parking { on: AtomicBool::new(false), mode: Mutex::new(Mode::Off), forwarding: AtomicU64::new(0) }
    }
}

impl Parking {
    /// Is a hand-over or a spread close under way (a cancelled park token means park)?
    pub fn active(&self) -> bool {
        self.on.load(Relaxed)
    }

    fn set(&self, mode: Mode) {
        let on = !matches!(mode, Mode::Off);
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        self.on.store(on, Relaxed);
    }

    /// Send parked connections to the returned receiver until [`Self::stop`].
    pub fn hand_over(&self) -> Receiver<Parked> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.set(Mode::HandOver(tx));
        rx
    }

    /// Resume parked connections here, each ending at a random instant within `window` from now.
    pub fn spread(&self, window: Duration) {
        self.set(Mode::Spread { from: Instant::now(), window });
    }

    /// Stop parking: a connection that parks from now on resumes in place.
    pub fn stop(&self) {
        self.set(Mode::Off);
    }

    /// A connection parked: hand it over, or get it back to continue here,
    /// until the instant given (a spread close) or for as long as it lasts.
    pub fn park(&self, p: Parked) -> Result<(), Box<(Parked, Option<Instant>)>> {
        let mode = self.mode.lock().unwrap_or_else(|p| p.into_inner());
        match &*mode {
            Mode::HandOver(tx) => tx.send(p).map_err(|e| Box::new((e.0, None))),
            Mode::Spread { from, window } => {
                let draw = crate::select::fast_rand() as f64 / u64::MAX as f64;
                Err(Box::new((p, Some(*from + window.mul_f64(draw)))))
            }
            // The hand-over ended before this one got there.
            Mode::Off => Err(Box::new((p, None))),
        }
    }

    /// Count a plain TCP connection entering (`true`) or leaving the forwarding stage.
    pub fn forwarding(&self, entering: bool) {
        if entering {
            self.forwarding.fetch_add(1, Relaxed);
        } else {
            self.forwarding.fetch_sub(1, Relaxed);
        }
    }

    /// Plain TCP connections forwarding now.
    pub fn forwarding_now(&self) -> u64 {
        self.forwarding.load(Relaxed)
    }
}
