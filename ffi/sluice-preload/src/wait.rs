//! Waiting on any mix of Sluice and kernel descriptors: `poll`, `ppoll`, `select`,
//! `pselect`, `epoll_ctl`, `epoll_wait`, `epoll_pwait`.
//!
//! A wait with no Sluice descriptor is the kernel's own call, untouched. Otherwise it
//! is `Shared::block` of the C API: the stack is polled and the kernel descriptors looked
//! at (a zero-timeout `ppoll`) for `--spin_us`, then the thread sleeps in `ppoll` on the
//! kernel descriptors and the instance's eventfd, which is written when the stack changes
//! while someone sleeps. Signals are held back while spinning and let in while asleep,
//! so a signal during the wait ends it with EINTR, as in the kernel; the timeout is
//! counted on the monotonic clock from the call.
//!
//! An epoll set is the kernel's epoll descriptor (kernel descriptors are registered in
//! it as usual) plus, here, the Sluice descriptors registered in it. Its readiness is
//! the C API's (Linux's `tcp_poll` rules). Level-triggered registrations report while
//! ready; EPOLLET reports once per change of the socket (data, room, the peer's FIN,
//! a new state, an error) while it is ready, as Linux's wakeups do; EPOLLONESHOT disables the registration after one report until EPOLL_CTL_MOD;
//! EPOLLEXCLUSIVE is accepted (one process, one set: nothing to share). A registration
//! is removed when its descriptor number is closed (Linux: when the last descriptor of
//! the file is).

use core::ffi::c_int;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
use sluice_capi::{readiness, ready_socket, Shared};
use sluice_net::{Ready, ReadyCursor, ReadySocket};

use crate::{errno, fds, real, set_errno, stale, target, Target, ACTIVE};

const ERR: u32 = libc::EPOLLERR as u32;
const HUP: u32 = libc::EPOLLHUP as u32;
const ET: u32 = libc::EPOLLET as u32;
const ONESHOT: u32 = libc::EPOLLONESHOT as u32;
/// Flags of a registration that are not events.
const CONTROL: u32 = ET | ONESHOT | libc::EPOLLEXCLUSIVE as u32 | libc::EPOLLWAKEUP as u32;

/// One Sluice descriptor in an epoll set.
#[derive(Clone, Copy, Debug)]
struct Reg {
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: silent until EPOLL_CTL_MOD.
    disabled: bool,
}

/// The Sluice side of an epoll set.
///
/// A scan looks only at the registrations that may have news, as Linux's epoll does
/// with its ready list: those whose socket the interface recorded as changed since the
/// set's last scan (`Interface::ready_since`), those added or modified since, those a
/// call touched (`rearm`), and the level-triggered ones that were ready at the last scan.
/// So a scan costs what changed, not what is registered. An edge-triggered registration
/// is reported once per change of its socket while it is ready, as in Linux.
#[derive(Default, Debug)]
struct Set {
    sluice: BTreeMap<c_int, Reg>,
    /// Kernel descriptors registered through us (may over-count: the kernel drops a
    /// registration silently when its file closes); 0 means the kernel side is not looked at.
    kernel: usize,
    /// Where this set is in the interface's ready list.
    cursor: ReadyCursor,
    /// Registrations to look at in the next scan, in order.
    look: BTreeSet<c_int>,
    /// The registrations each socket's changes concern (filled as scans meet them).
    by_socket: HashMap<ReadySocket, Vec<c_int>>,
    /// The socket each registration was last seen to be (so that `by_socket` forgets it).
    sock_of: HashMap<c_int, ReadySocket>,
    /// Scratch of a scan: the level-triggered registrations to look at again.
    again: Vec<c_int>,
}

impl Set {
    /// Forgets registration `fd` (deleted, or its descriptor closed).
    fn forget(&mut self, fd: c_int) -> Option<Reg> {
        self.look.remove(&fd);
        if let Some(sock) = self.sock_of.remove(&fd) {
            if let Some(v) = self.by_socket.get_mut(&sock) {
                v.retain(|&f| f != fd);
                if v.is_empty() {
                    self.by_socket.remove(&sock);
                }
            }
        }
        self.sluice.remove(&fd)
    }
}

