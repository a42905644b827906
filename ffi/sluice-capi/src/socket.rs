//! The socket calls in safe Rust, on an instance: what the C functions do once their
//! pointers are checked. Each returns `Res` with the errno Linux would give.

use core::time::Duration;

use sluice_net::{
    BindError, Endpoint, Families, Interface, TcpConnectError, TcpListenError, TcpRecvError, TcpState,
    UdpConnectError, UdpRecvError, UdpSendError,
};
use sluice_wire::{Icmpv4DstUnreachable, IpAddress, Ipv4Address};

use crate::errno::*;
use crate::stack::{Conn, File, Kind, Shared, Sock, SockAddr, SockName, SockOpts, Stack, TcpSt, UdpSt};

/// `recv` flags understood; others fail with EOPNOTSUPP (MSG_NOSIGNAL is accepted
/// everywhere: Sluice never raises SIGPIPE).
const RECV_FLAGS: i32 = libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_WAITALL | libc::MSG_NOSIGNAL;
const SEND_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE;

impl Stack {
    fn default_opts(&self) -> SockOpts {
        SockOpts {
            nodelay: self.cfg.tcp.nodelay,
            maxseg: None,
            rcvbuf: self.cfg.tcp.recv_buffer.min(i32::MAX as usize) as u32,
            sndbuf: self.cfg.tcp.send_buffer.min(i32::MAX as usize) as u32,
            keepalive: false,
            keep: sluice_net::Keepalive::default(),
            user_timeout: self.cfg.tcp.user_timeout,
            syncnt: self.cfg.tcp.max_syn_retransmissions,
            reuseaddr: false,
            linger: None,
            rcvtimeo: None,
            sndtimeo: None,
            tos: 0,
            ttl: None,
            reuseport: false,
            cork: false,
            quickack: true,
            defer_accept: 0,
            congestion: self.cfg.tcp.congestion,
            inet6: false,
            v6only: false,
            bound_any: false,
            bound_addr: None,
        }
    }

    /// The local port of a socket, if it has one.
    fn port_of(iface: &Interface, s: &Sock) -> Option<u16> {
        match s.kind {
            Kind::Tcp(TcpSt::Fresh { port }) => port,
            Kind::Tcp(TcpSt::Listen { port, .. }) => Some(port),
            Kind::Tcp(TcpSt::Conn(c)) => iface.tcp_status(c.h).map(|t| t.local_port()),
            Kind::Udp(u) => u.h.and_then(|h| iface.udp_status(h).map(|u| u.local_port())),
        }
    }

    /// Whether TCP port `port` may be bound by `fd` (Linux's rules, simplified: a listener
    /// always conflicts; anything else conflicts unless both sides set SO_REUSEADDR).
    fn tcp_port_ok(&self, fd: i32, port: u16, reuse: bool) -> bool {
        let mine = self.sock(fd).map(|s| families_of(&s.opts).places()).ok();
        self.files.iter().enumerate().all(|(i, f)| {
            let Some(File::Sock(s)) = f else { return true };
            if i as i32 == fd || !matches!(s.kind, Kind::Tcp(_)) {
                return true;
            }
            // An AF_INET and an IPV6_V6ONLY socket may share a port (as on Linux).
            let theirs = families_of(&s.opts).places();
            if mine.is_some_and(|m| !(m[0] && theirs[0]) && !(m[1] && theirs[1])) {
                return true;
            }
            if Stack::port_of(&self.iface, s) != Some(port) {
                return true;
            }
            let listening = matches!(s.kind, Kind::Tcp(TcpSt::Listen { .. }));
            !listening && reuse && s.opts.reuseaddr
        })
    }

    fn ephemeral_tcp_port(&mut self, fd: i32) -> Res<u16> {
        for _ in 0..(61000 - 32768) {
            let p = self.next_port;
            self.next_port = if p >= 60999 { 32768 } else { p + 1 };
            if self.tcp_port_ok(fd, p, false) {
                return Ok(p);
            }
        }
        Err(EADDRNOTAVAIL)
    }

