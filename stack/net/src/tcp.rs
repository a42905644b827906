//! TCP socket glue: the 4-tuple table, listeners, ISNs (RFC 6528), and segment I/O for
//! the sans-I/O TCBs of `sluice-tcp`.
//!
//! A received segment goes to the TCB of its 4-tuple, else to the listener of its port,
//! else it is answered with a RST (RFC 9293 3.10.7.1). After every event the TCB's
//! output is drained at once (`poll_transmit`), each segment built in a device buffer:
//! payload appended from the send buffer, TCP/IPv4/Ethernet headers prepended.
//!
//! Ownership: a connection from `tcp_connect` or `tcp_accept` belongs to the application
//! until it calls `tcp_close` or `tcp_abort`; then the interface removes it once it is
//! CLOSED. A connection that a listener spawned and nobody accepted yet belongs to the
//! listener and is removed when it closes.

use crate::wheel::TimerWheel;
use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::HashMap;
use sluice_dev::{Device, Frame, PacketBuf};
use sluice_tcp::{
    rst_for, ConfigCache, ConnError, ListenOutcome, ListenReply, Listener, MemBudget, State, Tcb, TcpConfig,
};
use sluice_wire::{
    checksum, tcp as wtcp, ChecksumCaps, Error, Instant, IpAddress, IpProtocol, SeqNumber, TcpFlags,
    TcpPacket, TcpRepr,
};

use crate::config::IsnKey;
use crate::egress::{Egress, Io};
use crate::endpoint::Endpoint;
use crate::endpoint::{first_candidate, pick_port};
use crate::flow::{FlowKey, FlowTable};
pub use crate::ready::{ListenerHandle, TcpHandle};
use crate::ready::{ReadyList, ReadySocket};
use crate::slab::{Key, Slab};
use crate::stats::DropReason;

/// A secret derived from the ISN key (`sluice_tcp::keyed`), truncated to 32 bits.
pub(crate) fn keyed_hash(key: &IsnKey, data: &[u8]) -> u32 {
    sluice_tcp::keyed::keyed_hash(&key.0, data) as u32
}

/// The initial sequence number of a connection (RFC 6528, `sluice_tcp::keyed::isn`).
pub(crate) fn isn(key: &IsnKey, local: Endpoint, remote: Endpoint, now: Instant) -> SeqNumber {
    sluice_tcp::keyed::isn(
        &key.0,
        (local.addr.as_bytes(), local.port),
        (remote.addr.as_bytes(), remote.port),
        now,
    )
}

/// What `Interface::tcp_conn_infos` reports of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConnInfo {
    pub handle: TcpHandle,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub state: State,
    /// Smoothed RTT and its variation (RFC 6298), microseconds; 0 before a sample.
    pub srtt_us: u64,
    pub rttvar_us: u64,
    /// The retransmission timeout now (backoff included), milliseconds.
    pub rto_ms: u64,
    pub mss: usize,
    /// Congestion window and slow-start threshold, bytes.
    pub cwnd: usize,
    pub ssthresh: usize,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: usize,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Bytes queued to send (unsent and unacknowledged) and received but unread.
    pub send_queue: usize,
    pub recv_queue: usize,
    /// Owned by the application (false: still in a listener's queue).
    pub accepted: bool,
}

/// Why `tcp_listen` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpListenError {
    /// Port 0 cannot be listened on.
    InvalidPort,
    /// Another listener has the port.
    InUse,
}

/// Why `tcp_connect` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpConnectError {
    /// The remote address is not a unicast address (or is the subnet broadcast address,
    /// or ours), or the port is 0.
    Unaddressable,
    /// The remote address is off-link and there is no gateway.
    NoRoute,
    /// Every ephemeral port is in use towards this remote endpoint.
    NoEphemeralPort,
    /// `tcp_connect_from`: the local port is listened on, or already connected to this
    /// remote endpoint.
    PortInUse,
    /// The memory budget is exhausted (`InterfaceConfig::mem_budget`): no new connection
    /// until buffers are freed.
    NoBuffers,
}

/// Why `tcp_send` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpSendError {
    /// The handle does not name a live connection.
    InvalidHandle,
    /// The connection is not open for sending (CLOSED).
    InvalidState,
    /// The write side was shut down.
    Closing,
    /// The connection failed.
    Connection(ConnError),
}

/// Why `tcp_recv` returned no data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpRecvError {
    /// The handle does not name a live connection.
    InvalidHandle,
    /// No data can arrive in this state.
    InvalidState,
    /// The peer closed its side and everything was read: end of stream.
    Finished,
    /// The connection failed; unread data was discarded.
    Connection(ConnError),
}

/// Connections from which `TcpSockets::prefetch_pays` (about 1 MiB of connection state).
const PREFETCH_FROM: usize = 512;

/// How many connections ahead of the one being visited the pending queue's are fetched
/// (their buffers half as far): far enough for misses to overlap, near enough that the
/// lines are still in the cache when used.
const LOOK_AHEAD: usize = 8;

/// `#[repr(C)]`: its own fields, then the TCB's front; `Conn::HOT` is what a segment of
/// an established connection touches, which `TcpSockets::prefetch` fetches ahead.
#[repr(C)]
struct Conn {
    /// When a released connection stuck in FIN-WAIT-2 is reset.
    orphan_deadline: Option<Instant>,
    /// Its last entry in the ready list. Also where the slab tells a vacant slot from an
    /// occupied one: the 8-byte tag of this `Option<u64>` is the largest niche of all of
    /// `Conn`'s fields, so `Option<Conn>` keeps its discriminant there, in the slot's first
    /// line. (As an 8-byte `Option<NonZeroU64>` it moved the niche to the last 4-byte tag
    /// of the TCB, the D-SACK block's, out of the hot front: every lookup then missed on
    /// a line of its own; found with `valgrind --tool=lackey`.)
    logged: Option<u64>,
    /// Device buffers its receive buffer held when last counted in
    /// `TcpSockets::rx_frames_held`.
    rx_frames: u32,
    remote: Endpoint,
    /// Our address on this connection (for IPv4 the interface's; for IPv6 the one the
    /// peer reached or the one chosen for it).
    local_addr: IpAddress,
    /// The listener that spawned it, while not yet accepted.
    listener: Option<Key>,
    /// The listener that created it (kept after accept, for the listener's cap).
    origin: Option<Key>,
    /// What its readiness depends on, when it was last recorded in the ready list.
    seen: Seen,
    /// Closed or aborted by the application: remove once CLOSED.
    released: bool,
    /// Output may be ready that was not drained yet.
    dirty: bool,
    /// On `TcpSockets::pending` from a received segment (at most once per poll).
    queued: bool,
    /// On `TcpSockets::awaiting_neighbour`.
    awaiting_neighbour: bool,
    /// The state it is counted under in `TcpSockets::state_counts`.
    counted: State,
    /// Last: its front (`Tcb::HOT`) follows the fields above, in the same lines.
    tcb: Tcb,
}

/// The flow table's key of connection `c`.
#[inline]
fn flow_of(eg: &Egress, c: &Conn) -> FlowKey {
    FlowKey {
        local_port: c.tcb.local_port(),
        local: eg.local_index(c.local_addr),
        remote: c.remote,
    }
}

impl Conn {
    /// The bytes at the front of a connection that a segment of an established
    /// connection touches: its own fields and the TCB's front.
    const HOT: usize = core::mem::offset_of!(Conn, tcb) + Tcb::HOT;
}

/// A connection's deadlines, kept apart from it in a dense array by slab index
/// (`TcpSockets::deadlines`): a timer entry that fires stale (the connection's deadline
/// moved later, as a delayed ACK's does once the answer carries the ACK) is told so here,
/// from a few bytes that stay in the cache, instead of from the connection's own lines,
/// which with thousands of connections are a miss apiece (at 10,000 connections in
/// request/response, nearly one stale entry fired per exchange).
#[derive(Clone, Copy, Debug, Default)]
struct Deadlines {
    /// The generation of the slot's connection these are for.
    generation: u32,
    /// The deadline of its entry in the timer wheel, if it has one (the earliest).
    scheduled: Option<Instant>,
    /// Its next deadline, as last computed (`TcpSockets::schedule`).
    next: Option<Instant>,
}

/// What a connection's readiness depends on: data in order or the FIN (RCV.NXT), room
/// freed in the send buffer (SND.UNA), the state (an error closes it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    rcv_nxt: u32,
    snd_una: u32,
    state: Option<State>,
}

impl Conn {
    /// Marks the connection as having work for the next poll; true when it must be put in
    /// the pending list (it is not there yet: the list holds each connection once).
    fn wake(&mut self) -> bool {
        self.dirty = true;
        !core::mem::replace(&mut self.queued, true)
    }

    fn owned_by_app(&self) -> bool {
        self.listener.is_none() && !self.released
    }

    /// Records the connection in the ready list if what its application waits for moved
    /// (data or the FIN arrived, room was freed, the state changed).
    fn note_readiness(&mut self, key: Key, ready: &mut ReadyList) {
        if !self.owned_by_app() {
            return;
        }
        let seen = self.seen_now();
        if seen != self.seen {
            if seen.state != self.seen.state {
                tracing::debug!(
                    local_port = self.tcb.local_port(),
                    remote = %self.remote,
                    state = ?self.tcb.state(),
                    "connection state"
                );
            }
            self.seen = seen;
            ready.push(ReadySocket::Tcp(TcpHandle(key)), &mut self.logged);
        }
    }

    fn seen_now(&self) -> Seen {
        Seen {
            rcv_nxt: self.tcb.rcv_nxt().0,
            snd_una: self.tcb.snd_una().0,
            state: Some(self.tcb.state()),
        }
    }
}

