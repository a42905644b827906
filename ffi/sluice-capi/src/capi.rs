//! The C functions: `sluice_*` on the process-wide instance, and the pointer-checking
//! bodies they share with the packetdrill interface (`c_*`, on any instance).
//!
//! This is the crate's unsafe boundary: raw pointers from C become slices and structs
//! here, after null and length checks, and nothing else in the crate touches them. Every
//! body runs under `catch_unwind`: a panic becomes `-1` with errno EIO, never an unwind
//! into C.

use core::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

use libc::{epoll_event, iovec, msghdr, pollfd, sockaddr, sockaddr_in, sockaddr_in6, socklen_t, ssize_t};
use sluice_net::Endpoint;
use sluice_wire::{IpAddress, Ipv4Address, Ipv6Address};

use crate::errno::*;
use crate::poll::PollFd;
use crate::stack::{Shared, SockAddr, SockName};
use crate::Instance;

/// Most iovecs one call takes (Linux's IOV_MAX).
const IOV_MAX: c_int = 1024;
const SOCKADDR_IN_LEN: usize = core::mem::size_of::<sockaddr_in>();
const SOCKADDR_IN6_LEN: usize = core::mem::size_of::<sockaddr_in6>();
/// The shortest `sockaddr_in6` Linux takes (RFC 2133's, without the scope id).
const SOCKADDR_IN6_MIN: usize = 24;

/// The instance behind the `sluice_*` calls.
static GLOBAL: RwLock<Option<Arc<Shared>>> = RwLock::new(None);

fn global() -> Res<Arc<Shared>> {
    let g = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    g.clone().ok_or(ENXIO)
}

/// The process-wide instance behind the `sluice_*` calls, if one was created.
pub fn global_shared() -> Option<Arc<Shared>> {
    global().ok()
}

fn set_global(sh: Option<Arc<Shared>>) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = sh;
}

/// Runs `f`; an error or a panic becomes errno and `-1`.
pub(crate) fn ret_int(f: impl FnOnce() -> Res<c_int>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            -1
        }
        Err(_) => {
            set_errno(EIO);
            -1
        }
    }
}

/// `ret_int` for byte counts.
pub(crate) fn ret_size(f: impl FnOnce() -> Res<usize>) -> ssize_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v.min(isize::MAX as usize) as ssize_t,
        Ok(Err(e)) => {
            set_errno(e);
            -1
        }
        Err(_) => {
            set_errno(EIO);
            -1
        }
    }
}

// ---- pointer conversions ----

