//! A stack instance: an `Interface` on the in-memory device, a clock, and the table of
//! Sluice file descriptors, behind one mutex (`Shared`).
//!
//! Every call locks the instance, polls the interface (so the call sees what arrived),
//! does its work, and polls again (so what it queued leaves at once). A call that must
//! wait (blocking accept, connect, read, write, poll, epoll_wait) releases the lock and
//! sleeps on a condition variable that every change of the stack signals; with the real
//! clock it polls the device between short sleeps instead. Nothing here is on a hot path:
//! it serves tests, packetdrill and simple C programs.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use sluice_dev::Device;
use sluice_dpdk::{PortQueue, TscClock};
use sluice_net::{Interface, InterfaceConfig, ListenerHandle, TcpHandle, UdpHandle};
use sluice_wire::{EthernetAddress, Instant, IpAddress, Ipv4Address, Ipv6Address};

use crate::config::StackConfig;
use crate::device::PipeDevice;
use crate::errno::{Errno, Res, EAFNOSUPPORT, EBADF, EINVAL, EMFILE, ENETUNREACH, ENOTSOCK};
use crate::Endpoint;

/// The lowest descriptor handed out: 0, 1 and 2 are never used, so that a Sluice
/// descriptor is not mistaken for standard input or output.
pub const FIRST_FD: i32 = 3;
/// Descriptors per instance.
pub const MAX_FDS: usize = 65536;
/// On a real clock, how recent a poll makes another one before a call unnecessary.
const FRESH: Duration = Duration::from_micros(5);

/// Where the stack's time comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// Moved only by `advance` (packetdrill's usleep / gettimeofday, tests).
    Virtual(Instant),
    /// The monotonic clock, from the instance's creation.
    Real(std::time::Instant),
    /// The TSC, from the instance's creation (`sluice_init_dpdk`).
    Tsc(TscClock),
}

/// Socket options kept per descriptor. See `sockopt.rs` for which take effect.
#[derive(Clone, Copy, Debug)]
pub struct SockOpts {
    pub nodelay: bool,
    pub maxseg: Option<u32>,
    pub rcvbuf: u32,
    pub sndbuf: u32,
    pub keepalive: bool,
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (Linux's defaults: 7200 s, 75 s, 9).
    pub keep: sluice_net::Keepalive,
    /// TCP_USER_TIMEOUT (`None`: 0, the retransmission count alone decides).
    pub user_timeout: Option<Duration>,
    /// TCP_SYNCNT: SYN retransmissions before an open is given up.
    pub syncnt: u32,
    pub reuseaddr: bool,
    /// SO_LINGER: `Some(seconds)` when on.
    pub linger: Option<i32>,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// IP_TOS (the DS field) and IP_TTL (`None`: the interface's) of what it sends.
    pub tos: u8,
    pub ttl: Option<u8>,
    /// SO_REUSEPORT: stored and reported; one instance has one queue, so it shares
    /// nothing (a second listener on the port still fails with EADDRINUSE).
    pub reuseport: bool,
    /// TCP_CORK: small segments wait (as with Nagle) until uncorked.
    pub cork: bool,
    /// TCP_QUICKACK: stored and reported (the stack acknowledges by its own rules).
    pub quickack: bool,
    /// TCP_DEFER_ACCEPT seconds: stored and reported; connections are offered to
    /// `accept` at once.
    pub defer_accept: i32,
    /// TCP_CONGESTION.
    pub congestion: sluice_tcp::CongestionKind,
    /// An AF_INET6 socket: it takes and gives IPv4 addresses as IPv4-mapped IPv6 ones
    /// (`::ffff:a.b.c.d`; `::` for any), as a dual-stack socket of Linux does for its
    /// IPv4 peers. IPv6 itself is not spoken yet.
    pub inet6: bool,
    /// IPV6_V6ONLY (default off): such a socket could only reach IPv6 peers, so binding or
    /// connecting it fails (EADDRNOTAVAIL, ENETUNREACH).
    pub v6only: bool,
    /// Bound to the wildcard address (`getsockname` says so until connected).
    pub bound_any: bool,
    /// The address it was bound to (IPv4 or IPv6), for `getsockname`.
    pub bound_addr: Option<sluice_wire::IpAddress>,
}

/// A socket address as given, before the socket's family decides what it means
/// (`SockOpts::endpoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// A `sockaddr_in`.
    V4(Endpoint),
    /// A `sockaddr_in6` holding an IPv4-mapped address (`::ffff:a.b.c.d`).
    Mapped(Endpoint),
    /// A `sockaddr_in6` holding `::`, with this port.
    Any6(u16),
    /// A `sockaddr_in6` holding any other (a real IPv6) address.
    Ipv6(Endpoint),
}

