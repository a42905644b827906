//! Time as the protocol cores see it: passed in, never read.
//!
//! `Instant` is nanoseconds since an arbitrary epoch chosen by the driver: a virtual clock
//! in tests, the TSC converted to nanoseconds over DPDK. Durations are `core::time::Duration`.

use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in nanoseconds since the driver's epoch (at most `u64::MAX - 1`).
///
/// Stored as nanoseconds plus one, so that zero is free for `Option<Instant>`'s `None`:
/// an optional instant takes 8 bytes instead of 16. A TCB holds about a dozen of them
/// (its timers, RTT and recovery times) among the fields every segment touches, and with
/// thousands of connections each line of those is a cache miss per segment.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(NonZeroU64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(NonZeroU64::MIN);

    /// `ns` nanoseconds after the epoch (`u64::MAX` is taken as `u64::MAX - 1`).
    pub const fn from_nanos(ns: u64) -> Self {
        match NonZeroU64::new(ns.saturating_add(1)) {
            Some(v) => Instant(v),
            None => Instant::ZERO, // unreachable: at least 1
        }
    }
    pub const fn from_micros(us: u64) -> Self {
        Instant::from_nanos(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Instant::from_nanos(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        Instant::from_nanos(s * 1_000_000_000)
    }
    #[inline]
    pub const fn total_nanos(self) -> u64 {
        self.0.get() - 1
    }
    pub const fn total_micros(self) -> u64 {
        self.total_nanos() / 1_000
    }
    pub const fn total_millis(self) -> u64 {
        self.total_nanos() / 1_000_000
    }
    /// `ns` nanoseconds later (saturating): a deadline computed in integers, without a
    /// `Duration`'s seconds-and-nanoseconds normalisations on the way.
    #[inline]
    pub const fn plus_nanos(self, ns: u64) -> Instant {
        Instant::from_nanos(self.total_nanos().saturating_add(ns))
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.get().saturating_sub(earlier.0.get()))
    }
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl core::fmt::Debug for Instant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Instant").field(&self.total_nanos()).finish()
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.plus_nanos(d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant::from_nanos(
            self.total_nanos()
                .saturating_sub(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    fn sub(self, other: Instant) -> Duration {
        self.saturating_duration_since(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), Instant::from_millis(6));
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
        let end = Instant::from_nanos(u64::MAX);
        assert_eq!(end.total_nanos(), u64::MAX - 1);
        assert_eq!(end + Duration::from_secs(1), end);
        assert!(Instant::ZERO < Instant::from_nanos(1) && Instant::from_nanos(1) < end);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Instant::ZERO.total_nanos(), 0);
    }

    #[test]
    fn an_optional_instant_takes_no_more_room_than_an_instant() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
    }
}