/// Reads a `sockaddr_in` or a `sockaddr_in6`.
///
/// # Safety
/// `addr` is null or points to `len` readable bytes.
unsafe fn read_addr(addr: *const sockaddr, len: socklen_t) -> Res<SockAddr> {
    if addr.is_null() {
        return Err(EFAULT);
    }
    if (len as usize) < 2 {
        return Err(EINVAL);
    }
    // SAFETY: at least the family's two bytes are readable (checked above).
    let family = unsafe { core::ptr::read_unaligned(addr.cast::<libc::sa_family_t>()) };
    match c_int::from(family) {
        libc::AF_INET => {
            if (len as usize) < SOCKADDR_IN_LEN {
                return Err(EINVAL);
            }
            // SAFETY: non-null and at least `sizeof(struct sockaddr_in)` readable bytes
            // (caller); read unaligned since C may hand us any buffer.
            let sin = unsafe { core::ptr::read_unaligned(addr.cast::<sockaddr_in>()) };
            Ok(SockAddr::V4(Endpoint::new(
                Ipv4Address(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            if (len as usize) < SOCKADDR_IN6_MIN {
                return Err(EINVAL);
            }
            // The scope id (the last 4 bytes) may be missing: read what is there.
            // SAFETY: zeroed bytes are a valid `sockaddr_in6`; `addr` has at least
            // `SOCKADDR_IN6_MIN` readable bytes, and we copy no more than `len`.
            let mut sin6: sockaddr_in6 = unsafe { core::mem::zeroed() };
            let n = (len as usize).min(SOCKADDR_IN6_LEN);
            unsafe {
                core::ptr::copy_nonoverlapping(
                    addr.cast::<u8>(),
                    (&mut sin6 as *mut sockaddr_in6).cast::<u8>(),
                    n,
                )
            };
            let a = sin6.sin6_addr.s6_addr;
            let port = u16::from_be(sin6.sin6_port);
            Ok(if a == [0; 16] {
                SockAddr::Any6(port)
            } else if a[..10] == [0; 10] && a[10..12] == [0xff, 0xff] {
                SockAddr::Mapped(Endpoint::new(Ipv4Address([a[12], a[13], a[14], a[15]]), port))
            } else {
                // The scope id names the interface of a link-local address: there is one.
                SockAddr::Ipv6(Endpoint::new(Ipv6Address(a), port))
            })
        }
        _ => Err(EAFNOSUPPORT),
    }
}

/// Writes `name` into `addr` (truncated to `*len`) and sets `*len` to its full size: as a
/// `sockaddr_in`, or for an AF_INET6 socket (`inet6`) as a `sockaddr_in6` holding the
/// IPv4-mapped address (`::` for 0.0.0.0).
///
/// # Safety
/// `addr` and `len` are null, or `len` points to a writable `socklen_t` and `addr` to
/// `*len` writable bytes.
unsafe fn write_addr(name: SockName, addr: *mut sockaddr, len: *mut socklen_t) -> Res<()> {
    let SockName { addr: ep, inet6 } = name;
    if addr.is_null() || len.is_null() {
        return Ok(());
    }
    let mut bytes = [0u8; SOCKADDR_IN6_LEN];
    let size = if inet6 {
        // SAFETY: zeroed bytes are a valid `sockaddr_in6`.
        let mut sin6: sockaddr_in6 = unsafe { core::mem::zeroed() };
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_port = ep.port.to_be();
        match ep.addr {
            IpAddress::V6(a) => sin6.sin6_addr.s6_addr = a.0,
            IpAddress::V4(a) if !a.is_unspecified() => {
                sin6.sin6_addr.s6_addr[10..12].copy_from_slice(&[0xff, 0xff]);
                sin6.sin6_addr.s6_addr[12..].copy_from_slice(&a.0);
            }
            IpAddress::V4(_) => {}
        }
        // SAFETY: a plain struct viewed as its bytes.
        bytes.copy_from_slice(unsafe {
            core::slice::from_raw_parts((&sin6 as *const sockaddr_in6).cast::<u8>(), SOCKADDR_IN6_LEN)
        });
        SOCKADDR_IN6_LEN
    } else {
        // SAFETY: zeroed bytes are a valid `sockaddr_in`.
        let mut sin: sockaddr_in = unsafe { core::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = ep.port.to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes(ep.addr.as_v4().unwrap_or(Ipv4Address::UNSPECIFIED).0);
        // SAFETY: as above.
        bytes[..SOCKADDR_IN_LEN].copy_from_slice(unsafe {
            core::slice::from_raw_parts((&sin as *const sockaddr_in).cast::<u8>(), SOCKADDR_IN_LEN)
        });
        SOCKADDR_IN_LEN
    };
    // SAFETY: `len` is a valid `socklen_t` (caller).
    let room = unsafe { *len } as usize;
    let n = room.min(size);
    // SAFETY: `addr` has `room >= n` writable bytes (caller); `bytes` is a local of
    // at least `n` bytes; they do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr.cast::<u8>(), n);
        *len = size as socklen_t;
    }
    Ok(())
}

/// A C buffer as a slice.
///
/// # Safety
/// `buf` points to `len` readable bytes (any pointer when `len` is 0), valid and not
/// written by anyone else for `'a`.
unsafe fn slice<'a>(buf: *const c_void, len: usize) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() || len > isize::MAX as usize {
        return Err(EFAULT);
    }
    // SAFETY: as documented by the caller.
    Ok(unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) })
}

/// A C buffer as a mutable slice.
///
/// # Safety
/// `buf` points to `len` writable bytes (any pointer when `len` is 0), used by nobody
/// else for `'a`.
unsafe fn slice_mut<'a>(buf: *mut c_void, len: usize) -> Res<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() || len > isize::MAX as usize {
        return Err(EFAULT);
    }
    // SAFETY: as documented by the caller.
    Ok(unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// The iovec array.
///
/// # Safety
/// `iov` points to `cnt` iovecs (when `cnt > 0`).
unsafe fn iovecs<'a>(iov: *const iovec, cnt: c_int) -> Res<&'a [iovec]> {
    if !(0..=IOV_MAX).contains(&cnt) {
        return Err(EINVAL);
    }
    if cnt == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(EFAULT);
    }
    // SAFETY: `cnt` iovecs at `iov` (caller).
    Ok(unsafe { core::slice::from_raw_parts(iov, cnt as usize) })
}

