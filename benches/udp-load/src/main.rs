//! The UDP side of Switchyard's benchmark (issue 17): an echo backend and a closed-loop
//! request/reply load generator, both batching with `recvmmsg`/`sendmmsg` so that neither is
//! the bottleneck on a 2-core box shared with the proxy under test.
//!
//! ```text
//! udp-load echo --port P[,P2...] [--threads N]
//! udp-load proxy --listen ADDR[=RESPONSES][,...] --backends A[,B...]   (the floor proxy: floor.rs)
//! udp-load load --target HOST:PORT [--flows 64] [--size 64] [--duration 5] [--window 1]
//!               [--threads 1] [--timeout-ms 1000] [--drain-ms 1000]
//! ```
//!
//! `echo` answers every datagram with itself, from the port it arrived on (one socket per port
//! and thread, SO_REUSEPORT), and prints `ready` once every port is bound.
//! `load` opens one connected socket per flow (distinct source ports), keeps `window` requests in
//! flight on each (a reply lets the next request go), and prints one JSON line: exchanges and
//! exchanges/s during `duration`, requests sent, answered, lost (never answered: timed out during
//! the run or still unanswered `drain-ms` after it) and the round-trip p50/p99.

mod floor;

use std::collections::HashMap;
use std::io::{self, Write};
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Datagrams moved per recvmmsg/sendmmsg call.
pub(crate) const BATCH: usize = 64;
/// Largest datagram the echo backend takes (the UDP maximum over IPv4).
const MAX_DATAGRAM: usize = 65_507;
/// Socket buffers asked for (as nginx's `rcvbuf=4m` in the bench): a burst must not overflow them.
const SOCKET_BUF: libc::c_int = 4 << 20;
/// Round-trip histogram: 1 µs buckets up to this many µs, then one overflow bucket.
const HIST_US: usize = 200_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("echo") => parse_opts(&args[1..]).and_then(|o| echo(&o)),
        Some("load") => parse_opts(&args[1..]).and_then(|o| load(&o)),
        Some("proxy") => parse_opts(&args[1..]).and_then(|o| floor::proxy(&o)),
        _ => Err("usage: udp-load echo --port P[,P2...] [--threads N] | udp-load proxy --listen ADDR[=RESPONSES][,...] --backends A[,B...] | udp-load load --target HOST:PORT [--flows 64] [--size 64] [--duration 5] [--window 1] [--threads 1] [--timeout-ms 1000] [--drain-ms 1000]".into()),
    };
    if let Err(e) = result {
        eprintln!("udp-load: {e}");
        std::process::exit(2);
    }
}

pub(crate) type Opts = HashMap<String, String>;

/// `--key value` pairs.
fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let key = k.strip_prefix("--").ok_or_else(|| format!("unexpected argument {k}"))?;
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        o.insert(key.to_string(), v.clone());
    }
    Ok(o)
}

fn num<T: std::str::FromStr>(o: &Opts, key: &str, default: T) -> Result<T, String> {
    match o.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("--{key}: not a number: {v}")),
    }
}

pub(crate) fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

pub(crate) fn sockaddr_of(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: fd is a socket we own; v lives across the call
    unsafe { libc::setsockopt(fd, level, opt, &v as *const _ as *const libc::c_void, size_of::<libc::c_int>() as libc::socklen_t) == 0 }
}

/// A UDP socket bound to `bind` (SO_REUSEPORT when `reuseport`), connected to `connect` when
/// given, with large buffers (SO_RCVBUFFORCE where allowed, else what rmem_max permits).
pub(crate) fn udp_socket(bind: SocketAddrV4, connect: Option<SocketAddrV4>, reuseport: bool, nonblocking: bool) -> Result<RawFd, String> {
    // SAFETY: plain socket syscalls on a descriptor owned here
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 }, 0);
        if fd < 0 {
            return Err(os_err("socket"));
        }
        if reuseport && !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1) {
            return Err(os_err("SO_REUSEPORT"));
        }
        for (force, plain) in [(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF), (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)] {
            if !setsockopt_int(fd, libc::SOL_SOCKET, force, SOCKET_BUF) {
                setsockopt_int(fd, libc::SOL_SOCKET, plain, SOCKET_BUF);
            }
        }
        let sa = sockaddr_of(bind);
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_in>() as libc::socklen_t) != 0 {
            return Err(os_err(&format!("bind {bind}")));
        }
        if let Some(c) = connect {
            let sa = sockaddr_of(c);
            if libc::connect(fd, &sa as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_in>() as libc::socklen_t) != 0 {
                return Err(os_err(&format!("connect {c}")));
            }
        }
        Ok(fd)
    }
}

