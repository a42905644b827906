//! `libsluice_preload.so`: unmodified, dynamically linked Linux programs on Sluice.
//!
//! `sluice-run [FLAGS] -- PROGRAM ARGS...` starts PROGRAM with this library in
//! `LD_PRELOAD`. At the program's first AF_INET socket it brings up the C API's
//! instance on a DPDK port (`sluice_init_dpdk` with the launcher's flags); from then on
//! the program's AF_INET sockets are Sluice sockets and every other descriptor is the
//! kernel's, untouched.
//!
//! ```text
//! program ── socket/read/epoll_wait/... ──► this library ──┬─► Sluice (C API, fds.rs)
//!                                                          └─► the C library (real.rs)
//! ```
//!
//! - `fds.rs`: which descriptors are Sluice's (each has a kernel placeholder, so the
//!   numbers never collide with the kernel's);
//! - `calls.rs`: the socket calls, one C API call each;
//! - `wait.rs`: `poll`, `ppoll`, `select`, `pselect` and epoll over any mix of Sluice and
//!   kernel descriptors, sleeping in the kernel (signals interrupt them) once the stack
//!   has been polled for `--spin_us`.
//!
//! Only the process `sluice-run` started is served (`SLUICE_RUN_PID`, kept across `exec`
//! so that a wrapper script can hand over to the real program); once Sluice is up the
//! variables are removed from its environment so that the programs it runs in turn (a
//! shell, a helper) use the kernel. In a child forked without `exec`, Sluice descriptors fail (EBADF, with
//! a message) but can be closed, and new sockets are the kernel's.

#![allow(clippy::missing_safety_doc)]

mod calls;
mod fds;
mod real;
mod wait;

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};

/// The instance is up and this is the process it serves.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// This is a child forked from that process (without `exec`).
static FORKED: AtomicBool = AtomicBool::new(false);
/// AF_INET6 sockets go to the kernel (`sluice-run --kernel-inet6`); else they are Sluice's
/// dual-stack sockets (IPv6 peers, and IPv4 ones through IPv4-mapped addresses).
static KERNEL_INET6: AtomicBool = AtomicBool::new(false);
/// The forked-child message was printed.
static WARNED: AtomicBool = AtomicBool::new(false);

/// `SLUICE_RUN_TRACE=1`: every call on a Sluice descriptor is printed with its result.
static TRACE: AtomicBool = AtomicBool::new(false);

/// Prints one call (with `SLUICE_RUN_TRACE`).
fn trace(call: &str, fd: c_int, r: i64) {
    if TRACE.load(Ordering::Relaxed) {
        // The C API function in the call's text: `after_n(fd, unsafe { c::sluice_read(...`.
        let name = call
            .find("sluice_")
            .map(|i| &call[i + 7..])
            .and_then(|r| r.split('(').next())
            .unwrap_or(call);
        if r < 0 {
            eprintln!(
                "sluice-run: {name}({fd}) = -1 ({})",
                std::io::Error::from_raw_os_error(errno())
            );
        } else {
            eprintln!("sluice-run: {name}({fd}) = {r}");
        }
    }
}

/// What a descriptor is, for the call about to be made on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Kernel,
    /// A Sluice socket: the C API's descriptor.
    Sluice(c_int),
    /// A Sluice socket inherited over `fork`: unusable here.
    Stale,
}

#[inline]
fn target(fd: c_int) -> Target {
    if !ACTIVE.load(Ordering::Relaxed) {
        return Target::Kernel;
    }
    match fds::lookup(fd) {
        None => Target::Kernel,
        Some(_) if FORKED.load(Ordering::Relaxed) => Target::Stale,
        Some(c) => Target::Sluice(c),
    }
}

fn set_errno(e: c_int) {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() = e };
}

fn errno() -> c_int {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The failure of a call on a Sluice socket inherited over `fork`: EBADF, and once a
/// message saying why.
fn stale(fd: c_int) -> c_int {
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "sluice-run: descriptor {fd} is a Sluice socket of the parent process; Sluice sockets do not \
             cross fork() (close it; new sockets in this process are the kernel's)"
        );
    }
    set_errno(libc::EBADF);
    -1
}

