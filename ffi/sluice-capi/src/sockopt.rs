//! `getsockopt` / `setsockopt`.
//!
//! What takes effect: SO_LINGER (at close: `l_onoff = 1, l_linger = 0` resets the
//! connection), SO_RCVTIMEO / SO_SNDTIMEO (bound blocking calls), SO_REUSEADDR (bind's
//! port check), SO_ERROR (reads and clears the pending error), TCP_MAXSEG read on a
//! connection (the MSS in use).
//!
//! TCP_NODELAY, SO_KEEPALIVE and TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (RFC 1122
//! 4.2.3.6; Linux's defaults 7200 s, 75 s, 9 and bounds) apply to a live connection at
//! once, and to a connection when it is opened. On a listening socket, TCP_NODELAY, SO_KEEPALIVE, TCP_MAXSEG,
//! SO_RCVBUF and SO_SNDBUF set before `listen` become the settings of the connections it
//! accepts (buffers are allocated when a connection is created, so they cannot change
//! later, nor for `connect`, which takes the instance's `--rcvbuf=`/`--sndbuf=`). Values
//! are inherited by accepted sockets from their listener, as on Linux. SO_RCVBUF /
//! SO_SNDBUF store twice the value set, as Linux does, and that is the buffer size used.

use core::time::Duration;

use crate::errno::*;
use sluice_tcp::CongestionKind;

use crate::stack::{Kind, Shared, Stack, TcpSt, UdpSt};

fn int(val: &[u8]) -> Res<i32> {
    let b: [u8; 4] = val.get(..4).and_then(|b| b.try_into().ok()).ok_or(EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

/// A positive count of at most `max` (EINVAL otherwise, as Linux).
fn bounded(v: i32, max: i32) -> Res<u64> {
    if (1..=max).contains(&v) {
        Ok(v as u64)
    } else {
        Err(EINVAL)
    }
}

fn put_int(out: &mut [u8], v: i32) -> Res<usize> {
    let dst = out.get_mut(..4).ok_or(EINVAL)?;
    dst.copy_from_slice(&v.to_ne_bytes());
    Ok(4)
}

const TIMEVAL_LEN: usize = core::mem::size_of::<libc::timeval>();
const LINGER_LEN: usize = core::mem::size_of::<libc::linger>();

fn timeval(val: &[u8]) -> Res<Option<Duration>> {
    if val.len() < TIMEVAL_LEN {
        return Err(EINVAL);
    }
    let sec = i64::from_ne_bytes(val[0..8].try_into().map_err(|_| EINVAL)?);
    let usec = i64::from_ne_bytes(val[8..16].try_into().map_err(|_| EINVAL)?);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno(libc::EDOM));
    }
    let d = Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

fn put_timeval(out: &mut [u8], d: Option<Duration>) -> Res<usize> {
    let d = d.unwrap_or_default();
    let dst = out.get_mut(..TIMEVAL_LEN).ok_or(EINVAL)?;
    dst[0..8].copy_from_slice(&(d.as_secs() as i64).to_ne_bytes());
    dst[8..16].copy_from_slice(&(d.subsec_micros() as i64).to_ne_bytes());
    Ok(TIMEVAL_LEN)
}

fn take_error(st: &mut Stack, fd: i32) -> Res<i32> {
    let (iface, s) = st.parts(fd)?;
    Ok(match &mut s.kind {
        Kind::Tcp(TcpSt::Conn(c)) => match iface.tcp_status(c.h).and_then(|t| t.error()) {
            Some(e) if !c.err_taken => {
                c.err_taken = true;
                conn_errno(e).0
            }
            _ => 0,
        },
        Kind::Udp(u) => match u.h.and_then(|h| iface.udp(h).and_then(|mut sk| sk.take_error())) {
            Some(e) if e.reason == sluice_wire::Icmpv4DstUnreachable::PortUnreachable => libc::ECONNREFUSED,
            Some(_) => libc::EHOSTUNREACH,
            None => 0,
        },
        Kind::Tcp(_) => 0,
    })
}

/// Applies the options that can change on a live connection.
pub(crate) fn apply_live(
    iface: &mut sluice_net::Interface,
    h: sluice_net::TcpHandle,
    o: &crate::stack::SockOpts,
) {
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_nodelay(o.nodelay && !o.cork);
    }
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_congestion(o.congestion);
    }
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_keepalive(o.keepalive.then_some(o.keep));
    }
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_user_timeout(o.user_timeout);
    }
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_syn_retries(o.syncnt);
    }
    if let Some(mut sk) = iface.tcp(h) {
        sk.set_ip_options(o.tos, o.ttl);
    }
}

