//! Unit tests of the interface, driven through an in-memory link: a raw peer injects
//! hand-built frames and reads what the interface sends back.

use core::time::Duration;

use proptest::prelude::*;
use sluice_dev::{Device, Impairments, MemDevice, MemLink, PacketBuf};
use sluice_wire::{
    ArpOp, ArpPacket, ArpRepr, ChecksumCaps, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Instant, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};

use sluice_wire::icmpv6::{Icmpv6Repr, NaFlags, NdpOptions};
use sluice_wire::ipv6::{Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr};

use crate::egress::ETH_LEN;
use crate::*;

pub(crate) const OUR_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub(crate) const PEER_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
pub(crate) const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
pub(crate) const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);

pub(crate) fn config(static_peer: bool) -> InterfaceConfig {
    let mut c = InterfaceConfig::new(Ipv4Cidr::new(OUR_IP, 24), IsnKey::fixed([7; 16]));
    if static_peer {
        c.static_arp.push((PEER_IP, PEER_MAC));
    }
    c
}

/// An interface on one side of a lossless link and a raw device on the other.
pub(crate) struct Fixture {
    pub(crate) iface: Interface,
    pub(crate) dev: MemDevice,
    pub(crate) peer: MemDevice,
    pub(crate) link: MemLink,
    pub(crate) now: Instant,
}

impl Fixture {
    /// Connection `h`'s state (CLOSED once removed).
    fn state(&self, h: TcpHandle) -> TcpState {
        self.iface.tcp_status(h).map_or(TcpState::Closed, |t| t.state())
    }

    /// Why connection `h` failed, if it did.
    fn error(&self, h: TcpHandle) -> Option<ConnError> {
        self.iface.tcp_status(h).and_then(|t| t.error())
    }

    pub(crate) fn new(cfg: InterfaceConfig) -> Fixture {
        let (dev, peer, link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 256);
        Fixture {
            iface: Interface::new(cfg, OUR_MAC),
            dev,
            peer,
            link,
            now: Instant::from_secs(1),
        }
    }

    pub(crate) fn inject(&mut self, frame: &[u8]) {
        let mut b = self.peer.alloc().unwrap();
        b.append(frame.len()).unwrap().copy_from_slice(frame);
        let mut v = vec![b];
        self.peer.tx_burst(self.now, &mut v);
    }

    pub(crate) fn poll(&mut self) -> Vec<Vec<u8>> {
        while self.iface.poll(self.now, &mut self.dev) {}
        let mut rx = Vec::new();
        self.peer.rx_burst(self.now, &mut rx, usize::MAX);
        rx.iter().map(|b| b.data().to_vec()).collect()
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    pub(crate) fn drops(&self, r: DropReason) -> u64 {
        self.iface.stats().drops[r]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let mut rx = Vec::new();
            self.peer
                .rx_burst(Instant::from_secs(1 << 30), &mut rx, usize::MAX);
            self.dev
                .rx_burst(Instant::from_secs(1 << 30), &mut rx, usize::MAX);
            drop(rx);
            assert_eq!(self.link.pool().outstanding(), 0, "a buffer was not returned");
        }
    }
}

pub(crate) fn eth(dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    f
}

pub(crate) fn arp(op: ArpOp, spa: Ipv4Address, tha: EthernetAddress, tpa: Ipv4Address) -> Vec<u8> {
    let mut p = [0u8; 28];
    ArpRepr {
        operation: op,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    let dst = if op == ArpOp::Request {
        EthernetAddress::BROADCAST
    } else {
        OUR_MAC
    };
    eth(dst, EtherType::Arp, &p)
}

pub(crate) fn ip(src: Ipv4Address, dst: Ipv4Address, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Ipv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCaps::software(),
    );
    p[20..].copy_from_slice(payload);
    eth(OUR_MAC, EtherType::Ipv4, &p)
}

pub(crate) fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port,
        dst_port,
        payload,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut p[..]),
        PEER_IP,
        OUR_IP,
        &ChecksumCaps::software(),
    );
    ip(PEER_IP, OUR_IP, IpProtocol::Udp, &p)
}

pub(crate) fn echo_request(data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCaps::software(),
    );
    ip(PEER_IP, OUR_IP, IpProtocol::Icmp, &p)
}

/// Parses a frame we sent as IPv4 and returns its header and transport bytes.
pub(crate) fn parse_ip(frame: &[u8]) -> (Ipv4Repr, Vec<u8>) {
    let e = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(e.src_addr(), OUR_MAC);
    assert_eq!(e.ethertype(), EtherType::Ipv4);
    let p = Ipv4Packet::new_checked(e.payload()).unwrap();
    let r = Ipv4Repr::parse(&p, &ChecksumCaps::software()).unwrap();
    (r, p.payload().to_vec())
}

#[test]
fn arp_request_gets_reply_bytes() {
    let mut f = Fixture::new(config(false));
    f.inject(&arp(
        ArpOp::Request,
        PEER_IP,
        EthernetAddress::UNSPECIFIED,
        OUR_IP,
    ));
    let out = f.poll();
    #[rustfmt::skip]
    let expected: [u8; 42] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, // eth: to peer, from us, ARP
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02, // Ethernet/IPv4, reply
        0x02, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sha spa: us
        0x02, 0, 0, 0, 0, 2, 198, 18, 0, 2, // tha tpa: the asker
    ];
    assert_eq!(out, vec![expected.to_vec()]);
    assert_eq!(
        f.iface.neighbor(f.now, PEER_IP),
        Some(PEER_MAC),
        "learned from the request"
    );
    let s = f.iface.stats();
    assert_eq!((s.arp.requests_rx, s.arp.replies_tx), (1, 1));
    assert_eq!(s.drops.total(), 0);
}

#[test]
fn arp_for_others_is_not_answered_nor_learned() {
    let mut f = Fixture::new(config(false));
    let other = Ipv4Address::new(198, 18, 0, 9);
    f.inject(&arp(ArpOp::Request, PEER_IP, EthernetAddress::UNSPECIFIED, other));
    assert!(f.poll().is_empty());
    assert_eq!(f.iface.neighbor(f.now, PEER_IP), None);
    assert_eq!(f.drops(DropReason::NotForUs), 1);
    // An unsolicited reply to us is learned (it is for us); then a gratuitous update of
    // an existing entry merges.
    f.inject(&arp(ArpOp::Reply, PEER_IP, OUR_MAC, OUR_IP));
    assert!(f.poll().is_empty());
    assert_eq!(f.iface.neighbor(f.now, PEER_IP), Some(PEER_MAC));
    // Someone claiming our address is a conflict, not learned.
    f.inject(&arp(ArpOp::Request, OUR_IP, EthernetAddress::UNSPECIFIED, OUR_IP));
    assert!(f.poll().is_empty());
    assert_eq!(f.iface.stats().arp.conflicts, 1);
}

#[test]
fn arp_entries_expire_and_statics_do_not() {
    let mut cfg = config(false);
    let fixed = Ipv4Address::new(198, 18, 0, 3);
    cfg.static_arp.push((fixed, EthernetAddress([2, 0, 0, 0, 0, 3])));
    let mut f = Fixture::new(cfg);
    f.inject(&arp(
        ArpOp::Request,
        PEER_IP,
        EthernetAddress::UNSPECIFIED,
        OUR_IP,
    ));
    f.poll();
    let h = f.iface.udp_bind(1000).unwrap();
    f.advance(Duration::from_secs(30));
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"a", Endpoint::new(PEER_IP, 9))
        .unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 1, "sent directly: entry fresh");
    assert_eq!(parse_ip(&out[0]).0.protocol, IpProtocol::Udp);
    f.advance(Duration::from_secs(31));
    assert_eq!(f.iface.neighbor(f.now, PEER_IP), None);
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"b", Endpoint::new(PEER_IP, 9))
        .unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0][12..14],
        &[0x08, 0x06],
        "expired: an ARP request goes out instead"
    );
    assert_eq!(&out[0][..6], &[0xff; 6]);
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"c", Endpoint::new(fixed, 9))
        .unwrap();
    f.advance(Duration::from_secs(100_000));
    let out = f.poll();
    assert!(out
        .iter()
        .any(|fr| fr[..6] == [2, 0, 0, 0, 0, 3] && fr[12..14] == [8, 0]));
}

#[test]
fn arp_refreshes_a_used_entry_before_expiry() {
    let mut f = Fixture::new(config(false));
    f.inject(&arp(
        ArpOp::Request,
        PEER_IP,
        EthernetAddress::UNSPECIFIED,
        OUR_IP,
    ));
    f.poll();
    let h = f.iface.udp_bind(1000).unwrap();
    f.advance(Duration::from_secs(56));
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"a", Endpoint::new(PEER_IP, 9))
        .unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0][..6], &PEER_MAC.0, "unicast re-confirmation");
    assert_eq!(&out[0][12..14], &[0x08, 0x06]);
    assert_eq!(&out[1][12..14], &[0x08, 0x00], "the datagram still goes at once");
    f.inject(&arp(ArpOp::Reply, PEER_IP, OUR_MAC, OUR_IP));
    f.poll();
    f.advance(Duration::from_secs(50));
    assert_eq!(f.iface.neighbor(f.now, PEER_IP), Some(PEER_MAC));
}

/// A burst of connects to a neighbour not yet resolved: the SYNs beyond the pending
/// queue are dropped at our end, and go as soon as the neighbour answers, as first SYNs
/// (no retransmission counted), instead of a retransmission timeout (1 s) later.
#[test]
fn syns_dropped_waiting_for_the_neighbour_go_once_it_answers() {
    let mut cfg = config(false);
    cfg.arp.pending_per_neighbor = 4;
    let mut f = Fixture::new(cfg);
    let hs: Vec<TcpHandle> = (0..40)
        .map(|_| f.iface.tcp_connect(PEER_IP, 80).unwrap())
        .collect();
    let out = f.poll();
    assert_eq!(out.len(), 1, "the ARP request alone");
    assert_eq!(f.drops(DropReason::ArpQueueFull), 36);
    f.now += Duration::from_millis(1);
    f.inject(&arp(ArpOp::Reply, PEER_IP, OUR_MAC, OUR_IP));
    let out = f.poll();
    let mut ports: Vec<u16> = out
        .iter()
        .map(|fr| parse_tcp(fr).1)
        .filter(|t| t.flags.syn() && t.ack.is_none())
        .map(|t| t.src_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(
        ports.len(),
        40,
        "every connection's SYN left at once ({} frames)",
        out.len()
    );
    assert_eq!(
        f.iface.stats().tcp.retransmits,
        0,
        "first SYNs, not retransmissions"
    );
    for h in hs {
        assert_eq!(f.state(h), TcpState::SynSent);
    }
    // Nothing is left to send again: the next poll is quiet until the RTO.
    f.now += Duration::from_millis(10);
    assert!(f.poll().is_empty());
}

#[test]
fn arp_pending_queue_bound_and_flush() {
    let mut cfg = config(false);
    cfg.arp.pending_per_neighbor = 2;
    let mut f = Fixture::new(cfg);
    let h = f.iface.udp_bind(1000).unwrap();
    for p in [&b"one"[..], b"two", b"three"] {
        f.iface
            .udp(h)
            .unwrap()
            .send_to(p, Endpoint::new(PEER_IP, 9))
            .unwrap();
    }
    let out = f.poll();
    assert_eq!(out.len(), 1, "one broadcast request");
    let req = ArpRepr::parse(&ArpPacket::new_checked(&out[0][14..]).unwrap()).unwrap();
    assert_eq!(req.operation, ArpOp::Request);
    assert_eq!(req.target_protocol_addr, PEER_IP);
    assert_eq!(f.drops(DropReason::ArpQueueFull), 1);
    f.inject(&arp(ArpOp::Reply, PEER_IP, OUR_MAC, OUR_IP));
    let out = f.poll();
    let payloads: Vec<Vec<u8>> = out.iter().map(|fr| parse_ip(fr).1[8..].to_vec()).collect();
    assert_eq!(payloads, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(&out[0][..6], &PEER_MAC.0);
    assert_eq!(f.iface.stats().arp.pending_sent, 2);
}

#[test]
fn arp_gives_up_after_retries() {
    let mut f = Fixture::new(config(false));
    let h = f.iface.udp_bind(1000).unwrap();
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"x", Endpoint::new(PEER_IP, 9))
        .unwrap();
    assert_eq!(f.poll().len(), 1);
    assert_eq!(f.iface.poll_at(), Some(f.now + Duration::from_secs(1)));
    f.advance(Duration::from_secs(1));
    assert_eq!(f.poll().len(), 1, "second request");
    f.advance(Duration::from_secs(1));
    assert_eq!(f.poll().len(), 1, "third request");
    f.advance(Duration::from_secs(1));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::ArpUnresolved), 1);
    assert_eq!(f.iface.stats().arp.requests_tx, 3);
    assert_eq!(f.iface.poll_at(), None);
}

#[test]
fn icmp_echo_reply_has_identical_payload() {
    let mut f = Fixture::new(config(true));
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    f.inject(&echo_request(&data));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &PEER_MAC.0);
    let (r, icmp) = parse_ip(&out[0]);
    assert_eq!(
        (r.src_addr, r.dst_addr, r.protocol),
        (OUR_IP, PEER_IP, IpProtocol::Icmp)
    );
    let reply = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&icmp[..]).unwrap(),
        &ChecksumCaps::software(),
    )
    .unwrap();
    assert_eq!(
        reply,
        Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data: &data
        }
    );
    let s = f.iface.stats();
    assert_eq!(
        (s.icmp.echo_requests_rx, s.icmp.echo_replies_tx, s.tx_packets),
        (1, 1, 1)
    );
}

#[test]
fn icmp_echo_with_ip_options_and_padding() {
    let mut f = Fixture::new(config(true));
    // An echo request with a 4-byte option (NOP NOP NOP EOL) and Ethernet padding after it.
    let icmp = {
        let repr = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"hi",
        };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(&mut p[..]),
            &ChecksumCaps::software(),
        );
        p
    };
    let mut hdr = vec![0x46, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
    hdr.extend_from_slice(&PEER_IP.0);
    hdr.extend_from_slice(&OUR_IP.0);
    hdr.extend_from_slice(&[1, 1, 1, 0]);
    let total = (hdr.len() + icmp.len()) as u16;
    hdr[2..4].copy_from_slice(&total.to_be_bytes());
    let c = !sluice_wire::checksum::sum(&hdr);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
    let mut pkt = hdr;
    pkt.extend_from_slice(&icmp);
    pkt.extend_from_slice(&[0xee; 12]);
    f.inject(&eth(OUR_MAC, EtherType::Ipv4, &pkt));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (_, reply) = parse_ip(&out[0]);
    assert_eq!(out[0].len(), 14 + 20 + 10, "options and padding gone");
    assert!(matches!(
        Icmpv4Repr::parse(
            &Icmpv4Packet::new_checked(&reply[..]).unwrap(),
            &ChecksumCaps::software()
        ),
        Ok(Icmpv4Repr::EchoReply { data: b"hi", .. })
    ));
}

#[test]
fn bad_checksums_are_counted_drops() {
    let mut f = Fixture::new(config(true));
    let h = f.iface.udp_bind(53).unwrap();
    // IPv4 header checksum.
    let mut fr = udp(9, 53, b"hello");
    fr[14 + 8] ^= 1; // TTL
    f.inject(&fr);
    // UDP checksum (payload byte flipped).
    let mut fr = udp(9, 53, b"hello");
    let last = fr.len() - 1;
    fr[last] ^= 0x10;
    f.inject(&fr);
    // ICMP checksum.
    let mut fr = echo_request(b"ping");
    let last = fr.len() - 1;
    fr[last] ^= 0x01;
    f.inject(&fr);
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::Checksum), 3);
    assert!(!f.iface.udp_status(h).is_some_and(|u| u.can_recv()));
    // With the device verifying checksums, software does not look.
    let mut cfg = config(true);
    cfg.checksum = Some(ChecksumCaps::ignored());
    let mut g = Fixture::new(cfg);
    let h = g.iface.udp_bind(53).unwrap();
    let mut fr = udp(9, 53, b"hello");
    let last = fr.len() - 1;
    fr[last] ^= 0x10;
    g.inject(&fr);
    g.poll();
    assert!(g.iface.udp_status(h).is_some_and(|u| u.can_recv()));
}

