//! A hashed timer wheel: one per core, holding every connection's next wake-up (RTO,
//! delayed ACK, persist, keepalive, TIME-WAIT), so that a poll visits only the
//! connections whose time has come instead of all of them.
//!
//! Entries keep their exact deadline; a slot holds the entries whose deadline falls in its
//! tick (modulo one revolution), for this revolution and the next; entries further out
//! wait in a bucket per revolution and move to their slots when that revolution becomes
//! the next one. Insertion is O(1); `advance` visits the slots of the ticks that passed
//! (at most one revolution) and fires what is due, never stepping over an entry more than
//! twice (a busy core polls several times per tick). Cancellation is the owner's
//! business: it checks, when an entry fires, that it is still wanted.

use sluice_wire::Instant;

/// Revolutions ahead the far buckets tell apart (one bucket each; an entry further out
/// shares a bucket with one `FAR` revolutions nearer, and is filed back into it when that
/// one's turn comes: once per `FAR` revolutions, 1.3 s with the stack's wheel).
const FAR: usize = 32;

#[derive(Debug)]
pub struct TimerWheel<T> {
    /// log2 of the tick in nanoseconds: a deadline's tick is a shift, not a division
    /// (one per insert and per advance, 20-40 cycles each).
    tick_shift: u32,
    /// The near entries: those due before `horizon` (this revolution and the next), each in
    /// the slot of its tick.
    slots: Vec<Vec<(u64, T)>>,
    /// One bit per slot: set when the slot holds entries (finds the next one quickly).
    occupied: Vec<u64>,
    /// The far entries, by revolution (modulo `FAR`): moved into the slots when their
    /// revolution becomes the next one, so a slot's entries are at most two revolutions'
    /// worth and a busy core's polls do not step over far entries again and again.
    far: Vec<Vec<(u64, T)>>,
    far_len: usize,
    /// The tick of the last `advance`: every entry due before it has fired.
    cursor: u64,
    /// The first tick of the revolution after the next: entries due before it are near.
    horizon: u64,
    /// log2 of the slot count: a tick's revolution is `tick >> rev_shift`.
    rev_shift: u32,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots (rounded up to a power of two) of `tick` each (rounded
    /// down to a power of two nanoseconds: 10 µs is 8.192 µs), starting at `now`.
    pub fn new(now: Instant, tick: std::time::Duration, slots: usize) -> Self {
        let n = slots.next_power_of_two().max(2);
        let tick_ns = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).max(1);
        let tick_shift = 63 - tick_ns.leading_zeros();
        let cursor = now.total_nanos() >> tick_shift;
        TimerWheel {
            tick_shift,
            slots: (0..n).map(|_| Vec::new()).collect(),
            occupied: vec![0; n.div_ceil(64)],
            far: (0..FAR).map(|_| Vec::new()).collect(),
            far_len: 0,
            cursor,
            horizon: ((cursor >> n.trailing_zeros()) + 2) << n.trailing_zeros(),
            rev_shift: n.trailing_zeros(),
            len: 0,
        }
    }

    /// The horizon when the cursor is at `tick`: the end of the revolution after its own.
    fn horizon_of(&self, tick: u64) -> u64 {
        ((tick >> self.rev_shift) + 2) << self.rev_shift
    }

    /// The tick of a deadline (ns).
    #[inline]
    fn tick_of(&self, ns: u64) -> u64 {
        ns >> self.tick_shift
    }

    fn slot(&self, tick: u64) -> usize {
        (tick as usize) & (self.slots.len() - 1)
    }

    /// Schedules `item` at `at` (a past time fires at the next `advance`).
    pub fn insert(&mut self, at: Instant, item: T) {
        self.file(at.total_nanos(), item, self.cursor);
        self.len += 1;
    }

    /// Puts an entry where it belongs: its slot if near (a deadline before tick `floor`
    /// goes to `floor`'s slot), else its revolution's bucket.
    fn file(&mut self, ns: u64, item: T, floor: u64) {
        let tick = self.tick_of(ns).max(floor);
        if tick < self.horizon {
            let s = self.slot(tick);
            self.slots[s].push((ns, item));
            self.occupied[s / 64] |= 1 << (s % 64);
        } else {
            let rev = tick >> self.rev_shift;
            self.far[rev as usize % FAR].push((ns, item));
            self.far_len += 1;
        }
    }

