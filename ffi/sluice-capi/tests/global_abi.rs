//! The `sluice_*` functions on the process-wide in-memory instance, called through the
//! cdylib's exported symbols (this test binary is the only user of its own copy of the
//! library, so the process-wide instance is this test's).

mod common;

use core::ffi::{c_char, c_int, c_void};

use common::*;
use libc::{sockaddr, socklen_t};
use sluice_wire::TcpFlags;

/// `struct sluice_stats` (sluice.h).
#[repr(C)]
#[derive(Default)]
struct Stats {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    drops: u64,
    tcp_segments_rx: u64,
    tcp_segments_tx: u64,
    tcp_retransmits: u64,
    tcp_rst_tx: u64,
    tcp_accepted: u64,
    tcp_connected: u64,
    tcp_syn_cookies_tx: u64,
    connections: u64,
    established: u64,
    time_wait: u64,
    drops_by_reason: [u64; 32],
}

/// `struct sluice_conn_info` (sluice.h).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct ConnInfo {
    local_addr: u32,
    remote_addr: u32,
    local_port: u16,
    remote_port: u16,
    state: u8,
    srtt_us: u32,
    rttvar_us: u32,
    rto_ms: u32,
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    in_flight: u32,
    retransmits: u64,
    send_queue: u32,
    recv_queue: u32,
}

