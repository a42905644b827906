//! IPv4 and IPv6 reassembly (RFC 791 section 3.2, RFC 1122 3.3.2; RFC 8200 section 4.5),
//! bounded.
//!
//! Fragments are kept per datagram (source, destination, protocol, identification) until
//! the datagram is whole, then handed back as one IPv4 packet, or one IPv6 packet whose
//! fixed header is followed by the upper-layer header (the fragment header and the
//! extension headers before it, already processed, are gone). What an attacker can make
//! it hold is capped: at most `MAX_DATAGRAMS` datagrams and `MAX_BYTES` of buffers per
//! interface (per core), a datagram at most 65535 bytes, and each for at most `TIMEOUT`
//! (30 s, Linux's `ipfrag_time`) after its first fragment. A fragment that overlaps one
//! already held (other than an exact repeat) discards the whole datagram, as RFC 5722
//! requires for IPv6, so overlaps cannot be used to rewrite a TCP header that a check
//! has already seen. Every fragment dropped is counted by its reason.

use core::time::Duration;

use hashbrown::HashMap;
#[cfg(test)]
use sluice_wire::Ipv4Address;
use sluice_wire::{Instant, IpAddress, IpProtocol};

/// Datagrams being reassembled at once, per interface.
pub const MAX_DATAGRAMS: usize = 64;
/// Buffer bytes held for them, per interface.
pub const MAX_BYTES: usize = 1 << 20;
/// How long a datagram may take to arrive whole.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65535;

/// Which datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddress,
    pub dst: IpAddress,
    pub protocol: IpProtocol,
    /// IPv4's 16-bit identification, or IPv6's 32-bit one.
    pub ident: u32,
}

/// One fragment: where its payload goes and whether more follow.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// Offset of the payload in the datagram's payload, bytes.
    pub offset: usize,
    pub more: bool,
    pub payload: &'a [u8],
    /// The fragment's IPv4 header, or the IPv6 fixed header whose next header is the
    /// upper layer's (the first fragment's becomes the datagram's).
    pub header: &'a [u8],
}

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Kept; the datagram is not whole yet.
    Held,
    /// The datagram is whole: its IPv4 packet (header and payload).
    Complete(Vec<u8>),
    /// The fragment is malformed (a non-final fragment not a multiple of 8 bytes, or the
    /// datagram would pass 65535 bytes, or ends disagree).
    Invalid,
    /// It overlaps a fragment held: the datagram is discarded.
    Overlap,
    /// No room (too many datagrams or bytes held).
    Full,
}

#[derive(Debug)]
struct Datagram {
    payload: Vec<u8>,
    /// Received byte ranges of the payload, sorted and disjoint (adjacent ones merged).
    have: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment arrived.
    total: Option<usize>,
    /// The first fragment's header, once it arrived.
    header: Option<Vec<u8>>,
    /// Fragments held.
    count: usize,
    expires: Instant,
}

impl Datagram {
    fn bytes(&self) -> usize {
        self.payload.capacity() + self.header.as_ref().map_or(0, Vec::capacity)
    }
}

/// The reassembly table of one interface.
#[derive(Debug, Default)]
pub struct Reassembly {
    table: HashMap<FragKey, Datagram>,
    bytes: usize,
}

impl Reassembly {
    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Buffer bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets datagrams older than `TIMEOUT`; returns how many fragments they held (each
    /// counted as a drop by the caller).
    pub fn expire(&mut self, now: Instant) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        let bytes = &mut self.bytes;
        self.table.retain(|_, d| {
            if d.expires > now {
                return true;
            }
            dropped += d.count;
            *bytes -= d.bytes();
            false
        });
        dropped
    }

    fn remove(&mut self, key: &FragKey) {
        if let Some(d) = self.table.remove(key) {
            self.bytes -= d.bytes();
        }
    }