struct ListenSock {
    listener: Listener<Key>,
    /// Its last entry in the ready list.
    logged: Option<u64>,
    /// Connections it created that still exist, and the most it may have.
    conns: usize,
    limit: usize,
}

/// The address families a listener takes clients of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Families {
    Both,
    /// An AF_INET socket's.
    Ipv4Only,
    /// An IPV6_V6ONLY socket's.
    Ipv6Only,
}

impl Families {
    /// Which of a port's two places (IPv4 clients, IPv6 clients) it takes.
    pub fn places(self) -> [bool; 2] {
        match self {
            Families::Both => [true, true],
            Families::Ipv4Only => [true, false],
            Families::Ipv6Only => [false, true],
        }
    }
}

/// The TCP connections and listeners of an interface.
pub(crate) struct TcpSockets {
    conns: Slab<Conn>,
    /// Each connection's deadlines, by slab index (`Deadlines`).
    deadlines: Vec<Deadlines>,
    pub(crate) flows: FlowTable<Key>,
    listeners: Slab<ListenSock>,
    /// Listeners by port: the one taking IPv4 clients and the one taking IPv6 clients
    /// (the same one for a listener of both families).
    ports: HashMap<u16, [Option<Key>; 2]>,
    /// Connections with work since the last poll (an API call opened the window, queued
    /// data, closed...), in the order they got it. May hold duplicates; `Conn::dirty`
    /// tells which still need it. A queue: while the device's ring is full thousands wait
    /// here, and a poll takes from the front what the ring has room for.
    pub(crate) pending: VecDeque<Key>,
    /// Every connection's next timer, with its deadline.
    wheel: TimerWheel<Key>,
    /// Connections whose SYN was dropped while their neighbour was resolved.
    awaiting_neighbour: Vec<Key>,
    /// Neighbours learned (ARP and NDP) when `awaiting_neighbour` was last looked at.
    learned_seen: u64,
    /// Scratch for the keys the wheel fires, kept to avoid allocating per poll.
    due: Vec<(Instant, Key)>,
    /// The configurations the connections opened here share (`ConfigCache`).
    configs: ConfigCache,
    /// Scratch: the connections of a received burst, for its look ahead (`prefetch`).
    lookahead: Vec<Key>,
    /// Scratch: the burst's flows and their hashes, for the same.
    lookahead_flows: Vec<(FlowKey, u64)>,
    /// Device buffers held by all connections' receive buffers (zero-copy receive).
    pub(crate) rx_frames_held: usize,
    /// Connections by state (each counted under `Conn::counted`).
    state_counts: [usize; 11],
    /// The order connections entered TIME-WAIT (may hold keys that left it).
    time_wait_order: VecDeque<Key>,
    /// Receive coalescing: the last in-order data segment of this burst, which the next
    /// one may continue.
    pub(crate) gro: Option<Gro>,
    /// What the connections' buffers are charged to (`InterfaceConfig::mem_budget`).
    pub(crate) budget: Arc<MemBudget>,
    /// Next ephemeral port to try.
    next_ephemeral: u16,
}

/// The header of the last segment a connection took in full in this burst: a segment
/// that continues it (next sequence number, same ACK, window, flags and options, a TSval
/// no older) takes the fast path (`Tcb::on_segment_in_burst`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gro {
    key: Key,
    next_seq: SeqNumber,
    ack: Option<SeqNumber>,
    window: u16,
    timestamp: Option<(u32, u32)>,
}

impl Gro {
    /// What a segment must be to be coalesced at all: data, ACK and maybe PSH, no SACK
    /// blocks, no urgent pointer.
    fn eligible(seg: &TcpRepr) -> bool {
        !seg.payload.is_empty()
            && seg.flags.0 & !TcpFlags::PSH == 0
            && seg.ack.is_some()
            && seg.urgent == 0
            && seg.options.sack.is_empty()
            && seg.options.mss.is_none()
            && seg.options.window_scale.is_none()
            && !seg.options.sack_permitted
    }

    fn of(key: Key, seg: &TcpRepr) -> Option<Gro> {
        Gro::eligible(seg).then(|| Gro {
            key,
            next_seq: seg.seq + seg.payload.len(),
            ack: seg.ack,
            window: seg.window,
            timestamp: seg.options.timestamp,
        })
    }

    /// `seg`, for connection `key`, continues this one.
    fn continued_by(&self, key: Key, seg: &TcpRepr) -> bool {
        key == self.key
            && seg.seq == self.next_seq
            && seg.ack == self.ack
            && seg.window == self.window
            && Gro::eligible(seg)
            && match (self.timestamp, seg.options.timestamp) {
                (None, None) => true,
                (Some((v0, e0)), Some((v1, e1))) => e0 == e1 && v1.wrapping_sub(v0) < 1 << 31,
                _ => false,
            }
    }
}

/// The TCP settings of a connection over IPv6 (`v6`, whose headers take 20 bytes more of
/// the MTU) or IPv4.
pub(crate) fn tcp_config_for(eg: &Egress, v6: bool) -> TcpConfig {
    let mut c = eg.cfg.tcp;
    let ip = if v6 { 60 } else { 40 };
    let mss = eg.mtu.saturating_sub(ip).min(usize::from(u16::MAX)) as u16;
    c.mss = c.mss.min(mss);
    c.gso_segments = c.gso_segments.clamp(1, GSO_MAX as u16);
    c
}

/// Most segments one connection sends per poll before the others get their turn.
const SEGMENTS_PER_POLL: usize = 64;

impl TcpSockets {
    pub(crate) fn new(budget: Arc<MemBudget>, next_ephemeral: u16) -> TcpSockets {
        TcpSockets {
            conns: Slab::default(),
            flows: FlowTable::new(),
            listeners: Slab::default(),
            ports: HashMap::default(),
            pending: VecDeque::new(),
            // 8.192 µs ticks (10 µs rounded down to a power of two nanoseconds), 4096
            // slots: one revolution is 34 ms.
            wheel: TimerWheel::new(Instant::ZERO, core::time::Duration::from_micros(10), 4096),
            awaiting_neighbour: Vec::new(),
            learned_seen: 0,
            due: Vec::new(),
            lookahead: Vec::new(),
            lookahead_flows: Vec::new(),
            deadlines: Vec::new(),
            configs: ConfigCache::default(),
            rx_frames_held: 0,
            state_counts: [0; 11],
            time_wait_order: VecDeque::new(),
            gro: None,
            budget,
            next_ephemeral,
        }
    }

    /// Listens on `port` for clients of `families` (see `Interface::tcp_listen_families`).
    pub(crate) fn listen(
        &mut self,
        eg: &Egress,
        port: u16,
        backlog: usize,
        mut cfg: TcpConfig,
        families: Families,
    ) -> Result<ListenerHandle, TcpListenError> {
        cfg.mss = cfg.mss.min(tcp_config_for(eg, false).mss);
        if port == 0 {
            return Err(TcpListenError::InvalidPort);
        }
        let taken = self.ports.get(&port).copied().unwrap_or([None, None]);
        let wanted = families.places();
        if (0..2).any(|i| wanted[i] && taken[i].is_some()) {
            return Err(TcpListenError::InUse);
        }
        let mut listener = Listener::new(cfg, port, backlog);
        // The cookie secret is derived from the ISN key: secret, and the same on every core.
        listener.enable_syn_cookies(sluice_tcp::keyed::cookie_secret(&eg.cfg.isn_key.0));
        let key = self.listeners.insert(ListenSock {
            listener,
            logged: None,
            conns: 0,
            limit: usize::MAX,
        });
        let places = self.ports.entry(port).or_insert([None, None]);
        for i in 0..2 {
            if wanted[i] {
                places[i] = Some(key);
            }
        }
        Ok(ListenerHandle(key))
    }

    /// Stops listening; connections not yet accepted are aborted. False if stale.
    pub(crate) fn unlisten(&mut self, l: ListenerHandle) -> bool {
        let Some(ls) = self.listeners.remove(l.0) else {
            return false;
        };
        let port = ls.listener.port();
        if let Some(places) = self.ports.get_mut(&port) {
            for p in places.iter_mut() {
                if *p == Some(l.0) {
                    *p = None;
                }
            }
            if places == &[None, None] {
                self.ports.remove(&port);
            }
        }
        for i in 0..self.conns.capacity_index() {
            let Some(key) = self.conns.key_at(i) else {
                continue;
            };
            if let Some(c) = self.conns.get_mut(key) {
                if c.listener == Some(l.0) {
                    c.listener = None;
                    c.released = true;
                    c.tcb.abort();
                    if c.wake() {
                        self.pending.push_back(key);
                    }
                }
            }
        }
        true
    }

    /// The next established connection of the listener, oldest first.
    pub(crate) fn accept(&mut self, eg: &mut Egress, l: ListenerHandle) -> Option<TcpHandle> {
        loop {
            let key = self.listeners.get_mut(l.0)?.listener.accept()?;
            if let Some(c) = self.conns.get_mut(key) {
                c.listener = None;
                eg.stats.tcp.accepted += 1;
                return Some(TcpHandle(key));
            }
        }
    }

    /// Connections of the listener waiting for `accept`.
    pub(crate) fn listener_pending(&self, l: ListenerHandle) -> usize {
        self.listeners
            .get(l.0)
            .map_or(0, |ls| ls.listener.pending_accept())
    }

    /// Caps the connections listener `l` may have at once. False if the handle is stale.
    pub(crate) fn listener_set_limit(&mut self, l: ListenerHandle, max: usize) -> bool {
        match self.listeners.get_mut(l.0) {
            Some(ls) => {
                ls.limit = max;
                true
            }
            None => false,
        }
    }