/// # Safety
/// Each iovec describes readable memory.
unsafe fn iov_slices<'a>(iov: &[iovec]) -> Res<Vec<&'a [u8]>> {
    // SAFETY: each iovec describes `iov_len` readable bytes (caller).
    iov.iter()
        .map(|v| unsafe { slice(v.iov_base, v.iov_len) })
        .collect()
}

/// # Safety
/// Each iovec describes writable memory, and no two overlap.
unsafe fn iov_slices_mut<'a>(iov: &[iovec]) -> Res<Vec<&'a mut [u8]>> {
    // SAFETY: each iovec describes `iov_len` writable bytes, disjoint (caller).
    iov.iter()
        .map(|v| unsafe { slice_mut(v.iov_base, v.iov_len) })
        .collect()
}

// ---- bodies shared with the packetdrill interface ----

pub(crate) fn c_socket(sh: &Shared, domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    ret_int(|| sh.socket(domain, ty, protocol))
}

/// # Safety
/// See `read_addr`.
pub(crate) unsafe fn c_bind(sh: &Shared, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded from the caller.
    ret_int(|| sh.bind(fd, unsafe { read_addr(addr, len) }?).map(|()| 0))
}

pub(crate) fn c_listen(sh: &Shared, fd: c_int, backlog: c_int) -> c_int {
    ret_int(|| sh.listen(fd, backlog).map(|()| 0))
}

/// # Safety
/// See `write_addr`.
pub(crate) unsafe fn c_accept4(
    sh: &Shared,
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    ret_int(|| {
        let (nfd, peer) = sh.accept(fd, flags)?;
        // SAFETY: forwarded from the caller.
        unsafe { write_addr(peer, addr, len) }?;
        Ok(nfd)
    })
}

/// # Safety
/// See `read_addr`.
pub(crate) unsafe fn c_connect(sh: &Shared, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded from the caller.
    ret_int(|| sh.connect(fd, unsafe { read_addr(addr, len) }?).map(|()| 0))
}

/// # Safety
/// `buf` has `len` writable bytes; `from`/`fromlen` as for `write_addr`.
pub(crate) unsafe fn c_recvfrom(
    sh: &Shared,
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    from: *mut sockaddr,
    fromlen: *mut socklen_t,
) -> ssize_t {
    ret_size(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { slice_mut(buf, len) }?;
        let (n, peer) = sh.recv(fd, &mut [b], flags)?;
        if let Some(p) = peer {
            // SAFETY: forwarded from the caller.
            unsafe { write_addr(p, from, fromlen) }?;
        }
        Ok(n)
    })
}

/// # Safety
/// `iov` holds `cnt` iovecs of disjoint writable memory.
pub(crate) unsafe fn c_readv(sh: &Shared, fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    ret_size(|| {
        // SAFETY: forwarded from the caller.
        let mut bufs = unsafe { iov_slices_mut(iovecs(iov, cnt)?) }?;
        sh.recv(fd, &mut bufs, 0).map(|(n, _)| n)
    })
}

/// # Safety
/// `msg` is a valid `struct msghdr` whose iovecs, name and control buffers are writable.
pub(crate) unsafe fn c_recvmsg(sh: &Shared, fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    ret_size(|| {
        if msg.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: a valid msghdr (caller).
        let m = unsafe { &mut *msg };
        let cnt = c_int::try_from(m.msg_iovlen).map_err(|_| EINVAL)?;
        // SAFETY: forwarded from the caller.
        let mut bufs = unsafe { iov_slices_mut(iovecs(m.msg_iov, cnt)?) }?;
        let (n, peer) = sh.recv(fd, &mut bufs, flags)?;
        if let Some(p) = peer {
            // SAFETY: `msg_name` has `msg_namelen` writable bytes (caller).
            unsafe { write_addr(p, m.msg_name.cast(), &mut m.msg_namelen) }?;
        } else {
            m.msg_namelen = 0;
        }
        m.msg_controllen = 0;
        m.msg_flags = 0;
        Ok(n)
    })
}

/// # Safety
/// `buf` has `len` readable bytes; `to` as for `read_addr` (or null).
pub(crate) unsafe fn c_sendto(
    sh: &Shared,
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    to: *const sockaddr,
    tolen: socklen_t,
) -> ssize_t {
    ret_size(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { slice(buf, len) }?;
        let to = if to.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller.
            addr_for(sh, fd, unsafe { read_addr(to, tolen) })?
        };
        sh.send(fd, &[b], flags, to)
    })
}

