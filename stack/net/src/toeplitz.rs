//! The Toeplitz hash of Microsoft's RSS specification, in software (the flow table uses
//! it too, to agree with the NIC's hash).
//!
//! The key is the one read back from the port: stacks that assumed a key broke on NICs
//! that use another.

use sluice_wire::{IpAddress, Ipv4Address, Ipv6Address};

/// The symmetric Toeplitz key (0x6d5a repeated, 40 bytes): a flow and its reply hash
/// alike, so one core owns both directions. Used for software steering.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// A Toeplitz hasher for one key, with the 32-bit windows of the key precomputed per input
/// byte and bit value, so that hashing a 12-byte IPv4/TCP tuple is 12 table lookups.
#[derive(Clone)]
pub struct Toeplitz {
    /// `table[i][b]`: the hash contribution of byte value `b` at input byte `i`.
    table: Vec<[u32; 256]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Toeplitz({} input bytes)", self.table.len())
    }
}

impl Toeplitz {
    /// A hasher for inputs of up to `key.len() - 4` bytes.
    pub fn new(key: &[u8]) -> Toeplitz {
        let max_input = key.len().saturating_sub(4);
        let bit = |i: usize| -> u32 { (key[i / 8] >> (7 - i % 8)) as u32 & 1 };
        // The 32-bit key window starting at key bit `i`.
        let window = |i: usize| -> u32 { (0..32).fold(0u32, |w, j| (w << 1) | bit(i + j)) };
        let mut table = vec![[0u32; 256]; max_input];
        for (byte, row) in table.iter_mut().enumerate() {
            let w: [u32; 8] = std::array::from_fn(|b| window(byte * 8 + b));
            for (v, slot) in row.iter_mut().enumerate() {
                *slot = (0..8).filter(|b| v & (0x80 >> b) != 0).fold(0, |h, b| h ^ w[b]);
            }
        }
        Toeplitz { table }
    }

    /// The hash of `input` (at most the key length minus 4 bytes; longer input is cut).
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(&self.table)
            .fold(0, |h, (&b, row)| h ^ row[b as usize])
    }

    /// The RSS hash of an IPv4 TCP/UDP flow as the NIC sees a packet from `src` to `dst`.
    pub fn hash_v4(&self, src: Ipv4Address, dst: Ipv4Address, sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&src.0);
        input[4..8].copy_from_slice(&dst.0);
        input[8..10].copy_from_slice(&sport.to_be_bytes());
        input[10..12].copy_from_slice(&dport.to_be_bytes());
        self.hash(&input)
    }

    /// The RSS hash of an IPv6 TCP/UDP flow (no extension headers) from `src` to `dst`.
    pub fn hash_v6(&self, src: Ipv6Address, dst: Ipv6Address, sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; 36];
        input[0..16].copy_from_slice(&src.0);
        input[16..32].copy_from_slice(&dst.0);
        input[32..34].copy_from_slice(&sport.to_be_bytes());
        input[34..36].copy_from_slice(&dport.to_be_bytes());
        self.hash(&input)
    }

    /// The RSS hash of a TCP/UDP flow of either family (`src` and `dst` of one family;
    /// mixed, the IPv4 one is taken as IPv4-mapped).
    pub fn hash_ip(&self, src: IpAddress, dst: IpAddress, sport: u16, dport: u16) -> u32 {
        let v6 = |a: IpAddress| match a {
            IpAddress::V4(a) => Ipv6Address::from_ipv4_mapped(a.0),
            IpAddress::V6(a) => a,
        };
        match (src, dst) {
            (IpAddress::V4(s), IpAddress::V4(d)) => self.hash_v4(s, d, sport, dport),
            (s, d) => self.hash_v6(v6(s), v6(d), sport, dport),
        }
    }

    /// The RSS hash of IPv4 addresses only (non-TCP/UDP traffic).
    pub fn hash_v4_addrs(&self, src: Ipv4Address, dst: Ipv4Address) -> u32 {
        let mut input = [0u8; 8];
        input[0..4].copy_from_slice(&src.0);
        input[4..8].copy_from_slice(&dst.0);
        self.hash(&input)
    }
}