/// The TCP settings of the connections a listener with these options accepts.
pub(crate) fn listener_config(
    base: sluice_net::TcpConfig,
    o: &crate::stack::SockOpts,
) -> sluice_net::TcpConfig {
    let mut cfg = base;
    cfg.nodelay = o.nodelay && !o.cork;
    cfg.congestion = o.congestion;
    cfg.keepalive = o.keepalive.then_some(o.keep);
    cfg.user_timeout = o.user_timeout;
    cfg.max_syn_retransmissions = o.syncnt;
    cfg.ip_tos = o.tos;
    cfg.ip_ttl = o.ttl;
    cfg.recv_buffer = o.rcvbuf as usize;
    cfg.send_buffer = o.sndbuf as usize;
    if let Some(m) = o.maxseg {
        cfg.mss = m.min(u32::from(u16::MAX)) as u16;
    }
    cfg
}

impl Shared {
    /// `setsockopt` with the option's bytes.
    pub fn setsockopt(&self, fd: i32, level: i32, name: i32, val: &[u8]) -> Res<()> {
        self.with(|st| {
            let s = st.sock_mut(fd)?;
            let tcp = matches!(s.kind, Kind::Tcp(_));
            let fresh = matches!(
                s.kind,
                Kind::Tcp(TcpSt::Fresh { port: None }) | Kind::Udp(UdpSt { h: None, .. })
            );
            let o = &mut s.opts;
            match (level, name) {
                // Dual-stack sockets (`SockOpts::inet6`); fixed once bound, as in Linux.
                (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if o.inet6 => {
                    if !fresh {
                        return Err(EINVAL);
                    }
                    o.v6only = int(val)? != 0;
                }
                // For IPv4 peers of an AF_INET6 socket these are IP_TOS and IP_TTL.
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if tcp && o.inet6 => {
                    o.tos = (int(val)?.clamp(0, 255) as u8) & !0x03
                }
                (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) if tcp && o.inet6 => {
                    o.ttl = match int(val)? {
                        -1 => None,
                        v @ 1..=255 => Some(v as u8),
                        _ => return Err(EINVAL),
                    }
                }
                (libc::SOL_SOCKET, libc::SO_REUSEADDR) => o.reuseaddr = int(val)? != 0,
                (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => o.keepalive = int(val)? != 0,
                (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
                    o.rcvbuf = (int(val)?.max(0) as u32).saturating_mul(2).max(2304);
                }
                (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                    o.sndbuf = (int(val)?.max(0) as u32).saturating_mul(2).max(4608);
                }
                (libc::SOL_SOCKET, libc::SO_LINGER) => {
                    if val.len() < LINGER_LEN {
                        return Err(EINVAL);
                    }
                    let onoff = int(&val[0..4])?;
                    let secs = int(&val[4..8])?;
                    o.linger = (onoff != 0).then_some(secs.max(0));
                }
                (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => o.rcvtimeo = timeval(val)?,
                (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => o.sndtimeo = timeval(val)?,
                (libc::IPPROTO_TCP, libc::TCP_NODELAY) if tcp => o.nodelay = int(val)? != 0,
                // RFC 1122 4.2.3.6, with Linux's bounds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPCNT).
                (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) if tcp => {
                    o.keep.idle = Duration::from_secs(bounded(int(val)?, 32767)?);
                }
                (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) if tcp => {
                    o.keep.interval = Duration::from_secs(bounded(int(val)?, 32767)?);
                }
                (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) if tcp => {
                    o.keep.count = bounded(int(val)?, 127)? as u32
                }
                // RFC 1122 4.2.3.5 R2, in milliseconds; 0: the system's (the count alone).
                (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) if tcp => {
                    let ms = int(val)?;
                    if ms < 0 {
                        return Err(EINVAL);
                    }
                    o.user_timeout = (ms > 0).then(|| Duration::from_millis(ms as u64));
                }
                (libc::IPPROTO_TCP, libc::TCP_SYNCNT) if tcp => o.syncnt = bounded(int(val)?, 127)? as u32,
                (libc::IPPROTO_TCP, libc::TCP_MAXSEG) if tcp => {
                    let v = int(val)?;
                    if v != 0 && !(88..=32767).contains(&v) {
                        return Err(EINVAL);
                    }
                    o.maxseg = (v != 0).then_some(v as u32);
                }
                // RFC 1122 MUST-48: the DS field and the TTL, per socket. As Linux, a TCP
                // socket keeps the ECN bits to itself (they are TCP's to set).
                (libc::IPPROTO_IP, libc::IP_TOS) if tcp => o.tos = (int(val)? as u8) & !0x03,
                (libc::IPPROTO_IP, libc::IP_TTL) if tcp => {
                    o.ttl = match int(val)? {
                        -1 => None,
                        v @ 1..=255 => Some(v as u8),
                        _ => return Err(EINVAL),
                    }
                }
                (libc::SOL_SOCKET, libc::SO_REUSEPORT) => o.reuseport = int(val)? != 0,
                (libc::IPPROTO_TCP, libc::TCP_CORK) if tcp => o.cork = int(val)? != 0,
                (libc::IPPROTO_TCP, libc::TCP_QUICKACK) if tcp => o.quickack = int(val)? != 0,
                (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) if tcp => o.defer_accept = int(val)?.max(0),
                (libc::IPPROTO_TCP, libc::TCP_CONGESTION) if tcp => o.congestion = congestion(val)?,
                _ => return Err(ENOPROTOOPT),
            }
            if matches!(
                (level, name),
                (
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY | libc::TCP_CORK | libc::TCP_CONGESTION
                ) | (libc::SOL_SOCKET, libc::SO_KEEPALIVE)
                    | (
                        libc::IPPROTO_TCP,
                        libc::TCP_KEEPIDLE
                            | libc::TCP_KEEPINTVL
                            | libc::TCP_KEEPCNT
                            | libc::TCP_USER_TIMEOUT
                            | libc::TCP_SYNCNT
                    )
                    | (libc::IPPROTO_IP, libc::IP_TOS | libc::IP_TTL)
                    | (libc::IPPROTO_IPV6, libc::IPV6_TCLASS | libc::IPV6_UNICAST_HOPS)
            ) {
                let (iface, s) = st.parts(fd)?;
                if let Kind::Tcp(TcpSt::Conn(c)) = s.kind {
                    apply_live(iface, c.h, &s.opts);
                }
            }
            Ok(())
        })
    }

    /// `getsockopt`: writes the value into `out`, returns its length.
    pub fn getsockopt(&self, fd: i32, level: i32, name: i32, out: &mut [u8]) -> Res<usize> {
        self.with(|st| {
            if (level, name) == (libc::SOL_SOCKET, libc::SO_ERROR) {
                let e = take_error(st, fd)?;
                return put_int(out, e);
            }
            let mss = st.cfg.tcp.mss;
            let s = st.sock(fd)?;
            let tcp = matches!(s.kind, Kind::Tcp(_));
            let o = &s.opts;
            match (level, name) {
                (libc::SOL_SOCKET, libc::SO_TYPE) => {
                    put_int(out, if tcp { libc::SOCK_STREAM } else { libc::SOCK_DGRAM })
                }
                (libc::SOL_SOCKET, libc::SO_DOMAIN) => {
                    put_int(out, if o.inet6 { libc::AF_INET6 } else { libc::AF_INET })
                }
                (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if o.inet6 => put_int(out, o.v6only as i32),
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if tcp && o.inet6 => put_int(out, i32::from(o.tos)),
                (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) if tcp && o.inet6 => {
                    put_int(out, i32::from(o.ttl.unwrap_or(st.cfg.interface_config().ttl)))
                }
                (libc::SOL_SOCKET, libc::SO_PROTOCOL) => {
                    put_int(out, if tcp { libc::IPPROTO_TCP } else { libc::IPPROTO_UDP })
                }
                (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
                    put_int(out, matches!(s.kind, Kind::Tcp(TcpSt::Listen { .. })) as i32)
                }
                (libc::SOL_SOCKET, libc::SO_REUSEADDR) => put_int(out, o.reuseaddr as i32),
                (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => put_int(out, o.keepalive as i32),
                (libc::SOL_SOCKET, libc::SO_RCVBUF) => put_int(out, o.rcvbuf.min(i32::MAX as u32) as i32),
                (libc::SOL_SOCKET, libc::SO_SNDBUF) => put_int(out, o.sndbuf.min(i32::MAX as u32) as i32),
                (libc::SOL_SOCKET, libc::SO_LINGER) => {
                    let dst = out.get_mut(..LINGER_LEN).ok_or(EINVAL)?;
                    dst[0..4].copy_from_slice(&(o.linger.is_some() as i32).to_ne_bytes());
                    dst[4..8].copy_from_slice(&o.linger.unwrap_or(0).to_ne_bytes());
                    Ok(LINGER_LEN)
                }
                (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => put_timeval(out, o.rcvtimeo),
                (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => put_timeval(out, o.sndtimeo),
                (libc::IPPROTO_TCP, libc::TCP_NODELAY) if tcp => put_int(out, o.nodelay as i32),
                (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) if tcp => put_int(out, o.keep.idle.as_secs() as i32),
                (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) if tcp => {
                    put_int(out, o.keep.interval.as_secs() as i32)
                }
                (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) if tcp => put_int(out, o.keep.count as i32),
                (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) if tcp => put_int(
                    out,
                    o.user_timeout
                        .map_or(0, |d| d.as_millis().min(i32::MAX as u128) as i32),
                ),
                (libc::IPPROTO_TCP, libc::TCP_SYNCNT) if tcp => put_int(out, o.syncnt as i32),
                (libc::IPPROTO_IP, libc::IP_TOS) if tcp => put_int(out, i32::from(o.tos)),
                (libc::IPPROTO_IP, libc::IP_TTL) if tcp => {
                    put_int(out, i32::from(o.ttl.unwrap_or(st.cfg.interface_config().ttl)))
                }
                (libc::IPPROTO_TCP, libc::TCP_MAXSEG) if tcp => {
                    let live = match s.kind {
                        Kind::Tcp(TcpSt::Conn(c)) => st.iface.tcp_status(c.h).map(|t| t.tcb().mss() as u32),
                        _ => None,
                    };
                    put_int(out, live.or(o.maxseg).unwrap_or(u32::from(mss)) as i32)
                }
                (libc::SOL_SOCKET, libc::SO_REUSEPORT) => put_int(out, o.reuseport as i32),
                (libc::IPPROTO_TCP, libc::TCP_CORK) if tcp => put_int(out, o.cork as i32),
                (libc::IPPROTO_TCP, libc::TCP_QUICKACK) if tcp => put_int(out, o.quickack as i32),
                (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) if tcp => put_int(out, o.defer_accept),
                (libc::IPPROTO_TCP, libc::TCP_CONGESTION) if tcp => {
                    let name: &[u8] = match o.congestion {
                        CongestionKind::Cubic => b"cubic",
                        CongestionKind::NewReno => b"reno",
                        CongestionKind::Unlimited => b"none",
                    };
                    // Linux copies up to the caller's length, NUL-padded (TCP_CA_NAME_MAX).
                    let n = out.len().min(16);
                    out[..n].fill(0);
                    let k = name.len().min(n);
                    out[..k].copy_from_slice(&name[..k]);
                    Ok(n)
                }
                (libc::IPPROTO_TCP, libc::TCP_INFO) if tcp => tcp_info(st, s, out),
                _ => Err(ENOPROTOOPT),
            }
        })
    }
}

/// TCP_CONGESTION's value: a controller's name, NUL-terminated or not.
fn congestion(val: &[u8]) -> Res<CongestionKind> {
    let end = val.iter().position(|&b| b == 0).unwrap_or(val.len());
    match &val[..end] {
        b"cubic" => Ok(CongestionKind::Cubic),
        b"reno" | b"newreno" => Ok(CongestionKind::NewReno),
        // Linux: no such module.
        _ => Err(Errno(libc::ENOENT)),
    }
}

/// TCP_INFO: Linux's `struct tcp_info`, as much of it as Sluice keeps (the rest 0), cut
/// to the caller's length as Linux does.
fn tcp_info(st: &Stack, s: &crate::stack::Sock, out: &mut [u8]) -> Res<usize> {
    // SAFETY: tcp_info is plain integers; all-zero is a valid value.
    let mut ti: libc::tcp_info = unsafe { core::mem::zeroed() };
    match s.kind {
        Kind::Tcp(TcpSt::Conn(c)) => match st.iface.tcp_status(c.h).map(|t| t.info()) {
            Some(ci) => {
                let mss = ci.mss.max(1);
                let seg = |b: usize| u32::try_from(b / mss).unwrap_or(u32::MAX);
                ti.tcpi_state = crate::stats::linux_state(ci.state);
                ti.tcpi_rto = ci.rto_ms.saturating_mul(1000).min(u64::from(u32::MAX)) as u32;
                ti.tcpi_snd_mss = mss as u32;
                ti.tcpi_rcv_mss = mss as u32;
                ti.tcpi_advmss = mss as u32;
                ti.tcpi_unacked = seg(ci.in_flight + mss - 1);
                ti.tcpi_rtt = ci.srtt_us as u32;
                ti.tcpi_rttvar = ci.rttvar_us as u32;
                ti.tcpi_snd_cwnd = seg(ci.cwnd).max(1);
                ti.tcpi_snd_ssthresh = seg(ci.ssthresh.min(u32::MAX as usize));
                ti.tcpi_pmtu = (mss + 40) as u32;
                ti.tcpi_total_retrans = ci.retransmits.min(u64::from(u32::MAX)) as u32;
                ti.tcpi_rcv_space = s.opts.rcvbuf;
                if let Some(t) = st.iface.tcp_status(c.h).map(|t| t.tcb()) {
                    // Linux's TCPI_OPT_TIMESTAMPS, _SACK, _WSCALE.
                    ti.tcpi_options = u8::from(t.timestamps_enabled())
                        | u8::from(t.sack_enabled()) << 1
                        | u8::from(t.window_scales() != (0, 0)) << 2;
                    let (ours, peer) = t.window_scales();
                    ti.tcpi_snd_rcv_wscale = (peer & 0x0f) | (ours & 0x0f) << 4;
                    ti.tcpi_retransmits = t.consecutive_timeouts().min(255) as u8;
                    ti.tcpi_backoff = ti.tcpi_retransmits;
                }
            }
            None => ti.tcpi_state = 7, // TCP_CLOSE
        },
        Kind::Tcp(TcpSt::Listen { .. }) => ti.tcpi_state = 10,
        _ => ti.tcpi_state = 7,
    }
    let n = out.len().min(core::mem::size_of::<libc::tcp_info>());
    // SAFETY: reads the bytes of a local plain-old-data struct.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (&ti as *const libc::tcp_info).cast::<u8>(),
            core::mem::size_of::<libc::tcp_info>(),
        )
    };
    out[..n].copy_from_slice(&bytes[..n]);
    Ok(n)
}
