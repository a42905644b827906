//! The socket calls: on a Sluice descriptor, the C API's call of the same name; on any
//! other, the C library's. Each keeps the C function's signature (fcntl and ioctl take
//! their one optional argument as a register-sized integer or pointer, which is how the
//! x86-64 and AArch64 calling conventions pass a variadic argument).

use core::ffi::{c_int, c_uint, c_ulong, c_void};

use libc::{iovec, mmsghdr, msghdr, off_t, size_t, sockaddr, socklen_t, ssize_t, timespec};
use sluice_capi::abi as c;

use crate::wait::{forget_epoll, forget_fd, rearm};
use crate::{errno, fds, real, set_errno, stale, target, Target, ACTIVE, FORKED, KERNEL_INET6};

/// A new placeholder for C API socket `cfd` (see fds.rs), close-on-exec if asked.
unsafe fn adopt(cfd: c_int, cloexec: bool) -> c_int {
    let ty = libc::SOCK_STREAM | if cloexec { libc::SOCK_CLOEXEC } else { 0 };
    // SAFETY: plain call.
    let k = unsafe { real::socket(libc::AF_UNIX, ty, 0) };
    if k < 0 || !fds::insert(k, cfd) {
        let e = if k < 0 { errno() } else { libc::EMFILE };
        c::sluice_close(cfd);
        if k >= 0 {
            // SAFETY: our own placeholder.
            unsafe { real::close(k) };
        }
        set_errno(e);
        return -1;
    }
    k
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    use core::sync::atomic::Ordering::Relaxed;
    let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let inet = domain == libc::AF_INET || (domain == libc::AF_INET6 && !KERNEL_INET6.load(Relaxed));
    if FORKED.load(Relaxed)
        || !inet
        || !(base == libc::SOCK_STREAM || base == libc::SOCK_DGRAM)
        || !crate::start()
    {
        // SAFETY: forwarded.
        return unsafe { real::socket(domain, ty, protocol) };
    }
    // An AF_INET6 socket is a dual-stack one: IPv6 peers, and IPv4 ones through
    // IPv4-mapped addresses (`--kernel-inet6` gives these sockets to the kernel instead).
    let cfd = c::sluice_socket(domain, ty, protocol);
    if cfd < 0 {
        return -1;
    }
    // SAFETY: a fresh C API socket.
    unsafe { adopt(cfd, ty & libc::SOCK_CLOEXEC != 0) }
}

/// Runs a blocking call on a Sluice socket again after EINTR when the kernel would have
/// restarted it (`restarts`).
macro_rules! restartable {
    ($cf:expr, $out:expr, $call:expr) => {{
        loop {
            let r = $call;
            if r < 0 && errno() == libc::EINTR && restarts($cf, $out) {
                continue;
            }
            break r;
        }
    }};
}

/// `$call` on the C API descriptor, or `$real` on the kernel's; `$fd` is the descriptor.
macro_rules! route {
    ($fd:expr, |$c:ident| $call:expr, $real:expr) => {
        match target($fd) {
            Target::Kernel => $real,
            Target::Stale => stale($fd) as _,
            Target::Sluice($c) => {
                let r = $call;
                crate::trace(stringify!($call), $fd, r as i64);
                r
            }
        }
    };
}

#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    route!(fd, |cf| unsafe { c::sluice_bind(cf, addr, len) }, unsafe {
        real::bind(fd, addr, len)
    })
}

#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    let r = route!(fd, |cf| c::sluice_listen(cf, backlog), unsafe {
        real::listen(fd, backlog)
    });
    rearm(fd, 0);
    r
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { accept4(fd, addr, len, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    match target(fd) {
        Target::Kernel => unsafe { real::accept4(fd, addr, len, flags) },
        Target::Stale => stale(fd),
        Target::Sluice(cf) => {
            let n = restartable!(cf, false, unsafe { c::sluice_accept4(cf, addr, len, flags) });
            if n < 0 {
                if errno() == libc::EAGAIN {
                    rearm(fd, libc::EPOLLIN as u32);
                }
                return -1;
            }
            unsafe { adopt(n, flags & libc::SOCK_CLOEXEC != 0) }
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let r = route!(fd, |cf| unsafe { c::sluice_connect(cf, addr, len) }, unsafe {
        real::connect(fd, addr, len)
    });
    rearm(fd, 0);
    r
}

#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    route!(fd, |cf| unsafe { c::sluice_getsockname(cf, addr, len) }, unsafe {
        real::getsockname(fd, addr, len)
    })
}

