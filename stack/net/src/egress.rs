//! Egress: what every protocol part sends through. It knows the link (our addresses,
//! the next hop, the ARP and neighbour caches, the MTU and checksum work of this poll),
//! prepends the IP and Ethernet headers in the buffers' headroom, queues the frames of a
//! poll and hands them to the device in bursts, and keeps the interface's counters. The
//! protocol parts (`crate::tcp`, `crate::udp`, `crate::icmp`, `crate::ipv6`) receive it
//! explicitly; none of them reaches the others through it.

use core::time::Duration;
use std::collections::VecDeque;

use sluice_dev::{Device, PacketBuf, TxChecksum, Verdict, L4};
use sluice_wire::ipv6::Ipv6Address;
use sluice_wire::{
    arp as warp, ipv4, ArpOp, ArpPacket, ArpRepr, Checksum, ChecksumCaps, Error, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, Instant, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
};

use crate::arp::{Action, ArpCache, Lookup};
use crate::config::InterfaceConfig;
use crate::stats::{DropReason, Stats};

pub(crate) const ETH_LEN: usize = sluice_wire::eth::HEADER_LEN;

/// What one poll works with: the time, the device, and the frames to transmit.
pub(crate) struct Io<'a, D: Device> {
    pub(crate) now: Instant,
    pub(crate) dev: &'a mut D,
    /// This poll's frames, handed to the device a burst at a time.
    pub(crate) tx: &'a mut Vec<D::Buf>,
    /// Frames the device refused (its ring was full), oldest first: they go before any
    /// newer one.
    pub(crate) held: &'a mut VecDeque<D::Buf>,
    /// TCP holds its output back while this many frames are held (`tx_backpressure`).
    pub(crate) hold: usize,
    pub(crate) burst: usize,
    /// The device reports checksum verdicts on received frames.
    pub(crate) rx_offload: bool,
    /// The device sends chained buffers: payloads can go by reference.
    pub(crate) tx_chain: bool,
    /// The device cuts large TCP segments (TSO).
    pub(crate) tso: bool,
}

/// Where an IPv4 packet goes on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NextHop {
    Broadcast,
    Unicast(Ipv4Address),
}

/// Receives a copy of every frame the interface receives (`sent` false) and sends
/// (`sent` true, as handed to the device: a TSO frame whole), e.g. a pcap writer.
pub trait CaptureSink {
    fn frame(&mut self, sent: bool, data: &[u8]);
}

/// IPv6 state learned on the link: duplicate address detection (RFC 4862 5.4, optimistic
/// as RFC 4429: the addresses are used at once, and given up if another node has one) and
/// the default router from router advertisements (RFC 4861 6.3.4).
#[derive(Debug, Default)]
pub(crate) struct V6Link {
    /// The solicitations of duplicate address detection went out, and when it ends.
    pub(crate) dad_until: Option<sluice_wire::Instant>,
    /// Addresses another node has: no longer ours.
    pub(crate) duplicates: Vec<Ipv6Address>,
    /// The default router an advertisement named, until its lifetime ends.
    pub(crate) router: Option<(Ipv6Address, sluice_wire::Instant)>,
    /// Redirects (RFC 4861 8.3): a better first hop for a destination (at most
    /// `MAX_REDIRECTS`, the oldest forgotten first).
    pub(crate) redirects: Vec<(Ipv6Address, Ipv6Address)>,
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    rate: u32,
    burst: u32,
    /// Tokens, in millionths, so that fractional refills are not lost.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            micro_tokens: u64::from(burst) * 1_000_000,
            last: Instant::ZERO,
        }
    }

    /// Takes a token if one is available at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now - self.last;
        self.last = self.last.max(now);
        let refill =
            (elapsed.as_micros().min(u128::from(u64::MAX / 4)) as u64).saturating_mul(u64::from(self.rate));
        let cap = u64::from(self.burst) * 1_000_000;
        self.micro_tokens = self.micro_tokens.saturating_add(refill).min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// The link side of an interface: addresses, next hops, neighbour caches, the frames of
/// a poll on their way to the device, and the counters.
pub(crate) struct Egress {
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
    pub(crate) v6link: V6Link,
    /// ICMP errors sent (either family), at most so many per second.
    pub(crate) icmp_limiter: TokenBucket,
    /// The last `now` seen, for API calls that need a time (ISNs, keepalive).
    pub(crate) now: Instant,
    /// Where received and sent frames are copied (`--pcap`), if anywhere.
    pub(crate) capture: Option<Box<dyn CaptureSink>>,
    /// Frames held for the device after the last flush (`Io::held`).
    pub(crate) held: usize,
}

