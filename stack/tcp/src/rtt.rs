//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;

/// Clock granularity G of RFC 6298 section 2.
const GRANULARITY: Duration = Duration::from_millis(1);

/// Largest backoff exponent kept (the RTO is capped by `max` long before this).
const MAX_BACKOFF: u32 = 16;

/// SRTT/RTTVAR estimator with exponential backoff.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// RTO before backoff.
    base: Duration,
    backoff: u32,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base: initial,
            backoff: 0,
            min,
            max,
        }
    }

    /// The smoothed RTT, once a sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The current RTO, backoff included, within `[min, max]`.
    pub fn rto(&self) -> Duration {
        let rto = self.base.saturating_mul(1 << self.backoff.min(MAX_BACKOFF));
        rto.clamp(self.min, self.max)
    }

    /// Number of consecutive backoffs.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// Adds a measurement (RFC 6298 2.2, 2.3) and clears the backoff (Karn: callers only
    /// sample segments that were not retransmitted).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.base = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// Adds one of `n` measurements expected per window (RFC 7323 appendix G: timestamps
    /// give a sample per ACK, so alpha and beta are divided by `n`). Clears the backoff:
    /// timestamp samples are unambiguous even for retransmitted segments.
    pub fn sample_weighted(&mut self, r: Duration, n: u32) {
        let n = n.max(1);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * (4 * n - 1) + delta) / (4 * n);
                self.srtt = Some((srtt * (8 * n - 1) + r) / (8 * n));
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.base = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 5.5), up to `max`.
    pub fn on_timeout(&mut self) {
        if self.rto() < self.max {
            self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
        }
    }

    /// RFC 6298 5.7: when the SYN timed out, use 3 s once the connection is established,
    /// unless a sample was taken.
    pub fn reset_after_syn_timeout(&mut self) {
        if self.srtt.is_none() {
            self.base = Duration::from_secs(3).clamp(self.min, self.max);
        }
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn first_sample_and_smoothing() {
        let mut e = est();
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
        e.sample(Duration::from_millis(100));
        // rttvar = 3/4 * 50 = 37.5 ms, rto = 100 + 150 = 250 ms
        assert_eq!(e.rto(), Duration::from_micros(250_000));
    }

    #[test]
    fn weighted_samples_move_slower() {
        let mut e = est();
        e.sample_weighted(Duration::from_millis(100), 4);
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        e.sample_weighted(Duration::from_millis(420), 4);
        // srtt += (420 - 100) / 32 = 10 ms; rttvar = (50 * 15 + 320) / 16.
        assert_eq!(e.srtt(), Some(Duration::from_millis(110)));
        assert_eq!(e.rttvar(), Duration::from_micros(66_875));
        // n = 1 is the RFC 6298 update.
        let mut a = est();
        let mut b = est();
        for r in [100, 300, 50] {
            a.sample(Duration::from_millis(r));
            b.sample_weighted(Duration::from_millis(r), 1);
        }
        assert_eq!(a.srtt(), b.srtt());
        assert_eq!(a.rto(), b.rto());
    }

    #[test]
    fn backoff_caps_at_max() {
        let mut e = est();
        for _ in 0..10 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), Duration::from_secs(60));
        e.sample(Duration::from_millis(10));
        assert_eq!(e.rto(), Duration::from_millis(200));
    }
}
