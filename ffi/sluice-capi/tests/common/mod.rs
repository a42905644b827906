//! A packetdrill of our own: loads `libsluice_capi.so` with `dlopen` exactly as
//! packetdrill does (`RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE | RTLD_DEEPBIND`), calls
//! `packetdrill_interface_init`, and plays scripted exchanges through the table's
//! function pointers: system calls, inbound packets built with `sluice-wire`, and
//! outbound packets checked field by field (every IPv4 and TCP header field, both
//! checksums, options, payload, and the virtual time they left).
#![allow(dead_code)]

use core::ffi::{c_int, c_long, c_longlong, c_uint, c_ulong, c_void};
use std::ffi::CString;
use std::path::PathBuf;

use libc::{
    epoll_event, iovec, loff_t, msghdr, nfds_t, pollfd, sockaddr, sockaddr_in, socklen_t, ssize_t, timeval,
    useconds_t,
};
use sluice_wire::{
    ChecksumCaps, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr,
    SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

pub const LOCAL: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub const REMOTE: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
/// The addresses of packetdrill's `ipv6` mode (`V6_FLAGS`).
pub const LOCAL6: Ipv6Address = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
pub const REMOTE6: Ipv6Address = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]);
/// The flags that put an instance in packetdrill's `ipv6` mode, as Linux's packetdrill
/// runner does it: IPv6 addresses, and an MTU of 1520 so that the MSS is IPv4's 1460.
pub const V6_FLAGS: &str = "--local_ip=2001:2::1 --remote_ip=2001:2::2 --mtu=1520";
/// The flags of most tests: no timestamps, SACK or window scaling (so the options are
/// just the MSS) and no delayed ACKs (each segment is acknowledged at once).
pub const PLAIN: &str =
    "--local_ip=198.18.0.1 --remote_ip=198.18.0.2 --timestamps=0 --sack=0 --wscale=0 --delayed_ack_ms=0";

/// packetdrill's `struct packetdrill_interface`, as packetdrill.h declares it (fcntl and
/// ioctl variadic).
#[repr(C)]
pub struct Ifc {
    pub userdata: *mut c_void,
    pub free: Option<unsafe extern "C" fn(*mut c_void)>,
    pub socket: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int) -> c_int>,
    pub bind: Option<unsafe extern "C" fn(*mut c_void, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub listen: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int>,
    pub accept: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut sockaddr, *mut socklen_t) -> c_int>,
    pub connect: Option<unsafe extern "C" fn(*mut c_void, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub read: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, usize) -> ssize_t>,
    pub readv: Option<unsafe extern "C" fn(*mut c_void, c_int, *const iovec, c_int) -> ssize_t>,
    pub recv: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, usize, c_int) -> ssize_t>,
    pub recvfrom: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *mut c_void,
            usize,
            c_int,
            *mut sockaddr,
            *mut socklen_t,
        ) -> ssize_t,
    >,
    pub recvmsg: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut msghdr, c_int) -> ssize_t>,
    pub write: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_void, usize) -> ssize_t>,
    pub writev: Option<unsafe extern "C" fn(*mut c_void, c_int, *const iovec, c_int) -> ssize_t>,
    pub send: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_void, usize, c_int) -> ssize_t>,
    pub sendto: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *const c_void,
            usize,
            c_int,
            *const sockaddr,
            socklen_t,
        ) -> ssize_t,
    >,
    pub sendmsg: Option<unsafe extern "C" fn(*mut c_void, c_int, *const msghdr, c_int) -> ssize_t>,
    pub fcntl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, ...) -> c_int>,
    pub ioctl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_ulong, ...) -> c_int>,
    pub close: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    pub shutdown: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int>,
    pub getsockopt:
        Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int>,
    pub setsockopt:
        Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *const c_void, socklen_t) -> c_int>,
    pub poll: Option<unsafe extern "C" fn(*mut c_void, *mut pollfd, nfds_t, c_int) -> c_int>,
    pub netdev_send: Option<unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> c_int>,
    pub netdev_receive:
        Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut usize, *mut c_longlong) -> c_int>,
    pub usleep: Option<unsafe extern "C" fn(*mut c_void, useconds_t) -> c_int>,
    pub gettimeofday: Option<unsafe extern "C" fn(*mut c_void, *mut timeval, *mut c_void) -> c_int>,
    pub epoll_create: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    pub epoll_ctl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *mut epoll_event) -> c_int>,
    pub epoll_wait: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut epoll_event, c_int, c_int) -> c_int>,
    pub pipe: Option<unsafe extern "C" fn(*mut c_void, *mut c_int) -> c_int>,
    pub splice: Option<
        unsafe extern "C" fn(*mut c_void, c_int, *mut loff_t, c_int, *mut loff_t, usize, c_uint) -> ssize_t,
    >,
}