#[test]
fn fragments_are_reassembled_and_bounded() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let req = echo_request(&data);
    let frags = fragments(&req, 256);
    assert_eq!(frags.len(), 4);
    let reply_data = |out: &[Vec<u8>]| {
        assert_eq!(out.len(), 1, "one echo reply");
        let (_, icmp) = parse_ip(&out[0]);
        let r = Icmpv4Repr::parse(
            &Icmpv4Packet::new_checked(&icmp[..]).unwrap(),
            &ChecksumCaps::software(),
        )
        .unwrap();
        match r {
            Icmpv4Repr::EchoReply { data, .. } => data.to_vec(),
            other => panic!("{other:?}"),
        }
    };
    // In reverse order: the datagram is whole once the last piece arrives.
    let mut f = Fixture::new(config(true));
    for fr in frags.iter().rev() {
        f.inject(fr);
    }
    assert_eq!(reply_data(&f.poll()), data);
    assert_eq!(f.iface.stats().reassembled, 1);
    // An overlapping fragment discards its datagram; the rest of it never completes and
    // is forgotten after 30 s, each fragment counted.
    let mut f = Fixture::new(config(true));
    let mut overlap = fragments(&req, 256)[1].clone();
    overlap[14 + 7] -= 1; // offset 248 instead of 256: 8 bytes over the first fragment
    overlap[14 + 10] = 0;
    overlap[14 + 11] = 0;
    let c = !sluice_wire::checksum::sum(&overlap[14..34]);
    overlap[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    f.inject(&frags[0]);
    f.inject(&overlap);
    for fr in &frags[2..] {
        f.inject(fr);
    }
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::FragmentOverlap), 1);
    f.advance(Duration::from_secs(31));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::ReassemblyTimeout), 2);
    assert_eq!(f.iface.reassembly_held(), (0, 0));
    // Malformed: a non-final fragment whose length is not a multiple of 8.
    let mut bad = frags[0].clone();
    bad.truncate(bad.len() - 3);
    let hl = 20;
    let len = (bad.len() - 14) as u16;
    bad[14 + 2..14 + 4].copy_from_slice(&len.to_be_bytes());
    bad[14 + 10] = 0;
    bad[14 + 11] = 0;
    let c = !sluice_wire::checksum::sum(&bad[14..14 + hl]);
    bad[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    f.inject(&bad);
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::Fragment), 1);
}

/// The IPv4 packet of Ethernet frame `frame` cut into fragments of `size` payload bytes
/// (a multiple of 8), as a router would.
fn fragments(frame: &[u8], size: usize) -> Vec<Vec<u8>> {
    let hl = usize::from(frame[14] & 0x0f) * 4;
    let payload = &frame[14 + hl..];
    let n = payload.len().div_ceil(size);
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let mut f = frame[..14 + hl].to_vec();
            f.extend_from_slice(c);
            let ip = &mut f[14..];
            ip[2..4].copy_from_slice(&((hl + c.len()) as u16).to_be_bytes());
            let off = ((i * size / 8) as u16) | if i + 1 == n { 0 } else { 0x2000 };
            ip[6..8].copy_from_slice(&off.to_be_bytes());
            ip[10] = 0;
            ip[11] = 0;
            let c = !sluice_wire::checksum::sum(&ip[..hl]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f
        })
        .collect()
}

#[test]
fn udp_delivery_and_connected_filter() {
    let mut f = Fixture::new(config(true));
    let h = f.iface.udp_bind(53).unwrap();
    assert_eq!(f.iface.udp_bind(53), Err(BindError::InUse));
    f.inject(&udp(40000, 53, b"query"));
    assert!(f.poll().is_empty());
    let mut buf = [0u8; 64];
    assert_eq!(
        f.iface.udp(h).unwrap().recv_from(&mut buf),
        Ok((5, Endpoint::new(PEER_IP, 40000)))
    );
    assert_eq!(&buf[..5], b"query");
    assert_eq!(
        f.iface.udp(h).unwrap().recv_from(&mut buf),
        Err(UdpRecvError::WouldBlock)
    );
    f.iface
        .udp(h)
        .unwrap()
        .send_to(b"answer", Endpoint::new(PEER_IP, 40000))
        .unwrap();
    let out = f.poll();
    let (r, l4) = parse_ip(&out[0]);
    let u = UdpRepr::parse(
        &UdpPacket::new_checked(&l4[..]).unwrap(),
        r.src_addr,
        r.dst_addr,
        &ChecksumCaps::software(),
    )
    .unwrap();
    assert_eq!((u.src_port, u.dst_port, u.payload), (53, 40000, &b"answer"[..]));
    // Connected: only the peer's datagrams; others get port unreachable.
    f.iface
        .udp(h)
        .unwrap()
        .connect(Endpoint::new(PEER_IP, 40000))
        .unwrap();
    f.inject(&udp(40001, 53, b"stranger"));
    f.inject(&udp(40000, 53, b"friend"));
    let out = f.poll();
    assert_eq!(out.len(), 1, "port unreachable for the stranger");
    assert_eq!(f.iface.udp(h).unwrap().recv(&mut buf), Ok(6));
    assert_eq!(f.iface.udp(h).unwrap().send(b"x"), Ok(()));
    // Bounded receive queue.
    let mut cfg = config(true);
    cfg.udp_rx_queue = 2;
    let mut g = Fixture::new(cfg);
    let h = g.iface.udp_bind(7).unwrap();
    for _ in 0..3 {
        g.inject(&udp(1, 7, b"d"));
    }
    g.poll();
    assert_eq!(g.iface.udp_status(h).map_or(0, |u| u.dropped()), 1);
    assert_eq!(g.drops(DropReason::UdpQueueFull), 1);
    g.iface.udp(h).expect("open").close();
    // Closed: the handle is stale, for every call.
    assert!(g.iface.udp(h).is_none());
    assert!(g.iface.udp_status(h).is_none());
}

#[test]
fn udp_port_unreachable_is_rate_limited() {
    let mut f = Fixture::new(config(true));
    f.inject(&udp(5353, 9999, b"nobody"));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (r, icmp) = parse_ip(&out[0]);
    assert_eq!((r.protocol, r.dst_addr), (IpProtocol::Icmp, PEER_IP));
    match Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&icmp[..]).unwrap(),
        &ChecksumCaps::software(),
    )
    .unwrap()
    {
        Icmpv4Repr::DstUnreachable {
            reason, header, data, ..
        } => {
            assert_eq!(reason, Icmpv4DstUnreachable::PortUnreachable);
            assert_eq!(
                (header.src_addr, header.dst_addr, header.protocol),
                (PEER_IP, OUR_IP, IpProtocol::Udp)
            );
            assert_eq!(&data[..4], &[0x14, 0xe9, 0x27, 0x0f]);
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..30 {
        f.inject(&udp(5353, 9999, b"nobody"));
    }
    let out = f.poll();
    assert_eq!(out.len(), 9, "burst of 10 in total");
    assert_eq!(f.iface.stats().icmp.rate_limited, 21);
    assert_eq!(f.drops(DropReason::NoSocket), 31);
    f.advance(Duration::from_millis(100));
    f.inject(&udp(5353, 9999, b"nobody"));
    assert_eq!(f.poll().len(), 1, "refilled at 100/s");
    // Never for broadcasts.
    let mut fr = udp(5353, 9999, b"all");
    fr[..6].copy_from_slice(&[0xff; 6]);
    let _ = fr;
}

#[test]
fn icmp_error_reaches_the_udp_socket() {
    let mut f = Fixture::new(config(true));
    let h = f.iface.udp_bind(4000).unwrap();
    f.iface
        .udp(h)
        .unwrap()
        .connect(Endpoint::new(PEER_IP, 9))
        .unwrap();
    f.iface.udp(h).unwrap().send(b"probe").unwrap();
    let out = f.poll();
    let (r, l4) = parse_ip(&out[0]);
    let repr = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        header: r,
        data: &l4[..8],
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCaps::software(),
    );
    f.inject(&ip(PEER_IP, OUR_IP, IpProtocol::Icmp, &p));
    assert!(f.poll().is_empty(), "no error about an error");
    assert_eq!(
        f.iface.udp(h).and_then(|mut sk| sk.take_error()),
        Some(IcmpError {
            reason: Icmpv4DstUnreachable::PortUnreachable,
            next_hop_mtu: 0
        })
    );
    assert_eq!(f.iface.udp(h).and_then(|mut sk| sk.take_error()), None);
    assert_eq!(f.iface.stats().icmp.errors_delivered, 1);
}

#[test]
fn malformed_frames_of_every_kind_are_counted() {
    let mut f = Fixture::new(config(true));
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![0u8; 10], DropReason::BadEthernet),
        (eth(OUR_MAC, EtherType::Ipv6, &[0; 40]), DropReason::BadIpv6),
        (
            eth(OUR_MAC, EtherType::Unknown(0x88b5), &[0; 40]),
            DropReason::UnknownEthertype,
        ),
        (
            eth([2, 9, 9, 9, 9, 9].into_eth(), EtherType::Ipv4, &[0; 40]),
            DropReason::NotForUs,
        ),
        (eth(OUR_MAC, EtherType::Arp, &[0, 1, 8, 0, 6]), DropReason::BadArp),
        (
            eth(
                OUR_MAC,
                EtherType::Arp,
                &[
                    0, 6, 8, 0, 6, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            DropReason::ArpUnsupported,
        ),
        (eth(OUR_MAC, EtherType::Ipv4, &[0x45, 0, 0]), DropReason::BadIpv4),
        (
            ip(
                PEER_IP,
                Ipv4Address::new(198, 18, 0, 77),
                IpProtocol::Udp,
                &[0; 8],
            ),
            DropReason::NotForUs,
        ),
        (
            ip(Ipv4Address::BROADCAST, OUR_IP, IpProtocol::Udp, &[0; 8]),
            DropReason::MartianSource,
        ),
        (
            ip(PEER_IP, OUR_IP, IpProtocol::Unknown(99), &[0; 8]),
            DropReason::UnknownProtocol,
        ),
        (ip(PEER_IP, OUR_IP, IpProtocol::Udp, &[0; 5]), DropReason::BadUdp),
        (
            ip(PEER_IP, OUR_IP, IpProtocol::Icmp, &[8, 0, 0]),
            DropReason::BadIcmp,
        ),
        (ip(PEER_IP, OUR_IP, IpProtocol::Tcp, &[0; 7]), DropReason::BadTcp),
    ];
    for (frame, reason) in cases {
        let before = f.drops(reason);
        f.inject(&frame);
        f.poll();
        assert_eq!(f.drops(reason), before + 1, "{reason} for {frame:02x?}");
    }
    assert_eq!(f.iface.stats().rx_packets, 13);
}

trait IntoEth {
    fn into_eth(self) -> EthernetAddress;
}
impl IntoEth for [u8; 6] {
    fn into_eth(self) -> EthernetAddress {
        EthernetAddress(self)
    }
}

#[test]
fn no_buffer_is_a_counted_drop() {
    let (dev, mut peer, link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 2);
    let mut dev = dev;
    let mut iface = Interface::new(config(true), OUR_MAC);
    let frame = echo_request(b"x");
    let mut v = Vec::new();
    for _ in 0..2 {
        let mut b = peer.alloc().unwrap();
        b.append(frame.len()).unwrap().copy_from_slice(&frame);
        v.push(b);
    }
    peer.tx_burst(Instant::ZERO, &mut v);
    // Echo replies reuse the request's buffer, so they never need a new one.
    while iface.poll(Instant::ZERO, &mut dev) {}
    let mut rx = Vec::new();
    peer.rx_burst(Instant::ZERO, &mut rx, 8);
    assert_eq!(rx.len(), 2);
    // A port unreachable needs a buffer; hold them all.
    let frame = udp(1, 2, b"x");
    for b in rx.iter_mut() {
        b.trim(b.len());
        b.append(frame.len()).unwrap().copy_from_slice(&frame);
    }
    let mut one = vec![rx.pop().unwrap()];
    peer.tx_burst(Instant::ZERO, &mut one);
    iface.poll(Instant::ZERO, &mut dev);
    assert_eq!(iface.stats().drops[DropReason::NoBuffer], 1);
    drop(rx);
    peer.rx_burst(Instant::ZERO, &mut Vec::new(), 8);
    assert_eq!(link.pool().outstanding(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Random bytes, and random bytes behind plausible headers, never panic and every
    /// frame is accounted for: answered, delivered, or counted as a drop.
    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec(
            (0u8..5, proptest::collection::vec(any::<u8>(), 0..120)),
            1..16,
        )
    ) {
        let mut f = Fixture::new(config(true));
        let _u = f.iface.udp_bind(7).unwrap();
        for (kind, bytes) in &frames {
            let frame = match kind {
                0 => bytes.clone(),
                1 => eth(OUR_MAC, EtherType::Arp, bytes),
                2 => eth(OUR_MAC, EtherType::Ipv4, bytes),
                3 => {
                    let proto = IpProtocol::from([1u8, 6, 17][bytes.first().map_or(0, |b| *b as usize % 3)]);
                    ip(PEER_IP, OUR_IP, proto, bytes)
                }
                _ => {
                    let mut b = bytes.clone();
                    if b.len() >= 20 {
                        b[0] = 0x45 + b[0] % 4;
                        b[12..16].copy_from_slice(&PEER_IP.0);
                        b[16..20].copy_from_slice(&OUR_IP.0);
                    }
                    eth(OUR_MAC, EtherType::Ipv4, &b)
                }
            };
            f.inject(&frame);
        }
        f.poll();
        let s = *f.iface.stats();
        prop_assert_eq!(s.rx_packets, frames.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// IPv6 likewise: random bytes behind an IPv6 header to our address (TCP, UDP, ICMPv6,
    /// fragment, hop-by-hop, routing and destination option headers, no next header, and
    /// anything), random bytes as IPv6 frames, and random fragments of one datagram never
    /// panic, and every frame is accounted for.
    #[test]
    fn random_ipv6_frames_never_panic(
        frames in proptest::collection::vec(
            (0u8..3, 0u8..10, proptest::collection::vec(any::<u8>(), 0..160)),
            1..16,
        )
    ) {
        let ours = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
        let peer = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
        let mut cfg = config(true);
        cfg.ipv6 = vec![Ipv6Cidr::new(ours, 64)];
        let mut f = Fixture::new(cfg);
        let _u = f.iface.udp_bind(7).unwrap();
        let _l = f.iface.tcp_listen(80, 8).unwrap();
        for (kind, next, bytes) in &frames {
            let frame = match kind {
                0 => eth(OUR_MAC, EtherType::Ipv6, bytes),
                _ => {
                    let nh = [6u8, 17, 58, 44, 0, 43, 60, 59, 132, 255][*next as usize];
                    let mut p = vec![0u8; 40 + bytes.len()];
                    Ipv6Repr {
                        src_addr: peer,
                        dst_addr: ours,
                        next_header: sluice_wire::IpProtocol::from(nh),
                        payload_len: bytes.len(),
                        hop_limit: if *kind == 1 { 64 } else { 255 },
                    }
                    .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
                    p[40..].copy_from_slice(bytes);
                    eth(OUR_MAC, EtherType::Ipv6, &p)
                }
            };
            f.inject(&frame);
        }
        f.poll();
        let s = *f.iface.stats();
        prop_assert_eq!(s.rx_packets, frames.len() as u64);
        let later = f.now + Duration::from_secs(40);
        f.now = later;
        f.poll();
        prop_assert_eq!(f.iface.reassembly_held(), (0, 0), "fragments forgotten after 30 s");
    }
}

pub(crate) fn tcp_seg(repr: &sluice_wire::TcpRepr) -> Vec<u8> {
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut sluice_wire::TcpPacket::new_unchecked(&mut p[..]),
        PEER_IP,
        OUR_IP,
        &ChecksumCaps::software(),
    );
    ip(PEER_IP, OUR_IP, IpProtocol::Tcp, &p)
}

fn syn(dst_port: u16) -> sluice_wire::TcpRepr<'static> {
    sluice_wire::TcpRepr {
        src_port: 45678,
        dst_port,
        seq: sluice_wire::SeqNumber(1000),
        ack: None,
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::SYN),
        window: 65535,
        urgent: 0,
        options: sluice_wire::TcpOptions {
            mss: Some(1460),
            ..Default::default()
        },
        payload: &[],
    }
}

