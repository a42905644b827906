//! SACK-based loss recovery, run by the TCB when SACK was negotiated and the congestion
//! controller supports it (`CongestionControl::supports_sack_recovery`):
//!
//! - RFC 2018 / RFC 2883: SACK blocks are validated (reversed, empty, below SND.UNA or
//!   beyond SND.MAX: ignored) and D-SACK blocks are recognised and counted, never taken
//!   as a sign of loss.
//! - RFC 6675: the scoreboard, IsLost, pipe and NextSeg rules (1) and (2): lost holes are
//!   retransmitted first, then new data; recovery ends when the recovery point is
//!   acknowledged.
//! - RFC 6937: proportional rate reduction decides how much may be sent on each ACK
//!   during recovery (with PRR-SSRB once pipe falls below ssthresh).
//! - RFC 3042: limited transmit falls out of counting SACKed bytes out of the flight.
//! - RFC 8985 (simplified): RACK marks a hole lost once data sent after it was delivered
//!   and a reordering window (min RTT / 4) has passed; TLP sends a probe two SRTTs
//!   after the last transmission when nothing else would. See `rack.rs`.

use sluice_wire::tcp::SeqNumber;

/// Loss recovery state (RFC 6675 and RFC 6937 variables), valid while the TCB's
/// `recovering` flag is set (which alone lies in its hot front). Byte counts are `u32`: a
/// recovery spans one window of data, below 2^30 bytes (36 bytes, not 56); they saturate
/// rather than wrap (`bytes`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Recovery {
    /// No new recovery starts until SND.UNA reaches this (one reduction per window of
    /// data; also set after an RTO).
    pub guard: Option<SeqNumber>,
    /// RecoveryPoint: SND.MAX when recovery started.
    pub point: SeqNumber,
    /// HighRxt: one past the highest byte retransmitted in this recovery.
    pub high_rxt: SeqNumber,
    pub prr_delivered: u32,
    pub prr_out: u32,
    /// RecoverFS: bytes outstanding when recovery started.
    pub recover_fs: u32,
    /// Bytes PRR lets us send now (sndcnt of the last ACK, minus what was sent).
    pub quota: u32,
}

/// A byte count as `Recovery` keeps it (saturating at `u32::MAX`).
#[inline]
pub(crate) fn bytes(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn byte_counts_saturate_instead_of_wrapping() {
        assert_eq!(bytes(1448), 1448);
        assert_eq!(bytes(u32::MAX as usize), u32::MAX);
        assert_eq!(bytes(u32::MAX as usize + 1), u32::MAX);
        assert_eq!(bytes(usize::MAX), u32::MAX);
    }
}
