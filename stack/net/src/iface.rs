//! The interface: one IPv4 address on one Ethernet device queue, polled to completion.
//!
//! `poll` receives a burst, runs each frame through Ethernet, ARP or IPv4 and on to ICMP,
//! UDP or TCP, lets the ARP timers and the sockets send, and transmits in bursts. Replies
//! are built in the device's buffers: payload first, then each header prepended in the
//! headroom. The receive and transmit `Vec`s are kept between polls, so a steady-state
//! poll allocates nothing.

use core::any::Any;
use std::sync::Arc;

use sluice_tcp::MemBudget;

use sluice_dev::{Device, FrameMut, PacketBuf, TxChecksum, Verdict, L4};
use sluice_wire::{
    arp as warp, ipv4, ArpOp, ArpPacket, ArpRepr, Checksum, ChecksumCaps, Error, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, Icmpv4DstUnreachable, Instant, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr,
};

use crate::arp::{Action, ArpCache, Lookup};
use crate::config::{checksum_caps_for, InterfaceConfig};
use crate::icmp::TokenBucket;
use crate::ready::{Ready, ReadyCursor, ReadyList};
use crate::reasm::{FragKey, Fragment, Outcome as ReasmOutcome, Reassembly};
use crate::stats::{DropReason, Stats};
use crate::tcp::TcpSockets;
use crate::udp::UdpSockets;

pub(crate) const ETH_LEN: usize = sluice_wire::eth::HEADER_LEN;

/// What one poll works with: the time, the device, and the frames to transmit.
pub(crate) struct Io<'a, D: Device> {
    pub(crate) now: Instant,
    pub(crate) dev: &'a mut D,
    pub(crate) tx: &'a mut Vec<D::Buf>,
    pub(crate) burst: usize,
    /// The device reports checksum verdicts on received frames.
    pub(crate) rx_offload: bool,
    /// The device sends chained buffers: payloads can go by reference.
    pub(crate) tx_chain: bool,
    /// The device cuts large TCP segments (TSO).
    pub(crate) tso: bool,
}

/// The receive and transmit vectors of one buffer type, kept between polls.
struct Batch<B> {
    rx: Vec<B>,
    tx: Vec<B>,
}

/// Where an IPv4 packet goes on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NextHop {
    Broadcast,
    Unicast(Ipv4Address),
}

/// An IPv4 host on one Ethernet device queue: ARP, ICMP, and UDP and TCP sockets.
///
/// Not tied to a device type: `poll` takes any `Device`. Per-core state, not `Send`.
pub struct Interface {
    pub(crate) cfg: InterfaceConfig,
    pub(crate) mac: EthernetAddress,
    /// The checksum work of this poll (from the config or the device).
    pub(crate) caps: ChecksumCaps,
    /// The device fills some checksums on transmit (those `caps` does not compute).
    pub(crate) tx_offload: bool,
    /// The largest IP packet of this poll (config and device MTU).
    pub(crate) mtu: usize,
    pub(crate) stats: Stats,
    pub(crate) arp: ArpCache,
    /// IPv6 neighbours (RFC 4861).
    pub(crate) nd: ArpCache<sluice_wire::Ipv6Address>,
    /// Duplicate address detection and the advertised router.
    pub(crate) v6link: crate::ipv6::V6Link,
    pub(crate) icmp_limiter: TokenBucket,
    pub(crate) udp: UdpSockets,
    pub(crate) tcp: TcpSockets,
    /// The sockets whose readiness changed, for the consumers to read.
    pub(crate) ready: ReadyList,
    /// IPv4 datagrams being reassembled from fragments.
    pub(crate) reasm: Reassembly,
    /// What the connections' buffers are charged to (`InterfaceConfig::mem_budget`).
    pub(crate) budget: Arc<MemBudget>,
    /// The last `now` seen, for API calls that need a time (ISNs).
    pub(crate) now: Instant,
    /// Next ephemeral port to try.
    pub(crate) next_ephemeral: u16,
    /// A `Batch<D::Buf>` for the device type last polled.
    batch: Option<Box<dyn Any>>,
    /// Where `alloc_tx_frame` takes buffers from (the device's pool); the heap if unset.
    frame_alloc: Option<Box<dyn FnMut() -> Option<FrameMut>>>,
    /// Where received and sent frames are copied (`--pcap`), if anywhere.
    capture: Option<Box<dyn CaptureSink>>,
    /// Frames at the front of the transmit vector already given to `capture` (refused by
    /// a full ring, they wait there and are not given again).
    tx_captured: usize,
}