#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    route!(fd, |cf| unsafe { c::sluice_getpeername(cf, addr, len) }, unsafe {
        real::getpeername(fd, addr, len)
    })
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    route!(
        fd,
        |cf| unsafe { c::sluice_getsockopt(cf, level, name, val, len) },
        unsafe { real::getsockopt(fd, level, name, val, len) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    route!(
        fd,
        |cf| unsafe { c::sluice_setsockopt(cf, level, name, val, len) },
        unsafe { real::setsockopt(fd, level, name, val, len) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let r = route!(fd, |cf| c::sluice_shutdown(cf, how), unsafe {
        real::shutdown(fd, how)
    });
    rearm(fd, 0);
    r
}

/// After EINTR in a socket call: whether Linux would have restarted it (signal(7)). It does
/// when the handler of the signal has SA_RESTART, unless the socket has a timeout for that
/// direction (SO_RCVTIMEO, SO_SNDTIMEO). Which signal came is not known here, so the call
/// restarts only if every signal the program handles has SA_RESTART: one handler without
/// it makes every interrupted call return EINTR, which a program that installs such a
/// handler must handle anyway. `connect` is not restarted (it returns EINTR and goes on in
/// the background, as a nonblocking one).
fn restarts(cf: c_int, out: bool) -> bool {
    // The stack's own signals (net_tap's) never interrupt a call: they do not count.
    let stack = sluice_capi::global_shared().and_then(|sh| sh.stack_signals().copied());
    for sig in 1..=64 {
        if sig == libc::SIGKILL
            || sig == libc::SIGSTOP
            // SAFETY: reads a local set.
            || stack.is_some_and(|ss| unsafe { libc::sigismember(&ss, sig) } == 1)
        {
            continue;
        }
        // SAFETY: reads the disposition into a local.
        let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
        if unsafe { libc::sigaction(sig, core::ptr::null(), &mut act) } != 0 {
            continue;
        }
        let handled = act.sa_sigaction != libc::SIG_DFL && act.sa_sigaction != libc::SIG_IGN;
        if handled && act.sa_flags & libc::SA_RESTART == 0 {
            return false;
        }
    }
    let name = if out { libc::SO_SNDTIMEO } else { libc::SO_RCVTIMEO };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = core::mem::size_of::<libc::timeval>() as socklen_t;
    // SAFETY: `tv` and `len` are locals of the sizes given.
    let r = unsafe {
        c::sluice_getsockopt(
            cf,
            libc::SOL_SOCKET,
            name,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    r == 0 && tv.tv_sec == 0 && tv.tv_usec == 0
}

/// After a read- or write-like call of `asked` bytes on a Sluice socket: EAGAIN or a
/// short count re-arms edge-triggered epoll reporting of `bits` (the program drained the
/// socket, or filled its buffer, so the next change is an edge, as in Linux).
fn after_n(fd: c_int, r: ssize_t, bits: i32, asked: usize) -> ssize_t {
    if (r < 0 && errno() == libc::EAGAIN) || (r >= 0 && (r as usize) < asked) {
        rearm(fd, bits as u32);
    }
    r
}

/// `after_n` for calls whose size is not at hand (EAGAIN only).
fn after(fd: c_int, r: ssize_t, bits: i32) -> ssize_t {
    after_n(fd, r, bits, 0)
}

/// The bytes an iovec array describes.
unsafe fn iov_len(iov: *const iovec, n: c_int) -> usize {
    if iov.is_null() || n <= 0 {
        return 0;
    }
    // SAFETY: the caller's array of `n` entries.
    unsafe { core::slice::from_raw_parts(iov, n as usize) }
        .iter()
        .map(|v| v.iov_len)
        .sum()
}

const IN: i32 = libc::EPOLLIN;
const OUT: i32 = libc::EPOLLOUT;

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, false, unsafe { c::sluice_read(cf, buf, n) }),
            IN,
            n
        ),
        unsafe { real::read(fd, buf, n) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, true, unsafe { c::sluice_write(cf, buf, n) }),
            OUT,
            n
        ),
        unsafe { real::write(fd, buf, n) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, false, unsafe { c::sluice_readv(cf, iov, n) }),
            IN,
            unsafe { iov_len(iov, n) }
        ),
        unsafe { real::readv(fd, iov, n) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, true, unsafe { c::sluice_writev(cf, iov, n) }),
            OUT,
            unsafe { iov_len(iov, n) }
        ),
        unsafe { real::writev(fd, iov, n) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, false, unsafe { c::sluice_recv(cf, buf, n, flags) }),
            IN,
            n
        ),
        unsafe { real::recv(fd, buf, n, flags) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, false, unsafe {
                c::sluice_recvfrom(cf, buf, n, flags, addr, len)
            }),
            IN,
            n
        ),
        unsafe { real::recvfrom(fd, buf, n, flags, addr, len) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, false, unsafe { c::sluice_recvmsg(cf, msg, flags) }),
            IN,
            unsafe {
                msg.as_ref()
                    .map_or(0, |m| iov_len(m.msg_iov, m.msg_iovlen as c_int))
            }
        ),
        unsafe { real::recvmsg(fd, msg, flags) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, true, unsafe { c::sluice_send(cf, buf, n, flags) }),
            OUT,
            n
        ),
        unsafe { real::send(fd, buf, n, flags) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, true, unsafe {
                c::sluice_sendto(cf, buf, n, flags, addr, len)
            }),
            OUT,
            n
        ),
        unsafe { real::sendto(fd, buf, n, flags, addr, len) }
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    route!(
        fd,
        |cf| after_n(
            fd,
            restartable!(cf, true, unsafe { c::sluice_sendmsg(cf, msg, flags) }),
            OUT,
            unsafe {
                msg.as_ref()
                    .map_or(0, |m| iov_len(m.msg_iov, m.msg_iovlen as c_int))
            }
        ),
        unsafe { real::sendmsg(fd, msg, flags) }
    )
}

