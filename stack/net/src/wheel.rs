//! A hashed timer wheel: one per core, holding every connection's next wake-up (RTO,
//! delayed ACK, persist, keepalive, TIME-WAIT), so that a poll visits only the
//! connections whose time has come instead of all of them.
//!
//! Entries keep their exact deadline; a slot holds the entries whose deadline falls in its
//! tick (modulo one revolution). Insertion is O(1); `advance` visits the slots of the ticks
//! that passed (at most one revolution) and fires what is due. Cancellation is the
//! owner's business: it checks, when an entry fires, that it is still wanted.

use sluice_wire::Instant;

#[derive(Debug)]
pub struct TimerWheel<T> {
    tick_ns: u64,
    slots: Vec<Vec<(u64, T)>>,
    /// One bit per slot: set when the slot holds entries (finds the next one quickly).
    occupied: Vec<u64>,
    /// The tick of the last `advance`: every entry due before it has fired.
    cursor: u64,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots (rounded up to a power of two) of `tick` each, starting at `now`.
    pub fn new(now: Instant, tick: std::time::Duration, slots: usize) -> Self {
        let n = slots.next_power_of_two().max(2);
        let tick_ns = (tick.as_nanos() as u64).max(1);
        TimerWheel {
            tick_ns,
            slots: (0..n).map(|_| Vec::new()).collect(),
            occupied: vec![0; n.div_ceil(64)],
            cursor: now.total_nanos() / tick_ns,
            len: 0,
        }
    }

    fn slot(&self, tick: u64) -> usize {
        (tick as usize) & (self.slots.len() - 1)
    }

    /// Schedules `item` at `at` (a past time fires at the next `advance`).
    pub fn insert(&mut self, at: Instant, item: T) {
        let ns = at.total_nanos();
        let tick = (ns / self.tick_ns).max(self.cursor);
        let s = self.slot(tick);
        self.slots[s].push((ns, item));
        self.occupied[s / 64] |= 1 << (s % 64);
        self.len += 1;
    }

    /// Entries scheduled and not yet fired.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fires, in no particular order, every entry due at or before `now`, with its deadline.
    pub fn advance(&mut self, now: Instant, mut fire: impl FnMut(Instant, T)) {
        let now_ns = now.total_nanos();
        let now_tick = now_ns / self.tick_ns;
        if now_tick < self.cursor {
            return; // time does not go back
        }
        if self.len > 0 {
            // After a jump longer than a revolution, every slot is visited once.
            let visits = (now_tick - self.cursor + 1).min(self.slots.len() as u64);
            for i in 0..visits {
                let s = self.slot(self.cursor + i);
                let mut j = 0;
                while j < self.slots[s].len() {
                    if self.slots[s][j].0 <= now_ns {
                        let (at, item) = self.slots[s].swap_remove(j);
                        self.len -= 1;
                        fire(Instant::from_nanos(at), item);
                    } else {
                        j += 1;
                    }
                }
                if self.slots[s].is_empty() {
                    self.occupied[s / 64] &= !(1 << (s % 64));
                }
            }
        }
        // The current tick's slot is visited again next time: it may hold entries due
        // later within this tick.
        self.cursor = now_tick;
    }

