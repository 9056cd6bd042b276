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

/// The engine-wide connection limit `RLIMIT_NOFILE` allows, as HAProxy
/// derives its `maxconn` from `ulimit -n`: each connection holds two sockets
/// (client and backend), and a reserve is kept for everything else this
/// process opens (health checks, the admin API, DNS, Node's own files).
/// Pipes for splice are not counted yet: a pipe that cannot be created
/// means that connection copies instead (an accept or connect meeting
/// `EMFILE` meanwhile is a local error, see `accept.rs`).
pub fn derived_max_connections(nofile: u64) -> u64 {
    (nofile.saturating_sub(reserve(nofile)) / 2).max(1)
}

/// Descriptors kept out of the connection limit: 64, plus 1/16 of the limit.
pub fn reserve(nofile: u64) -> u64 {
    64 + nofile / 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_limit_keeps_a_reserve_and_two_descriptors_per_connection() {
        assert_eq!(derived_max_connections(200), (200 - 64 - 12) / 2);
        assert_eq!(derived_max_connections(1_048_576), (1_048_576 - 64 - 65_536) / 2);
        assert_eq!(derived_max_connections(10), 1, "never zero");
    }
}