// ------------------------------------------------------------------ echo

/// Echo every datagram on every port, `threads` sockets (and threads) per port.
fn echo(o: &Opts) -> Result<(), String> {
    let ports: Vec<u16> = o
        .get("port")
        .ok_or("echo needs --port P[,P2...]")?
        .split(',')
        .map(|p| p.trim().parse().map_err(|_| format!("--port: bad port {p}")))
        .collect::<Result<_, _>>()?;
    let threads: usize = num(o, "threads", 1)?;
    let mut fds = Vec::new();
    for &port in &ports {
        for _ in 0..threads.max(1) {
            fds.push(udp_socket(SocketAddrV4::new([127, 0, 0, 1].into(), port), None, true, false)?);
        }
    }
    println!("ready");
    io::stdout().flush().ok();
    let handles: Vec<_> = fds.into_iter().map(|fd| std::thread::spawn(move || echo_loop(fd))).collect();
    for h in handles {
        h.join().ok();
    }
    Ok(())
}

/// Receive up to BATCH datagrams (blocking for the first), send each back to its sender.
fn echo_loop(fd: RawFd) {
    let mut bufs = vec![0u8; BATCH * MAX_DATAGRAM];
    // SAFETY: zeroed sockaddr/iovec/mmsghdr are valid; the pointers set below stay valid for the
    // life of this function (bufs, iovs, names and msgs are not moved or resized).
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = (0..BATCH)
        .map(|i| libc::iovec { iov_base: bufs[i * MAX_DATAGRAM..].as_mut_ptr() as *mut libc::c_void, iov_len: MAX_DATAGRAM })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; BATCH];
    loop {
        for i in 0..BATCH {
            iovs[i].iov_len = MAX_DATAGRAM;
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = &mut names[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: msgs describes BATCH valid buffers (see above)
        let n = unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut()) };
        if n <= 0 {
            continue; // EINTR, or an ICMP error from a client that went away
        }
        let n = n as usize;
        for i in 0..n {
            iovs[i].iov_len = msgs[i].msg_len as usize;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: as above; msg_name holds the sender's address recvmmsg filled in
            let r = unsafe { libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (n - sent) as libc::c_uint, 0) };
            if r <= 0 {
                break; // a full send buffer or an unreachable client: drop the rest, as a server would
            }
            sent += r as usize;
        }
    }
}

// ------------------------------------------------------------------ load

struct Flow {
    fd: RawFd,
    id: u32,
    next_seq: u64,
    /// Requests in flight: (sequence number, when sent).
    inflight: Vec<(u64, Instant)>,
    /// Requests given up on (timed out) that may still be answered late.
    timed_out: Vec<u64>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    /// Replies counted inside the measured window.
    exchanges: u64,
    late: u64,
    lost: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Vec<u64>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.exchanges += o.exchanges;
        self.late += o.late;
        self.lost += o.lost;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        if self.hist.is_empty() {
            self.hist = o.hist;
        } else {
            for (a, b) in self.hist.iter_mut().zip(o.hist) {
                *a += b;
            }
        }
    }

    fn percentile_us(&self, p: f64) -> Option<f64> {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((p * total as f64).ceil() as u64).max(1);
        let mut acc = 0;
        for (us, n) in self.hist.iter().enumerate() {
            acc += n;
            if acc >= want {
                return Some(us as f64);
            }
        }
        None
    }
}

struct LoadCfg {
    size: usize,
    window: usize,
    duration: Duration,
    timeout: Duration,
    drain: Duration,
}

