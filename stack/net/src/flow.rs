//! The per-core TCP flow table: 4-tuples to connections. IPv4 flows (the common case)
//! packed into 8 bytes in a table of one-line buckets (`Buckets`), whose line a burst's
//! lookups can fetch ahead (`prefetch`); IPv6 flows in a `hashbrown::HashTable`.
//!
//! Its hash is either hashbrown's default (foldhash) of the tuple, or, when the port hashes
//! received frames with RSS, the NIC's own Toeplitz hash from the mbuf (`PacketBuf::rss_hash`),
//! so that a received segment is looked up without hashing its tuple again. Entries made
//! without a frame (connect, accept) and frames that carry no hash use the same Toeplitz in
//! software, with the key read back from the port.
//!
//! The symmetric key (0x6d5a repeated) makes the Toeplitz hash a function of the XOR of the
//! tuple's 16-bit words only: 65,536 values. The ports are therefore folded in with one
//! 64x64->128-bit multiply, which spreads the NIC's bits over the whole 64-bit hash (`Buckets`
//! takes the bucket from the top bits).

use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use sluice_wire::{IpAddress, Ipv4Address};

use crate::buckets::{Buckets, EMPTY};
use crate::endpoint::Endpoint;
use crate::toeplitz::Toeplitz;

/// A TCP connection's identity on an interface: its local address (by index: 0 the IPv4
/// address, 1 the IPv6 link-local one, 2 and up the configured IPv6 ones; see
/// `Interface::local_index`), local port and remote endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local_port: u16,
    pub local: u8,
    pub remote: Endpoint,
}

/// How the table hashes.
#[derive(Clone)]
enum Hasher {
    /// foldhash of the tuple.
    Software(DefaultHashBuilder),
    /// The NIC's RSS hash of received frames, or the same in software, folded with a
    /// secret seed (the Toeplitz key is known: without it a peer could pick tuples that
    /// crowd one bucket group).
    Rss {
        toeplitz: Toeplitz,
        local: Ipv4Address,
        seed: u64,
        /// IPv6 flows: foldhash of the tuple (the NIC's IPv6 hash would need the local
        /// address, which the key does not hold).
        v6: DefaultHashBuilder,
    },
}

/// Flow table counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Lookups that used the NIC's hash.
    pub nic_hash_used: u64,
    /// Lookups whose NIC hash missed where the software hash found the flow (the NIC
    /// hashed other fields than expected; each costs a second lookup).
    pub nic_hash_mismatch: u64,
}

/// 4-tuple to connection key. IPv4 flows are kept packed in 8 bytes (the interface has one
/// IPv4 address: remote address, remote port, local port), so that the table of the common
/// case stays as compact as an IPv4-only one; IPv6 flows (and an IPv4 one that would pack
/// to 0, which no valid segment has) in a table of their own.
#[derive(Clone)]
pub struct FlowTable<V> {
    v4: Buckets<V>,
    v6: HashTable<(FlowKey, V)>,
    hasher: Hasher,
    stats: FlowStats,
}

/// An IPv4 flow packed: remote address, remote port, local port (None for IPv6, and for
/// the one tuple that packs to `Buckets`' empty key).
#[inline]
fn pack(flow: &FlowKey) -> Option<u64> {
    match flow.remote.addr {
        IpAddress::V4(a) => Some(
            (u64::from(a.to_u32()) << 32) | (u64::from(flow.remote.port) << 16) | u64::from(flow.local_port),
        )
        .filter(|&p| p != EMPTY),
        IpAddress::V6(_) => None,
    }
}

impl<V> core::fmt::Debug for FlowTable<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mode = match self.hasher {
            Hasher::Software(_) => "software",
            Hasher::Rss { .. } => "rss",
        };
        write!(
            f,
            "FlowTable({} flows, {mode} hash)",
            self.v4.len() + self.v6.len()
        )
    }
}

/// The NIC's 32-bit hash and the ports, folded with `seed` into 64 well-spread bits.
#[inline]
fn spread(rss: u32, local_port: u16, remote_port: u16, seed: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let x = (u64::from(rss) << 32) | (u64::from(remote_port) << 16) | u64::from(local_port);
    let m = u128::from(x ^ seed) * u128::from(K | 1);
    (m as u64) ^ ((m >> 64) as u64)
}

impl<V: Copy + PartialEq + Default> FlowTable<V> {
    /// A table hashed in software.
    pub fn new() -> Self {
        FlowTable {
            v4: Buckets::new(),
            v6: HashTable::new(),
            hasher: Hasher::Software(DefaultHashBuilder::default()),
            stats: FlowStats::default(),
        }
    }

    /// A table hashed with the NIC's RSS hash (`key`: the port's Toeplitz key; `local`: our
    /// address, the destination of the frames the NIC hashes; `seed`: a secret, from the
    /// interface's key).
    pub fn with_rss(key: &[u8], local: Ipv4Address, seed: u64) -> Self {
        FlowTable {
            v4: Buckets::new(),
            v6: HashTable::new(),
            hasher: Hasher::Rss {
                toeplitz: Toeplitz::new(key),
                local,
                seed,
                v6: DefaultHashBuilder::default(),
            },
            stats: FlowStats::default(),
        }
    }

