//! packetdrill's `--so_filename` interface (`gtests/net/packetdrill/packetdrill.h`).
//!
//! packetdrill `dlopen`s the library, calls `packetdrill_interface_init(so_flags, &ifc)`
//! and from then on calls the stack only through `ifc`: system calls (from its syscall
//! thread, which may block), and from its main thread `netdev_send` (an inbound IPv4
//! packet), `netdev_receive` (the next outbound one), `usleep` and `gettimeofday`.
//!
//! Time is virtual and moves only here: `usleep` advances it (firing the timers due on
//! the way, each at its deadline), `gettimeofday` advances it by 1 µs per call (so that
//! packetdrill's final spin before an event ends), and `netdev_receive`, when the stack
//! has nothing to send, jumps to the stack's next timer (a retransmission, a delayed
//! ACK), up to `--max_wait_ms` ahead. Before time moves, blocked calls of the syscall
//! thread are given the chance to see the last change, so a script runs the same way
//! every time.

use core::ffi::{c_char, c_int, c_long, c_longlong, c_uint, c_ulong, c_void};
use core::time::Duration;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, MutexGuard};

use libc::{
    epoll_event, iovec, loff_t, msghdr, nfds_t, pollfd, sockaddr, socklen_t, ssize_t, timeval, useconds_t,
};

use crate::capi::*;
use crate::device::Outbound;
use crate::errno::*;
use crate::stack::{Shared, Stack};
use crate::Instance;

/// packetdrill's `struct packetdrill_interface`, field for field. `fcntl` and `ioctl` are
/// variadic in C; the functions stored there take the one argument packetdrill passes
/// (an integer for fcntl, a pointer for ioctl), which the x86-64 and AArch64 Linux calling
/// conventions pass in the same register either way.
#[repr(C)]
#[derive(Debug)]
pub struct PacketdrillInterface {
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
    /// C: `int (*fcntl)(void *userdata, int fd, int cmd, ...)`.
    pub fcntl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_long) -> c_int>,
    /// C: `int (*ioctl)(void *userdata, int fd, unsigned long request, ...)`.
    pub ioctl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_ulong, *mut c_void) -> c_int>,
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

/// What `gettimeofday` adds to the virtual clock: a plausible wall-clock date.
const EPOCH_US: i64 = 1_700_000_000_000_000;

/// Waits (a bounded while) until every blocked call looked at the last change.
fn settle<'a>(sh: &'a Shared, mut st: MutexGuard<'a, Stack>) -> MutexGuard<'a, Stack> {
    let limit = std::time::Instant::now() + Duration::from_secs(1);
    while !st.waiters_settled() && std::time::Instant::now() < limit {
        st = sh.wait(st, Duration::from_millis(5));
    }
    st
}

/// Hands the stack an IPv4 packet from the peer.
pub(crate) fn peer_send(sh: &Shared, packet: &[u8]) -> Res<c_int> {
    sh.with(|st| st.dev.inject(packet).map(|()| 0).map_err(|_| EINVAL))
}

/// Moves virtual time on by `d`.
pub(crate) fn advance(sh: &Shared, d: Duration) {
    let mut st = settle(sh, sh.lock());
    let target = st.now() + d;
    st.advance_to(target);
    drop(st);
    sh.notify();
}

/// The next packet the stack sends, moving virtual time to the stack's next timer while
/// it has nothing to send. `None` when nothing will come.
pub(crate) fn peer_recv_wait(sh: &Shared) -> Option<Outbound> {
    let mut st = sh.lock();
    let horizon = st.now() + st.cfg.max_wait;
    let limit = std::time::Instant::now()
        + st.cfg
            .block_limit
            .unwrap_or(Duration::from_secs(2))
            .min(Duration::from_secs(2));
    loop {
        let e0 = st.epoch;
        st.poll();
        if st.epoch != e0 {
            sh.notify();
        }
        if let Some(o) = st.dev.take() {
            return Some(o);
        }
        if !st.waiters_settled() && std::time::Instant::now() < limit {
            st = sh.wait(st, Duration::from_millis(5));
            continue;
        }
        let now = st.now();
        match st.iface.poll_at() {
            Some(t) if t <= horizon => {
                st.advance_to(if t > now {
                    t
                } else {
                    now + Duration::from_micros(10)
                });
                sh.notify();
            }
            _ if std::time::Instant::now() >= limit => return None,
            // Nothing scheduled: a blocked call of another thread may still act.
            _ => st = sh.wait(st, Duration::from_millis(5)),
        }
    }
}