fn parse_tcp(frame: &[u8]) -> (Ipv4Repr, sluice_wire::TcpRepr<'static>) {
    let (r, l4) = parse_ip(frame);
    let l4: &'static [u8] = Box::leak(l4.into_boxed_slice());
    let t = sluice_wire::TcpRepr::parse(
        &sluice_wire::TcpPacket::new_checked(l4).unwrap(),
        r.src_addr,
        r.dst_addr,
        &ChecksumCaps::software(),
    )
    .unwrap();
    (r, t)
}

#[test]
fn tcp_syn_to_closed_port_gets_rst() {
    let mut f = Fixture::new(config(true));
    f.inject(&tcp_seg(&syn(80)));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (r, t) = parse_tcp(&out[0]);
    assert_eq!((r.src_addr, r.dst_addr), (OUR_IP, PEER_IP));
    // RFC 9293 3.10.7.1, no ACK in the segment: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!((t.src_port, t.dst_port), (80, 45678));
    assert!(t.flags.rst());
    assert_eq!(t.seq, sluice_wire::SeqNumber(0));
    assert_eq!(t.ack, Some(sluice_wire::SeqNumber(1001)));
    // With an ACK: <SEQ=SEG.ACK><CTL=RST>.
    let mut seg = syn(80);
    seg.flags = sluice_wire::TcpFlags::NONE;
    seg.ack = Some(sluice_wire::SeqNumber(777));
    seg.payload = b"data";
    f.inject(&tcp_seg(&seg));
    let (_, t) = parse_tcp(&f.poll()[0]);
    assert_eq!((t.seq, t.ack), (sluice_wire::SeqNumber(777), None));
    // Never a RST for a RST.
    let mut seg = syn(80);
    seg.flags = sluice_wire::TcpFlags(sluice_wire::TcpFlags::RST);
    f.inject(&tcp_seg(&seg));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::NoSocket), 3);
    assert_eq!(f.iface.stats().tcp.rst_tx, 2);
}

#[test]
fn tcp_bad_checksum_is_a_counted_drop() {
    let mut f = Fixture::new(config(true));
    let mut fr = tcp_seg(&syn(80));
    let n = fr.len();
    fr[n - 1] ^= 0x40; // an option byte
    f.inject(&fr);
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::Checksum), 1);
}

/// The peer's segment after `syn(80)` was answered with `synack`: the ACK that completes
/// the handshake, carrying `GET /`.
fn get_after(synack: &sluice_wire::TcpRepr) -> sluice_wire::TcpRepr<'static> {
    sluice_wire::TcpRepr {
        seq: sluice_wire::SeqNumber(1001),
        ack: Some(synack.seq + 1),
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::PSH),
        options: Default::default(),
        payload: b"GET /",
        ..syn(80)
    }
}

#[test]
fn tcp_listener_answers_syn_and_accepts() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    assert_eq!(f.iface.tcp_listen(80, 4), Err(TcpListenError::InUse));
    f.inject(&tcp_seg(&syn(80)));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (_, synack) = parse_tcp(&out[0]);
    assert!(synack.flags.syn());
    assert_eq!(synack.ack, Some(sluice_wire::SeqNumber(1001)));
    assert!(f.iface.tcp_accept(l).is_none(), "not established yet");
    let ack = get_after(&synack);
    f.inject(&tcp_seg(&ack));
    f.poll();
    let h = f.iface.tcp_accept(l).expect("established");
    assert_eq!(f.state(h), TcpState::Established);
    assert_eq!(
        f.iface.tcp_status(h).map(|t| t.remote()),
        Some(Endpoint::new(PEER_IP, 45678))
    );
    assert!(f.iface.tcp_status(h).is_some_and(|t| t.can_recv()));
    let mut buf = [0u8; 16];
    assert_eq!(f.iface.tcp(h).unwrap().recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"GET /");
    assert_eq!(f.iface.tcp(h).unwrap().send(b"200"), Ok(3));
    let out = f.poll();
    let (_, data) = parse_tcp(out.last().unwrap());
    assert_eq!(data.payload, b"200");
    // The ISN is a keyed hash: another key gives another ISN for the same 4-tuple.
    let mut cfg = config(true);
    cfg.isn_key = IsnKey::fixed([8; 16]);
    let mut g = Fixture::new(cfg);
    g.iface.tcp_listen(80, 4).unwrap();
    g.inject(&tcp_seg(&syn(80)));
    let (_, other) = parse_tcp(&g.poll()[0]);
    assert_ne!(other.seq, synack.seq);
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.abort()));
    let out = f.poll();
    assert!(parse_tcp(&out[0]).1.flags.rst());
    assert_eq!(f.iface.tcp_connections(), 0, "aborted and removed");
    assert_eq!(f.state(h), TcpState::Closed);
}

#[test]
fn isn_moves_with_the_clock() {
    let key = IsnKey::fixed([1; 16]);
    let a = Endpoint::new(OUR_IP, 1);
    let b = Endpoint::new(PEER_IP, 2);
    let i0 = crate::tcp::isn(&key, a, b, Instant::ZERO);
    let i1 = crate::tcp::isn(&key, a, b, Instant::from_micros(400));
    assert_eq!(i1.0.wrapping_sub(i0.0), 100);
    assert_ne!(crate::tcp::isn(&key, b, a, Instant::ZERO), i0);
}

/// The bytes of a TCP segment from `src` to `dst`, with a correct checksum.
fn tcp_bytes(repr: &sluice_wire::TcpRepr, src: Ipv4Address, dst: Ipv4Address) -> Vec<u8> {
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut sluice_wire::TcpPacket::new_unchecked(&mut p[..]),
        src,
        dst,
        &ChecksumCaps::software(),
    );
    p
}

/// A frame carrying `repr` from `src` to `dst`, sent to the Ethernet address `eth_dst`.
fn tcp_frame(
    repr: &sluice_wire::TcpRepr,
    src: Ipv4Address,
    dst: Ipv4Address,
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let l4 = tcp_bytes(repr, src, dst);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: l4.len(),
        ttl: 64,
    };
    let mut p = vec![0u8; ip.buffer_len()];
    ip.emit(
        &mut Ipv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCaps::software(),
    );
    p[20..].copy_from_slice(&l4);
    eth(eth_dst, EtherType::Ipv4, &p)
}

const SUBNET_BROADCAST: Ipv4Address = Ipv4Address::new(198, 18, 0, 255);

#[test]
fn tcp_connect_to_broadcast_multicast_or_unspecified_is_refused() {
    // RFC 9293 MUST-46.
    let mut f = Fixture::new(config(true));
    f.iface.poll(f.now, &mut f.dev);
    for addr in [
        Ipv4Address::BROADCAST,
        SUBNET_BROADCAST,
        Ipv4Address::new(224, 0, 0, 1),
        Ipv4Address::new(239, 255, 255, 250),
        Ipv4Address::UNSPECIFIED,
        OUR_IP,
    ] {
        assert_eq!(
            f.iface.tcp_connect(addr, 80),
            Err(TcpConnectError::Unaddressable),
            "{addr}"
        );
        assert_eq!(
            f.iface.tcp_connect_from(addr, 80, 5000),
            Err(TcpConnectError::Unaddressable),
            "{addr}"
        );
    }
    assert_eq!(f.iface.tcp_connections(), 0);
    assert!(f.poll().is_empty(), "no SYN left");
}

#[test]
fn tcp_to_a_broadcast_or_multicast_destination_is_silently_discarded() {
    // RFC 9293 MUST-57: no SYN-ACK, no RST, counted.
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let cases = [
        (Ipv4Address::BROADCAST, EthernetAddress::BROADCAST),
        (SUBNET_BROADCAST, EthernetAddress::BROADCAST),
        (Ipv4Address::new(224, 0, 0, 1), OUR_MAC),
        (Ipv4Address::new(239, 1, 2, 3), EthernetAddress::BROADCAST),
    ];
    for (dst, mac) in cases {
        f.inject(&tcp_frame(&syn(80), PEER_IP, dst, mac));
        f.inject(&tcp_frame(&syn(81), PEER_IP, dst, mac)); // a closed port: no RST either
    }
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::NotForUs), 2 * cases.len() as u64);
    assert_eq!(f.iface.stats().tcp.segments_rx, 0);
    assert_eq!(f.iface.stats().tcp.rst_tx, 0);
    assert_eq!(f.iface.tcp_listener_pending(l), 0);
    assert_eq!(f.iface.tcp_connections(), 0);
}

#[test]
fn syn_from_a_martian_source_gets_no_syn_ack() {
    // RFC 9293 MUST-63 (and RFC 1122 3.2.1.3 for the other invalid sources).
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let sources = [
        Ipv4Address::BROADCAST,
        SUBNET_BROADCAST,
        Ipv4Address::new(198, 18, 0, 0), // the subnet's network address
        Ipv4Address::new(224, 0, 0, 5),
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::new(0, 1, 2, 3),
        Ipv4Address::new(127, 0, 0, 1),
        Ipv4Address::new(240, 0, 0, 1),
        OUR_IP,
    ];
    for src in sources {
        f.inject(&tcp_frame(&syn(80), src, OUR_IP, OUR_MAC));
        f.inject(&tcp_frame(&syn(81), src, OUR_IP, OUR_MAC));
    }
    assert!(f.poll().is_empty(), "no SYN-ACK, no RST, no ARP request");
    assert_eq!(f.drops(DropReason::MartianSource), 2 * sources.len() as u64);
    // A UDP datagram from one is dropped too (no port unreachable).
    f.inject(&ip(
        Ipv4Address::new(198, 18, 0, 0),
        OUR_IP,
        IpProtocol::Udp,
        &udp(9, 9, b"x"),
    ));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::MartianSource), 2 * sources.len() as u64 + 1);
    assert_eq!(f.iface.stats().tcp.segments_rx, 0);
    assert_eq!(f.iface.tcp_listener_pending(l), 0);
    assert_eq!(f.iface.tcp_connections(), 0);
    // The same SYN from a unicast source is answered.
    f.inject(&tcp_frame(&syn(80), PEER_IP, OUR_IP, OUR_MAC));
    assert!(parse_tcp(&f.poll()[0]).1.flags.syn());
}

#[test]
fn emitted_packets_use_the_configured_ttl_and_our_address() {
    // RFC 9293 MUST-49 (TTL), MUST-44/45 (the source address of our segments).
    let mut cfg = config(true);
    cfg.ttl = 7;
    let mut f = Fixture::new(cfg);
    f.iface.tcp_listen(80, 4).unwrap();
    f.inject(&tcp_seg(&syn(80))); // SYN-ACK
    f.inject(&tcp_seg(&syn(81))); // RST
    let h = f.iface.tcp_connect(PEER_IP, 443).unwrap(); // SYN
    let out = f.poll();
    assert_eq!(out.len(), 3);
    for frame in &out {
        let (r, _) = parse_tcp(frame);
        assert_eq!((r.ttl, r.src_addr, r.dst_addr), (7, OUR_IP, PEER_IP));
    }
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.abort()));
    f.poll();
    // The default is 64.
    assert_eq!(config(true).ttl, 64);
}

#[test]
fn emitted_tcp_checksums_are_right_or_left_to_the_device() {
    // RFC 9293 MUST-2.
    let mut f = Fixture::new(config(true));
    f.iface.tcp_listen(80, 4).unwrap();
    f.inject(&tcp_seg(&syn(80)));
    let out = f.poll();
    let (_, l4) = parse_ip(&out[0]);
    let p = sluice_wire::TcpPacket::new_checked(&l4[..]).unwrap();
    assert!(p.verify_checksum(OUR_IP, PEER_IP));
    assert_ne!(p.checksum(), 0);
    // With transmit offload, the pseudo-header sum is left for the device to finish.
    let mut cfg = config(true);
    cfg.checksum = Some(ChecksumCaps {
        tcp: sluice_wire::Checksum::None,
        ..ChecksumCaps::software()
    });
    let mut g = Fixture::new(cfg);
    g.iface.tcp_listen(80, 4).unwrap();
    g.inject(&tcp_seg(&syn(80)));
    let out = g.poll();
    let (_, l4) = parse_ip(&out[0]);
    let p = sluice_wire::TcpPacket::new_checked(&l4[..]).unwrap();
    assert_eq!(
        p.checksum(),
        sluice_wire::ip::pseudo_header_v4(OUR_IP, PEER_IP, IpProtocol::Tcp, l4.len() as u16)
    );
}

#[test]
fn tcp_with_an_illegal_option_length_is_a_counted_drop() {
    // RFC 9293 MUST-7: no crash, no SYN-ACK, counted.
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    for len in [0u8, 1, 3, 40] {
        let mut l4 = tcp_bytes(&syn(80), PEER_IP, OUR_IP);
        assert_eq!(&l4[20..22], &[2, 4], "the MSS option");
        l4[21] = len;
        sluice_wire::TcpPacket::new_unchecked(&mut l4[..]).fill_checksum(PEER_IP, OUR_IP);
        f.inject(&ip(PEER_IP, OUR_IP, IpProtocol::Tcp, &l4));
    }
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::BadTcp), 4);
    assert_eq!(f.iface.tcp_listener_pending(l), 0);
}

#[test]
fn tcp_in_a_packet_with_ip_options_is_processed() {
    // RFC 9293 MUST-50: IP options (here Router Alert, then NOP NOP NOP EOL) are ignored.
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let with_options = |l4: &[u8]| {
        let mut hdr = vec![0x47, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        hdr.extend_from_slice(&PEER_IP.0);
        hdr.extend_from_slice(&OUR_IP.0);
        hdr.extend_from_slice(&[148, 4, 0, 0, 1, 1, 1, 0]);
        let total = (hdr.len() + l4.len()) as u16;
        hdr[2..4].copy_from_slice(&total.to_be_bytes());
        let c = !sluice_wire::checksum::sum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        hdr.extend_from_slice(l4);
        eth(OUR_MAC, EtherType::Ipv4, &hdr)
    };
    f.inject(&with_options(&tcp_bytes(&syn(80), PEER_IP, OUR_IP)));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][14], 0x45, "no options in our answer");
    let (_, synack) = parse_tcp(&out[0]);
    assert!(synack.flags.syn() && synack.ack.is_some());
    let ack = sluice_wire::TcpRepr {
        seq: sluice_wire::SeqNumber(1001),
        ack: Some(synack.seq + 1),
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::PSH),
        options: Default::default(),
        payload: b"hello",
        ..syn(80)
    };
    f.inject(&with_options(&tcp_bytes(&ack, PEER_IP, OUR_IP)));
    f.poll();
    let h = f.iface.tcp_accept(l).expect("established");
    let mut buf = [0u8; 8];
    assert_eq!(f.iface.tcp(h).unwrap().recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(f.iface.stats().drops.total(), 0);
}

#[test]
fn syn_mss_follows_the_mtu() {
    // RFC 9293 MUST-67: the MSS we send is derived from the interface MTU.
    let mut cfg = config(true);
    cfg.mtu = 1000;
    let mut f = Fixture::new(cfg);
    f.iface.tcp_listen(80, 4).unwrap();
    f.inject(&tcp_seg(&syn(80)));
    let h = f.iface.tcp_connect(PEER_IP, 443).unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 2);
    for frame in &out {
        assert_eq!(parse_tcp(frame).1.options.mss, Some(960));
    }
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.abort()));
    f.poll();
}