/// An address a call gives back (`accept`, `getsockname`, `recvfrom`...), with the family
/// of the socket it is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockName {
    pub addr: Endpoint,
    /// Written as an IPv4-mapped `sockaddr_in6` (an AF_INET6 socket).
    pub inet6: bool,
}

impl SockOpts {
    /// The IPv4 endpoint a socket address given to `bind` (`for_bind`), `connect` or a
    /// send stands for, by the socket's family: an AF_INET socket takes `sockaddr_in`; an
    /// AF_INET6 one takes `::` and IPv4-mapped `sockaddr_in6` (and, to connect or send,
    /// `sockaddr_in` too, as Linux's dual-stack sockets do).
    pub fn endpoint(&self, a: SockAddr, for_bind: bool) -> Res<Endpoint> {
        let (inet6, v6only) = (self.inet6, self.v6only);
        match (a, inet6) {
            (SockAddr::V4(e), false) => Ok(e),
            (_, false) => Err(EAFNOSUPPORT),
            (SockAddr::V4(_), true) if for_bind => Err(EAFNOSUPPORT),
            (SockAddr::V4(_) | SockAddr::Mapped(_), true) if v6only => {
                Err(if for_bind { EINVAL } else { ENETUNREACH })
            }
            (SockAddr::V4(e) | SockAddr::Mapped(e), true) => Ok(e),
            // `::`: any address of either family (IPv6 only with IPV6_V6ONLY).
            (SockAddr::Any6(port), true) if for_bind && v6only => {
                Ok(Endpoint::new(Ipv6Address::UNSPECIFIED, port))
            }
            (SockAddr::Any6(port), true) if for_bind => Ok(Endpoint::new(Ipv4Address::UNSPECIFIED, port)),
            (SockAddr::Any6(_), true) => Err(ENETUNREACH),
            (SockAddr::Ipv6(e), true) => Ok(e),
        }
    }

    /// Whether a connection with a peer at `peer` belongs on this socket: AF_INET takes
    /// IPv4 peers, AF_INET6 IPv6 ones and, unless IPV6_V6ONLY, IPv4 ones as mapped.
    pub fn takes_peer(&self, peer: IpAddress) -> bool {
        match peer {
            IpAddress::V4(_) => !self.inet6 || !self.v6only,
            IpAddress::V6(_) => self.inet6,
        }
    }

    /// `addr` as this socket's calls give it back.
    pub fn name(&self, addr: Endpoint) -> SockName {
        SockName {
            addr,
            inet6: self.inet6,
        }
    }
}

/// A connection of the application.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub h: TcpHandle,
    /// `connect` said EINPROGRESS (or is blocked) and has not reported the outcome yet.
    pub connecting: bool,
    pub shut_rd: bool,
    pub shut_wr: bool,
    /// The connection's error was reported once (by a call or SO_ERROR).
    pub err_taken: bool,
}

/// What a TCP descriptor is.
#[derive(Clone, Copy, Debug)]
pub enum TcpSt {
    /// From `socket`, perhaps bound.
    Fresh {
        port: Option<u16>,
    },
    Listen {
        l: ListenerHandle,
        port: u16,
        backlog: usize,
    },
    Conn(Conn),
}

/// A UDP descriptor.
#[derive(Clone, Copy, Debug)]
pub struct UdpSt {
    pub h: Option<UdpHandle>,
    pub remote: Option<Endpoint>,
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Tcp(TcpSt),
    Udp(UdpSt),
}

