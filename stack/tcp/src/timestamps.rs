//! TCP timestamps (RFC 7323 sections 3-5): the TSval clock, TS.Recent, PAWS and RTTM.
//!
//! TSval is `now` in milliseconds (1 ms per tick, within the 1 ms - 1 s range of section
//! 5.4), wrapping at 2^32.

use core::time::Duration;

use sluice_wire::tcp::TcpRepr;
use sluice_wire::Instant;

use crate::congestion::CongestionControl;
use crate::tcb::Tcb;

/// TS.Recent is not trusted for PAWS after this long without an update (RFC 7323 5.5).
const TS_RECENT_VALID: Duration = Duration::from_secs(24 * 24 * 3600);

/// The timestamp clock: milliseconds of `now`, wrapping.
pub(crate) fn ts_clock(now: Instant) -> u32 {
    now.total_millis() as u32
}

/// `a < b` in the wrapping 32-bit timestamp space.
pub(crate) fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Tcb {
    /// PAWS test (RFC 7323 section 5.3 R1): a non-RST segment whose TSval is older than
    /// TS.Recent is not acceptable, unless TS.Recent is more than 24 days old.
    pub(crate) fn paws_rejects(&self, now: Instant, tsval: u32) -> bool {
        ts_before(tsval, self.ts_recent) && now - self.ts_recent_at < TS_RECENT_VALID
    }

    /// RFC 7323 section 4.3 (R3): TS.Recent follows the segment that the next ACK will
    /// acknowledge: `SEG.TSval >= TS.Recent and SEG.SEQ <= Last.ACK.sent`. Called only
    /// for segments that passed the sequence, RST, SYN and ACK checks.
    pub(crate) fn update_ts_recent(&mut self, now: Instant, seg: &TcpRepr) {
        let Some((tsval, _)) = seg.options.timestamp else {
            return;
        };
        if !self.ts_enabled {
            return;
        }
        let stale = now - self.ts_recent_at >= TS_RECENT_VALID;
        if (!ts_before(tsval, self.ts_recent) || stale) && seg.seq <= self.last_ack_sent {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
    }

    /// RTTM (RFC 7323 section 4): an ACK that acknowledges new data gives a sample from
    /// its TSecr, weighted by the number of samples expected per window (appendix G).
    pub(crate) fn ts_rtt_sample(&mut self, now: Instant, tsecr: u32, flight_size: usize) {
        let rtt_ms = ts_clock(now).wrapping_sub(tsecr);
        if rtt_ms as i32 >= 0 && rtt_ms < 3_600_000 {
            // Samples expected per window: one per two segments in flight (and no
            // division in the common case of a window of at most two).
            let per_ack = 2 * self.mss.max(1);
            let expected = if flight_size <= per_ack {
                1
            } else {
                flight_size.div_ceil(per_ack)
            };
            self.rtt
                .sample_weighted(Duration::from_millis(rtt_ms.into()), expected as u32);
            if let Some(srtt) = self.rtt.srtt() {
                self.cc.on_rtt(srtt);
            }
        }
    }

    /// The timestamps option for an outgoing non-SYN segment, and Last.ACK.sent.
    pub(crate) fn ts_option(&self, now: Instant) -> Option<(u32, u32)> {
        self.ts_enabled.then(|| (ts_clock(now), self.ts_recent))
    }

    /// Queues a challenge ACK (RFC 5961 sections 3-5), subject to the per-connection
    /// rate limit of section 7: a bucket of `challenge_ack_limit` tokens refilled every
    /// second. Returns whether the ACK will be sent.
    /// An ACK in answer to an out-of-window segment: always for one with text or a FIN,
    /// at most one per `invalid_ack_interval` for the others (Linux's
    /// `tcp_invalid_ratelimit`): a flood of forged or stale ACKs gets a trickle back.
    pub(crate) fn invalid_ack(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        let text = seg.segment_len() > usize::from(seg.flags.syn());
        if !text {
            let interval = self.cfg.invalid_ack_interval;
            if self.invalid_ack_at.is_some_and(|t| now < t + interval) {
                self.counters.invalid_acks_suppressed += 1;
                return false;
            }
            self.invalid_ack_at = Some(now);
        }
        self.ack_now = true;
        true
    }

    pub(crate) fn challenge_ack(&mut self, now: Instant) -> bool {
        if now >= self.challenge_refill_at {
            self.challenge_tokens = self.cfg.challenge_ack_limit;
            self.challenge_refill_at = now + Duration::from_secs(1);
        }
        if self.challenge_tokens == 0 {
            self.counters.challenge_acks_suppressed += 1;
            return false;
        }
        self.challenge_tokens -= 1;
        self.ack_now = true;
        true
    }

    /// Records the options of the peer's SYN that this side also offered: timestamps
    /// (TS.Recent from its TSval) and SACK-permitted.
    pub(crate) fn accept_syn_options(&mut self, now: Instant, seg: &TcpRepr) {
        match seg.options.timestamp {
            Some((tsval, _)) if self.cfg.timestamps => {
                self.ts_enabled = true;
                self.ts_recent = tsval;
                self.ts_recent_at = now;
            }
            _ => self.ts_enabled = false,
        }
        self.sack_ok = self.cfg.sack && seg.options.sack_permitted;
        self.last_ack_sent = seg.seq + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_comparison() {
        assert!(ts_before(1, 2));
        assert!(!ts_before(2, 2));
        assert!(ts_before(u32::MAX, 3), "across the wrap");
        assert!(!ts_before(3, u32::MAX));
    }
}