#[test]
fn listen_on_the_port_of_a_connection_in_syn_sent() {
    // RFC 9293 MUST-42 (a LISTEN on a port while a connection from it is in SYN-SENT)
    // and MUST-41 (the passive OPEN leaves that connection alone).
    let mut f = Fixture::new(config(true));
    f.iface.poll(f.now, &mut f.dev);
    let h = f.iface.tcp_connect_from(PEER_IP, 80, 5000).unwrap();
    assert!(parse_tcp(&f.poll()[0]).1.flags.syn());
    let l = f.iface.tcp_listen(5000, 4).unwrap();
    assert_eq!(f.state(h), TcpState::SynSent);
    // Another remote endpoint's SYN to port 5000 reaches the listener.
    f.inject(&tcp_seg(&syn(5000)));
    let (_, synack) = parse_tcp(&f.poll()[0]);
    assert!(synack.flags.syn() && synack.ack.is_some());
    assert_eq!(synack.src_port, 5000);
    assert_eq!(f.state(h), TcpState::SynSent);
    assert_eq!(
        f.iface.tcp_status(h).map(|t| t.remote()),
        Some(Endpoint::new(PEER_IP, 80))
    );
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.abort()));
    assert!(f.iface.tcp_unlisten(l));
    f.poll();
}

#[test]
fn icmp_port_unreachable_aborts_a_connecting_tcb() {
    let mut f = Fixture::new(config(true));
    f.iface.poll(f.now, &mut f.dev);
    let h = f.iface.tcp_connect(PEER_IP, 80).unwrap();
    let out = f.poll();
    let (r, l4) = parse_ip(&out[0]);
    let (_, syn) = parse_tcp(&out[0]);
    assert!(syn.flags.syn());
    let repr = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        header: r,
        data: &l4[..8],
    };
    f.inject(&icmp_from_peer(&repr));
    f.poll();
    assert_eq!(f.iface.stats().icmp.errors_delivered, 1);
    assert_eq!(f.state(h), TcpState::Closed);
    // A port unreachable answering the SYN is a refusal (ECONNREFUSED).
    assert_eq!(f.error(h), Some(ConnError::Refused));
    assert_eq!(
        f.iface.tcp(h).unwrap().send(b"x"),
        Err(TcpSendError::Connection(ConnError::Refused))
    );
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.close()));
    f.poll();
    assert_eq!(f.iface.tcp_connections(), 0, "closed and given up: removed");
}

#[test]
fn idle_interface_does_nothing() {
    let mut f = Fixture::new(config(true));
    assert!(!f.iface.poll(f.now, &mut f.dev));
    assert_eq!(f.iface.poll_at(), None);
    let l = f.iface.tcp_listen(80, 1).unwrap();
    let u = f.iface.udp_bind(53).unwrap();
    assert!(!f.iface.poll(f.now, &mut f.dev));
    assert_eq!(f.iface.poll_at(), None);
    assert!(f.iface.tcp_unlisten(l));
    assert!(f.iface.udp(u).map(|sk| sk.close()).is_some());
    assert_eq!(f.iface.stats(), &Stats::default());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Valid frames of every kind with a few bytes changed: reaches deeper than random
    /// bytes. Never panics, and the listener, socket and neighbour state stay usable.
    #[test]
    fn mutated_valid_frames_never_panic(
        kind in 0usize..7,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..4),
        truncate in proptest::option::of(any::<u16>()),
    ) {
        let mut f = Fixture::new(config(false));
        let _l = f.iface.tcp_listen(80, 2).unwrap();
        let _u = f.iface.udp_bind(53).unwrap();
        let ack = sluice_wire::TcpRepr {
            ack: Some(sluice_wire::SeqNumber(5)),
            flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::PSH),
            payload: b"payload",
            ..syn(80)
        };
        let mut frame = match kind {
            0 => arp(ArpOp::Request, PEER_IP, EthernetAddress::UNSPECIFIED, OUR_IP),
            1 => arp(ArpOp::Reply, PEER_IP, OUR_MAC, OUR_IP),
            2 => echo_request(b"0123456789"),
            3 => udp(1000, 53, b"question"),
            4 => udp(1000, 54, b"nobody"),
            5 => tcp_seg(&syn(80)),
            _ => tcp_seg(&ack),
        };
        for (at, byte) in edits {
            let i = usize::from(at) % frame.len();
            frame[i] = byte;
        }
        if let Some(t) = truncate {
            frame.truncate(usize::from(t) % (frame.len() + 1));
        }
        f.inject(&frame);
        f.poll();
        f.advance(Duration::from_secs(5));
        f.poll();
        prop_assert_eq!(f.iface.stats().rx_packets, 1);
    }
}

#[test]
fn tcp_in_place_io_and_chosen_local_port() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    assert!(!f.iface.tcp_port_free(PEER_IP, 5000, 80), "listened on");
    assert!(f.iface.tcp_port_free(PEER_IP, 5000, 40000));
    let h = f.iface.tcp_connect_from(PEER_IP, 5000, 40000).unwrap();
    assert_eq!(f.iface.tcp_status(h).map(|t| t.local_port()), Some(40000));
    assert!(!f.iface.tcp_port_free(PEER_IP, 5000, 40000));
    assert_eq!(
        f.iface.tcp_connect_from(PEER_IP, 5000, 40000),
        Err(TcpConnectError::PortInUse)
    );
    assert_eq!(f.iface.tcp_listener_pending(l), 0);
    // Accept one connection and use the in-place calls.
    f.inject(&tcp_seg(&syn(80)));
    let out = f.poll();
    let synack = out
        .iter()
        .map(|fr| parse_tcp(fr).1)
        .find(|t| t.flags.syn() && t.ack.is_some())
        .unwrap();
    let ack = sluice_wire::TcpRepr {
        seq: sluice_wire::SeqNumber(1001),
        ack: Some(synack.seq + 1),
        flags: sluice_wire::TcpFlags::NONE,
        options: Default::default(),
        payload: b"abcdef",
        ..syn(80)
    };
    f.inject(&tcp_seg(&ack));
    f.poll();
    assert_eq!(f.iface.tcp_listener_pending(l), 1);
    let c = f.iface.tcp_accept(l).unwrap();
    assert_eq!(
        f.iface.tcp(c).unwrap().recv_with(|d| (2, d.to_vec())),
        Ok(Some(b"abcdef".to_vec()))
    );
    assert_eq!(
        f.iface.tcp(c).unwrap().recv_with(|d| (d.len(), d.len())),
        Ok(Some(4))
    );
    assert_eq!(f.iface.tcp(c).unwrap().recv_with(|d| (d.len(), ())), Ok(None));
    let n = f
        .iface
        .tcp(c)
        .ok_or(crate::TcpSendError::InvalidHandle)
        .and_then(|mut sk| {
            sk.send_with(|room| {
                room[..3].copy_from_slice(b"xyz");
                3
            })
        });
    assert_eq!(n, Ok(3));
    let out = f.poll();
    assert!(out.iter().any(|fr| parse_tcp(fr).1.payload == b"xyz"));
}

#[test]
fn a_syn_flood_beyond_the_backlog_is_answered_with_cookies_and_a_client_gets_in() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    // 200 spoofed SYNs from as many ports: 4 fill the backlog, the rest get cookies.
    for port in 0..200u16 {
        let s = sluice_wire::TcpRepr {
            src_port: 10_000 + port,
            ..syn(80)
        };
        f.inject(&tcp_seg(&s));
    }
    let out = f.poll();
    assert_eq!(out.len(), 200, "every SYN answered");
    assert!(out.iter().all(|fr| {
        let (_, t) = parse_tcp(fr);
        t.flags.syn() && t.ack == Some(sluice_wire::SeqNumber(1001))
    }));
    assert_eq!(f.iface.stats().tcp.syn_cookies_tx, 196);
    assert_eq!(f.iface.tcp_connections(), 4, "no state for the cookies");
    // A legitimate client answers its cookie SYN-ACK and gets a connection.
    let (_, synack) = parse_tcp(&out[150]);
    let ack = sluice_wire::TcpRepr {
        src_port: synack.dst_port,
        seq: sluice_wire::SeqNumber(1001),
        ack: Some(synack.seq + 1),
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::PSH),
        options: Default::default(),
        payload: b"hello",
        ..syn(80)
    };
    f.inject(&tcp_seg(&ack));
    f.poll();
    let h = f.iface.tcp_accept(l).expect("the cookie was valid");
    let states = f.iface.tcp_state_counts();
    assert_eq!(states[TcpState::Established.index()], 1);
    assert_eq!(states[TcpState::SynReceived.index()], 4);
    assert_eq!(
        f.iface.tcp_status(h).map(|t| t.remote()),
        Some(Endpoint::new(PEER_IP, synack.dst_port))
    );
    let mut buf = [0u8; 8];
    assert_eq!(f.iface.tcp(h).unwrap().recv(&mut buf), Ok(5));
    // A forged ACK (wrong cookie) gets no connection.
    let forged = sluice_wire::TcpRepr {
        src_port: 10_151,
        ack: Some(synack.seq + 99),
        ..ack
    };
    f.inject(&tcp_seg(&forged));
    f.poll();
    assert!(f.iface.tcp_accept(l).is_none());
}

/// Accepts a connection from the peer (port 45678 -> 80) and returns the handle and the
/// next sequence numbers of the peer and of ours.
fn accepted(f: &mut Fixture) -> (TcpHandle, sluice_wire::SeqNumber, sluice_wire::SeqNumber) {
    let l = f.iface.tcp_listen(80, 4).unwrap();
    accepted_from(f, l, 45678)
}

/// Accepts a connection from the peer's port `src_port` on listener `l` (port 80).
fn accepted_from(
    f: &mut Fixture,
    l: ListenerHandle,
    src_port: u16,
) -> (TcpHandle, sluice_wire::SeqNumber, sluice_wire::SeqNumber) {
    f.inject(&tcp_seg(&sluice_wire::TcpRepr { src_port, ..syn(80) }));
    let (_, synack) = parse_tcp(&f.poll()[0]);
    let ack = sluice_wire::TcpRepr {
        src_port,
        seq: sluice_wire::SeqNumber(1001),
        ack: Some(synack.seq + 1),
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK),
        options: Default::default(),
        payload: &[],
        ..syn(80)
    };
    f.inject(&tcp_seg(&ack));
    f.poll();
    let h = f.iface.tcp_accept(l).expect("established");
    (h, sluice_wire::SeqNumber(1001), synack.seq + 1)
}

/// `n` in-order data segments of `len` bytes from the peer, starting at `seq`.
fn data_segments(
    n: usize,
    len: usize,
    seq: sluice_wire::SeqNumber,
    ack: sluice_wire::SeqNumber,
) -> Vec<Vec<u8>> {
    let payload = vec![0x5a; len];
    (0..n)
        .map(|i| {
            tcp_seg(&sluice_wire::TcpRepr {
                seq: seq + i * len,
                ack: Some(ack),
                flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK),
                options: Default::default(),
                payload: &payload,
                ..syn(80)
            })
        })
        .collect()
}

#[test]
fn the_segments_of_one_burst_get_one_ack() {
    let mut f = Fixture::new(config(true));
    let (h, seq, ack) = accepted(&mut f);
    let mss = f.iface.tcp_status(h).map(|t| t.tcb()).unwrap().mss();
    // Eight full-sized segments arrive in one burst: one ACK covers them all.
    for s in data_segments(8, mss, seq, ack) {
        f.inject(&s);
    }
    let out = f.poll();
    let acks: Vec<_> = out.iter().map(|o| parse_tcp(o).1).collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].ack, Some(seq + 8 * mss));
    // The first took the full path, the seven others continued it (GRO).
    assert_eq!(f.iface.stats().tcp.gro_coalesced, 7);
    let mut buf = vec![0u8; 16 * mss];
    assert_eq!(f.iface.tcp(h).unwrap().recv(&mut buf), Ok(8 * mss));
    // Arriving one poll at a time, they are acknowledged at least every second one
    // (RFC 9293 3.8.6.3), as they were before the burst rule.
    let mut g = Fixture::new(config(true));
    let (h, seq, ack) = accepted(&mut g);
    let mut acks = 0;
    for s in data_segments(8, mss, seq, ack) {
        g.inject(&s);
        acks += g.poll().len();
    }
    assert!(acks >= 4, "{acks} ACKs for 8 segments");
    assert_eq!(g.iface.tcp(h).unwrap().recv(&mut buf), Ok(8 * mss));
}

#[test]
fn large_segments_are_cut_to_full_sized_pieces() {
    let mut cfg = config(true);
    cfg.tcp.gso_segments = 8;
    cfg.tcp.nodelay = true;
    // Not limited by a congestion window: the whole write goes out at once.
    cfg.tcp.congestion = sluice_tcp::CongestionKind::Unlimited;
    let mut f = Fixture::new(cfg);
    let (h, peer_seq, our_seq) = accepted(&mut f);
    let mss = f.iface.tcp_status(h).map(|t| t.tcb()).unwrap().seg_payload_max();
    // Ten segments' worth: one large segment of eight
    // pieces, then two more full ones, each piece on the wire at most one MSS.
    let data: Vec<u8> = (0..10 * mss).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(f.iface.tcp(h).unwrap().send(&data), Ok(data.len()));
    let out = f.poll();
    let segs: Vec<_> = out.iter().map(|o| parse_tcp(o).1).collect();
    let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(segs.len(), 10, "{lens:?}");
    assert_eq!(f.iface.stats().tcp.gso_segments_tx, 10);
    let mut seq = our_seq;
    let mut got = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        // Every piece parsed with its checksum verified in software (parse_tcp).
        assert_eq!(s.seq, seq, "piece {i}");
        assert_eq!(s.ack, Some(peer_seq));
        assert_eq!(
            s.options, segs[0].options,
            "piece {i}: options copied from the first"
        );
        assert!(s.payload.len() <= mss && !s.payload.is_empty());
        // PSH only where the data ends (the last piece of the last segment).
        assert_eq!(s.flags.psh(), i == segs.len() - 1, "piece {i}");
        seq = seq + s.payload.len();
        got.extend_from_slice(s.payload);
    }
    assert_eq!(got, data);
    // Lost data goes again one MSS at a time: after the RTO, go-back-N resends segment by
    // segment, never a large one.
    f.advance(Duration::from_secs(2));
    let again: Vec<_> = f.poll().iter().map(|o| parse_tcp(o).1).collect();
    assert!(!again.is_empty());
    assert_eq!((again[0].seq, again[0].payload.len()), (our_seq, mss));
    assert!(again.iter().all(|s| s.payload.len() <= mss));
    assert_eq!(
        f.iface.stats().tcp.gso_segments_tx,
        10,
        "no large segment after the RTO"
    );
    assert!(f.iface.stats().tcp.retransmits > 0);
}

