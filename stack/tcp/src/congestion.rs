//! Congestion control behind a trait, with NewReno (RFC 5681 + RFC 6582) and CUBIC
//! (RFC 9438).
//!
//! The TCB decides what is a new ACK and what is a duplicate ACK (RFC 5681 section 2)
//! and asks the controller for the window. Without SACK the controller runs fast
//! recovery itself and may ask for the first unacknowledged segment to be retransmitted
//! (fast retransmit, NewReno partial ACK). With SACK the TCB runs loss recovery
//! (RFC 6675 with PRR, `recovery.rs`) and only asks the controller for the window
//! reduction (`on_loss`) and the window after recovery (`on_recovery_exit`); controllers
//! that do not implement these (`supports_sack_recovery` false) keep the first mode.

use core::fmt::Debug;
use core::time::Duration;
use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

/// What the TCB knows when an ACK arrives.
#[derive(Clone, Copy, Debug)]
pub struct AckInfo {
    pub now: Instant,
    /// The cumulative acknowledgment number (SND.UNA after processing).
    pub ack: SeqNumber,
    /// Bytes newly acknowledged (0 for a duplicate ACK).
    pub acked: usize,
    /// Bytes outstanding before this ACK (SND.MAX - SND.UNA): FlightSize.
    pub flight_size: usize,
    /// The highest sequence number sent so far (SND.MAX).
    pub snd_max: SeqNumber,
    /// The sender's MSS.
    pub mss: usize,
}

/// What the controller asks of the TCB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcAction {
    None,
    /// Retransmit the first unacknowledged segment now.
    RetransmitFirst,
}

/// A congestion controller.
pub trait CongestionControl: Debug {
    /// The congestion window in bytes.
    fn cwnd(&self) -> usize;
    /// The slow start threshold in bytes.
    fn ssthresh(&self) -> usize;
    /// Whether fast recovery is in progress.
    fn in_recovery(&self) -> bool;
    /// An ACK acknowledged new data.
    fn on_ack(&mut self, info: &AckInfo) -> CcAction;
    /// A duplicate ACK (RFC 5681 definition) arrived.
    fn on_dup_ack(&mut self, info: &AckInfo) -> CcAction;
    /// The retransmission timer expired.
    fn on_rto(&mut self, flight_size: usize, snd_max: SeqNumber, mss: usize);
    /// The MSS changed (negotiation, PMTU). Resets the initial window if nothing was sent.
    fn on_mss(&mut self, mss: usize);

    /// Whether the controller implements `on_loss` and `on_recovery_exit`, so that the
    /// TCB may run SACK-based loss recovery (RFC 6675) itself. Default: false.
    fn supports_sack_recovery(&self) -> bool {
        false
    }
    /// SACK-based recovery started (the TCB detected loss): reduce ssthresh once for this
    /// window of data. During recovery the TCB paces sending by PRR (RFC 6937) and does
    /// not call `on_ack` or `on_dup_ack`.
    fn on_loss(&mut self, _now: Instant, _flight_size: usize, _mss: usize) {}
    /// SACK-based recovery ended (the recovery point was acknowledged): cwnd = ssthresh.
    fn on_recovery_exit(&mut self, _now: Instant, _mss: usize) {}
    /// A new smoothed RTT (for controllers that need it, such as CUBIC).
    fn on_rtt(&mut self, _srtt: Duration) {}
}

/// RFC 5681 initial window: min(4*MSS, max(2*MSS, 4380)).
pub(crate) fn initial_window(mss: usize) -> usize {
    (4 * mss).min((2 * mss).max(4380))
}

/// NewReno.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    /// RFC 6582 "recover": SND.MAX when recovery (or an RTO) started.
    recover: Option<SeqNumber>,
    in_recovery: bool,
    dup_acks: u32,
    /// Bytes acknowledged in congestion avoidance not yet turned into window.
    ca_acked: usize,
    started: bool,
}

impl NewReno {
    pub fn new(mss: usize) -> Self {
        NewReno {
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            recover: None,
            in_recovery: false,
            dup_acks: 0,
            ca_acked: 0,
            started: false,
        }
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    fn on_ack(&mut self, i: &AckInfo) -> CcAction {
        self.started = true;
        self.dup_acks = 0;
        if self.in_recovery {
            let recover = self.recover.unwrap_or(i.ack);
            if i.ack >= recover {
                // RFC 6582 3.2 step 3, full acknowledgment: deflate the window.
                let remaining = i.flight_size.saturating_sub(i.acked);
                self.cwnd = self.ssthresh.min(remaining.max(i.mss) + i.mss);
                self.in_recovery = false;
                return CcAction::None;
            }
            // Partial acknowledgment: retransmit the next hole, deflate by the amount
            // acked, add back one MSS if at least one MSS was acked.
            self.cwnd = self.cwnd.saturating_sub(i.acked).max(i.mss);
            if i.acked >= i.mss {
                self.cwnd += i.mss;
            }
            return CcAction::RetransmitFirst;
        }
        if self.cwnd < self.ssthresh {
            // Slow start with appropriate byte counting (RFC 3465, L = 2 * SMSS, so
            // that delayed ACKs still double the window per RTT); RFC 5681's
            // min(N, SMSS) is the case of one segment per ACK.
            self.cwnd += i.acked.min(2 * i.mss);
        } else {
            // Congestion avoidance: about one MSS per window (byte counting).
            self.ca_acked += i.acked;
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd += i.mss;
            }
        }
        CcAction::None
    }

