//! A plain TCP connection whose park token fired (see `handoff`): it stopped
//! where it was, with the bytes it still owed each way. It goes to the
//! hand-over (a new process continues it), or, if none takes it, continues
//! here, those bytes first.

use crate::access::Ended;
use crate::config::SpliceMode;
use crate::forward::{self, take_unsent, Counters, Moved, Outcome, Watch};
use crate::handoff::Parked;
use crate::health::BackendHealth;
use crate::shared::Shared;
use crate::snapshot::Listener;
use crate::stats::BackendStats;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// What became of a parked connection.
enum AfterPark {
    /// A new process took it: this one is done with it.
    HandedOver,
    /// It continues here, until the instant if one is given (a close spread
    /// over a drain window).
    Resumed(Resumed, Option<Instant>),
    /// Delivering the owed bytes failed: the connection ends.
    Failed,
}

/// Where a parked connection came from: listener, pool, backend, client.
pub(crate) struct Origin<'a> {
    pub listener: &'a str,
    pub pool: &'a str,
    pub backend: SocketAddr,
    pub client: SocketAddr,
}

/// The rest of a parked connection's life (call right after `forward::proxy`
/// returned `Cancelled` with `kill` intact: the park token fired; the
/// connection is still counted as forwarding, and this ends the count): handed
/// over, or resumed here and forwarded until it ends, watching `kill` (and
/// its deadline, in a spread close). Returns how it ended and what the
/// resumed part moved.
pub(crate) async fn after_park(
    shared: &Shared,
    listener: Option<&Listener>,
    from: Origin<'_>,
    client: TcpStream,
    backend: TcpStream,
    stats: &BackendStats,
    health: &BackendHealth,
) -> (Ended, Moved) {
    let parked = park(shared, from, client, backend);
    // Handed over or back: a hand-over waiting for the parked connections no longer counts it.
    shared.parking.forwarding(false);
    let (r, until) = match parked {
        AfterPark::HandedOver => return (Ended::HandedOver, Moved::default()),
        AfterPark::Failed => return (Ended::Error, Moved::default()),
        AfterPark::Resumed(r, until) => (r, until),
    };
    let cancel = resumed_token(&health.kill_token(), until);
    let (outcome, moved) = forward_resumed(shared, listener, &r, stats, &cancel).await;
    discard_unsent(&outcome, &r.client, &r.backend);
    (super::ended_by(outcome, listener), moved)
}

/// Forward a resumed or adopted connection (its owed bytes first) until it
/// ends or `cancel` fires, counted on `stats`.
pub(crate) async fn forward_resumed(
    shared: &Shared,
    listener: Option<&Listener>,
    r: &Resumed,
    stats: &BackendStats,
    cancel: &CancellationToken,
) -> (Outcome, Moved) {
    let counters = Counters { bytes_in: &stats.bytes_in, bytes_out: &stats.bytes_out };
    let (splice, watch) = listener.map_or((SpliceMode::Auto, Watch::new(ORPHAN_IDLE, None)), |l| (l.splice, l.watch()));
    forward::proxy_resumed(&r.client, &r.backend, [&r.up, &r.down], splice, watch, counters, &shared.pipes, cancel).await
}

/// After a cancel that is not a park (a kill), drop what the directions still
/// owed (see `forward::take_unsent`'s contract).
pub(crate) fn discard_unsent(outcome: &Outcome, client: &TcpStream, backend: &TcpStream) {
    if matches!(outcome, Outcome::Cancelled) {
        drop((take_unsent(client.as_raw_fd()), take_unsent(backend.as_raw_fd())));
    }
}

/// A parked connection back on this worker: its sockets, and the bytes it
/// still owes each way (delivered first by [`forward_resumed`]).
pub(crate) struct Resumed {
    pub client: TcpStream,
    pub backend: TcpStream,
    /// To the backend.
    pub up: Vec<u8>,
    /// To the client.
    pub down: Vec<u8>,
}

/// Was a connection whose park token fired parked (rather than killed: its
/// backend's connections closed since it took the token, `kills` then, or
/// the engine's close deadline passed)?
pub(crate) fn parked(shared: &Shared, health: &BackendHealth, kills: u32) -> bool {
    health.kills() == kills && !shared.cancel_conns.is_cancelled()
}

/// Idle timeout of a connection whose listener the current tables lack
/// (adopted from an old process whose listener this configuration removed).
pub(crate) const ORPHAN_IDLE: Duration = Duration::from_secs(3600);

/// Park `client` ↔ `backend`: hand it over, or get it back.
fn park(shared: &Shared, from: Origin<'_>, client: TcpStream, backend: TcpStream) -> AfterPark {
    let up = take_unsent(backend.as_raw_fd());
    let down = take_unsent(client.as_raw_fd());
    let (Ok(client), Ok(backend)) = (client.into_std(), backend.into_std()) else { return AfterPark::Failed };
    let parked = Parked {
        listener: from.listener.to_owned(),
        pool: from.pool.to_owned(),
        backend_addr: from.backend,
        client_addr: from.client,
        client,
        backend,
        up,
        down,
    };
    match shared.parking.park(parked) {
        Ok(()) => AfterPark::HandedOver,
        Err(back) => match resume(back.0) {
            Ok(r) => AfterPark::Resumed(r, back.1),
            Err(_) => AfterPark::Failed,
        },
    }
}

/// Register a parked connection's sockets with this worker's reactor.
pub(crate) fn resume(p: Parked) -> io::Result<Resumed> {
    Ok(Resumed { client: TcpStream::from_std(p.client)?, backend: TcpStream::from_std(p.backend)?, up: p.up, down: p.down })
}

/// What a resumed connection watches instead of its park token: `kill`, and
/// from `until` on (a spread close), its own cancellation. One token and one
/// timer task per resumed connection: a rare path.
fn resumed_token(kill: &CancellationToken, until: Option<Instant>) -> CancellationToken {
    let Some(until) = until else { return kill.clone() };
    let token = kill.child_token();
    let fire = token.clone();
    drop(tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => fire.cancel(),
            _ = fire.cancelled() => {}
        }
    }));
    token
}