    fn check_local(&self, addr: IpAddress) -> Res<()> {
        let ours = match addr {
            IpAddress::V4(a) => a == self.iface.address(),
            IpAddress::V6(a) => self.iface.ipv6_addresses().any(|o| o == a),
        };
        if addr.is_unspecified() || ours {
            Ok(())
        } else {
            Err(EADDRNOTAVAIL)
        }
    }
}

/// The errno of a connection that failed, reported once; later calls see end of stream
/// (reads) or EPIPE (writes).
fn take_conn_error(iface: &Interface, c: &mut Conn) -> Option<Errno> {
    let e = iface.tcp_status(c.h).and_then(|t| t.error())?;
    if c.err_taken {
        return None;
    }
    c.err_taken = true;
    Some(conn_errno(e))
}

fn udp_errno(e: sluice_net::IcmpError) -> Errno {
    match e.reason {
        Icmpv4DstUnreachable::PortUnreachable => ECONNREFUSED,
        Icmpv4DstUnreachable::NetUnreachable => ENETUNREACH,
        _ => EHOSTUNREACH,
    }
}

fn total(bufs: &[&mut [u8]]) -> usize {
    bufs.iter().map(|b| b.len()).sum()
}

/// Copies `data` over the buffers in order; returns how much fitted.
fn scatter(bufs: &mut [&mut [u8]], data: &[u8]) -> usize {
    let mut off = 0;
    for b in bufs.iter_mut() {
        let n = b.len().min(data.len() - off);
        b[..n].copy_from_slice(&data[off..off + n]);
        off += n;
        if off == data.len() {
            break;
        }
    }
    off
}

/// The buffers less their first `skip` bytes.
fn skip<'a>(bufs: &[&'a [u8]], mut skip: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(bufs.len());
    for b in bufs {
        if skip >= b.len() {
            skip -= b.len();
        } else {
            out.push(&b[skip..]);
            skip = 0;
        }
    }
    out
}

fn tcp_read(iface: &mut Interface, c: &mut Conn, bufs: &mut [&mut [u8]], peek: bool) -> Res<Option<usize>> {
    if c.shut_rd || total(bufs) == 0 {
        return Ok(Some(0));
    }
    let map = |iface: &Interface, c: &mut Conn, e: TcpRecvError| -> Res<Option<usize>> {
        match e {
            TcpRecvError::Finished | TcpRecvError::InvalidHandle => Ok(Some(0)),
            TcpRecvError::Connection(_) => match take_conn_error(iface, c) {
                Some(e) => Err(e),
                None => Ok(Some(0)),
            },
            TcpRecvError::InvalidState => match iface
                .tcp_status(c.h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state())
            {
                TcpState::SynSent | TcpState::SynReceived => Ok(None),
                _ => match take_conn_error(iface, c) {
                    Some(e) => Err(e),
                    None => Ok(Some(0)),
                },
            },
        }
    };
    if peek {
        let mut tmp = vec![0u8; total(bufs)];
        let r = match iface.tcp_status(c.h).map(|t| t.tcb()) {
            None => return Ok(Some(0)),
            Some(tcb) => tcb.peek(&mut tmp),
        };
        return match r {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(scatter(bufs, &tmp[..n]))),
            Err(sluice_tcp::RecvError::Finished) => Ok(Some(0)),
            Err(sluice_tcp::RecvError::InvalidState) => map(iface, c, TcpRecvError::InvalidState),
            Err(sluice_tcp::RecvError::Connection(e)) => map(iface, c, TcpRecvError::Connection(e)),
        };
    }
    let mut n = 0;
    for b in bufs.iter_mut().filter(|b| !b.is_empty()) {
        match iface
            .tcp(c.h)
            .ok_or(sluice_net::TcpRecvError::InvalidHandle)
            .and_then(|mut sk| sk.recv(b))
        {
            Ok(k) => {
                n += k;
                if k < b.len() {
                    break;
                }
            }
            Err(_) if n > 0 => break,
            Err(e) => return map(iface, c, e),
        }
    }
    Ok((n > 0).then_some(n))
}