    /// Opens a connection to `addr:port` from `local_port`, or from an ephemeral port
    /// when it is `None`; the SYN leaves at the next `poll`.
    pub(crate) fn connect(
        &mut self,
        eg: &mut Egress,
        addr: IpAddress,
        port: u16,
        local_port: Option<u16>,
    ) -> Result<TcpHandle, TcpConnectError> {
        let local_addr = check_remote(eg, addr, port)?;
        if self.budget.exhausted() {
            return Err(TcpConnectError::NoBuffers);
        }
        let remote = Endpoint::new(addr, port);
        let local = eg.local_index(local_addr);
        let local_port = match local_port {
            Some(p) if p == 0 || !self.port_free(eg, addr, port, p) => {
                return Err(TcpConnectError::PortInUse)
            }
            Some(p) => p,
            None => {
                let (flows, ports) = (&self.flows, &self.ports);
                let picked = pick_port(&mut self.next_ephemeral, eg.cfg.ephemeral_ports, |p| {
                    ports.contains_key(&p)
                        || flows.contains(&FlowKey {
                            local_port: p,
                            local,
                            remote,
                        })
                })
                .ok_or(TcpConnectError::NoEphemeralPort)?;
                // The next connect most likely goes to the same peer from the next port:
                // start fetching the flow table's line it will look at (last touched when
                // that port's previous connection ended, and out of the caches by now).
                self.flows.prefetch_stored(&FlowKey {
                    local_port: first_candidate(self.next_ephemeral, eg.cfg.ephemeral_ports),
                    local,
                    remote,
                });
                picked
            }
        };
        Ok(self.open(eg, local_addr, remote, local_port))
    }

    /// Whether `local_port` is free for a connection to `addr:port`: no listener on it
    /// and no connection with the same 4-tuple.
    pub(crate) fn port_free(&self, eg: &Egress, addr: IpAddress, port: u16, local_port: u16) -> bool {
        let local = eg.source_for(addr).map_or(0, |a| eg.local_index(a));
        let flow = FlowKey {
            local_port,
            local,
            remote: Endpoint::new(addr, port),
        };
        !self.ports.contains_key(&local_port) && !self.flows.contains(&flow)
    }

    fn open(
        &mut self,
        eg: &mut Egress,
        local_addr: IpAddress,
        remote: Endpoint,
        local_port: u16,
    ) -> TcpHandle {
        let local = Endpoint::new(local_addr, local_port);
        let isn = isn(&eg.cfg.isn_key, local, remote, eg.now);
        let cfg = tcp_config_for(eg, remote.addr.is_ipv6());
        let mut tcb = Tcb::connect(self.configs.get(cfg), local_port, remote.port, isn);
        tcb.set_budget(self.budget.clone());
        let key = self.conns.insert(Conn {
            rx_frames: 0,
            tcb,
            remote,
            local_addr,
            listener: None,
            released: false,
            dirty: true,
            queued: true,
            orphan_deadline: None,
            awaiting_neighbour: false,
            seen: Seen::default(),
            logged: None,
            origin: None,
            counted: State::Closed,
        });
        let local = eg.local_index(local_addr);
        self.flows.insert(
            FlowKey {
                local_port,
                local,
                remote,
            },
            key,
        );
        self.state_counts[State::Closed.index()] += 1;
        self.pending.push_back(key);
        eg.stats.tcp.connected += 1;
        TcpHandle(key)
    }

