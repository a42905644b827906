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

/// The ephemeral range as `pick_port` uses it: port 0 left out, never empty.
fn port_range((lo, hi): (u16, u16)) -> (u16, u16) {
    (lo.max(1), hi.max(lo.max(1)))
}

/// The first port `pick_port` tries, given its cursor `next`: a connect to the same
/// peer after this one looks this port's flow up first.
pub(crate) fn first_candidate(next: u16, range: (u16, u16)) -> u16 {
    let (lo, hi) = port_range(range);
    if (lo..=hi).contains(&next) {
        next
    } else {
        lo
    }
}

/// Picks a free port in `[lo, hi]`, starting from `*next` and moving it on.
pub(crate) fn pick_port(next: &mut u16, range: (u16, u16), in_use: impl Fn(u16) -> bool) -> Option<u16> {
    let (lo, hi) = port_range(range);
    let span = u32::from(hi - lo) + 1;
    for _ in 0..span {
        let port = first_candidate(*next, range);
        *next = if port == hi { lo } else { port + 1 };
        if !in_use(port) {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The port a connect's look ahead fetches the flow of is the one `pick_port` tries
    /// first, wherever its cursor stands (in the range, past it, below it, at port 0).
    #[test]
    fn the_first_candidate_is_the_port_pick_port_tries_first() {
        for (next, range) in [
            (50000, (49152, 65535)),
            (65535, (49152, 65535)),
            (1000, (49152, 65535)),
            (0, (0, 10)),
            (7, (5, 5)),
        ] {
            let (tried, mut cursor) = (core::cell::Cell::new(None), next);
            pick_port(&mut cursor, range, |p| {
                tried.set(tried.get().or(Some(p)));
                true
            });
            assert_eq!(
                tried.get(),
                Some(first_candidate(next, range)),
                "{next} in {range:?}"
            );
        }
    }
}