/// A socket descriptor.
#[derive(Clone, Debug)]
pub struct Sock {
    pub nonblock: bool,
    pub opts: SockOpts,
    pub kind: Kind,
}

/// One registration of an epoll set.
#[derive(Clone, Copy, Debug)]
pub struct Interest {
    pub events: u32,
    pub data: u64,
    /// What was reported last (edge-triggered registrations report only new bits).
    pub last: u32,
    /// EPOLLONESHOT fired: silent until EPOLL_CTL_MOD.
    pub disabled: bool,
}

/// An epoll descriptor.
#[derive(Clone, Debug, Default)]
pub struct Epoll {
    pub interest: std::collections::BTreeMap<i32, Interest>,
}

#[derive(Clone, Debug)]
pub enum File {
    Sock(Sock),
    Epoll(Epoll),
}

/// The `Interface`, movable between threads.
pub struct SendIface(pub Interface);

// SAFETY: `Interface` is not `Send` only because it keeps its receive and transmit vectors
// type-erased (`Box<dyn Any>`) between polls; here it is only ever polled with one device,
// `PipeDevice` (buffers `VecBuf`, boxed bytes) or a DPDK `PortQueue` (buffers `Mbuf`,
// which is `Send`: an owned mbuf may be freed from any thread), and everything else in it
// is plain owned data. It is only reached through the instance's mutex.
unsafe impl Send for SendIface {}

impl core::ops::Deref for SendIface {
    type Target = Interface;
    fn deref(&self) -> &Interface {
        &self.0
    }
}
impl core::ops::DerefMut for SendIface {
    fn deref_mut(&mut self) -> &mut Interface {
        &mut self.0
    }
}

/// The state of one instance.
pub struct Stack {
    pub iface: SendIface,
    /// The in-memory device (unused when `port` is set).
    pub dev: PipeDevice,
    /// The DPDK queue the interface runs on, when the instance was created with
    /// `sluice_init_dpdk`.
    pub port: Option<PortQueue>,
    /// A Unix datagram socket carrying the far side's IPv4 packets, when the instance was
    /// created with `sluice_init_unix`.
    pub link: Option<UnixDatagram>,
    pub clock: Clock,
    pub cfg: StackConfig,
    pub files: Vec<Option<File>>,
    /// Bumped at every change another thread may wait for.
    pub epoch: u64,
    /// Blocked calls and the epoch they last looked at.
    waiters: HashMap<u64, u64>,
    next_waiter: u64,
    pub next_port: u16,
    /// When the stack was last polled (the service thread polls when this gets old).
    pub last_poll: Instant,
}

impl Stack {
    pub fn new(cfg: StackConfig, clock: Clock, link: Option<UnixDatagram>) -> Stack {
        let dev = PipeDevice::new(cfg.mtu);
        let iface = Interface::new(cfg.interface_config(), EthernetAddress(dev.mac()));
        Stack::build(cfg, iface, dev, None, clock, link)
    }

    /// On a DPDK queue: `ic` is the interface's configuration (real ARP, the port's MAC).
    pub fn on_port(cfg: StackConfig, ic: InterfaceConfig, port: PortQueue, clock: Clock) -> Stack {
        let iface = Interface::new(ic, EthernetAddress(port.mac()));
        let dev = PipeDevice::new(cfg.mtu);
        Stack::build(cfg, iface, dev, Some(port), clock, None)
    }

    fn build(
        cfg: StackConfig,
        iface: Interface,
        dev: PipeDevice,
        port: Option<PortQueue>,
        clock: Clock,
        link: Option<UnixDatagram>,
    ) -> Stack {
        Stack {
            iface: SendIface(iface),
            dev,
            port,
            link,
            clock,
            cfg,
            files: Vec::new(),
            epoch: 0,
            waiters: HashMap::new(),
            next_waiter: 0,
            next_port: 32768,
            last_poll: Instant::ZERO,
        }
    }

