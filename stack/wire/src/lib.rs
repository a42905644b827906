//! Zero-copy header views and Reprs for Sluice.
//!
//! Every header is a view (`Packet<T: AsRef<[u8]>>`, with `new_checked` for untrusted input
//! and `new_unchecked` for emitting) plus a `Repr` (`parse`, `emit`, `buffer_len`). No
//! unsafe, no allocation, no I/O: the same code runs on `&[u8]` in tests and on an mbuf's
//! data in production. Malformed input is an `Error`, which the caller counts as a drop.
//!
//! Checksum offload is a parameter: every `parse`/`emit` that touches a checksum takes a
//! `ChecksumCaps`.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod arp;
pub mod checksum;
pub mod error;
pub mod eth;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod time;
pub mod udp;

pub use arp::{ArpOp, ArpOperation, ArpPacket, ArpRepr};
pub use checksum::{Checksum, ChecksumCaps};
pub use error::{Error, Result};
pub use eth::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Repr, NaFlags, NdpOptions, PrefixInfo};
pub use ip::IpAddress;
pub use ipv4::{IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr};
pub use tcp::{SackBlocks, SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
pub use time::Instant;
pub use udp::{UdpPacket, UdpRepr};

#[cfg(test)]
mod tests {
    //! The layers together, as the driver uses them: emit a frame top-down into one
    //! buffer, then parse it layer by layer, borrowing the payload for the frame's
    //! lifetime.
    use super::*;

    #[test]
    fn frame_round_trip_through_all_layers() {
        let caps = ChecksumCaps::default();
        let eth = EthernetRepr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let mut options = TcpOptions {
            timestamp: Some((10, 20)),
            ..TcpOptions::default()
        };
        options.sack.push(SeqNumber(100), SeqNumber(200));
        let tcp = TcpRepr {
            src_port: 80,
            dst_port: 40000,
            seq: SeqNumber(1),
            ack: Some(SeqNumber(2)),
            flags: TcpFlags::NONE.with(TcpFlags::PSH),
            window: 1000,
            urgent: 0,
            options,
            payload: b"hi",
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 1),
            dst_addr: Ipv4Address::new(10, 0, 0, 2),
            protocol: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            ttl: 64,
        };
        // Pad to the 60-byte Ethernet minimum; the padding must be ignored on parse.
        let len = eth.buffer_len(ip.buffer_len()).max(60);
        let mut buf = [0xeeu8; 128];
        let buf = &mut buf[..len];
        {
            let mut frame = EthernetFrame::new_unchecked(&mut *buf);
            eth.emit(&mut frame);
            let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut packet, &caps);
            let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
            tcp.emit(&mut segment, ip.src_addr, ip.dst_addr, &caps);
        }

        let bytes: &[u8] = buf;
        let frame = EthernetFrame::new_checked(bytes).unwrap();
        assert_eq!(EthernetRepr::parse(&frame), Ok(eth));
        let packet = Ipv4Packet::new_checked(frame.payload_ref()).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, &caps), Ok(ip));
        let segment = TcpPacket::new_checked(packet.payload_ref()).unwrap();
        let parsed = TcpRepr::parse(&segment, ip.src_addr, ip.dst_addr, &caps).unwrap();
        assert_eq!(parsed, tcp);
        assert_eq!(parsed.payload, b"hi");
    }
}