#[test]
fn gro_never_merges_across_a_hole_a_flag_change_or_another_flow() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let (a, seq, ack) = accepted_from(&mut f, l, 45678);
    let (b, bseq, back) = accepted_from(&mut f, l, 45679);
    let mss = f.iface.tcp_status(a).map(|t| t.tcb()).unwrap().mss();
    let data = |port: u16, seq: sluice_wire::SeqNumber, ack, flags: u8, fill: u8| {
        let payload: &'static [u8] = Box::leak(vec![fill; mss].into_boxed_slice());
        tcp_seg(&sluice_wire::TcpRepr {
            src_port: port,
            seq,
            ack: Some(ack),
            flags: sluice_wire::TcpFlags(flags),
            options: Default::default(),
            payload,
            ..syn(80)
        })
    };
    const ACK: u8 = sluice_wire::TcpFlags::ACK;
    let burst = [
        data(45678, seq, ack, ACK, 1),           // full: the first
        data(45678, seq + mss, ack, ACK, 2),     // coalesced
        data(45678, seq + 3 * mss, ack, ACK, 4), // a hole before it: full
        data(45678, seq + 4 * mss, ack, ACK, 5), // after an out-of-order one: full
        data(45678, seq + 2 * mss, ack, ACK, 3), // fills the hole: full
        data(45679, bseq, back, ACK, 9),         // another flow: full
        data(45678, seq + 5 * mss, ack, ACK, 6), // after the other flow: full
        data(45678, seq + 6 * mss, ack, ACK | sluice_wire::TcpFlags::PSH, 7), // PSH may join
        data(45678, seq + 7 * mss, ack, ACK | sluice_wire::TcpFlags::FIN, 8), // FIN: full
    ];
    for s in &burst {
        f.inject(s);
    }
    f.poll();
    assert_eq!(
        f.iface.stats().tcp.gro_coalesced,
        2,
        "only the two plain continuations"
    );
    // Every byte arrived, in order, and the FIN too.
    let mut buf = vec![0u8; 16 * mss];
    assert_eq!(f.iface.tcp(a).unwrap().recv(&mut buf), Ok(8 * mss));
    for (i, chunk) in buf[..8 * mss].chunks(mss).enumerate() {
        assert!(
            chunk.iter().all(|&x| x == i as u8 + 1),
            "segment {i} out of place"
        );
    }
    assert_eq!(f.state(a), TcpState::CloseWait);
    assert_eq!(f.iface.tcp(b).unwrap().recv(&mut buf), Ok(mss));
    assert!(buf[..mss].iter().all(|&x| x == 9));
    // A different window breaks a run too.
    let before = f.iface.stats().tcp.gro_coalesced;
    f.inject(&data(45679, bseq + mss, back, ACK, 1));
    let payload = vec![2u8; mss];
    f.inject(&tcp_seg(&sluice_wire::TcpRepr {
        src_port: 45679,
        seq: bseq + 2 * mss,
        ack: Some(back),
        flags: sluice_wire::TcpFlags(ACK),
        window: 1000,
        options: Default::default(),
        payload: &payload,
        ..syn(80)
    }));
    f.poll();
    assert_eq!(
        f.iface.stats().tcp.gro_coalesced,
        before,
        "a new window is not coalesced"
    );
    assert_eq!(f.iface.tcp(b).unwrap().recv(&mut buf), Ok(2 * mss));
}

/// RFC 1122 3.2.2.4: Time Exceeded reaches TCP; answering a SYN it fails the connect with
/// EHOSTUNREACH (`ConnError::Unreachable`).
#[test]
fn icmp_time_exceeded_reaches_a_connecting_tcb() {
    let mut f = Fixture::new(config(true));
    f.iface.poll(f.now, &mut f.dev);
    let h = f.iface.tcp_connect(PEER_IP, 80).unwrap();
    let out = f.poll();
    let (r, l4) = parse_ip(&out[0]);
    let repr = Icmpv4Repr::TimeExceeded {
        code: 0,
        header: r,
        data: &l4[..8],
    };
    f.inject(&icmp_from_peer(&repr));
    f.poll();
    assert_eq!(f.iface.stats().icmp.time_exceeded_rx, 1);
    assert_eq!(f.iface.stats().icmp.errors_delivered, 1);
    assert_eq!(f.state(h), TcpState::Closed);
    assert_eq!(f.error(h), Some(ConnError::Unreachable));
    assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.close()));
    f.poll();
}

/// A frame from the peer carrying the ICMP message `repr`.
fn icmp_from_peer(repr: &Icmpv4Repr) -> Vec<u8> {
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut p[..]),
        &ChecksumCaps::software(),
    );
    ip(PEER_IP, OUR_IP, IpProtocol::Icmp, &p)
}

#[test]
fn syn_fin_to_a_listener_is_dropped_and_counted() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let synfin = sluice_wire::TcpRepr {
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::SYN | sluice_wire::TcpFlags::FIN),
        ..syn(80)
    };
    f.inject(&tcp_seg(&synfin));
    assert!(f.poll().is_empty(), "no SYN-ACK to SYN+FIN");
    assert_eq!(f.drops(DropReason::SynFin), 1);
    assert_eq!(f.iface.tcp_connections(), 0);
    // The same SYN without FIN is answered.
    f.inject(&tcp_seg(&syn(80)));
    assert!(parse_tcp(&f.poll()[0]).1.flags.syn());
    assert_eq!(f.iface.tcp_listener_pending(l), 0);
}

#[test]
fn a_flood_of_out_of_window_acks_gets_a_trickle_of_acks_but_data_is_always_answered() {
    let mut f = Fixture::new(config(true));
    let (_h, peer_seq, our_seq) = accepted(&mut f);
    // 1,000 pure ACKs with a sequence number far outside the window, over 1 s.
    let mut answered = 0;
    for i in 0..1000u32 {
        f.inject(&tcp_seg(&sluice_wire::TcpRepr {
            seq: peer_seq + 1_000_000 + i as usize,
            ack: Some(our_seq),
            flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK),
            options: Default::default(),
            ..syn(80)
        }));
        answered += f.poll().len();
        f.advance(Duration::from_millis(1));
    }
    assert!(
        (1..=3).contains(&answered),
        "{answered} ACKs for 1,000 out-of-window ACKs (one per 500 ms)"
    );
    // An out-of-window segment with data is a duplicate to acknowledge, every time.
    for _ in 0..3 {
        f.inject(&tcp_seg(&sluice_wire::TcpRepr {
            seq: peer_seq - 100,
            ack: Some(our_seq),
            flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK),
            options: Default::default(),
            payload: &[1; 50],
            ..syn(80)
        }));
        let out = f.poll();
        assert_eq!(out.len(), 1, "old data is acknowledged");
        assert_eq!(parse_tcp(&out[0]).1.ack, Some(peer_seq));
    }
}

#[test]
fn a_listener_cap_refuses_syns_beyond_it_and_takes_them_again_after_a_close() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 8).unwrap();
    assert!(f.iface.tcp_listener_set_limit(l, 2));
    let (a, _, _) = accepted_from(&mut f, l, 40001);
    let (_b, _, _) = accepted_from(&mut f, l, 40002);
    f.inject(&tcp_seg(&sluice_wire::TcpRepr {
        src_port: 40003,
        ..syn(80)
    }));
    assert!(f.poll().is_empty(), "the third SYN is dropped");
    assert_eq!(f.drops(DropReason::ConnLimit), 1);
    // One connection ends (aborted here: RST, removed); a new one gets in.
    assert!(f.iface.tcp(a).is_some_and(|mut sk| sk.abort()));
    f.poll();
    accepted_from(&mut f, l, 40004);
    assert_eq!(f.drops(DropReason::ConnLimit), 1);
}

#[test]
fn the_interface_cap_refuses_syns_on_any_listener() {
    let mut cfg = config(true);
    cfg.max_connections = 1;
    let mut f = Fixture::new(cfg);
    let l = f.iface.tcp_listen(80, 8).unwrap();
    accepted_from(&mut f, l, 40001);
    f.inject(&tcp_seg(&sluice_wire::TcpRepr {
        src_port: 40002,
        ..syn(80)
    }));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::ConnLimit), 1);
}

#[test]
fn time_wait_is_capped_by_recycling_the_oldest() {
    let mut cfg = config(true);
    cfg.max_time_wait = 4;
    let mut f = Fixture::new(cfg);
    let l = f.iface.tcp_listen(80, 16).unwrap();
    for i in 0..10u16 {
        let port = 41000 + i;
        let (h, peer_seq, our_seq) = accepted_from(&mut f, l, port);
        // We close first: FIN out, the peer ACKs it and sends its own FIN: TIME-WAIT here.
        assert!(f.iface.tcp(h).is_some_and(|mut sk| sk.close()));
        let out = f.poll();
        let (_, fin) = parse_tcp(out.last().expect("our FIN"));
        assert!(fin.flags.fin());
        f.inject(&tcp_seg(&sluice_wire::TcpRepr {
            src_port: port,
            seq: peer_seq,
            ack: Some(our_seq + 1),
            flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK | sluice_wire::TcpFlags::FIN),
            options: Default::default(),
            ..syn(80)
        }));
        f.poll();
        assert!(
            f.iface.tcp_time_wait() <= 4,
            "TIME-WAIT holds {}",
            f.iface.tcp_time_wait()
        );
    }
    assert_eq!(f.iface.tcp_time_wait(), 4);
    assert_eq!(f.iface.tcp_connections(), 4);
    assert_eq!(f.iface.stats().tcp.time_wait_recycled, 6);
    // They expire on their own after 2 MSL.
    f.advance(Duration::from_secs(61));
    f.poll();
    assert_eq!(f.iface.tcp_time_wait(), 0);
    assert_eq!(f.iface.tcp_connections(), 0);
}

#[test]
fn state_counts_follow_every_change() {
    let mut cfg = config(true);
    cfg.max_time_wait = 2;
    let mut f = Fixture::new(cfg);
    let l = f.iface.tcp_listen(80, 16).unwrap();
    let recount = |f: &Fixture| {
        let mut rows = Vec::new();
        f.iface.tcp_conn_infos(0, usize::MAX, &mut rows);
        let mut c = [0usize; 11];
        for r in rows {
            c[r.state.index()] += 1;
        }
        c
    };
    let mut hs = Vec::new();
    for i in 0..6u16 {
        hs.push(accepted_from(&mut f, l, 42000 + i));
        assert_eq!(f.iface.tcp_state_counts(), recount(&f));
    }
    assert_eq!(f.iface.tcp_state_counts()[TcpState::Established.index()], 6);
    // Some closed by us (FIN-WAIT-1), some aborted (gone), an active open (SYN-SENT).
    if let Some(mut sk) = f.iface.tcp(hs[0].0) {
        sk.close();
    }
    if let Some(mut sk) = f.iface.tcp(hs[1].0) {
        sk.abort();
    }
    let _ = f.iface.tcp_connect(PEER_IP, 9999).unwrap();
    f.poll();
    assert_eq!(f.iface.tcp_state_counts(), recount(&f));
    assert_eq!(f.iface.tcp_state_counts()[TcpState::FinWait1.index()], 1);
    assert_eq!(f.iface.tcp_state_counts()[TcpState::SynSent.index()], 1);
    // Timers run their course (the SYN gives up, FIN-WAIT-1 gives up): all counted.
    for _ in 0..400 {
        f.advance(Duration::from_secs(1));
        f.poll();
        assert_eq!(f.iface.tcp_state_counts(), recount(&f));
    }
    assert_eq!(
        f.iface.tcp_state_counts().iter().sum::<usize>(),
        f.iface.tcp_connections()
    );
}

#[test]
fn icmp_parameter_problem_reaches_the_connection_as_a_soft_error() {
    // RFC 1122 3.2.2.5: passed to the transport; TCP takes it as a soft error (4.2.3.9).
    let mut f = Fixture::new(config(true));
    let (h, _, _) = accepted(&mut f);
    assert_eq!(f.iface.tcp(h).unwrap().send(b"data"), Ok(4));
    let out = f.poll();
    let (r, l4) = parse_ip(out.last().expect("the data segment"));
    let repr = Icmpv4Repr::ParamProblem {
        code: 0,
        pointer: 1,
        header: r,
        data: &l4[..8],
    };
    // The message round-trips through the wire format, pointer included.
    let mut icmp = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut icmp[..]),
        &ChecksumCaps::software(),
    );
    let parsed = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&icmp[..]).unwrap(),
        &ChecksumCaps::software(),
    );
    assert!(matches!(
        parsed,
        Ok(Icmpv4Repr::ParamProblem {
            code: 0,
            pointer: 1,
            ..
        })
    ));
    f.inject(&icmp_from_peer(&repr));
    f.poll();
    assert_eq!(f.iface.stats().icmp.param_problem_rx, 1);
    assert_eq!(f.iface.stats().icmp.errors_delivered, 1);
    assert_eq!(f.state(h), TcpState::Established, "soft: the connection stays");
    assert_eq!(
        f.iface.tcp_status(h).and_then(|t| t.tcb().soft_error()),
        Some(sluice_tcp::IcmpError::ParameterProblem)
    );
    // One quoting another connection's segment is not delivered.
    let other = Icmpv4Repr::ParamProblem {
        code: 0,
        pointer: 1,
        header: r,
        data: &[0, 1, 0, 2, 0, 0, 0, 0],
    };
    f.inject(&icmp_from_peer(&other));
    f.poll();
    assert_eq!(f.iface.stats().icmp.errors_delivered, 1);
    assert_eq!(f.drops(DropReason::IcmpIgnored), 1);
}

/// A client (PEER_IP) and a server (OUR_IP) interface over an in-memory link, with their
/// devices.
fn client_and_server() -> (Interface, MemDevice, Interface, MemDevice, MemLink) {
    let (da, db, link) = MemLink::pair(Impairments::default(), Impairments::default(), 3, 65536);
    let client = Interface::new(
        InterfaceConfig::new(Ipv4Cidr::new(PEER_IP, 24), IsnKey::fixed([4; 16])),
        EthernetAddress(da.mac()),
    );
    let server = Interface::new(
        InterfaceConfig::new(Ipv4Cidr::new(OUR_IP, 24), IsnKey::fixed([5; 16])),
        EthernetAddress(db.mac()),
    );
    (client, da, server, db, link)
}

/// A device whose transmit ring takes nothing while `full` is set.
struct Jammed {
    inner: MemDevice,
    full: bool,
}

impl Device for Jammed {
    type Buf = <MemDevice as Device>::Buf;
    fn caps(&self) -> sluice_dev::DeviceCaps {
        self.inner.caps()
    }
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<Self::Buf>, max: usize) -> usize {
        self.inner.rx_burst(now, out, max)
    }
    fn alloc(&mut self) -> Option<Self::Buf> {
        self.inner.alloc()
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<Self::Buf>) -> usize {
        if self.full {
            0
        } else {
            self.inner.tx_burst(now, bufs)
        }
    }
}

/// Opens `n` connections from `client` to a listener of `server` on port 80, whose ring is
/// not jammed yet: the client's handles, the server's, and the time reached. (Most SYNs
/// wait for ARP and their first retransmission.)
fn open_through_jammed(
    client: &mut Interface,
    ca: &mut MemDevice,
    server: &mut Interface,
    sb: &mut Jammed,
    n: usize,
) -> (Vec<TcpHandle>, Vec<TcpHandle>, Instant) {
    let l = server.tcp_listen(80, 256).unwrap();
    let conns: Vec<TcpHandle> = (0..n).map(|_| client.tcp_connect(OUR_IP, 80).unwrap()).collect();
    let mut now = Instant::from_millis(1);
    let mut accepted = Vec::new();
    for _ in 0..5000 {
        while client.poll(now, ca) | server.poll(now, sb) {}
        while let Some(h) = server.tcp_accept(l) {
            accepted.push(h);
        }
        if accepted.len() == n {
            break;
        }
        now += Duration::from_millis(1);
    }
    assert_eq!(accepted.len(), n);
    (conns, accepted, now)
}

/// While the device's ring is full, connections with data to send wait in the pending list
/// once each and untouched (polls do not visit them only to queue them again, and calls
/// on them do not add them twice); once the ring has room, every byte goes out.
#[test]
fn a_full_ring_leaves_waiting_connections_alone_and_loses_nothing() {
    let (mut client, da, mut server, db, _link) = client_and_server();
    let mut ca = da;
    let mut sb = Jammed {
        inner: db,
        full: false,
    };
    let (conns, accepted, mut now) = open_through_jammed(&mut client, &mut ca, &mut server, &mut sb, 200);
    // The ring fills: every connection has 10 KB to send, twice over.
    sb.full = true;
    for round in 0..2 {
        for &h in &accepted {
            assert_eq!(
                server
                    .tcp(h)
                    .ok_or(crate::TcpSendError::InvalidHandle)
                    .and_then(|mut sk| sk.send(&[round as u8 + 1; 5000])),
                Ok(5000)
            );
        }
        server.poll(now, &mut sb);
    }
    let waiting = server.tcp.pending.clone();
    assert!(waiting.len() <= 200, "each connection once: {}", waiting.len());
    for _ in 0..50 {
        for &h in &accepted {
            // Calls on waiting connections do not queue them again.
            let _ = server
                .tcp(h)
                .ok_or(crate::TcpSendError::InvalidHandle)
                .and_then(|mut sk| sk.send(b""));
        }
        server.poll(now, &mut sb);
        now += Duration::from_micros(10);
    }
    assert_eq!(server.tcp.pending, waiting, "untouched while the ring is full");
    // Room again: everything arrives.
    sb.full = false;
    let mut got = vec![0usize; conns.len()];
    let mut buf = vec![0u8; 65536];
    for _ in 0..20_000 {
        while client.poll(now, &mut ca) | server.poll(now, &mut sb) {}
        for (i, &h) in conns.iter().enumerate() {
            while let Ok(n) = client
                .tcp(h)
                .ok_or(crate::TcpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv(&mut buf))
            {
                if n == 0 {
                    break;
                }
                assert!(buf[..n].iter().all(|&b| b == 1 || b == 2));
                got[i] += n;
            }
        }
        if got.iter().all(|&n| n == 10_000) {
            break;
        }
        now += Duration::from_millis(1);
    }
    assert!(
        got.iter().all(|&n| n == 10_000),
        "every byte arrived: {:?}",
        &got[..8]
    );
}

