//! ICMP: echo replies, destination unreachable (sent, rate-limited, and received errors
//! handed to the socket they concern).

use core::time::Duration;

use sluice_dev::{Device, PacketBuf};
use sluice_wire::{
    icmpv4, Error, Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Instant, IpProtocol, Ipv4Repr,
};

use crate::iface::{Interface, Io};
use crate::stats::DropReason;

/// An ICMP destination unreachable message about a datagram or segment a socket sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// The code of the message: `PortUnreachable`, `HostUnreachable`, `FragRequired`...
    pub reason: Icmpv4DstUnreachable,
    /// For `FragRequired`, the next hop's MTU (RFC 1191); otherwise as carried.
    pub next_hop_mtu: u16,
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

impl Interface {
    /// Handles an ICMP message to us. `l4` is the range of the message in `buf`.
    pub(crate) fn process_icmp<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        mut buf: D::Buf,
        ip: Ipv4Repr,
        l4: core::ops::Range<usize>,
        broadcast: bool,
    ) {
        let caps = self.caps;
        let repr = match Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf.data()[l4.clone()]), &caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return self.drop(DropReason::Checksum),
            Err(Error::Unsupported) => return self.drop(DropReason::IcmpIgnored),
            Err(_) => return self.drop(DropReason::BadIcmp),
        };
        match repr {
            Icmpv4Repr::EchoRequest { .. } => {
                self.stats.icmp.echo_requests_rx += 1;
                // RFC 1122 3.2.2.6: an echo to a broadcast address MAY be silently dropped.
                if !self.cfg.icmp.echo || broadcast {
                    return self.drop(DropReason::IcmpIgnored);
                }
                // Reply in place: the same buffer, its message turned into a reply, then
                // new IPv4 and Ethernet headers in front (options are not echoed).
                let total = buf.len();
                if !buf.trim(total - l4.end) || !buf.adj(l4.start) {
                    return self.drop(DropReason::BadIcmp);
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
            }
            Icmpv4Repr::EchoReply { .. } => {
                // No ICMP sockets: counted, nothing else to do.
                self.stats.icmp.echo_replies_rx += 1;
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                data,
            } => {
                self.stats.icmp.unreachable_rx += 1;
                let mut quoted = [0u8; icmpv4::QUOTED_PAYLOAD_LEN];
                quoted.copy_from_slice(data);
                drop(buf);
                let err = IcmpError { reason, next_hop_mtu };
                if self.deliver_icmp_error(io.now, header, quoted, err) {
                    self.stats.icmp.errors_delivered += 1;
                } else {
                    self.drop(DropReason::IcmpIgnored);
                }
            }
            Icmpv4Repr::TimeExceeded { header, data, .. } | Icmpv4Repr::ParamProblem { header, data, .. } => {
                // RFC 1122 3.2.2.4 and 3.2.2.5: passed to the transport. TCP only: for UDP
                // they are transient errors Linux does not report without IP_RECVERR. TCP
                // takes both as soft errors (RFC 1122 4.2.3.9).
                let kind = if matches!(repr, Icmpv4Repr::TimeExceeded { .. }) {
                    self.stats.icmp.time_exceeded_rx += 1;
                    sluice_tcp::IcmpError::TimeExceeded
                } else {
                    self.stats.icmp.param_problem_rx += 1;
                    sluice_tcp::IcmpError::ParameterProblem
                };
                let q = data;
                let delivered = header.src_addr == self.cfg.address.address()
                    && header.protocol == IpProtocol::Tcp
                    && q.len() >= 8
                    && self.tcp_icmp_kind(
                        io.now,
                        (header.src_addr.into(), u16::from_be_bytes([q[0], q[1]])),
                        header.dst_addr.into(),
                        u16::from_be_bytes([q[2], q[3]]),
                        u32::from_be_bytes([q[4], q[5], q[6], q[7]]),
                        kind,
                    );
                drop(buf);
                if delivered {
                    self.stats.icmp.errors_delivered += 1;
                } else {
                    self.drop(DropReason::IcmpIgnored);
                }
            }
        }
    }

    /// Hands an ICMP error to the socket that sent the quoted datagram; false if none.
    fn deliver_icmp_error(
        &mut self,
        now: Instant,
        header: Ipv4Repr,
        quoted: [u8; 8],
        err: IcmpError,
    ) -> bool {
        if header.src_addr != self.cfg.address.address() {
            return false;
        }
        let local_port = u16::from_be_bytes([quoted[0], quoted[1]]);
        let remote_port = u16::from_be_bytes([quoted[2], quoted[3]]);
        match header.protocol {
            IpProtocol::Udp => self.udp_icmp_error(local_port, header.dst_addr.into(), remote_port, err),
            IpProtocol::Tcp => {
                let seq = u32::from_be_bytes([quoted[4], quoted[5], quoted[6], quoted[7]]);
                self.tcp_icmp_error(now, local_port, header.dst_addr, remote_port, seq, err)
            }
            _ => false,
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
        let Some(mut buf) = io.dev.alloc() else {
            return self.drop(DropReason::NoBuffer);
        };
        let Some(room) = buf.append(repr.buffer_len()) else {
            return self.drop(DropReason::NoBuffer);
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(room), &self.caps);
        self.stats.icmp.unreachable_tx += 1;
        self.send_ip(io, buf, ip.src_addr, IpProtocol::Icmp);
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
