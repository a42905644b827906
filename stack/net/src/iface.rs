//! The interface: one IPv4 address on one Ethernet device queue, polled to completion.
//!
//! `poll` receives a burst, runs each frame through Ethernet, ARP or IPv4 and on to ICMP,
//! UDP or TCP, lets the ARP timers and the sockets send, and transmits in bursts. Replies
//! are built in the device's buffers: payload first, then each header prepended in the
//! headroom. The receive and transmit `Vec`s are kept between polls, so a steady-state
//! poll allocates nothing.

use core::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use sluice_tcp::MemBudget;

use sluice_dev::{Device, FrameMut, PacketBuf};
use sluice_tcp::TcpConfig;
use sluice_wire::ipv6::{self, Ipv6Address, Ipv6Packet, Ipv6Repr};
use sluice_wire::{
    Error, EtherType, EthernetAddress, Icmpv4DstUnreachable, Instant, IpAddress, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr,
};

use crate::config::{checksum_caps_for, InterfaceConfig};
pub use crate::egress::CaptureSink;
use crate::egress::{Egress, Io, ETH_LEN};
use crate::endpoint::Endpoint;
use crate::flow::FlowKey;
use crate::icmp::Quoted;
use crate::ipv6::V6Input;
use crate::ready::{Ready, ReadyCursor, ReadyList};
use crate::reasm::{FragKey, Fragment, Outcome as ReasmOutcome, Reassembly};
use crate::stats::{DropReason, Stats};
use crate::tcp::{
    Families, ListenerHandle, TcpConnInfo, TcpConnectError, TcpHandle, TcpListenError, TcpSocket, TcpSockets,
    TcpStatus,
};
use crate::udp::{BindError, UdpHandle, UdpSocket, UdpSockets, UdpStatus};

/// The receive and transmit vectors of one buffer type, kept between polls, and the
/// frames held for the device while its ring is full.
struct Batch<B> {
    rx: Vec<B>,
    tx: Vec<B>,
    held: VecDeque<B>,
}

/// An IP host on one Ethernet device queue: ARP and neighbour discovery, ICMP, and UDP
/// and TCP sockets.
///
/// It is made of parts that own their work: the link side (`Egress`: addresses, next
/// hops, neighbour caches, output, counters), the TCP and UDP tables, reassembly, and the
/// ready list. This file only routes between them: a received frame goes to the part it
/// is for, and each part sends through the `Egress` it is handed.
///
/// Not tied to a device type: `poll` takes any `Device`. Per-core state, not `Send`.
pub struct Interface {
    pub(crate) eg: Egress,
    pub(crate) udp: UdpSockets,
    pub(crate) tcp: TcpSockets,
    /// The sockets whose readiness changed, for the consumers to read.
    pub(crate) ready: ReadyList,
    /// IPv4 and IPv6 datagrams being reassembled from fragments.
    pub(crate) reasm: Reassembly,
    /// A `Batch<D::Buf>` for the device type last polled.
    batch: Option<Box<dyn Any>>,
    /// Where `alloc_tx_frame` takes buffers from (the device's pool); the heap if unset.
    frame_alloc: Option<Box<dyn FnMut() -> Option<FrameMut>>>,
}

impl Interface {
    /// An interface with the address and options of `config` and the Ethernet address
    /// `mac` (the device's: `EthernetAddress(dev.mac())`).
    pub fn new(config: InterfaceConfig, mac: EthernetAddress) -> Interface {
        let (lo, hi) = config.ephemeral_ports;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        let start = lo + (crate::tcp::keyed_hash(&config.isn_key, b"ephemeral") % span) as u16;
        let budget = MemBudget::new(config.mem_budget, config.mem_budget_total.clone());
        let mut tcp = TcpSockets::new(budget, start);
        if let Some(key) = &config.rss_key {
            let seed = u64::from(crate::tcp::keyed_hash(&config.isn_key, b"flow-lo"))
                | u64::from(crate::tcp::keyed_hash(&config.isn_key, b"flow-hi")) << 32;
            tcp.flows = crate::flow::FlowTable::with_rss(key, config.address.address(), seed);
        }
        Interface {
            udp: UdpSockets::new(start),
            tcp,
            ready: ReadyList::default(),
            reasm: Reassembly::default(),
            eg: Egress::new(config, mac),
            batch: None,
            frame_alloc: None,
        }
    }