fn tcp_write(iface: &mut Interface, c: &mut Conn, bufs: &[&[u8]]) -> Res<Option<usize>> {
    if c.shut_wr {
        return Err(EPIPE);
    }
    if matches!(
        iface
            .tcp_status(c.h)
            .map_or(sluice_net::TcpState::Closed, |t| t.state()),
        TcpState::SynSent | TcpState::SynReceived
    ) {
        return Ok(None);
    }
    if iface.tcp_status(c.h).and_then(|t| t.error()).is_some() {
        return Err(take_conn_error(iface, c).unwrap_or(EPIPE));
    }
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    if len == 0 {
        return Ok(Some(0));
    }
    let mut n = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()) {
        match iface
            .tcp(c.h)
            .ok_or(sluice_net::TcpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send(b))
        {
            Ok(k) => {
                n += k;
                if k < b.len() {
                    break;
                }
            }
            Err(_) if n > 0 => break,
            Err(_) => return Err(EPIPE),
        }
    }
    Ok((n > 0).then_some(n))
}

/// (nonblocking, timeout) of a socket, for `Shared::attempt`.
fn mode(st: &Stack, fd: i32, dontwait: bool, send: bool) -> Res<(bool, Option<Duration>)> {
    let s = st.sock(fd)?;
    let t = if send { s.opts.sndtimeo } else { s.opts.rcvtimeo };
    Ok((s.nonblock || dontwait, t))
}