type InitFn = unsafe extern "C" fn(*const core::ffi::c_char, *mut Ifc);

/// The cdylib cargo built next to this test binary (target/<profile>/).
pub fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    for dir in [deps.parent().expect("profile dir"), deps] {
        let p = dir.join("libsluice_capi.so");
        if p.exists() {
            return p;
        }
    }
    panic!("libsluice_capi.so not found next to {}", exe.display());
}

fn errno() -> i32 {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// A syscall's result: the value, or the errno of a -1.
pub type Sys = Result<i64, i32>;

fn sys(r: i64) -> Sys {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// One loaded library and one instance of the stack.
pub struct Pd {
    ifc: Box<Ifc>,
    _lib: libloading::os::unix::Library,
    /// packetdrill's `ipv4-mapped-ipv6` mode: `socket` makes AF_INET6 sockets and the
    /// addresses given and read are IPv4-mapped `sockaddr_in6`.
    pub mapped: bool,
    /// packetdrill's `ipv6` mode (the instance made with `V6_FLAGS`): AF_INET6 sockets,
    /// LOCAL and REMOTE stand for LOCAL6 and REMOTE6, packets are IPv6.
    pub v6: bool,
}

// SAFETY: the interface is thread-safe (one mutex inside); tests call it from a second
// thread as packetdrill's syscall thread does.
unsafe impl Send for Pd {}
// SAFETY: as above.
unsafe impl Sync for Pd {}

/// A TCP segment as seen on the wire (ACK bit as `ack.is_some()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    /// The flags other than ACK (`TcpFlags::SYN | TcpFlags::PSH`...).
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl Seg {
    /// A segment from the peer's `port` to the stack's `to`.
    pub fn new(port: u16, to: u16, flags: u8, seq: u32, ack: Option<u32>) -> Seg {
        Seg {
            src_port: port,
            dst_port: to,
            seq,
            ack,
            flags,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
            payload: Vec::new(),
        }
    }
    pub fn mss(mut self, mss: u16) -> Seg {
        self.options.mss = Some(mss);
        self
    }
    pub fn data(mut self, d: &[u8]) -> Seg {
        self.payload = d.to_vec();
        self
    }
    pub fn win(mut self, w: u16) -> Seg {
        self.window = w;
        self
    }
}

/// `seg` as the wire library's segment.
fn repr_of(seg: &Seg) -> TcpRepr<'_> {
    TcpRepr {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: SeqNumber(seg.seq),
        ack: seg.ack.map(SeqNumber),
        flags: TcpFlags(seg.flags),
        window: seg.window,
        urgent: seg.urgent,
        options: seg.options,
        payload: &seg.payload,
    }
}

/// A segment the stack sent, as a `Seg`.
fn seg_of(r: TcpRepr) -> Seg {
    Seg {
        src_port: r.src_port,
        dst_port: r.dst_port,
        seq: r.seq.0,
        ack: r.ack.map(|a| a.0),
        flags: r.flags.0,
        window: r.window,
        urgent: r.urgent,
        options: r.options,
        payload: r.payload.to_vec(),
    }
}

/// An IPv4 packet from REMOTE to LOCAL holding `seg`, checksums filled.
pub fn tcp_packet(seg: &Seg) -> Vec<u8> {
    let repr = repr_of(seg);
    let ip = Ipv4Repr {
        src_addr: REMOTE,
        dst_addr: LOCAL,
        protocol: IpProtocol::Tcp,
        payload_len: repr.buffer_len(),
        ttl: 64,
    };
    let caps = ChecksumCaps::software();
    let mut buf = vec![0u8; ip.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[20..]),
        REMOTE,
        LOCAL,
        &caps,
    );
    buf
}