/// The destination of a send: TCP ignores it, whatever it is (as Linux's `tcp_sendmsg`),
/// UDP needs it valid.
fn addr_for(sh: &Shared, fd: c_int, a: Res<SockAddr>) -> Res<Option<SockAddr>> {
    match a {
        Ok(a) => Ok(Some(a)),
        Err(_) if sh.is_tcp(fd) => Ok(None),
        Err(e) => Err(e),
    }
}

/// # Safety
/// `iov` holds `cnt` iovecs of readable memory.
pub(crate) unsafe fn c_writev(sh: &Shared, fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    ret_size(|| {
        // SAFETY: forwarded from the caller.
        let bufs = unsafe { iov_slices(iovecs(iov, cnt)?) }?;
        sh.send(fd, &bufs, 0, None)
    })
}

/// # Safety
/// `msg` is a valid `struct msghdr` with readable iovecs and name.
pub(crate) unsafe fn c_sendmsg(sh: &Shared, fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    ret_size(|| {
        if msg.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: a valid msghdr (caller).
        let m = unsafe { &*msg };
        let cnt = c_int::try_from(m.msg_iovlen).map_err(|_| EINVAL)?;
        // SAFETY: forwarded from the caller.
        let bufs = unsafe { iov_slices(iovecs(m.msg_iov, cnt)?) }?;
        let to = if m.msg_name.is_null() {
            None
        } else {
            // SAFETY: `msg_name` has `msg_namelen` readable bytes (caller).
            addr_for(sh, fd, unsafe { read_addr(m.msg_name.cast(), m.msg_namelen) })?
        };
        sh.send(fd, &bufs, flags, to)
    })
}

pub(crate) fn c_fcntl(sh: &Shared, fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    ret_int(|| match cmd {
        libc::F_GETFL => sh.get_flags(fd),
        libc::F_SETFL => sh.set_flags(fd, arg as c_int).map(|()| 0),
        libc::F_GETFD | libc::F_SETFD => sh.get_flags(fd).map(|_| 0),
        _ => Err(EINVAL),
    })
}

/// # Safety
/// For FIONREAD and FIONBIO, `arg` points to a C `int`.
pub(crate) unsafe fn c_ioctl(sh: &Shared, fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    ret_int(|| {
        let p = arg.cast::<c_int>();
        if p.is_null() {
            return Err(EFAULT);
        }
        match request {
            libc::FIONREAD => {
                let n = sh.readable_bytes(fd)?;
                // SAFETY: `arg` points to an int (caller).
                unsafe { p.write_unaligned(n.min(c_int::MAX as usize) as c_int) };
                Ok(0)
            }
            libc::FIONBIO => {
                // SAFETY: `arg` points to an int (caller).
                let on = unsafe { p.read_unaligned() } != 0;
                let fl = sh.get_flags(fd)?;
                let fl = if on {
                    fl | libc::O_NONBLOCK
                } else {
                    fl & !libc::O_NONBLOCK
                };
                sh.set_flags(fd, fl).map(|()| 0)
            }
            _ => Err(Errno(libc::ENOTTY)),
        }
    })
}

pub(crate) fn c_close(sh: &Shared, fd: c_int) -> c_int {
    ret_int(|| sh.close(fd).map(|()| 0))
}

pub(crate) fn c_shutdown(sh: &Shared, fd: c_int, how: c_int) -> c_int {
    ret_int(|| sh.shutdown(fd, how).map(|()| 0))
}

/// # Safety
/// `optlen` points to a `socklen_t`, `optval` to `*optlen` writable bytes.
pub(crate) unsafe fn c_getsockopt(
    sh: &Shared,
    fd: c_int,
    level: c_int,
    name: c_int,
    optval: *mut c_void,
    optlen: *mut socklen_t,
) -> c_int {
    ret_int(|| {
        if optlen.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: `optlen` is a valid socklen_t (caller).
        let len = unsafe { *optlen } as usize;
        // Room for the largest option (TCP_INFO, 232 bytes with Linux's newest fields).
        let mut tmp = [0u8; 256];
        let n = sh.getsockopt(fd, level, name, &mut tmp)?;
        let n = n.min(len);
        // SAFETY: `optval` has `len >= n` writable bytes (caller).
        let out = unsafe { slice_mut(optval, n) }?;
        out.copy_from_slice(&tmp[..n]);
        // SAFETY: as above.
        unsafe { *optlen = n as socklen_t };
        Ok(0)
    })
}

