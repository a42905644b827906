//! The socket-like API that applications use on a core: `TcpListener`, `TcpStream`,
//! `UdpSocket` (small `Copy` handles), an epoll-like `Poller`, and typed errors.
//!
//! Every call takes the core's context `Cx`, which the engine passes to the application
//! each round: the application runs on the same core as its connections, with no locks.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashMap;
use sluice_dev::{Frame, FrameMut};
use sluice_net::{
    Endpoint, Interface, ListenerHandle, Ready, ReadyCursor, ReadySocket, TcpConnectError, TcpHandle,
    TcpListenError, TcpRecvError, TcpSendError, TcpState, UdpHandle, UdpRecvError, UdpSendError,
};
use sluice_wire::{Instant, IpAddress};

use crate::RssSteering;

/// What a socket call can fail with. Small and `Copy`; `WouldBlock` is the usual one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing to read, or no room to write, right now: try again after the next event.
    #[error("operation would block")]
    WouldBlock,
    /// The handle does not name an open socket of this core.
    #[error("invalid or closed handle")]
    InvalidHandle,
    /// The port is taken.
    #[error("address in use")]
    AddrInUse,
    /// The destination is not reachable from our address and gateway.
    #[error("no route to host")]
    NoRoute,
    /// No local port is free (or none whose replies land on this core).
    #[error("no free local port")]
    NoPort,
    /// Bad address or port.
    #[error("invalid address")]
    InvalidAddress,
    /// The connection was reset by the peer.
    #[error("connection reset")]
    Reset,
    /// The peer refused the connection (RST to our SYN).
    #[error("connection refused")]
    Refused,
    /// Retransmissions or the user timeout ran out.
    #[error("connection timed out")]
    TimedOut,
    /// A hard ICMP error answered the connection attempt (host or network unreachable).
    #[error("no route to host")]
    Unreachable,
    /// The connection was aborted here (`abort`, or data arrived after `close`).
    #[error("connection aborted")]
    Aborted,
    /// Writing after shutdown or close, or reading in a state that does not allow it.
    #[error("socket not in a state for this operation")]
    InvalidState,
    /// The datagram does not fit.
    #[error("message too large")]
    TooLarge,
    /// The memory budget for connection buffers is exhausted (`--mem-budget-mb`): no new
    /// connection until buffers are freed.
    #[error("no buffer space (memory budget exhausted; see --mem-budget-mb)")]
    NoBuffers,
}

/// A failed connection's error, the same one the TCB reports (and the C API's errno).
impl From<sluice_net::ConnError> for Error {
    fn from(e: sluice_net::ConnError) -> Error {
        use sluice_net::ConnError as C;
        match e {
            C::Reset => Error::Reset,
            C::Refused => Error::Refused,
            C::TimedOut => Error::TimedOut,
            C::Unreachable => Error::Unreachable,
            C::Aborted => Error::Aborted,
        }
    }
}

impl Error {
    /// The Linux `errno` of this error (the one the C API would set) and its
    /// `std::io::ErrorKind`. Connection failures come from `ConnError::meaning`, the one
    /// table both APIs use.
    pub fn meaning(&self) -> (i32, std::io::ErrorKind) {
        use sluice_net::ConnError as C;
        use std::io::ErrorKind as K;
        match self {
            Error::WouldBlock => (libc_errno::EAGAIN, K::WouldBlock),
            Error::InvalidHandle => (libc_errno::EBADF, K::Other),
            Error::AddrInUse => (libc_errno::EADDRINUSE, K::AddrInUse),
            Error::NoRoute => (libc_errno::ENETUNREACH, K::NetworkUnreachable),
            Error::NoPort => (libc_errno::EADDRNOTAVAIL, K::AddrNotAvailable),
            Error::InvalidAddress => (libc_errno::EINVAL, K::InvalidInput),
            Error::Reset => C::Reset.meaning(),
            Error::Refused => C::Refused.meaning(),
            Error::TimedOut => C::TimedOut.meaning(),
            Error::Unreachable => C::Unreachable.meaning(),
            Error::Aborted => C::Aborted.meaning(),
            Error::InvalidState => (libc_errno::ENOTCONN, K::NotConnected),
            Error::TooLarge => (libc_errno::EMSGSIZE, K::Other),
            Error::NoBuffers => (libc_errno::ENOBUFS, K::OutOfMemory),
        }
    }
    /// The Linux `errno` of this error.
    pub fn errno(&self) -> i32 {
        self.meaning().0
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.meaning().1, e)
    }
}

