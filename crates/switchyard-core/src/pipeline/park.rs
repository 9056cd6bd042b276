//! A plain TCP connection whose park token fired (see `handoff`): it stopped
//! where it was, with the bytes it still owed each way. It goes to the
//! hand-over (a new process continues it), or, if none takes it, continues
//! here, those bytes first.

use crate::forward::take_unsent;
use crate::handoff::Parked;
use crate::shared::Shared;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// What became of a parked connection.
pub(crate) enum AfterPark {
    /// A new process took it: this one is done with it.
    HandedOver,
    /// It continues here (its owed bytes delivered), until the instant if
    /// one is given (a close spread over a drain window).
    Resumed(TcpStream, TcpStream, Option<Instant>),
    /// Delivering the owed bytes failed: the connection ends.
    Failed(io::Error),
}

/// Where a parked connection came from: listener, pool, backend, client.
pub(crate) struct Origin<'a> {
    pub listener: &'a str,
    pub pool: &'a str,
    pub backend: SocketAddr,
    pub client: SocketAddr,
}

/// Park `client` ↔ `backend` (call right after `forward::proxy` returned
/// `Cancelled` with the kill token intact: the park token fired).
pub(crate) async fn park(shared: &Shared, from: Origin<'_>, client: TcpStream, backend: TcpStream) -> AfterPark {
    let up = take_unsent(backend.as_raw_fd());
    let down = take_unsent(client.as_raw_fd());
    let (client, backend) = match (client.into_std(), backend.into_std()) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => return AfterPark::Failed(e),
    };
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
            Err(e) => AfterPark::Failed(e),
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
pub(crate) fn resumed_token(kill: &CancellationToken, until: Option<Instant>) -> CancellationToken {
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
