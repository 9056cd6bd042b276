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
    /// It continues here (its owed bytes delivered), until the instant if
    /// one is given (a close spread over a drain window).
    Resumed(TcpStream, TcpStream, Option<Instant>),
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
/// returned `Cancelled` with `kill` intact: the park token fired): handed
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
    let (client, backend, until) = match park(shared, from, client, backend).await {
        AfterPark::HandedOver => return (Ended::HandedOver, Moved::default()),
        AfterPark::Failed => return (Ended::Error, Moved::default()),
        AfterPark::Resumed(c, b, until) => (c, b, until),
    };
    let cancel = resumed_token(&health.kill_token(), until);
    let counters = Counters { bytes_in: &stats.bytes_in, bytes_out: &stats.bytes_out };
    let (splice, watch) = listener.map_or((SpliceMode::Auto, Watch::new(ORPHAN_IDLE, None)), |l| (l.splice, l.watch()));
    let (outcome, moved) = forward::proxy(&client, &backend, splice, watch, counters, &shared.pipes, &cancel, false).await;
    if matches!(outcome, Outcome::Cancelled) {
        drop((take_unsent(client.as_raw_fd()), take_unsent(backend.as_raw_fd())));
    }
    (super::ended_by(outcome, listener), moved)
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
async fn park(shared: &Shared, from: Origin<'_>, client: TcpStream, backend: TcpStream) -> AfterPark {
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
        Err(back) => match resume(back.0).await {
            Ok((c, b)) => AfterPark::Resumed(c, b, back.1),
            Err(_) => AfterPark::Failed,
        },
    }
}

/// Register a parked connection's sockets with this worker and deliver what
/// it still owed each way; then it can forward again.
pub(crate) async fn resume(p: Parked) -> io::Result<(TcpStream, TcpStream)> {
    let client = TcpStream::from_std(p.client)?;
    let backend = TcpStream::from_std(p.backend)?;
    tokio::try_join!(crate::net::write_all(&backend, &p.up), crate::net::write_all(&client, &p.down))?;
    Ok((client, backend))
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
