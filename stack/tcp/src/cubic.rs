//! CUBIC congestion control (RFC 9438).
//!
//! The window grows as W_cubic(t) = C * (t - K)^3 + W_max (in segments, t in seconds
//! since the start of the congestion-avoidance epoch), with K = cbrt((W_max -
//! cwnd_epoch) / C), but never slower than the Reno-friendly estimate W_est (section
//! 4.3). A congestion event multiplies the window by beta = 0.7 and sets W_max, with fast
//! convergence (section 4.7). Slow start is RFC 5681's (no HyStart). Without SACK, fast
//! recovery is RFC 6582's (as `NewReno`) with CUBIC's beta; with SACK the TCB runs the
//! recovery and calls `on_loss` / `on_recovery_exit`.

use core::time::Duration;

use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

use crate::congestion::{initial_window, AckInfo, CcAction, CongestionControl};

/// C of RFC 9438 section 5.1 (segments / second^3).
pub const CUBIC_C: f64 = 0.4;
/// beta_cubic of RFC 9438 section 5.1 (multiplicative decrease factor).
pub const CUBIC_BETA: f64 = 0.7;
/// alpha_cubic = 3 * (1 - beta) / (1 + beta): the Reno-friendly additive increase.
pub const CUBIC_ALPHA: f64 = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);

/// CUBIC. Windows are kept in bytes (as `f64` to accumulate fractions of a byte).
#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: f64,
    ssthresh: usize,
    /// W_max in bytes: the window just before the last reduction.
    w_max: f64,
    /// K in seconds for the current epoch.
    k: f64,
    /// Start of the current congestion-avoidance epoch (None: starts at the next ACK).
    epoch_start: Option<Instant>,
    /// W_est in bytes (Reno-friendly estimate).
    w_est: f64,
    /// cwnd just before the last reduction (for alpha_cubic switching to 1, 4.3).
    cwnd_prior: f64,
    /// The smoothed RTT in seconds (only ever used as such).
    srtt: f64,
    /// (Kept as `u32` and the duplicate ACK count as `u16`: 80 bytes in the TCB, not 96.)
    mss: u32,
    started: bool,
    // RFC 6582 fast recovery, used without SACK.
    recover: Option<SeqNumber>,
    in_recovery: bool,
    dup_acks: u16,
}

impl Cubic {
    pub fn new(mss: usize) -> Self {
        Cubic {
            cwnd: initial_window(mss) as f64,
            ssthresh: usize::MAX,
            w_max: 0.0,
            k: 0.0,
            epoch_start: None,
            w_est: 0.0,
            cwnd_prior: 0.0,
            srtt: 0.1,
            mss: mss as u32,
            started: false,
            recover: None,
            in_recovery: false,
            dup_acks: 0,
        }
    }

    /// W_cubic(t) in bytes for `t` seconds into the epoch (equation 1).
    pub fn w_cubic(&self, t: f64) -> f64 {
        let mss = self.mss as f64;
        (CUBIC_C * (t - self.k).powi(3)) * mss + self.w_max
    }

    /// W_max in bytes.
    pub fn w_max(&self) -> usize {
        self.w_max as usize
    }

    /// K in seconds.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// Multiplicative decrease (RFC 9438 4.6, 4.7): W_max with fast convergence,
    /// ssthresh = max(cwnd * beta, 2 * MSS). Does not set cwnd.
    fn congestion_event(&mut self, flight_size: usize, mss: usize) {
        self.started = true;
        self.epoch_start = None;
        self.cwnd_prior = self.cwnd;
        self.w_max = if self.cwnd < self.w_max {
            // Fast convergence: release bandwidth for new flows.
            self.cwnd * (1.0 + CUBIC_BETA) / 2.0
        } else {
            self.cwnd
        };
        // RFC 9438 4.6 allows cwnd in place of FlightSize; FlightSize under-counts when
        // the loss is detected after a stretch ACK.
        let _ = flight_size;
        self.ssthresh = ((self.cwnd * CUBIC_BETA) as usize).max(2 * mss);
    }

