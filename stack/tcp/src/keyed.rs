//! The one keyed hash behind TCP's secrets: SipHash-2-4 (the `siphasher` crate) under a
//! 128-bit key. RFC 6528 initial sequence numbers and SYN cookies (RFC 4987) are both made
//! with it, so one key, drawn from the OS at start, protects both; the interface derives
//! its other secrets (the cookie secret, the ephemeral port start, the flow table's seed)
//! from the same key through `keyed_hash`.

use core::hash::Hasher;

use siphasher::sip::SipHasher24;
use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

/// SipHash-2-4 of `data` under `key`.
pub fn keyed_hash(key: &[u8; 16], data: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_key(key);
    h.write(data);
    h.finish()
}

/// The initial sequence number of a connection (RFC 6528 section 3): a keyed hash of the
/// 4-tuple (addresses as bytes, ports) plus a clock that ticks every 4 microseconds.
pub fn isn(key: &[u8; 16], local: (&[u8], u16), remote: (&[u8], u16), now: Instant) -> SeqNumber {
    let mut h = SipHasher24::new_with_key(key);
    h.write(local.0);
    h.write(&local.1.to_be_bytes());
    h.write(remote.0);
    h.write(&remote.1.to_be_bytes());
    let clock = (now.total_micros() / 4) as u32;
    SeqNumber((h.finish() as u32).wrapping_add(clock))
}

/// The SYN-cookie secret of a listener, derived from the key (the same on every core, so
/// that a cookie made by one core is checked by any).
pub fn cookie_secret(key: &[u8; 16]) -> [u8; 16] {
    let mut secret = [0u8; 16];
    for (i, chunk) in secret.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&keyed_hash(key, &[b's', b'y', b'n', i as u8]).to_le_bytes());
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the SipHash paper (key 00..0f, message 00..0e), and the
    /// empty message: the library is the algorithm the cookies and ISNs were built on.
    #[test]
    fn siphash_reference_vectors() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(keyed_hash(&key, &msg), 0xa129ca6149be45e5);
        assert_eq!(keyed_hash(&key, &[]), 0x726fdb47dd0e0e31);
    }

    #[test]
    fn isn_depends_on_the_tuple_the_key_and_the_clock() {
        let k = [7u8; 16];
        let a = ([198, 18, 0, 1].as_slice(), 80);
        let b = ([198, 18, 0, 2].as_slice(), 40000);
        let i0 = isn(&k, a, b, Instant::ZERO);
        assert_eq!(isn(&k, a, b, Instant::from_micros(400)), i0 + 100);
        assert_ne!(isn(&k, b, a, Instant::ZERO), i0);
        assert_ne!(isn(&[8u8; 16], a, b, Instant::ZERO), i0);
        assert_ne!(cookie_secret(&k), cookie_secret(&[8u8; 16]));
    }
}
