//! ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861): echo, destination unreachable,
//! packet too big, time exceeded, parameter problem; router and neighbour solicitations
//! and advertisements, redirects, and their options.
//!
//! The checksum always covers the IPv6 pseudo-header (RFC 8200 section 8.1), so `parse`
//! and `emit` take the addresses. ND options are read into `NdpOptions` (source and
//! target link-layer addresses, one prefix information, the MTU); unknown options are
//! skipped, an option of length 0 makes the message `Malformed` (RFC 4861 section 4.6).
//! Other message types parse as `Err(Unsupported)`.

use crate::checksum::{self, ChecksumCaps};
use crate::error::{Error, Result};
use crate::eth::EthernetAddress;
use crate::ipv6::Ipv6Address;

/// The protocol number of ICMPv6 (next header 58).
pub const PROTOCOL: u8 = 58;

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, the
/// upper-layer length (32 bits) and the next header. Not complemented.
pub fn pseudo_header_v6(src: Ipv6Address, dst: Ipv6Address, next_header: u8, length: u32) -> u16 {
    let mut acc: u64 = 0;
    for a in [src.0, dst.0] {
        for w in a.chunks_exact(2) {
            acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
    }
    acc += u64::from(length >> 16) + u64::from(length & 0xffff) + u64::from(next_header);
    checksum::fold_sum(acc)
}

/// The checksum field of an ICMPv6 (or TCP/UDP over IPv6) message `msg` whose own field is 0.
fn compute(src: Ipv6Address, dst: Ipv6Address, msg: &[u8]) -> u16 {
    !checksum::combine(&[
        pseudo_header_v6(src, dst, PROTOCOL, msg.len() as u32),
        checksum::sum(msg),
    ])
}

/// Link-layer address options, prefix information and MTU of an ND message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NdpOptions {
    pub source_lla: Option<EthernetAddress>,
    pub target_lla: Option<EthernetAddress>,
    pub prefix: Option<PrefixInfo>,
    pub mtu: Option<u32>,
}

/// A prefix information option (RFC 4861 section 4.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix_len: u8,
    /// On-link (L) and autonomous address-configuration (A) flags.
    pub on_link: bool,
    pub autonomous: bool,
    /// Seconds (0xffffffff: forever).
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
    pub prefix: Ipv6Address,
}

impl NdpOptions {
    fn parse(mut data: &[u8]) -> Result<NdpOptions> {
        let mut o = NdpOptions::default();
        while !data.is_empty() {
            if data.len() < 2 {
                return Err(Error::Malformed);
            }
            let len = usize::from(data[1]) * 8;
            if len == 0 || len > data.len() {
                return Err(Error::Malformed);
            }
            let opt = &data[..len];
            let mac = || {
                let mut m = [0u8; 6];
                m.copy_from_slice(&opt[2..8]);
                EthernetAddress(m)
            };
            match opt[0] {
                1 if len == 8 => o.source_lla = Some(mac()),
                2 if len == 8 => o.target_lla = Some(mac()),
                3 if len == 32 && o.prefix.is_none() => {
                    let mut p = [0u8; 16];
                    p.copy_from_slice(&opt[16..32]);
                    o.prefix = Some(PrefixInfo {
                        prefix_len: opt[2],
                        on_link: opt[3] & 0x80 != 0,
                        autonomous: opt[3] & 0x40 != 0,
                        valid_lifetime: u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]),
                        preferred_lifetime: u32::from_be_bytes([opt[8], opt[9], opt[10], opt[11]]),
                        prefix: Ipv6Address(p),
                    });
                }
                5 if len == 8 => o.mtu = Some(u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]])),
                _ => {} // unknown, or a second prefix: skipped
            }
            data = &data[len..];
        }
        Ok(o)
    }

    fn buffer_len(&self) -> usize {
        8 * (usize::from(self.source_lla.is_some())
            + usize::from(self.target_lla.is_some())
            + usize::from(self.mtu.is_some()))
            + 32 * usize::from(self.prefix.is_some())
    }

    fn emit(&self, out: &mut [u8]) {
        let mut at = 0;
        for (ty, mac) in [(1u8, self.source_lla), (2, self.target_lla)] {
            if let Some(m) = mac {
                out[at] = ty;
                out[at + 1] = 1;
                out[at + 2..at + 8].copy_from_slice(&m.0);
                at += 8;
            }
        }
        if let Some(p) = self.prefix {
            let o = &mut out[at..at + 32];
            o.fill(0);
            o[0] = 3;
            o[1] = 4;
            o[2] = p.prefix_len;
            o[3] = u8::from(p.on_link) << 7 | u8::from(p.autonomous) << 6;
            o[4..8].copy_from_slice(&p.valid_lifetime.to_be_bytes());
            o[8..12].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
            o[16..32].copy_from_slice(&p.prefix.0);
            at += 32;
        }
        if let Some(m) = self.mtu {
            out[at..at + 8].copy_from_slice(&[5, 1, 0, 0, 0, 0, 0, 0]);
            out[at + 4..at + 8].copy_from_slice(&m.to_be_bytes());
        }
    }
}

