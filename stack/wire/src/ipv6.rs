//! IPv6 (RFC 8200): addresses, prefixes, the fixed header and the extension headers.
//!
//! `Ipv6Packet` is the 40-byte header over a buffer; `Ipv6Repr` its fields (traffic class
//! and flow label are emitted as 0). `walk_extensions` follows the chain of extension
//! headers to the upper-layer protocol, bounded (`MAX_EXTENSIONS` headers, never past the
//! packet), and applies RFC 8200's rules: hop-by-hop options only first, the action bits of
//! an unknown option (section 4.2), a routing header of an unknown type with segments
//! left (section 4.4), and the fragment header's fields (section 4.5), which the caller
//! reassembles.

use core::fmt;

use crate::error::{Error, Result};
use crate::eth::EthernetAddress;
use crate::ipv4::IpProtocol;

/// An IPv6 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ipv6Address(pub [u8; 16]);

impl Ipv6Address {
    pub const UNSPECIFIED: Ipv6Address = Ipv6Address([0; 16]);
    pub const LOOPBACK: Ipv6Address = Ipv6Address([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    /// ff02::1, every node on the link.
    pub const ALL_NODES: Ipv6Address = Ipv6Address([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    /// ff02::2, every router on the link.
    pub const ALL_ROUTERS: Ipv6Address = Ipv6Address([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

    /// From eight 16-bit groups.
    pub const fn new(g: [u16; 8]) -> Ipv6Address {
        let mut b = [0u8; 16];
        let mut i = 0;
        while i < 8 {
            b[2 * i] = (g[i] >> 8) as u8;
            b[2 * i + 1] = g[i] as u8;
            i += 1;
        }
        Ipv6Address(b)
    }

    pub fn is_unspecified(&self) -> bool {
        self.0 == [0; 16]
    }
    pub fn is_loopback(&self) -> bool {
        *self == Self::LOOPBACK
    }
    pub fn is_multicast(&self) -> bool {
        self.0[0] == 0xff
    }
    /// fe80::/10.
    pub fn is_link_local(&self) -> bool {
        self.0[0] == 0xfe && self.0[1] & 0xc0 == 0x80
    }
    /// Not unspecified, loopback or multicast.
    pub fn is_unicast(&self) -> bool {
        !(self.is_unspecified() || self.is_loopback() || self.is_multicast())
    }
    /// An IPv4-mapped address (::ffff:a.b.c.d), as a dual-stack socket sees IPv4 peers.
    pub fn to_ipv4_mapped(&self) -> Option<[u8; 4]> {
        (self.0[..10] == [0; 10] && self.0[10..12] == [0xff, 0xff])
            .then(|| [self.0[12], self.0[13], self.0[14], self.0[15]])
    }
    /// ::ffff:a.b.c.d.
    pub fn from_ipv4_mapped(v4: [u8; 4]) -> Ipv6Address {
        let mut b = [0u8; 16];
        b[10] = 0xff;
        b[11] = 0xff;
        b[12..].copy_from_slice(&v4);
        Ipv6Address(b)
    }
    /// The link-local address of an interface with Ethernet address `mac` (fe80:: with the
    /// modified EUI-64 interface identifier, RFC 4291 appendix A).
    pub fn link_local_from_mac(mac: EthernetAddress) -> Ipv6Address {
        let m = mac.0;
        Ipv6Address([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
    /// The solicited-node multicast address of this address (ff02::1:ffXX:XXXX, RFC 4291
    /// section 2.7.1), where neighbour solicitations for it are sent.
    pub fn solicited_node(&self) -> Ipv6Address {
        let a = self.0;
        Ipv6Address([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, a[13], a[14], a[15]])
    }
    /// The Ethernet address a multicast IPv6 address maps to (33:33 + its last 32 bits,
    /// RFC 2464 section 7).
    pub fn multicast_mac(&self) -> EthernetAddress {
        let a = self.0;
        EthernetAddress([0x33, 0x33, a[12], a[13], a[14], a[15]])
    }
}

impl From<core::net::Ipv6Addr> for Ipv6Address {
    fn from(a: core::net::Ipv6Addr) -> Self {
        Ipv6Address(a.octets())
    }
}

impl From<Ipv6Address> for core::net::Ipv6Addr {
    fn from(a: Ipv6Address) -> Self {
        core::net::Ipv6Addr::from(a.0)
    }
}

impl fmt::Display for Ipv6Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // RFC 5952's text form, as the standard library writes it.
        fmt::Display::fmt(&core::net::Ipv6Addr::from(self.0), f)
    }
}

impl fmt::Debug for Ipv6Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for Ipv6Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<core::net::Ipv6Addr>()
            .map(Ipv6Address::from)
            .map_err(|_| Error::Malformed)
    }
}

/// An address with its on-link prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    address: Ipv6Address,
    prefix_len: u8,
}

impl Ipv6Cidr {
    /// `prefix_len` is at most 128.
    pub fn new(address: Ipv6Address, prefix_len: u8) -> Ipv6Cidr {
        Ipv6Cidr {
            address,
            prefix_len: prefix_len.min(128),
        }
    }
    pub fn address(&self) -> Ipv6Address {
        self.address
    }
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// Whether `addr` is on this prefix.
    pub fn contains(&self, addr: Ipv6Address) -> bool {
        let a = u128::from_be_bytes(self.address.0);
        let b = u128::from_be_bytes(addr.0);
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix_len))
        };
        (a ^ b) & mask == 0
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// The fixed header's length.
pub const HEADER_LEN: usize = 40;
/// The smallest MTU every IPv6 link has (RFC 8200 section 5).
pub const MIN_MTU: usize = 1280;

/// An IPv6 header over a buffer.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Checks the fixed header and the payload length against the buffer.
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>> {
        let p = Ipv6Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        (self.b()[0] << 4) | (self.b()[1] >> 4)
    }
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.b()[1] & 0x0f, self.b()[2], self.b()[3]])
    }
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.b()[6])
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    pub fn src_addr(&self) -> Ipv6Address {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[8..24]);
        Ipv6Address(a)
    }
    pub fn dst_addr(&self) -> Ipv6Address {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[24..40]);
        Ipv6Address(a)
    }
    /// The bytes after the fixed header, up to the payload length (extension headers
    /// included).
    pub fn payload(&self) -> &[u8] {
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(self.b().len());
        &self.b()[HEADER_LEN.min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Version 6, the traffic class and the flow label.
    pub fn set_version_class_flow(&mut self, class: u8, flow: u32) {
        let b = self.bm();
        b[0] = 0x60 | (class >> 4);
        b[1] = (class << 4) | ((flow >> 16) as u8 & 0x0f);
        b[2] = (flow >> 8) as u8;
        b[3] = flow as u8;
    }
    pub fn set_payload_len(&mut self, v: u16) {
        self.bm()[4..6].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.bm()[6] = u8::from(v);
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.bm()[7] = v;
    }
    pub fn set_src_addr(&mut self, a: Ipv6Address) {
        self.bm()[8..24].copy_from_slice(&a.0);
    }
    pub fn set_dst_addr(&mut self, a: Ipv6Address) {
        self.bm()[24..40].copy_from_slice(&a.0);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bm()[HEADER_LEN..]
    }
}

/// The fields of an IPv6 header Sluice reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Address,
    pub dst_addr: Ipv6Address,
    /// The first header after the fixed one (an extension header or the upper layer).
    pub next_header: IpProtocol,
    /// Bytes after the fixed header.
    pub payload_len: usize,
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Checks lengths and the version (a multicast source is `Malformed`, RFC 4291 2.7).
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        p.check_len()?;
        if p.version() != 6 || p.src_addr().is_multicast() {
            return Err(Error::Malformed);
        }
        Ok(Ipv6Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        p.set_version_class_flow(0, 0);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
    }
}