impl Egress {
    pub(crate) fn new(cfg: InterfaceConfig, mac: EthernetAddress) -> Egress {
        Egress {
            arp: ArpCache::new(cfg.arp, &cfg.static_arp),
            nd: ArpCache::new_nd(cfg.arp, &cfg.static_nd),
            icmp_limiter: TokenBucket::new(cfg.icmp.error_rate, cfg.icmp.error_burst),
            caps: cfg.checksum.unwrap_or_default(),
            mtu: cfg.mtu,
            cfg,
            mac,
            tx_offload: false,
            stats: Stats::default(),
            v6link: Default::default(),
            now: Instant::ZERO,
            capture: None,
            held: 0,
        }
    }

    /// Our IPv4 address.
    pub(crate) fn address(&self) -> Ipv4Address {
        self.cfg.address.address()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.stats.drops.add(reason);
        tracing::trace!(%reason, "drop");
    }

    /// Counts a drop; `None` for the caller to return.
    pub(crate) fn drop_none<T>(&mut self, reason: DropReason) -> Option<T> {
        self.drop(reason);
        None
    }

    /// Copies a received frame to the capture, if one is set.
    pub(crate) fn capture_rx<B: PacketBuf>(&mut self, buf: &B) {
        if let Some(c) = &mut self.capture {
            capture_frame(c.as_mut(), false, buf);
        }
    }

