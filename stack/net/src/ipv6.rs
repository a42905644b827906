//! IPv6 on the interface: the interface has a link-local address made from its MAC
//! (RFC 4291 appendix A) and the configured ones (`InterfaceConfig::ipv6`), checked by
//! optimistic duplicate address detection (RFC 4862, RFC 4429); it answers neighbour
//! solicitations for them, including another node's duplicate address detection (RFC 4861
//! 7.2.4-7.2.5), and echo requests (RFC 4443 4.2). It resolves its neighbours with
//! solicitations and watches their reachability (RFC 4861 7.3: the states of
//! `ArpCache::new_nd`, with a bounded queue of waiting packets), learns them from
//! solicitations and advertisements, and sends off-link destinations to
//! `InterfaceConfig::gateway6`, else to the router advertisements name.
//!
//! TCP and UDP run over IPv6 with the same code as over IPv4 (`crate::tcp`, `crate::udp`);
//! fragments are reassembled in IPv4's bounded table (`crate::reasm`). Packet Too Big
//! lowers a connection's MSS, never below what an MTU of 1280 gives (RFC 8201), and the
//! other ICMPv6 errors reach the connection (or, for destination unreachable, the UDP
//! socket) they quote. Other upper layers are counted drops (`ipv6_unsupported`) answered
//! with a parameter problem, as are malformed packets (`bad_ipv6`); those for other hosts
//! are `not_for_us`.

use sluice_dev::{Device, PacketBuf};
use sluice_wire::icmpv6::{Icmpv6Repr, NaFlags, NdpOptions};
use sluice_wire::ipv6::{self, walk_extensions, Ipv6Address, Ipv6Packet, Ipv6Repr};
use sluice_wire::{ChecksumCaps, EtherType, EthernetAddress, IpAddress, IpProtocol};

use crate::arp::{Action, Lookup};
use crate::egress::{Egress, Io, ETH_LEN};
use crate::endpoint::Endpoint;
use crate::icmp::Quoted;
use crate::stats::DropReason;

/// The hop limit of the packets Sluice sends (RFC 8200 recommends the IPv4 TTL's 64).
const HOP_LIMIT: u8 = 64;

/// How long duplicate address detection listens after its solicitations (RFC 4861's
/// RetransTimer).
const DAD_WAIT: core::time::Duration = core::time::Duration::from_secs(1);

/// Destinations whose redirected first hop is remembered.
const MAX_REDIRECTS: usize = 64;

/// ICMPv6's protocol number.
const ICMPV6: u8 = 58;

/// What an IPv6 packet is for, once the IPv6 layer has read it: itself (neighbour
/// discovery, echo; or a counted drop), reassembly, a transport, or the socket an ICMPv6
/// error names. The interface routes it on.
#[derive(Debug)]
pub(crate) enum V6Input {
    Done,
    /// A fragment (RFC 8200 4.5), to hold for reassembly.
    Fragment(Ipv6Repr, ipv6::FragmentHeader),
    /// A TCP segment or UDP datagram: its (source, destination) and where it is in the
    /// frame.
    Tcp((IpAddress, IpAddress), core::ops::Range<usize>),
    Udp((IpAddress, IpAddress), core::ops::Range<usize>),
    /// An ICMPv6 error about a segment or datagram we sent.
    Error(Quoted),
}

