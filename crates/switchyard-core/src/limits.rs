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