    /// Congestion avoidance for `acked` bytes (RFC 9438 4.2-4.5).
    fn avoidance(&mut self, now: Instant, acked: usize) {
        let mss = self.mss as f64;
        let start = match self.epoch_start {
            Some(s) => s,
            None => {
                self.epoch_start = Some(now);
                if self.cwnd >= self.w_max {
                    self.k = 0.0;
                    self.w_max = self.cwnd;
                } else {
                    self.k = ((self.w_max - self.cwnd) / mss / CUBIC_C).cbrt();
                }
                self.w_est = self.cwnd;
                now
            }
        };
        let t = (now - start).as_secs_f64();
        // Reno-friendly estimate (4.3): alpha_cubic per RTT, 1 once past cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            CUBIC_ALPHA
        };
        self.w_est += alpha * (acked as f64 / self.cwnd) * mss;
        if self.w_cubic(t) < self.w_est {
            // Reno-friendly region.
            self.cwnd = self.cwnd.max(self.w_est);
            return;
        }
        // Concave / convex regions: approach W_cubic(t + RTT) within one RTT, with the
        // target clamped to [cwnd, 1.5 cwnd] (4.4, 4.5).
        let target = self.w_cubic(t + self.srtt).clamp(self.cwnd, 1.5 * self.cwnd);
        self.cwnd += (target - self.cwnd) * (acked as f64) / self.cwnd;
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> usize {
        self.cwnd as usize
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    fn on_ack(&mut self, i: &AckInfo) -> CcAction {
        self.started = true;
        self.mss = i.mss as u32;
        self.dup_acks = 0;
        if self.in_recovery {
            // RFC 6582 as in `NewReno`, without SACK.
            let recover = self.recover.unwrap_or(i.ack);
            if i.ack >= recover {
                let remaining = i.flight_size.saturating_sub(i.acked);
                self.cwnd = self.ssthresh.min(remaining.max(i.mss) + i.mss) as f64;
                self.in_recovery = false;
                return CcAction::None;
            }
            self.cwnd = (self.cwnd - i.acked as f64).max(i.mss as f64);
            if i.acked >= i.mss {
                self.cwnd += i.mss as f64;
            }
            return CcAction::RetransmitFirst;
        }
        if (self.cwnd as usize) < self.ssthresh {
            // Slow start, RFC 3465 byte counting with L = 2 * SMSS.
            self.cwnd += i.acked.min(2 * i.mss) as f64;
        } else {
            self.avoidance(i.now, i.acked);
        }
        CcAction::None
    }

    fn on_dup_ack(&mut self, i: &AckInfo) -> CcAction {
        self.started = true;
        if self.in_recovery {
            self.cwnd += i.mss as f64;
            return CcAction::None;
        }
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.dup_acks != 3 {
            return CcAction::None;
        }
        if let Some(recover) = self.recover {
            if i.ack < recover {
                return CcAction::None;
            }
        }
        self.congestion_event(i.flight_size, i.mss);
        self.recover = Some(i.snd_max);
        self.cwnd = (self.ssthresh + 3 * i.mss) as f64;
        self.in_recovery = true;
        CcAction::RetransmitFirst
    }

    fn on_rto(&mut self, flight_size: usize, snd_max: SeqNumber, mss: usize) {
        // RFC 9438 4.8: reduce as for a congestion event, then cwnd = one segment.
        self.congestion_event(flight_size, mss);
        self.cwnd = mss as f64;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.recover = Some(snd_max);
    }

    fn on_mss(&mut self, mss: usize) {
        self.mss = mss as u32;
        if !self.started {
            self.cwnd = initial_window(mss) as f64;
        } else {
            self.cwnd = self.cwnd.max(mss as f64);
        }
    }

    fn supports_sack_recovery(&self) -> bool {
        true
    }
    fn on_loss(&mut self, _now: Instant, flight_size: usize, mss: usize) {
        self.mss = mss as u32;
        self.congestion_event(flight_size, mss);
        self.cwnd = self.ssthresh as f64;
    }
    fn on_recovery_exit(&mut self, _now: Instant, mss: usize) {
        self.cwnd = (self.ssthresh.max(mss)) as f64;
    }
    fn on_rtt(&mut self, srtt: Duration) {
        self.srtt = srtt.as_secs_f64();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ack(now: Instant, acked: usize) -> AckInfo {
        AckInfo {
            now,
            ack: SeqNumber(0),
            acked,
            flight_size: 0,
            snd_max: SeqNumber(0),
            mss: MSS,
        }
    }

    /// Runs congestion avoidance for `secs` with an ACK per segment, one window per RTT;
    /// returns (t, cwnd in segments) once per RTT.
    fn run(c: &mut Cubic, rtt: Duration, secs: f64) -> Vec<(f64, f64)> {
        let mut now = Instant::from_secs(100);
        let start = now;
        let mut trace = Vec::new();
        while (now - start).as_secs_f64() < secs {
            let segs = (c.cwnd() / MSS).max(1);
            let step = rtt / segs as u32;
            for _ in 0..segs {
                c.on_ack(&ack(now, MSS));
                now += step;
            }
            trace.push(((now - start).as_secs_f64(), c.cwnd / MSS as f64));
        }
        trace
    }

    #[test]
    fn constants_are_the_rfcs() {
        assert_eq!(CUBIC_C, 0.4);
        assert_eq!(CUBIC_BETA, 0.7);
        assert!((CUBIC_ALPHA - 0.5294).abs() < 1e-3);
    }

    #[test]
    fn loss_reduces_by_beta_and_sets_w_max() {
        let mut c = Cubic::new(MSS);
        c.cwnd = 100.0 * MSS as f64;
        c.on_loss(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!(c.ssthresh(), 70 * MSS);
        assert_eq!(c.cwnd(), 70 * MSS);
        assert_eq!(c.w_max(), 100 * MSS);
        // A second loss below W_max: fast convergence, W_max = cwnd * (1 + beta) / 2.
        c.on_loss(Instant::ZERO, 70 * MSS, MSS);
        assert_eq!(c.w_max(), (70.0 * 1.7 / 2.0 * MSS as f64) as usize);
        assert_eq!(c.ssthresh(), 49 * MSS);
    }

    #[test]
    fn window_follows_w_cubic() {
        // W_max = 100 segments, long RTT (CUBIC region, not Reno-friendly).
        let rtt = Duration::from_millis(100);
        let mut c = Cubic::new(MSS);
        c.on_rtt(rtt);
        c.cwnd = 100.0 * MSS as f64;
        c.on_loss(Instant::ZERO, 100 * MSS, MSS);
        c.on_recovery_exit(Instant::ZERO, MSS);
        let trace = run(&mut c, rtt, 8.0);
        // K = cbrt((100 - 70) / 0.4) = cbrt(75) s.
        let k = 75f64.cbrt();
        assert!((c.k() - k).abs() < 1e-9, "K = {}", c.k());
        for &(t, w) in &trace {
            // The window trails W_cubic(t + RTT) by about one RTT: compare with W_cubic(t).
            let want = CUBIC_C * (t - k).powi(3) + 100.0;
            assert!(
                (w - want).abs() <= 0.03 * want + 1.0,
                "t={t:.2}s cwnd={w:.2} W_cubic={want:.2}"
            );
        }
        // Concave up to W_max at K, plateau, then convex growth past W_max.
        let at = |t0: f64| trace.iter().find(|(t, _)| *t >= t0).unwrap().1;
        assert!(at(k) > 98.0 && at(k) < 102.0, "plateau at W_max");
        assert!(at(8.0) > 110.0, "convex growth beyond W_max");
    }

    #[test]
    fn reno_friendly_region() {
        // Small W_max and a short RTT: W_est (alpha_cubic per RTT) exceeds W_cubic.
        let rtt = Duration::from_millis(10);
        let mut c = Cubic::new(MSS);
        c.on_rtt(rtt);
        c.cwnd = 10.0 * MSS as f64;
        c.on_loss(Instant::ZERO, 10 * MSS, MSS);
        c.on_recovery_exit(Instant::ZERO, MSS);
        let trace = run(&mut c, rtt, 1.0);
        let (t, w) = *trace.last().unwrap();
        let rtts = t / rtt.as_secs_f64();
        // 7 segments, then alpha_cubic = 0.53 per RTT up to cwnd_prior = 10, 1 after.
        let to_prior = (10.0 - 7.0) / CUBIC_ALPHA;
        let want = 10.0 + (rtts - to_prior);
        let k = (3.0f64 / CUBIC_C).cbrt();
        let w_cubic = CUBIC_C * (t - k).powi(3) + 10.0;
        assert!(
            w > 1.5 * w_cubic,
            "cwnd {w:.1} should be above W_cubic {w_cubic:.1}"
        );
        assert!(
            (w - want).abs() < 0.1 * want,
            "cwnd {w:.1}, Reno estimate {want:.1}"
        );
    }

    #[test]
    fn non_sack_fast_recovery_uses_beta() {
        let mut c = Cubic::new(MSS);
        c.cwnd = 20.0 * MSS as f64;
        let d = AckInfo {
            flight_size: 20 * MSS,
            snd_max: SeqNumber(20_000),
            ..ack(Instant::ZERO, 0)
        };
        assert_eq!(c.on_dup_ack(&d), CcAction::None);
        assert_eq!(c.on_dup_ack(&d), CcAction::None);
        assert_eq!(c.on_dup_ack(&d), CcAction::RetransmitFirst);
        assert_eq!(c.ssthresh(), 14 * MSS);
        assert_eq!(c.cwnd(), 17 * MSS);
        let full = AckInfo {
            ack: SeqNumber(20_000),
            acked: 20 * MSS,
            flight_size: 20 * MSS,
            ..ack(Instant::ZERO, 0)
        };
        assert_eq!(c.on_ack(&full), CcAction::None);
        assert!(!c.in_recovery());
        assert_eq!(c.cwnd(), MSS * 2);
    }
}