    /// The next occupied slot at or after `from` (in ring order), as a distance from it.
    fn next_occupied(&self, from: usize) -> Option<usize> {
        let n = self.slots.len();
        let words = self.occupied.len();
        let (w0, b0) = (from / 64, from % 64);
        // The first word, from bit b0 on; then whole words around the ring; then the
        // first word's bits before b0.
        let first = self.occupied[w0] & (!0u64 << b0);
        if first != 0 {
            return Some(w0 * 64 + first.trailing_zeros() as usize - from);
        }
        for k in 1..=words {
            let w = (w0 + k) % words;
            let bits = if k == words {
                self.occupied[w] & !(!0u64 << b0)
            } else {
                self.occupied[w]
            };
            if bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                return Some((slot + n - from) % n);
            }
        }
        None
    }

    /// The earliest deadline: the first occupied slot from the cursor with an entry of the
    /// current revolution (found through the occupancy bitmap), or, when every entry is
    /// further away, a scan of all of them.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let n = self.slots.len();
        let mut i = 0;
        while i < n {
            let Some(d) = self.next_occupied((self.slot(self.cursor) + i) % n) else {
                break;
            };
            i += d;
            if i >= n {
                break;
            }
            let tick = self.cursor + i as u64;
            let in_revolution = |&&(at, _): &&(u64, T)| at / self.tick_ns <= tick;
            if let Some(at) = self.slots[self.slot(tick)]
                .iter()
                .filter(in_revolution)
                .map(|e| e.0)
                .min()
            {
                return Some(Instant::from_nanos(at));
            }
            i += 1;
        }
        self.slots
            .iter()
            .flatten()
            .map(|e| e.0)
            .min()
            .map(Instant::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn fires_exactly_when_due() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 64);
        w.insert(Instant::from_millis(5), 'a');
        w.insert(Instant::from_millis(200), 'b'); // beyond one revolution
        w.insert(Instant::from_micros(5500), 'c'); // inside a tick
        let mut got = Vec::new();
        w.advance(Instant::from_millis(4), |_, x| got.push(x));
        assert!(got.is_empty());
        assert_eq!(w.next_expiry(), Some(Instant::from_millis(5)));
        w.advance(Instant::from_millis(5), |_, x| got.push(x));
        assert_eq!(got, ['a']);
        w.advance(Instant::from_micros(5499), |_, x| got.push(x));
        assert_eq!(got, ['a'], "not before its exact deadline");
        w.advance(Instant::from_micros(5500), |at, x| {
            assert_eq!(at, Instant::from_micros(5500));
            got.push(x)
        });
        assert_eq!(got, ['a', 'c']);
        assert_eq!(w.next_expiry(), Some(Instant::from_millis(200)));
        w.advance(Instant::from_millis(199), |_, x| got.push(x));
        assert_eq!(w.len(), 1);
        w.advance(Instant::from_secs(10), |_, x| got.push(x));
        assert_eq!(got, ['a', 'c', 'b']);
        assert!(w.is_empty());
        assert_eq!(w.next_expiry(), None);
    }

    proptest! {
        /// Every entry fires exactly once, never before its deadline, and at the first
        /// advance at or after it; `next_expiry` is the earliest pending deadline.
        #[test]
        fn exact_and_never_lost(deadlines in prop::collection::vec(0u64..5_000, 1..200),
                                steps in prop::collection::vec(1u64..700, 1..60)) {
            let mut w = TimerWheel::new(Instant::ZERO, Duration::from_micros(3), 64);
            for (i, d) in deadlines.iter().enumerate() {
                w.insert(Instant::from_micros(*d), i);
            }
            let mut fired = vec![None; deadlines.len()];
            let mut now = 0u64;
            let mut prev = 0u64;
            for s in steps.iter().chain(std::iter::once(&10_000)) {
                let pending_min = deadlines.iter().enumerate().filter(|(i, _)| fired[*i].is_none()).map(|(_, d)| *d).min();
                prop_assert_eq!(w.next_expiry().map(|t| t.total_micros()), pending_min);
                now += s;
                w.advance(Instant::from_micros(now), |_, i| {
                    assert!(fired[i].is_none(), "fired twice");
                    fired[i] = Some(now);
                });
                for (i, d) in deadlines.iter().enumerate() {
                    if *d <= now {
                        prop_assert!(fired[i].is_some(), "entry {} due {} not fired at {}", i, d, now);
                    }
                    if let Some(at) = fired[i] {
                        prop_assert!(at >= *d, "entry {} due {} fired early at {}", i, d, at);
                        prop_assert!(at == now || at <= prev || *d > prev);
                    }
                }
                prev = now;
            }
            prop_assert!(w.is_empty());
        }
    }
}
