//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;
use sluice_wire::Instant;

/// Clock granularity G of RFC 6298 section 2.
const GRANULARITY: Duration = Duration::from_millis(1);

/// Largest backoff exponent kept (the RTO is capped by `max` long before this).
const MAX_BACKOFF: u32 = 16;

/// SRTT/RTTVAR estimator with exponential backoff.
///
/// Kept in nanoseconds (`u64`): a sample is taken on every ACK of new data, and
/// `Duration`'s multiplication and division (seconds and nanoseconds apart, each checked)
/// cost 26 ns a sample, a few percent of a request/response exchange; with one sample per
/// window the gains are shifts. The RTO and its bounds are kept in microseconds (`u32`,
/// up to 71 minutes: a longer bound saturates there), so that the whole estimator is 32
/// bytes of the TCB's hot front (it was 80 with `Duration`s).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    /// SRTT (ns), once `sampled`.
    srtt: u64,
    rttvar: u64,
    /// RTO before backoff (µs), within `[min, max]`.
    base: u32,
    min: u32,
    max: u32,
    backoff: u8,
    sampled: bool,
}

/// `d` in nanoseconds, saturating (beyond 584 years).
#[inline]
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `d` in microseconds, rounded up (an RTO is never shortened), saturating at `u32::MAX`.
#[inline]
pub(crate) fn micros_ceil(ns: u64) -> u32 {
    u32::try_from(ns.div_ceil(1000)).unwrap_or(u32::MAX)
}