/// Linux errno values (x86_64 and aarch64 agree) for the errors that are not connection
/// failures.
mod libc_errno {
    pub const EAGAIN: i32 = 11;
    pub const EBADF: i32 = 9;
    pub const EINVAL: i32 = 22;
    pub const EMSGSIZE: i32 = 90;
    pub const ENOBUFS: i32 = 105;
    pub const EADDRINUSE: i32 = 98;
    pub const EADDRNOTAVAIL: i32 = 99;
    pub const ENETUNREACH: i32 = 101;
    pub const ENOTCONN: i32 = 107;
}

/// A read that gives `Some` thing or nothing: `Ok(Some)` as is, `Ok(None)` (nothing yet)
/// as `WouldBlock`, the end of the stream as `Ok(None)`.
fn next_or_end<T>(r: Result<Option<T>, TcpRecvError>) -> Result<Option<T>, Error> {
    match r {
        Ok(Some(x)) => Ok(Some(x)),
        Ok(None) => Err(Error::WouldBlock),
        Err(TcpRecvError::Finished) => Ok(None),
        Err(TcpRecvError::InvalidHandle) => Err(Error::InvalidHandle),
        Err(TcpRecvError::InvalidState) => Err(Error::InvalidState),
        Err(TcpRecvError::Connection(e)) => Err(Error::from(e)),
    }
}

/// The context of one core's round: its interface, the time, and who it is.
pub struct Cx<'a> {
    pub(crate) iface_rc: &'a Rc<RefCell<Interface>>,
    pub(crate) now: Instant,
    pub(crate) core: u16,
    pub(crate) cores: u16,
    pub(crate) steering: &'a RssSteering,
    pub(crate) stop: &'a AtomicBool,
}

impl<'a> Cx<'a> {
    /// A context over an interface (tests, or a custom loop).
    pub fn new(
        iface: &'a Rc<RefCell<Interface>>,
        now: Instant,
        core: u16,
        cores: u16,
        steering: &'a RssSteering,
        stop: &'a AtomicBool,
    ) -> Self {
        Cx {
            iface_rc: iface,
            now,
            core,
            cores,
            steering,
            stop,
        }
    }
    /// The time of this round, read once when the round began (nanoseconds since the
    /// engine's epoch): what timeouts and `rt::sleep` count from.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// This core's index, `0..cores()`.
    pub fn core(&self) -> u16 {
        self.core
    }
    /// How many cores the engine runs (the same on every core).
    pub fn cores(&self) -> u16 {
        self.cores
    }
    /// The interface itself, for what the handles do not cover.
    pub fn iface(&self) -> RefMut<'_, Interface> {
        self.iface_rc.borrow_mut()
    }
    /// The shared interface (the async front end keeps a clone).
    pub fn iface_rc(&self) -> &Rc<RefCell<Interface>> {
        self.iface_rc
    }
    /// How flows map to cores (queue `c` is core `c`): `steering().queue_of(..)` gives the
    /// core that owns a 4-tuple. The port's RSS key and table, or the software steering
    /// table where the port has no RSS.
    pub fn steering(&self) -> &RssSteering {
        self.steering
    }
    /// Asks every core to stop after this round.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    /// Zero-copy send: a buffer to fill and queue with `TcpStream::write_frame`: an mbuf
    /// of this core's pool on DPDK (sent by reference on ports that chain mbufs), a heap
    /// buffer of one MSS otherwise. `None` when the pool is exhausted: try again later.
    pub fn alloc_frame(&self) -> Option<FrameMut> {
        self.iface().alloc_tx_frame()
    }

    /// Whether a stop was requested (`request_stop` on any core, `EngineHandle::stop`, the
    /// stop flag): the core ends after this round and calls `App::finish`.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A listening TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpListener(pub ListenerHandle);