    /// The stack's time now.
    pub fn now(&self) -> Instant {
        match self.clock {
            Clock::Virtual(t) => t,
            Clock::Real(start) => Instant::from_nanos(start.elapsed().as_nanos() as u64),
            Clock::Tsc(tsc) => tsc.now(),
        }
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self.clock, Clock::Virtual(_))
    }

    /// Records a change that waiting calls should look at.
    pub fn touch(&mut self) {
        self.epoch += 1;
    }

    /// Polls the interface at the current time until it is idle (bounded), moving packets
    /// over the Unix link if there is one. Returns whether anything happened.
    pub fn poll(&mut self) -> bool {
        self.pump_in();
        let now = self.now();
        self.last_poll = now;
        let mut did = false;
        // On a port, one burst per poll, as an engine core takes one per round: the
        // program handles what arrived before the next burst is taken (many bursts in a
        // row would hold its answers back). The virtual clock settles fully.
        let rounds = if self.port.is_some() { 1 } else { 64 };
        for _ in 0..rounds {
            let busy = match &mut self.port {
                Some(q) => self.iface.poll(now, q),
                None => self.iface.poll(now, &mut self.dev),
            };
            if !busy {
                break;
            }
            did = true;
        }
        self.pump_out();
        if did {
            self.touch();
        }
        did
    }

    /// Polls unless a real clock says the stack was polled within `FRESH`.
    pub fn refresh(&mut self) {
        if self.is_virtual() || self.now() >= self.last_poll + FRESH {
            self.poll();
        }
    }

    /// After a call: on a virtual clock a full poll (as packetdrill expects), on a real
    /// one only sending what the call queued.
    pub fn settle(&mut self) {
        if self.is_virtual() {
            self.poll();
            return;
        }
        let now = self.now();
        let did = match &mut self.port {
            Some(q) => self.iface.transmit(now, q),
            None => self.iface.transmit(now, &mut self.dev),
        };
        self.pump_out();
        if did {
            self.touch();
        }
    }

    fn pump_in(&mut self) {
        let Some(link) = &self.link else { return };
        let mut buf = [0u8; 65536];
        while let Ok(n) = link.recv(&mut buf) {
            let _ = self.dev.inject(&buf[..n]);
        }
    }

    fn pump_out(&mut self) {
        let Some(link) = &self.link else { return };
        while let Some(out) = self.dev.take() {
            // The link is lossy like any other: TCP retransmits what did not fit.
            let _ = link.send(&out.packet);
        }
    }

    /// Moves virtual time to `target`, firing every timer due on the way at its own
    /// deadline. With the real clock it only polls.
    pub fn advance_to(&mut self, target: Instant) {
        self.poll();
        if !self.is_virtual() || target <= self.now() {
            return;
        }
        for _ in 0..1_000_000 {
            let cur = self.now();
            let Some(t) = self.iface.poll_at() else { break };
            if t > target {
                break;
            }
            if t > cur {
                self.clock = Clock::Virtual(t);
                self.poll();
            } else if !self.poll() {
                // Due but idle (a timer entry that fires early and re-arms): step on.
                self.clock = Clock::Virtual((cur + Duration::from_micros(10)).min(target));
            }
            if self.now() >= target {
                break;
            }
        }
        self.clock = Clock::Virtual(target);
        self.poll();
        self.touch();
    }

    pub fn add_waiter(&mut self) -> u64 {
        self.next_waiter += 1;
        self.waiters.insert(self.next_waiter, u64::MAX);
        self.next_waiter
    }

    /// Records that waiter `id` looked at the current epoch; true if that is news.
    pub fn mark_seen(&mut self, id: u64) -> bool {
        let epoch = self.epoch;
        self.waiters.insert(id, epoch) != Some(epoch)
    }

    pub fn remove_waiter(&mut self, id: u64) {
        self.waiters.remove(&id);
    }

    /// Every blocked call has looked at the stack since its last change.
    pub fn waiters_settled(&self) -> bool {
        self.waiters.values().all(|&e| e == self.epoch)
    }

    // ---- descriptors ----

    pub fn alloc_fd(&mut self, f: File) -> Res<i32> {
        let first = FIRST_FD as usize;
        if self.files.len() < first {
            self.files.resize(first, None);
        }
        let i = match self.files[first..].iter().position(|f| f.is_none()) {
            Some(i) => first + i,
            None if self.files.len() < MAX_FDS => {
                self.files.push(None);
                self.files.len() - 1
            }
            None => return Err(EMFILE),
        };
        self.files[i] = Some(f);
        self.touch();
        Ok(i as i32)
    }

    pub fn has_free_fd(&self) -> bool {
        self.files.len() < MAX_FDS || self.files.iter().skip(FIRST_FD as usize).any(|f| f.is_none())
    }

    pub fn file(&self, fd: i32) -> Res<&File> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.files.get(i))
            .and_then(|f| f.as_ref())
            .ok_or(EBADF)
    }

    pub fn file_mut(&mut self, fd: i32) -> Res<&mut File> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.files.get_mut(i))
            .and_then(|f| f.as_mut())
            .ok_or(EBADF)
    }

    pub fn sock(&self, fd: i32) -> Res<&Sock> {
        match self.file(fd)? {
            File::Sock(s) => Ok(s),
            File::Epoll(_) => Err(ENOTSOCK),
        }
    }

    pub fn sock_mut(&mut self, fd: i32) -> Res<&mut Sock> {
        match self.file_mut(fd)? {
            File::Sock(s) => Ok(s),
            File::Epoll(_) => Err(ENOTSOCK),
        }
    }

    /// The interface and a socket together.
    pub fn parts(&mut self, fd: i32) -> Res<(&mut Interface, &mut Sock)> {
        let Stack { iface, files, .. } = self;
        let f = usize::try_from(fd)
            .ok()
            .and_then(|i| files.get_mut(i))
            .and_then(|f| f.as_mut())
            .ok_or(EBADF)?;
        match f {
            File::Sock(s) => Ok((&mut iface.0, s)),
            File::Epoll(_) => Err(ENOTSOCK),
        }
    }

    pub fn take_file(&mut self, fd: i32) -> Res<File> {
        let f = usize::try_from(fd)
            .ok()
            .and_then(|i| self.files.get_mut(i))
            .and_then(|f| f.take())
            .ok_or(EBADF)?;
        // A closed descriptor leaves every epoll set, as on Linux when the file goes.
        for f in self.files.iter_mut().flatten() {
            if let File::Epoll(ep) = f {
                ep.interest.remove(&fd);
            }
        }
        self.touch();
        Ok(f)
    }
}