fn load(o: &Opts) -> Result<(), String> {
    let target = o.get("target").ok_or("load needs --target HOST:PORT")?;
    let target = match target.to_socket_addrs().map_err(|e| format!("--target {target}: {e}"))?.find(|a| a.is_ipv4()) {
        Some(SocketAddr::V4(a)) => a,
        _ => return Err(format!("--target {target}: no IPv4 address")),
    };
    let flows: usize = num(o, "flows", 64)?;
    let threads: usize = num::<usize>(o, "threads", 1)?.clamp(1, flows.max(1));
    let cfg = LoadCfg {
        size: num::<usize>(o, "size", 64)?.clamp(12, MAX_DATAGRAM),
        window: num::<usize>(o, "window", 1)?.clamp(1, BATCH),
        duration: Duration::from_secs_f64(num(o, "duration", 5.0)?),
        timeout: Duration::from_millis(num(o, "timeout-ms", 1000)?),
        drain: Duration::from_millis(num(o, "drain-ms", 1000)?),
    };
    if flows == 0 {
        return Err("--flows must be ≥ 1".into());
    }
    // every flow its own socket, so its own source port; bound before any traffic starts
    let mut per_thread: Vec<Vec<Flow>> = (0..threads).map(|_| Vec::new()).collect();
    for id in 0..flows {
        let fd = udp_socket(SocketAddrV4::new([127, 0, 0, 1].into(), 0), Some(target), false, true)?;
        per_thread[id % threads].push(Flow { fd, id: id as u32, next_seq: 0, inflight: Vec::new(), timed_out: Vec::new() });
    }
    let cfg = std::sync::Arc::new(cfg);
    let start = Instant::now() + Duration::from_millis(20);
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|fl| {
            let cfg = cfg.clone();
            std::thread::spawn(move || run_flows(fl, &cfg, start))
        })
        .collect();
    let mut t = Tally::default();
    for h in handles {
        t.add(h.join().map_err(|_| "a load thread panicked")??);
    }
    let secs = cfg.duration.as_secs_f64();
    let loss_pct = if t.sent > 0 { 100.0 * t.lost as f64 / t.sent as f64 } else { 0.0 };
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x}"));
    println!(
        "{{\"target\":\"{target}\",\"flows\":{flows},\"size\":{},\"window\":{},\"threads\":{threads},\"duration_s\":{secs},\"exchanges\":{},\"rate\":{:.1},\"sent\":{},\"answered\":{},\"late\":{},\"lost\":{},\"loss_pct\":{:.4},\"errors\":{},\"first_error\":{},\"p50_us\":{},\"p99_us\":{}}}",
        cfg.size,
        cfg.window,
        t.exchanges,
        t.exchanges as f64 / secs,
        t.sent,
        t.answered,
        t.late,
        t.lost,
        loss_pct,
        t.errors,
        t.first_error.as_ref().map_or("null".to_string(), |e| format!("\"{}\"", e.replace('"', "'"))),
        opt(t.percentile_us(0.5)),
        opt(t.percentile_us(0.99)),
    );
    Ok(())
}

/// One thread's flows: an epoll loop until the end of the run, then a drain.
fn run_flows(mut flows: Vec<Flow>, cfg: &LoadCfg, start: Instant) -> Result<Tally, String> {
    let mut t = Tally { hist: vec![0; HIST_US + 1], ..Tally::default() };
    // SAFETY: epoll on descriptors owned by this thread's flows
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    for (i, f) in flows.iter().enumerate() {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
        // SAFETY: as above
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, f.fd, &mut ev) } != 0 {
            return Err(os_err("epoll_ctl"));
        }
    }
    let mut out = vec![0u8; BATCH * cfg.size];
    let mut inb = vec![0u8; BATCH * cfg.size.max(64)];
    let in_size = cfg.size.max(64);
    let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    while Instant::now() < start {
        std::hint::spin_loop();
    }
    let end = start + cfg.duration;
    for f in flows.iter_mut() {
        send_requests(f, cfg.window, cfg.size, &mut out, &mut t, Instant::now());
    }
    let mut last_scan = Instant::now();
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let sending = now < end;
        if !sending && drain_until.is_none() {
            drain_until = Some(now + cfg.drain);
        }
        if let Some(d) = drain_until {
            if now >= d || flows.iter().all(|f| f.inflight.is_empty() && f.timed_out.is_empty()) {
                break;
            }
        }
        // SAFETY: events has room for its length
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as libc::c_int, 10) };
        let now = Instant::now();
        for ev in events.iter().take(n.max(0) as usize) {
            let f = &mut flows[ev.u64 as usize];
            let got = recv_replies(f, &mut inb, in_size, &mut t, now, now < end);
            if got > 0 && now < end {
                send_requests(f, got, cfg.size, &mut out, &mut t, now);
            }
        }
        // requests not answered within the timeout are given up on (and replaced while sending)
        if now.duration_since(last_scan) >= Duration::from_millis(20) {
            last_scan = now;
            for f in flows.iter_mut() {
                let before = f.inflight.len();
                let mut expired = Vec::new();
                f.inflight.retain(|&(seq, at)| {
                    let keep = now.duration_since(at) < cfg.timeout;
                    if !keep {
                        expired.push(seq);
                    }
                    keep
                });
                f.timed_out.extend(expired);
                let gone = before - f.inflight.len();
                if gone > 0 && now < end {
                    send_requests(f, gone, cfg.size, &mut out, &mut t, now);
                }
            }
        }
    }
    for f in &flows {
        t.lost += (f.inflight.len() + f.timed_out.len()) as u64;
        // SAFETY: closing descriptors owned here
        unsafe { libc::close(f.fd) };
    }
    // SAFETY: as above
    unsafe { libc::close(ep) };
    Ok(t)
}