/// Extension headers followed at most (a longer chain is `Malformed`).
pub const MAX_EXTENSIONS: usize = 8;

/// Extension header numbers (RFC 8200 section 4).
pub mod ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION: u8 = 60;
}

/// A fragment header's fields (RFC 8200 section 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Offset of the fragment's data in the original payload, bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
    /// Where the fragmentable part starts in the payload (after the fragment header).
    pub data_start: usize,
}

/// What an extension header asks of the receiver when it cannot be processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtError {
    /// Malformed: discard silently (counted).
    Malformed,
    /// Discard silently (an unknown option's action bits 01).
    Discard,
    /// Discard and send ICMPv6 Parameter Problem with this code and pointer (offset in the
    /// packet, from the start of the IPv6 header). `multicast_ok`: also when the
    /// destination was multicast (action 10; 11 asks only for unicast destinations).
    ParamProblem {
        code: u8,
        pointer: u32,
        multicast_ok: bool,
    },
}

/// Where the extension headers lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The upper-layer protocol (or `Unknown(59)` for "no next header").
    pub protocol: IpProtocol,
    /// Where its header starts in the payload.
    pub offset: usize,
    /// The fragment header, if there was one: the rest is a fragment to reassemble.
    pub fragment: Option<FragmentHeader>,
    /// Where the next header field that names `protocol` is, from the start of the IPv6
    /// header (6 without extension headers): a Parameter Problem's pointer.
    pub named_at: u32,
}