    fn on_dup_ack(&mut self, i: &AckInfo) -> CcAction {
        self.started = true;
        if self.in_recovery {
            // RFC 6582 3.2 step 4: inflate for each additional duplicate ACK.
            self.cwnd += i.mss;
            return CcAction::None;
        }
        self.dup_acks += 1;
        if self.dup_acks != 3 {
            return CcAction::None;
        }
        // RFC 6582 3.2 step 2: enter only if the cumulative ACK covers "recover" (kept
        // here as SND.MAX, one past the highest byte sent), which avoids reducing twice
        // for losses from one window.
        if let Some(recover) = self.recover {
            if i.ack < recover {
                return CcAction::None;
            }
        }
        self.ssthresh = (i.flight_size / 2).max(2 * i.mss);
        self.recover = Some(i.snd_max);
        self.cwnd = self.ssthresh + 3 * i.mss;
        self.in_recovery = true;
        CcAction::RetransmitFirst
    }

    fn on_rto(&mut self, flight_size: usize, snd_max: SeqNumber, mss: usize) {
        // RFC 5681 (4), loss window of one segment; RFC 6582 4: recover = SND.MAX.
        self.ssthresh = (flight_size / 2).max(2 * mss);
        self.cwnd = mss;
        self.ca_acked = 0;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.recover = Some(snd_max);
    }

    fn on_mss(&mut self, mss: usize) {
        if !self.started {
            self.cwnd = initial_window(mss);
        } else {
            self.cwnd = self.cwnd.max(mss);
        }
    }

    fn supports_sack_recovery(&self) -> bool {
        true
    }
    fn on_loss(&mut self, _now: Instant, flight_size: usize, mss: usize) {
        // RFC 6675 section 5 step (4.2): ssthresh = cwnd = FlightSize / 2.
        self.started = true;
        self.ssthresh = (flight_size / 2).max(2 * mss);
        self.cwnd = self.ssthresh;
        self.ca_acked = 0;
        self.dup_acks = 0;
    }
    fn on_recovery_exit(&mut self, _now: Instant, mss: usize) {
        self.cwnd = self.ssthresh.max(mss);
    }
}

/// No congestion control: an effectively infinite window.
#[derive(Debug, Clone, Default)]
pub struct Unlimited;

impl CongestionControl for Unlimited {
    fn cwnd(&self) -> usize {
        usize::MAX / 2
    }
    fn ssthresh(&self) -> usize {
        usize::MAX / 2
    }
    fn in_recovery(&self) -> bool {
        false
    }
    fn on_ack(&mut self, _: &AckInfo) -> CcAction {
        CcAction::None
    }
    fn on_dup_ack(&mut self, _: &AckInfo) -> CcAction {
        CcAction::None
    }
    fn on_rto(&mut self, _: usize, _: SeqNumber, _: usize) {}
    fn on_mss(&mut self, _: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ack: u32, acked: usize, flight: usize, snd_max: u32) -> AckInfo {
        AckInfo {
            now: Instant::ZERO,
            ack: SeqNumber(ack),
            acked,
            flight_size: flight,
            snd_max: SeqNumber(snd_max),
            mss: 1000,
        }
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(1000);
        assert_eq!(c.cwnd(), 4000);
        c.on_ack(&info(1000, 1000, 4000, 4000));
        assert_eq!(c.cwnd(), 5000);
        c.ssthresh = 5000;
        for _ in 0..5 {
            c.on_ack(&info(2000, 1000, 5000, 9000));
        }
        assert_eq!(c.cwnd(), 6000);
    }

    #[test]
    fn fast_recovery_partial_and_full_ack() {
        let mut c = NewReno::new(1000);
        c.cwnd = 10_000;
        let d = info(0, 0, 10_000, 10_000);
        assert_eq!(c.on_dup_ack(&d), CcAction::None);
        assert_eq!(c.on_dup_ack(&d), CcAction::None);
        assert_eq!(c.on_dup_ack(&d), CcAction::RetransmitFirst);
        assert!(c.in_recovery());
        assert_eq!(c.ssthresh(), 5000);
        assert_eq!(c.cwnd(), 8000);
        assert_eq!(c.on_dup_ack(&d), CcAction::None);
        assert_eq!(c.cwnd(), 9000);
        // Partial ACK: retransmit, deflate.
        assert_eq!(
            c.on_ack(&info(3000, 3000, 10_000, 10_000)),
            CcAction::RetransmitFirst
        );
        assert_eq!(c.cwnd(), 7000);
        assert!(c.in_recovery());
        // Full ACK: exit.
        assert_eq!(c.on_ack(&info(10_000, 7000, 7000, 10_000)), CcAction::None);
        assert!(!c.in_recovery());
        assert_eq!(c.cwnd(), 1000 + 1000);
    }

    #[test]
    fn rto_collapses_window() {
        let mut c = NewReno::new(1000);
        c.cwnd = 20_000;
        c.on_rto(20_000, SeqNumber(20_000), 1000);
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 10_000);
        // Duplicate ACKs below "recover" do not start another recovery.
        let d = info(5000, 0, 15_000, 20_000);
        for _ in 0..3 {
            assert_eq!(c.on_dup_ack(&d), CcAction::None);
        }
    }
}