/// # Safety
/// `optval` has `optlen` readable bytes.
pub(crate) unsafe fn c_setsockopt(
    sh: &Shared,
    fd: c_int,
    level: c_int,
    name: c_int,
    optval: *const c_void,
    optlen: socklen_t,
) -> c_int {
    ret_int(|| {
        // SAFETY: forwarded from the caller.
        let val = unsafe { slice(optval, optlen as usize) }?;
        sh.setsockopt(fd, level, name, val).map(|()| 0)
    })
}

/// # Safety
/// `fds` holds `nfds` writable `struct pollfd`.
pub(crate) unsafe fn c_poll(sh: &Shared, fds: *mut pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    ret_int(|| {
        if nfds > 65536 {
            return Err(EINVAL);
        }
        let fds: &mut [pollfd] = if nfds == 0 {
            &mut []
        } else if fds.is_null() {
            return Err(EFAULT);
        } else {
            // SAFETY: `nfds` pollfds at `fds` (caller).
            unsafe { core::slice::from_raw_parts_mut(fds, nfds as usize) }
        };
        let mut v: Vec<PollFd> = fds
            .iter()
            .map(|p| PollFd {
                fd: p.fd,
                events: p.events,
                revents: 0,
            })
            .collect();
        let n = sh.poll(&mut v, timeout)?;
        for (p, q) in fds.iter_mut().zip(&v) {
            p.revents = q.revents;
        }
        Ok(n as c_int)
    })
}

pub(crate) fn c_epoll_create1(sh: &Shared, flags: c_int) -> c_int {
    ret_int(|| sh.epoll_create(flags))
}

/// # Safety
/// `event` is null or points to a readable `struct epoll_event`.
pub(crate) unsafe fn c_epoll_ctl(
    sh: &Shared,
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut epoll_event,
) -> c_int {
    ret_int(|| {
        let ev = if event.is_null() {
            None
        } else {
            // SAFETY: a readable epoll_event (caller); the struct is packed on x86_64, so
            // read it unaligned.
            let e = unsafe { core::ptr::read_unaligned(event) };
            Some((e.events, e.u64))
        };
        sh.epoll_ctl(epfd, op, fd, ev).map(|()| 0)
    })
}

/// # Safety
/// `events` has room for `maxevents` `struct epoll_event`.
pub(crate) unsafe fn c_epoll_wait(
    sh: &Shared,
    epfd: c_int,
    events: *mut epoll_event,
    maxevents: c_int,
    timeout: c_int,
) -> c_int {
    ret_int(|| {
        if maxevents <= 0 || maxevents > 1 << 20 {
            return Err(EINVAL);
        }
        if events.is_null() {
            return Err(EFAULT);
        }
        let mut out = vec![(0u32, 0u64); maxevents as usize];
        let n = sh.epoll_wait(epfd, &mut out, timeout)?;
        for (i, &(ev, data)) in out[..n].iter().enumerate() {
            // SAFETY: `i < maxevents` slots at `events` (caller); unaligned as above.
            unsafe {
                core::ptr::write_unaligned(
                    events.add(i),
                    epoll_event {
                        events: ev,
                        u64: data,
                    },
                )
            };
        }
        Ok(n as c_int)
    })
}

// ---- the process-wide instance ----

/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn flags_str(s: *const c_char) -> Res<String> {
    if s.is_null() {
        return Ok(String::new());
    }
    // SAFETY: NUL-terminated (caller).
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map(str::to_owned).map_err(|_| EINVAL)
}

/// `with_global` for the other modules of the C API.
pub(crate) fn with_global_pub<T>(f: impl FnOnce(&Shared) -> T, err: T) -> T {
    with_global(f, err)
}

fn with_global<T>(f: impl FnOnce(&Shared) -> T, err: T) -> T {
    match global() {
        Ok(sh) => f(&sh),
        Err(e) => {
            set_errno(e);
            err
        }
    }
}

/// Creates the process-wide instance on the in-memory device with virtual time (replacing
/// any previous one). The far side is driven with `sluice_peer_send`, `sluice_peer_recv`
/// and `sluice_advance_us`. `flags`: as packetdrill's `--so_flags`, e.g.
/// `"--local_ip=198.18.0.1 --remote_ip=198.18.0.2"` (may be NULL). Returns 0, or -1 and
/// EINVAL for bad flags.
///
/// # Safety
/// `flags` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sluice_init_memory(flags: *const c_char) -> c_int {
    ret_int(|| {
        // SAFETY: forwarded from the caller.
        let flags = unsafe { flags_str(flags) }?;
        let inst = Instance::memory(&flags).map_err(|e| {
            eprintln!("sluice: {e}");
            EINVAL
        })?;
        set_global(Some(inst.shared().clone()));
        Ok(0)
    })
}