impl RttEstimator {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let (min, max) = (micros_ceil(nanos(min)), micros_ceil(nanos(max)));
        let max = max.max(min);
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            base: micros_ceil(nanos(initial)).clamp(min, max),
            min,
            max,
            backoff: 0,
            sampled: false,
        }
    }

    /// The smoothed RTT, once a sample was taken.
    #[inline]
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_nanos().map(Duration::from_nanos)
    }

    /// The smoothed RTT in nanoseconds, once a sample was taken (for deadlines).
    #[inline]
    pub fn srtt_nanos(&self) -> Option<u64> {
        self.sampled.then_some(self.srtt)
    }

    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }

    /// The current RTO, backoff included, within `[min, max]`.
    #[inline]
    pub fn rto(&self) -> Duration {
        Duration::from_micros(self.rto_micros().into())
    }

    /// When an RTO armed at `now` expires (`now + rto()`, in integers).
    #[inline]
    pub fn rto_deadline(&self, now: Instant) -> Instant {
        now.plus_nanos(u64::from(self.rto_micros()) * 1_000)
    }

    #[inline]
    fn rto_micros(&self) -> u32 {
        if self.backoff == 0 {
            return self.base; // within [min, max] already
        }
        let rto = self
            .base
            .saturating_mul(1 << u32::from(self.backoff).min(MAX_BACKOFF));
        rto.clamp(self.min, self.max)
    }

    /// Number of consecutive backoffs.
    pub fn backoff(&self) -> u32 {
        self.backoff.into()
    }

    /// Adds a measurement (RFC 6298 2.2, 2.3) and clears the backoff (Karn: callers only
    /// sample segments that were not retransmitted).
    pub fn sample(&mut self, r: Duration) {
        self.sample_weighted(r, 1);
    }

    /// Adds one of `n` measurements expected per window (RFC 7323 appendix G: timestamps
    /// give a sample per ACK, so alpha and beta are divided by `n`). Clears the backoff:
    /// timestamp samples are unambiguous even for retransmitted segments.
    #[inline]
    pub fn sample_weighted(&mut self, r: Duration, n: u32) {
        let r = nanos(r);
        let (srtt, rttvar) = if !self.sampled {
            (r, r / 2)
        } else {
            let srtt = self.srtt;
            let delta = srtt.abs_diff(r);
            match u64::from(n.max(1)) {
                // alpha = 1/8, beta = 1/4 (RFC 6298 2.3).
                1 => (
                    srtt.saturating_mul(7).saturating_add(r) >> 3,
                    self.rttvar.saturating_mul(3).saturating_add(delta) >> 2,
                ),
                n => (
                    srtt.saturating_mul(8 * n - 1).saturating_add(r) / (8 * n),
                    self.rttvar.saturating_mul(4 * n - 1).saturating_add(delta) / (4 * n),
                ),
            }
        };
        self.srtt = srtt;
        self.rttvar = rttvar;
        self.sampled = true;
        let rto = srtt.saturating_add(nanos(GRANULARITY).max(rttvar.saturating_mul(4)));
        self.base = micros_ceil(rto).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 5.5), up to `max`.
    pub fn on_timeout(&mut self) {
        if self.rto_micros() < self.max {
            self.backoff = (self.backoff + 1).min(MAX_BACKOFF as u8);
        }
    }

    /// RFC 6298 5.7: when the SYN timed out, use 3 s once the connection is established,
    /// unless a sample was taken.
    pub fn reset_after_syn_timeout(&mut self) {
        if !self.sampled {
            self.base = 3_000_000u32.clamp(self.min, self.max);
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

    /// The integer deadlines the per-ACK path uses agree with `Duration` arithmetic.
    #[test]
    fn deadlines_in_nanoseconds_agree_with_durations() {
        let now = Instant::from_nanos(123_456_789_012);
        let mut e = est();
        assert_eq!(e.srtt_nanos(), None);
        assert_eq!(e.rto_deadline(now), now + e.rto());
        e.sample(Duration::from_micros(2_345));
        assert_eq!(e.srtt_nanos().map(Duration::from_nanos), e.srtt());
        for _ in 0..20 {
            assert_eq!(e.rto_deadline(now), now + e.rto(), "backoff {}", e.backoff());
            e.on_timeout();
        }
        let late = Instant::from_nanos(u64::MAX - 5);
        assert_eq!(
            late.plus_nanos(1_000),
            late + Duration::from_micros(1),
            "saturates"
        );
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

    /// In nanoseconds as in `Duration`: the same estimates, RFC 6298's formulas, and
    /// samples beyond any real RTT saturate instead of overflowing.
    #[test]
    fn nanosecond_estimates_match_the_formulas_and_saturate() {
        let mut e = est();
        let (mut srtt, mut rttvar) = (0f64, 0f64);
        for (i, ms) in [100u64, 140, 90, 300, 120, 119, 5000, 80].into_iter().enumerate() {
            let n = [1u32, 1, 3, 1, 8, 2, 1, 5][i];
            e.sample_weighted(Duration::from_millis(ms), n);
            let r = ms as f64 * 1e6;
            if i == 0 {
                (srtt, rttvar) = (r, r / 2.0);
            } else {
                let n = f64::from(n);
                rttvar = (rttvar * (4.0 * n - 1.0) + (srtt - r).abs()) / (4.0 * n);
                srtt = (srtt * (8.0 * n - 1.0) + r) / (8.0 * n);
            }
            let got = e.srtt().unwrap().as_nanos() as f64;
            assert!((got - srtt).abs() <= 8.0, "sample {i}: srtt {got} against {srtt}");
            assert!((e.rttvar().as_nanos() as f64 - rttvar).abs() <= 8.0, "sample {i}");
        }
        e.sample(Duration::MAX);
        e.sample(Duration::from_secs(u64::MAX / 2));
        assert_eq!(e.rto(), Duration::from_secs(60), "capped at max");
    }

    /// The RTO is kept in whole microseconds, rounded up (never shorter than the formula),
    /// and bounds beyond 71 minutes saturate; the estimator stays 32 bytes.
    #[test]
    fn the_rto_rounds_up_to_microseconds_and_bounds_saturate() {
        let mut e = RttEstimator::new(Duration::from_secs(1), Duration::from_nanos(1), Duration::MAX);
        e.sample(Duration::from_nanos(1_000_001)); // rto = srtt + max(1 ms, 4 * rttvar)
        assert_eq!(e.rto(), Duration::from_micros(3001));
        let huge = RttEstimator::new(Duration::MAX, Duration::ZERO, Duration::MAX);
        assert_eq!(huge.rto(), Duration::from_micros(u32::MAX.into()));
        // A sample of zero (the same clock tick) is a sample.
        let mut z = est();
        z.sample(Duration::ZERO);
        assert_eq!(z.srtt(), Some(Duration::ZERO));
        assert_eq!(z.rto(), Duration::from_millis(200));
        assert_eq!(core::mem::size_of::<RttEstimator>(), 32);
    }
}