    /// The view of connection `h` (`now`: the interface's last poll), `None` once it is
    /// removed.
    #[inline]
    pub(crate) fn socket(&mut self, h: TcpHandle, now: Instant) -> Option<TcpSocket<'_>> {
        self.conns.get(h.0)?;
        Some(TcpSocket {
            tcp: self,
            key: h.0,
            now,
        })
    }

    /// The status of connection `h`, `None` once it is removed.
    #[inline]
    pub(crate) fn status(&self, h: TcpHandle) -> Option<TcpStatus<'_>> {
        self.conns.get(h.0).map(|conn| TcpStatus { conn, key: h.0 })
    }

    /// Live connections (including those not yet accepted or closing).
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Connections by state (indexed by `TcpState::index`), kept as states change: O(1).
    pub(crate) fn state_counts(&self) -> [usize; 11] {
        self.state_counts
    }

    /// Connections in TIME-WAIT now.
    pub(crate) fn time_wait(&self) -> usize {
        self.state_counts[State::TimeWait.index()]
    }

    /// One row per connection (as `ss -ti` shows), `skip` rows in, at most `take`; returns
    /// how many connections there are in all.
    pub(crate) fn conn_infos(&self, skip: usize, take: usize, out: &mut Vec<TcpConnInfo>) -> usize {
        for (key, c) in self.conns.iter().skip(skip).take(take) {
            out.push(conn_info(key, c));
        }
        self.conns.len()
    }

    /// Brings `rx_frames_held` up to date with connection `key`'s receive buffer.
    fn count_rx_frames(&mut self, key: Key) {
        if let Some(c) = self.conns.get_mut(key) {
            let now = c.tcb.rx_frames();
            // (A receive buffer holds at most a window of frames: far below 2^32.)
            let now = u32::try_from(now).unwrap_or(u32::MAX);
            self.rx_frames_held = (self.rx_frames_held + now as usize).saturating_sub(c.rx_frames as usize);
            c.rx_frames = now;
        }
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(Instant::ZERO);
        }
        self.wheel.next_expiry()
    }

    /// Starts fetching, without waiting, the connections of a received burst's TCP
    /// segments (`flows`, each with the NIC's hash of its frame), then the lines of their
    /// buffers the segment and its answer touch (read from the connections, on their way
    /// to the caches by then): with thousands of connections the misses of a burst overlap
    /// instead of stalling one by one. Each flow is looked up once.
    pub(crate) fn prefetch(&mut self, flows: impl Iterator<Item = (FlowKey, Option<u32>)>) {
        let mut keys = core::mem::take(&mut self.lookahead);
        keys.clear();
        let mut burst = core::mem::take(&mut self.lookahead_flows);
        burst.clear();
        // The flow table's lines first: the lookups below then wait for them together.
        for (flow, nic_hash) in flows {
            let hash = self.flows.rx_hash(&flow, nic_hash);
            self.flows.prefetch(&flow, hash);
            burst.push((flow, hash));
        }
        for &(flow, hash) in &burst {
            if let Some(key) = self.flows.peek(&flow, hash) {
                self.prefetch_one(key);
                keys.push(key);
            }
        }
        for &key in &keys {
            self.prefetch_buffers(key);
        }
        self.lookahead = keys;
        self.lookahead_flows = burst;
    }

    /// Starts fetching connection `key`'s hot lines (`Conn::HOT`), reading nothing.
    #[inline]
    pub(crate) fn prefetch_one(&self, key: Key) {
        self.conns.prefetch(key, Conn::HOT);
    }

    /// Starts fetching the flow table's line of connection `key` when the timer due now
    /// ends it (TIME-WAIT is over): its removal reads that line.
    #[inline]
    fn prefetch_flow_if_ending(&self, eg: &Egress, key: Key, now: Instant) {
        if let Some(c) = self.conns.get(key) {
            if c.tcb.state() == State::TimeWait && c.tcb.poll_at().is_some_and(|t| t <= now) {
                self.flows.prefetch_stored(&flow_of(eg, c));
            }
        }
    }

    /// Starts fetching the lines of connection `key`'s buffers its next segment touches.
    #[inline]
    pub(crate) fn prefetch_buffers(&self, key: Key) {
        if let Some(c) = self.conns.get(key) {
            c.tcb.prefetch_buffers();
        }
    }

    /// Whether looking ahead at a burst pays: with this many connections they no longer
    /// fit in a core's own cache (at 256, measured, the look ahead only cost).
    #[inline]
    pub(crate) fn prefetch_pays(&self) -> bool {
        self.conns.len() >= PREFETCH_FROM
    }

    /// A TCP segment in `buf` (from `src` to `dst`, at `l4` in the frame): to its
    /// connection, else to the listener of its port, else answered with a RST.
    pub(crate) fn process<D: Device>(
        &mut self,
        eg: &mut Egress,
        io: &mut Io<'_, D>,
        ready: &mut ReadyList,
        buf: D::Buf,
        (src, dst): (IpAddress, IpAddress),
        l4: core::ops::Range<usize>,
    ) {
        let bytes = &buf.data()[l4];
        let caps = eg.caps;
        let seg = match TcpRepr::parse(&TcpPacket::new_unchecked(bytes), src, dst, &caps) {
            Ok(s) => s,
            Err(Error::Checksum) => return eg.drop(DropReason::Checksum),
            Err(_) => return eg.drop(DropReason::BadTcp),
        };
        if seg.src_port == 0 || seg.dst_port == 0 {
            return eg.drop(DropReason::BadTcp);
        }
        eg.stats.tcp.segments_rx += 1;
        let remote = Endpoint::new(src, seg.src_port);
        let flow = FlowKey {
            local_port: seg.dst_port,
            local: eg.local_index(dst),
            remote,
        };
        if let Some(key) = self.flows.get_rx(&flow, buf.rss_hash()) {
            let Some(c) = self.conns.get_mut(key) else {
                return eg.drop(DropReason::NoSocket);
            };
            // Receive coalescing: the in-order continuation of the burst's previous segment
            // of this connection has its text taken alone.
            let continues = matches!(self.gro, Some(g) if g.continued_by(key, &seg));
            let next_gro = Gro::of(key, &seg);
            let end = seg.seq + seg.payload.len();
            // A CLOSED TCB not yet removed answers as if there were none.
            let rst = match c.tcb.state() {
                State::Closed => rst_for(&seg),
                _ => None,
            };
            // Zero-copy receive: the buffer goes along when it can be shared and the
            // interface holds few enough already; the TCB keeps it, narrowed, if it takes
            // the payload in order, in the same call.
            let offer =
                D::Buf::FRAMES && !seg.payload.is_empty() && self.rx_frames_held < eg.cfg.rx_frames_limit;
            let out = if offer {
                let header = header_of(&seg);
                let at = (seg.payload.as_ptr() as usize).wrapping_sub(buf.data().as_ptr() as usize);
                let payload = at..at + seg.payload.len();
                match buf.into_frame() {
                    Ok(frame) => c.tcb.on_segment_frame(io.now, &header, frame, payload, continues),
                    // Not shareable after all: copied.
                    Err(buf) => {
                        let seg = TcpRepr {
                            payload: &buf.data()[payload],
                            ..header
                        };
                        c.tcb.on_segment_in_burst(io.now, &seg, continues)
                    }
                }
            } else {
                c.tcb.on_segment_in_burst(io.now, &seg, continues)
            };
            eg.stats.tcp.gro_coalesced += u64::from(out.coalesced);
            eg.stats.tcp.rx_zero_copy_bytes += out.zero_copy as u64;
            // Only a segment taken in order (nothing dropped, no state change, RCV.NXT at
            // its end) can be continued.
            let in_order = c.tcb.rcv_nxt() == end;
            self.gro = match (out.drop, out.transition, in_order) {
                (None, None, true) => next_gro,
                _ => None,
            };
            // The application hears of it now, not once the connection's output is
            // drained: with the device's ring full that waits, and at 10,000 connections
            // the events of thousands reached the application in one round, which then
            // answered them all at once and filled the ring again (each side idle a third
            // of the time, waiting on the other's wave).
            c.note_readiness(key, ready);
            if out.drop == Some(sluice_tcp::DropReason::Closed) {
                eg.drop(DropReason::TcpRejected);
                if let Some(rst) = rst {
                    send_tcp(eg, io, &rst, dst, remote.addr);
                    eg.stats.tcp.rst_tx += 1;
                }
            }
            if out.zero_copy > 0 || out.transition.is_some() {
                // Frames were queued, or a reset dropped them with the receive buffer.
                self.count_rx_frames(key);
            }
            // What the segment calls for (an ACK, new data the ACK let out) is sent once
            // the whole burst has been taken in: the segments of one flow in a burst get one
            // ACK between them (as GRO gives the kernel), the ACKs of a burst release the
            // sender's data once.
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if out.transmit
                || out.transition.is_some()
                || c.listener.is_some()
                || c.queued
                || c.tcb.is_closed()
            {
                c.dirty = true;
                if !c.queued {
                    c.queued = true;
                    self.pending.push_back(key);
                }
            } else {
                // Nothing to send and nothing else changed (the common case of a request,
                // whose ACK waits for the answer, and of an answer, whose ACK rides on the
                // next request): only its timers moved. A visit of the pending drain
                // would ask `poll_transmit` for nothing.
                self.schedule(io.now, eg.cfg.fin_wait2_timeout, key);
            }
            return;
        }
        let listening = self
            .ports
            .get(&seg.dst_port)
            .and_then(|places| places[usize::from(src.is_ipv6())]);
        if let Some(lkey) = listening {
            // Connection caps: a new SYN beyond the interface's or the listener's is
            // dropped (the peer retries), before any state or cookie is made for it.
            if seg.flags.syn() && seg.ack.is_none() {
                let full = self.conns.len() >= eg.cfg.max_connections
                    || self.listeners.get(lkey).is_some_and(|ls| ls.conns >= ls.limit);
                if full {
                    return eg.drop(DropReason::ConnLimit);
                }
                if self.budget.exhausted() {
                    return eg.drop(DropReason::MemBudget);
                }
            }
            let key = self.conns.next_key();
            let local = Endpoint::new(dst, seg.dst_port);
            let isn = isn(&eg.cfg.isn_key, local, remote, io.now);
            // SYN cookies answer for the listener when its backlog is full (RFC 4987).
            let addrs = match (dst, src) {
                (IpAddress::V4(l), IpAddress::V4(r)) => (u64::from(l.to_u32()) << 32) | u64::from(r.to_u32()),
                (l, r) => {
                    let mut both = [0u8; 32];
                    both[..16].copy_from_slice(l.as_bytes());
                    both[16..].copy_from_slice(r.as_bytes());
                    sluice_tcp::keyed::keyed_hash(&eg.cfg.isn_key.0, &both)
                }
            };
            // Over IPv6 the headers take 20 bytes more: the SYN-ACK offers a smaller MSS.
            let mss = tcp_config_for(eg, dst.is_ipv6()).mss;
            let Some(ls) = self.listeners.get_mut(lkey) else {
                return eg.drop(DropReason::NoSocket);
            };
            let outcome = match ls.listener.on_segment_capped(io.now, &seg, addrs, isn, key, mss) {
                ListenReply::Outcome(o) => o,
                ListenReply::SynCookie(synack) => {
                    eg.stats.tcp.syn_cookies_tx += 1;
                    send_tcp(eg, io, &synack, dst, remote.addr);
                    return;
                }
            };
            match outcome {
                ListenOutcome::Accepted(mut tcb) => {
                    tcb.set_budget(self.budget.clone());
                    let k = self.conns.insert(Conn {
                        rx_frames: 0,
                        tcb,
                        remote,
                        local_addr: dst,
                        listener: Some(lkey),
                        released: false,
                        dirty: true,
                        queued: false,
                        orphan_deadline: None,
                        awaiting_neighbour: false,
                        seen: Seen::default(),
                        logged: None,
                        origin: Some(lkey),
                        counted: State::Closed,
                    });
                    if let Some(ls) = self.listeners.get_mut(lkey) {
                        ls.conns += 1;
                    }
                    debug_assert_eq!(k, key);
                    self.state_counts[State::Closed.index()] += 1;
                    self.flows.insert(flow, k);
                    self.after_event(eg, io, ready, k);
                }
                ListenOutcome::Reset(rst) => {
                    eg.drop(DropReason::TcpRejected);
                    send_tcp(eg, io, &rst, dst, remote.addr);
                    eg.stats.tcp.rst_tx += 1;
                }
                ListenOutcome::Dropped(sluice_tcp::ListenError::SynFin) => eg.drop(DropReason::SynFin),
                ListenOutcome::Ignored | ListenOutcome::Dropped(_) => eg.drop(DropReason::TcpRejected),
            }
            return;
        }
        // RFC 9293 3.10.7.1: no connection, no listener.
        eg.drop(DropReason::NoSocket);
        if let Some(rst) = rst_for(&seg) {
            send_tcp(eg, io, &rst, dst, remote.addr);
            eg.stats.tcp.rst_tx += 1;
        }
    }

    /// After an event on connection `key`: tell its listener about the state, send what
    /// it wants to send, and remove it if it is closed and nobody owns it.
    fn after_event<D: Device>(
        &mut self,
        eg: &mut Egress,
        io: &mut Io<'_, D>,
        ready: &mut ReadyList,
        key: Key,
    ) {
        let Some(c) = self.conns.get(key) else {
            return;
        };
        if let Some(l) = c.listener {
            let state = c.tcb.state();
            match self.listeners.get_mut(l) {
                Some(ls) => {
                    let before = ls.listener.pending_accept();
                    ls.listener.update(key, state);
                    if ls.listener.pending_accept() > before {
                        tracing::debug!(
                            local_port = ls.listener.port(),
                            remote = %c.remote,
                            "connection established, to accept"
                        );
                        ready.push(ReadySocket::Listener(ListenerHandle(l)), &mut ls.logged);
                    }
                }
                None => {
                    if let Some(c) = self.conns.get_mut(key) {
                        c.listener = None;
                        c.released = true;
                    }
                }
            }
        }
        self.drain_output(eg, io, key);
        self.schedule(io.now, eg.cfg.fin_wait2_timeout, key);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.note_readiness(key, ready);
        let state = c.tcb.state();
        if state != c.counted {
            let was = core::mem::replace(&mut c.counted, state);
            self.state_counts[was.index()] -= 1;
            self.state_counts[state.index()] += 1;
            if state == State::TimeWait {
                self.time_wait_order.push_back(key);
                self.recycle_time_wait(eg);
            }
        }
        let Some(c) = self.conns.get(key) else {
            return;
        };
        if c.tcb.is_closed() && !c.owned_by_app() {
            self.remove_conn(eg, key);
        }
    }

    /// Removes connection `key` from the tables, with what it counted.
    fn remove_conn(&mut self, eg: &Egress, key: Key) {
        // Read in place, then dropped in place (not copied out of the slab: 2 KiB).
        let Some((rx_frames, counted, origin, flow)) = self.conns.remove_with(key, |c| {
            tracing::debug!(
                local_port = c.tcb.local_port(),
                remote = %c.remote,
                error = ?c.tcb.error(),
                retransmits = c.tcb.counters().retransmits,
                "connection removed"
            );
            (c.rx_frames, c.counted, c.origin, flow_of(eg, c))
        }) else {
            return;
        };
        if let Some(d) = self.deadlines.get_mut(key.index as usize) {
            *d = Deadlines::default(); // its wheel entries fire stale, untouched
        }
        self.rx_frames_held = self.rx_frames_held.saturating_sub(rx_frames as usize);
        self.state_counts[counted.index()] -= 1;
        if let Some(ls) = origin.and_then(|l| self.listeners.get_mut(l)) {
            ls.conns = ls.conns.saturating_sub(1);
        }
        self.flows.remove_if(&flow, key);
    }

    /// Keeps TIME-WAIT under `max_time_wait`: removes the oldest connections in it that
    /// the application released (as Linux's `tcp_max_tw_buckets`).
    fn recycle_time_wait(&mut self, eg: &mut Egress) {
        while self.time_wait() > eg.cfg.max_time_wait {
            let Some(old) = self.time_wait_order.pop_front() else {
                break;
            };
            match self.conns.get(old) {
                Some(c) if c.counted == State::TimeWait && !c.owned_by_app() => {
                    self.remove_conn(eg, old);
                    eg.stats.tcp.time_wait_recycled += 1;
                }
                // Left TIME-WAIT, or held by the application: not ours to end.
                _ => {}
            }
        }
        // Keys of connections that left TIME-WAIT are dropped from the front as they
        // come up; bound what is left behind by them.
        if self.time_wait_order.len() > 2 * self.time_wait() + 64 {
            let conns = &self.conns;
            self.time_wait_order
                .retain(|&k| conns.get(k).is_some_and(|c| c.counted == State::TimeWait));
        }
    }

    /// Sends up to `SEGMENTS_PER_POLL` segments of connection `key`, counting its
    /// retransmissions.
    fn drain_output<D: Device>(&mut self, eg: &mut Egress, io: &mut Io<'_, D>, key: Key) {
        let unqueued = eg.stats.drops.get(DropReason::ArpQueueFull);
        self.drain_segments(eg, io, key);
        if let Some(c) = self.conns.get_mut(key) {
            eg.stats.tcp.retransmits += c.tcb.take_retransmits();
            // Its SYN was dropped here, waiting for the neighbour with too many others (a
            // burst of connects to a new neighbour): it goes again once the neighbour is
            // known (`resend_syns`), not a second later.
            if eg.stats.drops.get(DropReason::ArpQueueFull) != unqueued
                && c.tcb.state() == State::SynSent
                && !c.awaiting_neighbour
            {
                c.awaiting_neighbour = true;
                self.awaiting_neighbour.push(key);
            }
        }
    }

    /// Sends again the SYNs dropped while their neighbour was being resolved, for those
    /// whose neighbour is now known. Runs when a neighbour was learned since the last time.
    fn resend_syns<D: Device>(&mut self, eg: &mut Egress, io: &mut Io<'_, D>, ready: &mut ReadyList) {
        let learned = eg.stats.arp.learned + eg.stats.nd.learned;
        if self.awaiting_neighbour.is_empty() || learned == self.learned_seen {
            return;
        }
        self.learned_seen = learned;
        let waiting = core::mem::take(&mut self.awaiting_neighbour);
        for &key in &waiting {
            let Some(c) = self.conns.get_mut(key) else {
                continue; // removed since
            };
            if c.tcb.state() != State::SynSent {
                c.awaiting_neighbour = false;
            } else if !eg.neighbour_known(c.remote.addr) {
                self.awaiting_neighbour.push(key);
            } else {
                c.awaiting_neighbour = false;
                c.tcb.resend_syn();
                c.dirty = true;
                self.after_event(eg, io, ready, key);
            }
        }
    }

    fn drain_segments<D: Device>(&mut self, eg: &mut Egress, io: &mut Io<'_, D>, key: Key) {
        for _ in 0..SEGMENTS_PER_POLL {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if io.tx_backpressure() {
                // The device's ring is full: try again at the next poll. Marked dirty, or the
                // next poll would pass it over: what a timer made it send (a retransmitted
                // SYN, an RTO's segment) would then wait for its next timer.
                if c.wake() {
                    self.pending.push_back(key);
                }
                return;
            }
            let (src, dst) = (c.local_addr, c.remote.addr);
            let caps = eg.caps;
            let tso = io.tso;
            // The connection's DS field and TTL (IP_TOS, IP_TTL).
            let ipo = (c.tcb.config().ip_tos, c.tcb.config().ip_ttl);
            // Frames are only looked up when there are some: the copying path builds its
            // segments from `poll_transmit`'s payload as it is.
            let by_ref = io.tx_chain && c.tcb.tx_frames() > 0;
            // A device that cuts large segments and chains frames takes segments that span
            // frames whole (TSO by reference).
            let span = by_ref && tso;
            c.tcb.set_span_frames(span);
            // The copying path builds a segment that straddles the send ring's wrap from
            // both parts: segments never depend on where the ring ends.
            c.tcb.set_gather(!by_ref);
            // The wire size a large segment is cut to (what poll_transmit sized it by).
            let gso = c.tcb.seg_payload_max();
            let Some((seg, rest)) = c.tcb.poll_transmit_parts(io.now) else {
                c.dirty = false;
                return;
            };
            let len = seg.payload.len();
            if by_ref && len > 0 {
                // Zero-copy send: the header alone, then the payload by reference. A large
                // segment goes whole to a device that cuts it (TSO), its frames chained;
                // otherwise it is cut here, each piece by reference when it is one frame's.
                let header = header_of(&seg);
                let len = if span { c.tcb.emitted_len() } else { len };
                if len > gso && tso {
                    if let Some(buf) = build_tso_ref(io.dev, &c.tcb, &header, len, gso, src, dst) {
                        eg.stats.tcp.tx_zero_copy_bytes += len as u64;
                        eg.stats.tcp.segments_tx += len.div_ceil(gso) as u64;
                        eg.stats.tcp.tso_frames_tx += 1;
                        eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                        continue;
                    }
                    eg.stats.tcp.tso_fallbacks += 1;
                }
                self.send_by_ref(eg, io, key, (&header, len), gso, &caps);
                continue;
            }
            if !rest.is_empty() {
                // Across the ring's wrap: the payload ends the ring and goes on at its start.
                // A large one goes whole to a device that cuts it (TSO), both parts chained;
                // else each piece is copied from the ring.
                let (header, total) = (header_of(&seg), len + rest.len());
                if total > gso && tso {
                    if let Some(buf) = build_tso(io.dev, &header, [seg.payload, rest], gso, src, dst) {
                        eg.stats.tcp.tx_copied_bytes += total as u64;
                        eg.stats.tcp.segments_tx += total.div_ceil(gso) as u64;
                        eg.stats.tcp.tso_frames_tx += 1;
                        eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                        continue;
                    }
                    eg.stats.tcp.tso_fallbacks += 1;
                }
                self.send_by_ref(eg, io, key, (&header, total), gso, &caps);
                continue;
            }
            if len > gso && tso {
                // A large segment the device cuts (TSO): one frame, the payload chained.
                match build_tso(io.dev, &header_of(&seg), [seg.payload, &[]], gso, src, dst) {
                    Some(buf) => {
                        eg.stats.tcp.tx_copied_bytes += len as u64;
                        eg.stats.tcp.segments_tx += len.div_ceil(gso) as u64;
                        eg.stats.tcp.tso_frames_tx += 1;
                        eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                        continue;
                    }
                    None => eg.stats.tcp.tso_fallbacks += 1,
                }
            }
            if len > gso {
                // A large segment: cut into full-sized ones here (software GSO).
                let mut out: [Option<D::Buf>; GSO_MAX] = core::array::from_fn(|_| None);
                if let Err(reason) = gso_copy(io.dev, &seg, gso, src, dst, &caps, &mut out) {
                    eg.drop(reason);
                }
                for buf in out.into_iter().flatten() {
                    eg.stats.tcp.segments_tx += 1;
                    eg.stats.tcp.gso_segments_tx += 1;
                    eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                }
                eg.stats.tcp.tx_copied_bytes += len as u64;
                continue;
            }
            match build_segment(io.dev, &seg, src, dst, &caps) {
                Ok(buf) => {
                    eg.stats.tcp.tx_copied_bytes += len as u64;
                    eg.stats.tcp.segments_tx += 1;
                    eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                }
                Err(reason) => eg.drop(reason),
            }
        }
    }

    /// Sends a segment of connection `key` whose payload is in its send buffer's frames
    /// (zero-copy send) or across its ring's wrap, cut into full-sized pieces when it is
    /// larger (software GSO): each piece is chained by reference when it lies in one
    /// frame, copied otherwise.
    fn send_by_ref<D: Device>(
        &mut self,
        eg: &mut Egress,
        io: &mut Io<'_, D>,
        key: Key,
        (header, len): (&TcpRepr<'static>, usize),
        gso: usize,
        caps: &ChecksumCaps,
    ) {
        let cut = len > gso;
        let mut off = 0usize;
        while off < len {
            let n = gso.min(len - off);
            let piece = piece_header(header, off, n, len);
            let Some(c) = self.conns.get(key) else {
                return;
            };
            let ipo = (c.tcb.config().ip_tos, c.tcb.config().ip_ttl);
            let (src, dst) = (c.local_addr, c.remote.addr);
            let built = match c.tcb.tx_frame(piece.seq, n) {
                Some((f, range)) => build_segment_ref(io.dev, &piece, f, range, src, dst, caps),
                // Not one frame's: copied, from the ring and the frames it spans.
                None => build_segment_with(
                    io.dev,
                    &piece,
                    n,
                    |out| c.tcb.tx_copy(piece.seq, out) == out.len(),
                    src,
                    dst,
                    caps,
                )
                .map(|b| (b, false)),
            };
            match built {
                Ok((buf, by_ref)) => {
                    if by_ref {
                        eg.stats.tcp.tx_zero_copy_bytes += n as u64;
                    } else {
                        eg.stats.tcp.tx_copied_bytes += n as u64;
                    }
                    eg.stats.tcp.segments_tx += 1;
                    eg.stats.tcp.gso_segments_tx += u64::from(cut);
                    eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, ipo);
                }
                Err(reason) => eg.drop(reason),
            }
            off += n;
        }
    }

    /// Hands an ICMP error (as TCP names it) to the connection it quotes; false if none.
    pub(crate) fn icmp_error(
        &mut self,
        eg: &Egress,
        now: Instant,
        (local, remote): (Endpoint, Endpoint),
        seq: u32,
        e: sluice_tcp::IcmpError,
    ) -> bool {
        let flow = FlowKey {
            local_port: local.port,
            local: eg.local_index(local.addr),
            remote,
        };
        let Some(key) = self.flows.get(&flow) else {
            return false;
        };
        let Some(c) = self.conns.get_mut(key) else {
            return false;
        };
        c.tcb.on_icmp_error(now, e, SeqNumber(seq));
        if c.wake() {
            self.pending.push_back(key);
        }
        true
    }

    /// Makes sure the wheel holds an entry no later than connection `key`'s next deadline
    /// (its TCB's timers, and the FIN-WAIT-2 limit of an orphan). An entry that fires early
    /// is re-inserted at the real deadline then, so a connection whose RTO moves later on
    /// every ACK costs no insertion per ACK.
    fn schedule(&mut self, now: Instant, fin_wait2_timeout: core::time::Duration, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // An orphan in FIN-WAIT-2 waits for the peer's FIN only so long.
        if c.released && c.tcb.state() == State::FinWait2 {
            c.orphan_deadline.get_or_insert(now + fin_wait2_timeout);
        } else {
            c.orphan_deadline = None;
        }
        let next = match (c.tcb.poll_at(), c.orphan_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let i = key.index as usize;
        if i >= self.deadlines.len() {
            self.deadlines.resize(i + 1, Deadlines::default());
        }
        let d = &mut self.deadlines[i];
        if d.generation != key.generation {
            *d = Deadlines {
                generation: key.generation,
                ..Deadlines::default()
            };
        }
        d.next = next;
        if let Some(t) = next {
            if d.scheduled.is_none_or(|s| t < s) {
                d.scheduled = Some(t);
                self.wheel.insert(t, key);
            }
        }
    }

    /// Runs the timers that are due, sends what the connections with pending work want to
    /// send, and removes the closed ones nobody owns. Visits only those connections.
    pub(crate) fn dispatch<D: Device>(&mut self, eg: &mut Egress, io: &mut Io<'_, D>, ready: &mut ReadyList) {
        let now = io.now;
        self.resend_syns(eg, io, ready);
        let mut due = core::mem::take(&mut self.due);
        self.wheel.advance(now, |at, key| due.push((at, key)));
        // First the entries that fire stale, told from the dense deadlines alone; `due`
        // keeps the connections whose timers are due.
        due.retain(|&(at, key)| {
            let Some(d) = self.deadlines.get_mut(key.index as usize) else {
                return false;
            };
            if d.generation != key.generation || d.scheduled != Some(at) {
                // Removed since, or superseded by an earlier entry that fired first.
                eg.stats.tcp.timer_entries_stale += 1;
                return false;
            }
            d.scheduled = None;
            match d.next {
                None => {
                    eg.stats.tcp.timer_entries_stale += 1; // nothing due any more
                    false
                }
                Some(t) if t > now => {
                    // Moved later since this entry went in: in again, the connection untouched.
                    d.scheduled = Some(t);
                    self.wheel.insert(t, key);
                    eg.stats.tcp.timer_entries_stale += 1;
                    false
                }
                Some(_) => true,
            }
        });
        // Then those connections, their lines fetched a few ahead as for a received
        // burst: a client opening connections ends thousands a second in TIME-WAIT, each
        // untouched since it entered it, and its removal also reads its flow table line.
        let ahead = self.prefetch_pays();
        for (i, &(_, key)) in due.iter().enumerate() {
            if ahead {
                if let Some(&(_, far)) = due.get(i + LOOK_AHEAD) {
                    self.prefetch_one(far);
                }
                if let Some(&(_, near)) = due.get(i + LOOK_AHEAD / 2) {
                    self.prefetch_flow_if_ending(eg, near, now);
                }
            }
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            eg.stats.tcp.timer_wakeups += 1;
            if c.tcb.poll_at().is_some_and(|t| t <= now) {
                c.tcb.handle_timeout(now);
            }
            if c.orphan_deadline.is_some_and(|t| t <= now) && c.released && c.tcb.state() == State::FinWait2 {
                c.tcb.abort();
            }
            // Sends what the timer caused, removes it if closed, and reschedules.
            self.after_event(eg, io, ready, key);
        }
        due.clear();
        self.due = due;

        // Those queued before this poll, oldest first; work queued while draining
        // (connections the ring refused) goes to the back and waits for the next poll.
        let ahead = self.prefetch_pays();
        for _ in 0..self.pending.len() {
            if io.tx_backpressure() {
                // The device's ring is full: nothing more can leave in this poll. The
                // connections still queued wait for the next one untouched (still marked
                // `queued`): visiting each of them at every poll only to queue it again
                // cost a cache miss apiece and, with thousands of connections, most of
                // the core, so a full ring fed on itself.
                break;
            }
            let Some(key) = self.pending.pop_front() else {
                break;
            };
            if ahead {
                // Those waiting longest are the coldest: while the ring is full (thousands
                // queued) each was queued a whole round trip ago. Their lines are fetched
                // a few visits ahead, as for a received burst.
                if let Some(&far) = self.pending.get(LOOK_AHEAD - 1) {
                    self.prefetch_one(far);
                }
                if let Some(&near) = self.pending.get(LOOK_AHEAD / 2 - 1) {
                    self.prefetch_buffers(near);
                }
            }
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.owned_by_app() && c.tcb.take_ack_for_app() {
                // Connected, or the peer's FIN: the application hears of it in this round
                // (`note_readiness` on receipt), and its request or FIN carries the ACK.
                // Drained at the next poll, after the application's turn (the ACK then goes
                // alone if nothing answered); still queued and dirty.
                self.pending.push_back(key);
                continue;
            }
            c.queued = false;
            if c.dirty || (c.tcb.is_closed() && !c.owned_by_app()) {
                self.after_event(eg, io, ready, key);
            }
        }
    }
}

