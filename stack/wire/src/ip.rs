//! An IP address of either family, for what is the same over IPv4 and IPv6: a TCP or UDP
//! endpoint, the pseudo-header of a transport checksum.

use crate::checksum;
use crate::ipv4::{IpProtocol, Ipv4Address};
use crate::ipv6::Ipv6Address;

/// An IPv4 or an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpAddress {
    V4(Ipv4Address),
    V6(Ipv6Address),
}

impl IpAddress {
    /// The IPv4 address, if it is one.
    pub const fn as_v4(&self) -> Option<Ipv4Address> {
        match self {
            IpAddress::V4(a) => Some(*a),
            IpAddress::V6(_) => None,
        }
    }

    /// The IPv6 address, if it is one.
    pub const fn as_v6(&self) -> Option<Ipv6Address> {
        match self {
            IpAddress::V4(_) => None,
            IpAddress::V6(a) => Some(*a),
        }
    }

    pub const fn is_ipv6(&self) -> bool {
        matches!(self, IpAddress::V6(_))
    }

    /// The address's bytes: 4 or 16.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            IpAddress::V4(a) => &a.0,
            IpAddress::V6(a) => &a.0,
        }
    }

    /// `0.0.0.0` or `::`.
    pub fn is_unspecified(&self) -> bool {
        match self {
            IpAddress::V4(a) => a.is_unspecified(),
            IpAddress::V6(a) => a.is_unspecified(),
        }
    }

    /// A unicast address a host may have (not unspecified, multicast or broadcast).
    pub fn is_unicast(&self) -> bool {
        match self {
            IpAddress::V4(a) => a.is_unicast(),
            IpAddress::V6(a) => a.is_unicast(),
        }
    }
}

impl From<Ipv4Address> for IpAddress {
    fn from(a: Ipv4Address) -> IpAddress {
        IpAddress::V4(a)
    }
}

impl From<Ipv6Address> for IpAddress {
    fn from(a: Ipv6Address) -> IpAddress {
        IpAddress::V6(a)
    }
}

impl From<core::net::Ipv4Addr> for IpAddress {
    fn from(a: core::net::Ipv4Addr) -> IpAddress {
        IpAddress::V4(Ipv4Address(a.octets()))
    }
}

impl From<core::net::Ipv6Addr> for IpAddress {
    fn from(a: core::net::Ipv6Addr) -> IpAddress {
        IpAddress::V6(Ipv6Address(a.octets()))
    }
}

impl From<core::net::IpAddr> for IpAddress {
    fn from(a: core::net::IpAddr) -> IpAddress {
        match a {
            core::net::IpAddr::V4(a) => IpAddress::V4(Ipv4Address(a.octets())),
            core::net::IpAddr::V6(a) => IpAddress::V6(Ipv6Address(a.octets())),
        }
    }
}

impl From<IpAddress> for core::net::IpAddr {
    fn from(a: IpAddress) -> core::net::IpAddr {
        match a {
            IpAddress::V4(a) => core::net::IpAddr::from(a.0),
            IpAddress::V6(a) => core::net::IpAddr::from(a.0),
        }
    }
}

impl core::fmt::Display for IpAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IpAddress::V4(a) => write!(f, "{a}"),
            IpAddress::V6(a) => write!(f, "{a}"),
        }
    }
}

/// The sum of the IPv4 pseudo-header (RFC 9293 section 3.1, RFC 768): source, destination,
/// zero, protocol, and the length of the TCP or UDP header plus payload.
///
/// Not complemented. This is also the value a NIC doing L4 checksum offload wants to find
/// in the checksum field (DPDK's `rte_ipv4_phdr_cksum`).
pub fn pseudo_header_v4(src: Ipv4Address, dst: Ipv4Address, protocol: IpProtocol, length: u16) -> u16 {
    let s = src.0;
    let d = dst.0;
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(u8::from(protocol))
        + u64::from(length);
    checksum::fold_sum(acc)
}

/// The pseudo-header sum of a TCP or UDP message between `src` and `dst` of either family
/// (IPv4: RFC 9293 3.1; IPv6: RFC 8200 8.1), `length` its header plus payload. Not
/// complemented. Mixed families are summed as IPv6 with the IPv4 one mapped.
pub fn pseudo_header(src: IpAddress, dst: IpAddress, protocol: IpProtocol, length: u32) -> u16 {
    match (src, dst) {
        (IpAddress::V4(s), IpAddress::V4(d)) => pseudo_header_v4(s, d, protocol, length as u16),
        (s, d) => {
            let v6 = |a: IpAddress| match a {
                IpAddress::V4(a) => Ipv6Address::from_ipv4_mapped(a.0),
                IpAddress::V6(a) => a,
            };
            crate::icmpv6::pseudo_header_v6(v6(s), v6(d), u8::from(protocol), length)
        }
    }
}