impl TcpListener {
    /// Listens on `port` of our address, with at most `backlog` connections half-open and
    /// as many waiting for `accept`. Every core that should serve the port binds it.
    pub fn bind(cx: &Cx, port: u16, backlog: usize) -> Result<TcpListener, Error> {
        cx.iface()
            .tcp_listen(port, backlog)
            .map(TcpListener)
            .map_err(|e| match e {
                TcpListenError::InUse => Error::AddrInUse,
                _ => Error::InvalidAddress,
            })
    }
    /// As `bind`, with the TCP settings of the connections it accepts (buffer sizes,
    /// Nagle, keepalive, congestion control).
    pub fn bind_with(
        cx: &Cx,
        port: u16,
        backlog: usize,
        cfg: sluice_net::TcpConfig,
    ) -> Result<TcpListener, Error> {
        cx.iface()
            .tcp_listen_with(port, backlog, cfg)
            .map(TcpListener)
            .map_err(|e| match e {
                TcpListenError::InUse => Error::AddrInUse,
                _ => Error::InvalidAddress,
            })
    }

    /// The next established connection, or `WouldBlock`.
    pub fn accept(&self, cx: &Cx) -> Result<TcpStream, Error> {
        cx.iface()
            .tcp_accept(self.0)
            .map(TcpStream)
            .ok_or(Error::WouldBlock)
    }
    /// Stops listening and frees the port. Connections not yet accepted are reset;
    /// accepted ones are not affected.
    pub fn close(self, cx: &Cx) {
        cx.iface().tcp_unlisten(self.0);
    }
}

/// A TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpStream(pub TcpHandle);

impl TcpStream {
    /// Opens a connection to `addr:port`, from a local port whose replies reach this core.
    /// Completes in the background: `state` says when it is established, `write` queues
    /// data before that.
    pub fn connect(cx: &Cx, addr: impl Into<IpAddress>, port: u16) -> Result<TcpStream, Error> {
        Self::connect_to(cx, Endpoint::new(addr, port))
    }

    /// `connect` to an IPv4 or IPv6 endpoint, e.g. a `std::net::SocketAddr`.
    pub fn connect_to(cx: &Cx, to: impl Into<Endpoint>) -> Result<TcpStream, Error> {
        let Endpoint { addr, port } = to.into();
        let map = |e| match e {
            TcpConnectError::NoRoute => Error::NoRoute,
            TcpConnectError::NoEphemeralPort => Error::NoPort,
            TcpConnectError::NoBuffers => Error::NoBuffers,
            _ => Error::InvalidAddress,
        };
        if cx.cores <= 1 {
            return cx.iface().tcp_connect(addr, port).map(TcpStream).map_err(map);
        }
        let Some(local) = cx.iface().source_for(addr) else {
            return Err(map(TcpConnectError::NoRoute));
        };
        let start = (cx.now.total_nanos() as u16) | 0xc000;
        let lport = {
            let iface = cx.iface();
            cx.steering
                .pick_local_port(local, addr, port, cx.core, 49152..=65535, start, |p| {
                    !iface.tcp_port_free(addr, port, p)
                })
                .ok_or(Error::NoPort)?
        };
        cx.iface()
            .tcp_connect_from(addr, port, lport)
            .map(TcpStream)
            .map_err(map)
    }

    /// Copies received bytes into `buf`: `Ok(n > 0)` bytes, `Ok(0)` the peer finished
    /// (end of stream), `Err(WouldBlock)` nothing yet.
    pub fn read(&self, cx: &Cx, buf: &mut [u8]) -> Result<usize, Error> {
        match cx
            .iface()
            .tcp(self.0)
            .ok_or(sluice_net::TcpRecvError::InvalidHandle)
            .and_then(|mut sk| sk.recv(buf))
        {
            Ok(0) if !buf.is_empty() => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(TcpRecvError::Finished) => Ok(0),
            Err(TcpRecvError::InvalidHandle) => Err(Error::InvalidHandle),
            Err(TcpRecvError::InvalidState) => Err(Error::InvalidState),
            Err(TcpRecvError::Connection(e)) => Err(Error::from(e)),
        }
    }