/// Checks a remote address for a connection; gives our address towards it.
fn check_remote(eg: &Egress, addr: IpAddress, port: u16) -> Result<IpAddress, TcpConnectError> {
    let addr = match addr {
        IpAddress::V4(a) => a,
        IpAddress::V6(a) => {
            if !a.is_unicast() || port == 0 || a.to_ipv4_mapped().is_some() || eg.is_ours_v6(a) {
                return Err(TcpConnectError::Unaddressable);
            }
            return eg.source_v6(a).map(IpAddress::V6).ok_or(TcpConnectError::NoRoute);
        }
    };
    // RFC 9293 MUST-46: never to a broadcast (also the subnet's), multicast or
    // unspecified address.
    if !addr.is_unicast() || Some(addr) == eg.cfg.address.broadcast() || port == 0 || addr == eg.address() {
        return Err(TcpConnectError::Unaddressable);
    }
    if !eg.routable(addr) {
        return Err(TcpConnectError::NoRoute);
    }
    Ok(IpAddress::V4(eg.address()))
}

/// One TCP connection of an `Interface`, borrowed from it (`Interface::tcp`): what the
/// application does with the connection. Calls that change it queue it for the
/// interface's next poll, which sends what they let out.
///
/// Status (state, error, addresses, the TCB) reads any live connection; the rest needs
/// one the application owns: after `close` or `abort` they fail with `InvalidHandle` (or
/// return false), and once the interface removes the connection `Interface::tcp` gives
/// `None`: a stale handle never names another connection.
pub struct TcpSocket<'a> {
    tcp: &'a mut TcpSockets,
    key: Key,
    /// The interface's last poll (keepalive's start).
    now: Instant,
}