impl Shared {
    /// `socket(AF_INET or AF_INET6, SOCK_STREAM | SOCK_DGRAM [| SOCK_NONBLOCK |
    /// SOCK_CLOEXEC], 0)`. An AF_INET6 socket speaks to IPv4 peers through IPv4-mapped
    /// addresses (`SockOpts::inet6`).
    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Res<i32> {
        if domain != libc::AF_INET && domain != libc::AF_INET6 {
            return Err(EAFNOSUPPORT);
        }
        let nonblock = ty & libc::SOCK_NONBLOCK != 0;
        let kind = match (ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC), protocol) {
            (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Kind::Tcp(TcpSt::Fresh { port: None }),
            (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Kind::Udp(UdpSt {
                h: None,
                remote: None,
            }),
            (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => return Err(EPROTONOSUPPORT),
            _ => return Err(EINVAL),
        };
        self.with(|st| {
            let mut opts = st.default_opts();
            opts.inet6 = domain == libc::AF_INET6;
            st.alloc_fd(File::Sock(Sock { nonblock, opts, kind }))
        })
    }

    /// `bind`: the address must be INADDR_ANY or the stack's; port 0 picks one.
    pub fn bind(&self, fd: i32, local: SockAddr) -> Res<()> {
        self.with(|st| {
            let local = st.sock(fd)?.opts.endpoint(local, true)?;
            st.check_local(local.addr)?;
            let s = st.sock(fd)?.clone();
            match s.kind {
                Kind::Tcp(TcpSt::Fresh { port: None }) => {
                    let port = match local.port {
                        0 => st.ephemeral_tcp_port(fd)?,
                        p if st.tcp_port_ok(fd, p, s.opts.reuseaddr) => p,
                        _ => return Err(EADDRINUSE),
                    };
                    let s = st.sock_mut(fd)?;
                    s.kind = Kind::Tcp(TcpSt::Fresh { port: Some(port) });
                    s.opts.bound_any = local.addr.is_unspecified();
                    s.opts.bound_addr = Some(local.addr);
                    Ok(())
                }
                Kind::Udp(UdpSt { h: None, remote }) => {
                    let h = st.iface.udp_bind(local.port).map_err(|e| match e {
                        BindError::InUse => EADDRINUSE,
                        BindError::NoEphemeralPort => EADDRNOTAVAIL,
                    })?;
                    let s = st.sock_mut(fd)?;
                    s.kind = Kind::Udp(UdpSt { h: Some(h), remote });
                    s.opts.bound_any = local.addr.is_unspecified();
                    s.opts.bound_addr = Some(local.addr);
                    st.touch();
                    Ok(())
                }
                _ => Err(EINVAL),
            }
        })
    }

    /// `listen`: binds an ephemeral port first if unbound; again on a listener only
    /// changes nothing.
    pub fn listen(&self, fd: i32, backlog: i32) -> Res<()> {
        self.with(|st| {
            let s = st.sock(fd)?.clone();
            let backlog = backlog.clamp(1, 4096) as usize;
            match s.kind {
                Kind::Tcp(TcpSt::Fresh { port }) => {
                    let port = match port {
                        Some(p) => p,
                        None => {
                            st.sock_mut(fd)?.opts.bound_any = true;
                            st.ephemeral_tcp_port(fd)?
                        }
                    };
                    let cfg = crate::sockopt::listener_config(st.cfg.tcp, &s.opts);
                    let l = st
                        .iface
                        .tcp_listen_families(port, backlog, cfg, families_of(&s.opts))
                        .map_err(|e| match e {
                            TcpListenError::InUse => EADDRINUSE,
                            TcpListenError::InvalidPort => EINVAL,
                        })?;
                    st.sock_mut(fd)?.kind = Kind::Tcp(TcpSt::Listen { l, port, backlog });
                    st.touch();
                    Ok(())
                }
                Kind::Tcp(TcpSt::Listen { .. }) => Ok(()),
                Kind::Tcp(TcpSt::Conn(_)) => Err(EINVAL),
                Kind::Udp(_) => Err(EOPNOTSUPP),
            }
        })
    }

    /// `accept4`: the new descriptor and the peer's address.
    pub fn accept(&self, fd: i32, flags: i32) -> Res<(i32, SockName)> {
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(EINVAL);
        }
        let r = self.attempt(
            |st| mode(st, fd, false, false),
            |st| {
                let s = st.sock(fd)?.clone();
                let Kind::Tcp(TcpSt::Listen { l, .. }) = s.kind else {
                    return Err(if matches!(s.kind, Kind::Udp(_)) {
                        EOPNOTSUPP
                    } else {
                        EINVAL
                    });
                };
                if st.iface.tcp_listener_pending(l) == 0 {
                    return Ok(None);
                }
                if !st.has_free_fd() {
                    return Err(EMFILE);
                }
                let (h, remote) = loop {
                    let Some(h) = st.iface.tcp_accept(l) else {
                        return Ok(None);
                    };
                    let remote = st
                        .iface
                        .tcp_status(h)
                        .map(|t| t.remote())
                        .unwrap_or(Endpoint::new(Ipv4Address::UNSPECIFIED, 0));
                    if s.opts.takes_peer(remote.addr) {
                        break (h, remote);
                    }
                    // A client of the other family (an IPv6 one on an AF_INET listener, an
                    // IPv4 one with IPV6_V6ONLY): not this socket's; reset.
                    if let Some(mut sk) = st.iface.tcp(h) {
                        sk.abort();
                    }
                };
                let conn = Conn {
                    h,
                    connecting: false,
                    shut_rd: false,
                    shut_wr: false,
                    err_taken: false,
                };
                let new = Sock {
                    nonblock: flags & libc::SOCK_NONBLOCK != 0,
                    opts: s.opts,
                    kind: Kind::Tcp(TcpSt::Conn(conn)),
                };
                let nfd = st.alloc_fd(File::Sock(new))?;
                Ok(Some((nfd, s.opts.name(remote))))
            },
        )?;
        r.ok_or(EAGAIN)
    }

    /// `connect`: TCP opens (EINPROGRESS when nonblocking), UDP sets the default peer.
    pub fn connect(&self, fd: i32, remote: SockAddr) -> Res<()> {
        let (kind, remote) = self.with(|st| {
            st.sock(fd)
                .and_then(|s| Ok((s.kind, s.opts.endpoint(remote, false)?)))
        })?;
        match kind {
            Kind::Udp(_) => return self.with(|st| udp_connect(st, fd, remote)),
            Kind::Tcp(TcpSt::Listen { .. }) => return Err(EISCONN),
            Kind::Tcp(TcpSt::Conn(c)) if !c.connecting => {
                return self.with(|st| {
                    let (iface, s) = st.parts(fd)?;
                    let Kind::Tcp(TcpSt::Conn(c)) = &mut s.kind else {
                        return Err(EISCONN);
                    };
                    Err(take_conn_error(iface, c).unwrap_or(EISCONN))
                });
            }
            Kind::Tcp(TcpSt::Conn(_)) => {}
            Kind::Tcp(TcpSt::Fresh { port }) => {
                let first = self.with(|st| {
                    let r = match port {
                        Some(p) => st.iface.tcp_connect_from(remote.addr, remote.port, p),
                        None => st.iface.tcp_connect(remote.addr, remote.port),
                    };
                    let h = r.map_err(|e| match e {
                        TcpConnectError::Unaddressable | TcpConnectError::NoRoute => ENETUNREACH,
                        TcpConnectError::NoEphemeralPort => EADDRNOTAVAIL,
                        TcpConnectError::PortInUse => EADDRINUSE,
                        TcpConnectError::NoBuffers => ENOBUFS,
                    })?;
                    let opts = st.sock(fd)?.opts;
                    crate::sockopt::apply_live(&mut st.iface, h, &opts);
                    let conn = Conn {
                        h,
                        connecting: true,
                        shut_rd: false,
                        shut_wr: false,
                        err_taken: false,
                    };
                    st.sock_mut(fd)?.kind = Kind::Tcp(TcpSt::Conn(conn));
                    st.touch();
                    Ok(())
                });
                first?;
                if self.with(|st| st.sock(fd).map(|s| s.nonblock))? {
                    return Err(EINPROGRESS);
                }
                return self.finish_connect(fd).and_then(|done| done.ok_or(EINPROGRESS));
            }
        }
        // A connect in progress: EALREADY until it completes, then its outcome once.
        self.finish_connect(fd).and_then(|done| done.ok_or(EALREADY))
    }

    /// Waits (unless nonblocking) for a connection in progress to complete or fail.
    fn finish_connect(&self, fd: i32) -> Res<Option<()>> {
        self.attempt(
            |st| mode(st, fd, false, true),
            |st| {
                let (iface, s) = st.parts(fd)?;
                let Kind::Tcp(TcpSt::Conn(c)) = &mut s.kind else {
                    return Err(EINVAL);
                };
                match iface
                    .tcp_status(c.h)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state())
                {
                    TcpState::SynSent | TcpState::SynReceived => Ok(None),
                    _ => {
                        c.connecting = false;
                        match take_conn_error(iface, c) {
                            Some(e) => Err(e),
                            None if iface.tcp_status(c.h).and_then(|t| t.error()).is_some() => {
                                Err(ECONNABORTED)
                            }
                            None => Ok(Some(())),
                        }
                    }
                }
            },
        )
    }

