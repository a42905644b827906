//! The peer's side of the interface-level workloads: Ethernet/IPv4/TCP frames built with
//! `sluice-wire` (checksums filled in software) and parsed back.

use sluice_wire::{
    checksum, ChecksumCaps, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};

use crate::{LOCAL_IP, LOCAL_MAC, LOCAL_PORT, MSS, PEER_IP, PEER_MAC, PEER_PORT};

/// The peer's initial sequence number.
pub const PEER_ISN: SeqNumber = SeqNumber(0x1000_0000);
/// The window scale the peer offers (the peer's window field is scaled by it).
pub const PEER_WSCALE: u8 = 7;
/// Offset of the TCP sequence number in a frame (Ethernet 14 + IPv4 20 + 4).
const SEQ_OFF: usize = 14 + 20 + 4;
/// Offset of the TCP checksum in a frame.
const CSUM_OFF: usize = 14 + 20 + 16;

/// A frame from the peer to the stack carrying `tcp`.
pub fn peer_frame(tcp: &TcpRepr) -> Vec<u8> {
    let caps = ChecksumCaps::software();
    let eth = EthernetRepr {
        src_addr: EthernetAddress(PEER_MAC),
        dst_addr: EthernetAddress(LOCAL_MAC),
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: PEER_IP,
        dst_addr: LOCAL_IP,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
    };
    let mut buf = vec![0u8; eth.buffer_len(ip.buffer_len()).max(60)];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &caps);
    let payload = packet.payload_mut();
    let len = tcp.buffer_len();
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut payload[..len]),
        PEER_IP,
        LOCAL_IP,
        &caps,
    );
    buf
}

/// The TCP segment of a frame from the stack to the peer, if it is one.
pub fn parse_from_stack(frame: &[u8]) -> Option<TcpRepr<'_>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload_ref()).ok()?;
    let caps = ChecksumCaps::ignored();
    let repr = Ipv4Repr::parse(&ip, &caps).ok()?;
    if repr.protocol != IpProtocol::Tcp {
        return None;
    }
    TcpRepr::parse(
        &TcpPacket::new_checked(ip.payload_ref()).ok()?,
        repr.src_addr,
        repr.dst_addr,
        &caps,
    )
    .ok()
}

/// The peer's SYN: MSS 1460, window scale, SACK permitted, timestamps (a Linux SYN).
pub fn syn() -> Vec<u8> {
    peer_frame(&TcpRepr {
        src_port: PEER_PORT,
        dst_port: LOCAL_PORT,
        seq: PEER_ISN,
        ack: None,
        flags: TcpFlags(TcpFlags::SYN),
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(MSS as u16),
            window_scale: Some(PEER_WSCALE),
            sack_permitted: true,
            timestamp: Some((1000, 0)),
            ..TcpOptions::default()
        },
        payload: &[],
    })
}

/// What the peer learned from the stack's SYN-ACK.
#[derive(Clone, Copy, Debug)]
pub struct SynAck {
    pub isn: SeqNumber,
    /// The stack's TSval, when it agreed to timestamps.
    pub tsval: Option<u32>,
}

/// Parses the stack's SYN-ACK out of the frames it sent.
pub fn find_syn_ack(frames: &[Vec<u8>]) -> SynAck {
    for f in frames {
        if let Some(t) = parse_from_stack(f) {
            if t.flags.syn() && t.ack == Some(PEER_ISN + 1) {
                return SynAck {
                    isn: t.seq,
                    tsval: t.options.timestamp.map(|(v, _)| v),
                };
            }
        }
    }
    panic!("no SYN-ACK among {} frames", frames.len());
}

/// A segment from the peer after the handshake: ACK of the SYN-ACK, at `seq`, with a
/// timestamp option when negotiated.
fn established(sa: SynAck, seq: SeqNumber, tsval: u32, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: PEER_PORT,
        dst_port: LOCAL_PORT,
        seq,
        ack: Some(sa.isn + 1),
        flags: TcpFlags::NONE,
        // 64 KiB with the peer's scale.
        window: (65536 >> PEER_WSCALE) as u16,
        urgent: 0,
        options: TcpOptions {
            timestamp: sa.tsval.map(|ecr| (tsval, ecr)),
            ..TcpOptions::default()
        },
        payload,
    }
}

/// The third packet of the handshake.
pub fn handshake_ack(sa: SynAck) -> Vec<u8> {
    peer_frame(&established(sa, PEER_ISN + 1, 1001, &[]))
}

/// The payload of a full-sized segment: the MSS less 12 bytes of timestamps when they
/// were negotiated (a 1514-byte frame either way).
pub fn full_payload(sa: SynAck) -> usize {
    if sa.tsval.is_some() {
        MSS - 12
    } else {
        MSS
    }
}

/// An in-order full-sized data segment right after the handshake; [`set_seq`] moves it on.
pub fn data_segment(sa: SynAck) -> Vec<u8> {
    let payload = vec![0x61u8; full_payload(sa)];
    peer_frame(&established(sa, PEER_ISN + 1, 1002, &payload))
}

/// Rewrites the TCP sequence number of a frame built by [`peer_frame`], updating the TCP
/// checksum incrementally (RFC 1624) so that it stays valid.
pub fn set_seq(frame: &mut [u8], seq: SeqNumber) {
    let old = u32::from_be_bytes(frame[SEQ_OFF..SEQ_OFF + 4].try_into().unwrap());
    let new = seq.0;
    let mut c = u16::from_be_bytes([frame[CSUM_OFF], frame[CSUM_OFF + 1]]);
    c = checksum::update(c, (old >> 16) as u16, (new >> 16) as u16);
    c = checksum::update(c, old as u16, new as u16);
    frame[SEQ_OFF..SEQ_OFF + 4].copy_from_slice(&new.to_be_bytes());
    frame[CSUM_OFF..CSUM_OFF + 2].copy_from_slice(&c.to_be_bytes());
}