impl TcpSocket<'_> {
    #[inline]
    fn conn(&self) -> &Conn {
        self.tcp
            .conns
            .get(self.key)
            .expect("checked live by Interface::tcp")
    }

    /// The connection, if the application owns it.
    #[inline]
    fn owned(&mut self) -> Option<&mut Conn> {
        self.tcp.conns.get_mut(self.key).filter(|c| c.owned_by_app())
    }

    /// Queues the connection for the next poll (its output, timers or removal may have
    /// changed).
    #[inline]
    fn wake(&mut self) {
        if let Some(c) = self.tcp.conns.get_mut(self.key) {
            if c.wake() {
                self.tcp.pending.push_back(self.key);
            }
        }
    }

    /// Applies `f` to the connection the application owns and queues it for the next
    /// poll. False if it does not own it.
    fn touch(&mut self, f: impl FnOnce(&mut Conn)) -> bool {
        let Some(c) = self.owned() else {
            return false;
        };
        f(c);
        self.wake();
        true
    }

    /// After a read: count the device buffers released and, when bytes were read, send
    /// the window update.
    fn after_read(&mut self, read: bool) {
        self.tcp.count_rx_frames(self.key);
        if read {
            // Reading opened the window.
            self.wake();
        }
    }

    /// The handle of this connection.
    pub fn handle(&self) -> TcpHandle {
        TcpHandle(self.key)
    }

    /// Copies as much of `data` as fits into the send buffer; returns how much (0 when
    /// full). It leaves at the next `poll`.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpSendError> {
        let c = self.owned().ok_or(TcpSendError::InvalidHandle)?;
        let r = c.tcb.send(data).map_err(map_send_error);
        if matches!(r, Ok(n) if n > 0) {
            self.wake();
        }
        r
    }

    /// Copies received bytes into `buf`. `Ok(0)`: nothing yet; `Err(Finished)`: the end.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpRecvError> {
        let c = self.owned().ok_or(TcpRecvError::InvalidHandle)?;
        let r = c.tcb.recv(buf).map_err(map_recv_error);
        self.after_read(matches!(r, Ok(n) if n > 0));
        r
    }

    /// Zero-copy read: the next received bytes as a `Frame` (up to `max` bytes). In-order
    /// payloads come out as the device's own buffer (an mbuf on DPDK); bytes that were
    /// copied on arrival (small or reassembled) as a heap frame. Dropping the frame gives
    /// the buffer back: keep frames briefly, the device's receive pool is finite.
    /// `Ok(None)`: nothing yet; `Err(Finished)`: the end.
    pub fn recv_frame(&mut self, max: usize) -> Result<Option<Frame>, TcpRecvError> {
        let c = self.owned().ok_or(TcpRecvError::InvalidHandle)?;
        let r = c.tcb.recv_frame(max).map_err(map_recv_error);
        self.after_read(matches!(r, Ok(Some(_))));
        r
    }

    /// Zero-copy send: queues `frame` by reference (fill one from
    /// `Interface::alloc_tx_frame` so that the device can chain it). Every transmission
    /// refers to its bytes until the peer acknowledges them. Returns the part that did not
    /// fit, `None` when all was queued.
    pub fn send_frame(&mut self, frame: Frame) -> Result<Option<Frame>, TcpSendError> {
        let c = self.owned().ok_or(TcpSendError::InvalidHandle)?;
        let len = frame.len();
        let r = c.tcb.send_frame(frame).map_err(map_send_error);
        let queued = match &r {
            Ok(rest) => len - rest.as_ref().map_or(0, |f| f.len()),
            Err(_) => 0,
        };
        if queued > 0 {
            self.wake();
        }
        r
    }

    /// Writes in place: `f` fills the free part of the send buffer and returns how many
    /// bytes it wrote (0 when the buffer is full).
    pub fn send_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, TcpSendError> {
        let c = self.owned().ok_or(TcpSendError::InvalidHandle)?;
        let r = c.tcb.send_with(f).map_err(map_send_error);
        if matches!(r, Ok(n) if n > 0) {
            self.wake();
        }
        r
    }

    /// Reads in place: `f` sees the received bytes (the connection's buffer, no copy) and
    /// returns how many it consumed with a result. `Ok(None)`: nothing received yet.
    pub fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> (usize, R)) -> Result<Option<R>, TcpRecvError> {
        let c = self.owned().ok_or(TcpRecvError::InvalidHandle)?;
        let data = c.tcb.recv_slice().map_err(map_recv_error)?;
        if data.is_empty() {
            return Ok(None);
        }
        let (n, r) = f(data);
        let n = n.min(data.len());
        c.tcb.consume(n);
        self.after_read(n > 0);
        Ok(Some(r))
    }

    /// Half-close: a FIN follows the queued data; receiving continues. False if the
    /// application gave the connection up.
    pub fn shutdown(&mut self) -> bool {
        self.touch(|c| c.tcb.shutdown())
    }

    /// Closes the connection (FIN after the queued data; unread data makes it a RST) and
    /// gives up the handle: the interface removes the connection once it is CLOSED.
    pub fn close(&mut self) -> bool {
        self.touch(|c| {
            c.tcb.close();
            c.released = true;
        })
    }

    /// Resets the connection (RST) and gives up the handle.
    pub fn abort(&mut self) -> bool {
        self.touch(|c| {
            c.tcb.abort();
            c.released = true;
        })
    }

    /// What the connection is now: state, error, addresses, the TCB.
    pub fn status(&self) -> TcpStatus<'_> {
        TcpStatus {
            conn: self.conn(),
            key: self.key,
        }
    }

    /// The connection's give-up time (TCP_USER_TIMEOUT). False if given up.
    pub fn set_user_timeout(&mut self, timeout: Option<core::time::Duration>) -> bool {
        self.touch(|c| c.tcb.set_user_timeout(timeout))
    }

    /// SYN retransmissions before an open is given up (TCP_SYNCNT). False if given up.
    pub fn set_syn_retries(&mut self, retries: u32) -> bool {
        self.touch(|c| c.tcb.set_syn_retries(retries))
    }

    /// The connection's congestion controller (TCP_CONGESTION). False if given up.
    pub fn set_congestion(&mut self, kind: sluice_tcp::CongestionKind) -> bool {
        self.touch(|c| c.tcb.set_congestion(kind))
    }

    /// Nagle's algorithm off (`true`) or on (TCP_NODELAY); queued small segments may go
    /// now. False if given up.
    pub fn set_nodelay(&mut self, nodelay: bool) -> bool {
        self.touch(|c| c.tcb.set_nodelay(nodelay))
    }

    /// Keepalive on (with its idle time, interval and probe count) or off (SO_KEEPALIVE).
    /// False if given up.
    pub fn set_keepalive(&mut self, keepalive: Option<sluice_tcp::Keepalive>) -> bool {
        let now = self.now;
        // Its timer changed.
        self.touch(|c| c.tcb.set_keepalive(now, keepalive))
    }

    /// Sets the DS field (`IP_TOS`) and TTL (`IP_TTL`, `None`: the interface's) of the
    /// packets the connection sends from now on. False if given up.
    pub fn set_ip_options(&mut self, tos: u8, ttl: Option<u8>) -> bool {
        match self.owned() {
            Some(c) => {
                c.tcb.set_ip_options(tos, ttl);
                true
            }
            None => false,
        }
    }
}