    /// `recvmsg` in pieces: reads into the buffers; returns the length and, for UDP, the
    /// sender.
    pub fn recv(&self, fd: i32, bufs: &mut [&mut [u8]], flags: i32) -> Res<(usize, Option<SockName>)> {
        if flags & !RECV_FLAGS != 0 {
            return Err(EOPNOTSUPP);
        }
        let peek = flags & libc::MSG_PEEK != 0;
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek;
        let want = total(bufs);
        let mut got = 0usize;
        let r = self.attempt(
            |st| mode(st, fd, dontwait, false),
            |st| {
                let (iface, s) = st.parts(fd)?;
                let opts = s.opts;
                match &mut s.kind {
                    Kind::Tcp(TcpSt::Conn(c)) => {
                        let mut rest = split_from(bufs, got);
                        match tcp_read(iface, c, &mut rest, peek) {
                            Ok(Some(0)) => Ok(Some((got, None))),
                            Ok(Some(n)) => {
                                got += n;
                                let done = !waitall || got == want || s.nonblock || dontwait;
                                Ok(done.then_some((got, None)))
                            }
                            Ok(None) => Ok(None),
                            Err(_) if got > 0 => Ok(Some((got, None))),
                            Err(e) => Err(e),
                        }
                    }
                    Kind::Tcp(_) => Err(ENOTCONN),
                    Kind::Udp(u) => {
                        if peek {
                            return Err(EOPNOTSUPP);
                        }
                        let Some(h) = u.h else { return Ok(None) };
                        if u.remote.is_some() {
                            if let Some(e) = iface.udp(h).and_then(|mut sk| sk.take_error()) {
                                return Err(udp_errno(e));
                            }
                        }
                        loop {
                            let Some(len) = iface.udp_status(h).and_then(|u| u.peek_len()) else {
                                return Ok(None);
                            };
                            let mut tmp = vec![0u8; len];
                            match iface
                                .udp(h)
                                .ok_or(sluice_net::UdpRecvError::InvalidHandle)
                                .and_then(|mut sk| sk.recv_from(&mut tmp))
                            {
                                // A datagram of the other family (IPv6 to an AF_INET socket,
                                // IPv4 to an IPV6_V6ONLY one) is not this socket's.
                                Ok((_, from)) if !opts.takes_peer(from.addr) => continue,
                                Ok((n, from)) => {
                                    return Ok(Some((scatter(bufs, &tmp[..n]), Some(opts.name(from)))))
                                }
                                Err(UdpRecvError::WouldBlock) => return Ok(None),
                                Err(UdpRecvError::InvalidHandle) => return Err(EBADF),
                            }
                        }
                    }
                }
            },
        )?;
        match r {
            Some(v) => Ok(v),
            None if got > 0 => Ok((got, None)),
            None => Err(EAGAIN),
        }
    }