/// Creates the process-wide instance with the real (monotonic) clock, exchanging IPv4
/// packets with a peer over Unix datagram sockets: the stack binds `local_path` and sends
/// to `peer_path`. For tests and tools that play the network from another process.
/// Returns 0, or -1 with errno.
///
/// # Safety
/// The three arguments are NULL (flags only) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn sluice_init_unix(
    local_path: *const c_char,
    peer_path: *const c_char,
    flags: *const c_char,
) -> c_int {
    ret_int(|| {
        if local_path.is_null() || peer_path.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: forwarded from the caller.
        let (local, peer, flags) =
            unsafe { (flags_str(local_path)?, flags_str(peer_path)?, flags_str(flags)?) };
        let inst = Instance::unix(&local, &peer, &flags).map_err(|e| {
            eprintln!("sluice: {e}");
            EINVAL
        })?;
        set_global(Some(inst.shared().clone()));
        Ok(0)
    })
}

/// Creates the process-wide instance on one DPDK port (a single queue, polled by the
/// calling threads under the instance's lock) with the TSC clock. `flags`, e.g.
/// `"--port=tap:sl0 --ip=198.18.0.2/24"`: `--port=tap:NAME | virtio:PATH | NAME`,
/// `--ip=ADDRESS/PREFIX`, `--gateway=IP`, `--arp=IP=MAC`, `--eal=ARG` (repeatable, replaces
/// the defaults), `--mbufs=N`, and the TCP flags of `sluice_init_memory` (`--mss=`,
/// `--nodelay`, `--block_timeout_ms=`...). EAL is initialised once per process: a second
/// call fails. Returns 0, or -1 with errno (EINVAL: bad flags or EAL failed; ENODEV: no
/// such port; ENOMEM: no hugepages or mbufs) and a message on stderr saying how to fix it.
///
/// # Safety
/// `flags` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sluice_init_dpdk(flags: *const c_char) -> c_int {
    ret_int(|| {
        // SAFETY: forwarded from the caller.
        let flags = unsafe { flags_str(flags) }?;
        let inst = Instance::dpdk(&flags).map_err(|e| {
            eprintln!("sluice_init_dpdk: {e}");
            e.errno
        })?;
        set_global(Some(inst.shared().clone()));
        Ok(0)
    })
}

/// Drops the process-wide instance (its connections vanish without a FIN).
#[no_mangle]
pub extern "C" fn sluice_fini() {
    let _ = catch_unwind(|| set_global(None));
}

/// Lets the stack work: receives, runs timers, sends. Call it when idle if no other
/// sluice call is made for a while (blocking calls, poll and epoll_wait do it).
#[no_mangle]
pub extern "C" fn sluice_service() -> c_int {
    with_global(|sh| ret_int(|| Ok(sh.with(|st| st.poll() as c_int))), -1)
}

/// In-memory instance: hands the stack one IPv4 packet from the peer. 0, or -1 (EINVAL:
/// not IPv4).
///
/// # Safety
/// `buf` has `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send(buf: *const c_void, len: usize) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| ret_int(|| crate::packetdrill::peer_send(sh, unsafe { slice(buf, len) }?)),
        -1,
    )
}

/// In-memory instance: takes the next IPv4 packet the stack sent, without waiting.
/// `*len` is the room in `buf` on entry and the packet's length on return (0: none);
/// `*time_us` (if not NULL) the virtual time it left. Returns 0, or -1 with errno.
///
/// # Safety
/// `len` points to a `size_t`, `buf` to `*len` writable bytes, `time_us` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_recv(buf: *mut c_void, len: *mut usize, time_us: *mut i64) -> c_int {
    with_global(
        |sh| {
            ret_int(|| {
                if len.is_null() {
                    return Err(EFAULT);
                }
                let out = sh.with(|st| st.dev.take());
                // SAFETY: `len` is a valid size_t (caller).
                let room = unsafe { *len };
                let n = out.as_ref().map_or(0, |o| o.packet.len().min(room));
                // SAFETY: `buf` has `room >= n` writable bytes (caller).
                let dst = unsafe { slice_mut(buf, n) }?;
                if let Some(o) = &out {
                    dst.copy_from_slice(&o.packet[..n]);
                    if !time_us.is_null() {
                        // SAFETY: writable when not NULL (caller).
                        unsafe { *time_us = (o.at.total_micros()) as i64 };
                    }
                }
                // SAFETY: as above.
                unsafe { *len = n };
                Ok(0)
            })
        },
        -1,
    )
}