/// An instance shared between the threads that call into it.
///
/// On a real clock (DPDK, the Unix link) the stack also runs when no call is made: a
/// service thread (`start_service`) polls it whenever the calling threads have not for a
/// while, sleeping between polls (10 µs after activity, backing off to 500 µs). A call
/// that must wait polls the stack itself for `--spin_us`, then sleeps in the kernel
/// (`ppoll`) on the instance's eventfd, which whoever changes the stack writes while a
/// call sleeps, so a blocked call costs no CPU of its own.
pub struct Shared {
    stack: Mutex<Stack>,
    cond: Condvar,
    /// Real clocks: written when the stack changed while a call sleeps.
    wake: Option<OwnedFd>,
    /// Calls sleeping in the kernel on `wake`.
    sleepers: AtomicUsize,
    spin: Duration,
    /// Signals the stack's drivers use (`set_stack_signals`), kept out of every sleep.
    stack_signals: Option<libc::sigset_t>,
}

/// The handler of every signal (1..=64) now.
pub fn signal_handlers() -> Vec<usize> {
    (1..=64)
        .map(|sig| {
            // SAFETY: sigaction with a null new action only reads the current one.
            unsafe {
                let mut old: libc::sigaction = core::mem::zeroed();
                if libc::sigaction(sig, core::ptr::null(), &mut old) == 0 {
                    old.sa_sigaction
                } else {
                    0
                }
            }
        })
        .collect()
}

/// The signals whose handler differs between two `signal_handlers` snapshots.
pub fn changed_signals(before: &[usize], after: &[usize]) -> Vec<i32> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as i32 + 1)
        .collect()
}

