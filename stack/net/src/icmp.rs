//! ICMP: echo replies, destination unreachable (sent, rate-limited, and received errors
//! handed to the socket they concern).

use sluice_dev::{Device, PacketBuf};
use sluice_wire::{icmpv4, Error, Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Repr};

use crate::egress::{Egress, Io};
use crate::endpoint::Endpoint;
use crate::stats::DropReason;

/// An ICMP destination unreachable message about a datagram or segment a socket sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// The code of the message: `PortUnreachable`, `HostUnreachable`, `FragRequired`...
    pub reason: Icmpv4DstUnreachable,
    /// For `FragRequired`, the next hop's MTU (RFC 1191); otherwise as carried.
    pub next_hop_mtu: u16,
}

/// An ICMP or ICMPv6 error about a segment or datagram we sent, for the socket that sent
/// it: the interface hands it to the TCP or the UDP table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Quoted {
    Tcp {
        local: Endpoint,
        remote: Endpoint,
        /// The quoted segment's sequence number.
        seq: u32,
        err: sluice_tcp::IcmpError,
    },
    Udp {
        local_port: u16,
        remote: Endpoint,
        err: IcmpError,
    },
}

/// What an IPv4 destination unreachable means to TCP.
fn tcp_kind(err: IcmpError) -> sluice_tcp::IcmpError {
    use sluice_tcp::IcmpError as T;
    use Icmpv4DstUnreachable as U;
    match err.reason {
        U::NetUnreachable | U::DstNetUnknown | U::NetUnreachToS => T::NetUnreachable,
        U::ProtoUnreachable => T::ProtocolUnreachable,
        U::PortUnreachable => T::PortUnreachable,
        U::FragRequired => T::FragmentationNeeded {
            mtu: err.next_hop_mtu,
        },
        U::NetProhibited | U::HostProhibited | U::CommProhibited => T::AdminProhibited,
        _ => T::HostUnreachable,
    }
}

/// The ports (and for TCP the sequence number) in the first 8 bytes a message quotes.
fn ports_of(q: &[u8]) -> Option<(u16, u16, u32)> {
    let q: &[u8; 8] = q.get(..8)?.try_into().ok()?;
    Some((
        u16::from_be_bytes([q[0], q[1]]),
        u16::from_be_bytes([q[2], q[3]]),
        u32::from_be_bytes([q[4], q[5], q[6], q[7]]),
    ))
}

impl Egress {
    /// Handles an ICMP message to us: echo is answered here; an error about a segment or
    /// datagram we sent is returned for the socket it concerns. `l4` is the range of the
    /// message in `buf`.
    pub(crate) fn icmp_input<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mut buf: D::Buf,
        ip: Ipv4Repr,
        l4: core::ops::Range<usize>,
        broadcast: bool,
    ) -> Option<Quoted> {
        let caps = self.caps;
        let repr = match Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf.data()[l4.clone()]), &caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return self.drop_none(DropReason::Checksum),
            Err(Error::Unsupported) => return self.drop_none(DropReason::IcmpIgnored),
            Err(_) => return self.drop_none(DropReason::BadIcmp),
        };
        let ours = self.address();
        match repr {
            Icmpv4Repr::EchoRequest { .. } => {
                self.stats.icmp.echo_requests_rx += 1;
                // RFC 1122 3.2.2.6: an echo to a broadcast address MAY be silently dropped.
                if !self.cfg.icmp.echo || broadcast {
                    return self.drop_none(DropReason::IcmpIgnored);
                }
                // Reply in place: the same buffer, its message turned into a reply, then
                // new IPv4 and Ethernet headers in front (options are not echoed).
                let total = buf.len();
                if !buf.trim(total - l4.end) || !buf.adj(l4.start) {
                    return self.drop_none(DropReason::BadIcmp);
                }
                let mut msg = Icmpv4Packet::new_unchecked(buf.data_mut());
                msg.set_msg_type(sluice_wire::Icmpv4Message::EchoReply);
                if caps.icmp.tx() {
                    msg.fill_checksum();
                } else {
                    msg.set_checksum(0);
                }
                self.stats.icmp.echo_replies_tx += 1;
                self.send_ip(io, buf, ip.src_addr, IpProtocol::Icmp);
                None
            }
            Icmpv4Repr::EchoReply { .. } => {
                // No ICMP sockets: counted, nothing else to do.
                self.stats.icmp.echo_replies_rx += 1;
                None
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                data,
            } => {
                self.stats.icmp.unreachable_rx += 1;
                let err = IcmpError { reason, next_hop_mtu };
                let Some((local_port, remote_port, seq)) = ports_of(data) else {
                    return self.drop_none(DropReason::IcmpIgnored);
                };
                let remote = Endpoint::new(header.dst_addr, remote_port);
                let quoted = match header.protocol {
                    _ if header.src_addr != ours => None,
                    IpProtocol::Udp => Some(Quoted::Udp {
                        local_port,
                        remote,
                        err,
                    }),
                    IpProtocol::Tcp => Some(Quoted::Tcp {
                        local: Endpoint::new(ours, local_port),
                        remote,
                        seq,
                        err: tcp_kind(err),
                    }),
                    _ => None,
                };
                quoted.or_else(|| self.drop_none(DropReason::IcmpIgnored))
            }
            Icmpv4Repr::TimeExceeded { header, data, .. } | Icmpv4Repr::ParamProblem { header, data, .. } => {
                // RFC 1122 3.2.2.4 and 3.2.2.5: passed to the transport. TCP only: for UDP
                // they are transient errors Linux does not report without IP_RECVERR. TCP
                // takes both as soft errors (RFC 1122 4.2.3.9).
                let err = if matches!(repr, Icmpv4Repr::TimeExceeded { .. }) {
                    self.stats.icmp.time_exceeded_rx += 1;
                    sluice_tcp::IcmpError::TimeExceeded
                } else {
                    self.stats.icmp.param_problem_rx += 1;
                    sluice_tcp::IcmpError::ParameterProblem
                };
                match ports_of(data) {
                    Some((local_port, remote_port, seq))
                        if header.src_addr == ours && header.protocol == IpProtocol::Tcp =>
                    {
                        Some(Quoted::Tcp {
                            local: Endpoint::new(ours, local_port),
                            remote: Endpoint::new(header.dst_addr, remote_port),
                            seq,
                            err,
                        })
                    }
                    _ => self.drop_none(DropReason::IcmpIgnored),
                }
            }
        }
    }

    /// Sends a destination unreachable about the datagram `ip` whose transport bytes are
    /// `l4`, unless rate-limited. The caller has checked that the datagram was unicast to
    /// us from a unicast source and is not itself an ICMP error.
    pub(crate) fn send_unreachable<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        reason: Icmpv4DstUnreachable,
        ip: &Ipv4Repr,
        l4: &[u8],
    ) {
        if !self.icmp_limiter.take(io.now) {
            self.stats.icmp.rate_limited += 1;
            return;
        }
        let quoted = &l4[..l4.len().min(icmpv4::QUOTED_PAYLOAD_LEN)];
        let repr = Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu: 0,
            header: *ip,
            data: quoted,
        };
        let caps = self.caps;
        let emit = |room: &mut [u8]| repr.emit(&mut Icmpv4Packet::new_unchecked(room), &caps);
        let Some(buf) = self.new_frame(io, repr.buffer_len(), emit) else {
            return;
        };
        self.stats.icmp.unreachable_tx += 1;
        self.send_ip(io, buf, ip.src_addr, IpProtocol::Icmp);
    }
}