    /// Adds a fragment of datagram `key` at `now`.
    pub fn add(&mut self, now: Instant, key: FragKey, f: Fragment<'_>) -> Outcome {
        self.expire(now);
        let (start, end) = (f.offset, f.offset + f.payload.len());
        if end + f.header.len() > MAX_DATAGRAM
            || (f.more && (f.payload.is_empty() || f.payload.len() % 8 != 0))
        {
            return Outcome::Invalid;
        }
        if !self.table.contains_key(&key) {
            if self.table.len() >= MAX_DATAGRAMS {
                return Outcome::Full;
            }
            self.table.insert(
                key,
                Datagram {
                    payload: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    header: None,
                    count: 0,
                    expires: now + TIMEOUT,
                },
            );
        }
        let Some(d) = self.table.get_mut(&key) else {
            return Outcome::Full;
        };
        // The end of the datagram: the last fragment says where; nothing may pass it.
        let total = if f.more { d.total } else { Some(end) };
        if total.is_some_and(|t| end > t || d.have.last().is_some_and(|&(_, e)| e > t))
            || (!f.more && d.total.is_some_and(|t| t != end))
        {
            self.remove(&key);
            return Outcome::Invalid;
        }
        // An exact repeat is harmless (a retransmission); any other overlap discards it all.
        if d.have.contains(&(start, end)) && !f.payload.is_empty() {
            return Outcome::Held;
        }
        if d.have.iter().any(|&(s, e)| start < e && s < end) {
            self.remove(&key);
            return Outcome::Overlap;
        }
        let before = d.bytes();
        if d.payload.len() < end {
            let want = end.max(total.unwrap_or(0));
            if self.bytes - before + want.next_power_of_two().min(MAX_DATAGRAM) > MAX_BYTES {
                self.remove(&key);
                return Outcome::Full;
            }
            d.payload.resize(end, 0);
        }
        d.payload[start..end].copy_from_slice(f.payload);
        d.total = total;
        if start == 0 && d.header.is_none() {
            d.header = Some(f.header.to_vec());
        }
        d.count += 1;
        let at = d.have.partition_point(|&(s, _)| s < start);
        d.have.insert(at, (start, end));
        // Merge adjacent ranges.
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(d.have.len());
        for &(s, e) in &d.have {
            match merged.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => merged.push((s, e)),
            }
        }
        d.have = merged;
        self.bytes = self.bytes - before + d.bytes();
        if self.bytes > MAX_BYTES {
            self.remove(&key);
            return Outcome::Full;
        }
        let whole = d.total.is_some_and(|t| d.have == [(0, t)]) && d.header.is_some();
        if !whole {
            return Outcome::Held;
        }
        let d = self.table.remove(&key).expect("just looked at");
        self.bytes -= d.bytes();
        let header = d.header.expect("whole");
        let total = d.total.expect("whole");
        let mut packet = Vec::with_capacity(header.len() + total);
        packet.extend_from_slice(&header);
        packet.extend_from_slice(&d.payload[..total]);
        if header.first().is_some_and(|b| b >> 4 == 6) {
            // IPv6: the payload length; the header holds nothing else to change.
            let len = (packet.len() - header.len()) as u16;
            packet[4..6].copy_from_slice(&len.to_be_bytes());
            return Outcome::Complete(packet);
        }
        // The datagram's header: its length, no fragment fields, a fresh checksum.
        let len = packet.len() as u16;
        packet[2..4].copy_from_slice(&len.to_be_bytes());
        packet[6] = 0;
        packet[7] = 0;
        packet[10] = 0;
        packet[11] = 0;
        let sum = !sluice_wire::checksum::sum(&packet[..header.len()]);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        Outcome::Complete(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(ident: u16) -> FragKey {
        FragKey {
            src: Ipv4Address::new(198, 18, 0, 1).into(),
            dst: Ipv4Address::new(198, 18, 0, 2).into(),
            protocol: IpProtocol::Udp,
            ident: ident.into(),
        }
    }

    const HDR: [u8; 20] = [
        0x45, 0, 0, 0, 0, 1, 0x20, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];

    fn frag(data: &[u8], offset: usize, len: usize, more: bool) -> Fragment<'_> {
        Fragment {
            offset,
            more,
            payload: &data[offset..offset + len],
            header: &HDR,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn in_any_order_the_datagram_comes_back_whole() {
        let d = data(3000);
        let t = Instant::ZERO;
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut r = Reassembly::default();
            let parts = [(0, 1480, true), (1480, 1480, true), (2960, 40, false)];
            let mut out = None;
            for (n, &i) in order.iter().enumerate() {
                let (o, l, m) = parts[i];
                match r.add(t, key(7), frag(&d, o, l, m)) {
                    Outcome::Held => assert!(n < 2),
                    Outcome::Complete(p) => out = Some(p),
                    other => panic!("{other:?}"),
                }
            }
            let p = out.expect("whole");
            assert_eq!(&p[20..], &d[..]);
            assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, 3020);
            assert_eq!((p[6], p[7]), (0, 0), "no fragment fields");
            let ip = sluice_wire::Ipv4Packet::new_unchecked(&p[..]);
            assert!(ip.verify_checksum());
            assert_eq!((r.len(), r.bytes()), (0, 0), "nothing left behind");
        }
    }