    /// Reads in place: `f` sees the received bytes (the stack's own buffer, no copy) and
    /// returns how many it consumed. `Ok(None)` at end of stream.
    pub fn read_with<R>(&self, cx: &Cx, f: impl FnOnce(&[u8]) -> (usize, R)) -> Result<Option<R>, Error> {
        next_or_end(
            cx.iface()
                .tcp(self.0)
                .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv_with(f)),
        )
    }

    /// Zero-copy read: the next received bytes (at most `max`) as a `Frame`. A full-sized
    /// in-order payload is the NIC's own mbuf, handed over without a copy; smaller or
    /// reassembled data comes as a heap frame. `Ok(None)` at end of stream,
    /// `Err(WouldBlock)` nothing yet. Drop frames soon: they hold receive-pool mbufs.
    pub fn read_frame(&self, cx: &Cx, max: usize) -> Result<Option<Frame>, Error> {
        next_or_end(
            cx.iface()
                .tcp(self.0)
                .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv_frame(max)),
        )
    }

    /// The payload of a full-sized segment on this connection (the send MSS, less the
    /// options every segment carries): fill frames for `write_frame` with this many bytes
    /// (segments do not span frames). `None` for a stale handle.
    pub fn mss(&self, cx: &Cx) -> Option<usize> {
        cx.iface().tcp_status(self.0).map(|t| t.tcb().mss())
    }

    /// Zero-copy send: queues `frame` (best filled from `Cx::alloc_frame`) by reference;
    /// it is sent and retransmitted without a copy and released once acknowledged.
    /// `Ok(None)`: all queued; `Ok(Some(rest))`: the part that did not fit (the send buffer
    /// is full), to queue again after the next event.
    pub fn write_frame(&self, cx: &Cx, frame: Frame) -> Result<Option<Frame>, Error> {
        cx.iface()
            .tcp(self.0)
            .ok_or(sluice_net::TcpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send_frame(frame))
            .map_err(send_error)
    }

    /// Queues bytes to send: `Ok(n > 0)` queued, `Err(WouldBlock)` the send buffer is full.
    pub fn write(&self, cx: &Cx, data: &[u8]) -> Result<usize, Error> {
        match cx
            .iface()
            .tcp(self.0)
            .ok_or(sluice_net::TcpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send(data))
        {
            Ok(0) if !data.is_empty() => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(e) => Err(send_error(e)),
        }
    }

    /// Writes in place: `f` fills the free part of the send buffer (no copy from an
    /// application buffer) and returns how many bytes it wrote.
    pub fn write_with(&self, cx: &Cx, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, Error> {
        match cx
            .iface()
            .tcp(self.0)
            .ok_or(sluice_net::TcpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send_with(f))
        {
            Ok(0) => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(e) => Err(send_error(e)),
        }
    }

    /// Sets the DS field (`IP_TOS`: DSCP and ECN bits) and the TTL (`IP_TTL`; `None`: the
    /// interface's) of the packets this connection sends, from the next one on (RFC 1122
    /// MUST-48). A listener's connections take them from `TcpConfig::ip_tos`/`ip_ttl`
    /// given to `bind_with`.
    pub fn set_ip_options(&self, cx: &Cx, tos: u8, ttl: Option<u8>) -> Result<(), Error> {
        cx.iface()
            .tcp(self.0)
            .is_some_and(|mut sk| sk.set_ip_options(tos, ttl))
            .then_some(())
            .ok_or(Error::InvalidHandle)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, cx: &Cx, nodelay: bool) -> Result<(), Error> {
        cx.iface()
            .tcp(self.0)
            .is_some_and(|mut sk| sk.set_nodelay(nodelay))
            .then_some(())
            .ok_or(Error::InvalidHandle)
    }

    /// Turns keepalive on with these parameters, or off.
    pub fn set_keepalive(&self, cx: &Cx, keepalive: Option<sluice_net::Keepalive>) -> Result<(), Error> {
        cx.iface()
            .tcp(self.0)
            .is_some_and(|mut sk| sk.set_keepalive(keepalive))
            .then_some(())
            .ok_or(Error::InvalidHandle)
    }

    /// Sends FIN after the queued data (half-close); reading continues.
    pub fn shutdown(&self, cx: &Cx) {
        if let Some(mut sk) = cx.iface().tcp(self.0) {
            sk.shutdown();
        }
    }
    /// Closes both directions; the connection finishes in the background and its handle
    /// becomes invalid.
    pub fn close(self, cx: &Cx) {
        if let Some(mut sk) = cx.iface().tcp(self.0) {
            sk.close();
        }
    }
    /// Resets the connection (RST).
    pub fn abort(self, cx: &Cx) {
        if let Some(mut sk) = cx.iface().tcp(self.0) {
            sk.abort();
        }
    }
    /// The connection's TCP state: `SynSent` while a `connect` is under way, `Closed` after
    /// a failure (see `error`) and for a handle whose connection is gone.
    pub fn state(&self, cx: &Cx) -> TcpState {
        cx.iface()
            .tcp_status(self.0)
            .map_or(sluice_net::TcpState::Closed, |t| t.state())
    }
    /// Whether the state is `Established`: handshake done, no FIN sent or received yet.
    /// After the peer's FIN it is `CloseWait`, where writing still works.
    pub fn is_established(&self, cx: &Cx) -> bool {
        cx.iface()
            .tcp_status(self.0)
            .map_or(sluice_net::TcpState::Closed, |t| t.state())
            == TcpState::Established
    }
    /// The error that ended the connection, if any.
    pub fn error(&self, cx: &Cx) -> Option<Error> {
        cx.iface()
            .tcp_status(self.0)
            .and_then(|t| t.error())
            .map(Error::from)
    }
    /// The remote address and port; `None` once the connection is gone.
    pub fn peer(&self, cx: &Cx) -> Option<Endpoint> {
        cx.iface().tcp_status(self.0).map(|t| t.remote())
    }
    /// The local port; `None` once the connection is gone.
    pub fn local_port(&self, cx: &Cx) -> Option<u16> {
        cx.iface().tcp_status(self.0).map(|t| t.local_port())
    }
    /// Bytes queued and not yet acknowledged by the peer.
    pub fn unacked(&self, cx: &Cx) -> usize {
        cx.iface().tcp_status(self.0).map_or(0, |t| t.tcb().send_queue())
    }
}