    /// The Ethernet layer of a received frame: counted, its checksum verdicts taken, and
    /// its ethertype and source given if it is for us (else a counted drop).
    pub(crate) fn link_input<D: Device>(
        &mut self,
        io: &Io<'_, D>,
        buf: &D::Buf,
    ) -> Option<(EtherType, EthernetAddress)> {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += buf.len() as u64;
        if io.rx_offload {
            // The NIC checked what it could: a bad checksum is a drop, a good one is not
            // checked again, an unknown one is checked in software.
            let v = buf.rx_checksum();
            if v.ip == Verdict::Bad || v.l4 == Verdict::Bad {
                return self.drop_none(DropReason::Checksum);
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
        let Ok(eth) = EthernetFrame::new_checked(buf.data()) else {
            return self.drop_none(DropReason::BadEthernet);
        };
        let (dst, src, ethertype) = (eth.dst_addr(), eth.src_addr(), eth.ethertype());
        let v6 = ethertype == EtherType::Ipv6;
        if dst != self.mac && !dst.is_broadcast() && !(v6 && self.accepts_v6_mac(dst)) {
            return self.drop_none(DropReason::NotForUs);
        }
        if src.is_multicast() {
            return self.drop_none(DropReason::BadEthernet);
        }
        Some((ethertype, src))
    }

    /// An ARP packet (`payload`) from Ethernet address `eth_src`: learned from, answered.
    pub(crate) fn arp_input<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        eth_src: EthernetAddress,
        payload: &[u8],
    ) {
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
        let Some(buf) = self.new_frame(io, packet.len(), |room| room.copy_from_slice(packet)) else {
            return false;
        };
        self.send_eth(io, buf, mac, ethertype);
        true
    }

    /// A new device buffer holding `len` bytes that `fill` writes; `None`, counted
    /// (`NoBuffer`), when the device has no buffer or none that large.
    pub(crate) fn new_frame<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Option<D::Buf> {
        let Some(mut buf) = io.dev.alloc() else {
            return self.drop_none(DropReason::NoBuffer);
        };
        let Some(room) = buf.append(len) else {
            return self.drop_none(DropReason::NoBuffer);
        };
        fill(room);
        Some(buf)
    }

    pub(crate) fn arp_timers<D: Device>(&mut self, io: &mut Io<'_, D>) {
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
        let emit = |room: &mut [u8]| repr.emit(&mut ArpPacket::new_unchecked(room));
        let Some(buf) = self.new_frame(io, warp::ETHERNET_IPV4_LEN, emit) else {
            return;
        };
        match op {
            ArpOp::Request => self.stats.arp.requests_tx += 1,
            ArpOp::Reply => self.stats.arp.replies_tx += 1,
        }
        self.send_eth(io, buf, eth_dst, EtherType::Arp);
    }

    /// RFC 1122 3.2.1.3: a source no host can have (it is dropped, never answered): not
    /// unicast, 0/8 ("this network"), 127/8, class E, the subnet's network and broadcast
    /// addresses (a /31 and a /32 have neither), or our own address.
    pub(crate) fn martian(&self, src: Ipv4Address) -> bool {
        let cidr = &self.cfg.address;
        !src.is_unicast()
            || src.0[0] == 0
            || src.is_loopback()
            || src.0[0] >= 240
            || Some(src) == cidr.broadcast()
            || (cidr.prefix_len() < 31 && src == cidr.network())
            || src == cidr.address()
    }

    /// Whether a packet to `addr` would leave at once: its next hop's link address is
    /// known (a packet for a neighbour still being resolved waits, or is dropped when too
    /// many wait already).
    pub(crate) fn neighbour_known(&self, addr: sluice_wire::IpAddress) -> bool {
        match addr {
            sluice_wire::IpAddress::V4(a) => match self.next_hop(a) {
                Some(NextHop::Broadcast) => true,
                Some(NextHop::Unicast(hop)) => self.arp.known(hop),
                None => false,
            },
            sluice_wire::IpAddress::V6(a) => self.next_hop_v6(a).is_some_and(|hop| self.nd.known(hop)),
        }
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
    pub(crate) fn source_for(&self, dst: sluice_wire::IpAddress) -> Option<sluice_wire::IpAddress> {
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

    /// Hands this poll's frames to the device, after those it refused before (held, in
    /// order). What it refuses now (its ring is full) is held for the next flush, up to
    /// `TX_BACKLOG` frames past `tx_queue_limit`; beyond that the newest are dropped and
    /// counted. TCP stops sending while `Io::hold` frames wait (`tx_backpressure`), so a
    /// full ring slows the senders instead of losing their segments.
    pub(crate) fn flush<D: Device>(&mut self, io: &mut Io<'_, D>) {
        if io.tx.is_empty() && io.held.is_empty() {
            return;
        }
        if let Some(c) = &mut self.capture {
            for buf in io.tx.iter() {
                capture_frame(c.as_mut(), true, buf);
            }
        }
        if io.held.is_empty() {
            self.hand(io);
            if !io.tx.is_empty() {
                io.held.extend(io.tx.drain(..));
            }
        } else {
            io.held.extend(io.tx.drain(..));
            while !io.held.is_empty() {
                let n = io.held.len().min(io.burst);
                io.tx.extend(io.held.drain(..n));
                self.hand(io);
                if !io.tx.is_empty() {
                    // Refused: back to the front, in order.
                    while let Some(b) = io.tx.pop() {
                        io.held.push_front(b);
                    }
                    break;
                }
            }
        }
        let most = self.cfg.tx_queue_limit.max(io.burst) + TX_BACKLOG;
        while io.held.len() > most {
            io.held.pop_back();
            self.stats.drops.add(DropReason::TxQueueFull);
        }
        self.held = io.held.len();
    }

    /// `io.tx` to the device; what it refuses stays there.
    fn hand<D: Device>(&mut self, io: &mut Io<'_, D>) {
        if io.tx.is_empty() {
            return;
        }
        let bytes: u64 = io.tx.iter().map(|b| b.len() as u64).sum();
        let count = io.tx.len();
        io.dev.tx_burst(io.now, io.tx);
        let left: u64 = io.tx.iter().map(|b| b.len() as u64).sum();
        self.stats.tx_packets += (count - io.tx.len()) as u64;
        self.stats.tx_bytes += bytes - left;
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
pub(crate) const TX_BACKLOG: usize = 256;

impl<D: Device> Io<'_, D> {
    /// The device refused as many frames as may wait (`hold`): senders hold off.
    pub(crate) fn tx_backpressure(&self) -> bool {
        self.held.len() >= self.hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let mut b = TokenBucket::new(10, 2);
        let t = Instant::from_secs(5);
        assert!(b.take(t));
        assert!(b.take(t));
        assert!(!b.take(t));
        assert!(!b.take(t + Duration::from_millis(99)));
        assert!(b.take(t + Duration::from_millis(100)));
        assert!(!b.take(t + Duration::from_millis(100)));
        assert!(b.take(t + Duration::from_secs(10)));
        assert!(b.take(t + Duration::from_secs(10)));
        assert!(!b.take(t + Duration::from_secs(10)));
    }
}