/// Receives a copy of every frame the interface receives (`sent` false) and sends
/// (`sent` true, as handed to the device: a TSO frame whole), e.g. a pcap writer.
pub trait CaptureSink {
    fn frame(&mut self, sent: bool, data: &[u8]);
}

impl Interface {
    /// An interface with the address and options of `config` and the Ethernet address
    /// `mac` (the device's: `EthernetAddress(dev.mac())`).
    pub fn new(config: InterfaceConfig, mac: EthernetAddress) -> Interface {
        let arp = ArpCache::new(config.arp, &config.static_arp);
        let nd = ArpCache::new_nd(config.arp, &config.static_nd);
        let icmp_limiter = TokenBucket::new(config.icmp.error_rate, config.icmp.error_burst);
        let caps = config.checksum.unwrap_or_default();
        let (lo, hi) = config.ephemeral_ports;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        let start = lo + (crate::tcp::keyed_hash(&config.isn_key, b"ephemeral") % span) as u16;
        let mut tcp = TcpSockets::default();
        if let Some(key) = &config.rss_key {
            let seed = u64::from(crate::tcp::keyed_hash(&config.isn_key, b"flow-lo"))
                | u64::from(crate::tcp::keyed_hash(&config.isn_key, b"flow-hi")) << 32;
            tcp.flows = crate::flow::FlowTable::with_rss(key, config.address.address(), seed);
        }
        Interface {
            mtu: config.mtu,
            udp: UdpSockets::default(),
            tcp,
            ready: ReadyList::default(),
            reasm: Reassembly::default(),
            budget: MemBudget::new(config.mem_budget, config.mem_budget_total.clone()),
            cfg: config,
            mac,
            caps,
            tx_offload: false,
            stats: Stats::default(),
            arp,
            nd,
            v6link: Default::default(),
            icmp_limiter,
            now: Instant::ZERO,
            next_ephemeral: start,
            batch: None,
            frame_alloc: None,
            capture: None,
            tx_captured: 0,
        }
    }

    /// The memory budget of this interface's connection buffers: bytes used, the peak,
    /// the limit, refusals (`sluice_tcp::budget`).
    pub fn mem_budget(&self) -> &Arc<MemBudget> {
        &self.budget
    }