/// Signals held back while a blocking call spins, so that one arriving during the wait
/// interrupts it (EINTR) when it sleeps: all but those a fault raises, which cannot wait.
fn async_signals() -> libc::sigset_t {
    // SAFETY: sigfillset/sigdelset initialise and edit a local set.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut set, s);
        }
        set
    }
}

/// `ppoll` straight to the kernel (not through a preloaded `ppoll` of the same process).
fn sys_ppoll(
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    mask: Option<&libc::sigset_t>,
) -> Res<usize> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    // SAFETY: the pointers are to live locals (or null), `fds` has `fds.len()` entries,
    // and the kernel's sigset is 8 bytes on Linux.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts.as_ref()
                .map_or(core::ptr::null(), |t| t as *const libc::timespec),
            mask.map_or(core::ptr::null(), |m| m as *const libc::sigset_t),
            8usize,
        )
    };
    if r < 0 {
        Err(Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINTR),
        ))
    } else {
        Ok(r as usize)
    }
}

/// Restores a thread's signal mask when dropped.
struct MaskGuard(libc::sigset_t);

impl MaskGuard {
    fn hold(set: &libc::sigset_t) -> MaskGuard {
        // SAFETY: `old` is written by the call; `set` is initialised.
        unsafe {
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, set, &mut old);
            MaskGuard(old)
        }
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `hold`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, core::ptr::null_mut());
        }
    }
}

/// What a blocking wait found: the stack's answer, or that its time ran out.
pub type Found<R> = Res<Option<R>>;

impl Shared {
    pub fn new(stack: Stack) -> Shared {
        let wake = (!stack.is_virtual()).then(|| {
            // SAFETY: eventfd has no preconditions; a valid descriptor is owned from here.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` was just created and is owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        let spin = stack.cfg.spin;
        Shared {
            stack: Mutex::new(stack),
            cond: Condvar::new(),
            wake,
            sleepers: AtomicUsize::new(0),
            spin,
            stack_signals: None,
        }
    }

    /// Signals the stack's drivers installed handlers for (net_tap raises one per
    /// received packet): a sleeping call keeps them blocked, so they reach another
    /// thread (the service thread's, which leaves them open) and never end the call with
    /// EINTR.
    pub fn set_stack_signals(&mut self, sigs: Vec<i32>) {
        if sigs.is_empty() {
            return;
        }
        // SAFETY: initialises and fills a local set.
        let set = unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in sigs {
                libc::sigaddset(&mut set, s);
            }
            set
        };
        self.stack_signals = Some(set);
    }

    /// The stack's signals (see `set_stack_signals`), if any.
    pub fn stack_signals(&self) -> Option<&libc::sigset_t> {
        self.stack_signals.as_ref()
    }

    /// Locks the instance. A panic while it was held (caught at the ABI boundary) leaves
    /// the stack usable: its state is only changed by whole calls into `sluice-net`.
    pub fn lock(&self) -> MutexGuard<'_, Stack> {
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells waiting calls that the stack changed.
    fn changed(&self) {
        // Calls wait on the condition variable only on the virtual clock (a notify is a
        // system call each time, waiters or not); on a real clock they sleep on `wake`.
        let Some(w) = &self.wake else {
            self.cond.notify_all();
            return;
        };
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            // SAFETY: `w` is our eventfd; a full counter only means it is already set.
            unsafe {
                libc::eventfd_write(w.as_raw_fd(), 1);
            }
        }
    }

