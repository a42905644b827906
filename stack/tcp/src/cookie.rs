//! SYN cookies: a stateless SYN-ACK when the backlog is full (RFC 4987 section 3.6).
//!
//! The cookie is our initial sequence number:
//!
//! ```text
//!  31      26 25 24 23                                   0
//! +----------+-----+--------------------------------------+
//! | counter  | MSS |  SipHash-2-4(secret; flow, ports,    |
//! | (6 bits) | idx |  client ISN, counter, MSS idx) 24 b  |
//! +----------+-----+--------------------------------------+
//! ```
//!
//! `counter` is `now` in units of 64 s; a cookie is valid for the current and the
//! previous counter (64 to 128 s). The MSS is one of `MSS_TABLE`, the largest not above
//! the client's. As Linux does, when the client sent timestamps, the low 6 bits of our
//! TSval carry its window scale (4 bits, 15 = none) and SACK-permitted (bit 4), and come
//! back in the TSecr of the final ACK; without timestamps, neither is used.

use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

/// The MSS values a cookie can encode (2 bits).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Seconds per cookie time counter.
pub(crate) const COUNTER_SECS: u64 = 64;

/// Options carried in the TSval of a cookie SYN-ACK (low 6 bits).
pub(crate) const TS_OPT_BITS: u32 = 0x3f;
const TS_NO_WSCALE: u32 = 0xf;
const TS_SACK: u32 = 0x10;

pub(crate) fn counter(now: Instant) -> u32 {
    (now.total_millis() / 1000 / COUNTER_SECS) as u32
}

fn hash24(
    secret: &[u8; 16],
    flow: u64,
    ports: (u16, u16),
    client_isn: SeqNumber,
    counter: u32,
    idx: u32,
) -> u32 {
    let mut msg = [0u8; 24];
    msg[..8].copy_from_slice(&flow.to_le_bytes());
    msg[8..10].copy_from_slice(&ports.0.to_le_bytes());
    msg[10..12].copy_from_slice(&ports.1.to_le_bytes());
    msg[12..16].copy_from_slice(&client_isn.0.to_le_bytes());
    msg[16..20].copy_from_slice(&counter.to_le_bytes());
    msg[20..24].copy_from_slice(&idx.to_le_bytes());
    (crate::keyed::keyed_hash(secret, &msg) & 0xff_ffff) as u32
}

/// The cookie ISN for a SYN with `client_isn` and the client's MSS option.
pub(crate) fn make(
    secret: &[u8; 16],
    now: Instant,
    flow: u64,
    ports: (u16, u16),
    client_isn: SeqNumber,
    client_mss: Option<u16>,
) -> SeqNumber {
    let mss = client_mss.unwrap_or(536);
    let idx = MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32;
    let c = counter(now);
    SeqNumber(((c & 0x3f) << 26) | (idx << 24) | hash24(secret, flow, ports, client_isn, c, idx))
}

/// Checks `cookie` (SEG.ACK - 1 of the final ACK) for `client_isn` (SEG.SEQ - 1).
/// Returns the MSS it encodes.
pub(crate) fn check(
    secret: &[u8; 16],
    now: Instant,
    flow: u64,
    ports: (u16, u16),
    client_isn: SeqNumber,
    cookie: SeqNumber,
) -> Option<u16> {
    let now_c = counter(now);
    let c_bits = cookie.0 >> 26;
    let idx = (cookie.0 >> 24) & 3;
    for age in 0..2u32 {
        let c = now_c.wrapping_sub(age);
        if c & 0x3f == c_bits && hash24(secret, flow, ports, client_isn, c, idx) == cookie.0 & 0xff_ffff {
            return Some(MSS_TABLE[idx as usize]);
        }
    }
    None
}

/// Our TSval for a cookie SYN-ACK: `now` in ms with the low 6 bits replaced by the
/// options, never later than `now`.
pub(crate) fn ts_encode(now_ms: u32, window_scale: Option<u8>, sack: bool) -> u32 {
    let ws = window_scale.map_or(TS_NO_WSCALE, |w| u32::from(w.min(14)));
    let opts = ws | if sack { TS_SACK } else { 0 };
    let v = (now_ms & !TS_OPT_BITS) | opts;
    if v > now_ms {
        v.wrapping_sub(TS_OPT_BITS + 1)
    } else {
        v
    }
}

/// Options from the TSecr of the final ACK.
pub(crate) fn ts_decode(tsecr: u32) -> (Option<u8>, bool) {
    let ws = tsecr & 0xf;
    ((ws != TS_NO_WSCALE).then_some(ws as u8), tsecr & TS_SACK != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_expiry() {
        let key = [7u8; 16];
        let t0 = Instant::from_secs(1000);
        let isn = SeqNumber(0xdead_beef);
        let c = make(&key, t0, 42, (80, 5555), isn, Some(1400));
        assert_eq!(check(&key, t0, 42, (80, 5555), isn, c), Some(1300));
        assert_eq!(
            check(
                &key,
                t0 + core::time::Duration::from_secs(64),
                42,
                (80, 5555),
                isn,
                c
            ),
            Some(1300)
        );
        assert_eq!(
            check(
                &key,
                t0 + core::time::Duration::from_secs(200),
                42,
                (80, 5555),
                isn,
                c
            ),
            None
        );
        // Any other flow, port, ISN or key: rejected.
        assert_eq!(check(&key, t0, 43, (80, 5555), isn, c), None);
        assert_eq!(check(&key, t0, 42, (80, 5556), isn, c), None);
        assert_eq!(check(&key, t0, 42, (80, 5555), isn + 1, c), None);
        assert_eq!(check(&[8; 16], t0, 42, (80, 5555), isn, c), None);
        // Tampering with the MSS index breaks the hash.
        assert_eq!(
            check(&key, t0, 42, (80, 5555), isn, SeqNumber(c.0 ^ (1 << 24))),
            None
        );
    }

    #[test]
    fn mss_table_rounds_down() {
        let key = [1u8; 16];
        for (mss, want) in [
            (None, 536),
            (Some(0), 536),
            (Some(1300), 1300),
            (Some(1459), 1440),
            (Some(9000), 1460),
        ] {
            let c = make(&key, Instant::ZERO, 0, (1, 2), SeqNumber(9), mss);
            assert_eq!(check(&key, Instant::ZERO, 0, (1, 2), SeqNumber(9), c), Some(want));
        }
    }

    #[test]
    fn timestamp_carries_options() {
        for (ws, sack) in [
            (None, false),
            (Some(0), true),
            (Some(7), false),
            (Some(14), true),
            (Some(20), true),
        ] {
            let v = ts_encode(1_000_123, ws, sack);
            assert!(v <= 1_000_123 && 1_000_123 - v < 128);
            assert_eq!(ts_decode(v), (ws.map(|w| w.min(14)), sack));
        }
    }
}