/// `recvmmsg`: `recvmsg` per entry until one would block (the timeout is not supported
/// on Sluice sockets: EINVAL if given).
#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    v: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    t: *mut timespec,
) -> c_int {
    match target(fd) {
        Target::Kernel => unsafe { real::recvmmsg(fd, v, n, flags, t) },
        Target::Stale => stale(fd),
        Target::Sluice(cf) => {
            if !t.is_null() {
                set_errno(libc::EINVAL);
                return -1;
            }
            let mut got = 0u32;
            while got < n {
                // SAFETY: the caller's array of `n` entries.
                let m = unsafe { &mut *v.add(got as usize) };
                let fl = if got == 0 {
                    flags & !libc::MSG_WAITFORONE
                } else {
                    flags | libc::MSG_DONTWAIT
                };
                let r = unsafe { c::sluice_recvmsg(cf, &mut m.msg_hdr, fl) };
                if r < 0 {
                    if got == 0 {
                        return after(fd, -1, IN) as c_int;
                    }
                    break;
                }
                m.msg_len = r as c_uint;
                got += 1;
            }
            got as c_int
        }
    }
}

/// `sendmmsg`: `sendmsg` per entry until one fails.
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(fd: c_int, v: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    match target(fd) {
        Target::Kernel => unsafe { real::sendmmsg(fd, v, n, flags) },
        Target::Stale => stale(fd),
        Target::Sluice(cf) => {
            let mut sent = 0u32;
            while sent < n {
                // SAFETY: the caller's array of `n` entries.
                let m = unsafe { &mut *v.add(sent as usize) };
                let r = unsafe { c::sluice_sendmsg(cf, &m.msg_hdr, flags) };
                if r < 0 {
                    if sent == 0 {
                        return after(fd, -1, OUT) as c_int;
                    }
                    break;
                }
                m.msg_len = r as c_uint;
                sent += 1;
            }
            sent as c_int
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if !ACTIVE.load(core::sync::atomic::Ordering::Relaxed) {
        return unsafe { real::close(fd) };
    }
    match fds::remove(fd) {
        None => {
            forget_epoll(fd);
            unsafe { real::close(fd) }
        }
        Some((cf, last)) => {
            forget_fd(fd);
            // SAFETY: the placeholder is ours to close.
            unsafe { real::close(fd) };
            if last && !FORKED.load(core::sync::atomic::Ordering::Relaxed) {
                return c::sluice_close(cf);
            }
            0
        }
    }
}

/// Makes `to` (just made a copy of `fd`'s placeholder by the kernel) name `fd`'s socket.
fn share(fd: c_int, to: c_int) -> c_int {
    if to < 0 {
        return to;
    }
    if let Some(cf) = fds::lookup(fd) {
        if !fds::insert(to, cf) {
            // SAFETY: the copy we just made.
            unsafe { real::close(to) };
            set_errno(libc::EMFILE);
            return -1;
        }
    }
    to
}

/// Before `to` is replaced by `dup2`/`dup3`: if it was a Sluice socket, that reference
/// goes (the kernel closes its placeholder as part of the call).
fn replaced(to: c_int) {
    if let Some((cf, last)) = fds::remove(to) {
        forget_fd(to);
        if last && !FORKED.load(core::sync::atomic::Ordering::Relaxed) {
            c::sluice_close(cf);
        }
    } else {
        forget_epoll(to);
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    match target(fd) {
        Target::Kernel => unsafe { real::dup(fd) },
        Target::Stale => stale(fd),
        Target::Sluice(_) => share(fd, unsafe { real::dup(fd) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { dup3_impl(fd, to, 0, true) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { dup3_impl(fd, to, flags, false) }
}

unsafe fn dup3_impl(fd: c_int, to: c_int, flags: c_int, two: bool) -> c_int {
    let t = target(fd);
    if t == Target::Stale {
        return stale(fd);
    }
    if fd == to {
        return if two {
            unsafe { real::dup2(fd, to) }
        } else {
            unsafe { real::dup3(fd, to, flags) }
        };
    }
    if !ACTIVE.load(core::sync::atomic::Ordering::Relaxed) {
        return if two {
            unsafe { real::dup2(fd, to) }
        } else {
            unsafe { real::dup3(fd, to, flags) }
        };
    }
    let r = if two {
        unsafe { real::dup2(fd, to) }
    } else {
        unsafe { real::dup3(fd, to, flags) }
    };
    if r < 0 {
        return r;
    }
    replaced(to);
    share(fd, r)
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl_impl(fd, cmd, arg, false) }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl_impl(fd, cmd, arg, true) }
}

unsafe fn fcntl_impl(fd: c_int, cmd: c_int, arg: c_ulong, is64: bool) -> c_int {
    let kernel = |fd, cmd, arg| {
        if is64 {
            unsafe { real::fcntl64(fd, cmd, arg) }
        } else {
            unsafe { real::fcntl(fd, cmd, arg) }
        }
    };
    match target(fd) {
        Target::Kernel => kernel(fd, cmd, arg),
        Target::Stale => stale(fd),
        Target::Sluice(cf) => match cmd {
            // Descriptor flags (FD_CLOEXEC) belong to the placeholder.
            libc::F_GETFD | libc::F_SETFD => kernel(fd, cmd, arg),
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => share(fd, kernel(fd, cmd, arg)),
            libc::F_GETFL => {
                let r = c::sluice_fcntl(cf, cmd, 0);
                if r < 0 {
                    r
                } else {
                    r | libc::O_RDWR
                }
            }
            libc::F_SETFL => c::sluice_fcntl(cf, cmd, arg as libc::c_long),
            _ => {
                set_errno(libc::EINVAL);
                -1
            }
        },
    }
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    match target(fd) {
        Target::Kernel => unsafe { real::ioctl(fd, req, arg) },
        Target::Stale => stale(fd),
        Target::Sluice(cf) => match req {
            libc::FIOCLEX | libc::FIONCLEX => unsafe { real::ioctl(fd, req, arg) },
            _ => unsafe { c::sluice_ioctl(cf, req, arg) },
        },
    }
}

/// Copies up to `n` bytes from kernel descriptor `from` (at `*off` if given, else its
/// position) to Sluice socket `to`. What the socket did not take is left unread.
unsafe fn copy_to_sluice(to: c_int, cf: c_int, from: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    let mut buf = vec![0u8; n.min(1 << 16)];
    let pos = if off.is_null() {
        unsafe { libc::lseek(from, 0, libc::SEEK_CUR) }
    } else {
        unsafe { *off }
    };
    // A pipe or socket has no position: read what is there and send all of it.
    let seekable = pos >= 0;
    let got = if seekable {
        unsafe { libc::pread(from, buf.as_mut_ptr().cast(), buf.len(), pos) }
    } else {
        unsafe { real::read(from, buf.as_mut_ptr().cast(), buf.len()) }
    };
    if got <= 0 {
        return got;
    }
    let got = got as usize;
    let mut sent = 0usize;
    while sent < got {
        let w = unsafe { c::sluice_write(cf, buf[sent..].as_ptr().cast(), got - sent) };
        if w < 0 {
            if sent == 0 && seekable {
                return after(to, -1, OUT);
            }
            if seekable {
                break;
            }
            // Read from a pipe: the bytes must not be lost; wait for room.
            if errno() == libc::EAGAIN {
                let mut p = libc::pollfd {
                    fd: to,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                unsafe { crate::wait::poll(&mut p, 1, -1) };
                continue;
            }
            return -1;
        }
        sent += w as usize;
    }
    if sent < n {
        rearm(to, OUT as u32);
    }
    if seekable {
        let end = pos + sent as off_t;
        if off.is_null() {
            unsafe { libc::lseek(from, end, libc::SEEK_SET) };
        } else {
            unsafe { *off = end };
        }
    }
    sent as ssize_t
}

/// `sendfile` to a Sluice socket copies (the file is read, then sent).
#[no_mangle]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    match (target(out), target(inp)) {
        (Target::Kernel, Target::Kernel) => unsafe { real::sendfile(out, inp, off, n) },
        (Target::Sluice(cf), Target::Kernel) => unsafe { copy_to_sluice(out, cf, inp, off, n) },
        (Target::Stale, _) => stale(out) as ssize_t,
        (_, Target::Stale) => stale(inp) as ssize_t,
        // Linux: in_fd must be a file that supports mmap.
        (_, Target::Sluice(_)) => {
            set_errno(libc::EINVAL);
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendfile64(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    match (target(out), target(inp)) {
        (Target::Kernel, Target::Kernel) => unsafe { real::sendfile64(out, inp, off, n) },
        _ => unsafe { sendfile(out, inp, off, n) },
    }
}

/// `splice` between a pipe and a Sluice socket copies through a buffer.
#[no_mangle]
pub unsafe extern "C" fn splice(
    fin: c_int,
    oin: *mut libc::loff_t,
    fout: c_int,
    oout: *mut libc::loff_t,
    n: size_t,
    flags: c_uint,
) -> ssize_t {
    match (target(fin), target(fout)) {
        (Target::Kernel, Target::Kernel) => unsafe { real::splice(fin, oin, fout, oout, n, flags) },
        (Target::Stale, _) => stale(fin) as ssize_t,
        (_, Target::Stale) => stale(fout) as ssize_t,
        (Target::Kernel, Target::Sluice(cf)) => unsafe { copy_to_sluice(fout, cf, fin, oin, n) },
        (Target::Sluice(cf), Target::Kernel) => {
            if !oout.is_null() {
                set_errno(libc::ESPIPE);
                return -1;
            }
            let mut buf = vec![0u8; n.min(1 << 16)];
            let got = after(
                fin,
                unsafe { c::sluice_read(cf, buf.as_mut_ptr().cast(), buf.len()) },
                IN,
            );
            if got <= 0 {
                return got;
            }
            let mut put = 0usize;
            while put < got as usize {
                let w = unsafe { real::write(fout, buf[put..].as_ptr().cast(), got as usize - put) };
                if w < 0 {
                    if errno() == libc::EINTR {
                        continue;
                    }
                    return -1;
                }
                put += w as usize;
            }
            got
        }
        (Target::Sluice(_), Target::Sluice(_)) => {
            set_errno(libc::EINVAL);
            -1
        }
    }
}

/// glibc's checked `read` (`_FORTIFY_SOURCE`).
#[no_mangle]
pub unsafe extern "C" fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    unsafe { read(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    unsafe { recv(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}

/// A buffer overflow caught by a checked call: as glibc's `__chk_fail`.
pub(crate) fn chk_fail() -> ! {
    extern "C" {
        fn __chk_fail() -> !;
    }
    // SAFETY: glibc's, ends the process.
    unsafe { __chk_fail() }
}