    /// The memory budget of this interface's connection buffers: bytes used, the peak,
    /// the limit, refusals (`sluice_tcp::budget`).
    pub fn mem_budget(&self) -> &Arc<MemBudget> {
        &self.tcp.budget
    }

    /// Sets where `alloc_tx_frame` takes buffers from: the device's buffer pool, so that
    /// frames the application fills can be sent by reference.
    pub fn set_frame_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<FrameMut>>) {
        self.frame_alloc = Some(alloc);
    }

    /// Zero-copy send: a buffer for the application to fill and queue with
    /// `TcpSocket::send_frame`. From the device's pool when one was set
    /// (`set_frame_alloc`; `None` when it is exhausted), else from the heap, of one MSS.
    pub fn alloc_tx_frame(&mut self) -> Option<FrameMut> {
        match &mut self.frame_alloc {
            Some(f) => f(),
            None => Some(FrameMut::with_capacity(usize::from(self.eg.cfg.tcp.mss))),
        }
    }

    /// Copies every frame received and sent to `sink` from now on (`None`: stops).
    pub fn set_capture(&mut self, sink: Option<Box<dyn CaptureSink>>) {
        self.eg.capture = sink;
    }

    /// The configuration.
    pub fn config(&self) -> &InterfaceConfig {
        &self.eg.cfg
    }

    /// Our IPv4 address.
    pub fn address(&self) -> Ipv4Address {
        self.eg.address()
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> EthernetAddress {
        self.eg.mac
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.eg.stats
    }

    /// Device buffers the connections' receive buffers hold now (zero-copy receive; bounded
    /// by `InterfaceConfig::rx_frames_limit`).
    pub fn rx_frames_held(&self) -> usize {
        self.tcp.rx_frames_held
    }

    /// The flow table's counters (use of the NIC's RSS hash).
    pub fn flow_stats(&self) -> crate::flow::FlowStats {
        self.tcp.flows.stats()
    }

    /// The sockets whose readiness may have changed since `cursor` last read (connections,
    /// listeners, UDP sockets; see `ReadySocket`), or `Ready::Missed` when some were lost
    /// to it (a new cursor, or one that skipped a round): then it must look at every
    /// socket it watches. Moves `cursor` past what it returns.
    pub fn ready_since(&mut self, cursor: &mut ReadyCursor) -> Ready<'_> {
        self.ready.read(cursor)
    }

    /// Datagrams being reassembled (either family), and the buffer bytes they hold (at
    /// most 64 datagrams and 1 MiB).
    pub fn reassembly_held(&self) -> (usize, usize) {
        (self.reasm.len(), self.reasm.bytes())
    }

    /// Entries in the ready list now (what no consumer has read, and what the furthest
    /// consumer read in this round).
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The Ethernet address cached for `ip`, if resolved and fresh at `now`.
    pub fn neighbor(&self, now: Instant, ip: Ipv4Address) -> Option<EthernetAddress> {
        self.eg.arp.peek(now, ip)
    }

    /// The IPv6 neighbour `ip`'s Ethernet address, if known (for tests and tools).
    pub fn neighbor_v6(&self, now: Instant, ip: Ipv6Address) -> Option<EthernetAddress> {
        self.eg.nd.peek(now, ip)
    }

    /// The interface's IPv6 addresses: its link-local one first. Those duplicate address
    /// detection found on another node are left out.
    pub fn ipv6_addresses(&self) -> impl Iterator<Item = Ipv6Address> + '_ {
        self.eg.ipv6_addresses()
    }

    /// The default IPv6 router: the configured one, else the one advertised, while its
    /// lifetime lasts.
    pub fn ipv6_router(&self) -> Option<Ipv6Address> {
        self.eg.ipv6_router()
    }

    /// Our address towards `dst` (IPv4: the interface's, routable or not; IPv6:
    /// link-local or configured), `None` when `dst` cannot be reached.
    pub fn source_for(&self, dst: IpAddress) -> Option<IpAddress> {
        self.eg.source_for(dst)
    }

    // ---- TCP: the table's calls here, one connection's through its view (`tcp`).

    /// Connection `h`, for the application's calls (`TcpSocket`); `None` once the
    /// interface removed it (a stale handle).
    #[inline]
    pub fn tcp(&mut self, h: TcpHandle) -> Option<TcpSocket<'_>> {
        self.tcp.socket(h, self.eg.now)
    }

    /// Starts fetching connection `h`'s state into the caches, without waiting and without
    /// reading it (`h` may be stale). An application that visits many connections in turn
    /// (with thousands, each a handful of cache misses) calls this a few visits ahead, then
    /// `tcp_prefetch_buffers` once the state is on its way, so that the misses overlap.
    #[inline]
    pub fn tcp_prefetch(&self, h: TcpHandle) {
        self.tcp.prefetch_one(h.0);
    }

    /// Starts fetching the lines of connection `h`'s buffers that its next read and write
    /// touch. It reads the connection's state: call `tcp_prefetch` some time before.
    #[inline]
    pub fn tcp_prefetch_buffers(&self, h: TcpHandle) {
        self.tcp.prefetch_buffers(h.0);
    }

    /// Connection `h`'s status through a shared borrow (state, addresses, the TCB's
    /// counters, RTT, window...); `None` once the interface removed it.
    #[inline]
    pub fn tcp_status(&self, h: TcpHandle) -> Option<TcpStatus<'_>> {
        self.tcp.status(h)
    }

    /// Listens on `port`: SYNs create connections (at most `backlog` half-open and
    /// `backlog` waiting for `tcp_accept`).
    pub fn tcp_listen(&mut self, port: u16, backlog: usize) -> Result<ListenerHandle, TcpListenError> {
        let cfg = crate::tcp::tcp_config_for(&self.eg, false);
        self.tcp_listen_with(port, backlog, cfg)
    }

    /// As `tcp_listen`, with the TCP settings (buffers, Nagle, keepalive, congestion
    /// control...) of the connections it accepts; the MSS is capped to the interface's MTU.
    pub fn tcp_listen_with(
        &mut self,
        port: u16,
        backlog: usize,
        cfg: TcpConfig,
    ) -> Result<ListenerHandle, TcpListenError> {
        self.tcp_listen_families(port, backlog, cfg, Families::Both)
    }

    /// As `tcp_listen_with`, for clients of `families` only: a SYN from another family is
    /// answered as if nobody listened (RST), as Linux answers an AF_INET listener's port
    /// over IPv6. A port takes one listener per family: an IPv4-only and an IPv6-only one
    /// can share it (an AF_INET socket and an IPV6_V6ONLY one, as nginx's `listen 80;
    /// listen [::]:80;`).
    pub fn tcp_listen_families(
        &mut self,
        port: u16,
        backlog: usize,
        cfg: TcpConfig,
        families: Families,
    ) -> Result<ListenerHandle, TcpListenError> {
        self.tcp.listen(&self.eg, port, backlog, cfg, families)
    }

    /// Stops listening; connections not yet accepted are aborted. False if stale.
    pub fn tcp_unlisten(&mut self, l: ListenerHandle) -> bool {
        self.tcp.unlisten(l)
    }

    /// The next established connection of the listener, oldest first.
    pub fn tcp_accept(&mut self, l: ListenerHandle) -> Option<TcpHandle> {
        self.tcp.accept(&mut self.eg, l)
    }

    /// Connections of the listener waiting for `tcp_accept`.
    pub fn tcp_listener_pending(&self, l: ListenerHandle) -> usize {
        self.tcp.listener_pending(l)
    }

    /// Caps the connections listener `l` may have at once (accepted or not, until they
    /// are removed); SYNs beyond it are dropped and counted (`DropReason::ConnLimit`).
    /// False if the handle is stale.
    pub fn tcp_listener_set_limit(&mut self, l: ListenerHandle, max: usize) -> bool {
        self.tcp.listener_set_limit(l, max)
    }

    /// Opens a connection to `addr:port` from an ephemeral port; the SYN leaves at the
    /// next `poll`. The ISN uses the time of the last poll.
    pub fn tcp_connect(
        &mut self,
        addr: impl Into<IpAddress>,
        port: u16,
    ) -> Result<TcpHandle, TcpConnectError> {
        self.tcp.connect(&mut self.eg, addr.into(), port, None)
    }

    /// Opens a connection to `addr:port` from the given local port (chosen by the caller,
    /// for example so that the reply's RSS hash lands on this core).
    pub fn tcp_connect_from(
        &mut self,
        addr: impl Into<IpAddress>,
        port: u16,
        local_port: u16,
    ) -> Result<TcpHandle, TcpConnectError> {
        self.tcp
            .connect(&mut self.eg, addr.into(), port, Some(local_port))
    }

    /// Whether `local_port` is free for a connection to `addr:port`: no listener on it
    /// and no connection with the same 4-tuple.
    pub fn tcp_port_free(&self, addr: impl Into<IpAddress>, port: u16, local_port: u16) -> bool {
        self.tcp.port_free(&self.eg, addr.into(), port, local_port)
    }

    /// Live connections (including those not yet accepted or closing).
    pub fn tcp_connections(&self) -> usize {
        self.tcp.len()
    }

    /// Connections by state (indexed by `TcpState::index`), kept as states change: O(1).
    pub fn tcp_state_counts(&self) -> [usize; 11] {
        self.tcp.state_counts()
    }

    /// Connections in TIME-WAIT now.
    pub fn tcp_time_wait(&self) -> usize {
        self.tcp.time_wait()
    }

    /// One row per connection (as `ss -ti` shows), `skip` rows in, at most `take`; returns
    /// how many connections there are in all. For telemetry and the C API.
    pub fn tcp_conn_infos(&self, skip: usize, take: usize, out: &mut Vec<TcpConnInfo>) -> usize {
        self.tcp.conn_infos(skip, take, out)
    }

    // ---- UDP.

    /// Opens a UDP socket on `port` (0: an ephemeral port).
    pub fn udp_bind(&mut self, port: u16) -> Result<UdpHandle, BindError> {
        self.udp.bind(&self.eg.cfg, port)
    }

    /// Socket `h`, for the application's calls (`UdpSocket`); `None` if the handle is
    /// stale (the socket was closed).
    #[inline]
    pub fn udp(&mut self, h: UdpHandle) -> Option<UdpSocket<'_>> {
        self.udp.socket(&self.eg, h)
    }

    /// Socket `h`'s status through a shared borrow (queues, addresses); `None` if the
    /// handle is stale.
    #[inline]
    pub fn udp_status(&self, h: UdpHandle) -> Option<UdpStatus<'_>> {
        self.udp.status(h)
    }

    /// Receives and handles one burst, runs the timers, and sends whatever the sockets and
    /// ARP want to send. Returns whether anything was received or sent; call again while
    /// it does, then sleep until `poll_at`.
    pub fn poll<D: Device>(&mut self, now: Instant, dev: &mut D) -> bool
    where
        D::Buf: 'static,
    {
        self.poll_inner(now, dev, true)
    }

    /// Sends what the sockets and timers want to send, without receiving: for the end of a
    /// round in which the application queued data after `poll` (no second rx burst).
    pub fn transmit<D: Device>(&mut self, now: Instant, dev: &mut D) -> bool
    where
        D::Buf: 'static,
    {
        self.poll_inner(now, dev, false)
    }

    fn poll_inner<D: Device>(&mut self, now: Instant, dev: &mut D, receive: bool) -> bool
    where
        D::Buf: 'static,
    {
        let eg = &mut self.eg;
        eg.now = eg.now.max(now);
        let dcaps = dev.caps();
        eg.caps = eg.cfg.checksum.unwrap_or_else(|| checksum_caps_for(&dcaps));
        eg.tx_offload = dcaps.tx_checksum || dcaps.tx_ip_checksum;
        eg.mtu = eg.cfg.mtu.min(dcaps.mtu);
        let burst = dcaps.max_burst.max(1);
        let rx_offload = dcaps.rx_checksum && eg.cfg.checksum.is_none();

        let mut batch = self.batch.take();
        if !matches!(batch.as_ref(), Some(b) if b.is::<Batch<D::Buf>>()) {
            batch = Some(Box::new(Batch::<D::Buf> {
                rx: Vec::with_capacity(burst),
                tx: Vec::with_capacity(2 * burst),
                held: VecDeque::new(),
            }));
        }
        let Some(b) = batch.as_mut().and_then(|b| b.downcast_mut::<Batch<D::Buf>>()) else {
            return false;
        };
        let mut rx = core::mem::take(&mut b.rx);
        let mut tx = core::mem::take(&mut b.tx);
        // Borrowed, not taken: putting an emptied deque back would drop the empty one,
        // a few dozen instructions per poll.
        let held = &mut b.held;

        let tx_before = self.eg.stats.tx_packets + self.eg.stats.drops.total();
        // Frames held for a full ring waited long (with thousands of connections, a round
        // trip): those the device takes next are fetched while this poll receives.
        if !held.is_empty() {
            for b in held.iter().take(burst) {
                b.prefetch();
            }
        }
        if receive {
            self.ready.trim();
        }
        // Receive coalescing works within one burst.
        self.tcp.gro = None;
        let received = if receive {
            dev.rx_burst(now, &mut rx, burst)
        } else {
            0
        };
        let mut io = Io {
            now,
            dev,
            tx: &mut tx,
            held,
            hold: self.tcp.len().min(self.eg.cfg.tx_queue_limit).max(burst),
            burst,
            rx_offload,
            tx_chain: dcaps.tx_chain,
            tso: dcaps.tso,
        };
        if rx.len() > 1 && self.tcp.prefetch_pays() {
            self.prefetch(&rx);
        }
        for buf in rx.drain(..) {
            self.eg.capture_rx(&buf);
            self.process_frame(&mut io, buf);
        }
        if self.reasm.len() > 0 {
            for _ in 0..self.reasm.expire(now) {
                self.eg.drop(DropReason::ReassemblyTimeout);
            }
        }
        self.eg.arp_timers(&mut io);
        self.eg.nd_timers(&mut io);
        self.udp.dispatch(&mut self.eg, &mut io, &mut self.ready);
        self.tcp.dispatch(&mut self.eg, &mut io, &mut self.ready);
        self.eg.flush(&mut io);
        let did = received > 0 || self.eg.stats.tx_packets + self.eg.stats.drops.total() != tx_before;

        b.rx = rx;
        b.tx = tx;
        self.batch = batch;
        did
    }

    /// When `poll` next has work without new input: the earliest socket or neighbour
    /// timer. A time at or before now means "poll again now".
    pub fn poll_at(&self) -> Option<Instant> {
        if self.eg.held > 0 {
            return Some(Instant::ZERO); // frames wait for room in the device's ring
        }
        [
            self.eg.arp.poll_at(),
            self.eg.nd.poll_at(),
            self.udp.poll_at(),
            self.tcp.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Looks ahead at a received burst: the connections of its IPv4 TCP segments start
    /// on their way to the caches (`TcpSockets::prefetch`) before it is processed.
    pub(crate) fn prefetch<B: PacketBuf>(&mut self, rx: &[B]) {
        let eg = &self.eg;
        let flows = rx
            .iter()
            .filter_map(|b| Some((tcp_flow_v4(eg, b.data())?, b.rss_hash())));
        self.tcp.prefetch(flows);
    }

    /// A received frame, to the part it is for.
    fn process_frame<D: Device>(&mut self, io: &mut Io<'_, D>, buf: D::Buf) {
        let Some((ethertype, src)) = self.eg.link_input(io, &buf) else {
            return;
        };
        match ethertype {
            EtherType::Arp => self.eg.arp_input(io, src, &buf.data()[ETH_LEN..]),
            EtherType::Ipv4 => self.process_ipv4(io, buf),
            EtherType::Ipv6 => self.process_ipv6(io, src, buf, false),
            _ => self.eg.drop(DropReason::UnknownEthertype),
        }
    }

    fn process_ipv4<D: Device>(&mut self, io: &mut Io<'_, D>, buf: D::Buf) {
        let data = &buf.data()[ETH_LEN..];
        let packet = Ipv4Packet::new_unchecked(data);
        let ip = match Ipv4Repr::parse(&packet, &self.eg.caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return self.eg.drop(DropReason::Checksum),
            Err(Error::Fragmented) => return self.process_fragment(io, buf),
            Err(_) => return self.eg.drop(DropReason::BadIpv4),
        };
        let start = ETH_LEN + packet.header_len();
        let l4 = start..start + ip.payload_len;
        let ours = self.eg.address();
        let broadcast = ip.dst_addr.is_broadcast() || Some(ip.dst_addr) == self.eg.cfg.address.broadcast();
        if ip.dst_addr != ours && !broadcast {
            return self.eg.drop(DropReason::NotForUs);
        }
        if self.eg.martian(ip.src_addr) {
            return self.eg.drop(DropReason::MartianSource);
        }
        match ip.protocol {
            IpProtocol::Icmp => {
                if let Some(q) = self.eg.icmp_input(io, buf, ip, l4, broadcast) {
                    self.deliver(q);
                }
            }
            IpProtocol::Udp => self.udp.process(
                &mut self.eg,
                io,
                &mut self.ready,
                &buf,
                (ip.src_addr.into(), ip.dst_addr.into()),
                l4,
                (broadcast, Some(ip)),
            ),
            IpProtocol::Tcp if broadcast => self.eg.drop(DropReason::NotForUs),
            IpProtocol::Tcp => self.tcp.process(
                &mut self.eg,
                io,
                &mut self.ready,
                buf,
                (ip.src_addr.into(), ip.dst_addr.into()),
                l4,
            ),
            IpProtocol::Unknown(_) => {
                self.eg.drop(DropReason::UnknownProtocol);
                if !broadcast {
                    self.eg.send_unreachable(
                        io,
                        Icmpv4DstUnreachable::ProtoUnreachable,
                        &ip,
                        &buf.data()[l4],
                    );
                }
            }
        }
    }

    /// A fragment (its header was checked by `Ipv4Repr::parse`): held for reassembly, and
    /// when it completes a datagram, that datagram goes through `process_ipv4` as if it
    /// had arrived whole, in a buffer of the device (so at most one buffer's worth: the
    /// MSS Sluice advertises keeps TCP within it). Fragments of broadcasts are dropped.
    fn process_fragment<D: Device>(&mut self, io: &mut Io<'_, D>, buf: D::Buf) {
        let data = &buf.data()[ETH_LEN..];
        let p = Ipv4Packet::new_unchecked(data);
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if dst != self.eg.address() {
            return self.eg.drop(
                if dst.is_broadcast() || Some(dst) == self.eg.cfg.address.broadcast() {
                    DropReason::Fragment
                } else {
                    DropReason::NotForUs
                },
            );
        }
        if self.eg.martian(src) {
            return self.eg.drop(DropReason::MartianSource);
        }
        let hl = p.header_len();
        let total = usize::from(p.total_len()).min(data.len());
        let key = FragKey {
            src: src.into(),
            dst: dst.into(),
            protocol: p.protocol(),
            ident: p.ident().into(),
        };
        let frag = Fragment {
            offset: usize::from(p.frag_offset()),
            more: p.more_frags(),
            payload: &data[hl..total],
            header: &data[..hl],
        };
        let outcome = self.reasm.add(io.now, key, frag);
        if let Some(whole) = self.reassembled(io, &buf, outcome) {
            drop(buf);
            self.process_ipv4(io, whole);
        }
    }

    /// What became of a fragment (of either family) that arrived in `buf`: a drop counted,
    /// or the whole datagram in a new device buffer behind `buf`'s Ethernet header.
    pub(crate) fn reassembled<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        buf: &D::Buf,
        outcome: ReasmOutcome,
    ) -> Option<D::Buf> {
        let packet = match outcome {
            ReasmOutcome::Held => return None,
            ReasmOutcome::Invalid => {
                self.eg.drop(DropReason::Fragment);
                return None;
            }
            ReasmOutcome::Overlap => {
                self.eg.drop(DropReason::FragmentOverlap);
                return None;
            }
            ReasmOutcome::Full => {
                self.eg.drop(DropReason::ReassemblyFull);
                return None;
            }
            ReasmOutcome::Complete(packet) => packet,
        };
        let Some(mut whole) = io.dev.alloc() else {
            self.eg.drop(DropReason::NoBuffer);
            return None;
        };
        let eth = &buf.data()[..ETH_LEN];
        match whole.append(ETH_LEN + packet.len()) {
            Some(b) => {
                b[..ETH_LEN].copy_from_slice(eth);
                b[ETH_LEN..].copy_from_slice(&packet);
            }
            // Larger than one of the device's buffers.
            None => {
                self.eg.drop(DropReason::Fragment);
                return None;
            }
        }
        // No NIC looked at this datagram whole: its checksums are checked here.
        whole.forget_rx_checksum();
        self.eg.stats.reassembled += 1;
        Some(whole)
    }

    /// An IPv6 packet in `buf` (from Ethernet address `from`; `reassembled` from
    /// fragments), to the part it is for.
    fn process_ipv6<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        from: EthernetAddress,
        buf: D::Buf,
        reassembled: bool,
    ) {
        match self.eg.ipv6_input(io, from, &buf, reassembled) {
            V6Input::Done => {}
            V6Input::Fragment(ip, f) => self.process_fragment_v6(io, from, &ip, f, buf),
            V6Input::Tcp(addrs, l4) => self
                .tcp
                .process(&mut self.eg, io, &mut self.ready, buf, addrs, l4),
            V6Input::Udp(addrs, l4) => {
                self.udp
                    .process(&mut self.eg, io, &mut self.ready, &buf, addrs, l4, (false, None))
            }
            V6Input::Error(q) => self.deliver(q),
        }
    }

    /// A fragment (RFC 8200 4.5): held for reassembly (the same bounded table as IPv4's,
    /// overlaps discarding the datagram as RFC 5722 says), and when it completes a
    /// datagram, that datagram goes through `process_ipv6` as if it had arrived whole, in
    /// one device buffer.
    fn process_fragment_v6<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        from: EthernetAddress,
        ip: &Ipv6Repr,
        f: ipv6::FragmentHeader,
        buf: D::Buf,
    ) {
        if ip.dst_addr.is_multicast() || !ip.src_addr.is_unicast() {
            return self.eg.drop(DropReason::Fragment);
        }
        let payload = &buf.data()[ETH_LEN + ipv6::HEADER_LEN..ETH_LEN + ipv6::HEADER_LEN + ip.payload_len];
        let Some(data) = payload.get(f.data_start..) else {
            return self.eg.drop(DropReason::Fragment);
        };
        // The upper layer's protocol: the fragment header's next header.
        let next = IpProtocol::from(payload[f.data_start - 8]);
        let mut header = [0u8; ipv6::HEADER_LEN];
        Ipv6Repr {
            next_header: next,
            payload_len: 0,
            ..*ip
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut header[..]));
        // RFC 8200 4.5: a datagram is its source, destination and identification (the
        // upper layer is the first fragment's); the key's protocol is the fragment header's.
        let key = FragKey {
            src: ip.src_addr.into(),
            dst: ip.dst_addr.into(),
            protocol: IpProtocol::Unknown(44),
            ident: f.ident,
        };
        let frag = Fragment {
            offset: usize::from(f.offset),
            more: f.more,
            payload: data,
            header: &header,
        };
        let outcome = self.reasm.add(io.now, key, frag);
        if let Some(whole) = self.reassembled(io, &buf, outcome) {
            drop(buf);
            self.process_ipv6(io, from, whole, true);
        }
    }

    /// Hands an ICMP error (either family) to the socket it names.
    fn deliver(&mut self, q: Quoted) {
        let delivered = match q {
            Quoted::Tcp {
                local,
                remote,
                seq,
                err,
            } => self
                .tcp
                .icmp_error(&self.eg, self.eg.now, (local, remote), seq, err),
            Quoted::Udp {
                local_port,
                remote,
                err,
            } => self.udp.icmp_error(&mut self.ready, local_port, remote, err),
        };
        if delivered {
            self.eg.stats.icmp.errors_delivered += 1;
        } else {
            self.eg.drop(DropReason::IcmpIgnored);
        }
    }
}

/// The flow of an IPv4 TCP segment in `frame`, read from the few header fields it needs
/// and checked for nothing else (the look ahead at a burst; the frame is processed in full
/// later). `None` for anything else, or too short.
fn tcp_flow_v4(eg: &Egress, frame: &[u8]) -> Option<FlowKey> {
    let ip = frame.get(ETH_LEN..ETH_LEN + 20)?;
    if frame[12..14] != [0x08, 0x00] || ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let l4 = ETH_LEN + usize::from(ip[0] & 0x0f) * 4;
    let ports = frame.get(l4..l4 + 4)?;
    let (src, dst) = (
        Ipv4Address::from_bytes(&ip[12..16]),
        Ipv4Address::from_bytes(&ip[16..20]),
    );
    Some(FlowKey {
        local_port: u16::from_be_bytes([ports[2], ports[3]]),
        local: eg.local_index(IpAddress::V4(dst)),
        remote: Endpoint::new(IpAddress::V4(src), u16::from_be_bytes([ports[0], ports[1]])),
    })
}