    /// Runs `f` on the polled stack, sends what it queued, and wakes waiting calls if
    /// anything changed. On a real clock the stack is polled first only if it was not
    /// within `FRESH` (a call right after `epoll_wait` or another call sees what they
    /// saw), and afterwards only what is queued is sent (`Stack::transmit`): a call costs
    /// one receive poll at most, usually none.
    pub fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        self.locked(Stack::refresh, f)
    }

    /// Locks, runs `first` (a poll) and `f`, sends what `f` queued, and wakes waiting
    /// calls if anything changed.
    fn locked<R>(&self, first: fn(&mut Stack), f: impl FnOnce(&mut Stack) -> R) -> R {
        let mut st = self.lock();
        let e0 = st.epoch;
        first(&mut st);
        let r = f(&mut st);
        st.settle();
        let changed = st.epoch != e0;
        drop(st);
        if changed {
            self.changed();
        }
        r
    }

    pub fn notify(&self) {
        self.changed();
    }

    /// Starts the service thread of a real-clock instance (see the type's description).
    /// It ends when the instance is dropped.
    pub fn start_service(self: &Arc<Shared>) -> std::io::Result<()> {
        if self.wake.is_none() {
            return Ok(());
        }
        let weak = Arc::downgrade(self);
        let open = self.stack_signals;
        std::thread::Builder::new()
            .name("sluice-service".into())
            .spawn(move || {
                if let Some(set) = open {
                    // SAFETY: unblocks signals in this thread only.
                    unsafe {
                        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
                    }
                }
                // Sleeps of tens of microseconds mean what they say (the default timer
                // slack is 50 µs). SAFETY: prctl with these arguments has no preconditions.
                unsafe {
                    libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
                }
                const MIN: Duration = Duration::from_micros(10);
                const MAX: Duration = Duration::from_micros(500);
                let mut nap = MIN;
                loop {
                    let Some(sh) = weak.upgrade() else { return };
                    let busy = sh.service_once(nap);
                    drop(sh);
                    nap = if busy { MIN } else { (nap * 2).min(MAX) };
                    std::thread::sleep(nap);
                }
            })
            .map(drop)
    }

    /// The service thread's turn: polls unless a call holds the stack or polled it within
    /// `nap`. Whether the poll did anything.
    fn service_once(&self, nap: Duration) -> bool {
        let mut st = match self.stack.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        if st.now() < st.last_poll + nap {
            return false;
        }
        let e0 = st.epoch;
        let busy = st.poll();
        let changed = st.epoch != e0;
        drop(st);
        if changed {
            self.changed();
        }
        busy
    }

    /// Waits on the condition variable (virtual clock) or polls after a short sleep (real
    /// clock); returns the guard again.
    pub fn wait<'a>(&'a self, st: MutexGuard<'a, Stack>, max: Duration) -> MutexGuard<'a, Stack> {
        if st.is_virtual() {
            match self.cond.wait_timeout(st, max) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            }
        } else {
            drop(st);
            std::thread::sleep(max.min(Duration::from_micros(50)));
            self.lock()
        }
    }

    /// One look at the stack: polls, runs `f`, polls again, wakes others on a change.
    fn look<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        self.locked(
            |st| {
                st.poll();
            },
            f,
        )
    }

    /// A blocking wait on a real clock over the stack and kernel descriptors `kfds`
    /// (their `revents` are filled at each look): `check` is called with the stack and
    /// how many kernel descriptors are ready until it answers, fails, or `deadline`
    /// passes (`Ok(None)`). Polls for the instance's spin time, then sleeps in `ppoll`
    /// until the stack changes, a kernel descriptor is ready, a signal arrives (EINTR;
    /// with `sigmask`, the caller's mask applies while asleep, as `ppoll`/`epoll_pwait`)
    /// or the deadline. A virtual clock cannot sleep: it fails with EINVAL.
    pub fn block<R>(
        &self,
        deadline: Option<std::time::Instant>,
        kfds: &mut [libc::pollfd],
        sigmask: Option<&libc::sigset_t>,
        mut check: impl FnMut(&mut Stack, &[libc::pollfd], usize) -> Found<R>,
    ) -> Found<R> {
        let Some(wake) = &self.wake else {
            return Err(EINVAL);
        };
        let kernel_look = |kfds: &mut [libc::pollfd]| -> Res<usize> {
            if kfds.is_empty() {
                Ok(0)
            } else {
                sys_ppoll(kfds, Some(Duration::ZERO), None)
            }
        };
        let nk = kernel_look(kfds)?;
        match self.look(|st| check(st, kfds, nk)) {
            Ok(None) => {}
            done => return done,
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(None);
        }
        let held = MaskGuard::hold(&async_signals());
        let mut asleep_mask = *sigmask.unwrap_or(&held.0);
        if let Some(ss) = &self.stack_signals {
            for sig in 1..=64 {
                // SAFETY: reads and edits local sets.
                unsafe {
                    if libc::sigismember(ss, sig) == 1 {
                        libc::sigaddset(&mut asleep_mask, sig);
                    }
                }
            }
        }
        let spin_until = std::time::Instant::now() + self.spin;
        let mut all: Vec<libc::pollfd> = Vec::new();
        let (mut spins, mut woke) = (0u32, false);
        loop {
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if now < spin_until {
                core::hint::spin_loop();
            } else {
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                // A change after this look writes the eventfd, so the sleep sees it.
                let r = self.look(|st| check(st, &[], 0));
                if !matches!(r, Ok(None)) {
                    self.sleepers.fetch_sub(1, Ordering::SeqCst);
                    return r;
                }
                all.clear();
                all.extend_from_slice(kfds);
                all.push(libc::pollfd {
                    fd: wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                let slept = sys_ppoll(
                    &mut all,
                    deadline.map(|d| d.saturating_duration_since(now)),
                    Some(&asleep_mask),
                );
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                slept?;
                woke = true;
                if all.last().is_some_and(|p| p.revents != 0) {
                    let mut v = 0u64;
                    // SAFETY: reads our own nonblocking eventfd into a local.
                    unsafe {
                        libc::eventfd_read(wake.as_raw_fd(), &mut v);
                    }
                }
            }
            // While spinning, the kernel side is looked at every 8th turn (a system call
            // each); after a sleep, at once.
            spins = spins.wrapping_add(1);
            let nk = if woke || spins % 8 == 0 {
                kernel_look(kfds)?
            } else {
                kfds.iter_mut().for_each(|p| p.revents = 0);
                0
            };
            woke = false;
            match self.look(|st| check(st, kfds, nk)) {
                Ok(None) => {}
                done => return done,
            }
        }
    }

    /// A call that would block: tries `attempt` once, then (unless `nonblock`) again at
    /// every change until it succeeds, fails, or the time runs out (`None`). `timeo` is
    /// counted on the stack's clock; `--block_timeout_ms` (10 s on a virtual clock when
    /// unset) on the wall clock.
    pub fn attempt<R>(
        &self,
        nonblock: impl FnOnce(&Stack) -> Res<(bool, Option<Duration>)>,
        mut attempt: impl FnMut(&mut Stack) -> Res<Option<R>>,
    ) -> Res<Option<R>> {
        let mut st = self.lock();
        let e0 = st.epoch;
        st.refresh();
        let first = attempt(&mut st);
        st.settle();
        let changed = st.epoch != e0;
        match first {
            Ok(None) => {}
            done => {
                drop(st);
                if changed {
                    self.changed();
                }
                return done;
            }
        }
        let (nb, timeo) = nonblock(&st)?;
        if nb {
            drop(st);
            if changed {
                self.changed();
            }
            return Ok(None);
        }
        if !st.is_virtual() {
            let limit = match (timeo, st.cfg.block_limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            drop(st);
            if changed {
                self.changed();
            }
            let deadline = limit.map(|d| std::time::Instant::now() + d);
            return self.block(deadline, &mut [], None, |st, _, _| attempt(st));
        }
        if changed {
            self.cond.notify_all();
        }
        let deadline = timeo.map(|d| st.now() + d);
        let limit = std::time::Instant::now() + st.cfg.block_limit.unwrap_or(Duration::from_secs(10));
        let id = st.add_waiter();
        let result = loop {
            if st.mark_seen(id) {
                self.cond.notify_all();
            }
            st = self.wait(st, Duration::from_millis(20));
            let e0 = st.epoch;
            st.poll();
            let r = attempt(&mut st);
            st.poll();
            if st.epoch != e0 {
                self.cond.notify_all();
            }
            match r {
                Ok(None) => {}
                done => break done,
            }
            if deadline.is_some_and(|d| st.now() >= d) || std::time::Instant::now() >= limit {
                break Ok(None);
            }
        };
        st.remove_waiter(id);
        drop(st);
        self.cond.notify_all();
        result
    }
}