/// A connection's status, through a shared borrow of the interface
/// (`Interface::tcp_status`, `TcpSocket::status`).
#[derive(Clone, Copy)]
pub struct TcpStatus<'a> {
    conn: &'a Conn,
    key: Key,
}

impl<'a> TcpStatus<'a> {
    /// The connection's state.
    pub fn state(&self) -> State {
        self.conn.tcb.state()
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<ConnError> {
        self.conn.tcb.error()
    }

    /// `recv` would return data (or the end of the stream, or an error).
    pub fn can_recv(&self) -> bool {
        let c = self.conn;
        c.owned_by_app() && (c.tcb.can_recv() || !c.tcb.may_recv())
    }

    /// `send` would take at least one byte.
    pub fn can_send(&self) -> bool {
        let c = self.conn;
        c.owned_by_app() && c.tcb.can_send()
    }

    /// The remote endpoint.
    pub fn remote(&self) -> Endpoint {
        self.conn.remote
    }

    /// Our endpoint: the address the connection uses and the local port.
    pub fn local(&self) -> Endpoint {
        let c = self.conn;
        Endpoint::new(c.local_addr, c.tcb.local_port())
    }

    /// The local port.
    pub fn local_port(&self) -> u16 {
        self.conn.tcb.local_port()
    }

    /// The TCB, for status: counters, RTT, window, congestion state.
    pub fn tcb(&self) -> &'a Tcb {
        &self.conn.tcb
    }

    /// What `Interface::tcp_conn_infos` reports of this connection.
    pub fn info(&self) -> TcpConnInfo {
        conn_info(self.key, self.conn)
    }
}

/// The status row of connection `key`.
fn conn_info(key: Key, c: &Conn) -> TcpConnInfo {
    let t = &c.tcb;
    TcpConnInfo {
        handle: TcpHandle(key),
        local: Endpoint::new(c.local_addr, t.local_port()),
        remote: c.remote,
        state: t.state(),
        srtt_us: t.srtt().map_or(0, |d| d.as_micros() as u64),
        rttvar_us: t.rttvar().as_micros() as u64,
        rto_ms: t.rto().as_millis() as u64,
        mss: t.mss(),
        cwnd: t.cwnd(),
        ssthresh: t.ssthresh(),
        in_flight: t.bytes_in_flight(),
        retransmits: t.counters().retransmits,
        send_queue: t.send_queue(),
        recv_queue: t.recv_queue(),
        accepted: c.listener.is_none(),
    }
}

/// Sends a segment no connection owns (a RST, a SYN cookie's SYN-ACK) from `src`.
fn send_tcp<D: Device>(eg: &mut Egress, io: &mut Io<'_, D>, seg: &TcpRepr, src: IpAddress, dst: IpAddress) {
    let caps = eg.caps;
    match build_segment(io.dev, seg, src, dst, &caps) {
        Ok(buf) => {
            eg.stats.tcp.segments_tx += 1;
            eg.send_ip_any(io, buf, (src, dst), IpProtocol::Tcp, (0, None));
        }
        Err(reason) => eg.drop(reason),
    }
}

fn map_send_error(e: sluice_tcp::SendError) -> TcpSendError {
    match e {
        sluice_tcp::SendError::InvalidState => TcpSendError::InvalidState,
        sluice_tcp::SendError::Closing => TcpSendError::Closing,
        sluice_tcp::SendError::Connection(e) => TcpSendError::Connection(e),
    }
}

fn map_recv_error(e: sluice_tcp::RecvError) -> TcpRecvError {
    match e {
        sluice_tcp::RecvError::InvalidState => TcpRecvError::InvalidState,
        sluice_tcp::RecvError::Finished => TcpRecvError::Finished,
        sluice_tcp::RecvError::Connection(e) => TcpRecvError::Connection(e),
    }
}

/// Builds a segment in a new device buffer: payload appended, header prepended, checksum
/// over both (or the pseudo-header sum for offload).
fn build_segment<D: Device>(
    dev: &mut D,
    seg: &TcpRepr,
    src: IpAddress,
    dst: IpAddress,
    caps: &ChecksumCaps,
) -> Result<D::Buf, DropReason> {
    build_segment_with(
        dev,
        seg,
        seg.payload.len(),
        |out| {
            out.copy_from_slice(seg.payload);
            true
        },
        src,
        dst,
        caps,
    )
}