/// In-memory instance: moves virtual time on by `us` microseconds, firing the timers due.
#[no_mangle]
pub extern "C" fn sluice_advance_us(us: u64) -> c_int {
    with_global(
        |sh| {
            ret_int(|| {
                crate::packetdrill::advance(sh, core::time::Duration::from_micros(us));
                Ok(0)
            })
        },
        -1,
    )
}

/// The instance's clock in microseconds (virtual or monotonic).
#[no_mangle]
pub extern "C" fn sluice_now_us() -> i64 {
    with_global(|sh| sh.with(|st| st.now().total_micros() as i64), -1)
}

/// Like `socket(2)`: `AF_INET` with `SOCK_STREAM` or `SOCK_DGRAM` (optionally
/// `| SOCK_NONBLOCK`). Returns a Sluice descriptor (not a kernel one).
#[no_mangle]
pub extern "C" fn sluice_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    with_global(|sh| c_socket(sh, domain, ty, protocol), -1)
}

/// Like `bind(2)` (IPv4: INADDR_ANY or the stack's address).
///
/// # Safety
/// `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_bind(sh, fd, addr, len) }, -1)
}

/// Like `listen(2)`.
#[no_mangle]
pub extern "C" fn sluice_listen(fd: c_int, backlog: c_int) -> c_int {
    with_global(|sh| c_listen(sh, fd, backlog), -1)
}

/// Like `accept(2)`.
///
/// # Safety
/// `addr`/`len` are NULL, or `len` points to a `socklen_t` and `addr` to `*len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_accept4(sh, fd, addr, len, 0) }, -1)
}

/// Like `accept4(2)` (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
///
/// # Safety
/// As `sluice_accept`.
#[no_mangle]
pub unsafe extern "C" fn sluice_accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_accept4(sh, fd, addr, len, flags) }, -1)
}

/// Like `connect(2)`: nonblocking sockets return -1 with EINPROGRESS.
///
/// # Safety
/// `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_connect(sh, fd, addr, len) }, -1)
}

/// Like `read(2)`.
///
/// # Safety
/// `buf` has `count` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_read(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe {
            c_recvfrom(
                sh,
                fd,
                buf,
                count,
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        },
        -1,
    )
}

/// Like `readv(2)`.
///
/// # Safety
/// `iov` holds `iovcnt` iovecs of disjoint writable memory.
#[no_mangle]
pub unsafe extern "C" fn sluice_readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_readv(sh, fd, iov, iovcnt) }, -1)
}

/// Like `recv(2)` (`MSG_PEEK`, `MSG_DONTWAIT`, `MSG_WAITALL`).
///
/// # Safety
/// `buf` has `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe {
            c_recvfrom(
                sh,
                fd,
                buf,
                len,
                flags,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        },
        -1,
    )
}

/// Like `recvfrom(2)`.
///
/// # Safety
/// `buf` has `len` writable bytes; `addr`/`addrlen` as for `sluice_accept`.
#[no_mangle]
pub unsafe extern "C" fn sluice_recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_recvfrom(sh, fd, buf, len, flags, addr, addrlen) },
        -1,
    )
}

/// Like `recvmsg(2)` (no control messages: `msg_controllen` is set to 0).
///
/// # Safety
/// `msg` is a valid `struct msghdr` with writable buffers.
#[no_mangle]
pub unsafe extern "C" fn sluice_recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_recvmsg(sh, fd, msg, flags) }, -1)
}

/// Like `write(2)`. A blocking write returns once all of `buf` is queued.
///
/// # Safety
/// `buf` has `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_write(fd: c_int, buf: *const c_void, count: usize) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_sendto(sh, fd, buf, count, 0, core::ptr::null(), 0) },
        -1,
    )
}

/// Like `writev(2)`.
///
/// # Safety
/// `iov` holds `iovcnt` iovecs of readable memory.
#[no_mangle]
pub unsafe extern "C" fn sluice_writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_writev(sh, fd, iov, iovcnt) }, -1)
}

/// Like `send(2)` (`MSG_DONTWAIT`, `MSG_NOSIGNAL`; SIGPIPE is never raised).
///
/// # Safety
/// `buf` has `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_sendto(sh, fd, buf, len, flags, core::ptr::null(), 0) },
        -1,
    )
}

/// Like `sendto(2)`.
///
/// # Safety
/// `buf` has `len` readable bytes; `addr` is NULL or has `addrlen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_sendto(sh, fd, buf, len, flags, addr, addrlen) },
        -1,
    )
}