static SETS: Mutex<Option<HashMap<c_int, Set>>> = Mutex::new(None);
/// Epoll sets known here (so that a process without any pays no lock).
static NSETS: AtomicUsize = AtomicUsize::new(0);

fn sets<R>(f: impl FnOnce(&mut HashMap<c_int, Set>) -> R) -> R {
    let mut g = SETS.lock().unwrap_or_else(|e| e.into_inner());
    let m = g.get_or_insert_with(HashMap::new);
    let r = f(m);
    NSETS.store(m.len(), Ordering::Relaxed);
    r
}

/// A Sluice descriptor number was closed: it leaves every set.
pub fn forget_fd(fd: c_int) {
    if NSETS.load(Ordering::Relaxed) > 0 {
        sets(|m| {
            for s in m.values_mut() {
                s.forget(fd);
            }
        });
    }
}

/// A kernel descriptor was closed: if it was an epoll set, its Sluice side goes.
pub fn forget_epoll(fd: c_int) {
    if NSETS.load(Ordering::Relaxed) > 0 {
        sets(|m| drop(m.remove(&fd)));
    }
}

/// A call on Sluice socket `fd` may have changed what it is ready for without the
/// interface recording it (the program drained it, filled it, connected, shut it down):
/// every set looks at it again at its next scan.
pub fn rearm(fd: c_int, _bits: u32) {
    if NSETS.load(Ordering::Relaxed) > 0 {
        sets(|m| {
            for s in m.values_mut() {
                if s.sluice.contains_key(&fd) {
                    s.look.insert(fd);
                }
            }
        });
    }
}

fn shared() -> Option<std::sync::Arc<Shared>> {
    sluice_capi::global_shared()
}

fn deadline_ms(ms: c_int) -> Option<Instant> {
    (ms >= 0).then(|| Instant::now() + Duration::from_millis(ms as u64))
}

fn deadline_ts(t: *const timespec) -> Result<Option<Instant>, c_int> {
    if t.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's timespec.
    let t = unsafe { *t };
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Some(
        Instant::now() + Duration::new(t.tv_sec as u64, t.tv_nsec as u32),
    ))
}

fn fail(e: sluice_capi::Errno) -> c_int {
    set_errno(e.0);
    -1
}

// ---- poll ----

/// `poll` with a deadline and an optional mask for the sleep.
unsafe fn poll_until(
    fds_ptr: *mut pollfd,
    n: nfds_t,
    deadline: Option<Instant>,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's array of `n` entries.
    let all: &mut [pollfd] = if n == 0 {
        &mut []
    } else {
        unsafe { core::slice::from_raw_parts_mut(fds_ptr, n as usize) }
    };
    let mut kernel: Vec<pollfd> = Vec::new();
    let mut kidx: Vec<usize> = Vec::new();
    let mut sl: Vec<(usize, c_int)> = Vec::new();
    for (i, p) in all.iter().enumerate() {
        match target(p.fd) {
            Target::Sluice(cf) if p.fd >= 0 => sl.push((i, cf)),
            Target::Stale if p.fd >= 0 => return stale(p.fd),
            _ => {
                kidx.push(i);
                kernel.push(*p);
            }
        }
    }
    let Some(sh) = shared() else {
        set_errno(libc::ENXIO);
        return -1;
    };
    // SAFETY: the caller's mask, if any.
    let mask = unsafe { mask.as_ref() };
    let mut seen: Option<u64> = None;
    let r = sh.block(deadline, &mut kernel, mask, |st, kf, nk| {
        if nk == 0 && seen == Some(st.epoch) {
            return Ok(None);
        }
        seen = Some(st.epoch);
        let mut count = 0;
        for &(i, cf) in &sl {
            let want = all[i].events as u16 as u32 | ERR | HUP;
            all[i].revents = match readiness(st, cf) {
                Ok(m) => (m & want) as i16,
                Err(_) => libc::POLLNVAL,
            };
            count += (all[i].revents != 0) as usize;
        }
        for (j, &i) in kidx.iter().enumerate() {
            all[i].revents = kf.get(j).map_or(0, |p| p.revents);
            count += (all[i].revents != 0) as usize;
        }
        Ok((count > 0).then_some(count))
    });
    match r {
        Ok(Some(c)) => c as c_int,
        Ok(None) => {
            all.iter_mut().for_each(|p| p.revents = 0);
            0
        }
        Err(e) => fail(e),
    }
}