#[test]
fn process_wide_instance() {
    let mode = libc::RTLD_NOW | libc::RTLD_LOCAL;
    // SAFETY: our own library.
    let lib = unsafe { libloading::os::unix::Library::open(Some(lib_path()), mode) }.unwrap();
    macro_rules! sym {
        ($name:literal, $t:ty) => {
            // SAFETY: the symbol has this type in sluice.h.
            *unsafe { lib.get::<$t>($name) }.unwrap()
        };
    }
    let init = sym!(
        b"sluice_init_memory\0",
        unsafe extern "C" fn(*const c_char) -> c_int
    );
    let socket = sym!(
        b"sluice_socket\0",
        unsafe extern "C" fn(c_int, c_int, c_int) -> c_int
    );
    let bind = sym!(
        b"sluice_bind\0",
        unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int
    );
    let listen = sym!(b"sluice_listen\0", unsafe extern "C" fn(c_int, c_int) -> c_int);
    let accept = sym!(
        b"sluice_accept\0",
        unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int
    );
    let peer_send = sym!(
        b"sluice_peer_send\0",
        unsafe extern "C" fn(*const c_void, usize) -> c_int
    );
    let peer_recv = sym!(
        b"sluice_peer_recv\0",
        unsafe extern "C" fn(*mut c_void, *mut usize, *mut i64) -> c_int
    );
    let advance = sym!(b"sluice_advance_us\0", unsafe extern "C" fn(u64) -> c_int);
    let fini = sym!(b"sluice_fini\0", unsafe extern "C" fn());
    let stats = sym!(b"sluice_stats\0", unsafe extern "C" fn(*mut Stats) -> c_int);
    let conn_info = sym!(
        b"sluice_conn_info\0",
        unsafe extern "C" fn(c_int, *mut ConnInfo) -> c_int
    );
    let conns = sym!(
        b"sluice_conns\0",
        unsafe extern "C" fn(*mut ConnInfo, c_int, c_int) -> c_int
    );
    let reason_name = sym!(
        b"sluice_drop_reason_name\0",
        unsafe extern "C" fn(c_int) -> *const c_char
    );
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap();

    // SAFETY: arguments valid for each function as sluice.h documents.
    unsafe {
        assert_eq!(socket(libc::AF_INET, libc::SOCK_STREAM, 0), -1);
        assert_eq!(errno(), libc::ENXIO, "no instance yet");
        let bad = c"--local_ip=nonsense";
        assert_eq!(init(bad.as_ptr()), -1);
        assert_eq!(errno(), libc::EINVAL);
        let flags = std::ffi::CString::new(PLAIN).unwrap();
        assert_eq!(init(flags.as_ptr()), 0);

        let l = socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        assert_eq!(l, 3);
        let a = sin(LOCAL, 8080);
        assert_eq!(bind(l, (&a as *const libc::sockaddr_in).cast(), 16), 0);
        assert_eq!(listen(l, 1), 0);

        let take = || {
            let mut b = vec![0u8; 2048];
            let (mut n, mut t) = (b.len(), 0i64);
            assert_eq!(peer_recv(b.as_mut_ptr().cast(), &mut n, &mut t), 0);
            b.truncate(n);
            (b, t)
        };
        let syn = tcp_packet(&Seg::new(40000, 8080, TcpFlags::SYN, 1, None).mss(1460));
        assert_eq!(peer_send(syn.as_ptr().cast(), syn.len()), 0);
        let (p, t0) = take();
        let sa = parse_tcp(&p);
        assert_eq!((sa.flags, sa.ack), (TcpFlags::SYN, Some(2)));
        assert_eq!(take().0, b"", "nothing more, without waiting");
        // No ACK: the SYN-ACK is retransmitted after the initial RTO of virtual time.
        assert_eq!(advance(999_999), 0);
        assert_eq!(take().0, b"");
        assert_eq!(advance(1), 0);
        let (p, t1) = take();
        assert_eq!(parse_tcp(&p), sa);
        assert_eq!(t1 - t0, 1_000_000);

        let ack = tcp_packet(&Seg::new(40000, 8080, 0, 2, Some(sa.seq + 1)));
        assert_eq!(peer_send(ack.as_ptr().cast(), ack.len()), 0);
        assert_eq!(accept(l, core::ptr::null_mut(), core::ptr::null_mut()), 4);

        // The counters and the connection, as netstat -s and ss -ti would show them.
        let mut st = Stats::default();
        assert_eq!(stats(&mut st), 0);
        assert_eq!((st.tcp_accepted, st.connections, st.established), (1, 1, 1));
        assert_eq!(st.rx_packets, 2, "SYN and ACK");
        assert_eq!(st.tcp_retransmits, 1, "the SYN-ACK, once");
        assert_eq!(stats(core::ptr::null_mut()), -1);
        assert_eq!(errno(), libc::EINVAL);
        let mut ci = ConnInfo::default();
        assert_eq!(conn_info(4, &mut ci), 0);
        assert_eq!(ci.state, 1, "TCP_ESTABLISHED");
        assert_eq!((ci.local_port, ci.remote_port), (8080, 40000));
        assert_eq!(ci.remote_addr, u32::from_be_bytes(REMOTE.0));
        assert_eq!(ci.local_addr, u32::from_be_bytes(LOCAL.0));
        assert_eq!(
            (ci.mss, ci.in_flight, ci.send_queue, ci.recv_queue),
            (1460, 0, 0, 0)
        );
        assert_eq!(ci.retransmits, 1);
        assert_eq!(conn_info(l, &mut ci), -1, "a listener");
        assert_eq!(errno(), libc::ENOTCONN);
        assert_eq!(conn_info(99, &mut ci), -1);
        assert_eq!(errno(), libc::EBADF);
        let mut rows = [ConnInfo::default(); 4];
        assert_eq!(conns(rows.as_mut_ptr(), 4, 0), 1);
        assert_eq!(rows[0].local_port, 8080);
        assert_eq!(
            conns(rows.as_mut_ptr(), 4, 1),
            1,
            "the total, with nothing past it"
        );
        let name = std::ffi::CStr::from_ptr(reason_name(5));
        assert_eq!(name.to_str().unwrap(), "checksum");
        assert!(reason_name(1000).is_null());
        assert_eq!(
            peer_send([0x70u8; 40].as_ptr().cast(), 40),
            -1,
            "not an IP packet: refused"
        );
        assert_eq!(errno(), libc::EINVAL);
        assert_eq!(
            peer_send([0x60u8; 40].as_ptr().cast(), 40),
            0,
            "IPv6: framed, dropped by the stack"
        );
        fini();
        assert_eq!(socket(libc::AF_INET, libc::SOCK_STREAM, 0), -1);
        assert_eq!(errno(), libc::ENXIO);
    }
}
