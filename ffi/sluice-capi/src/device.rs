//! The in-memory device behind the ABI when there is no NIC: its far side speaks IPv4
//! packets (layer 3, as packetdrill and the Unix-socket link do), its near side Ethernet
//! frames to the `Interface`.
//!
//! Inbound packets are wrapped in an Ethernet header from `PEER_MAC` to the stack; frames
//! the stack sends are unwrapped and queued with the time they left. The stack's ARP
//! requests are answered at once with `PEER_MAC` (every address lives behind the one
//! peer), so nothing waits for resolution.

use std::collections::VecDeque;

use sluice_dev::{Device, DeviceCaps, PacketBuf};
use sluice_wire::{
    arp as warp, eth, ipv6, ArpOp, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, Instant, Ipv4Packet, Ipv6Packet,
};

/// The stack's Ethernet address on the in-memory link.
pub const STACK_MAC: EthernetAddress = EthernetAddress([0x02, 0x53, 0x4c, 0x00, 0x00, 0x01]);
/// The Ethernet address of everything on the far side.
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0x53, 0x4c, 0x00, 0x00, 0x02]);

const HEADROOM: usize = 128;
const ROOM: usize = 2048;

/// A frame buffer with headroom, owned (no pool: this device is for tests and tools).
pub struct VecBuf {
    mem: Box<[u8]>,
    start: usize,
    end: usize,
}

impl VecBuf {
    fn new() -> VecBuf {
        VecBuf {
            mem: vec![0u8; HEADROOM + ROOM].into_boxed_slice(),
            start: HEADROOM,
            end: HEADROOM,
        }
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let s = self.start.checked_sub(n)?;
        self.start = s;
        Some(&mut self.mem[s..s + n])
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let e = self.end;
        if e + n > self.mem.len() {
            return None;
        }
        self.end = e + n;
        Some(&mut self.mem[e..e + n])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

/// An IPv4 packet the stack sent, with the time it left.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub at: Instant,
    pub packet: Vec<u8>,
}

/// Why an inbound packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// Not an IPv4 or IPv6 packet (too short, another version, or longer than the MTU).
    NotIpv4,
}

/// The in-memory device: a queue each way.
pub struct PipeDevice {
    mtu: usize,
    rx: VecDeque<VecBuf>,
    tx: VecDeque<Outbound>,
    /// Frames the stack sent that were neither IPv4 nor an ARP request.
    pub dropped: u64,
}