fn send_error(e: TcpSendError) -> Error {
    match e {
        TcpSendError::InvalidHandle => Error::InvalidHandle,
        TcpSendError::Connection(e) => Error::from(e),
        _ => Error::InvalidState,
    }
}

/// A UDP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpSocket(pub UdpHandle);

impl UdpSocket {
    /// Binds `port` (0: an ephemeral one).
    pub fn bind(cx: &Cx, port: u16) -> Result<UdpSocket, Error> {
        cx.iface()
            .udp_bind(port)
            .map(UdpSocket)
            .map_err(|_| Error::AddrInUse)
    }
    /// Sends to and receives from `peer` only.
    pub fn connect(&self, cx: &Cx, peer: impl Into<Endpoint>) -> Result<(), Error> {
        cx.iface()
            .udp(self.0)
            .ok_or(sluice_net::UdpConnectError::InvalidHandle)
            .and_then(|mut sk| sk.connect(peer.into()))
            .map_err(|_| Error::InvalidAddress)
    }
    /// Queues `data` as one datagram to `to`; it leaves at the end of the round. Errors:
    /// `WouldBlock` the send queue is full, `TooLarge` the datagram does not fit the MTU
    /// (Sluice does not fragment), `InvalidAddress` `to` is not unicast or broadcast, has
    /// port 0 or has no route, `InvalidHandle` the socket is closed.
    pub fn send_to(&self, cx: &Cx, data: &[u8], to: impl Into<Endpoint>) -> Result<(), Error> {
        cx.iface()
            .udp(self.0)
            .ok_or(sluice_net::UdpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send_to(data, to.into()))
            .map_err(udp_send_error)
    }
    /// As `send_to`, to the peer given to `connect`; `InvalidAddress` if the socket is
    /// not connected.
    pub fn send(&self, cx: &Cx, data: &[u8]) -> Result<(), Error> {
        cx.iface()
            .udp(self.0)
            .ok_or(sluice_net::UdpSendError::InvalidHandle)
            .and_then(|mut sk| sk.send(data))
            .map_err(udp_send_error)
    }
    /// Takes the oldest received datagram: copies what fits into `buf` (the rest of a
    /// longer datagram is discarded) and returns the bytes copied and the sender.
    /// `WouldBlock` when none is queued, `InvalidHandle` for a closed socket.
    pub fn recv_from(&self, cx: &Cx, buf: &mut [u8]) -> Result<(usize, Endpoint), Error> {
        cx.iface()
            .udp(self.0)
            .ok_or(sluice_net::UdpRecvError::InvalidHandle)
            .and_then(|mut sk| sk.recv_from(buf))
            .map_err(|e| match e {
                UdpRecvError::InvalidHandle => Error::InvalidHandle,
                _ => Error::WouldBlock,
            })
    }
    /// Closes the socket and frees its port; datagrams still queued are discarded.
    pub fn close(self, cx: &Cx) {
        if let Some(sk) = cx.iface().udp(self.0) {
            sk.close();
        }
    }
}