    /// Whether lookups use the NIC's hash.
    pub fn uses_rss(&self) -> bool {
        matches!(self.hasher, Hasher::Rss { .. })
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.len() == 0 && self.v6.is_empty()
    }

    /// The hash of `flow` computed here (the NIC's, redone in software in RSS mode).
    #[inline]
    fn hash(&self, flow: &FlowKey) -> u64 {
        match pack(flow) {
            Some(p) => self.hasher.hash_v4(p),
            None => self.hasher.hash_v6(flow),
        }
    }

    #[inline]
    fn find(&self, hash: u64, flow: &FlowKey) -> Option<V> {
        match pack(flow) {
            Some(p) => self.v4.get(hash, p),
            None => self.v6.find(hash, |(k, _)| k == flow).map(|&(_, v)| v),
        }
    }

    /// The connection of `flow`.
    pub fn get(&self, flow: &FlowKey) -> Option<V> {
        self.find(self.hash(flow), flow)
    }

    /// The connection of a received segment's `flow`, using the NIC's hash of the frame
    /// when it has one (RSS mode).
    #[inline]
    pub fn get_rx(&mut self, flow: &FlowKey, nic_hash: Option<u32>) -> Option<V> {
        let Some(h) = self.nic_hash_of(flow, nic_hash) else {
            return self.get(flow);
        };
        self.stats.nic_hash_used += 1;
        if let Some(v) = self.find(h, flow) {
            return Some(v);
        }
        let v = self.get(flow);
        if v.is_some() {
            self.stats.nic_hash_mismatch += 1;
        }
        v
    }

    /// The hash `get_rx` looks a received segment's `flow` up by first: the NIC's (RSS
    /// mode, IPv4, when the frame has one), else the table's own. For a look ahead at a
    /// burst (`TcpSockets::prefetch`), which computes it once for `prefetch` and `peek`.
    #[inline]
    pub fn rx_hash(&self, flow: &FlowKey, nic_hash: Option<u32>) -> u64 {
        self.nic_hash_of(flow, nic_hash)
            .unwrap_or_else(|| self.hash(flow))
    }

    /// Starts fetching the line a lookup of `flow` by `hash` reads first (IPv4 flows), so
    /// that a burst's lookups wait for their lines together, not one after the other.
    #[inline]
    pub fn prefetch(&self, flow: &FlowKey, hash: u64) {
        if pack(flow).is_some() {
            self.v4.prefetch(hash);
        }
    }

    /// Starts fetching the line a lookup, an insertion or a removal of `flow` by the
    /// table's own hash reads first (IPv4 flows), such as a connection's at its end.
    #[inline]
    pub fn prefetch_stored(&self, flow: &FlowKey) {
        self.prefetch(flow, self.hash(flow));
    }

    /// The connection of `flow` by `hash` (`rx_hash`), without counting and without
    /// retrying a NIC's hash that missed with the software one: a look ahead only hints,
    /// and `get_rx` finds such a flow when its segment is processed.
    #[inline]
    pub fn peek(&self, flow: &FlowKey, hash: u64) -> Option<V> {
        self.find(hash, flow)
    }

    /// The table's hash of a received segment's `flow` from the NIC's hash of its frame,
    /// when the table hashes as the NIC does (RSS mode, IPv4) and the NIC gave one.
    #[inline]
    fn nic_hash_of(&self, flow: &FlowKey, nic_hash: Option<u32>) -> Option<u64> {
        match (&self.hasher, nic_hash, flow.remote.addr.is_ipv6()) {
            (&Hasher::Rss { seed, .. }, Some(h), false) => {
                Some(spread(h, flow.local_port, flow.remote.port, seed))
            }
            _ => None,
        }
    }

    pub fn contains(&self, flow: &FlowKey) -> bool {
        self.get(flow).is_some()
    }

    /// Maps `flow` to `v`, replacing any previous value.
    pub fn insert(&mut self, flow: FlowKey, v: V) {
        use hashbrown::hash_table::Entry;
        let hash = self.hash(&flow);
        let hasher = &self.hasher;
        match pack(&flow) {
            Some(p) => self.v4.insert(hash, p, v, |k| hasher.hash_v4(k)),
            None => match self
                .v6
                .entry(hash, |(k, _)| *k == flow, |(k, _)| hasher.hash_v6(k))
            {
                Entry::Occupied(mut e) => e.get_mut().1 = v,
                Entry::Vacant(e) => {
                    e.insert((flow, v));
                }
            },
        }
    }

    /// Removes `flow` if it maps to `v`; returns whether it did.
    pub fn remove_if(&mut self, flow: &FlowKey, v: V) -> bool {
        let hash = self.hash(flow);
        match pack(flow) {
            Some(p) => self.v4.remove_if(hash, p, v),
            None => self
                .v6
                .find_entry(hash, |(k, x)| k == flow && *x == v)
                .map(|e| e.remove())
                .is_ok(),
        }
    }
}