impl PipeDevice {
    pub fn new(mtu: usize) -> PipeDevice {
        PipeDevice {
            mtu,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Queues an IPv4 packet for the stack, in an Ethernet frame from the peer.
    pub fn inject(&mut self, packet: &[u8]) -> Result<(), InjectError> {
        if packet.len() >= 40 && packet[0] >> 4 == 6 && packet.len() <= self.mtu {
            // An IPv6 packet goes on the wire as one (packetdrill's ipv6 mode; in its
            // ipv4-mapped-ipv6 mode the one it sends at the end is for an address the
            // stack does not have: a counted drop).
            self.push_frame(PEER_MAC, EtherType::Ipv6, packet);
            return Ok(());
        }
        let ok = packet.len() >= 20 && packet[0] >> 4 == 4 && packet.len() <= self.mtu;
        if !ok {
            return Err(InjectError::NotIpv4);
        }
        self.push_frame(PEER_MAC, EtherType::Ipv4, packet);
        Ok(())
    }

    fn push_frame(&mut self, src: EthernetAddress, ethertype: EtherType, payload: &[u8]) {
        let mut buf = VecBuf::new();
        if let Some(room) = buf.append(payload.len()) {
            room.copy_from_slice(payload);
        }
        let repr = EthernetRepr {
            src_addr: src,
            dst_addr: STACK_MAC,
            ethertype,
        };
        if let Some(h) = buf.prepend(eth::HEADER_LEN) {
            repr.emit(&mut EthernetFrame::new_unchecked(h));
        }
        self.rx.push_back(buf);
    }

    /// The oldest packet the stack sent and nobody took yet.
    pub fn take(&mut self) -> Option<Outbound> {
        self.tx.pop_front()
    }

    /// Packets the stack sent and nobody took yet.
    pub fn pending(&self) -> usize {
        self.tx.len()
    }

    fn transmit(&mut self, now: Instant, frame: &[u8]) {
        let Ok(f) = EthernetFrame::new_checked(frame) else {
            self.dropped += 1;
            return;
        };
        let payload = &frame[eth::HEADER_LEN..];
        match f.ethertype() {
            EtherType::Ipv4 => {
                // Drop Ethernet padding: the packet ends where its total length says.
                let len = Ipv4Packet::new_checked(payload)
                    .map(|p| usize::from(p.total_len()))
                    .unwrap_or(payload.len())
                    .min(payload.len());
                self.tx.push_back(Outbound {
                    at: now,
                    packet: payload[..len].to_vec(),
                });
            }
            EtherType::Ipv6 => {
                let len = Ipv6Packet::new_checked(payload)
                    .map(|p| ipv6::HEADER_LEN + usize::from(p.payload_len()))
                    .unwrap_or(payload.len())
                    .min(payload.len());
                self.tx.push_back(Outbound {
                    at: now,
                    packet: payload[..len].to_vec(),
                });
            }
            EtherType::Arp => self.answer_arp(payload),
            _ => self.dropped += 1,
        }
    }

    /// Answers the stack's ARP request for any address with `PEER_MAC`.
    fn answer_arp(&mut self, payload: &[u8]) {
        let Ok(req) = ArpRepr::parse(&ArpPacket::new_unchecked(payload)) else {
            self.dropped += 1;
            return;
        };
        if req.operation != ArpOp::Request {
            return;
        }
        let reply = ArpRepr {
            operation: ArpOp::Reply,
            source_hardware_addr: PEER_MAC,
            source_protocol_addr: req.target_protocol_addr,
            target_hardware_addr: req.source_hardware_addr,
            target_protocol_addr: req.source_protocol_addr,
        };
        let mut bytes = [0u8; warp::ETHERNET_IPV4_LEN];
        reply.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        self.push_frame(PEER_MAC, EtherType::Arp, &bytes);
    }
}

impl Device for PipeDevice {
    type Buf = VecBuf;

    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            ..DeviceCaps::default()
        }
    }
    fn mac(&self) -> [u8; 6] {
        STACK_MAC.0
    }
    fn rx_burst(&mut self, _now: Instant, out: &mut Vec<VecBuf>, max: usize) -> usize {
        let n = max.min(self.rx.len());
        out.extend(self.rx.drain(..n));
        n
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::new())
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<VecBuf>) -> usize {
        let n = bufs.len();
        for b in bufs.drain(..) {
            self.transmit(now, b.data());
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_request_is_answered_by_the_peer() {
        let mut dev = PipeDevice::new(1500);
        let req = ArpRepr {
            operation: ArpOp::Request,
            source_hardware_addr: STACK_MAC,
            source_protocol_addr: sluice_wire::Ipv4Address::new(198, 18, 0, 1),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: sluice_wire::Ipv4Address::new(198, 18, 0, 9),
        };
        let mut frame = vec![0u8; eth::HEADER_LEN + warp::ETHERNET_IPV4_LEN];
        EthernetRepr {
            src_addr: STACK_MAC,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        req.emit(&mut ArpPacket::new_unchecked(&mut frame[eth::HEADER_LEN..]));
        dev.transmit(Instant::ZERO, &frame);
        let mut rx = Vec::new();
        assert_eq!(dev.rx_burst(Instant::ZERO, &mut rx, 8), 1);
        let reply = ArpRepr::parse(&ArpPacket::new_unchecked(&rx[0].data()[eth::HEADER_LEN..])).unwrap();
        assert_eq!(reply.operation, ArpOp::Reply);
        assert_eq!(reply.source_hardware_addr, PEER_MAC);
        assert_eq!(reply.source_protocol_addr, req.target_protocol_addr);
        assert!(dev.take().is_none());
    }

    #[test]
    fn ipv6_goes_on_the_wire_and_garbage_is_refused() {
        let mut dev = PipeDevice::new(1500);
        // An IPv6 packet is framed as one (the stack drops it: it speaks IPv4).
        assert_eq!(dev.inject(&[0x60; 40]), Ok(()));
        let mut rx = Vec::new();
        dev.rx_burst(Instant::ZERO, &mut rx, 8);
        assert_eq!(rx.len(), 1);
        let f = EthernetFrame::new_checked(rx[0].data()).unwrap();
        assert_eq!(f.ethertype(), EtherType::Ipv6);
        assert_eq!(
            dev.inject(&[0x60; 20]),
            Err(InjectError::NotIpv4),
            "too short for IPv6"
        );
        assert_eq!(dev.inject(&[0x45; 10]), Err(InjectError::NotIpv4));
        assert_eq!(dev.inject(&[0x75; 40]), Err(InjectError::NotIpv4));
    }
}
