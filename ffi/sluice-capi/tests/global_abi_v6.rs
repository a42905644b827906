//! The process-wide in-memory instance over IPv6 (`--local_ip=` an IPv6 address), through
//! the cdylib's exported symbols: `getsockname` of AF_INET6 sockets gives the stack's IPv6
//! address, the one a connection or a connected socket uses (a test binary of its own:
//! the process-wide instance is made once per process).

mod common;

use core::ffi::{c_char, c_int};

use common::*;
use libc::{sockaddr, sockaddr_in6, socklen_t};

/// A `sockaddr_in6` for `addr` (16 bytes) and `port`.
fn sin6(addr: [u8; 16], port: u16) -> sockaddr_in6 {
    // SAFETY: zeroed bytes are a valid sockaddr_in6.
    let mut s: sockaddr_in6 = unsafe { core::mem::zeroed() };
    s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    s.sin6_port = port.to_be();
    s.sin6_addr.s6_addr = addr;
    s
}

#[test]
fn getsockname_gives_the_ipv6_address_in_use() {
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
    let connect = sym!(
        b"sluice_connect\0",
        unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int
    );
    let getsockname = sym!(
        b"sluice_getsockname\0",
        unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int
    );
    let fini = sym!(b"sluice_fini\0", unsafe extern "C" fn());
    let len6 = core::mem::size_of::<sockaddr_in6>() as socklen_t;
    let name = |fd: c_int| -> ([u8; 16], u16) {
        let mut s = sin6([0; 16], 0);
        let mut len = len6;
        // SAFETY: `s` has `len` writable bytes.
        let r = unsafe { getsockname(fd, (&mut s as *mut sockaddr_in6).cast(), &mut len) };
        assert_eq!((r, len), (0, len6));
        assert_eq!(c_int::from(s.sin6_family), libc::AF_INET6);
        (s.sin6_addr.s6_addr, u16::from_be(s.sin6_port))
    };
    let flags = format!("{PLAIN} {V6_FLAGS}\0");
    // SAFETY: arguments valid for each function as sluice.h documents.
    unsafe {
        assert_eq!(init(flags.as_ptr().cast()), 0);
        // UDP bound to `::`: the wildcard until connected, then our address towards the peer.
        let u = socket(libc::AF_INET6, libc::SOCK_DGRAM, 0);
        assert!(u >= 0);
        let any = sin6([0; 16], 5000);
        assert_eq!(bind(u, (&any as *const sockaddr_in6).cast(), len6), 0);
        assert_eq!(name(u), ([0; 16], 5000));
        let peer = sin6(REMOTE6.0, 53);
        assert_eq!(connect(u, (&peer as *const sockaddr_in6).cast(), len6), 0);
        assert_eq!(name(u), (LOCAL6.0, 5000));
        // TCP: a connection's own address.
        let t = socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        assert!(t >= 0);
        let peer = sin6(REMOTE6.0, 80);
        assert_eq!(connect(t, (&peer as *const sockaddr_in6).cast(), len6), -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINPROGRESS)
        );
        let (addr, port) = name(t);
        assert_eq!(addr, LOCAL6.0);
        assert_ne!(port, 0);
        // Bound to our IPv6 address: that address.
        let b = socket(libc::AF_INET6, libc::SOCK_STREAM, 0);
        let ours = sin6(LOCAL6.0, 8080);
        assert_eq!(bind(b, (&ours as *const sockaddr_in6).cast(), len6), 0);
        assert_eq!(name(b), (LOCAL6.0, 8080));
        fini();
    }
}