/// An IPv4 packet from REMOTE:`sport` to LOCAL:`dport` holding a UDP datagram.
pub fn udp_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: REMOTE,
        dst_addr: LOCAL,
        protocol: IpProtocol::Udp,
        payload_len: 8 + payload.len(),
        ttl: 64,
    };
    let caps = ChecksumCaps::software();
    let mut buf = vec![0u8; ip.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf[20..]),
        REMOTE,
        LOCAL,
        &caps,
    );
    buf
}

/// Checks every IPv4 header field of a packet the stack sent (IHL 5, no DSCP/ECN, ID 0
/// with DF, no fragment, TTL 64, our addresses, valid checksum, exact length) and returns
/// its payload.
pub fn check_ipv4(p: &[u8], proto: IpProtocol) -> &[u8] {
    let ip = Ipv4Packet::new_checked(p).expect("a well-formed IPv4 packet");
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.header_len(), 20, "no IP options");
    assert_eq!((ip.dscp(), ip.ecn()), (0, 0));
    assert_eq!(
        usize::from(ip.total_len()),
        p.len(),
        "total length is the packet's"
    );
    assert_eq!(ip.ident(), 0);
    assert!(ip.dont_frag() && !ip.more_frags() && ip.frag_offset() == 0);
    assert_eq!(ip.ttl(), 64);
    assert_eq!(ip.protocol(), proto);
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (LOCAL, REMOTE));
    &p[20..]
}

/// Parses a TCP packet the stack sent, checking the IPv4 header and the TCP checksum.
pub fn parse_tcp(p: &[u8]) -> Seg {
    let l4 = check_ipv4(p, IpProtocol::Tcp);
    let tcp = TcpPacket::new_checked(l4).expect("a well-formed TCP header");
    assert!(tcp.verify_checksum(LOCAL, REMOTE), "TCP checksum");
    let r = TcpRepr::parse(&tcp, LOCAL, REMOTE, &ChecksumCaps::software()).expect("parses");
    assert_eq!(tcp.flags().0 & 0x10 != 0, r.ack.is_some());
    seg_of(r)
}

/// An IPv6 packet from REMOTE6 to LOCAL6 holding `seg`, checksum filled.
pub fn tcp_packet_v6(seg: &Seg) -> Vec<u8> {
    let repr = repr_of(seg);
    ipv6_packet(IpProtocol::Tcp, repr.buffer_len(), |l4| {
        repr.emit(
            &mut TcpPacket::new_unchecked(l4),
            REMOTE6,
            LOCAL6,
            &ChecksumCaps::software(),
        )
    })
}

/// An IPv6 packet from REMOTE6 to LOCAL6 (hop limit 64) of `len` payload bytes that
/// `fill` writes.
pub fn ipv6_packet(next: IpProtocol, len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: REMOTE6,
        dst_addr: LOCAL6,
        next_header: next,
        payload_len: len,
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len()];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    fill(&mut buf[40..]);
    buf
}

/// An IPv6 packet from REMOTE6:`sport` to LOCAL6:`dport` holding a UDP datagram.
pub fn udp_packet_v6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload,
    };
    ipv6_packet(IpProtocol::Udp, 8 + payload.len(), |l4| {
        repr.emit(
            &mut UdpPacket::new_unchecked(l4),
            REMOTE6,
            LOCAL6,
            &ChecksumCaps::software(),
        )
    })
}

/// Parses a TCP packet the stack sent over IPv6, checking the IPv6 header (version 6,
/// traffic class 0, hop limit 64, our addresses, exact length, TCP right after it) and
/// the TCP checksum.
pub fn parse_tcp_v6(p: &[u8]) -> Seg {
    let ip = Ipv6Packet::new_checked(p).expect("a well-formed IPv6 packet");
    assert_eq!(ip.version(), 6);
    assert_eq!(ip.traffic_class(), 0);
    assert_eq!(
        usize::from(ip.payload_len()) + 40,
        p.len(),
        "payload length is the packet's"
    );
    assert_eq!(ip.hop_limit(), 64);
    assert_eq!(ip.next_header(), IpProtocol::Tcp);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (LOCAL6, REMOTE6));
    let tcp = TcpPacket::new_checked(&p[40..]).expect("a well-formed TCP header");
    assert!(tcp.verify_checksum(LOCAL6, REMOTE6), "TCP checksum over IPv6");
    let r = TcpRepr::parse(&tcp, LOCAL6, REMOTE6, &ChecksumCaps::software()).expect("parses");
    assert_eq!(tcp.flags().0 & 0x10 != 0, r.ack.is_some());
    seg_of(r)
}

