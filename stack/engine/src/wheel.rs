//! A hashed timer wheel: one per core, driving every connection's next wake-up (RTO,
//! delayed ACK, persist, keepalive, TIME-WAIT). Insertion is O(1); expiry visits only the
//! slots whose ticks have passed. Cancellation is lazy: the owner checks, when a timer
//! fires, that it is still wanted (a connection's `poll_at` says so).

use sluice_wire::Instant;

#[derive(Debug)]
pub struct TimerWheel<T> {
    tick_ns: u64,
    slots: Vec<Vec<(u64, T)>>,
    /// The next tick to process: every timer due before it has fired.
    cursor: u64,
    len: usize,
    fired: Vec<T>,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots (rounded up to a power of two) of `tick` each, starting at `now`.
    pub fn new(now: Instant, tick: std::time::Duration, slots: usize) -> Self {
        let n = slots.next_power_of_two().max(2);
        let tick_ns = (tick.as_nanos() as u64).max(1);
        TimerWheel {
            tick_ns,
            slots: (0..n).map(|_| Vec::new()).collect(),
            cursor: now.total_nanos() / tick_ns,
            len: 0,
            fired: Vec::new(),
        }
    }

    fn slot(&self, tick: u64) -> usize {
        (tick as usize) & (self.slots.len() - 1)
    }

    /// Schedules `item` at `at` (rounded up to the next tick; a past time fires at the next advance).
    pub fn insert(&mut self, at: Instant, item: T) {
        let tick = at.total_nanos().div_ceil(self.tick_ns).max(self.cursor);
        let s = self.slot(tick);
        self.slots[s].push((tick, item));
        self.len += 1;
    }

    /// Timers scheduled and not yet fired.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fires, in no particular order, every timer due at or before `now`.
    pub fn advance(&mut self, now: Instant, mut fire: impl FnMut(T)) {
        let now_tick = now.total_nanos() / self.tick_ns;
        if now_tick < self.cursor || self.len == 0 {
            self.cursor = self.cursor.max(now_tick + 1).min(now_tick + 1).max(self.cursor);
            if self.len == 0 {
                self.cursor = self.cursor.max(now_tick + 1);
            }
            return;
        }
        // After a jump longer than a revolution, every slot is visited once.
        let visits = (now_tick - self.cursor + 1).min(self.slots.len() as u64);
        for i in 0..visits {
            let s = self.slot(self.cursor + i);
            let slot = &mut self.slots[s];
            let mut j = 0;
            while j < slot.len() {
                if slot[j].0 <= now_tick {
                    self.fired.push(slot.swap_remove(j).1);
                } else {
                    j += 1;
                }
            }
        }
        self.cursor = now_tick + 1;
        self.len -= self.fired.len();
        for item in self.fired.drain(..) {
            fire(item);
        }
    }

    /// The earliest tick with a timer, as an `Instant` (a lower bound of the next expiry,
    /// exact to a tick). Scans the wheel: for the idle path, not per packet.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|&(t, _)| t)
            .min()
            .map(|t| Instant::from_nanos(t * self.tick_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn fires_at_the_right_tick() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 64);
        w.insert(Instant::from_millis(5), 'a');
        w.insert(Instant::from_millis(200), 'b'); // beyond one revolution
        w.insert(Instant::from_micros(5500), 'c'); // rounds up to 6 ms
        let mut got = Vec::new();
        w.advance(Instant::from_millis(4), |x| got.push(x));
        assert!(got.is_empty());
        w.advance(Instant::from_millis(5), |x| got.push(x));
        assert_eq!(got, ['a']);
        w.advance(Instant::from_millis(6), |x| got.push(x));
        assert_eq!(got, ['a', 'c']);
        assert_eq!(w.next_expiry(), Some(Instant::from_millis(200)));
        w.advance(Instant::from_millis(199), |x| got.push(x));
        assert_eq!(w.len(), 1);
        w.advance(Instant::from_secs(10), |x| got.push(x));
        assert_eq!(got, ['a', 'c', 'b']);
        assert!(w.is_empty());
    }

    proptest! {
        /// Every timer fires exactly once, never early, and no later than the first advance
        /// at or after its deadline rounded up to a tick.
        #[test]
        fn never_early_never_lost(deadlines in prop::collection::vec(0u64..5_000, 1..200),
                                  steps in prop::collection::vec(1u64..700, 1..60)) {
            let tick = 1_000u64; // 1 µs ticks, in ns
            let mut w = TimerWheel::new(Instant::ZERO, Duration::from_nanos(tick), 256);
            for (i, d) in deadlines.iter().enumerate() {
                w.insert(Instant::from_micros(*d), i);
            }
            let mut fired = vec![None; deadlines.len()];
            let mut now = 0u64;
            for s in steps.iter().chain(std::iter::once(&10_000)) {
                now += s;
                w.advance(Instant::from_micros(now), |i| {
                    assert!(fired[i].is_none(), "fired twice");
                    fired[i] = Some(now);
                });
            }
            for (i, d) in deadlines.iter().enumerate() {
                let at = fired[i].expect("every timer fires");
                prop_assert!(at >= *d, "timer {} due {} fired early at {}", i, d, at);
            }
            prop_assert!(w.is_empty());
        }
    }
}
