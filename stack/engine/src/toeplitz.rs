//! The choice of a local port whose reply lands on a given queue (as mTCP does for active
//! opens), with the Toeplitz hash of `sluice_net::toeplitz`.
//!
//! The key and the redirection table are the ones read back from the port: stacks that
//! assumed a key or a table broke on NICs that use another.

use sluice_wire::IpAddress;

pub use sluice_net::{Toeplitz, SYMMETRIC_KEY};

/// Which queue a flow lands on: the port's key and redirection table, read back from it.
#[derive(Clone, Debug)]
pub struct RssSteering {
    toeplitz: Toeplitz,
    reta: Vec<u16>,
}

impl RssSteering {
    /// `reta` maps `hash % reta.len()` to a queue; empty means "hash % queues" is unknown,
    /// so it must not be empty.
    pub fn new(key: &[u8], reta: Vec<u16>) -> RssSteering {
        assert!(!reta.is_empty(), "a redirection table has at least one entry");
        RssSteering {
            toeplitz: Toeplitz::new(key),
            reta,
        }
    }

    /// A table spreading the hash over `queues` queues round-robin, as drivers set by default.
    pub fn round_robin(key: &[u8], reta_size: usize, queues: u16) -> RssSteering {
        RssSteering::new(
            key,
            (0..reta_size.max(1))
                .map(|i| (i % queues.max(1) as usize) as u16)
                .collect(),
        )
    }

    /// The Toeplitz hash with the port's key.
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// The queue a packet with this RSS hash is delivered to.
    pub fn queue_of_hash(&self, hash: u32) -> u16 {
        self.reta[hash as usize % self.reta.len()]
    }

    /// The queue of a packet from `src:sport` to `dst:dport`.
    pub fn queue_of(
        &self,
        src: impl Into<IpAddress>,
        dst: impl Into<IpAddress>,
        sport: u16,
        dport: u16,
    ) -> u16 {
        self.queue_of_hash(self.toeplitz.hash_ip(src.into(), dst.into(), sport, dport))
    }

    /// A local port in `range`, starting the search at `start`, such that the replies of
    /// `remote:rport` to `local:port` arrive on `queue`; `None` if no port in the range fits.
    /// `in_use` filters ports already taken.
    pub fn pick_local_port(
        &self,
        local: impl Into<IpAddress>,
        remote: impl Into<IpAddress>,
        rport: u16,
        queue: u16,
        range: std::ops::RangeInclusive<u16>,
        start: u16,
        mut in_use: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let (local, remote) = (local.into(), remote.into());
        let (lo, hi) = (*range.start() as u32, *range.end() as u32);
        if lo > hi {
            return None;
        }
        let span = hi - lo + 1;
        let first = (start as u32).clamp(lo, hi) - lo;
        (0..span)
            .map(|i| (lo + (first + i) % span) as u16)
            .find(|&port| self.queue_of(remote, local, rport, port) == queue && !in_use(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_wire::Ipv4Address;

    /// The key of Microsoft's RSS specification ("Verifying the RSS hash calculation").
    pub(crate) const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0,
        0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42,
        0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// (destination, source, IPv4-only hash, IPv4-with-TCP hash) from the specification.
    const VECTORS: [([u8; 4], u16, [u8; 4], u16, u32, u32); 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x82989176,
            0xafc7327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    #[test]
    fn rss_specification_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        for (dst, dport, src, sport, ip_hash, tcp_hash) in VECTORS {
            let (src, dst) = (Ipv4Address(src), Ipv4Address(dst));
            assert_eq!(t.hash_v4_addrs(src, dst), ip_hash, "{src} -> {dst}");
            assert_eq!(
                t.hash_v4(src, dst, sport, dport),
                tcp_hash,
                "{src}:{sport} -> {dst}:{dport}"
            );
        }
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let key: Vec<u8> = (0..40).map(|i| if i % 2 == 0 { 0x6d } else { 0x5a }).collect();
        let t = Toeplitz::new(&key);
        for (dst, dport, src, sport, _, _) in VECTORS {
            let (a, b) = (Ipv4Address(src), Ipv4Address(dst));
            assert_eq!(t.hash_v4(a, b, sport, dport), t.hash_v4(b, a, dport, sport));
        }
    }

    #[test]
    fn picked_port_lands_on_the_asked_queue() {
        let s = RssSteering::round_robin(&MS_KEY, 128, 4);
        let (local, remote) = (Ipv4Address([198, 18, 0, 2]), Ipv4Address([198, 18, 0, 1]));
        for q in 0..4 {
            let p = s
                .pick_local_port(local, remote, 80, q, 49152..=65535, 50000, |_| false)
                .unwrap();
            assert_eq!(s.queue_of(remote, local, 80, p), q);
            // A port already in use is skipped.
            let p2 = s
                .pick_local_port(local, remote, 80, q, 49152..=65535, 50000, |x| x == p)
                .unwrap();
            assert_ne!(p, p2);
            assert_eq!(s.queue_of(remote, local, 80, p2), q);
        }
        assert_eq!(
            s.pick_local_port(local, remote, 80, 9, 49152..=49200, 0, |_| false),
            None
        );
    }
}