/// Connections whose SYNs waited for ARP and were dropped past its queue retransmit them
/// at their first RTO, all in one poll, while the device's ring is full: those held back
/// go out once it has room, not at the RTO after (they were passed over for lack of a
/// `dirty` mark, and 10,000 connections took seconds to open).
#[test]
fn retransmissions_held_back_by_a_full_ring_go_out_when_it_has_room() {
    let (mut client, da, mut server, mut sb, _link) = client_and_server();
    let mut ca = Jammed {
        inner: da,
        full: false,
    };
    let l = server.tcp_listen(80, 1024).unwrap();
    let n = 300;
    let conns: Vec<TcpHandle> = (0..n).map(|_| client.tcp_connect(OUR_IP, 80).unwrap()).collect();
    let mut now = Instant::from_millis(1);
    let mut accepted = 0;
    // The first RTO is 1 s (the second 3 s later): the ring is full when it fires.
    while now < Instant::from_millis(1500) {
        ca.full = (Instant::from_millis(995)..Instant::from_millis(1010)).contains(&now);
        while client.poll(now, &mut ca) | server.poll(now, &mut sb) {}
        while server.tcp_accept(l).is_some() {
            accepted += 1;
        }
        now += Duration::from_millis(1);
    }
    assert!(
        client.stats().drops.get(DropReason::ArpQueueFull) > 0,
        "SYNs waited for ARP"
    );
    let open = conns
        .iter()
        .filter(|&&h| {
            client
                .tcp_status(h)
                .map_or(crate::TcpState::Closed, |t| t.state())
                == TcpState::Established
        })
        .count();
    assert_eq!((open, accepted), (n, n), "all open well before the second RTO");
}

/// The destination ports and payload lengths of the TCP segments in `frames`, in order.
fn tcp_ports_and_lens<B: PacketBuf>(frames: &[B]) -> Vec<(u16, usize)> {
    frames
        .iter()
        .filter_map(|b| {
            let e = EthernetFrame::new_checked(b.data()).ok()?;
            let p = Ipv4Packet::new_checked(e.payload()).ok()?;
            let t = sluice_wire::tcp::TcpPacket::new_checked(p.payload()).ok()?;
            Some((t.dst_port(), t.payload().len()))
        })
        .collect()
}

/// With many connections, a full ring holds each one's next segment as a frame, built
/// while the connection was at hand, instead of keeping the connection waiting (with
/// thousands of them, a cold visit each when the ring has room): none waits in the
/// pending queue, and once the ring has room the frames leave oldest first.
#[test]
fn a_full_ring_holds_many_connections_segments_as_frames_and_sends_them_in_order() {
    let (mut client, mut ca, mut server, db, _link) = client_and_server();
    let mut sb = Jammed {
        inner: db,
        full: false,
    };
    let n = 200;
    let (_conns, accepted, now) = open_through_jammed(&mut client, &mut ca, &mut server, &mut sb, n);
    sb.full = true;
    let mut order = Vec::new();
    for (i, &h) in accepted.iter().enumerate() {
        let mut sk = server.tcp(h).unwrap();
        assert_eq!(sk.send(&(i as u32).to_be_bytes()), Ok(4));
        order.push((server.tcp_status(h).unwrap().remote().port, 4));
        if i % 7 == 0 {
            server.poll(now, &mut sb);
        }
    }
    while server.poll(now, &mut sb) {}
    assert!(
        server.tcp.pending.is_empty(),
        "{} connections wait",
        server.tcp.pending.len()
    );
    assert_eq!(server.eg.held, n, "one frame per connection held");
    assert_eq!(
        server.poll_at(),
        Some(Instant::ZERO),
        "held frames want the next poll"
    );
    assert_eq!(server.stats().drops[DropReason::TxQueueFull], 0);
    // Room: they leave in the order they were built, the ring's earlier refusals first.
    sb.full = false;
    server.poll(now, &mut sb);
    assert_eq!(server.eg.held, 0);
    let mut rx = Vec::new();
    ca.rx_burst(Instant::from_secs(1 << 30), &mut rx, usize::MAX);
    assert_eq!(tcp_ports_and_lens(&rx), order);
}

/// The frames held for a full ring are bounded by `tx_queue_limit`: past it TCP leaves
/// its output in the connections (in the pending queue), and nothing is lost: once the
/// ring has room every connection's bytes arrive.
#[test]
fn held_frames_stop_at_the_limit_and_the_rest_wait_in_their_connections() {
    let (mut client, mut ca, _, db, _link) = client_and_server();
    let mut cfg = InterfaceConfig::new(Ipv4Cidr::new(OUR_IP, 24), IsnKey::fixed([5; 16]));
    cfg.tx_queue_limit = 64;
    let mut server = Interface::new(cfg, EthernetAddress(db.mac()));
    let mut sb = Jammed {
        inner: db,
        full: false,
    };
    let n = 200;
    let (conns, accepted, mut now) = open_through_jammed(&mut client, &mut ca, &mut server, &mut sb, n);
    sb.full = true;
    for (i, &h) in accepted.iter().enumerate() {
        assert_eq!(server.tcp(h).unwrap().send(&(i as u32).to_be_bytes()), Ok(4));
    }
    while server.poll(now, &mut sb) {}
    let burst = sb.caps().max_burst;
    let held = server.eg.held;
    assert!((64..64 + burst).contains(&held), "held {held}");
    assert!(
        server.tcp.pending.len() >= n - held,
        "the others wait: {}",
        server.tcp.pending.len()
    );
    assert_eq!(server.stats().drops[DropReason::TxQueueFull], 0);
    sb.full = false;
    let mut got = vec![Vec::new(); n];
    let mut buf = [0u8; 64];
    for _ in 0..100 {
        while client.poll(now, &mut ca) | server.poll(now, &mut sb) {}
        for (i, &h) in conns.iter().enumerate() {
            if let Ok(k) = client.tcp(h).unwrap().recv(&mut buf) {
                got[i].extend_from_slice(&buf[..k]);
            }
        }
        now += Duration::from_millis(1);
    }
    let mut values: Vec<u32> = got
        .iter()
        .map(|g| u32::from_be_bytes(g[..].try_into().expect("4 bytes each")))
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (0..n as u32).collect::<Vec<_>>(),
        "every connection's bytes, once"
    );
}

/// Frames that do not come from TCP (echo replies here) are held up to `TX_BACKLOG`
/// past the limit; beyond that the newest are dropped and counted, never queued without
/// bound.
#[test]
fn frames_past_the_held_bound_are_dropped_and_counted() {
    let (dev, mut peer, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 4096);
    let mut cfg = config(true);
    cfg.tx_queue_limit = 8;
    let mut iface = Interface::new(cfg, OUR_MAC);
    let mut dev = Jammed {
        inner: dev,
        full: true,
    };
    let now = Instant::from_secs(1);
    let n = 400;
    let mut frames: Vec<_> = (0..n)
        .map(|_| {
            let f = echo_request(b"ping");
            let mut b = peer.alloc().unwrap();
            b.append(f.len()).unwrap().copy_from_slice(&f);
            b
        })
        .collect();
    peer.tx_burst(now, &mut frames);
    while iface.poll(now, &mut dev) {}
    let most = dev.caps().max_burst + crate::egress::TX_BACKLOG;
    assert_eq!(iface.eg.held, most);
    assert_eq!(iface.stats().drops[DropReason::TxQueueFull], (n - most) as u64);
    dev.full = false;
    iface.poll(now, &mut dev);
    let mut rx = Vec::new();
    peer.rx_burst(Instant::from_secs(2), &mut rx, usize::MAX);
    assert_eq!(rx.len(), most, "the held replies go out");
    assert_eq!(iface.eg.held, 0);
}

/// An IPv6 packet from the peer to `dst` carrying ICMPv6 message `msg`, in a frame to `mac`.
fn icmpv6_frame(mac: EthernetAddress, src: Ipv6Address, dst: Ipv6Address, msg: &Icmpv6Repr) -> Vec<u8> {
    let len = msg.buffer_len();
    let mut p = vec![0u8; 40 + len];
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: sluice_wire::IpProtocol::Unknown(58),
        payload_len: len,
        hop_limit: 255,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
    msg.emit(src, dst, &mut p[40..], &ChecksumCaps::software());
    eth(mac, EtherType::Ipv6, &p)
}

/// The ICMPv6 message of a frame the interface sent, with its Ethernet destination and
/// IPv6 source and destination.
fn sent_icmpv6(frame: &[u8]) -> (EthernetAddress, Ipv6Address, Ipv6Address, Vec<u8>) {
    let e = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(e.ethertype(), EtherType::Ipv6);
    let p = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let ip = Ipv6Repr::parse(&p).unwrap();
    (
        e.dst_addr(),
        ip.src_addr,
        ip.dst_addr,
        frame[54..54 + ip.payload_len].to_vec(),
    )
}

/// Neighbour discovery and echo over IPv6 (the first part of IPv6): the link-local address
/// made from the MAC and a configured one answer solicitations (to the solicitor, or to
/// all nodes for another node's duplicate address detection) and echo requests; other
/// hosts' traffic, TCP over IPv6 and malformed packets are counted drops.
#[test]
fn ipv6_neighbour_solicitations_and_echo_are_answered() {
    let global = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
    let mut cfg = config(true);
    cfg.ipv6 = vec![Ipv6Cidr::new(global, 64)];
    let mut f = Fixture::new(cfg);
    let ll = Ipv6Address::link_local_from_mac(OUR_MAC);
    let peer = Ipv6Address::link_local_from_mac(PEER_MAC);
    let caps = ChecksumCaps::software();
    // Duplicate address detection first: a solicitation from `::` for each address.
    let dad = f.poll();
    assert_eq!(dad.len(), 2, "one solicitation per address");
    for (frame, target) in dad.iter().zip([ll, global]) {
        let (mac, src, dst, msg) = sent_icmpv6(frame);
        assert_eq!(
            (mac, src, dst),
            (
                target.solicited_node().multicast_mac(),
                Ipv6Address::UNSPECIFIED,
                target.solicited_node()
            )
        );
        assert_eq!(
            Icmpv6Repr::parse(src, dst, 255, &msg, &caps).unwrap(),
            Icmpv6Repr::NeighborSolicit {
                target,
                options: NdpOptions::default()
            }
        );
    }
    for target in [ll, global] {
        // A solicitation to the target's solicited-node group, as a neighbour sends it.
        let ns = Icmpv6Repr::NeighborSolicit {
            target,
            options: NdpOptions {
                source_lla: Some(PEER_MAC),
                ..NdpOptions::default()
            },
        };
        let group = target.solicited_node();
        f.inject(&icmpv6_frame(group.multicast_mac(), peer, group, &ns));
        let out = f.poll();
        assert_eq!(out.len(), 1, "one advertisement");
        let (mac, src, dst, msg) = sent_icmpv6(&out[0]);
        assert_eq!((mac, src, dst), (PEER_MAC, target, peer));
        match Icmpv6Repr::parse(src, dst, 255, &msg, &caps).unwrap() {
            Icmpv6Repr::NeighborAdvert {
                flags,
                target: t,
                options,
            } => {
                // Still under optimistic detection: no override (RFC 4429 3.3).
                assert!(flags.solicited && !flags.override_ && !flags.router);
                assert_eq!((t, options.target_lla), (target, Some(OUR_MAC)));
            }
            other => panic!("{other:?}"),
        }
    }
    // Another node's duplicate address detection for our address, once ours ended:
    // defended to all nodes.
    f.now = f.now + Duration::from_secs(2);
    let dad = Icmpv6Repr::NeighborSolicit {
        target: ll,
        options: NdpOptions::default(),
    };
    f.inject(&icmpv6_frame(
        ll.solicited_node().multicast_mac(),
        Ipv6Address::UNSPECIFIED,
        ll.solicited_node(),
        &dad,
    ));
    let out = f.poll();
    let (mac, src, dst, msg) = sent_icmpv6(&out[0]);
    assert_eq!(
        (mac, dst),
        (Ipv6Address::ALL_NODES.multicast_mac(), Ipv6Address::ALL_NODES)
    );
    match Icmpv6Repr::parse(src, dst, 255, &msg, &caps).unwrap() {
        Icmpv6Repr::NeighborAdvert { flags, .. } => {
            assert!(
                !flags.solicited && flags.override_,
                "detection over: it overrides"
            )
        }
        other => panic!("{other:?}"),
    }
    // Echo, to our address and to all nodes (answered from the link-local address).
    for (to, mac, from) in [
        (global, OUR_MAC, global),
        (Ipv6Address::ALL_NODES, Ipv6Address::ALL_NODES.multicast_mac(), ll),
    ] {
        let req = Icmpv6Repr::EchoRequest {
            ident: 7,
            seq_no: 3,
            data: b"sluice six",
        };
        f.inject(&icmpv6_frame(mac, peer, to, &req));
        let out = f.poll();
        assert_eq!(out.len(), 1);
        let (m, src, dst, msg) = sent_icmpv6(&out[0]);
        assert_eq!((m, src, dst), (PEER_MAC, from, peer));
        assert_eq!(
            Icmpv6Repr::parse(src, dst, 64, &msg, &caps).unwrap(),
            Icmpv6Repr::EchoReply {
                ident: 7,
                seq_no: 3,
                data: b"sluice six"
            }
        );
    }
    assert_eq!(f.iface.stats().icmp.echo_requests_rx, 2);
    assert_eq!(f.iface.stats().icmp.echo_replies_tx, 2);
    // Not for us, a protocol not served, malformed: counted, unanswered.
    let other = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
    let req = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"",
    };
    f.inject(&icmpv6_frame(OUR_MAC, peer, other, &req));
    let mut sctp6 = icmpv6_frame(OUR_MAC, peer, global, &req);
    sctp6[14 + 6] = 132; // next header: SCTP
    f.inject(&sctp6);
    // The unknown upper layer is answered: parameter problem, unrecognized next header,
    // pointing at the fixed header's next header field.
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (_, src, dst, msg) = sent_icmpv6(&out[0]);
    assert_eq!((src, dst), (global, peer));
    match Icmpv6Repr::parse(src, dst, 255, &msg, &caps).unwrap() {
        Icmpv6Repr::ParamProblem { code, pointer, data } => {
            assert_eq!((code, pointer), (1, 6));
            assert_eq!(data, &sctp6[14..]);
        }
        other => panic!("{other:?}"),
    }
    let mut bad = icmpv6_frame(OUR_MAC, peer, global, &req);
    bad[14 + 40 + 2] ^= 0xff; // the ICMPv6 checksum
    f.inject(&bad);
    // A destination option of type 0xc2 (action 11: answer unicast destinations) that we
    // do not know: parameter problem code 2 pointing at the option.
    let mut opt = vec![0u8; 40 + 8];
    Ipv6Repr {
        src_addr: peer,
        dst_addr: global,
        next_header: sluice_wire::IpProtocol::Unknown(60),
        payload_len: 8,
        hop_limit: 64,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut opt[..]));
    opt[40..48].copy_from_slice(&[59, 0, 0xc2, 4, 0, 0, 0, 0]);
    f.inject(&eth(OUR_MAC, EtherType::Ipv6, &opt));
    let out = f.poll();
    assert_eq!(out.len(), 1, "the option is answered, the bad checksum is not");
    let (_, src, dst, msg) = sent_icmpv6(&out[0]);
    match Icmpv6Repr::parse(src, dst, 255, &msg, &caps).unwrap() {
        Icmpv6Repr::ParamProblem { code, pointer, .. } => assert_eq!((code, pointer), (2, 42)),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.drops(DropReason::NotForUs), 1);
    assert_eq!(f.drops(DropReason::Ipv6Unsupported), 1);
    assert_eq!(f.drops(DropReason::BadIcmp), 1);
    assert_eq!(f.drops(DropReason::BadIpv6), 1);
}