fn udp_send_error(e: UdpSendError) -> Error {
    match e {
        UdpSendError::InvalidHandle => Error::InvalidHandle,
        UdpSendError::QueueFull => Error::WouldBlock,
        UdpSendError::TooLarge => Error::TooLarge,
        _ => Error::InvalidAddress,
    }
}

/// What a `Poller` watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A listener: readable when a connection waits for `accept`.
    Listener(TcpListener),
    /// A connection: readable with data, the end of stream or an error; writable with room
    /// in the send buffer.
    Stream(TcpStream),
    /// A UDP socket: readable with a datagram queued; writable with room in its send queue.
    Udp(UdpSocket),
}

/// A readiness event: the socket registered under `token` can make progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The token the socket was registered under.
    pub token: u64,
    /// Data, a connection to accept, or the end of stream is there.
    pub readable: bool,
    /// There is room in the send buffer.
    pub writable: bool,
    /// The connection is closed or failed (read gives the end or the error).
    pub closed: bool,
}

impl Source {
    pub(crate) fn of(r: ReadySocket) -> Source {
        match r {
            ReadySocket::Tcp(h) => Source::Stream(TcpStream(h)),
            ReadySocket::Listener(h) => Source::Listener(TcpListener(h)),
            ReadySocket::Udp(h) => Source::Udp(UdpSocket(h)),
        }
    }

    /// Whether it is readable, writable (asked with `want_w`), closed.
    fn readiness(self, iface: &Interface, want_w: bool) -> (bool, bool, bool) {
        match self {
            Source::Listener(l) => (iface.tcp_listener_pending(l.0) > 0, false, false),
            Source::Stream(s) => {
                let st = iface
                    .tcp_status(s.0)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state());
                let closed = matches!(st, TcpState::Closed | TcpState::TimeWait)
                    || iface.tcp_status(s.0).and_then(|t| t.error()).is_some();
                let eof = matches!(st, TcpState::CloseWait | TcpState::LastAck | TcpState::Closing);
                (
                    iface.tcp_status(s.0).is_some_and(|t| t.can_recv()) || eof || closed,
                    want_w && iface.tcp_status(s.0).is_some_and(|t| t.can_send()),
                    closed,
                )
            }
            Source::Udp(u) => (
                iface.udp_status(u.0).is_some_and(|u| u.can_recv()),
                want_w && iface.udp_status(u.0).is_some_and(|u| u.can_send()),
                false,
            ),
        }
    }
}