/// `build_segment` with `len` payload bytes written by `fill` (a copy from wherever they
/// are: one slice, or the send buffer's ring and frames); `fill` says whether it had them
/// all (else nothing is sent: the segment is not built, and TCP sends it again later).
fn build_segment_with<D: Device>(
    dev: &mut D,
    seg: &TcpRepr,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> bool,
    src: IpAddress,
    dst: IpAddress,
    caps: &ChecksumCaps,
) -> Result<D::Buf, DropReason> {
    let mut buf = dev.alloc().ok_or(DropReason::NoBuffer)?;
    if !fill(buf.append(len).ok_or(DropReason::NoBuffer)?) {
        return Err(DropReason::NoBuffer);
    }
    let room = buf.prepend(seg.header_len()).ok_or(DropReason::NoBuffer)?;
    seg.emit_header(room);
    let mut packet = TcpPacket::new_unchecked(buf.data_mut());
    if packet.buffer_len_fits() {
        if caps.tcp.tx() {
            packet.fill_checksum(src, dst);
        } else {
            packet.fill_pseudo_header_checksum(src, dst);
        }
    }
    Ok(buf)
}

/// The header fields of `seg`, without its payload (which borrows the connection).
fn header_of(seg: &TcpRepr) -> TcpRepr<'static> {
    TcpRepr {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        urgent: seg.urgent,
        options: seg.options,
        payload: &[],
    }
}

/// Builds a segment whose payload, `frame[range]`, is sent by reference: the header in a
/// new device buffer, the payload chained to it (`PacketBuf::attach_frame`), the checksum
/// summed over both without copying. Falls back to a copy when the frame cannot be chained;
/// says which it did.
fn build_segment_ref<D: Device>(
    dev: &mut D,
    header: &TcpRepr,
    frame: &Frame,
    range: core::ops::Range<usize>,
    src: IpAddress,
    dst: IpAddress,
    caps: &ChecksumCaps,
) -> Result<(D::Buf, bool), DropReason> {
    let payload = &frame[range.clone()];
    let mut buf = dev.alloc().ok_or(DropReason::NoBuffer)?;
    let room = buf.append(header.header_len()).ok_or(DropReason::NoBuffer)?;
    let header_len = header.emit_header(room);
    let by_ref = buf.attach_frame(frame, range);
    if !by_ref {
        buf.append(payload.len())
            .ok_or(DropReason::NoBuffer)?
            .copy_from_slice(payload);
    }
    let total = header_len + payload.len();
    let Ok(total16) = u16::try_from(total) else {
        return Err(DropReason::TooBig);
    };
    let pseudo = sluice_wire::ip::pseudo_header(src, dst, IpProtocol::Tcp, u32::from(total16));
    let value = if caps.tcp.tx() {
        // The header was emitted with a zero checksum field.
        let sum = checksum::combine(&[
            pseudo,
            checksum::sum(&buf.data()[..header_len]),
            checksum::sum(payload),
        ]);
        !sum
    } else {
        pseudo
    };
    TcpPacket::new_unchecked(&mut buf.data_mut()[..header_len]).set_checksum(value);
    Ok((buf, by_ref))
}

/// Where the flags byte is in a TCP header.
const FLAGS_AT: usize = 13;

/// Most pieces one large segment is cut into (64 KiB of 1,024-byte segments).
pub(crate) const GSO_MAX: usize = 64;

/// The header of the piece of a large segment at `off`, `n` bytes long: its sequence
/// number, and PSH/FIN only on the last piece.
fn piece_header(header: &TcpRepr<'static>, off: usize, n: usize, len: usize) -> TcpRepr<'static> {
    let mut h = *header;
    h.seq = header.seq + off;
    if off + n < len {
        h.flags = TcpFlags(header.flags.0 & !(TcpFlags::PSH | TcpFlags::FIN));
    }
    h
}

/// Software GSO of a large segment whose payload is `seg.payload` (copied): the first piece
/// is built as any segment, the others copy its TCP header and change the sequence number,
/// the flags and the checksum (no option is emitted twice). Pieces go to `out` in order.
fn gso_copy<D: Device>(
    dev: &mut D,
    seg: &TcpRepr,
    gso: usize,
    src: IpAddress,
    dst: IpAddress,
    caps: &ChecksumCaps,
    out: &mut [Option<D::Buf>; GSO_MAX],
) -> Result<(), DropReason> {
    let len = seg.payload.len();
    let header = header_of(seg);
    let hlen = header.header_len();
    let mut template = [0u8; wtcp::MAX_HEADER_LEN];
    let mut off = 0usize;
    let mut i = 0usize;
    while off < len && i < GSO_MAX {
        let n = gso.min(len - off);
        let piece = piece_header(&header, off, n, len);
        let payload = &seg.payload[off..off + n];
        let buf = if i == 0 {
            let buf = build_segment(dev, &TcpRepr { payload, ..piece }, src, dst, caps)?;
            template[..hlen].copy_from_slice(&buf.data()[..hlen]);
            buf
        } else {
            let mut buf = dev.alloc().ok_or(DropReason::NoBuffer)?;
            buf.append(n)
                .ok_or(DropReason::NoBuffer)?
                .copy_from_slice(payload);
            let room = buf.prepend(hlen).ok_or(DropReason::NoBuffer)?;
            room.copy_from_slice(&template[..hlen]);
            let mut packet = TcpPacket::new_unchecked(buf.data_mut());
            packet.set_seq_number(piece.seq);
            if off + n == len {
                // The first piece's flags byte (ACK, no PSH/FIN) with the last one's PSH/FIN.
                let last = header.flags.0 & (TcpFlags::PSH | TcpFlags::FIN);
                packet.set_flags(TcpFlags(template[FLAGS_AT] | last));
            }
            if caps.tcp.tx() {
                packet.fill_checksum(src, dst);
            } else {
                packet.fill_pseudo_header_checksum(src, dst);
            }
            buf
        };
        out[i] = Some(buf);
        off += n;
        i += 1;
    }
    Ok(())
}

/// A large segment as one frame for the device to cut (TSO): the headers in the first
/// buffer, the payload (in one or two parts) copied into buffers chained after it, the TCP checksum field
/// holding the pseudo-header sum without the length (DPDK's convention for TSO). `None`
/// when the device has no buffers or the frame would not fit an IPv4 packet.
fn build_tso<D: Device>(
    dev: &mut D,
    header: &TcpRepr,
    parts: [&[u8]; 2],
    mss: usize,
    src: IpAddress,
    dst: IpAddress,
) -> Option<D::Buf> {
    let (mut buf, hlen) = tso_head(dev, header, parts[0].len() + parts[1].len(), src, dst)?;
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        if !buf.append_chained(part) {
            return None;
        }
    }
    buf.request_tso(u16::try_from(mss).ok()?, hlen as u8);
    Some(buf)
}

/// The first buffer of a TSO frame: the TCP header, whose checksum field holds the
/// pseudo-header sum without the length (the device sums each piece). `None` if the
/// frame would pass 65535 bytes or there is no buffer.
fn tso_head<D: Device>(
    dev: &mut D,
    header: &TcpRepr,
    len: usize,
    src: IpAddress,
    dst: IpAddress,
) -> Option<(D::Buf, usize)> {
    let hlen = header.header_len();
    if sluice_wire::ipv4::HEADER_LEN + hlen + len > usize::from(u16::MAX) {
        return None;
    }
    let mut buf = dev.alloc()?;
    header.emit_header(buf.append(hlen)?);
    TcpPacket::new_unchecked(buf.data_mut()).set_checksum(sluice_wire::ip::pseudo_header(
        src,
        dst,
        IpProtocol::Tcp,
        0,
    ));
    Some((buf, hlen))
}

/// A TSO frame whose payload, `len` bytes of `tcb`'s send buffer from `header.seq`, lies
/// in queued frames (zero-copy send): the header, then each frame's part chained by
/// reference (`PacketBuf::attach_frame`); nothing is copied. `None` when a part is not a
/// frame the device can chain (the caller then cuts the segment into pieces).
fn build_tso_ref<D: Device>(
    dev: &mut D,
    tcb: &Tcb,
    header: &TcpRepr<'static>,
    len: usize,
    mss: usize,
    src: IpAddress,
    dst: IpAddress,
) -> Option<D::Buf> {
    let (mut buf, hlen) = tso_head(dev, header, len, src, dst)?;
    let mut off = 0;
    while off < len {
        // The frame holding this byte, and as much of the rest as it holds (one lookup).
        let (f, at) = tcb.tx_frame(header.seq + off, 1)?;
        let n = (len - off).min(f.len() - at.start);
        if !buf.attach_frame(f, at.start..at.start + n) {
            return None;
        }
        off += n;
    }
    buf.request_tso(u16::try_from(mss).ok()?, hlen as u8);
    Some(buf)
}

trait FitsU16 {
    fn buffer_len_fits(&self) -> bool;
}

impl<T: AsRef<[u8]>> FitsU16 for TcpPacket<T> {
    /// `fill_checksum` panics above 65535 bytes; no frame is that long, but make sure.
    fn buffer_len_fits(&self) -> bool {
        self.check_len().is_ok() && self.payload().len() + wtcp::MAX_HEADER_LEN <= usize::from(u16::MAX)
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    /// What a segment of an established connection touches (`Conn::HOT`: `Conn`'s own
    /// fields and the TCB's front) spans 11 cache lines of its slab slot: each is a miss
    /// per segment at 10,000 connections (12 while the scoreboard's and the reassembly
    /// queue's counts were `usize`s, the retry counts `u32`s, the probe's, the
    /// out-of-order FIN's and the TLP's sequence numbers `Option`s, and the front took
    /// six counters; 15 while windows, recovery's byte counts, the ready list's mark were
    /// wider and the RST to send, recovery's variables and the SACK blocks to report lay
    /// in the front).
    #[test]
    fn a_connections_hot_range_spans_11_lines_of_its_slot() {
        let at = crate::slab::value_offset::<Conn>();
        let (first, end) = (at, at + Conn::HOT);
        let lines = end.div_ceil(64) - first / 64;
        assert!(lines <= 11, "{lines} lines: {first}..{end} of the slot");
    }
}