/// Follows the extension headers of a packet whose fixed header says `next` and whose
/// payload (after the fixed header) is `payload`.
pub fn walk_extensions(next: IpProtocol, payload: &[u8]) -> core::result::Result<Chain, ExtError> {
    let mut nh = u8::from(next);
    let mut at = 0usize;
    let mut fragment = None;
    let mut named_at = 6u32;
    for n in 0..=MAX_EXTENSIONS {
        match nh {
            ext::HOP_BY_HOP | ext::DESTINATION | ext::ROUTING => {
                if nh == ext::HOP_BY_HOP && n != 0 {
                    // Hop-by-hop options only right after the fixed header (4.3).
                    return Err(ExtError::ParamProblem {
                        code: 1,
                        pointer: ptr(at),
                        // RFC 4443 2.4 (e): not for a multicast destination.
                        multicast_ok: false,
                    });
                }
                let h = payload.get(at..at + 2).ok_or(ExtError::Malformed)?;
                let len = (usize::from(h[1]) + 1) * 8;
                let body = payload.get(at..at + len).ok_or(ExtError::Malformed)?;
                if nh == ext::ROUTING {
                    // Segments left > 0 with a type we do not know: parameter problem
                    // pointing at the type (4.4); 0 segments left: ignored.
                    // No routing type is known (RH0 is deprecated, RFC 5095).
                    if body[3] > 0 {
                        return Err(ExtError::ParamProblem {
                            code: 0,
                            pointer: ptr(at + 2),
                            multicast_ok: false,
                        });
                    }
                } else {
                    options(&body[2..], at + 2)?;
                }
                nh = h[0];
                named_at = ptr(at);
                at += len;
            }
            ext::FRAGMENT => {
                let h = payload.get(at..at + 8).ok_or(ExtError::Malformed)?;
                let off_flags = u16::from_be_bytes([h[2], h[3]]);
                fragment = Some(FragmentHeader {
                    offset: off_flags & 0xfff8,
                    more: off_flags & 1 != 0,
                    ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    data_start: at + 8,
                });
                nh = h[0];
                named_at = ptr(at);
                at += 8;
                if fragment.is_some_and(|f| f.offset != 0 || f.more) {
                    // The rest belongs to the reassembled datagram.
                    return Ok(Chain {
                        protocol: IpProtocol::from(nh),
                        offset: at,
                        fragment,
                        named_at,
                    });
                }
            }
            _ => {
                return Ok(Chain {
                    protocol: IpProtocol::from(nh),
                    offset: at,
                    fragment,
                    named_at,
                })
            }
        }
    }
    Err(ExtError::Malformed)
}

fn ptr(at: usize) -> u32 {
    (HEADER_LEN + at) as u32
}