    /// `sendmsg` in pieces: writes the buffers (one datagram for UDP, to `to` or the
    /// connected peer). A blocking TCP send returns once everything is queued.
    /// Whether `fd` is a TCP socket.
    pub fn is_tcp(&self, fd: i32) -> bool {
        self.lock().sock(fd).is_ok_and(|s| matches!(s.kind, Kind::Tcp(_)))
    }

    pub fn send(&self, fd: i32, bufs: &[&[u8]], flags: i32, to: Option<SockAddr>) -> Res<usize> {
        if flags & !SEND_FLAGS != 0 {
            return Err(EOPNOTSUPP);
        }
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        let mut done = 0usize;
        let r = self.attempt(
            |st| mode(st, fd, dontwait, true),
            |st| {
                let (iface, s) = st.parts(fd)?;
                let nb = s.nonblock || dontwait;
                match &mut s.kind {
                    Kind::Tcp(TcpSt::Conn(c)) => match tcp_write(iface, c, &skip(bufs, done)) {
                        Ok(Some(n)) => {
                            done += n;
                            Ok((done == want || nb).then_some(done))
                        }
                        Ok(None) => Ok(None),
                        Err(_) if done > 0 => Ok(Some(done)),
                        Err(e) => Err(e),
                    },
                    Kind::Tcp(_) => Err(EPIPE),
                    Kind::Udp(u) => {
                        // TCP ignores a destination (as Linux's `tcp_sendmsg`); UDP needs it valid.
                        let dst = match to {
                            Some(a) => s.opts.endpoint(a, false)?,
                            None => u.remote.ok_or(EDESTADDRREQ)?,
                        };
                        let h = match u.h {
                            Some(h) => h,
                            None => {
                                let h = iface.udp_bind(0).map_err(|_| EADDRNOTAVAIL)?;
                                u.h = Some(h);
                                h
                            }
                        };
                        if u.remote.is_some() {
                            if let Some(e) = iface.udp(h).and_then(|mut sk| sk.take_error()) {
                                return Err(udp_errno(e));
                            }
                        }
                        let data: Vec<u8> = bufs.concat();
                        match iface
                            .udp(h)
                            .ok_or(sluice_net::UdpSendError::InvalidHandle)
                            .and_then(|mut sk| sk.send_to(&data, dst))
                        {
                            Ok(()) => Ok(Some(data.len())),
                            Err(UdpSendError::QueueFull) => Ok(None),
                            Err(UdpSendError::TooLarge) => Err(EMSGSIZE),
                            Err(UdpSendError::NoRoute) => Err(ENETUNREACH),
                            Err(UdpSendError::Unaddressable) => Err(EINVAL),
                            Err(UdpSendError::NotConnected) => Err(EDESTADDRREQ),
                            Err(UdpSendError::InvalidHandle) => Err(EBADF),
                        }
                    }
                }
            },
        );
        match r? {
            Some(n) => Ok(n),
            None if done > 0 => Ok(done),
            None => Err(EAGAIN),
        }
    }

