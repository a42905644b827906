//! The Internet checksum (RFC 1071) and checksum offload caps (the pseudo-headers are in
//! `crate::ip`).
//!
//! `sum` returns the folded one's-complement sum of some bytes, *not* complemented, so
//! that sums of pieces can be `combine`d; the value written into a header is `!sum`. A
//! region whose checksum field is correct sums to `0xffff`.

/// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of `data` taken as big-endian 16-bit words, an odd last byte
/// padded with a zero (RFC 1071). Not complemented.
///
/// Sums native-endian 64-bit words, 32 bytes per step, into a 128-bit accumulator (which
/// cannot overflow for any buffer), then folds to 16 bits. A one's-complement sum does not
/// depend on byte order (RFC 1071 section 2(B)): summing native-endian words and swapping
/// the result on little-endian machines gives the big-endian sum. And since
/// 2^16 = 1 (mod 2^16 - 1), a 64-bit word counts as the sum of its four 16-bit words.
pub fn sum(data: &[u8]) -> u16 {
    #[inline(always)]
    fn word(b: &[u8]) -> u128 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        u128::from(u64::from_ne_bytes(w))
    }
    let mut acc: u128 = 0;
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        acc += word(&b[0..8]) + word(&b[8..16]) + word(&b[16..24]) + word(&b[24..32]);
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        acc += word(w);
    }
    // The tail starts at an offset that is a multiple of 8: zero padding at its end keeps
    // every byte in its place (and pads an odd last byte with zero, as RFC 1071 says).
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        acc += u128::from(u64::from_ne_bytes(w));
    }
    let folded = fold(fold_u128(acc));
    if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }
}

/// Folds a 128-bit sum to 64 bits, keeping its value modulo 2^16 - 1 (end-around carry).
fn fold_u128(acc: u128) -> u64 {
    let mut x = (acc & u128::from(u64::MAX)) + (acc >> 64);
    x = (x & u128::from(u64::MAX)) + (x >> 64);
    x as u64
}

/// Folds a sum of 16-bit words (at most 2^48 of them) to 16 bits, not complemented.
pub fn fold_sum(acc: u64) -> u16 {
    fold(acc)
}

/// One's-complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Incremental update (RFC 1624 eqn. 3): the new checksum field after one 16-bit word of
/// the covered data changes from `old` to `new`. `checksum` is the field as carried.
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// Who computes a given checksum, for one direction of offload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Verified on receive and filled on transmit (no offload).
    #[default]
    Both,
    /// Verified on receive only; on transmit the NIC fills it.
    Rx,
    /// Filled on transmit only; on receive the NIC already verified it.
    Tx,
    /// Neither: the NIC does both.
    None,
}

impl Checksum {
    /// Whether parse should verify this checksum.
    pub const fn rx(self) -> bool {
        matches!(self, Checksum::Both | Checksum::Rx)
    }
    /// Whether emit should fill this checksum (otherwise it leaves zero).
    pub const fn tx(self) -> bool {
        matches!(self, Checksum::Both | Checksum::Tx)
    }
}

/// Per-protocol checksum offload, passed to every `parse` and `emit` that has a checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChecksumCaps {
    pub ipv4: Checksum,
    pub udp: Checksum,
    pub tcp: Checksum,
    pub icmp: Checksum,
}

impl ChecksumCaps {
    /// Software does everything: verify on parse, fill on emit.
    pub const fn software() -> Self {
        ChecksumCaps {
            ipv4: Checksum::Both,
            udp: Checksum::Both,
            tcp: Checksum::Both,
            icmp: Checksum::Both,
        }
    }
    /// Software does nothing: no verification, zeros on emit.
    pub const fn ignored() -> Self {
        ChecksumCaps {
            ipv4: Checksum::None,
            udp: Checksum::None,
            tcp: Checksum::None,
            icmp: Checksum::None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ip::pseudo_header_v4;
    use crate::ipv4::{IpProtocol, Ipv4Address};
    use proptest::prelude::*;

    /// The textbook RFC 1071 loop, one byte pair at a time: the reference the fast `sum`
    /// and the hand-written test vectors in other modules are checked against.
    pub(crate) fn naive_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            acc += (u32::from(data[i]) << 8) | u32::from(data[i + 1]);
            acc = (acc & 0xffff) + (acc >> 16);
            i += 2;
        }
        if i < data.len() {
            acc += u32::from(data[i]) << 8;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(naive_sum(&data), 0xddf2);
    }

    #[test]
    fn edge_lengths() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0xff; 64]), 0xffff);
        for n in 0..40 {
            let data: [u8; 40] = core::array::from_fn(|i| (i * 37 + 11) as u8);
            assert_eq!(sum(&data[..n]), naive_sum(&data[..n]), "len {n}");
        }
    }

    #[test]
    fn ipv4_header_example() {
        // A well-known IPv4 header with checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(sum(&hdr), 0xffff);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(!sum(&zeroed), 0xb861);
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Address::new(10, 0, 0, 1);
        let dst = Ipv4Address::new(192, 168, 1, 200);
        let bytes = [10, 0, 0, 1, 192, 168, 1, 200, 0, 6, 0x05, 0xdc];
        assert_eq!(
            pseudo_header_v4(src, dst, IpProtocol::Tcp, 1500),
            naive_sum(&bytes)
        );
    }

    #[test]
    fn caps() {
        assert!(Checksum::Both.rx() && Checksum::Both.tx());
        assert!(Checksum::Rx.rx() && !Checksum::Rx.tx());
        assert!(!Checksum::Tx.rx() && Checksum::Tx.tx());
        assert!(!Checksum::None.rx() && !Checksum::None.tx());
        assert_eq!(ChecksumCaps::default(), ChecksumCaps::software());
    }

    proptest! {
        #[test]
        fn fast_equals_naive(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(sum(&data), naive_sum(&data));
        }

        #[test]
        fn split_at_even_offset_combines(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 0usize..300,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(combine(&[sum(a), sum(b)]), naive_sum(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            word in 0usize..100,
            new in any::<u16>(),
        ) {
            let w = (word % (data.len() / 2)) * 2;
            let old_field = !sum(&data);
            let old = u16::from_be_bytes([data[w], data[w + 1]]);
            data[w..w + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update(old_field, old, new);
            // Equal as one's-complement numbers (0x0000 and 0xffff are both zero).
            let fresh = !sum(&data);
            prop_assert!(updated == fresh || (updated | fresh == 0xffff && updated & fresh == 0));
        }
    }
}