pub fn sin(addr: Ipv4Address, port: u16) -> sockaddr_in {
    // SAFETY: zeroed bytes are a valid sockaddr_in.
    let mut s: sockaddr_in = unsafe { core::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = port.to_be();
    s.sin_addr.s_addr = u32::from_ne_bytes(addr.0);
    s
}

const SIN_LEN: socklen_t = core::mem::size_of::<sockaddr_in>() as socklen_t;

impl Pd {
    /// dlopen + packetdrill_interface_init(flags).
    pub fn new(flags: &str) -> Pd {
        let path = lib_path();
        let mode = libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE | libc::RTLD_DEEPBIND;
        // SAFETY: loading our own library; its initializers (DPDK's driver registrations)
        // only fill DPDK's tables.
        let lib = unsafe { libloading::os::unix::Library::open(Some(&path), mode) }.expect("dlopen");
        // SAFETY: the symbol has packetdrill's `packetdrill_interface_init_t` type.
        let init: libloading::os::unix::Symbol<InitFn> =
            unsafe { lib.get(b"packetdrill_interface_init\0") }.expect("dlsym");
        // SAFETY: zeroed memory is a valid table of null pointers, to be filled.
        let mut ifc: Box<Ifc> = Box::new(unsafe { core::mem::zeroed() });
        let c = CString::new(flags).expect("no NUL");
        // SAFETY: a C string and a writable table, as packetdrill passes.
        unsafe { init(c.as_ptr(), &mut *ifc) };
        assert!(!ifc.userdata.is_null());
        Pd {
            ifc,
            _lib: lib,
            mapped: false,
            v6: flags.contains("--local_ip=2001:"),
        }
    }

    fn ud(&self) -> *mut c_void {
        self.ifc.userdata
    }

    pub fn socket(&self, ty: c_int) -> Sys {
        let domain = if self.mapped || self.v6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        // SAFETY: valid arguments for the table's function (here and below).
        sys(unsafe { self.ifc.socket.unwrap()(self.ud(), domain, ty, 0) }.into())
    }
    pub fn socket_raw(&self, domain: c_int, ty: c_int, proto: c_int) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.socket.unwrap()(self.ud(), domain, ty, proto) }.into())
    }
    pub fn bind(&self, fd: i64, addr: Ipv4Address, port: u16) -> Sys {
        let (s, len) = self.sockaddr(addr, port);
        // SAFETY: as above.
        sys(unsafe { self.ifc.bind.unwrap()(self.ud(), fd as c_int, s.as_ptr().cast(), len) }.into())
    }
    /// The bytes of a `sockaddr_in`, or of an IPv4-mapped `sockaddr_in6` (`mapped`).
    fn sockaddr(&self, addr: Ipv4Address, port: u16) -> ([u8; 28], socklen_t) {
        let mut b = [0u8; 28];
        if self.v6 {
            let a = if addr == LOCAL { LOCAL6 } else { REMOTE6 };
            b[..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
            b[2..4].copy_from_slice(&port.to_be_bytes());
            b[8..24].copy_from_slice(&a.0);
            (b, 28)
        } else if self.mapped {
            b[..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
            b[2..4].copy_from_slice(&port.to_be_bytes());
            b[18..20].copy_from_slice(&[0xff, 0xff]);
            b[20..24].copy_from_slice(&addr.0);
            (b, 28)
        } else {
            let s = sin(addr, port);
            // SAFETY: a plain struct viewed as its bytes.
            let bytes = unsafe { core::slice::from_raw_parts((&s as *const sockaddr_in).cast::<u8>(), 16) };
            b[..16].copy_from_slice(bytes);
            (b, SIN_LEN)
        }
    }
    pub fn listen(&self, fd: i64, backlog: c_int) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.listen.unwrap()(self.ud(), fd as c_int, backlog) }.into())
    }
    /// accept; the new fd and the peer's address.
    pub fn accept(&self, fd: i64) -> Result<(i64, Ipv4Address, u16), i32> {
        let mut b = [0u8; 28];
        let mut len: socklen_t = 28;
        // SAFETY: as above; `b` has `len` writable bytes.
        let r = unsafe { self.ifc.accept.unwrap()(self.ud(), fd as c_int, b.as_mut_ptr().cast(), &mut len) };
        let nfd = sys(r.into())?;
        let family = c_int::from(libc::sa_family_t::from_ne_bytes([b[0], b[1]]));
        let port = u16::from_be_bytes([b[2], b[3]]);
        if self.v6 {
            assert_eq!((len, family), (28, libc::AF_INET6), "a sockaddr_in6");
            assert_eq!(b[8..24], REMOTE6.0, "the peer's IPv6 address");
            Ok((nfd, REMOTE, port))
        } else if self.mapped {
            assert_eq!((len, family), (28, libc::AF_INET6), "a sockaddr_in6");
            assert_eq!(
                b[8..20],
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
                "IPv4-mapped"
            );
            Ok((nfd, Ipv4Address([b[20], b[21], b[22], b[23]]), port))
        } else {
            assert_eq!((len, family), (SIN_LEN, libc::AF_INET), "a sockaddr_in");
            Ok((nfd, Ipv4Address([b[4], b[5], b[6], b[7]]), port))
        }
    }
    pub fn connect(&self, fd: i64, addr: Ipv4Address, port: u16) -> Sys {
        let (s, len) = self.sockaddr(addr, port);
        // SAFETY: as above.
        sys(unsafe { self.ifc.connect.unwrap()(self.ud(), fd as c_int, s.as_ptr().cast(), len) }.into())
    }
    pub fn read(&self, fd: i64, n: usize) -> Result<Vec<u8>, i32> {
        let mut b = vec![0u8; n];
        // SAFETY: as above.
        let r = unsafe { self.ifc.read.unwrap()(self.ud(), fd as c_int, b.as_mut_ptr().cast(), n) };
        let k = sys(r as i64)? as usize;
        b.truncate(k);
        Ok(b)
    }
    pub fn recv(&self, fd: i64, n: usize, flags: c_int) -> Result<Vec<u8>, i32> {
        let mut b = vec![0u8; n];
        // SAFETY: as above.
        let r = unsafe { self.ifc.recv.unwrap()(self.ud(), fd as c_int, b.as_mut_ptr().cast(), n, flags) };
        let k = sys(r as i64)? as usize;
        b.truncate(k);
        Ok(b)
    }
    pub fn readv(&self, fd: i64, sizes: &[usize]) -> Result<Vec<Vec<u8>>, i32> {
        let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0u8; n]).collect();
        let iov: Vec<iovec> = bufs
            .iter_mut()
            .map(|b| iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: as above.
        let r = unsafe { self.ifc.readv.unwrap()(self.ud(), fd as c_int, iov.as_ptr(), iov.len() as c_int) };
        let mut k = sys(r as i64)? as usize;
        for b in bufs.iter_mut() {
            let n = k.min(b.len());
            b.truncate(n);
            k -= n;
        }
        Ok(bufs)
    }
    /// recvfrom; the data and the sender (in the `ipv6` mode REMOTE6 reads as REMOTE).
    pub fn recvfrom(&self, fd: i64, n: usize) -> Result<(Vec<u8>, Ipv4Address, u16), i32> {
        let mut b = vec![0u8; n];
        let mut a = [0u8; 28];
        let mut len: socklen_t = 28;
        // SAFETY: as above; `a` has `len` writable bytes.
        let r = unsafe {
            self.ifc.recvfrom.unwrap()(
                self.ud(),
                fd as c_int,
                b.as_mut_ptr().cast(),
                n,
                0,
                a.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let k = sys(r as i64)? as usize;
        b.truncate(k);
        let port = u16::from_be_bytes([a[2], a[3]]);
        let family = c_int::from(libc::sa_family_t::from_ne_bytes([a[0], a[1]]));
        let from = if family == libc::AF_INET6 {
            assert_eq!(len, 28);
            match &a[8..24] {
                x if x == REMOTE6.0 => REMOTE,
                x if x[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] => {
                    Ipv4Address([x[12], x[13], x[14], x[15]])
                }
                x => panic!("an unknown IPv6 sender {x:?}"),
            }
        } else {
            assert_eq!((len, family), (SIN_LEN, libc::AF_INET));
            Ipv4Address([a[4], a[5], a[6], a[7]])
        };
        Ok((b, from, port))
    }
    pub fn write(&self, fd: i64, d: &[u8]) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.write.unwrap()(self.ud(), fd as c_int, d.as_ptr().cast(), d.len()) } as i64)
    }
    pub fn writev(&self, fd: i64, parts: &[&[u8]]) -> Sys {
        let iov: Vec<iovec> = parts
            .iter()
            .map(|b| iovec {
                iov_base: b.as_ptr() as *mut c_void,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: as above.
        sys(
            unsafe { self.ifc.writev.unwrap()(self.ud(), fd as c_int, iov.as_ptr(), iov.len() as c_int) }
                as i64,
        )
    }
    /// sendto `addr:port`, as a `sockaddr_in` or, in the `mapped` and `ipv6` modes, a
    /// `sockaddr_in6`.
    pub fn sendto(&self, fd: i64, d: &[u8], addr: Ipv4Address, port: u16) -> Sys {
        let (s, len) = self.sockaddr(addr, port);
        // SAFETY: as above.
        sys(unsafe {
            self.ifc.sendto.unwrap()(
                self.ud(),
                fd as c_int,
                d.as_ptr().cast(),
                d.len(),
                0,
                s.as_ptr().cast(),
                len,
            )
        } as i64)
    }
    /// fcntl through the variadic pointer, as packetdrill calls it.
    pub fn fcntl(&self, fd: i64, cmd: c_int, arg: c_long) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.fcntl.unwrap()(self.ud(), fd as c_int, cmd, arg) }.into())
    }
    pub fn set_nonblock(&self, fd: i64) {
        let fl = self.fcntl(fd, libc::F_GETFL, 0).unwrap();
        self.fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK as i64) as c_long)
            .unwrap();
    }
    pub fn ioctl_int(&self, fd: i64, req: c_ulong, v: &mut c_int) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.ioctl.unwrap()(self.ud(), fd as c_int, req, v as *mut c_int) }.into())
    }
    pub fn close(&self, fd: i64) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.close.unwrap()(self.ud(), fd as c_int) }.into())
    }
    pub fn shutdown(&self, fd: i64, how: c_int) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.shutdown.unwrap()(self.ud(), fd as c_int, how) }.into())
    }
    pub fn setsockopt_bytes(&self, fd: i64, level: c_int, name: c_int, v: &[u8]) -> Sys {
        // SAFETY: as above.
        sys(unsafe {
            self.ifc.setsockopt.unwrap()(
                self.ud(),
                fd as c_int,
                level,
                name,
                v.as_ptr().cast(),
                v.len() as socklen_t,
            )
        }
        .into())
    }
    pub fn setsockopt_int(&self, fd: i64, level: c_int, name: c_int, v: c_int) -> Sys {
        self.setsockopt_bytes(fd, level, name, &v.to_ne_bytes())
    }
    pub fn getsockopt_bytes(&self, fd: i64, level: c_int, name: c_int, room: usize) -> Result<Vec<u8>, i32> {
        let mut b = vec![0u8; room];
        let mut len = room as socklen_t;
        // SAFETY: as above.
        let r = unsafe {
            self.ifc.getsockopt.unwrap()(
                self.ud(),
                fd as c_int,
                level,
                name,
                b.as_mut_ptr().cast(),
                &mut len,
            )
        };
        sys(r.into())?;
        b.truncate(len as usize);
        Ok(b)
    }
    pub fn getsockopt_int(&self, fd: i64, level: c_int, name: c_int) -> Result<c_int, i32> {
        let b = self.getsockopt_bytes(fd, level, name, 4)?;
        Ok(c_int::from_ne_bytes(b[..4].try_into().unwrap()))
    }
    /// poll on one descriptor; its revents.
    pub fn poll1(&self, fd: i64, events: i16, timeout: c_int) -> Result<i16, i32> {
        let mut p = pollfd {
            fd: fd as c_int,
            events,
            revents: 0,
        };
        // SAFETY: as above.
        sys(unsafe { self.ifc.poll.unwrap()(self.ud(), &mut p, 1, timeout) }.into())?;
        Ok(p.revents)
    }
    pub fn epoll_create(&self) -> Sys {
        // SAFETY: as above.
        sys(unsafe { self.ifc.epoll_create.unwrap()(self.ud(), 1) }.into())
    }
    pub fn epoll_ctl(&self, ep: i64, op: c_int, fd: i64, events: u32, data: u64) -> Sys {
        let mut e = epoll_event { events, u64: data };
        // SAFETY: as above.
        sys(unsafe { self.ifc.epoll_ctl.unwrap()(self.ud(), ep as c_int, op, fd as c_int, &mut e) }.into())
    }
    pub fn epoll_wait(&self, ep: i64, max: usize, timeout: c_int) -> Result<Vec<(u32, u64)>, i32> {
        let mut evs = vec![epoll_event { events: 0, u64: 0 }; max];
        // SAFETY: as above.
        let n = sys(unsafe {
            self.ifc.epoll_wait.unwrap()(self.ud(), ep as c_int, evs.as_mut_ptr(), max as c_int, timeout)
        }
        .into())?;
        Ok(evs[..n as usize].iter().map(|e| (e.events, e.u64)).collect())
    }

    /// Injects an IPv4 packet (netdev_send).
    pub fn inject(&self, packet: &[u8]) {
        // SAFETY: as above.
        let r = unsafe { self.ifc.netdev_send.unwrap()(self.ud(), packet.as_ptr().cast(), packet.len()) };
        assert_eq!(r, 0, "netdev_send");
    }
    pub fn send_seg(&self, seg: &Seg) {
        if self.v6 {
            self.inject(&tcp_packet_v6(seg));
        } else {
            self.inject(&tcp_packet(seg));
        }
    }
    /// A TCP packet the stack sent, checked, of this instance's family.
    pub fn parse(&self, p: &[u8]) -> Seg {
        if self.v6 {
            parse_tcp_v6(p)
        } else {
            parse_tcp(p)
        }
    }
    /// The next packet the stack sends (netdev_receive) and the time it left (µs, on
    /// gettimeofday's clock); empty if none ever comes.
    pub fn sniff(&self) -> (Vec<u8>, i64) {
        let mut b = vec![0u8; 65536];
        let mut n = b.len();
        let mut t: c_longlong = 0;
        // SAFETY: as above.
        let r = unsafe { self.ifc.netdev_receive.unwrap()(self.ud(), b.as_mut_ptr().cast(), &mut n, &mut t) };
        assert_eq!(r, 0, "netdev_receive");
        b.truncate(n);
        (b, t)
    }
    /// The next TCP segment the stack sends, checked, and its time.
    pub fn expect_tcp(&self) -> (Seg, i64) {
        let (p, t) = self.sniff();
        assert!(!p.is_empty(), "the stack sent nothing");
        (self.parse(&p), t)
    }
    pub fn usleep(&self, us: u32) {
        // SAFETY: as above.
        assert_eq!(unsafe { self.ifc.usleep.unwrap()(self.ud(), us) }, 0);
    }
    /// gettimeofday in microseconds (moves the virtual clock by 1 µs, as packetdrill's
    /// spin loop needs).
    pub fn now_us(&self) -> i64 {
        let mut tv = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: as above.
        let r = unsafe { self.ifc.gettimeofday.unwrap()(self.ud(), &mut tv, core::ptr::null_mut()) };
        assert_eq!(r, 0);
        tv.tv_sec * 1_000_000 + tv.tv_usec
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        // SAFETY: the userdata of our init, freed once.
        unsafe { self.ifc.free.unwrap()(self.ud()) };
    }
}