/// The TLV options of a hop-by-hop or destination options header (4.2), starting at
/// `base` in the payload: Pad1 and PadN are skipped, an unknown option acts by the two
/// high bits of its type.
fn options(mut data: &[u8], mut base: usize) -> core::result::Result<(), ExtError> {
    while let Some(&ty) = data.first() {
        if ty == 0 {
            data = &data[1..];
            base += 1;
            continue;
        }
        let len = usize::from(*data.get(1).ok_or(ExtError::Malformed)?);
        if data.len() < 2 + len {
            return Err(ExtError::Malformed);
        }
        if ty != 1 {
            match ty >> 6 {
                0 => {}
                1 => return Err(ExtError::Discard),
                action => {
                    return Err(ExtError::ParamProblem {
                        code: 2,
                        pointer: ptr(base),
                        multicast_ok: action == 2,
                    })
                }
            }
        }
        data = &data[2 + len..];
        base += 2 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses() {
        let a: Ipv6Address = "2001:2::1".parse().unwrap();
        assert_eq!(a, Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]));
        assert_eq!(std::format!("{a}"), "2001:2::1");
        assert!(a.is_unicast() && !a.is_link_local() && !a.is_multicast());
        let mac = EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        let ll = Ipv6Address::link_local_from_mac(mac);
        assert_eq!(std::format!("{ll}"), "fe80::5eff:fe10:2030");
        assert!(ll.is_link_local());
        assert_eq!(std::format!("{}", ll.solicited_node()), "ff02::1:ff10:2030");
        assert_eq!(
            ll.solicited_node().multicast_mac(),
            EthernetAddress([0x33, 0x33, 0xff, 0x10, 0x20, 0x30])
        );
        assert_eq!(
            Ipv6Address::from_ipv4_mapped([198, 18, 0, 1]).to_ipv4_mapped(),
            Some([198, 18, 0, 1])
        );
        assert_eq!(a.to_ipv4_mapped(), None);
        let net = Ipv6Cidr::new("2001:2::1".parse().unwrap(), 48);
        assert!(net.contains("2001:2:0:ffff::9".parse().unwrap()));
        assert!(!net.contains("2001:3::1".parse().unwrap()));
        assert!(Ipv6Cidr::new(a, 0).contains(Ipv6Address::LOOPBACK));
    }

    fn header(next: u8, payload: &[u8]) -> std::vec::Vec<u8> {
        let r = Ipv6Repr {
            src_addr: "2001:2::1".parse().unwrap(),
            dst_addr: "2001:2::2".parse().unwrap(),
            next_header: IpProtocol::from(next),
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let mut b = std::vec![0u8; r.buffer_len()];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn header_round_trip_and_errors() {
        let b = header(6, b"0123456789abcdefghij");
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            (r.next_header, r.payload_len, r.hop_limit),
            (IpProtocol::Tcp, 20, 64)
        );
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 0));
        assert_eq!(p.payload(), b"0123456789abcdefghij");
        assert_eq!(Ipv6Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
        assert_eq!(Ipv6Packet::new_checked(&b[..50]).unwrap_err(), Error::Truncated);
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&v4[..])).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn extension_headers() {
        // Hop-by-hop (PadN), destination options (Pad1 x6), fragment, then TCP.
        let hbh = [ext::DESTINATION, 0, 1, 4, 0, 0, 0, 0];
        let dst = [ext::FRAGMENT, 0, 0, 0, 0, 0, 0, 0];
        let frag = [6u8, 0, 0, 0, 0, 0, 0, 7];
        let mut p = std::vec::Vec::new();
        p.extend_from_slice(&hbh);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&frag);
        p.extend_from_slice(b"tcp");
        let c = walk_extensions(IpProtocol::from(ext::HOP_BY_HOP), &p).unwrap();
        assert_eq!(c.protocol, IpProtocol::Tcp);
        assert_eq!(c.offset, 24);
        assert_eq!(
            c.fragment,
            Some(FragmentHeader {
                offset: 0,
                more: false,
                ident: 7,
                data_start: 24
            })
        );
        // A real fragment (offset 8, more): the walk stops at the fragment header.
        let f = [17u8, 0, 0, 9, 0, 0, 1, 0];
        let c = walk_extensions(IpProtocol::from(ext::FRAGMENT), &f).unwrap();
        assert_eq!(
            c.fragment,
            Some(FragmentHeader {
                offset: 8,
                more: true,
                ident: 256,
                data_start: 8
            })
        );
        // Hop-by-hop not first.
        let bad = [ext::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
        assert!(matches!(
            walk_extensions(IpProtocol::from(ext::DESTINATION), &bad),
            Err(ExtError::ParamProblem {
                code: 1,
                pointer: 48,
                ..
            })
        ));
        // Unknown options by their action bits: skip, discard, ICMP (unicast only).
        for (ty, want) in [
            (0x1e, Ok(())),
            (0x5e, Err(ExtError::Discard)),
            (
                0x9e,
                Err(ExtError::ParamProblem {
                    code: 2,
                    pointer: 42,
                    multicast_ok: true,
                }),
            ),
            (
                0xde,
                Err(ExtError::ParamProblem {
                    code: 2,
                    pointer: 42,
                    multicast_ok: false,
                }),
            ),
        ] {
            let h = [6u8, 0, ty, 4, 0, 0, 0, 0];
            assert_eq!(
                walk_extensions(IpProtocol::from(ext::DESTINATION), &h).map(|_| ()),
                want,
                "{ty:#x}"
            );
        }
        // A routing header with segments left.
        let r = [6u8, 0, 253, 1, 0, 0, 0, 0];
        assert!(matches!(
            walk_extensions(IpProtocol::from(ext::ROUTING), &r),
            Err(ExtError::ParamProblem {
                code: 0,
                pointer: 42,
                ..
            })
        ));
        // Truncated, and too long a chain.
        assert_eq!(
            walk_extensions(IpProtocol::from(ext::DESTINATION), &[6, 1, 0, 0]),
            Err(ExtError::Malformed)
        );
        let mut long = std::vec::Vec::new();
        for _ in 0..MAX_EXTENSIONS + 1 {
            long.extend_from_slice(&[ext::DESTINATION, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            walk_extensions(IpProtocol::from(ext::DESTINATION), &long),
            Err(ExtError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), next in any::<u8>()) {
            if let Ok(p) = Ipv6Packet::new_checked(&data[..]) {
                let _ = Ipv6Repr::parse(&p);
                let _ = p.payload();
            }
            if let Ok(c) = walk_extensions(IpProtocol::from(next), &data) {
                prop_assert!(c.offset <= data.len());
            }
        }

        #[test]
        fn repr_round_trips(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), next in any::<u8>(),
                            hop in any::<u8>(), len in 0usize..300) {
            let mut src = src;
            src[0] &= 0x7f; // not multicast
            let r = Ipv6Repr {
                src_addr: Ipv6Address(src),
                dst_addr: Ipv6Address(dst),
                next_header: IpProtocol::from(next),
                payload_len: len,
                hop_limit: hop,
            };
            let mut b = std::vec![0u8; r.buffer_len()];
            r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