#[derive(Debug)]
struct Watch {
    token: u64,
    source: Source,
    writable: bool,
    /// The poll that last looked at it.
    looked: u64,
}

/// An epoll-like interest list, level-triggered: `poll` reports every registered socket
/// that is ready.
///
/// It does not scan: each poll looks at the sockets the interface recorded as changed
/// since the last (`Interface::ready_since`), those that were ready at the last poll (they
/// may still be), and those registered since. So a poll costs what changed, however many
/// idle sockets are registered; only a poller that skipped rounds (or is new) looks at
/// all of them once. Register and deregister are O(1).
#[derive(Debug, Default)]
pub struct Poller {
    watches: Vec<Watch>,
    by_token: HashMap<u64, usize>,
    by_source: HashMap<Source, usize>,
    cursor: ReadyCursor,
    /// Tokens to look at in the next poll.
    recheck: Vec<u64>,
    /// Scratch for the tokens of one poll.
    todo: Vec<u64>,
    polls: u64,
    visited: usize,
}

impl Poller {
    /// An empty interest list. A poller reads its core's interface: keep one per core.
    pub fn new() -> Poller {
        Poller::default()
    }
    /// Watches `source` under `token`; `writable` asks for writability too. A token or a
    /// source registered before is replaced.
    pub fn register(&mut self, token: u64, source: Source, writable: bool) {
        self.deregister(token);
        if let Some(&i) = self.by_source.get(&source) {
            let old = self.watches[i].token;
            self.deregister(old);
        }
        self.by_token.insert(token, self.watches.len());
        self.by_source.insert(source, self.watches.len());
        self.watches.push(Watch {
            token,
            source,
            writable,
            looked: 0,
        });
        self.recheck.push(token);
    }
    /// Stops watching what is registered under `token` (an unknown token is ignored). The
    /// socket stays open.
    pub fn deregister(&mut self, token: u64) {
        let Some(i) = self.by_token.remove(&token) else {
            return;
        };
        let w = self.watches.swap_remove(i);
        self.by_source.remove(&w.source);
        if let Some(moved) = self.watches.get(i) {
            self.by_token.insert(moved.token, i);
            self.by_source.insert(moved.source, i);
        }
    }
    /// How many sockets are registered.
    pub fn len(&self) -> usize {
        self.watches.len()
    }
    /// Whether no socket is registered.
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }
    /// Sockets the last `poll` looked at (what it cost: the changed and the ready ones).
    pub fn visited(&self) -> usize {
        self.visited
    }
    /// Appends the ready sockets' events to `out`; returns how many.
    pub fn poll(&mut self, cx: &Cx, out: &mut Vec<Event>) -> usize {
        let before = out.len();
        self.polls += 1;
        let mut todo = std::mem::take(&mut self.todo);
        todo.clear();
        todo.append(&mut self.recheck);
        let mut iface = cx.iface();
        match iface.ready_since(&mut self.cursor) {
            Ready::Missed => todo.extend(self.watches.iter().map(|w| w.token)),
            Ready::Changed(changed) => {
                for &r in changed {
                    if let Some(&i) = self.by_source.get(&Source::of(r)) {
                        todo.push(self.watches[i].token);
                    }
                }
            }
        }
        self.visited = 0;
        for &token in &todo {
            let Some(&i) = self.by_token.get(&token) else {
                continue; // deregistered since
            };
            let w = &mut self.watches[i];
            if w.looked == self.polls {
                continue;
            }
            w.looked = self.polls;
            self.visited += 1;
            let (readable, writable, closed) = w.source.readiness(&iface, w.writable);
            if readable || writable || closed {
                out.push(Event {
                    token,
                    readable,
                    writable,
                    closed,
                });
                self.recheck.push(token);
            }
        }
        self.todo = todo;
        out.len() - before
    }
}