impl<V: Copy + PartialEq + Default> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable::new()
    }
}

impl Hasher {
    /// The hash of a packed IPv4 flow (`pack`).
    #[inline]
    fn hash_v4(&self, p: u64) -> u64 {
        match self {
            Hasher::Software(b) => b.hash_one(p),
            Hasher::Rss {
                toeplitz,
                local,
                seed,
                ..
            } => {
                let (remote, rport, lport) = (
                    Ipv4Address::from_u32((p >> 32) as u32),
                    (p >> 16) as u16,
                    p as u16,
                );
                spread(
                    toeplitz.hash_v4(remote, *local, rport, lport),
                    lport,
                    rport,
                    *seed,
                )
            }
        }
    }

    /// The hash of an IPv6 flow: foldhash of the tuple (the NIC's IPv6 hash would need the
    /// local address itself).
    #[inline]
    fn hash_v6(&self, flow: &FlowKey) -> u64 {
        match self {
            Hasher::Software(b) => b.hash_one(flow),
            Hasher::Rss { v6, .. } => v6.hash_one(flow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toeplitz::SYMMETRIC_KEY;

    fn flow(i: u32) -> FlowKey {
        FlowKey {
            local_port: 80,
            local: 0,
            remote: Endpoint::new(
                Ipv4Address::from_u32(0xc612_0000 | (i >> 14)),
                49152 + (i & 0x3fff) as u16,
            ),
        }
    }

    #[test]
    fn rss_mode_finds_flows_by_the_nics_hash_and_without_it() {
        let local = Ipv4Address::new(198, 18, 0, 2);
        let t = Toeplitz::new(&SYMMETRIC_KEY);
        let mut table = FlowTable::with_rss(&SYMMETRIC_KEY, local, 0x1234_5678_9abc_def0);
        for i in 0..10_000 {
            table.insert(flow(i), i);
        }
        for i in 0..10_000 {
            let f = flow(i);
            let nic = t.hash_v4(f.remote.v4_addr().unwrap(), local, f.remote.port, f.local_port);
            assert_eq!(table.get_rx(&f, Some(nic)), Some(i));
            assert_eq!(table.get_rx(&f, None), Some(i));
        }
        assert_eq!(table.stats().nic_hash_mismatch, 0);
        // The look ahead's hash is the one get_rx tries first, with or without the NIC's.
        for i in (0..10_000).step_by(97) {
            let f = flow(i);
            let nic = t.hash_v4(f.remote.v4_addr().unwrap(), local, f.remote.port, f.local_port);
            assert_eq!(table.rx_hash(&f, Some(nic)), table.rx_hash(&f, None));
            assert_eq!(table.peek(&f, table.rx_hash(&f, Some(nic))), Some(i));
        }
        // A NIC hash of other fields (say, addresses only) still finds the flow, counted.
        let f = flow(7);
        let wrong = t.hash_v4_addrs(f.remote.v4_addr().unwrap(), local);
        // (The look ahead only hints: it does not retry, get_rx does.)
        assert_eq!(table.peek(&f, table.rx_hash(&f, Some(wrong))), None);
        assert_eq!(table.get_rx(&f, Some(wrong)), Some(7));
        assert_eq!(table.stats().nic_hash_mismatch, 1);
        assert!(table.remove_if(&f, 7));
        assert!(!table.remove_if(&f, 7));
        assert_eq!(table.get_rx(&f, Some(wrong)), None);
        assert_eq!(table.len(), 9_999);
    }

    #[test]
    fn symmetric_key_hashes_are_spread_by_the_ports() {
        // 2^16 distinct Toeplitz values at most; the folded hash keeps flows apart.
        let local = Ipv4Address::new(198, 18, 0, 2);
        let t = Toeplitz::new(&SYMMETRIC_KEY);
        let mut raw = std::collections::HashSet::new();
        let mut spread_top = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            let f = flow(i.wrapping_mul(2_654_435_761));
            let h = t.hash_v4(f.remote.v4_addr().unwrap(), local, f.remote.port, f.local_port);
            raw.insert(h);
            spread_top.insert(spread(h, f.local_port, f.remote.port, 42) >> 40);
        }
        assert!(raw.len() <= 65_536, "{}", raw.len());
        assert!(spread_top.len() > 190_000, "{}", spread_top.len());
    }

    #[test]
    fn software_mode_replaces_and_removes() {
        let mut table = FlowTable::new();
        table.insert(flow(1), 1u32);
        table.insert(flow(1), 2);
        assert_eq!(table.get(&flow(1)), Some(2));
        let h = table.rx_hash(&flow(1), Some(12345)); // no RSS: the NIC's hash is not used
        assert_eq!(
            (h, table.peek(&flow(1), h)),
            (table.rx_hash(&flow(1), None), Some(2))
        );
        assert_eq!(table.get_rx(&flow(1), Some(12345)), Some(2));
        assert!(!table.remove_if(&flow(1), 1));
        assert!(table.remove_if(&flow(1), 2));
        assert!(table.is_empty());
    }
}