/// Like `sendmsg(2)` (control messages are ignored).
///
/// # Safety
/// `msg` is a valid `struct msghdr` with readable buffers.
#[no_mangle]
pub unsafe extern "C" fn sluice_sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_sendmsg(sh, fd, msg, flags) }, -1)
}

/// Like `fcntl(2)` with `F_GETFL`, `F_SETFL` (`O_NONBLOCK`), `F_GETFD`, `F_SETFD`; not
/// variadic: pass 0 as `arg` when the command takes none.
#[no_mangle]
pub extern "C" fn sluice_fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    with_global(|sh| c_fcntl(sh, fd, cmd, arg), -1)
}

/// Like `ioctl(2)` with `FIONREAD` and `FIONBIO` (`arg` points to an `int`).
///
/// # Safety
/// `arg` points to an `int`.
#[no_mangle]
pub unsafe extern "C" fn sluice_ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_ioctl(sh, fd, request, arg) }, -1)
}

/// Like `close(2)`: a connection ends with a FIN (a RST with SO_LINGER {1, 0} or unread
/// data) and finishes in the background.
#[no_mangle]
pub extern "C" fn sluice_close(fd: c_int) -> c_int {
    with_global(|sh| c_close(sh, fd), -1)
}

/// Like `shutdown(2)`.
#[no_mangle]
pub extern "C" fn sluice_shutdown(fd: c_int, how: c_int) -> c_int {
    with_global(|sh| c_shutdown(sh, fd, how), -1)
}

/// Like `getsockopt(2)`; see docs/c-api.md for the options.
///
/// # Safety
/// `optlen` points to a `socklen_t`, `optval` to `*optlen` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    optval: *mut c_void,
    optlen: *mut socklen_t,
) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_getsockopt(sh, fd, level, name, optval, optlen) },
        -1,
    )
}

/// Like `setsockopt(2)`; see docs/c-api.md for the options.
///
/// # Safety
/// `optval` has `optlen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    optval: *const c_void,
    optlen: socklen_t,
) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_setsockopt(sh, fd, level, name, optval, optlen) },
        -1,
    )
}

/// Like `getsockname(2)`.
///
/// # Safety
/// `len` points to a `socklen_t`, `addr` to `*len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    with_global(
        // SAFETY: forwarded from the caller.
        |sh| ret_int(|| unsafe { write_addr(sh.local_addr(fd)?, addr, len) }.map(|()| 0)),
        -1,
    )
}

/// Like `getpeername(2)`.
///
/// # Safety
/// `len` points to a `socklen_t`, `addr` to `*len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sluice_getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    with_global(
        // SAFETY: forwarded from the caller.
        |sh| ret_int(|| unsafe { write_addr(sh.peer_addr(fd)?, addr, len) }.map(|()| 0)),
        -1,
    )
}

/// Like `poll(2)` over Sluice descriptors only (a negative `fd` is skipped, an unknown
/// one reports POLLNVAL).
///
/// # Safety
/// `fds` holds `nfds` writable `struct pollfd`.
#[no_mangle]
pub unsafe extern "C" fn sluice_poll(fds: *mut pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_poll(sh, fds, nfds, timeout) }, -1)
}

/// Like `epoll_create(2)` (`size` must be positive and is otherwise ignored).
#[no_mangle]
pub extern "C" fn sluice_epoll_create(size: c_int) -> c_int {
    if size <= 0 {
        set_errno(EINVAL);
        return -1;
    }
    with_global(|sh| c_epoll_create1(sh, 0), -1)
}

/// Like `epoll_create1(2)`.
#[no_mangle]
pub extern "C" fn sluice_epoll_create1(flags: c_int) -> c_int {
    with_global(|sh| c_epoll_create1(sh, flags), -1)
}

/// Like `epoll_ctl(2)` over Sluice descriptors.
///
/// # Safety
/// `event` is NULL (EPOLL_CTL_DEL) or points to a `struct epoll_event`.
#[no_mangle]
pub unsafe extern "C" fn sluice_epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut epoll_event,
) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(|sh| unsafe { c_epoll_ctl(sh, epfd, op, fd, event) }, -1)
}

/// Like `epoll_wait(2)`.
///
/// # Safety
/// `events` has room for `maxevents` `struct epoll_event`.
#[no_mangle]
pub unsafe extern "C" fn sluice_epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    maxevents: c_int,
    timeout: c_int,
) -> c_int {
    // SAFETY: forwarded from the caller.
    with_global(
        |sh| unsafe { c_epoll_wait(sh, epfd, events, maxevents, timeout) },
        -1,
    )
}