    #[test]
    fn overlaps_discard_the_datagram_repeats_do_not() {
        let d = data(100);
        let t = Instant::ZERO;
        let mut r = Reassembly::default();
        assert_eq!(r.add(t, key(1), frag(&d, 0, 48, true)), Outcome::Held);
        assert_eq!(
            r.add(t, key(1), frag(&d, 0, 48, true)),
            Outcome::Held,
            "exact repeat"
        );
        assert_eq!(r.add(t, key(1), frag(&d, 40, 48, true)), Outcome::Overlap);
        assert_eq!((r.len(), r.bytes()), (0, 0));
        // Another datagram is not disturbed by one that overlaps.
        assert_eq!(r.add(t, key(2), frag(&d, 0, 48, true)), Outcome::Held);
        assert_eq!(r.add(t, key(3), frag(&d, 0, 48, true)), Outcome::Held);
        assert_eq!(r.add(t, key(3), frag(&d, 8, 8, true)), Outcome::Overlap);
        assert!(matches!(
            r.add(t, key(2), frag(&d, 48, 52, false)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn malformed_fragments_are_refused() {
        let d = data(200);
        let t = Instant::ZERO;
        let mut r = Reassembly::default();
        assert_eq!(
            r.add(t, key(1), frag(&d, 0, 12, true)),
            Outcome::Invalid,
            "not a multiple of 8"
        );
        let big = vec![0u8; 65535];
        let f = Fragment {
            offset: 65528,
            more: false,
            payload: &big[..100],
            header: &HDR,
        };
        assert_eq!(r.add(t, key(1), f), Outcome::Invalid, "past 65535 bytes");
        assert_eq!(r.add(t, key(2), frag(&d, 0, 64, true)), Outcome::Held);
        assert_eq!(
            r.add(t, key(2), frag(&d, 96, 16, false)),
            Outcome::Held,
            "the last, with a hole before it"
        );
        assert_eq!(
            r.add(t, key(2), frag(&d, 112, 16, true)),
            Outcome::Invalid,
            "past the end"
        );
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn datagrams_expire_after_the_timeout() {
        let d = data(100);
        let mut r = Reassembly::default();
        assert_eq!(r.add(Instant::ZERO, key(1), frag(&d, 0, 48, true)), Outcome::Held);
        assert_eq!(r.expire(Instant::ZERO + TIMEOUT - Duration::from_millis(1)), 0);
        assert_eq!(r.expire(Instant::ZERO + TIMEOUT), 1);
        assert_eq!((r.len(), r.bytes()), (0, 0));
    }

    #[test]
    fn the_table_is_capped() {
        let d = data(100);
        let mut r = Reassembly::default();
        for i in 0..MAX_DATAGRAMS as u16 {
            assert_eq!(r.add(Instant::ZERO, key(i), frag(&d, 0, 48, true)), Outcome::Held);
        }
        assert_eq!(
            r.add(Instant::ZERO, key(999), frag(&d, 0, 48, true)),
            Outcome::Full
        );
    }

    proptest! {
        /// Whatever fragments arrive, memory stays under the cap, no panic, and a datagram
        /// that completes holds exactly the bytes sent at their offsets.
        #[test]
        fn memory_stays_capped(frags in proptest::collection::vec(
            (0u16..8, 0usize..8200, 0usize..1600, any::<bool>()), 1..400)) {
            let src = vec![0x5au8; 70000];
            let mut r = Reassembly::default();
            for (n, (ident, off, len, more)) in frags.into_iter().enumerate() {
                let off = off * 8;
                let f = Fragment { offset: off.min(65000), more, payload: &src[..len], header: &HDR };
                let now = Instant::from_millis(n as u64 * 100);
                if let Outcome::Complete(p) = r.add(now, key(ident), f) {
                    prop_assert!(p[20..].iter().all(|&b| b == 0x5a));
                }
                prop_assert!(r.bytes() <= MAX_BYTES);
                prop_assert!(r.len() <= MAX_DATAGRAMS);
            }
        }
    }
}