    /// Sets where `alloc_tx_frame` takes buffers from: the device's buffer pool, so that
    /// frames the application fills can be sent by reference.
    pub fn set_frame_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<FrameMut>>) {
        self.frame_alloc = Some(alloc);
    }

    /// Zero-copy send: a buffer for the application to fill and queue with
    /// `tcp_send_frame`. From the device's pool when one was set (`set_frame_alloc`;
    /// `None` when it is exhausted), else from the heap, of one MSS.
    pub fn alloc_tx_frame(&mut self) -> Option<FrameMut> {
        match &mut self.frame_alloc {
            Some(f) => f(),
            None => Some(FrameMut::with_capacity(usize::from(self.cfg.tcp.mss))),
        }
    }

    /// Copies every frame received and sent to `sink` from now on (`None`: stops).
    pub fn set_capture(&mut self, sink: Option<Box<dyn CaptureSink>>) {
        self.capture = sink;
    }

    /// The configuration.
    pub fn config(&self) -> &InterfaceConfig {
        &self.cfg
    }

    /// Our IPv4 address.
    pub fn address(&self) -> Ipv4Address {
        self.cfg.address.address()
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
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

    /// IPv4 datagrams being reassembled, and the buffer bytes they hold (at most
    /// 64 datagrams and 1 MiB).
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
        self.arp.peek(now, ip)
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
        self.now = self.now.max(now);
        let dcaps = dev.caps();
        self.caps = self.cfg.checksum.unwrap_or_else(|| checksum_caps_for(&dcaps));
        self.tx_offload = dcaps.tx_checksum || dcaps.tx_ip_checksum;
        self.mtu = self.cfg.mtu.min(dcaps.mtu);
        let burst = dcaps.max_burst.max(1);

        let mut batch = self.batch.take();
        if !matches!(batch.as_ref(), Some(b) if b.is::<Batch<D::Buf>>()) {
            batch = Some(Box::new(Batch::<D::Buf> {
                rx: Vec::with_capacity(burst),
                tx: Vec::with_capacity(2 * burst),
            }));
        }
        let Some(b) = batch.as_mut().and_then(|b| b.downcast_mut::<Batch<D::Buf>>()) else {
            return false;
        };
        let mut rx = core::mem::take(&mut b.rx);
        let mut tx = core::mem::take(&mut b.tx);

        let tx_before = self.stats.tx_packets + self.stats.drops.total();
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
        let rx_offload = dcaps.rx_checksum && self.cfg.checksum.is_none();
        let mut io = Io {
            now,
            dev,
            tx: &mut tx,
            burst,
            rx_offload,
            tx_chain: dcaps.tx_chain,
            tso: dcaps.tso,
        };
        for buf in rx.drain(..) {
            if let Some(c) = &mut self.capture {
                capture_frame(c.as_mut(), false, &buf);
            }
            self.process_frame(&mut io, buf);
        }
        if self.reasm.len() > 0 {
            for _ in 0..self.reasm.expire(now) {
                self.drop(DropReason::ReassemblyTimeout);
            }
        }
        self.arp_timers(&mut io);
        self.nd_timers(&mut io);
        self.dispatch_udp(&mut io);
        self.dispatch_tcp(&mut io);
        self.flush(&mut io);
        let did = received > 0 || self.stats.tx_packets + self.stats.drops.total() != tx_before;

        b.rx = rx;
        b.tx = tx;
        self.batch = batch;
        did
    }

    /// When `poll` next has work without new input: the earliest socket or ARP timer.
    /// A time at or before now means "poll again now".
    pub fn poll_at(&self) -> Option<Instant> {
        let udp = self.udp.poll_at();
        let tcp = self.tcp_poll_at();
        [self.arp.poll_at(), self.nd.poll_at(), udp, tcp]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.stats.drops.add(reason);
        tracing::trace!(%reason, "drop");
    }

    fn process_frame<D: Device>(&mut self, io: &mut Io<'_, D>, buf: D::Buf) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += buf.len() as u64;
        if io.rx_offload {
            // The NIC checked what it could: a bad checksum is a drop, a good one is not
            // checked again, an unknown one is checked in software.
            let v = buf.rx_checksum();
            if v.ip == Verdict::Bad || v.l4 == Verdict::Bad {
                return self.drop(DropReason::Checksum);
            }
            let sw = |good: bool, c: Checksum| match (good, c.tx()) {
                (true, true) => Checksum::Tx,
                (true, false) => Checksum::None,
                (false, true) => Checksum::Both,
                (false, false) => Checksum::Rx,
            };
            self.caps.ipv4 = sw(v.ip == Verdict::Good, self.caps.ipv4);
            self.caps.tcp = sw(v.l4 == Verdict::Good, self.caps.tcp);
            self.caps.udp = sw(v.l4 == Verdict::Good, self.caps.udp);
        }
        let eth = match EthernetFrame::new_checked(buf.data()) {
            Ok(f) => f,
            Err(_) => return self.drop(DropReason::BadEthernet),
        };
        let dst = eth.dst_addr();
        let src = eth.src_addr();
        let ethertype = eth.ethertype();
        let v6 = ethertype == EtherType::Ipv6;
        if dst != self.mac && !dst.is_broadcast() && !(v6 && self.accepts_v6_mac(dst)) {
            return self.drop(DropReason::NotForUs);
        }
        if src.is_multicast() {
            return self.drop(DropReason::BadEthernet);
        }
        match ethertype {
            EtherType::Arp => {
                self.process_arp(io, src, &buf.data()[ETH_LEN..]);
            }
            EtherType::Ipv4 => self.process_ipv4(io, buf),
            EtherType::Ipv6 => self.process_ipv6(io, src, buf),
            _ => self.drop(DropReason::UnknownEthertype),
        }
    }

    fn process_arp<D: Device>(&mut self, io: &mut Io<'_, D>, eth_src: EthernetAddress, payload: &[u8]) {
        let repr = match ArpRepr::parse(&ArpPacket::new_unchecked(payload)) {
            Ok(r) => r,
            Err(Error::Unsupported) => return self.drop(DropReason::ArpUnsupported),
            Err(_) => return self.drop(DropReason::BadArp),
        };
        match repr.operation {
            ArpOp::Request => self.stats.arp.requests_rx += 1,
            ArpOp::Reply => self.stats.arp.replies_rx += 1,
        }
        let ours = self.address();
        let sha = repr.source_hardware_addr;
        let spa = repr.source_protocol_addr;
        if !sha.is_unicast()
            || sha == EthernetAddress::UNSPECIFIED
            || (self.cfg.arp.check_eth_source && sha != eth_src)
        {
            return self.drop(DropReason::BadArp);
        }
        if spa == ours {
            // Someone else claims our address (or our own broadcast came back).
            if sha != self.mac {
                self.stats.arp.conflicts += 1;
            }
            return self.drop(DropReason::NotForUs);
        }
        let for_us = repr.target_protocol_addr == ours;
        // RFC 826: merge the sender into an existing entry; add it only if the packet is
        // for us. Probes (sender 0.0.0.0) and off-link senders teach nothing.
        if spa.is_unicast() && self.cfg.address.contains(spa) && !self.martian(spa) {
            let stats = &mut self.stats;
            if self
                .arp
                .learn(io.now, spa, sha, for_us, &mut stats.arp, &mut stats.drops)
            {
                self.send_waiting(io, spa, sha);
            }
        }
        if !for_us {
            if repr.operation == ArpOp::Request {
                return self.drop(DropReason::NotForUs);
            }
            return;
        }
        if repr.operation == ArpOp::Request {
            self.send_arp(io, ArpOp::Reply, spa, sha, sha);
        }
    }

    /// Sends the packets that waited for `ip`, now known to be at `mac`.
    fn send_waiting<D: Device>(&mut self, io: &mut Io<'_, D>, ip: Ipv4Address, mac: EthernetAddress) {
        while let Some(packet) = self.arp.pop_waiting(ip) {
            if self.send_packet_copy(io, &packet, mac, EtherType::Ipv4) {
                self.stats.arp.pending_sent += 1;
            }
            self.arp.recycle(packet);
        }
    }

    /// Sends a copy of `packet` (an IP packet that waited for its neighbour) to `mac`;
    /// false, counted, when no device buffer takes it.
    pub(crate) fn send_packet_copy<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        packet: &[u8],
        mac: EthernetAddress,
        ethertype: EtherType,
    ) -> bool {
        let Some(mut buf) = io.dev.alloc() else {
            self.drop(DropReason::NoBuffer);
            return false;
        };
        let Some(room) = buf.append(packet.len()) else {
            self.drop(DropReason::NoBuffer);
            return false;
        };
        room.copy_from_slice(packet);
        self.send_eth(io, buf, mac, ethertype);
        true
    }

    fn arp_timers<D: Device>(&mut self, io: &mut Io<'_, D>) {
        loop {
            let stats = &mut self.stats;
            match self.arp.next_action(io.now, &mut stats.arp, &mut stats.drops) {
                Some(Action::Request(ip)) => self.send_arp(
                    io,
                    ArpOp::Request,
                    ip,
                    EthernetAddress::UNSPECIFIED,
                    EthernetAddress::BROADCAST,
                ),
                // (Neighbour discovery's; the ARP cache does not probe.)
                Some(Action::Probe(ip, mac)) => {
                    self.send_arp(io, ArpOp::Request, ip, EthernetAddress::UNSPECIFIED, mac)
                }
                None => break,
            }
        }
    }

    /// Sends an ARP packet from us about `target`.
    fn send_arp<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        op: ArpOp,
        target_ip: Ipv4Address,
        target_mac: EthernetAddress,
        eth_dst: EthernetAddress,
    ) {
        let repr = ArpRepr {
            operation: op,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.address(),
            target_hardware_addr: target_mac,
            target_protocol_addr: target_ip,
        };
        let Some(mut buf) = io.dev.alloc() else {
            return self.drop(DropReason::NoBuffer);
        };
        let Some(room) = buf.append(warp::ETHERNET_IPV4_LEN) else {
            return self.drop(DropReason::NoBuffer);
        };
        repr.emit(&mut ArpPacket::new_unchecked(room));
        match op {
            ArpOp::Request => self.stats.arp.requests_tx += 1,
            ArpOp::Reply => self.stats.arp.replies_tx += 1,
        }
        self.send_eth(io, buf, eth_dst, EtherType::Arp);
    }

    fn process_ipv4<D: Device>(&mut self, io: &mut Io<'_, D>, buf: D::Buf) {
        let data = &buf.data()[ETH_LEN..];
        let packet = Ipv4Packet::new_unchecked(data);
        let ip = match Ipv4Repr::parse(&packet, &self.caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return self.drop(DropReason::Checksum),
            Err(Error::Fragmented) => return self.process_fragment(io, buf),
            Err(_) => return self.drop(DropReason::BadIpv4),
        };
        let start = ETH_LEN + packet.header_len();
        let l4 = start..start + ip.payload_len;
        let ours = self.address();
        let broadcast = ip.dst_addr.is_broadcast() || Some(ip.dst_addr) == self.cfg.address.broadcast();
        if ip.dst_addr != ours && !broadcast {
            return self.drop(DropReason::NotForUs);
        }
        if self.martian(ip.src_addr) {
            return self.drop(DropReason::MartianSource);
        }
        match ip.protocol {
            IpProtocol::Icmp => self.process_icmp(io, buf, ip, l4, broadcast),
            IpProtocol::Udp => self.process_udp(
                io,
                &buf,
                (ip.src_addr.into(), ip.dst_addr.into()),
                l4,
                (broadcast, Some(ip)),
            ),
            IpProtocol::Tcp if broadcast => self.drop(DropReason::NotForUs),
            IpProtocol::Tcp => self.process_tcp(io, buf, (ip.src_addr.into(), ip.dst_addr.into()), l4),
            IpProtocol::Unknown(_) => {
                self.drop(DropReason::UnknownProtocol);
                if !broadcast {
                    self.send_unreachable(io, Icmpv4DstUnreachable::ProtoUnreachable, &ip, &buf.data()[l4]);
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
        if dst != self.address() {
            return self.drop(
                if dst.is_broadcast() || Some(dst) == self.cfg.address.broadcast() {
                    DropReason::Fragment
                } else {
                    DropReason::NotForUs
                },
            );
        }
        if self.martian(src) {
            return self.drop(DropReason::MartianSource);
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
                self.drop(DropReason::Fragment);
                return None;
            }
            ReasmOutcome::Overlap => {
                self.drop(DropReason::FragmentOverlap);
                return None;
            }
            ReasmOutcome::Full => {
                self.drop(DropReason::ReassemblyFull);
                return None;
            }
            ReasmOutcome::Complete(packet) => packet,
        };
        let Some(mut whole) = io.dev.alloc() else {
            self.drop(DropReason::NoBuffer);
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
                self.drop(DropReason::Fragment);
                return None;
            }
        }
        // No NIC looked at this datagram whole: its checksums are checked here.
        whole.forget_rx_checksum();
        self.stats.reassembled += 1;
        Some(whole)
    }

    /// RFC 1122 3.2.1.3: a source no host can have (it is dropped, never answered): not
    /// unicast, 0/8 ("this network"), 127/8, class E, the subnet's network and broadcast
    /// addresses (a /31 and a /32 have neither), or our own address.
    fn martian(&self, src: Ipv4Address) -> bool {
        let cidr = &self.cfg.address;
        !src.is_unicast()
            || src.0[0] == 0
            || src.is_loopback()
            || src.0[0] >= 240
            || Some(src) == cidr.broadcast()
            || (cidr.prefix_len() < 31 && src == cidr.network())
            || src == cidr.address()
    }

    /// Where a packet to `dst` goes on the link, or `None` without a route.
    fn next_hop(&self, dst: Ipv4Address) -> Option<NextHop> {
        let cidr = &self.cfg.address;
        if dst.is_broadcast() || Some(dst) == cidr.broadcast() {
            Some(NextHop::Broadcast)
        } else if !dst.is_unicast() || dst == cidr.address() || dst.is_loopback() {
            None
        } else if cidr.contains(dst) {
            Some(NextHop::Unicast(dst))
        } else {
            self.cfg.gateway.map(NextHop::Unicast)
        }
    }

    /// Our address towards `dst` (IPv4: the interface's, routable or not; IPv6: link-local or configured),
    /// `None` when `dst` cannot be reached.
    pub fn source_for(&self, dst: sluice_wire::IpAddress) -> Option<sluice_wire::IpAddress> {
        match dst {
            sluice_wire::IpAddress::V4(_) => Some(self.address().into()),
            sluice_wire::IpAddress::V6(a) => self.source_v6(a).map(Into::into),
        }
    }

    /// Which of our addresses `addr` is, as a flow's key holds it: 0 the IPv4 address, 1
    /// the IPv6 link-local one, 2 and up the configured IPv6 ones (in order).
    pub(crate) fn local_index(&self, addr: sluice_wire::IpAddress) -> u8 {
        match addr {
            sluice_wire::IpAddress::V4(_) => 0,
            sluice_wire::IpAddress::V6(a) => self
                .cfg
                .ipv6
                .iter()
                .position(|c| c.address() == a)
                .map_or(1, |i| (i + 2).min(usize::from(u8::MAX)) as u8),
        }
    }

    /// Whether a packet to `dst`, of either family, can be sent at all.
    pub(crate) fn routable_any(&self, dst: sluice_wire::IpAddress) -> bool {
        match dst {
            sluice_wire::IpAddress::V4(a) => self.routable(a),
            sluice_wire::IpAddress::V6(a) => self.source_v6(a).is_some(),
        }
    }

    /// Whether a packet to `dst` can be sent at all (it has a route).
    pub(crate) fn routable(&self, dst: Ipv4Address) -> bool {
        self.next_hop(dst).is_some()
    }

    /// Prepends an IPv4 header to `buf` (which holds the transport message) and sends it
    /// to `dst`, through ARP.
    pub(crate) fn send_ip<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        buf: D::Buf,
        dst: Ipv4Address,
        protocol: IpProtocol,
    ) {
        self.send_ip_with(io, buf, dst, protocol, (0, None));
    }

    /// As `send_ip`, with the packet's DS field and TTL (`None`: the interface's).
    pub(crate) fn send_ip_with<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mut buf: D::Buf,
        dst: Ipv4Address,
        protocol: IpProtocol,
        (tos, ttl): (u8, Option<u8>),
    ) {
        let repr = Ipv4Repr {
            src_addr: self.address(),
            dst_addr: dst,
            protocol,
            payload_len: buf.len(),
            ttl: ttl.unwrap_or(self.cfg.ttl),
        };
        // A TSO frame is cut to the MTU by the device.
        if repr.buffer_len() > self.mtu && !buf.is_tso() {
            return self.drop(DropReason::TooBig);
        }
        match buf.prepend(ipv4::HEADER_LEN) {
            Some(h) => repr.emit_with_tos(&mut Ipv4Packet::new_unchecked(h), &self.caps, tos),
            None => return self.drop(DropReason::NoBuffer),
        }
        let mac = match self.next_hop(dst) {
            None => return self.drop(DropReason::NoRoute),
            Some(NextHop::Broadcast) => EthernetAddress::BROADCAST,
            Some(NextHop::Unicast(hop)) => match self.arp.lookup(io.now, hop, &mut self.stats.arp) {
                Lookup::Hit(mac) => mac,
                Lookup::Refresh(mac) => {
                    self.send_arp(io, ArpOp::Request, hop, EthernetAddress::UNSPECIFIED, mac);
                    mac
                }
                Lookup::Miss => {
                    match self.arp.enqueue_buf(io.now, hop, &buf, &mut self.stats.drops) {
                        Ok(true) => self.send_arp(
                            io,
                            ArpOp::Request,
                            hop,
                            EthernetAddress::UNSPECIFIED,
                            EthernetAddress::BROADCAST,
                        ),
                        Ok(false) => {}
                        Err(reason) => self.drop(reason),
                    }
                    return;
                }
            },
        };
        self.send_eth(io, buf, mac, EtherType::Ipv4);
    }

    /// Prepends an Ethernet header and queues the frame for transmission.
    pub(crate) fn send_eth<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mut buf: D::Buf,
        dst: EthernetAddress,
        ethertype: EtherType,
    ) {
        let repr = EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            ethertype,
        };
        match buf.prepend(ETH_LEN) {
            Some(h) => repr.emit(&mut EthernetFrame::new_unchecked(h)),
            None => return self.drop(DropReason::NoBuffer),
        }
        if ethertype == EtherType::Ipv4 && self.tx_offload {
            // The NIC fills what was left to it: the IPv4 header checksum, the TCP/UDP one.
            let d = buf.data();
            if d.len() >= ETH_LEN + ipv4::HEADER_LEN {
                let l3_len = u16::from(d[ETH_LEN] & 0x0f) * 4;
                let l4 = match IpProtocol::from(d[ETH_LEN + 9]) {
                    IpProtocol::Tcp if !self.caps.tcp.tx() => L4::Tcp,
                    IpProtocol::Udp if !self.caps.udp.tx() => L4::Udp,
                    _ => L4::Other,
                };
                let ip = !self.caps.ipv4.tx();
                if ip || l4 != L4::Other {
                    buf.request_tx_checksum(TxChecksum {
                        ipv6: false,
                        ip,
                        l2_len: ETH_LEN as u8,
                        l3_len,
                        l4,
                    });
                }
            }
        }
        if ethertype == EtherType::Ipv6 && self.tx_offload {
            // The NIC fills the TCP/UDP checksum left to it (Sluice sends no extension
            // headers: the transport follows the fixed header).
            let d = buf.data();
            if d.len() >= ETH_LEN + sluice_wire::ipv6::HEADER_LEN {
                let l4 = match IpProtocol::from(d[ETH_LEN + 6]) {
                    IpProtocol::Tcp if !self.caps.tcp.tx() => L4::Tcp,
                    IpProtocol::Udp if !self.caps.udp.tx() => L4::Udp,
                    _ => L4::Other,
                };
                if l4 != L4::Other || buf.is_tso() {
                    buf.request_tx_checksum(TxChecksum {
                        ipv6: true,
                        ip: false,
                        l2_len: ETH_LEN as u8,
                        l3_len: sluice_wire::ipv6::HEADER_LEN as u16,
                        l4,
                    });
                }
            }
        }
        io.tx.push(buf);
        if io.tx.len() >= io.burst {
            self.flush(io);
        }
    }

    /// Hands the queued frames to the device. What it refuses (its ring is full) waits
    /// for the next flush, in order, up to `TX_BACKLOG` frames; beyond that the newest are
    /// dropped and counted. TCP stops sending while a burst's worth waits
    /// (`tx_backpressure`), so a full ring slows the senders instead of losing their
    /// segments, and keeps the data in flight short (and warm in the caches).
    fn flush<D: Device>(&mut self, io: &mut Io<'_, D>) {
        if io.tx.is_empty() {
            return;
        }
        if let Some(c) = &mut self.capture {
            for buf in &io.tx[self.tx_captured.min(io.tx.len())..] {
                capture_frame(c.as_mut(), true, buf);
            }
        }
        let bytes: u64 = io.tx.iter().map(|b| b.len() as u64).sum();
        let count = io.tx.len();
        io.dev.tx_burst(io.now, io.tx);
        self.tx_captured = io.tx.len();
        let left: u64 = io.tx.iter().map(|b| b.len() as u64).sum();
        self.stats.tx_packets += (count - io.tx.len()) as u64;
        self.stats.tx_bytes += bytes - left;
        if io.tx.len() > TX_BACKLOG {
            for _ in io.tx.drain(TX_BACKLOG..) {
                self.stats.drops.add(DropReason::TxQueueFull);
            }
            self.tx_captured = io.tx.len();
        }
    }
}

/// Gives `sink` the bytes of `buf`, gathered when chained.
fn capture_frame<B: PacketBuf>(sink: &mut dyn CaptureSink, sent: bool, buf: &B) {
    if buf.len() == buf.data().len() {
        sink.frame(sent, buf.data());
    } else {
        sink.frame(sent, &buf.gather());
    }
}

/// Frames kept for the device while its transmit ring is full.
const TX_BACKLOG: usize = 256;

impl<D: Device> Io<'_, D> {
    /// The device refused a burst's worth of frames that still wait: senders hold off.
    pub(crate) fn tx_backpressure(&self) -> bool {
        self.tx.len() >= self.burst
    }
}
