//! An address and a port: one end of a TCP connection or a UDP flow.

use sluice_wire::{IpAddress, Ipv4Address, Ipv6Address};

/// An IP address (IPv4 or IPv6) and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddress,
    pub port: u16,
}

impl Endpoint {
    pub fn new(addr: impl Into<IpAddress>, port: u16) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            port,
        }
    }

    /// An IPv4 endpoint.
    pub const fn v4(addr: Ipv4Address, port: u16) -> Endpoint {
        Endpoint {
            addr: IpAddress::V4(addr),
            port,
        }
    }

    /// An IPv6 endpoint.
    pub const fn v6(addr: Ipv6Address, port: u16) -> Endpoint {
        Endpoint {
            addr: IpAddress::V6(addr),
            port,
        }
    }

    /// The IPv4 address, if the endpoint is IPv4.
    pub const fn v4_addr(&self) -> Option<Ipv4Address> {
        self.addr.as_v4()
    }
}

impl From<core::net::SocketAddr> for Endpoint {
    fn from(a: core::net::SocketAddr) -> Endpoint {
        Endpoint::new(a.ip(), a.port())
    }
}

impl From<Endpoint> for core::net::SocketAddr {
    fn from(e: Endpoint) -> core::net::SocketAddr {
        core::net::SocketAddr::new(e.addr.into(), e.port)
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.addr {
            IpAddress::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddress::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Picks a free port in `[lo, hi]`, starting from `*next` and moving it on.
pub(crate) fn pick_port(next: &mut u16, (lo, hi): (u16, u16), in_use: impl Fn(u16) -> bool) -> Option<u16> {
    let (lo, hi) = (lo.max(1), hi.max(lo.max(1)));
    let span = u32::from(hi - lo) + 1;
    for _ in 0..span {
        let port = if (lo..=hi).contains(next) { *next } else { lo };
        *next = if port == hi { lo } else { port + 1 };
        if !in_use(port) {
            return Some(port);
        }
    }
    None
}