/// Send `n` new requests on flow `f` (one sendmmsg): sequence number and flow id in the first 12 bytes.
fn send_requests(f: &mut Flow, n: usize, size: usize, out: &mut [u8], t: &mut Tally, now: Instant) {
    let n = n.min(BATCH);
    // SAFETY: zeroed iovec/mmsghdr are valid; they point into `out`, which outlives the call
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for i in 0..n {
        let b = &mut out[i * size..(i + 1) * size];
        b[..8].copy_from_slice(&(f.next_seq + i as u64).to_le_bytes());
        b[8..12].copy_from_slice(&f.id.to_le_bytes());
        iovs[i] = libc::iovec { iov_base: b.as_mut_ptr() as *mut libc::c_void, iov_len: size };
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: msgs[..n] describe valid buffers; the socket is connected (no msg_name)
    let r = unsafe { libc::sendmmsg(f.fd, msgs.as_mut_ptr(), n as libc::c_uint, 0) };
    if r < 0 {
        note_error(t, "sendmmsg");
        return; // nothing went out: the window refills when the timeout scan finds it short
    }
    for i in 0..r as u64 {
        f.inflight.push((f.next_seq + i, now));
    }
    f.next_seq += r as u64;
    t.sent += r as u64;
}

/// Take every reply queued on flow `f` (recvmmsg, non-blocking); returns how many answered a
/// request still in flight (so that many new ones may go).
fn recv_replies(f: &mut Flow, inb: &mut [u8], in_size: usize, t: &mut Tally, now: Instant, counting: bool) -> usize {
    let mut freed = 0;
    loop {
        // SAFETY: as in send_requests, pointing into `inb`
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec { iov_base: inb[i * in_size..].as_mut_ptr() as *mut libc::c_void, iov_len: in_size };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: as above
        let r = unsafe { libc::recvmmsg(f.fd, msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                note_error(t, "recvmmsg"); // e.g. ECONNREFUSED: an ICMP error for an earlier datagram
                continue;
            }
            return freed;
        }
        let r = r as usize;
        for i in 0..r {
            let len = msgs[i].msg_len as usize;
            if len < 12 {
                continue;
            }
            let b = &inb[i * in_size..];
            let seq = u64::from_le_bytes(b[..8].try_into().unwrap());
            if let Some(pos) = f.inflight.iter().position(|&(s, _)| s == seq) {
                let (_, at) = f.inflight.swap_remove(pos);
                t.answered += 1;
                freed += 1;
                if counting {
                    t.exchanges += 1;
                    let us = now.duration_since(at).as_micros() as usize;
                    t.hist[us.min(HIST_US)] += 1;
                }
            } else if let Some(pos) = f.timed_out.iter().position(|&s| s == seq) {
                f.timed_out.swap_remove(pos);
                t.answered += 1;
                t.late += 1;
            }
        }
        if r < BATCH {
            return freed;
        }
    }
}

fn note_error(t: &mut Tally, what: &str) {
    t.errors += 1;
    if t.first_error.is_none() {
        t.first_error = Some(format!("{what}: {}", io::Error::last_os_error()));
    }
}