fn any_sluice(fds_ptr: *const pollfd, n: nfds_t) -> bool {
    if !ACTIVE.load(Ordering::Relaxed) || fds_ptr.is_null() {
        return false;
    }
    // SAFETY: the caller's array of `n` entries.
    let all = unsafe { core::slice::from_raw_parts(fds_ptr, n as usize) };
    all.iter().any(|p| p.fd >= 0 && fds::lookup(p.fd).is_some())
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds_ptr: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if !any_sluice(fds_ptr, n) {
        return unsafe { real::poll(fds_ptr, n, timeout) };
    }
    unsafe { poll_until(fds_ptr, n, deadline_ms(timeout), core::ptr::null()) }
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds_ptr: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if !any_sluice(fds_ptr, n) {
        return unsafe { real::ppoll(fds_ptr, n, t, mask) };
    }
    match deadline_ts(t) {
        Ok(d) => unsafe { poll_until(fds_ptr, n, d, mask) },
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(fds_ptr: *mut pollfd, n: nfds_t, timeout: c_int, len: usize) -> c_int {
    if (len / core::mem::size_of::<pollfd>()) < n as usize {
        crate::calls::chk_fail();
    }
    unsafe { poll(fds_ptr, n, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds_ptr: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
    len: usize,
) -> c_int {
    if (len / core::mem::size_of::<pollfd>()) < n as usize {
        crate::calls::chk_fail();
    }
    unsafe { ppoll(fds_ptr, n, t, mask) }
}

// ---- select ----

/// `select` over `poll_until`: the sets become poll entries and back.
unsafe fn select_until(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    deadline: Option<Instant>,
    mask: *const sigset_t,
) -> c_int {
    let isset = |s: *mut fd_set, fd: c_int| !s.is_null() && unsafe { libc::FD_ISSET(fd, s) };
    let mut entries: Vec<pollfd> = Vec::new();
    for fd in 0..n.min(libc::FD_SETSIZE as c_int) {
        let mut ev = 0;
        if isset(r, fd) {
            ev |= libc::POLLIN;
        }
        if isset(w, fd) {
            ev |= libc::POLLOUT;
        }
        if isset(e, fd) {
            ev |= libc::POLLPRI;
        }
        if ev != 0 {
            entries.push(pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
    }
    let got = unsafe { poll_until(entries.as_mut_ptr(), entries.len() as nfds_t, deadline, mask) };
    if got < 0 {
        return -1;
    }
    if entries.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        set_errno(libc::EBADF);
        return -1;
    }
    for s in [r, w, e] {
        if !s.is_null() {
            unsafe { libc::FD_ZERO(s) };
        }
    }
    let mut count = 0;
    for p in &entries {
        let rv = p.revents;
        let set = |s: *mut fd_set, on: bool, count: &mut c_int| {
            if on && !s.is_null() {
                unsafe { libc::FD_SET(p.fd, s) };
                *count += 1;
            }
        };
        set(
            r,
            p.events & libc::POLLIN != 0 && rv & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
            &mut count,
        );
        set(
            w,
            p.events & libc::POLLOUT != 0 && rv & (libc::POLLOUT | libc::POLLERR) != 0,
            &mut count,
        );
        set(
            e,
            p.events & libc::POLLPRI != 0 && rv & libc::POLLPRI != 0,
            &mut count,
        );
    }
    count
}

fn sets_have_sluice(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set) -> bool {
    if !ACTIVE.load(Ordering::Relaxed) {
        return false;
    }
    (0..n.min(libc::FD_SETSIZE as c_int)).any(|fd| {
        fds::lookup(fd).is_some()
            && [r, w, e]
                .iter()
                .any(|s| !s.is_null() && unsafe { libc::FD_ISSET(fd, *s) })
    })
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *mut timeval,
) -> c_int {
    if !sets_have_sluice(n, r, w, e) {
        return unsafe { real::select(n, r, w, e, t) };
    }
    let deadline = if t.is_null() {
        None
    } else {
        let tv = unsafe { *t };
        if tv.tv_sec < 0 || tv.tv_usec < 0 {
            set_errno(libc::EINVAL);
            return -1;
        }
        Some(
            Instant::now() + Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64),
        )
    };
    let got = unsafe { select_until(n, r, w, e, deadline, core::ptr::null()) };
    // Linux writes back the time left.
    if let (Some(d), false) = (deadline, t.is_null()) {
        let left = d.saturating_duration_since(Instant::now());
        unsafe {
            (*t).tv_sec = left.as_secs() as libc::time_t;
            (*t).tv_usec = left.subsec_micros() as libc::suseconds_t;
        }
    }
    got
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if !sets_have_sluice(n, r, w, e) {
        return unsafe { real::pselect(n, r, w, e, t, mask) };
    }
    match deadline_ts(t) {
        Ok(d) => unsafe { select_until(n, r, w, e, d, mask) },
        Err(er) => {
            set_errno(er);
            -1
        }
    }
}

// ---- epoll ----

#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(ep: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int {
    if !ACTIVE.load(Ordering::Relaxed) {
        return unsafe { real::epoll_ctl(ep, op, fd, ev) };
    }
    match (target(ep), target(fd)) {
        (Target::Sluice(_), _) => {
            set_errno(libc::EINVAL);
            -1
        }
        (Target::Stale, _) => stale(ep),
        (_, Target::Stale) => stale(fd),
        (Target::Kernel, Target::Kernel) => {
            let r = unsafe { real::epoll_ctl(ep, op, fd, ev) };
            if r == 0 && (op == libc::EPOLL_CTL_ADD || op == libc::EPOLL_CTL_DEL) {
                sets(|m| {
                    let s = m.entry(ep).or_default();
                    if op == libc::EPOLL_CTL_ADD {
                        s.kernel += 1;
                    } else {
                        s.kernel = s.kernel.saturating_sub(1);
                    }
                });
            }
            r
        }
        (Target::Kernel, Target::Sluice(_)) => {
            // The set must be a real epoll descriptor: the kernel says so for a harmless
            // DEL of a descriptor that is never in it (its own placeholder... unless
            // registered, which never happens) -- ENOENT means "an epoll set".
            let event = if op == libc::EPOLL_CTL_DEL {
                None
            } else if ev.is_null() {
                set_errno(libc::EFAULT);
                return -1;
            } else {
                // SAFETY: the caller's event.
                let e = unsafe { core::ptr::read_unaligned(ev) };
                Some((e.events, e.u64))
            };
            let r = sets(|m| {
                if !m.contains_key(&ep) {
                    // Not a set seen yet: the kernel says whether `ep` is an epoll
                    // descriptor (ENOENT for a descriptor never registered in it).
                    // SAFETY: a DEL with no event.
                    let probe =
                        unsafe { real::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, core::ptr::null_mut()) };
                    if probe == 0 || errno() != libc::ENOENT {
                        return Err(if probe == 0 { libc::EINVAL } else { errno() });
                    }
                }
                let s = m.entry(ep).or_default();
                match op {
                    libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                        let (events, data) = event.unwrap_or_default();
                        let exists = s.sluice.contains_key(&fd);
                        if op == libc::EPOLL_CTL_ADD && exists {
                            return Err(libc::EEXIST);
                        }
                        if op == libc::EPOLL_CTL_MOD && !exists {
                            return Err(libc::ENOENT);
                        }
                        s.sluice.insert(
                            fd,
                            Reg {
                                events,
                                data,
                                disabled: false,
                            },
                        );
                        s.look.insert(fd);
                        Ok(())
                    }
                    libc::EPOLL_CTL_DEL => s.forget(fd).map(drop).ok_or(libc::ENOENT),
                    _ => Err(libc::EINVAL),
                }
            });
            match r {
                Ok(()) => 0,
                Err(e) => {
                    set_errno(e);
                    -1
                }
            }
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(ep: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int) -> c_int {
    unsafe { epoll_pwait(ep, ev, max, timeout, core::ptr::null()) }
}

/// Fills `out` with the ready Sluice registrations of set `ep` (see `Set`).
fn sluice_events(st: &mut sluice_capi::Stack, ep: c_int, out: &mut [epoll_event]) -> usize {
    sets(|m| {
        let Some(s) = m.get_mut(&ep) else { return 0 };
        match st.iface.ready_since(&mut s.cursor) {
            Ready::Changed(list) => {
                for sock in list {
                    if let Some(fds) = s.by_socket.get(sock) {
                        s.look.extend(fds.iter().copied());
                    }
                }
            }
            // Too far behind (or the first scan): everything once.
            Ready::Missed => s.look.extend(s.sluice.keys().copied()),
        }
        let mut n = 0;
        let mut again = core::mem::take(&mut s.again);
        while n < out.len() {
            let Some(fd) = s.look.pop_first() else { break };
            let Some(reg) = s.sluice.get_mut(&fd) else {
                continue;
            };
            if reg.disabled {
                continue;
            }
            let Some(cf) = fds::lookup(fd) else { continue };
            if let Some(sock) = ready_socket(st, cf) {
                if s.sock_of.get(&fd) != Some(&sock) {
                    // New, or a fresh socket that became a connection or a listener.
                    if let Some(old) = s.sock_of.insert(fd, sock) {
                        if let Some(v) = s.by_socket.get_mut(&old) {
                            v.retain(|&f| f != fd);
                            if v.is_empty() {
                                s.by_socket.remove(&old);
                            }
                        }
                    }
                    s.by_socket.entry(sock).or_default().push(fd);
                }
            }
            let m = readiness(st, cf).unwrap_or(0) & ((reg.events & !CONTROL) | ERR | HUP);
            if m == 0 {
                continue;
            }
            out[n] = epoll_event {
                events: m,
                u64: reg.data,
            };
            n += 1;
            if reg.events & ONESHOT != 0 {
                reg.disabled = true;
            } else if reg.events & ET == 0 {
                // Level-triggered: reported again while it stays ready.
                again.push(fd);
            }
        }
        s.look.extend(again.drain(..));
        s.again = again;
        n
    })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    ep: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    let ours = ACTIVE.load(Ordering::Relaxed)
        && NSETS.load(Ordering::Relaxed) > 0
        && sets(|m| m.get(&ep).map(|s| (!s.sluice.is_empty(), s.kernel))).is_some_and(|(has, _)| has);
    if !ours {
        return unsafe { real::epoll_pwait(ep, ev, max, timeout, mask) };
    }
    if max <= 0 || ev.is_null() {
        set_errno(libc::EINVAL);
        return -1;
    }
    let Some(sh) = shared() else {
        set_errno(libc::ENXIO);
        return -1;
    };
    let kernel = sets(|m| m.get(&ep).map_or(0, |s| s.kernel));
    // SAFETY: the caller's array of `max` events.
    let out = unsafe { core::slice::from_raw_parts_mut(ev, max as usize) };
    let mut kfds: Vec<pollfd> = if kernel > 0 {
        vec![pollfd {
            fd: ep,
            events: libc::POLLIN,
            revents: 0,
        }]
    } else {
        Vec::new()
    };
    // SAFETY: the caller's mask, if any.
    let mask = unsafe { mask.as_ref() };
    // Within one call, the Sluice side is scanned again only when the stack changed.
    let mut seen: Option<u64> = None;
    let r = sh.block(deadline_ms(timeout), &mut kfds, mask, |st, _, nk| {
        if nk == 0 && seen == Some(st.epoch) {
            return Ok(None);
        }
        seen = Some(st.epoch);
        let mut n = 0usize;
        if nk > 0 {
            let k = unsafe { real::epoll_wait(ep, out.as_mut_ptr(), out.len() as c_int, 0) };
            n = k.max(0) as usize;
        }
        n += sluice_events(st, ep, &mut out[n..]);
        Ok((n > 0).then_some(n))
    });
    match r {
        Ok(Some(n)) => n as c_int,
        Ok(None) => 0,
        Err(e) => fail(e),
    }
}