    /// Moves the horizon to `to`, the cursor going to tick `now`: the far entries now near
    /// go to their slots (those already due to `now`'s). Each far entry is looked at once
    /// per `FAR` revolutions; a bucket keeps its memory and the entries of later
    /// revolutions it holds.
    #[cold]
    #[inline(never)]
    fn move_horizon(&mut self, to: u64, now: u64) {
        let (from_rev, to_rev) = (self.horizon >> self.rev_shift, to >> self.rev_shift);
        self.horizon = to;
        if self.far_len == 0 {
            return;
        }
        let revs = (to_rev - from_rev).min(FAR as u64);
        for r in 0..revs {
            let b = ((from_rev + r) % FAR as u64) as usize;
            let mut bucket = core::mem::take(&mut self.far[b]);
            let shift = self.tick_shift;
            for (ns, item) in bucket.extract_if(.., |&mut (ns, _)| ns >> shift < to) {
                self.far_len -= 1;
                self.file(ns, item, now);
            }
            self.far[b] = bucket;
        }
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
        let now_tick = self.tick_of(now_ns);
        if now_tick < self.cursor {
            return; // time does not go back
        }
        let horizon = self.horizon_of(now_tick);
        if horizon > self.horizon {
            self.move_horizon(horizon, now_tick);
        }
        if self.len > self.far_len {
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
            let in_revolution = |&&(at, _): &&(u64, T)| self.tick_of(at) <= tick;
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
        // Nothing due within a revolution: the earliest of the near entries of the next
        // revolution and of the far ones (their first revolution with an entry of its own).
        let near = self.slots.iter().flatten().map(|e| e.0).min();
        let far = self.far_min();
        match (near, far) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(Instant::from_nanos)
    }

    /// The earliest far deadline: the buckets in revolution order from the horizon, the
    /// first with an entry of that very revolution; else the least of all.
    fn far_min(&self) -> Option<u64> {
        if self.far_len == 0 {
            return None;
        }
        let first = self.horizon >> self.rev_shift;
        for r in first..first + FAR as u64 {
            let of_rev = |&&(ns, _): &&(u64, T)| self.tick_of(ns) >> self.rev_shift == r;
            if let Some(m) = self.far[(r % FAR as u64) as usize]
                .iter()
                .filter(of_rev)
                .map(|e| e.0)
                .min()
            {
                return Some(m);
            }
        }
        self.far.iter().flatten().map(|e| e.0).min()
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

    /// Every entry fires exactly once, never before its deadline, and at the first advance
    /// at or after it; `next_expiry` is the earliest pending deadline.
    fn check(deadlines: &[u64], steps: &[u64], last: u64) -> Result<(), TestCaseError> {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_micros(3), 64);
        for (i, d) in deadlines.iter().enumerate() {
            w.insert(Instant::from_micros(*d), i);
        }
        let mut fired = vec![None; deadlines.len()];
        let mut now = 0u64;
        let mut prev = 0u64;
        for s in steps.iter().chain(std::iter::once(&last)) {
            let pending_min = deadlines
                .iter()
                .enumerate()
                .filter(|(i, _)| fired[*i].is_none())
                .map(|(_, d)| *d)
                .min();
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
        Ok(())
    }

    proptest! {
        /// Deadlines within a few dozen revolutions of 64 slots of 3 µs.
        #[test]
        fn exact_and_never_lost(deadlines in prop::collection::vec(0u64..5_000, 1..200),
                                steps in prop::collection::vec(1u64..700, 1..60)) {
            check(&deadlines, &steps, 10_000)?;
        }

        /// Deadlines hundreds of revolutions out, and jumps of many revolutions at once.
        #[test]
        fn far_entries_exact_and_never_lost(deadlines in prop::collection::vec(0u64..200_000, 1..200),
                                            steps in prop::collection::vec(1u64..30_000, 1..40)) {
            check(&deadlines, &steps, 400_000)?;
        }
    }
}
