//! IPv6 on the interface, first part (the network layer's neighbour discovery and echo):
//! the interface has a link-local address made from its MAC (RFC 4291 appendix A) and the
//! configured ones (`InterfaceConfig::ipv6`); it answers neighbour solicitations for them,
//! including another node's duplicate address detection (RFC 4861 7.2.4-7.2.5), and echo
//! requests (RFC 4443 4.2), to the Ethernet address the request came from. TCP and UDP over
//! IPv6 are not served yet: such packets are counted drops (`ipv6_unsupported`), as are
//! malformed ones (`bad_ipv6`) and those for other hosts (`not_for_us`).

use sluice_dev::{Device, PacketBuf};
use sluice_wire::icmpv6::{Icmpv6Repr, NaFlags, NdpOptions};
use sluice_wire::ipv6::{self, walk_extensions, Ipv6Address, Ipv6Packet, Ipv6Repr};
use sluice_wire::{ChecksumCaps, EtherType, EthernetAddress, IpProtocol};

use crate::iface::{Interface, Io, ETH_LEN};
use crate::stats::DropReason;

/// ICMPv6's protocol number.
const ICMPV6: u8 = 58;

impl Interface {
    /// The interface's IPv6 addresses: its link-local one first.
    pub fn ipv6_addresses(&self) -> impl Iterator<Item = Ipv6Address> + '_ {
        core::iter::once(Ipv6Address::link_local_from_mac(self.mac))
            .chain(self.cfg.ipv6.iter().map(|c| c.address()))
    }

    fn is_ours_v6(&self, a: Ipv6Address) -> bool {
        self.ipv6_addresses().any(|o| o == a)
    }

    /// Whether a packet to `a` is for this host: one of its addresses, all-nodes, or the
    /// solicited-node group of one of its addresses.
    fn accepts_v6(&self, a: Ipv6Address) -> bool {
        a == Ipv6Address::ALL_NODES || self.ipv6_addresses().any(|o| o == a || o.solicited_node() == a)
    }

    /// Whether an Ethernet destination may carry IPv6 for us: ours, broadcast, or an IPv6
    /// multicast MAC (33:33:...; the IPv6 destination decides).
    pub(crate) fn accepts_v6_mac(&self, mac: EthernetAddress) -> bool {
        mac == self.mac || mac.is_broadcast() || (mac.0[0] == 0x33 && mac.0[1] == 0x33)
    }

    /// An IPv6 packet arrived in `buf` from Ethernet address `from`.
    pub(crate) fn process_ipv6<D: Device>(&mut self, io: &mut Io<'_, D>, from: EthernetAddress, buf: D::Buf) {
        let frame = &buf.data()[ETH_LEN..];
        let Ok(packet) = Ipv6Packet::new_checked(frame) else {
            return self.drop(DropReason::BadIpv6);
        };
        let Ok(ip) = Ipv6Repr::parse(&packet) else {
            return self.drop(DropReason::BadIpv6);
        };
        if !self.accepts_v6(ip.dst_addr) {
            return self.drop(DropReason::NotForUs);
        }
        let payload = &frame[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len];
        let Ok(chain) = walk_extensions(ip.next_header, payload) else {
            return self.drop(DropReason::BadIpv6);
        };
        if chain.fragment.is_some() || u8::from(chain.protocol) != ICMPV6 {
            return self.drop(DropReason::Ipv6Unsupported);
        }
        let caps = ChecksumCaps::software();
        let Ok(msg) = Icmpv6Repr::parse(
            ip.src_addr,
            ip.dst_addr,
            ip.hop_limit,
            &payload[chain.offset..],
            &caps,
        ) else {
            return self.drop(DropReason::BadIcmp);
        };
        let ours = Ipv6Address::link_local_from_mac(self.mac);
        match msg {
            Icmpv6Repr::NeighborSolicit { target, options } if self.is_ours_v6(target) => {
                // From `::`, another node's duplicate address detection: defend the address
                // to all nodes (7.2.4); else answer the solicitor.
                let (dst, solicited) = if ip.src_addr.is_unspecified() {
                    (Ipv6Address::ALL_NODES, false)
                } else {
                    (ip.src_addr, true)
                };
                let mac = options.source_lla.unwrap_or(from);
                let na = Icmpv6Repr::NeighborAdvert {
                    flags: NaFlags {
                        router: false,
                        solicited,
                        override_: true,
                    },
                    target,
                    options: NdpOptions {
                        target_lla: Some(self.mac),
                        ..NdpOptions::default()
                    },
                };
                let dst_mac = if solicited {
                    mac
                } else {
                    Ipv6Address::ALL_NODES.multicast_mac()
                };
                self.send_icmpv6(io, dst_mac, target, dst, &na);
            }
            Icmpv6Repr::EchoRequest { ident, seq_no, data } => {
                self.stats.icmp.echo_requests_rx += 1;
                // To a multicast group, the reply comes from our link-local address.
                let src = if ip.dst_addr.is_multicast() {
                    ours
                } else {
                    ip.dst_addr
                };
                if ip.src_addr.is_unspecified() || ip.src_addr.is_multicast() {
                    return self.drop(DropReason::BadIpv6);
                }
                let reply = Icmpv6Repr::EchoReply { ident, seq_no, data };
                self.stats.icmp.echo_replies_tx += 1;
                self.send_icmpv6(io, from, src, ip.src_addr, &reply);
            }
            _ => self.drop(DropReason::IcmpIgnored),
        }
    }

    /// Sends ICMPv6 message `msg` from `src` to `dst` in a frame to `mac`.
    fn send_icmpv6<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mac: EthernetAddress,
        src: Ipv6Address,
        dst: Ipv6Address,
        msg: &Icmpv6Repr,
    ) {
        let Some(mut buf) = io.dev.alloc() else {
            return self.drop(DropReason::NoBuffer);
        };
        let len = msg.buffer_len();
        let Some(room) = buf.append(ipv6::HEADER_LEN + len) else {
            return self.drop(DropReason::NoBuffer);
        };
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Unknown(ICMPV6),
            payload_len: len,
            hop_limit: 255,
        };
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut room[..]));
        msg.emit(src, dst, &mut room[ipv6::HEADER_LEN..], &ChecksumCaps::software());
        self.send_eth(io, buf, mac, EtherType::Ipv6);
    }
}