/// A neighbour advertisement's flags (RFC 4861 section 4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NaFlags {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
}

/// An ICMPv6 message Sluice reads or writes. `data` of the errors is the invoking
/// packet, as much as fits (RFC 4443 section 2.4 (c)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Code 0 no route, 1 prohibited, 3 address unreachable, 4 port unreachable...
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    /// Code 0 hop limit exceeded, 1 reassembly time exceeded.
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    /// Code 0 erroneous header field, 1 unknown next header, 2 unknown option.
    ParamProblem {
        code: u8,
        pointer: u32,
        data: &'a [u8],
    },
    RouterSolicit {
        options: NdpOptions,
    },
    RouterAdvert {
        hop_limit: u8,
        managed: bool,
        other: bool,
        /// Seconds; 0: not a default router.
        router_lifetime: u16,
        /// Milliseconds; 0: unspecified.
        reachable_time: u32,
        retrans_time: u32,
        options: NdpOptions,
    },
    NeighborSolicit {
        target: Ipv6Address,
        options: NdpOptions,
    },
    NeighborAdvert {
        flags: NaFlags,
        target: Ipv6Address,
        options: NdpOptions,
    },
    Redirect {
        target: Ipv6Address,
        dest: Ipv6Address,
        options: NdpOptions,
    },
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn addr_at(b: &[u8], i: usize) -> Ipv6Address {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[i..i + 16]);
    Ipv6Address(a)
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses message `msg` (the IPv6 payload from `src` to `dst`, after any extension
    /// headers), checking the checksum unless `caps` says the device did. ND messages must
    /// arrive with hop limit 255 (`hop_limit`, RFC 4861: else they came from off-link) and
    /// code 0.
    pub fn parse(
        src: Ipv6Address,
        dst: Ipv6Address,
        hop_limit: u8,
        msg: &'a [u8],
        caps: &ChecksumCaps,
    ) -> Result<Icmpv6Repr<'a>> {
        if msg.len() < 8 {
            return Err(Error::Truncated);
        }
        if caps.icmp.rx() && !checksum_ok(src, dst, msg) {
            return Err(Error::Checksum);
        }
        let (ty, code) = (msg[0], msg[1]);
        let nd = |min: usize| -> Result<()> {
            if msg.len() < min {
                Err(Error::Truncated)
            } else if hop_limit != 255 || code != 0 {
                Err(Error::Malformed)
            } else {
                Ok(())
            }
        };
        Ok(match ty {
            128 | 129 => {
                let (ident, seq_no, data) = (u16_at(msg, 4), u16_at(msg, 6), &msg[8..]);
                if ty == 128 {
                    Icmpv6Repr::EchoRequest { ident, seq_no, data }
                } else {
                    Icmpv6Repr::EchoReply { ident, seq_no, data }
                }
            }
            1 => Icmpv6Repr::DstUnreachable {
                code,
                data: &msg[8..],
            },
            2 => Icmpv6Repr::PacketTooBig {
                mtu: u32_at(msg, 4),
                data: &msg[8..],
            },
            3 => Icmpv6Repr::TimeExceeded {
                code,
                data: &msg[8..],
            },
            4 => Icmpv6Repr::ParamProblem {
                code,
                pointer: u32_at(msg, 4),
                data: &msg[8..],
            },
            133 => {
                nd(8)?;
                Icmpv6Repr::RouterSolicit {
                    options: NdpOptions::parse(&msg[8..])?,
                }
            }
            134 => {
                nd(16)?;
                Icmpv6Repr::RouterAdvert {
                    hop_limit: msg[4],
                    managed: msg[5] & 0x80 != 0,
                    other: msg[5] & 0x40 != 0,
                    router_lifetime: u16_at(msg, 6),
                    reachable_time: u32_at(msg, 8),
                    retrans_time: u32_at(msg, 12),
                    options: NdpOptions::parse(&msg[16..])?,
                }
            }
            135 | 136 => {
                nd(24)?;
                let target = addr_at(msg, 8);
                if target.is_multicast() {
                    return Err(Error::Malformed);
                }
                let options = NdpOptions::parse(&msg[24..])?;
                if ty == 135 {
                    Icmpv6Repr::NeighborSolicit { target, options }
                } else {
                    let f = msg[4];
                    Icmpv6Repr::NeighborAdvert {
                        flags: NaFlags {
                            router: f & 0x80 != 0,
                            solicited: f & 0x40 != 0,
                            override_: f & 0x20 != 0,
                        },
                        target,
                        options,
                    }
                }
            }
            137 => {
                nd(40)?;
                Icmpv6Repr::Redirect {
                    target: addr_at(msg, 8),
                    dest: addr_at(msg, 24),
                    options: NdpOptions::parse(&msg[40..])?,
                }
            }
            _ => return Err(Error::Unsupported),
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. } => 8 + data.len(),
            Icmpv6Repr::RouterSolicit { options } => 8 + options.buffer_len(),
            Icmpv6Repr::RouterAdvert { options, .. } => 16 + options.buffer_len(),
            Icmpv6Repr::NeighborSolicit { options, .. } | Icmpv6Repr::NeighborAdvert { options, .. } => {
                24 + options.buffer_len()
            }
            Icmpv6Repr::Redirect { options, .. } => 40 + options.buffer_len(),
        }
    }

    /// Writes the message into `out` (`buffer_len` bytes) with its checksum for `src` ->
    /// `dst` (left at 0 when `caps` gives it to the device).
    pub fn emit(&self, src: Ipv6Address, dst: Ipv6Address, out: &mut [u8], caps: &ChecksumCaps) {
        let out = &mut out[..self.buffer_len()];
        out[..8].fill(0);
        let simple = |out: &mut [u8], ty: u8, code: u8, word: u32, data: &[u8]| {
            out[0] = ty;
            out[1] = code;
            out[4..8].copy_from_slice(&word.to_be_bytes());
            out[8..].copy_from_slice(data);
        };
        match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, data }
            | Icmpv6Repr::EchoReply { ident, seq_no, data } => {
                let ty = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    128
                } else {
                    129
                };
                simple(out, ty, 0, u32::from(ident) << 16 | u32::from(seq_no), data)
            }
            Icmpv6Repr::DstUnreachable { code, data } => simple(out, 1, code, 0, data),
            Icmpv6Repr::PacketTooBig { mtu, data } => simple(out, 2, 0, mtu, data),
            Icmpv6Repr::TimeExceeded { code, data } => simple(out, 3, code, 0, data),
            Icmpv6Repr::ParamProblem { code, pointer, data } => simple(out, 4, code, pointer, data),
            Icmpv6Repr::RouterSolicit { options } => {
                out[0] = 133;
                options.emit(&mut out[8..]);
            }
            Icmpv6Repr::RouterAdvert {
                hop_limit,
                managed,
                other,
                router_lifetime,
                reachable_time,
                retrans_time,
                options,
            } => {
                out[0] = 134;
                out[4] = hop_limit;
                out[5] = u8::from(managed) << 7 | u8::from(other) << 6;
                out[6..8].copy_from_slice(&router_lifetime.to_be_bytes());
                out[8..12].copy_from_slice(&reachable_time.to_be_bytes());
                out[12..16].copy_from_slice(&retrans_time.to_be_bytes());
                options.emit(&mut out[16..]);
            }
            Icmpv6Repr::NeighborSolicit { target, options } => {
                out[0] = 135;
                out[8..24].copy_from_slice(&target.0);
                options.emit(&mut out[24..]);
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                options,
            } => {
                out[0] = 136;
                out[4] = u8::from(flags.router) << 7
                    | u8::from(flags.solicited) << 6
                    | u8::from(flags.override_) << 5;
                out[8..24].copy_from_slice(&target.0);
                options.emit(&mut out[24..]);
            }
            Icmpv6Repr::Redirect {
                target,
                dest,
                options,
            } => {
                out[0] = 137;
                out[8..24].copy_from_slice(&target.0);
                out[24..40].copy_from_slice(&dest.0);
                options.emit(&mut out[40..]);
            }
        }
        if caps.icmp.tx() {
            let c = compute(src, dst, out);
            out[2..4].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// Whether the checksum of `msg` (field included) verifies.
fn checksum_ok(src: Ipv6Address, dst: Ipv6Address, msg: &[u8]) -> bool {
    checksum::combine(&[
        pseudo_header_v6(src, dst, PROTOCOL, msg.len() as u32),
        checksum::sum(msg),
    ]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Address {
        s.parse().unwrap()
    }

    fn round_trip(r: Icmpv6Repr<'_>, hop: u8) {
        let (src, dst) = (a("fe80::1"), a("ff02::1:ff00:2"));
        let mut b = std::vec![0u8; r.buffer_len()];
        r.emit(src, dst, &mut b, &ChecksumCaps::software());
        assert!(checksum_ok(src, dst, &b), "{r:?}");
        assert_eq!(
            Icmpv6Repr::parse(src, dst, hop, &b, &ChecksumCaps::software()).unwrap(),
            r
        );
        // One flipped bit: the checksum says so.
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(
            Icmpv6Repr::parse(src, dst, hop, &b, &ChecksumCaps::software()).unwrap_err(),
            Error::Checksum
        );
    }

    #[test]
    fn every_message_round_trips() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let opts = NdpOptions {
            source_lla: Some(mac),
            target_lla: None,
            prefix: Some(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: a("2001:2::"),
            }),
            mtu: Some(1500),
        };
        let data = b"invoking packet";
        for r in [
            Icmpv6Repr::EchoRequest {
                ident: 7,
                seq_no: 9,
                data,
            },
            Icmpv6Repr::EchoReply {
                ident: 7,
                seq_no: 9,
                data,
            },
            Icmpv6Repr::DstUnreachable { code: 4, data },
            Icmpv6Repr::PacketTooBig { mtu: 1280, data },
            Icmpv6Repr::TimeExceeded { code: 1, data },
            Icmpv6Repr::ParamProblem {
                code: 2,
                pointer: 42,
                data,
            },
            Icmpv6Repr::RouterSolicit {
                options: NdpOptions {
                    source_lla: Some(mac),
                    ..Default::default()
                },
            },
            Icmpv6Repr::RouterAdvert {
                hop_limit: 64,
                managed: false,
                other: true,
                router_lifetime: 1800,
                reachable_time: 30000,
                retrans_time: 1000,
                options: opts,
            },
            Icmpv6Repr::NeighborSolicit {
                target: a("2001:2::2"),
                options: NdpOptions {
                    source_lla: Some(mac),
                    ..Default::default()
                },
            },
            Icmpv6Repr::NeighborAdvert {
                flags: NaFlags {
                    router: false,
                    solicited: true,
                    override_: true,
                },
                target: a("2001:2::2"),
                options: NdpOptions {
                    target_lla: Some(mac),
                    ..Default::default()
                },
            },
            Icmpv6Repr::Redirect {
                target: a("fe80::9"),
                dest: a("2001:2::99"),
                options: NdpOptions::default(),
            },
        ] {
            round_trip(r, 255);
        }
    }

    #[test]
    fn nd_rules() {
        let (src, dst) = (a("fe80::1"), a("fe80::2"));
        let ns = Icmpv6Repr::NeighborSolicit {
            target: a("fe80::2"),
            options: NdpOptions::default(),
        };
        let mut b = std::vec![0u8; ns.buffer_len()];
        ns.emit(src, dst, &mut b, &ChecksumCaps::software());
        // Not hop limit 255: from off-link.
        assert_eq!(
            Icmpv6Repr::parse(src, dst, 64, &b, &ChecksumCaps::software()).unwrap_err(),
            Error::Malformed
        );
        // An option of length 0.
        let mut z = b.clone();
        z.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        z[2] = 0;
        z[3] = 0;
        let c = compute(src, dst, &z);
        z[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Icmpv6Repr::parse(src, dst, 255, &z, &ChecksumCaps::software()).unwrap_err(),
            Error::Malformed
        );
        // An unknown option is skipped.
        let mut u = b.clone();
        u.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0]);
        u[2] = 0;
        u[3] = 0;
        let c = compute(src, dst, &u);
        u[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Icmpv6Repr::parse(src, dst, 255, &u, &ChecksumCaps::software()).unwrap(),
            ns
        );
    }

    #[test]
    fn pseudo_header_matches_rfc_layout() {
        // The pseudo-header's sum is the sum of its 40 bytes laid out as RFC 8200 8.1 says.
        let (s, d) = (a("2001:2::1"), a("2001:2::2"));
        let mut ph = std::vec::Vec::new();
        ph.extend_from_slice(&s.0);
        ph.extend_from_slice(&d.0);
        ph.extend_from_slice(&70000u32.to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(pseudo_header_v6(s, d, 6, 70000), checksum::sum(&ph));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), hop in any::<u8>()) {
            let _ = Icmpv6Repr::parse(a("fe80::1"), a("fe80::2"), hop, &data, &ChecksumCaps::default());
            let _ = Icmpv6Repr::parse(a("fe80::1"), a("fe80::2"), hop, &data, &ChecksumCaps::software());
        }

        #[test]
        fn echo_round_trips(ident in any::<u16>(), seq in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            round_trip(Icmpv6Repr::EchoRequest { ident, seq_no: seq, data: &data }, 64);
        }
    }
}