/// IPv6 fragments of an echo request (RFC 8200 4.5), sent out of order with a
/// retransmitted one, are reassembled and answered with the whole data; an overlapping
/// fragment discards its datagram (RFC 5722); an atomic fragment (offset 0, no more:
/// RFC 6946) is taken as a whole packet.
#[test]
fn ipv6_fragments_are_reassembled_and_overlaps_discard_the_datagram() {
    let global = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
    let peer = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
    let mut cfg = config(true);
    cfg.ipv6 = vec![Ipv6Cidr::new(global, 64)];
    cfg.dad = false;
    let mut f = Fixture::new(cfg);
    let caps = ChecksumCaps::software();
    let data: Vec<u8> = (0..1200u32).map(|i| (i * 7 % 251) as u8).collect();
    let req = Icmpv6Repr::EchoRequest {
        ident: 9,
        seq_no: 1,
        data: &data,
    };
    let mut msg = vec![0u8; req.buffer_len()];
    req.emit(peer, global, &mut msg, &caps);
    // A fragment of `msg` at `off`, `len` bytes, of datagram `ident`.
    let frag = |ident: u32, off: usize, len: usize, more: bool| {
        let chunk = &msg[off..(off + len).min(msg.len())];
        let mut p = vec![0u8; 40 + 8 + chunk.len()];
        Ipv6Repr {
            src_addr: peer,
            dst_addr: global,
            next_header: sluice_wire::IpProtocol::Unknown(44),
            payload_len: 8 + chunk.len(),
            hop_limit: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
        p[40] = 58;
        let off_flags = (off as u16) | u16::from(more);
        p[42..44].copy_from_slice(&off_flags.to_be_bytes());
        p[44..48].copy_from_slice(&ident.to_be_bytes());
        p[48..].copy_from_slice(chunk);
        eth(OUR_MAC, EtherType::Ipv6, &p)
    };
    let answered = |out: &[Vec<u8>]| -> Option<Vec<u8>> {
        let (_, src, dst, m) = sent_icmpv6(out.first()?);
        match Icmpv6Repr::parse(src, dst, 64, &m, &caps).ok()? {
            Icmpv6Repr::EchoReply { data, .. } => Some(data.to_vec()),
            _ => None,
        }
    };
    // Last, first (twice: a harmless repeat), middle.
    f.inject(&frag(1, 800, 1000, false));
    f.inject(&frag(1, 0, 400, true));
    f.inject(&frag(1, 0, 400, true));
    assert!(f.poll().is_empty());
    f.inject(&frag(1, 400, 400, true));
    let out = f.poll();
    assert_eq!(
        answered(&out).as_deref(),
        Some(&data[..]),
        "the whole data echoed"
    );
    assert_eq!(f.iface.stats().reassembled, 1);
    // Overlapping pieces: the datagram is discarded, nothing answered.
    f.inject(&frag(2, 0, 400, true));
    f.inject(&frag(2, 800, 1000, false));
    f.inject(&frag(2, 392, 408, true));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::FragmentOverlap), 1);
    assert_eq!(
        f.iface.reassembly_held(),
        (0, 0),
        "nothing held after the overlap"
    );
    // An atomic fragment is a whole packet.
    f.inject(&frag(3, 0, msg.len(), false));
    let out = f.poll();
    assert_eq!(answered(&out).as_deref(), Some(&data[..]));
    assert_eq!(
        f.iface.stats().reassembled,
        1,
        "no reassembly for an atomic fragment"
    );
    // Neighbour discovery in a fragment is ignored (RFC 6980): a router advertisement in
    // an atomic fragment names no router.
    let router = Ipv6Address::link_local_from_mac(PEER_MAC);
    let ra = Icmpv6Repr::RouterAdvert {
        hop_limit: 64,
        managed: false,
        other: false,
        router_lifetime: 600,
        reachable_time: 0,
        retrans_time: 0,
        options: NdpOptions::default(),
    };
    let mut m = vec![0u8; ra.buffer_len()];
    ra.emit(router, Ipv6Address::ALL_NODES, &mut m, &caps);
    let mut p = vec![0u8; 48 + m.len()];
    Ipv6Repr {
        src_addr: router,
        dst_addr: Ipv6Address::ALL_NODES,
        next_header: sluice_wire::IpProtocol::Unknown(44),
        payload_len: 8 + m.len(),
        hop_limit: 255,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
    p[40] = 58;
    p[48..].copy_from_slice(&m);
    f.inject(&eth(Ipv6Address::ALL_NODES.multicast_mac(), EtherType::Ipv6, &p));
    f.poll();
    assert_eq!(f.iface.ipv6_router(), None);
    // The same advertisement whole is taken.
    f.inject(&icmpv6_frame(
        Ipv6Address::ALL_NODES.multicast_mac(),
        router,
        Ipv6Address::ALL_NODES,
        &ra,
    ));
    f.poll();
    assert_eq!(f.iface.ipv6_router(), Some(router));
    // IPv4-mapped sources never come over IPv6: dropped, unanswered.
    let mapped = Ipv6Address::from_ipv4_mapped([198, 18, 0, 9]);
    let echo = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"m",
    };
    f.inject(&icmpv6_frame(OUR_MAC, mapped, global, &echo));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::MartianSource), 1);
}

/// Duplicate address detection (RFC 4862 5.4, optimistic as RFC 4429): an address another
/// node advertises while detection listens is given up (no longer answered, no longer a
/// source), one advertised later is kept; a router advertisement with a lifetime names the
/// default router for off-link destinations until the lifetime ends, and a redirect from
/// it (RFC 4861 8) names a better first hop for one destination (from another node, it is
/// ignored).
#[test]
fn ipv6_duplicate_addresses_are_given_up_and_routers_are_learned_from_advertisements() {
    let a1 = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
    let a2 = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]);
    let peer = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
    let mut cfg = config(true);
    cfg.ipv6 = vec![Ipv6Cidr::new(a1, 64), Ipv6Cidr::new(a2, 64)];
    let mut f = Fixture::new(cfg);
    let caps = ChecksumCaps::software();
    assert_eq!(f.poll().len(), 3, "detection for the link-local address and both");
    let other = EthernetAddress([2, 0, 0, 0, 0, 0x77]);
    let na = |target| Icmpv6Repr::NeighborAdvert {
        flags: NaFlags {
            router: false,
            solicited: false,
            override_: true,
        },
        target,
        options: NdpOptions {
            target_lla: Some(other),
            ..NdpOptions::default()
        },
    };
    // Another node has a1: it answers detection's solicitation.
    f.inject(&icmpv6_frame(OUR_MAC, peer, Ipv6Address::ALL_NODES, &na(a1)));
    assert!(f.poll().is_empty());
    assert!(!f.iface.ipv6_addresses().any(|a| a == a1), "a1 given up");
    assert!(f.iface.ipv6_addresses().any(|a| a == a2));
    assert_eq!(f.iface.stats().nd.conflicts, 1);
    let echo = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"x",
    };
    f.inject(&icmpv6_frame(OUR_MAC, peer, a1, &echo));
    assert!(f.poll().is_empty(), "a1 is not answered");
    f.inject(&icmpv6_frame(OUR_MAC, peer, a2, &echo));
    assert_eq!(f.poll().len(), 1, "a2 is");
    // After detection, an advertisement of a2 by another node is counted, a2 kept.
    f.now = f.now + Duration::from_secs(2);
    f.inject(&icmpv6_frame(OUR_MAC, peer, Ipv6Address::ALL_NODES, &na(a2)));
    assert!(f.poll().is_empty());
    assert!(f.iface.ipv6_addresses().any(|a| a == a2));
    assert_eq!(f.iface.stats().nd.conflicts, 2);
    // No router: an off-link destination has no route.
    let far = Ipv6Address::new([0x2001, 2, 0, 1, 0, 0, 0, 1]);
    assert_eq!(f.iface.ipv6_router(), None);
    assert!(f.iface.source_for(far.into()).is_none());
    // A router advertises itself for 30 s.
    let router = Ipv6Address::link_local_from_mac(PEER_MAC);
    let ra = Icmpv6Repr::RouterAdvert {
        hop_limit: 64,
        managed: false,
        other: false,
        router_lifetime: 30,
        reachable_time: 0,
        retrans_time: 0,
        options: NdpOptions {
            source_lla: Some(PEER_MAC),
            ..NdpOptions::default()
        },
    };
    f.inject(&icmpv6_frame(
        Ipv6Address::ALL_NODES.multicast_mac(),
        router,
        Ipv6Address::ALL_NODES,
        &ra,
    ));
    assert!(f.poll().is_empty());
    assert_eq!(f.iface.ipv6_router(), Some(router));
    assert_eq!(
        f.iface.source_for(far.into()),
        Some(a2.into()),
        "a2: a1 is a duplicate"
    );
    // A redirect from that router: `far` is better reached through another one, whose
    // address comes with it. A connection to `far` then sends its SYN there.
    let better = Ipv6Address::link_local_from_mac(other);
    let redirect = |target| Icmpv6Repr::Redirect {
        target,
        dest: far,
        options: NdpOptions {
            target_lla: Some(other),
            ..NdpOptions::default()
        },
    };
    // From a node that is not our router for `far`: ignored.
    f.inject(&icmpv6_frame(OUR_MAC, better, a2, &redirect(better)));
    assert!(f.poll().is_empty());
    f.iface.tcp_connect(far, 81).unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 1, "the SYN");
    let e = EthernetFrame::new_checked(&out[0][..]).unwrap();
    assert_eq!(e.dst_addr(), PEER_MAC, "still to the advertised router");
    f.inject(&icmpv6_frame(OUR_MAC, router, a2, &redirect(better)));
    assert!(f.poll().is_empty());
    f.iface.tcp_connect(far, 80).unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 1, "the SYN");
    let e = EthernetFrame::new_checked(&out[0][..]).unwrap();
    assert_eq!(e.dst_addr(), other, "to the better router");
    let p = Ipv6Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!((p.src_addr(), p.dst_addr()), (a2, far));
    let _ = caps;
    f.now = f.now + Duration::from_secs(31);
    f.poll();
    assert_eq!(f.iface.ipv6_router(), None, "its lifetime ended");
}

/// UDP over IPv6: a datagram from a neighbour is received with its IPv6 source, the
/// answer goes back over IPv6 with a checksum (never zero), a datagram without one is
/// dropped (RFC 8200 8.1), one to a closed port is answered with ICMPv6 port
/// unreachable, and that error quoting our own datagram reaches the socket that sent it.
#[test]
fn udp_over_ipv6_with_its_checksum_rules_and_icmpv6_errors() {
    let ours = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
    let peer = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
    let mut cfg = config(true);
    cfg.ipv6 = vec![Ipv6Cidr::new(ours, 64)];
    cfg.dad = false;
    cfg.static_nd = vec![(peer, PEER_MAC)];
    let mut f = Fixture::new(cfg);
    let caps = ChecksumCaps::software();
    let udp6 = |sport: u16, dport: u16, payload: &[u8], zero_sum: bool| {
        let repr = sluice_wire::UdpRepr {
            src_port: sport,
            dst_port: dport,
            payload,
        };
        let mut p = vec![0u8; 40 + 8 + payload.len()];
        Ipv6Repr {
            src_addr: peer,
            dst_addr: ours,
            next_header: sluice_wire::IpProtocol::Udp,
            payload_len: 8 + payload.len(),
            hop_limit: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
        repr.emit(
            &mut sluice_wire::UdpPacket::new_unchecked(&mut p[40..]),
            peer,
            ours,
            &caps,
        );
        if zero_sum {
            p[46] = 0;
            p[47] = 0;
        }
        eth(OUR_MAC, EtherType::Ipv6, &p)
    };
    let h = f.iface.udp_bind(53).unwrap();
    f.inject(&udp6(4000, 53, b"question", false));
    assert!(f.poll().is_empty());
    let mut buf = [0u8; 64];
    let (n, from) = f
        .iface
        .udp(h)
        .ok_or(crate::UdpRecvError::InvalidHandle)
        .and_then(|mut sk| sk.recv_from(&mut buf))
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"question"[..], Endpoint::v6(peer, 4000)));
    f.iface.udp(h).unwrap().send_to(b"answer", from).unwrap();
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let p = Ipv6Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(
        (p.src_addr(), p.dst_addr(), p.next_header()),
        (ours, peer, sluice_wire::IpProtocol::Udp)
    );
    let u = sluice_wire::UdpPacket::new_checked(&out[0][54..]).unwrap();
    assert_ne!(u.checksum(), 0);
    assert!(u.verify_checksum(ours, peer));
    assert_eq!(u.payload(), b"answer");
    let sent = out[0][14..].to_vec();
    // No checksum: dropped.
    f.inject(&udp6(4000, 53, b"unchecked", true));
    assert!(f.poll().is_empty());
    assert_eq!(f.drops(DropReason::BadUdp), 1);
    assert!(f
        .iface
        .udp(h)
        .ok_or(crate::UdpRecvError::InvalidHandle)
        .and_then(|mut sk| sk.recv_from(&mut buf))
        .is_err());
    // A closed port: ICMPv6 destination unreachable, code 4, quoting the datagram.
    f.inject(&udp6(4000, 54, b"nobody", false));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let (_, src, dst, msg) = sent_icmpv6(&out[0]);
    match Icmpv6Repr::parse(src, dst, 64, &msg, &caps).unwrap() {
        Icmpv6Repr::DstUnreachable { code: 4, data } => assert_eq!(&data[24..40], &ours.0),
        other => panic!("{other:?}"),
    }
    // The peer's port unreachable for our answer reaches our socket.
    let err = Icmpv6Repr::DstUnreachable { code: 4, data: &sent };
    f.inject(&icmpv6_frame(OUR_MAC, peer, ours, &err));
    f.poll();
    let e = f
        .iface
        .udp(h)
        .and_then(|mut sk| sk.take_error())
        .expect("the error reached the socket");
    assert_eq!(e.reason, sluice_wire::Icmpv4DstUnreachable::PortUnreachable);
}