extern "C" fn forked_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Removes this library from `LD_PRELOAD` (the programs this one runs use the kernel).
fn unpreload() {
    let Ok(v) = std::env::var("LD_PRELOAD") else {
        return;
    };
    let rest: Vec<&str> = v
        .split([':', ' '])
        .filter(|p| !p.is_empty() && !p.contains("libsluice_preload"))
        .collect();
    if rest.is_empty() {
        std::env::remove_var("LD_PRELOAD");
    } else {
        std::env::set_var("LD_PRELOAD", rest.join(":"));
    }
}

/// `sluice-run` started this process image (its ID is `SLUICE_RUN_PID`): Sluice comes up
/// at the first AF_INET socket. Waiting for that, rather than starting in the library's
/// constructor, lets a wrapper script (`#!/bin/sh ... exec python3`, pyenv's shims) pass
/// the same process on to the program that really uses the network.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Serialises the start; held by the thread that brings Sluice up.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// This thread is bringing Sluice up: the sockets DPDK opens meanwhile (net_tap's
    /// ioctl socket) are the kernel's.
    static IN_START: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Runs when the library is loaded, before the program's `main`: notes whether this is
/// the process `sluice-run` started.
extern "C" fn init() {
    let ours = std::env::var("SLUICE_RUN_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        // SAFETY: getpid has no preconditions.
        .is_some_and(|p| p == unsafe { libc::getpid() });
    if ours {
        KERNEL_INET6.store(
            std::env::var_os("SLUICE_RUN_KERNEL_INET6").is_some(),
            Ordering::Relaxed,
        );
        TRACE.store(std::env::var_os("SLUICE_RUN_TRACE").is_some(), Ordering::Relaxed);
        PENDING.store(true, Ordering::Release);
    }
}

/// Brings Sluice up if this process is to have it and it is not up yet (at the first
/// AF_INET socket). Returns whether it is up. A failure ends the process with the
/// reason: the user asked for Sluice, and the program cannot run as asked without it.
fn start() -> bool {
    if ACTIVE.load(Ordering::Acquire) {
        return true;
    }
    if !PENDING.load(Ordering::Acquire) || IN_START.with(|c| c.get()) {
        return false;
    }
    let _g = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if ACTIVE.load(Ordering::Acquire) {
        return true;
    }
    IN_START.with(|c| c.set(true));
    let flags = std::env::var("SLUICE_RUN_FLAGS").unwrap_or_default();
    let quiet = std::env::var_os("SLUICE_RUN_QUIET").is_some();
    for v in [
        "SLUICE_RUN_PID",
        "SLUICE_RUN_FLAGS",
        "SLUICE_RUN_QUIET",
        "SLUICE_RUN_KERNEL_INET6",
    ] {
        std::env::remove_var(v);
    }
    unpreload();
    let Ok(cflags) = std::ffi::CString::new(flags.clone()) else {
        eprintln!("sluice-run: the flags contain a NUL byte");
        // SAFETY: ends the process.
        unsafe { libc::_exit(2) };
    };
    // SAFETY: a NUL-terminated string; prints why on failure.
    if unsafe { sluice_capi::abi::sluice_init_dpdk(cflags.as_ptr()) } != 0 {
        eprintln!("sluice-run: Sluice could not start (above: why, and how to fix it)");
        // SAFETY: ends the process.
        unsafe { libc::_exit(1) };
    }
    // SAFETY: registers a handler that only stores to an atomic.
    unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    // The signals the port's driver raises (net_tap: one per packet) go to the stack's
    // service thread, not to this one, whose blocking kernel calls they would interrupt
    // (threads created from here on inherit the mask).
    if let Some(set) = sluice_capi::global_shared().and_then(|sh| sh.stack_signals().copied()) {
        // SAFETY: blocks signals in this thread only.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) };
    }
    IN_START.with(|c| c.set(false));
    ACTIVE.store(true, Ordering::Release);
    if !quiet {
        eprintln!("sluice-run: AF_INET sockets of this process are Sluice's ({flags})");
    }
    true
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