impl Egress {
    /// The interface's IPv6 addresses: its link-local one first.
    /// Those duplicate address detection found on another node are left out.
    pub(crate) fn ipv6_addresses(&self) -> impl Iterator<Item = Ipv6Address> + '_ {
        self.ipv6_configured()
            .filter(|a| !self.v6link.duplicates.contains(a))
    }

    /// Every address given to the interface, duplicates included.
    fn ipv6_configured(&self) -> impl Iterator<Item = Ipv6Address> + '_ {
        core::iter::once(Ipv6Address::link_local_from_mac(self.mac))
            .chain(self.cfg.ipv6.iter().map(|c| c.address()))
    }

    /// The default router: the configured one, else the one advertised, while its
    /// lifetime lasts.
    pub(crate) fn ipv6_router(&self) -> Option<Ipv6Address> {
        self.cfg.gateway6.or(self
            .v6link
            .router
            .filter(|&(_, until)| self.now < until)
            .map(|(r, _)| r))
    }

    /// Another node has `a` (it defended it, or detects it as we do): give it up.
    fn duplicate_found(&mut self, a: Ipv6Address) {
        if !self.v6link.duplicates.contains(&a) {
            tracing::warn!(address = %a, "duplicate IPv6 address: another node has it, not used");
            self.v6link.duplicates.push(a);
            self.stats.nd.conflicts += 1;
        }
    }

    /// Whether duplicate address detection is still listening.
    fn in_dad(&self) -> bool {
        self.v6link.dad_until.is_some_and(|t| self.now < t)
    }

    pub(crate) fn is_ours_v6(&self, a: Ipv6Address) -> bool {
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

    /// Where a packet to `dst` goes on the link: `dst` itself when it is link-local or in a
    /// configured prefix, else the router; `None` without one.
    pub(crate) fn next_hop_v6(&self, dst: Ipv6Address) -> Option<Ipv6Address> {
        if dst.is_link_local() || self.cfg.ipv6.iter().any(|c| c.contains(dst)) {
            Some(dst)
        } else if let Some(&(_, hop)) = self.v6link.redirects.iter().find(|(d, _)| *d == dst) {
            Some(hop)
        } else {
            self.ipv6_router()
        }
    }

    /// Our address for talking to `dst` (RFC 6724 in short): link-local to link-local, a
    /// configured address of `dst`'s prefix, else the first configured one when a router
    /// reaches `dst`. `None` when `dst` cannot be reached.
    pub(crate) fn source_v6(&self, dst: Ipv6Address) -> Option<Ipv6Address> {
        let ll = Ipv6Address::link_local_from_mac(self.mac);
        if dst.is_link_local() {
            return self.is_ours_v6(ll).then_some(ll);
        }
        self.next_hop_v6(dst)?;
        let usable = |c: &&sluice_wire::ipv6::Ipv6Cidr| !self.v6link.duplicates.contains(&c.address());
        self.cfg
            .ipv6
            .iter()
            .filter(usable)
            .find(|c| c.contains(dst))
            .or(self.cfg.ipv6.iter().find(usable))
            .map(|c| c.address())
    }

    /// Sends `buf` (a transport message) from `src` to `dst` over IPv4 or IPv6, with the
    /// DS field (traffic class) and TTL (hop limit) given, `None` the interface's.
    pub(crate) fn send_ip_any<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        buf: D::Buf,
        (src, dst): (IpAddress, IpAddress),
        protocol: IpProtocol,
        ipo: (u8, Option<u8>),
    ) {
        match (src, dst) {
            (_, IpAddress::V4(dst)) => self.send_ip_with(io, buf, dst, protocol, ipo),
            (IpAddress::V6(src), IpAddress::V6(dst)) => self.send_ip6(io, buf, src, dst, protocol, ipo),
            (IpAddress::V4(_), IpAddress::V6(_)) => self.drop(DropReason::NoRoute),
        }
    }

    /// Prepends an IPv6 header to `buf` and sends it to `dst`, through neighbour discovery.
    pub(crate) fn send_ip6<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mut buf: D::Buf,
        src: Ipv6Address,
        dst: Ipv6Address,
        protocol: IpProtocol,
        (class, hops): (u8, Option<u8>),
    ) {
        let repr = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: protocol,
            payload_len: buf.len(),
            hop_limit: hops.unwrap_or(HOP_LIMIT),
        };
        if repr.buffer_len() > self.mtu && !buf.is_tso() {
            return self.drop(DropReason::TooBig);
        }
        match buf.prepend(ipv6::HEADER_LEN) {
            Some(h) => {
                let mut p = Ipv6Packet::new_unchecked(h);
                repr.emit(&mut p);
                p.set_version_class_flow(class, 0);
            }
            None => return self.drop(DropReason::NoBuffer),
        }
        let Some(hop) = self.next_hop_v6(dst) else {
            return self.drop(DropReason::NoRoute);
        };
        let mac = if hop.is_multicast() {
            hop.multicast_mac()
        } else {
            match self.nd.lookup(io.now, hop, &mut self.stats.nd) {
                // (A neighbour cache probes from its timers: it never asks for a refresh.)
                Lookup::Hit(mac) | Lookup::Refresh(mac) => mac,
                Lookup::Miss => {
                    match self.nd.enqueue_buf(io.now, hop, &buf, &mut self.stats.drops) {
                        Ok(true) => self.send_ns(
                            io,
                            hop,
                            hop.solicited_node(),
                            hop.solicited_node().multicast_mac(),
                        ),
                        Ok(false) => {}
                        Err(reason) => self.drop(reason),
                    }
                    return;
                }
            }
        };
        self.send_eth(io, buf, mac, EtherType::Ipv6);
    }

    /// Answers the IPv6 packet in `buf` (an Ethernet frame) with destination unreachable
    /// `code` (RFC 4443 3.1).
    pub(crate) fn send_unreachable_v6<D: Device>(&mut self, io: &mut Io<'_, D>, buf: &D::Buf, code: u8) {
        self.send_icmpv6_error(io, buf, |data| Icmpv6Repr::DstUnreachable { code, data });
    }

    /// Answers the IPv6 packet in `buf` (an Ethernet frame) with the ICMPv6 error `msg`
    /// makes of the quote: as much of the packet as fits in 1280 bytes (RFC 4443 2.4 (c)),
    /// at the ICMP error rate, never to a multicast or unspecified source nor for a packet
    /// not to one of our addresses (2.4 (e)).
    fn send_icmpv6_error<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        buf: &D::Buf,
        msg: impl for<'q> FnOnce(&'q [u8]) -> Icmpv6Repr<'q>,
    ) {
        let packet = &buf.data()[ETH_LEN..];
        let Ok(p) = Ipv6Packet::new_checked(packet) else {
            return;
        };
        let (dst, to) = (p.dst_addr(), p.src_addr());
        // To a multicast group (only a parameter problem for an option that asks for it,
        // RFC 4443 2.4 (e)): answered from our address towards the sender.
        let from = match dst.is_multicast() {
            true => match self.source_v6(to) {
                Some(a) => a,
                None => return,
            },
            false => dst,
        };
        if !to.is_unicast() || !self.is_ours_v6(from) {
            return;
        }
        if !self.icmp_limiter.take(io.now) {
            self.stats.icmp.rate_limited += 1;
            return;
        }
        let quoted = &packet[..packet.len().min(ipv6::MIN_MTU - ipv6::HEADER_LEN - 8)];
        let repr = msg(quoted);
        let emit = |room: &mut [u8]| repr.emit(from, to, room, &ChecksumCaps::software());
        let Some(out) = self.new_frame(io, repr.buffer_len(), emit) else {
            return;
        };
        if matches!(repr, Icmpv6Repr::DstUnreachable { .. }) {
            self.stats.icmp.unreachable_tx += 1;
        }
        self.send_ip6(io, out, from, to, IpProtocol::Unknown(ICMPV6), (0, Some(255)));
    }

    /// Sends a neighbour solicitation for `target` to `dst` at `mac`.
    fn send_ns<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        target: Ipv6Address,
        dst: Ipv6Address,
        mac: EthernetAddress,
    ) {
        let Some(src) = self.source_v6(target) else {
            return self.drop(DropReason::NoRoute);
        };
        let ns = Icmpv6Repr::NeighborSolicit {
            target,
            options: NdpOptions {
                source_lla: Some(self.mac),
                ..NdpOptions::default()
            },
        };
        self.stats.nd.requests_tx += 1;
        self.send_icmpv6(io, mac, src, dst, &ns);
    }

    /// The neighbour cache's timers: solicitations again, or giving up. At the first poll,
    /// duplicate address detection's solicitations (from `::`, for each address).
    pub(crate) fn nd_timers<D: Device>(&mut self, io: &mut Io<'_, D>) {
        if self.v6link.dad_until.is_none() {
            // Only an interface given IPv6 addresses speaks first; without detection, its
            // window is closed at once.
            let run = self.cfg.dad && !self.cfg.ipv6.is_empty();
            self.v6link.dad_until = Some(if run { io.now + DAD_WAIT } else { io.now });
            let addrs: Vec<Ipv6Address> = if run {
                self.ipv6_configured().collect()
            } else {
                Vec::new()
            };
            for a in addrs {
                let ns = Icmpv6Repr::NeighborSolicit {
                    target: a,
                    options: NdpOptions::default(),
                };
                let group = a.solicited_node();
                self.stats.nd.requests_tx += 1;
                self.send_icmpv6(io, group.multicast_mac(), Ipv6Address::UNSPECIFIED, group, &ns);
            }
        }
        loop {
            let stats = &mut self.stats;
            match self.nd.next_action(io.now, &mut stats.nd, &mut stats.drops) {
                Some(Action::Request(ip)) => {
                    self.send_ns(io, ip, ip.solicited_node(), ip.solicited_node().multicast_mac())
                }
                // PROBE: a unicast solicitation to the address known.
                Some(Action::Probe(ip, mac)) => self.send_ns(io, ip, ip, mac),
                None => break,
            }
        }
    }

    /// Records that neighbour `ip` is at `mac` (`confirmed`: a solicited advertisement;
    /// `override_`: its override flag, or news other than an advertisement; creating the
    /// entry only if `create`), and sends what waited for it.
    fn learn_v6<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        ip: Ipv6Address,
        mac: EthernetAddress,
        (confirmed, override_, create): (bool, bool, bool),
    ) {
        if !ip.is_unicast() || !mac.is_unicast() {
            return;
        }
        let stats = &mut self.stats;
        if !self.nd.learn_nd(
            io.now,
            ip,
            (mac, confirmed, override_, create),
            &mut stats.nd,
            &mut stats.drops,
        ) {
            return;
        }
        while let Some(packet) = self.nd.pop_waiting(ip) {
            if self.send_packet_copy(io, &packet, mac, EtherType::Ipv6) {
                self.stats.nd.pending_sent += 1;
            }
            self.nd.recycle(packet);
        }
    }

    /// The quoted packet of an ICMPv6 error, if it is one of ours: the upper layer's
    /// protocol, our and the remote address, and the transport's first 8 bytes. The quote is cut to
    /// fit 1280 bytes (RFC 4443 2.4 (c)): its payload length may say more than is there.
    fn icmpv6_quote(&self, quoted: &[u8]) -> Option<(IpProtocol, (Ipv6Address, Ipv6Address), [u8; 8])> {
        if quoted.len() < ipv6::HEADER_LEN || quoted[0] >> 4 != 6 {
            return None;
        }
        let p = Ipv6Packet::new_unchecked(quoted);
        let inner = &quoted[ipv6::HEADER_LEN..];
        let chain = walk_extensions(p.next_header(), inner).ok()?;
        let q = inner.get(chain.offset..chain.offset + 8)?;
        self.is_ours_v6(p.src_addr()).then(|| {
            (
                chain.protocol,
                (p.src_addr(), p.dst_addr()),
                q.try_into().expect("8 bytes"),
            )
        })
    }

    /// Reads the IPv6 packet in `buf` (an Ethernet frame from `from`, whole or
    /// `reassembled` from fragments): neighbour discovery and echo are handled here; what
    /// is for another part is returned.
    pub(crate) fn ipv6_input<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        from: EthernetAddress,
        buf: &D::Buf,
        reassembled: bool,
    ) -> V6Input {
        let frame = &buf.data()[ETH_LEN..];
        let Ok(packet) = Ipv6Packet::new_checked(frame) else {
            return self.drop_done(DropReason::BadIpv6);
        };
        let Ok(ip) = Ipv6Repr::parse(&packet) else {
            return self.drop_done(DropReason::BadIpv6);
        };
        if !self.accepts_v6(ip.dst_addr) {
            return self.drop_done(DropReason::NotForUs);
        }
        // IPv4-mapped addresses never travel in IPv6 packets (RFC 4291 2.5.5.2): a dual-stack
        // socket would take such a peer for the IPv4 host.
        if ip.src_addr.to_ipv4_mapped().is_some() {
            return self.drop_done(DropReason::MartianSource);
        }
        let payload = &frame[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ip.payload_len];
        let chain = match walk_extensions(ip.next_header, payload) {
            Ok(c) => c,
            // An extension header or option that asks for an answer (RFC 8200 4.2-4.5).
            Err(ipv6::ExtError::ParamProblem {
                code,
                pointer,
                multicast_ok,
            }) => {
                self.drop(DropReason::BadIpv6);
                if multicast_ok || !ip.dst_addr.is_multicast() {
                    self.send_icmpv6_error(io, buf, |data| Icmpv6Repr::ParamProblem { code, pointer, data });
                }
                return V6Input::Done;
            }
            Err(_) => return self.drop_done(DropReason::BadIpv6),
        };
        // A real fragment (an atomic one, offset 0 and no more, is walked through: RFC
        // 6946).
        if let Some(f) = chain.fragment.filter(|f| f.offset != 0 || f.more) {
            return V6Input::Fragment(ip, f);
        }
        if chain.protocol == IpProtocol::Tcp {
            // Unicast to us, from a unicast source, only.
            if ip.dst_addr.is_multicast() || !ip.src_addr.is_unicast() || self.is_ours_v6(ip.src_addr) {
                return self.drop_done(DropReason::MartianSource);
            }
            let start = ETH_LEN + ipv6::HEADER_LEN + chain.offset;
            let l4 = start..ETH_LEN + ipv6::HEADER_LEN + ip.payload_len;
            return V6Input::Tcp((ip.src_addr.into(), ip.dst_addr.into()), l4);
        }
        if chain.protocol == IpProtocol::Udp {
            if ip.dst_addr.is_multicast() || !ip.src_addr.is_unicast() || self.is_ours_v6(ip.src_addr) {
                return self.drop_done(DropReason::MartianSource);
            }
            let start = ETH_LEN + ipv6::HEADER_LEN + chain.offset;
            let l4 = start..ETH_LEN + ipv6::HEADER_LEN + ip.payload_len;
            return V6Input::Udp((ip.src_addr.into(), ip.dst_addr.into()), l4);
        }
        if u8::from(chain.protocol) != ICMPV6 {
            self.drop(DropReason::Ipv6Unsupported);
            // An upper layer we do not speak (59: nothing follows): parameter problem,
            // unrecognized next header, pointing at the field that named it (RFC 8200 4).
            if u8::from(chain.protocol) != 59 && !ip.dst_addr.is_multicast() {
                let pointer = chain.named_at;
                self.send_icmpv6_error(io, buf, |data| Icmpv6Repr::ParamProblem {
                    code: 1,
                    pointer,
                    data,
                });
            }
            return V6Input::Done;
        }
        let caps = ChecksumCaps::software();
        let Ok(msg) = Icmpv6Repr::parse(
            ip.src_addr,
            ip.dst_addr,
            ip.hop_limit,
            &payload[chain.offset..],
            &caps,
        ) else {
            return self.drop_done(DropReason::BadIcmp);
        };
        // RFC 6980 5: neighbour discovery carried in fragments is ignored (it could slip past
        // the link's RA guard).
        let nd = matches!(
            msg,
            Icmpv6Repr::RouterSolicit { .. }
                | Icmpv6Repr::RouterAdvert { .. }
                | Icmpv6Repr::NeighborSolicit { .. }
                | Icmpv6Repr::NeighborAdvert { .. }
                | Icmpv6Repr::Redirect { .. }
        );
        if nd && (reassembled || chain.fragment.is_some()) {
            return self.drop_done(DropReason::IcmpIgnored);
        }
        let ours = Ipv6Address::link_local_from_mac(self.mac);
        match msg {
            Icmpv6Repr::NeighborSolicit { target, .. }
                if ip.src_addr.is_unspecified()
                    && self.in_dad()
                    && self.is_ours_v6(target)
                    && from != self.mac =>
            {
                // Another node detects the same address while we do (RFC 4862 5.4.3): it
                // is neither's; give it up.
                self.duplicate_found(target);
            }
            Icmpv6Repr::NeighborSolicit { target, options } if self.is_ours_v6(target) => {
                // From `::`, another node's duplicate address detection: defend the address
                // to all nodes (7.2.4); else answer the solicitor.
                let (dst, solicited) = if ip.src_addr.is_unspecified() {
                    (Ipv6Address::ALL_NODES, false)
                } else {
                    (ip.src_addr, true)
                };
                let mac = options.source_lla.unwrap_or(from);
                if solicited {
                    if let Some(lla) = options.source_lla {
                        // RFC 4861 7.2.3: the solicitor's address is recorded (STALE).
                        self.learn_v6(io, ip.src_addr, lla, (false, true, true));
                    }
                }
                let na = Icmpv6Repr::NeighborAdvert {
                    flags: NaFlags {
                        router: false,
                        solicited,
                        // An address still under (optimistic) detection does not override
                        // a neighbour's entry (RFC 4429 3.3).
                        override_: !self.in_dad(),
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
                    return self.drop_done(DropReason::BadIpv6);
                }
                let reply = Icmpv6Repr::EchoReply { ident, seq_no, data };
                self.stats.icmp.echo_replies_tx += 1;
                self.send_icmpv6(io, from, src, ip.src_addr, &reply);
            }
            Icmpv6Repr::NeighborSolicit { options, .. } => {
                // For another address: it teaches nothing.
                let _ = options;
                self.drop(DropReason::NotForUs)
            }
            Icmpv6Repr::NeighborAdvert {
                target,
                options,
                flags,
            } => {
                if self.is_ours_v6(target) {
                    // Another node advertises our address (RFC 4862 5.4.4): during detection
                    // it is a duplicate; after, ours is kept (5.4.5: logged).
                    if options.target_lla.is_some_and(|m| m != self.mac) {
                        if self.in_dad() {
                            self.duplicate_found(target);
                        } else {
                            self.stats.nd.conflicts += 1;
                        }
                    }
                    return V6Input::Done;
                }
                // An answer to our solicitation, or an unsolicited update: it only changes
                // an entry that exists (RFC 4861 7.2.5).
                if let Some(mac) = options.target_lla {
                    self.learn_v6(io, target, mac, (flags.solicited, flags.override_, false));
                }
            }
            Icmpv6Repr::Redirect {
                target,
                dest,
                options,
            } => {
                // RFC 4861 8.1: from the router we use for `dest`, naming a link-local
                // target (a better router) or `dest` itself (on-link after all).
                let from_our_router = self.next_hop_v6(dest) == Some(ip.src_addr);
                if !ip.src_addr.is_link_local()
                    || !from_our_router
                    || dest.is_multicast()
                    || !(target.is_link_local() || target == dest)
                {
                    return self.drop_done(DropReason::IcmpIgnored);
                }
                if let Some(mac) = options.target_lla {
                    self.learn_v6(io, target, mac, (false, true, true));
                }
                let r = &mut self.v6link.redirects;
                r.retain(|(d, _)| *d != dest);
                if r.len() >= MAX_REDIRECTS {
                    r.remove(0);
                }
                r.push((dest, target));
            }
            Icmpv6Repr::RouterAdvert {
                router_lifetime,
                options,
                ..
            } => {
                // RFC 4861 6.1.2: from a link-local source, with hop limit 255 (checked by
                // the parse); a lifetime above 0 makes it the default router.
                if !ip.src_addr.is_link_local() {
                    return self.drop_done(DropReason::BadIcmp);
                }
                if let Some(mac) = options.source_lla {
                    self.learn_v6(io, ip.src_addr, mac, (false, true, true));
                }
                let until = io.now + core::time::Duration::from_secs(u64::from(router_lifetime));
                match (router_lifetime, self.v6link.router) {
                    (0, Some((r, _))) if r == ip.src_addr => self.v6link.router = None,
                    (0, _) => {}
                    _ => self.v6link.router = Some((ip.src_addr, until)),
                }
            }
            Icmpv6Repr::PacketTooBig { mtu, data } => {
                // RFC 8201: never below the IPv6 minimum. The TCB sizes segments for an
                // IPv4 header; the IPv6 header is 20 bytes longer.
                let mtu = mtu.clamp(ipv6::MIN_MTU as u32, u32::from(u16::MAX)) as u16 - 20;
                let kind = sluice_tcp::IcmpError::FragmentationNeeded { mtu };
                return self.icmpv6_error(data, kind, None);
            }
            Icmpv6Repr::DstUnreachable { code, data } => {
                use sluice_tcp::IcmpError as T;
                // RFC 4443 3.1 / RFC 5461: port unreachable and prohibited are hard errors.
                let kind = match code {
                    4 => T::PortUnreachable,
                    1 | 5 | 6 => T::AdminProhibited,
                    0 => T::NetUnreachable,
                    _ => T::HostUnreachable,
                };
                return self.icmpv6_error(data, kind, Some(code));
            }
            Icmpv6Repr::TimeExceeded { data, .. } | Icmpv6Repr::ParamProblem { data, .. } => {
                let kind = if matches!(msg, Icmpv6Repr::TimeExceeded { .. }) {
                    sluice_tcp::IcmpError::TimeExceeded
                } else {
                    sluice_tcp::IcmpError::ParameterProblem
                };
                return self.icmpv6_error(data, kind, None);
            }
            _ => self.drop(DropReason::IcmpIgnored),
        }
        V6Input::Done
    }

    /// Counts a drop: the packet is done with.
    fn drop_done(&mut self, reason: DropReason) -> V6Input {
        self.drop(reason);
        V6Input::Done
    }

    /// An ICMPv6 error quoting `quoted` (the invoking packet, from its IPv6 header), for
    /// the TCP connection (as `tcp`) or, with a destination unreachable's `udp` code, the
    /// UDP socket it names; a counted drop if it names none of ours.
    fn icmpv6_error(&mut self, quoted: &[u8], tcp: sluice_tcp::IcmpError, udp: Option<u8>) -> V6Input {
        use sluice_wire::Icmpv4DstUnreachable as U;
        let q = self
            .icmpv6_quote(quoted)
            .and_then(|(protocol, (local, remote), q)| {
                let (local_port, remote_port) =
                    (u16::from_be_bytes([q[0], q[1]]), u16::from_be_bytes([q[2], q[3]]));
                let remote = Endpoint::new(remote, remote_port);
                match (protocol, udp) {
                    (IpProtocol::Tcp, _) => Some(Quoted::Tcp {
                        local: Endpoint::new(local, local_port),
                        remote,
                        seq: u32::from_be_bytes([q[4], q[5], q[6], q[7]]),
                        err: tcp,
                    }),
                    // For UDP, only destination unreachable is reported (as for IPv4).
                    (IpProtocol::Udp, Some(code)) => {
                        let reason = match code {
                            4 => U::PortUnreachable,
                            1 | 5 | 6 => U::CommProhibited,
                            0 => U::NetUnreachable,
                            _ => U::HostUnreachable,
                        };
                        let err = crate::icmp::IcmpError {
                            reason,
                            next_hop_mtu: 0,
                        };
                        Some(Quoted::Udp {
                            local_port,
                            remote,
                            err,
                        })
                    }
                    _ => None,
                }
            });
        match q {
            Some(q) => V6Input::Error(q),
            None => self.drop_done(DropReason::IcmpIgnored),
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
        let len = msg.buffer_len();
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Unknown(ICMPV6),
            payload_len: len,
            hop_limit: 255,
        };
        let emit = |room: &mut [u8]| {
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut room[..]));
            msg.emit(src, dst, &mut room[ipv6::HEADER_LEN..], &ChecksumCaps::software());
        };
        let Some(buf) = self.new_frame(io, ipv6::HEADER_LEN + len, emit) else {
            return;
        };
        self.send_eth(io, buf, mac, EtherType::Ipv6);
    }
}
