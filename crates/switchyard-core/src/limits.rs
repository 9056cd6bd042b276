//! Process limits a proxy needs: each connection holds two sockets and, when
//! spliced, up to two pipes (four descriptors).

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the new soft limit.
#[cfg(not(unix))]
pub fn raise_nofile() -> u64 {
    0
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the new soft limit.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the rlimit struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit only reads the struct we pass; raising soft to hard needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur as u64;
        }
    }
    lim.rlim_cur as u64
}

/// Most splice pipes ever lent at once, whatever the limits allow: each may
/// hold up to 1 MiB of kernel memory.
pub const MAX_PIPES: u64 = 8192;

/// The engine-wide connection limit `RLIMIT_NOFILE` allows, as HAProxy
/// derives its `maxconn` from `ulimit -n`, counting what a connection really
/// holds: two sockets (client and backend), and pipes while spliced. Pipes
/// are budgeted as HAProxy's `maxpipes` (a quarter of the connection limit,
/// two descriptors each), so a connection costs 2.5 descriptors. A reserve
/// is kept for everything else this process opens (health checks, the admin
/// API, DNS, Node's own files).
pub fn derived_max_connections(nofile: u64) -> u64 {
    (nofile.saturating_sub(reserve(nofile)) * 2 / 5).max(1)
}

/// Pipes the pool may lend for `max_connections` under `nofile` (0: not
/// known): a quarter of the connection limit, no more than the descriptors
/// the sockets leave, at most [`MAX_PIPES`]. With no pipe to lend a
/// connection copies instead, so a limit that leaves no descriptors for
/// pipes turns splice off rather than running out of descriptors.
pub fn derived_max_pipes(max_connections: u64, nofile: u64) -> u64 {
    let quarter = max_connections / 4;
    let left = if nofile == 0 { u64::MAX } else { nofile.saturating_sub(reserve(nofile) + 2 * max_connections.min(nofile)) / 2 };
    quarter.min(left).min(MAX_PIPES)
}

/// Descriptors kept out of the connection limit: 64, plus 1/16 of the limit.
pub fn reserve(nofile: u64) -> u64 {
    64 + nofile / 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_limit_keeps_a_reserve_and_counts_sockets_and_pipes() {
        assert_eq!(derived_max_connections(200), (200 - 64 - 12) * 2 / 5);
        assert_eq!(derived_max_connections(1_048_576), (1_048_576 - 64 - 65_536) * 2 / 5);
        assert_eq!(derived_max_connections(10), 1, "never zero");
    }

    #[test]
    fn the_derived_limits_fit_in_the_descriptors() {
        for nofile in [200, 1_024, 20_000, 65_536, 1_048_576] {
            let conns = derived_max_connections(nofile);
            let pipes = derived_max_pipes(conns, nofile);
            assert!(2 * conns + 2 * pipes + reserve(nofile) <= nofile, "{nofile}: {conns} conns, {pipes} pipes");
            assert!(pipes <= MAX_PIPES && pipes > 0);
        }
        // Above ~20k descriptors a quarter of the connections is the pipe budget.
        assert_eq!(derived_max_pipes(derived_max_connections(20_000), 20_000), derived_max_connections(20_000) / 4);
        assert_eq!(derived_max_pipes(1_000_000, 0), MAX_PIPES, "unknown descriptor limit: the cap");
        // An explicit limit takes what its sockets leave, or nothing.
        assert_eq!(derived_max_pipes(9_100, 20_000), (20_000 - 64 - 1_250 - 18_200) / 2);
        assert_eq!(derived_max_pipes(9_900, 20_000), 0);
    }
}