/// Two of our IPv6 addresses are two connections' worth: the same client port to the same
/// server port on each is two connections (the flow's key holds the local address), each
/// answered from the address it reached, with the MSS sized for IPv6. A listener for IPv4
/// clients only resets an IPv6 SYN.
#[test]
fn connections_to_two_of_our_ipv6_addresses_are_apart() {
    let a1 = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
    let a2 = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]);
    let peer = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 9]);
    let mut cfg = config(true);
    cfg.ipv6 = vec![Ipv6Cidr::new(a1, 64), Ipv6Cidr::new(a2, 64)];
    cfg.dad = false;
    cfg.static_nd = vec![(peer, PEER_MAC)];
    let mut f = Fixture::new(cfg);
    let caps = ChecksumCaps::software();
    let l = f.iface.tcp_listen(80, 8).unwrap();
    let syn6 = |to: Ipv6Address, port: u16| {
        let s = syn(port);
        let mut p = vec![0u8; 40 + s.buffer_len()];
        Ipv6Repr {
            src_addr: peer,
            dst_addr: to,
            next_header: sluice_wire::IpProtocol::Tcp,
            payload_len: s.buffer_len(),
            hop_limit: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
        s.emit(
            &mut sluice_wire::TcpPacket::new_unchecked(&mut p[40..]),
            peer,
            to,
            &caps,
        );
        eth(OUR_MAC, EtherType::Ipv6, &p)
    };
    for to in [a1, a2] {
        f.inject(&syn6(to, 80));
        let out = f.poll();
        assert_eq!(out.len(), 1, "a SYN-ACK");
        let p = Ipv6Packet::new_checked(&out[0][14..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr()), (to, peer));
        let t = sluice_wire::TcpPacket::new_checked(&out[0][54..]).unwrap();
        let r = sluice_wire::TcpRepr::parse(&t, to, peer, &caps).unwrap();
        assert!(
            r.flags.syn() && r.ack == Some(sluice_wire::SeqNumber(1001)),
            "{r:?}"
        );
        assert_eq!(r.options.mss, Some(1440), "MSS for a 1500-byte MTU over IPv6");
    }
    assert_eq!(f.iface.tcp_connections(), 2);
    let _ = l;
    // A listener for IPv4 clients only (an AF_INET socket's) answers an IPv6 SYN as if
    // nobody listened: a RST.
    let cfg4 = f.iface.config().tcp;
    let l4 = f
        .iface
        .tcp_listen_families(81, 8, cfg4, Families::Ipv4Only)
        .unwrap();
    f.inject(&syn6(a1, 81));
    let out = f.poll();
    assert_eq!(out.len(), 1);
    let t = sluice_wire::TcpPacket::new_checked(&out[0][54..]).unwrap();
    let r = sluice_wire::TcpRepr::parse(&t, a1, peer, &caps).unwrap();
    assert!(r.flags.rst(), "{r:?}");
    assert_eq!(f.iface.tcp_connections(), 2);
    // An IPv6-only listener can share the port: it takes the IPv6 SYN; a listener of
    // both families cannot join them.
    let l6 = f
        .iface
        .tcp_listen_families(81, 8, cfg4, Families::Ipv6Only)
        .unwrap();
    assert_eq!(
        f.iface.tcp_listen_families(81, 8, cfg4, Families::Both),
        Err(TcpListenError::InUse)
    );
    f.inject(&syn6(a1, 81));
    let out = f.poll();
    let t = sluice_wire::TcpPacket::new_checked(&out[0][54..]).unwrap();
    let r = sluice_wire::TcpRepr::parse(&t, a1, peer, &caps).unwrap();
    assert!(r.flags.syn() && r.ack.is_some(), "{r:?}");
    // Without the IPv4 one, the port still listens for IPv6 only.
    assert!(f.iface.tcp_unlisten(l4));
    assert_eq!(
        f.iface.tcp_listen_families(81, 8, cfg4, Families::Both),
        Err(TcpListenError::InUse)
    );
    assert!(f.iface.tcp_unlisten(l6));
    assert!(f.iface.tcp_listen_families(81, 8, cfg4, Families::Both).is_ok());
}

/// The socket view keeps to the handle it was given: after `close` the connection is still
/// there for status, but every call that needs it owned is refused; once the interface
/// removes it, the handle names nothing, even when a new connection takes its slot.
#[test]
fn a_view_refuses_a_given_up_connection_and_a_removed_one_is_gone() {
    let mut cfg = config(true);
    cfg.tcp.msl = Duration::from_secs(1);
    let mut f = Fixture::new(cfg);
    let l = f.iface.tcp_listen(80, 4).unwrap();
    let (h, seq, ack) = accepted_from(&mut f, l, 45678);
    assert_eq!(f.state(h), TcpState::Established);
    assert_eq!(f.iface.tcp_status(h).map(|t| t.local().port), Some(80));
    assert!(f.iface.tcp(h).expect("live").close());
    // Our FIN leaves; FIN-WAIT-1: still live, status readable, but given up.
    f.poll();
    assert_eq!(f.state(h), TcpState::FinWait1);
    let mut view = f.iface.tcp(h).expect("still in the table");
    assert_eq!(view.send(b"x"), Err(TcpSendError::InvalidHandle));
    let mut buf = [0u8; 4];
    assert_eq!(view.recv(&mut buf), Err(TcpRecvError::InvalidHandle));
    assert!(!view.close(), "a second close");
    assert!(!view.set_nodelay(true));
    assert!(!view.status().can_recv() && !view.status().can_send());
    // The peer acknowledges our FIN and sends its own: TIME-WAIT, then gone after 2 MSL.
    let fin_ack = sluice_wire::TcpRepr {
        seq,
        ack: Some(ack + 1),
        flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK | sluice_wire::TcpFlags::FIN),
        options: Default::default(),
        payload: &[],
        ..syn(80)
    };
    f.inject(&tcp_seg(&fin_ack));
    f.poll();
    assert_eq!(f.state(h), TcpState::TimeWait);
    f.advance(Duration::from_secs(3));
    f.poll();
    assert!(f.iface.tcp(h).is_none(), "removed");
    assert!(f.iface.tcp_status(h).is_none());
    assert_eq!(f.state(h), TcpState::Closed);
    // A new connection in the freed slot is not reached through the old handle.
    let (h2, _, _) = accepted_from(&mut f, l, 45679);
    assert_ne!(h, h2);
    assert!(f.iface.tcp(h).is_none());
    assert!(f.iface.tcp(h2).is_some());
}

/// The look ahead at a burst (`Interface::prefetch`) reads a frame before anything checked
/// it: every cut of a segment of a live connection, with every IPv4 header length, other
/// protocols and ethertypes, passes without a panic, and the connection is untouched.
#[test]
fn the_look_ahead_at_a_burst_takes_any_frame() {
    let mut f = Fixture::new(config(true));
    let l = f.iface.tcp_listen(80, 4).unwrap();
    f.inject(&tcp_seg(&syn(80)));
    let out = f.poll();
    let (_, synack) = parse_tcp(&out[0]);
    let frame = tcp_seg(&get_after(&synack));
    for n in 0..=frame.len() {
        for ihl in 0..16u8 {
            for (at, byte) in [(None, 0), (Some(ETH_LEN + 9), 17), (Some(13), 0xdd)] {
                let mut fr = frame[..n].to_vec();
                if let Some(b) = fr.get_mut(ETH_LEN) {
                    *b = 0x40 | ihl;
                }
                if let Some(b) = at.and_then(|i| fr.get_mut(i)) {
                    *b = byte;
                }
                let mut b = f.dev.alloc().expect("a buffer");
                b.append(fr.len()).expect("room").copy_from_slice(&fr);
                f.iface.prefetch(&[b]);
            }
        }
    }
    f.inject(&frame);
    f.poll();
    let h = f.iface.tcp_accept(l).expect("established");
    let mut buf = [0u8; 16];
    assert_eq!(f.iface.tcp(h).unwrap().recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"GET /");
}

/// Request/response answered at once: each request arms a delayed ACK that the answer then
/// carries. Those timer entries come due stale and are put back or dropped without the
/// connection being visited (`Deadlines`); a delayed ACK that is really due still goes.
#[test]
fn timer_entries_gone_stale_leave_the_connection_alone_and_due_ones_still_fire() {
    let mut f = Fixture::new(config(true));
    let (h, mut seq, ack) = accepted(&mut f);
    let mut our = ack;
    let request = [0x42u8; 64];
    // The peer's segment: an ACK, with PSH when it carries a request.
    let segment = |seq, our, payload: &[u8]| {
        let flags = if payload.is_empty() {
            0
        } else {
            sluice_wire::TcpFlags::PSH
        };
        tcp_seg(&sluice_wire::TcpRepr {
            seq,
            ack: Some(our),
            flags: sluice_wire::TcpFlags(sluice_wire::TcpFlags::ACK | flags),
            options: Default::default(),
            payload,
            ..syn(80)
        })
    };
    let mut buf = [0u8; 256];
    for i in 0..20 {
        f.inject(&segment(seq, our, &request));
        let early = f.poll(); // quick ACKs at first, then none: the answer carries it
        seq = seq + request.len();
        let mut s = f.iface.tcp(h).unwrap();
        assert_eq!(s.recv(&mut buf), Ok(64), "request {i}");
        assert_eq!(s.send(&buf[..64]), Ok(64));
        let out: Vec<_> = early
            .iter()
            .chain(f.poll().iter())
            .map(|o| parse_tcp(o).1)
            .collect();
        let answer = out.iter().find(|t| !t.payload.is_empty()).expect("the answer");
        assert_eq!((answer.seq, answer.ack), (our, Some(seq)), "request {i}");
        our = our + 64;
        f.advance(Duration::from_millis(60)); // past the delayed ACK's deadline
    }
    // The peer's last ACK comes; then nothing is due for a long while.
    f.inject(&segment(seq, our, &[]));
    assert!(f.poll().is_empty());
    f.advance(Duration::from_secs(5));
    assert!(f.poll().is_empty());
    let st = f.iface.stats().tcp;
    assert!(st.timer_entries_stale >= 19, "{st:?}");
    assert_eq!(
        st.timer_wakeups, 0,
        "no connection visited for a deadline gone stale: {st:?}"
    );
    // A request left unanswered: its delayed ACK goes alone, from a real wake-up.
    f.inject(&segment(seq, our, &request));
    assert!(f.poll().is_empty(), "ping-pong: the ACK waits for an answer");
    f.advance(Duration::from_millis(60));
    let out: Vec<_> = f.poll().iter().map(|o| parse_tcp(o).1).collect();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].ack, out[0].payload.len()), (Some(seq + 64), 0));
    assert_eq!(f.iface.stats().tcp.timer_wakeups, 1);
}

/// Data that arrives while the device's ring is full is announced to the application at
/// once (the ready list), not when the connection's output can be drained: otherwise the
/// events of every connection held back reach the application in one round once the ring
/// has room, and it answers them all at once (at 10,000 connections, each side idle a third
/// of the time, waiting on the other's wave).
#[test]
fn data_arriving_while_the_ring_is_full_is_announced_at_once() {
    let (mut client, mut ca, mut server, db, _link) = client_and_server();
    let mut sb = Jammed {
        inner: db,
        full: false,
    };
    let (conns, accepted, now) = open_through_jammed(&mut client, &mut ca, &mut server, &mut sb, 40);
    let mut cursor = ReadyCursor::default();
    let _ = server.ready_since(&mut cursor); // from here on
                                             // The server's ring is full and every connection has output waiting.
    sb.full = true;
    for &h in &accepted {
        assert_eq!(server.tcp(h).unwrap().send(&[7; 3000]), Ok(3000));
    }
    server.poll(now, &mut sb);
    assert!(!server.tcp.pending.is_empty(), "output held back");
    let _ = server.ready_since(&mut cursor);
    // A request on every connection.
    for &h in &conns {
        assert_eq!(client.tcp(h).unwrap().send(b"request"), Ok(7));
    }
    while client.poll(now, &mut ca) {}
    for _ in 0..4 {
        server.poll(now, &mut sb);
    }
    let announced: std::collections::HashSet<TcpHandle> = match server.ready_since(&mut cursor) {
        Ready::Changed(c) => c
            .iter()
            .filter_map(|r| match r {
                ReadySocket::Tcp(h) => Some(*h),
                _ => None,
            })
            .collect(),
        Ready::Missed => panic!("missed"),
    };
    for &h in &accepted {
        assert!(
            announced.contains(&h),
            "{h:?} not announced while the ring is full"
        );
        let mut buf = [0u8; 16];
        assert_eq!(server.tcp(h).unwrap().recv(&mut buf), Ok(7));
        assert_eq!(&buf[..7], b"request");
    }
    assert!(!server.tcp.pending.is_empty(), "the ring is still full");
}

/// `TcpHandle::slot` is what an application indexes its own per-connection state by: the
/// slots of live connections are distinct and dense (below the number ever open at once),
/// a removed connection's slot is reused, and the handle that reuses it is another handle.
#[test]
fn tcp_slots_are_dense_distinct_and_reused_by_other_handles() {
    let mut f = Fixture::new(config(true));
    let hs: Vec<TcpHandle> = (0..8)
        .map(|_| f.iface.tcp_connect(PEER_IP, 80).unwrap())
        .collect();
    let mut slots: Vec<usize> = hs.iter().map(|h| h.slot()).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), hs.len(), "distinct among live connections");
    assert!(slots.iter().all(|&s| s < hs.len()), "dense: {slots:?}");
    let gone = hs[3];
    assert!(f.iface.tcp(gone).is_some_and(|mut sk| sk.abort()));
    f.poll();
    assert!(f.iface.tcp(gone).is_none(), "removed");
    let again = f.iface.tcp_connect(PEER_IP, 80).unwrap();
    assert_eq!(again.slot(), gone.slot(), "the slot is reused");
    assert_ne!(again, gone, "by another handle");
    assert!(f.iface.tcp(gone).is_none(), "the old handle stays stale");
    // Prefetching any handle, stale or live, reads nothing and changes nothing.
    f.iface.tcp_prefetch(gone);
    f.iface.tcp_prefetch_buffers(gone);
    f.iface.tcp_prefetch(again);
    f.iface.tcp_prefetch_buffers(again);
    assert_eq!(f.iface.tcp_connections(), hs.len());
}

/// One poll, as the engine's round makes before the application's turn: what it sent.
fn poll_once(f: &mut Fixture) -> Vec<sluice_wire::TcpRepr<'static>> {
    f.iface.poll(f.now, &mut f.dev);
    let mut rx = Vec::new();
    f.peer.rx_burst(f.now, &mut rx, usize::MAX);
    rx.iter().map(|b| parse_tcp(b.data()).1).collect()
}

/// Connected, or told of the peer's FIN, the application answers in the same round and
/// its segment carries the ACK: a client's request goes with the handshake's ACK, its FIN
/// with the ACK of the server's. Unanswered, the ACK goes alone at the next poll.
#[test]
fn the_applications_answer_carries_the_ack_of_a_syn_ack_or_a_fin() {
    use sluice_wire::{SeqNumber, TcpFlags};
    let ack = TcpFlags(TcpFlags::ACK);
    for answer in [true, false] {
        let mut f = Fixture::new(config(true));
        let h = f.iface.tcp_connect(PEER_IP, 80).unwrap();
        let out = poll_once(&mut f);
        assert_eq!(out.len(), 1);
        let ours = out[0];
        assert!(ours.flags.syn());
        // The peer's segment at 5000 + `seq`, acknowledging `acked` bytes past our SYN.
        let from_peer = |seq: usize, acked: usize, flags: TcpFlags| {
            tcp_seg(&sluice_wire::TcpRepr {
                src_port: 80,
                dst_port: ours.src_port,
                seq: SeqNumber(5000) + seq,
                ack: Some(ours.seq + 1 + acked),
                flags,
                options: Default::default(),
                ..syn(80)
            })
        };
        f.inject(&tcp_seg(&sluice_wire::TcpRepr {
            src_port: 80,
            dst_port: ours.src_port,
            seq: SeqNumber(5000),
            ack: Some(ours.seq + 1),
            flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            ..syn(80)
        }));
        assert!(
            poll_once(&mut f).is_empty(),
            "the ACK waits for the application's turn"
        );
        assert_eq!(f.state(h), TcpState::Established);
        if answer {
            assert_eq!(f.iface.tcp(h).unwrap().send(b"GET"), Ok(3));
        }
        let out = poll_once(&mut f);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].ack, Some(SeqNumber(5001)));
        assert_eq!(out[0].payload, if answer { &b"GET"[..] } else { &b""[..] });
        assert!(poll_once(&mut f).is_empty());

        let sent = if answer { 3 } else { 0 };
        f.inject(&from_peer(1, sent, TcpFlags(TcpFlags::FIN | TcpFlags::ACK)));
        assert!(poll_once(&mut f).is_empty(), "the ACK of the FIN waits too");
        assert_eq!(f.state(h), TcpState::CloseWait);
        if answer {
            assert!(f.iface.tcp(h).unwrap().close());
        }
        let out = poll_once(&mut f);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].ack, Some(SeqNumber(5002)));
        assert_eq!(out[0].flags.fin(), answer, "{:?}", out[0].flags);
        assert!(poll_once(&mut f).is_empty());
        if answer {
            // The peer's ACK of our FIN ends it.
            f.inject(&from_peer(2, sent + 1, ack));
            f.poll();
            assert_eq!(f.iface.tcp_connections(), 0);
        } else {
            f.iface.tcp(h).unwrap().abort();
            f.poll();
        }
    }
}