    /// `close`: FIN (RST with SO_LINGER 0, or unread data) for connections; listeners
    /// stop and reset what was not accepted.
    pub fn close(&self, fd: i32) -> Res<()> {
        self.with(|st| {
            let f = st.take_file(fd)?;
            if let File::Sock(s) = f {
                match s.kind {
                    Kind::Tcp(TcpSt::Conn(c)) => {
                        if s.opts.linger == Some(0) {
                            if let Some(mut sk) = st.iface.tcp(c.h) {
                                sk.abort();
                            }
                        } else {
                            if let Some(mut sk) = st.iface.tcp(c.h) {
                                sk.close();
                            }
                        }
                    }
                    Kind::Tcp(TcpSt::Listen { l, .. }) => {
                        st.iface.tcp_unlisten(l);
                    }
                    Kind::Tcp(TcpSt::Fresh { .. }) => {}
                    Kind::Udp(u) => {
                        if let Some(h) = u.h {
                            if let Some(sk) = st.iface.udp(h) {
                                sk.close();
                            }
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// `shutdown(SHUT_RD | SHUT_WR | SHUT_RDWR)`.
    pub fn shutdown(&self, fd: i32, how: i32) -> Res<()> {
        if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
            return Err(EINVAL);
        }
        self.with(|st| {
            let (iface, s) = st.parts(fd)?;
            match &mut s.kind {
                Kind::Tcp(TcpSt::Conn(c)) => {
                    if how != libc::SHUT_WR {
                        c.shut_rd = true;
                    }
                    if how != libc::SHUT_RD && !c.shut_wr {
                        c.shut_wr = true;
                        if let Some(mut sk) = iface.tcp(c.h) {
                            sk.shutdown();
                        }
                    }
                    st.touch();
                    Ok(())
                }
                Kind::Tcp(TcpSt::Listen { l, port, .. }) if how != libc::SHUT_WR => {
                    // As Linux: shutting down a listener's read side stops listening.
                    let (l, port) = (*l, *port);
                    iface.tcp_unlisten(l);
                    s.kind = Kind::Tcp(TcpSt::Fresh { port: Some(port) });
                    st.touch();
                    Ok(())
                }
                Kind::Udp(UdpSt { remote: Some(_), .. }) => Ok(()),
                _ => Err(ENOTCONN),
            }
        })
    }

    /// `fcntl(F_GETFL)`.
    pub fn get_flags(&self, fd: i32) -> Res<i32> {
        self.with(|st| {
            let f = st.file(fd)?;
            let nb = matches!(f, File::Sock(s) if s.nonblock);
            Ok(libc::O_RDWR | if nb { libc::O_NONBLOCK } else { 0 })
        })
    }

    /// `fcntl(F_SETFL)`: only O_NONBLOCK changes anything.
    pub fn set_flags(&self, fd: i32, flags: i32) -> Res<()> {
        self.with(|st| match st.file_mut(fd)? {
            File::Sock(s) => {
                s.nonblock = flags & libc::O_NONBLOCK != 0;
                Ok(())
            }
            File::Epoll(_) => Ok(()),
        })
    }

    /// `getsockname`.
    pub fn local_addr(&self, fd: i32) -> Res<SockName> {
        self.with(|st| {
            let s = st.sock(fd)?;
            let port = Stack::port_of(&st.iface, s).unwrap_or(0);
            let conn = matches!(
                s.kind,
                Kind::Tcp(TcpSt::Conn(_)) | Kind::Udp(UdpSt { remote: Some(_), .. })
            );
            // Bound to the wildcard and not connected: the wildcard (as Linux reports it).
            let bound = conn || (port != 0 && !s.opts.bound_any);
            // A connection's own address (IPv6 ones have several), else the one bound.
            let addr = match s.kind {
                Kind::Tcp(TcpSt::Conn(c)) => st.iface.tcp_status(c.h).map(|t| t.info().local.addr),
                Kind::Udp(UdpSt { remote: Some(r), .. }) => st.iface.source_for(r.addr),
                _ => None,
            };
            let addr = match addr {
                Some(a) => a,
                None if bound => s.opts.bound_addr.unwrap_or(st.iface.address().into()),
                None => Ipv4Address::UNSPECIFIED.into(),
            };
            Ok(s.opts.name(Endpoint::new(addr, port)))
        })
    }

    /// `getpeername`.
    pub fn peer_addr(&self, fd: i32) -> Res<SockName> {
        self.with(|st| {
            let s = st.sock(fd)?;
            let peer = match s.kind {
                // Connected as soon as the handshake is done, whether or not the program has
                // looked at the outcome of its nonblocking connect yet (Linux).
                Kind::Tcp(TcpSt::Conn(c))
                    if !matches!(
                        st.iface
                            .tcp_status(c.h)
                            .map_or(sluice_net::TcpState::Closed, |t| t.state()),
                        TcpState::SynSent | TcpState::SynReceived | TcpState::Listen | TcpState::Closed
                    ) =>
                {
                    st.iface.tcp_status(c.h).map(|t| t.remote()).ok_or(ENOTCONN)
                }
                Kind::Udp(UdpSt { remote: Some(r), .. }) => Ok(r),
                _ => Err(ENOTCONN),
            }?;
            Ok(s.opts.name(peer))
        })
    }

    /// Bytes ready to read (`ioctl(FIONREAD)`).
    pub fn readable_bytes(&self, fd: i32) -> Res<usize> {
        self.with(|st| match st.sock(fd)?.kind {
            Kind::Tcp(TcpSt::Conn(c)) => Ok(st.iface.tcp_status(c.h).map_or(0, |t| t.tcb().recv_queue())),
            Kind::Tcp(_) => Err(EINVAL),
            Kind::Udp(u) => Ok(u
                .h
                .and_then(|h| st.iface.udp_status(h).and_then(|u| u.peek_len()))
                .unwrap_or(0)),
        })
    }
}

/// The buffers less their first `skip` bytes (mutable).
fn split_from<'a>(bufs: &'a mut [&mut [u8]], mut skip: usize) -> Vec<&'a mut [u8]> {
    let mut out = Vec::with_capacity(bufs.len());
    for b in bufs.iter_mut() {
        if skip >= b.len() {
            skip -= b.len();
        } else {
            out.push(&mut b[skip..]);
            skip = 0;
        }
    }
    out
}

fn udp_connect(st: &mut Stack, fd: i32, remote: Endpoint) -> Res<()> {
    let (iface, s) = st.parts(fd)?;
    let Kind::Udp(u) = &mut s.kind else {
        return Err(EINVAL);
    };
    let h = match u.h {
        Some(h) => h,
        None => iface.udp_bind(0).map_err(|_| EADDRNOTAVAIL)?,
    };
    u.h = Some(h);
    iface
        .udp(h)
        .ok_or(sluice_net::UdpConnectError::InvalidHandle)
        .and_then(|mut sk| sk.connect(remote))
        .map_err(|e| match e {
            UdpConnectError::InvalidHandle => EBADF,
            UdpConnectError::Unaddressable => EINVAL,
            UdpConnectError::NoRoute => ENETUNREACH,
        })?;
    u.remote = Some(remote);
    st.touch();
    Ok(())
}

/// The address families a socket's TCP clients and peers may be of (as Linux's sockets).
fn families_of(o: &SockOpts) -> Families {
    match (o.inet6, o.v6only) {
        (false, _) => Families::Ipv4Only,
        (true, true) => Families::Ipv6Only,
        (true, false) => Families::Both,
    }
}