/// The instance behind a userdata pointer.
///
/// # Safety
/// `ud` is null or the userdata `sluice_packetdrill_init` stored, not yet freed.
unsafe fn shared<'a>(ud: *mut c_void) -> Option<&'a Shared> {
    // SAFETY: a `Box<Arc<Shared>>` leaked by the init, alive until `pd_free` (caller).
    unsafe { ud.cast::<Arc<Shared>>().as_ref() }.map(|a| &**a)
}

/// Defines an interface function: the instance from `userdata`, then the shared body.
macro_rules! pd_fn {
    ($name:ident ( $($a:ident : $t:ty),* ) -> $r:ty => $body:path) => {
        #[allow(unused_unsafe)]
        unsafe extern "C" fn $name(ud: *mut c_void, $($a: $t),*) -> $r {
            // SAFETY: packetdrill passes back the userdata of our init.
            let Some(sh) = (unsafe { shared(ud) }) else {
                set_errno(EBADF);
                return -1;
            };
            // SAFETY: packetdrill passes pointers as valid as for the system call.
            unsafe {
                $body(sh, $($a),*)
            }
        }
    };
}

pd_fn!(pd_socket(d: c_int, t: c_int, p: c_int) -> c_int => c_socket);
pd_fn!(pd_bind(fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int => c_bind);
pd_fn!(pd_listen(fd: c_int, b: c_int) -> c_int => c_listen);
pd_fn!(pd_connect(fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int => c_connect);
pd_fn!(pd_readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t => c_readv);
pd_fn!(pd_recvfrom(fd: c_int, b: *mut c_void, n: usize, f: c_int, a: *mut sockaddr, l: *mut socklen_t)
    -> ssize_t => c_recvfrom);
pd_fn!(pd_recvmsg(fd: c_int, m: *mut msghdr, f: c_int) -> ssize_t => c_recvmsg);
pd_fn!(pd_writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t => c_writev);
pd_fn!(pd_sendto(fd: c_int, b: *const c_void, n: usize, f: c_int, a: *const sockaddr, l: socklen_t)
    -> ssize_t => c_sendto);
pd_fn!(pd_sendmsg(fd: c_int, m: *const msghdr, f: c_int) -> ssize_t => c_sendmsg);
pd_fn!(pd_fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int => c_fcntl);
pd_fn!(pd_ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int => c_ioctl);
pd_fn!(pd_close(fd: c_int) -> c_int => c_close);
pd_fn!(pd_shutdown(fd: c_int, how: c_int) -> c_int => c_shutdown);
pd_fn!(pd_getsockopt(fd: c_int, lv: c_int, n: c_int, v: *mut c_void, l: *mut socklen_t) -> c_int => c_getsockopt);
pd_fn!(pd_setsockopt(fd: c_int, lv: c_int, n: c_int, v: *const c_void, l: socklen_t) -> c_int => c_setsockopt);
pd_fn!(pd_poll(fds: *mut pollfd, n: nfds_t, t: c_int) -> c_int => c_poll);
pd_fn!(pd_epoll_ctl(ep: c_int, op: c_int, fd: c_int, e: *mut epoll_event) -> c_int => c_epoll_ctl);
pd_fn!(pd_epoll_wait(ep: c_int, e: *mut epoll_event, n: c_int, t: c_int) -> c_int => c_epoll_wait);
pd_fn!(pd_netdev_send(b: *const c_void, n: usize) -> c_int => netdev_send);
pd_fn!(pd_netdev_receive(b: *mut c_void, n: *mut usize, t: *mut c_longlong) -> c_int => netdev_receive);
pd_fn!(pd_usleep(us: useconds_t) -> c_int => usleep);
pd_fn!(pd_gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int => gettimeofday);

unsafe extern "C" fn pd_accept(ud: *mut c_void, fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int {
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    // SAFETY: packetdrill passes pointers as valid as for accept(2).
    unsafe { c_accept4(sh, fd, a, l, 0) }
}

unsafe extern "C" fn pd_read(ud: *mut c_void, fd: c_int, b: *mut c_void, n: usize) -> ssize_t {
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    // SAFETY: packetdrill passes a buffer as valid as for read(2).
    unsafe { c_recvfrom(sh, fd, b, n, 0, core::ptr::null_mut(), core::ptr::null_mut()) }
}

unsafe extern "C" fn pd_recv(ud: *mut c_void, fd: c_int, b: *mut c_void, n: usize, f: c_int) -> ssize_t {
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    // SAFETY: packetdrill passes a buffer as valid as for recv(2).
    unsafe { c_recvfrom(sh, fd, b, n, f, core::ptr::null_mut(), core::ptr::null_mut()) }
}

unsafe extern "C" fn pd_write(ud: *mut c_void, fd: c_int, b: *const c_void, n: usize) -> ssize_t {
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    // SAFETY: packetdrill passes a buffer as valid as for write(2).
    unsafe { c_sendto(sh, fd, b, n, 0, core::ptr::null(), 0) }
}

unsafe extern "C" fn pd_send(ud: *mut c_void, fd: c_int, b: *const c_void, n: usize, f: c_int) -> ssize_t {
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    // SAFETY: packetdrill passes a buffer as valid as for send(2).
    unsafe { c_sendto(sh, fd, b, n, f, core::ptr::null(), 0) }
}

unsafe extern "C" fn pd_epoll_create(ud: *mut c_void, size: c_int) -> c_int {
    if size <= 0 {
        set_errno(EINVAL);
        return -1;
    }
    // SAFETY: packetdrill passes back the userdata of our init.
    let Some(sh) = (unsafe { shared(ud) }) else {
        return -1;
    };
    c_epoll_create1(sh, 0)
}

unsafe extern "C" fn pd_pipe(_ud: *mut c_void, _fds: *mut c_int) -> c_int {
    set_errno(ENOSYS);
    -1
}

unsafe extern "C" fn pd_splice(
    _ud: *mut c_void,
    _fd_in: c_int,
    _off_in: *mut loff_t,
    _fd_out: c_int,
    _off_out: *mut loff_t,
    _len: usize,
    _flags: c_uint,
) -> ssize_t {
    set_errno(ENOSYS);
    -1
}

unsafe extern "C" fn pd_free(ud: *mut c_void) {
    if !ud.is_null() {
        // SAFETY: the `Box<Arc<Shared>>` our init leaked; packetdrill frees it once.
        let inst = unsafe { Box::from_raw(ud.cast::<Arc<Shared>>()) };
        let _ = catch_unwind(AssertUnwindSafe(|| drop(inst)));
    }
}

/// # Safety
/// `buf` has `count` readable bytes.
unsafe fn netdev_send(sh: &Shared, buf: *const c_void, count: usize) -> c_int {
    ret_int(|| {
        if buf.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: `count` readable bytes (caller).
        let b = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        peer_send(sh, b)
    })
}

/// # Safety
/// `count` points to a `size_t`, `buf` to `*count` writable bytes; `time_usecs` is null or
/// writable.
unsafe fn netdev_receive(
    sh: &Shared,
    buf: *mut c_void,
    count: *mut usize,
    time_usecs: *mut c_longlong,
) -> c_int {
    ret_int(|| {
        if count.is_null() || buf.is_null() {
            return Err(EFAULT);
        }
        let out = peer_recv_wait(sh);
        // SAFETY: a valid size_t (caller).
        let room = unsafe { *count };
        let n = out.as_ref().map_or(0, |o| o.packet.len().min(room));
        if let Some(o) = &out {
            // SAFETY: `room >= n` writable bytes at `buf` (caller); `o.packet` is ours.
            unsafe { core::ptr::copy_nonoverlapping(o.packet.as_ptr(), buf.cast::<u8>(), n) };
            if !time_usecs.is_null() {
                // SAFETY: writable when not null (caller).
                unsafe { *time_usecs = EPOCH_US + o.at.total_micros() as i64 };
            }
        }
        // SAFETY: as above.
        unsafe { *count = n };
        Ok(0)
    })
}

fn usleep(sh: &Shared, us: useconds_t) -> c_int {
    ret_int(|| {
        advance(sh, Duration::from_micros(u64::from(us)));
        Ok(0)
    })
}

/// # Safety
/// `tv` is null or writable.
unsafe fn gettimeofday(sh: &Shared, tv: *mut timeval, _tz: *mut c_void) -> c_int {
    ret_int(|| {
        let mut st = settle(sh, sh.lock());
        let t = st.now() + Duration::from_micros(1);
        st.advance_to(t);
        drop(st);
        sh.notify();
        let us = EPOCH_US + t.total_micros() as i64;
        if !tv.is_null() {
            // SAFETY: writable when not null (caller).
            unsafe {
                (*tv).tv_sec = us / 1_000_000;
                (*tv).tv_usec = us % 1_000_000;
            }
        }
        Ok(0)
    })
}

/// Creates an instance for packetdrill from `flags` (see `StackConfig::parse`) and fills
/// `ifc`. Returns 0, or -1 (EINVAL) for bad flags, leaving `ifc` untouched.
///
/// # Safety
/// `flags` is NULL or NUL-terminated; `ifc` points to a writable
/// `struct packetdrill_interface`.
#[no_mangle]
pub unsafe extern "C" fn sluice_packetdrill_init(
    flags: *const c_char,
    ifc: *mut PacketdrillInterface,
) -> c_int {
    ret_int(|| {
        if ifc.is_null() {
            return Err(EFAULT);
        }
        let flags = if flags.is_null() {
            String::new()
        } else {
            // SAFETY: NUL-terminated (caller).
            let c = unsafe { std::ffi::CStr::from_ptr(flags) };
            c.to_str().map_err(|_| EINVAL)?.to_owned()
        };
        let inst = Instance::memory(&flags).map_err(|e| {
            eprintln!("sluice: {e}");
            EINVAL
        })?;
        let ud = Box::into_raw(Box::new(inst.shared().clone())).cast::<c_void>();
        let table = PacketdrillInterface {
            userdata: ud,
            free: Some(pd_free),
            socket: Some(pd_socket),
            bind: Some(pd_bind),
            listen: Some(pd_listen),
            accept: Some(pd_accept),
            connect: Some(pd_connect),
            read: Some(pd_read),
            readv: Some(pd_readv),
            recv: Some(pd_recv),
            recvfrom: Some(pd_recvfrom),
            recvmsg: Some(pd_recvmsg),
            write: Some(pd_write),
            writev: Some(pd_writev),
            send: Some(pd_send),
            sendto: Some(pd_sendto),
            sendmsg: Some(pd_sendmsg),
            fcntl: Some(pd_fcntl),
            ioctl: Some(pd_ioctl),
            close: Some(pd_close),
            shutdown: Some(pd_shutdown),
            getsockopt: Some(pd_getsockopt),
            setsockopt: Some(pd_setsockopt),
            poll: Some(pd_poll),
            netdev_send: Some(pd_netdev_send),
            netdev_receive: Some(pd_netdev_receive),
            usleep: Some(pd_usleep),
            gettimeofday: Some(pd_gettimeofday),
            epoll_create: Some(pd_epoll_create),
            epoll_ctl: Some(pd_epoll_ctl),
            epoll_wait: Some(pd_epoll_wait),
            pipe: Some(pd_pipe),
            splice: Some(pd_splice),
        };
        // SAFETY: `ifc` is writable (caller); write without reading the old contents.
        unsafe { ifc.write(table) };
        Ok(0)
    })
}

/// packetdrill's entry point (`--so_filename`): `flags` is `--so_flags`. Bad flags are
/// fatal, as they are to packetdrill itself: the message goes to stderr and the process
/// exits with status 2.
///
/// # Safety
/// As `sluice_packetdrill_init`.
#[no_mangle]
pub unsafe extern "C" fn packetdrill_interface_init(flags: *const c_char, ifc: *mut PacketdrillInterface) {
    // SAFETY: forwarded from the caller.
    if unsafe { sluice_packetdrill_init(flags, ifc) } != 0 {
        eprintln!("sluice: packetdrill_interface_init failed (see above); exiting");
        std::process::exit(2);
    }
}
