//! A byte ring of a fixed logical capacity, one per direction of a connection.
//!
//! Its memory grows on demand, doubling from `INITIAL` bytes up to the capacity, so that an
//! idle connection holds no buffer and a short exchange holds a small one (memory per idle
//! connection, and connection set-up cost: no zero-filling of two full-size buffers). A
//! connection grows its rings a handful of times at most; steady-state traffic never
//! allocates. The receive side also writes out-of-order data past the readable part
//! (`write_at`) and makes it readable later (`commit`).

use std::sync::Arc;

use crate::budget::MemBudget;
use crate::recycle::{self, Cache};

/// The first allocation of a ring that receives data: small, since it is zero-filled
/// at every connection's first byte each way (with short connections at 4 KiB that
/// zeroing was 6% of a client's time), and a few doublings cost little to a connection
/// that grows.
pub(crate) const INITIAL: usize = 1024;

thread_local! {
    /// First memories (`INITIAL` bytes) of rings that gave theirs back (`crate::recycle`).
    pub(crate) static FIRST: Cache<Box<[u8]>> = const { Cache::new(Vec::new()) };
}

/// A byte ring buffer of fixed logical capacity.
pub(crate) struct RingBuffer {
    /// The memory: empty until the first write, then a power of two up to `cap` (or `cap`).
    buf: Box<[u8]>,
    /// The logical capacity: what windows are computed from.
    cap: u32,
    /// Index of the first readable byte in `buf`.
    start: u32,
    /// Number of readable bytes (at most `cap`).
    filled: u32,
    /// How far past the readable part bytes may have been written (`write_at`): an upper
    /// bound, lowered as `commit` makes them readable. At zero with nothing readable, the
    /// ring starts over at the front of its memory (`discard`).
    ahead: u32,
    /// What the memory is charged to, if anything (`crate::budget`).
    budget: Option<Arc<MemBudget>>,
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        self.give_back(true);
    }
}

impl core::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.cap)
            .field("allocated", &self.buf.len())
            .field("len", &self.filled)
            .finish()
    }
}

impl RingBuffer {
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            buf: Box::default(),
            cap: u32::try_from(capacity).unwrap_or(u32::MAX),
            start: 0,
            filled: 0,
            ahead: 0,
            budget: None,
        }
    }

    /// Charges this ring's memory, from now on, to `budget` (what it holds already too).
    pub fn set_budget(&mut self, budget: Arc<MemBudget>) {
        if let Some(old) = self.budget.take() {
            old.release(self.buf.len());
        }
        // Memory already held is kept even beyond the limit: it is in use.
        budget.force_charge(self.buf.len());
        self.budget = Some(budget);
    }

    /// With the budget under pressure, an empty ring gives its memory back. The caller
    /// makes sure no out-of-order bytes wait past the readable part.
    pub fn shrink_if_pressed(&mut self) {
        if self.budget.as_ref().is_some_and(|b| b.under_pressure()) && self.len() == 0 {
            self.give_back(false); // freed: memory is short
        }
    }

    /// An empty ring gives its memory back (a connection that failed or entered
    /// TIME-WAIT: nothing more will be written to it).
    pub fn shrink(&mut self) {
        if self.len() == 0 {
            self.give_back(true);
        }
    }

    /// Gives the memory back: to the budget, and to this thread's cache of first memories
    /// if `recycle` and it is one (`crate::recycle`), else to the allocator.
    fn give_back(&mut self, recycle: bool) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(b) = &self.budget {
            b.release(self.buf.len());
        }
        let buf = core::mem::take(&mut self.buf);
        if recycle && buf.len() == INITIAL {
            recycle::give(&FIRST, buf);
        }
        self.start = 0;
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Starts fetching the lines the next read and the next write touch (`sluice_buf::prefetch`).
    #[inline]
    pub fn prefetch(&self) {
        if !self.buf.is_empty() {
            let base = self.buf.as_ptr();
            sluice_buf::prefetch(base.wrapping_add(self.start as usize), 1);
            sluice_buf::prefetch(
                base.wrapping_add(self.index(self.len().min(self.buf.len() - 1))),
                1,
            );
        }
    }

    /// Bytes of memory the ring holds now.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.filled as usize
    }

    /// Bytes that can still be enqueued.
    #[inline]
    pub fn free(&self) -> usize {
        self.cap as usize - self.len()
    }

    #[inline]
    fn index(&self, offset: usize) -> usize {
        let size = self.buf.len();
        let i = self.start as usize + offset;
        if i >= size {
            i - size
        } else {
            i
        }
    }

    /// Makes the memory hold at least `needed` bytes from the start (at most `cap`),
    /// keeping every byte where it is relative to the start (readable and out-of-order).
    /// Returns false when the budget refuses the growth (the memory stays as it was).
    pub fn reserve(&mut self, needed: usize) -> bool {
        let size = self.buf.len();
        if needed <= size {
            return true;
        }
        let mut new = needed
            .max(size * 2)
            .max(INITIAL)
            .next_power_of_two()
            .min(self.cap as usize);
        if let Some(b) = &self.budget {
            if !b.try_charge(new - size) {
                // Short of a doubling, what is needed, or else what the budget has left
                // (in `INITIAL` steps): the caller takes what fits.
                let left = size + b.available() / INITIAL * INITIAL;
                let want = needed.min(self.cap as usize).min(left);
                if want <= size || !b.try_charge(want - size) {
                    return false;
                }
                new = want;
            }
        }
        let mut grown = match (size, new) {
            (0, INITIAL) => recycle::take(&FIRST),
            _ => None,
        }
        .unwrap_or_else(|| vec![0u8; new].into_boxed_slice());
        // The old ring, unrolled from `start`: its two parts go to the front of the new one.
        let (tail, head) = self.buf.split_at(self.start as usize);
        grown[..head.len()].copy_from_slice(head);
        grown[head.len()..size].copy_from_slice(tail);
        self.buf = grown;
        self.start = 0;
        new >= needed
    }

    /// Copies as much of `data` as fits; returns the number of bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.commit(n);
        n
    }

    /// Writes `data` at `offset` bytes past the readable part, without making it readable.
    /// Returns how many bytes fit.
    #[inline]
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let mut n = data.len().min(free - offset);
        if !self.reserve(self.len() + offset + n) {
            // Refused by the budget: what the memory holds already.
            n = n.min(self.buf.len().saturating_sub(self.len() + offset));
        }
        let mut done = 0;
        while done < n {
            let at = self.index(self.len() + offset + done);
            let chunk = (n - done).min(self.buf.len() - at);
            self.buf[at..at + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
        if offset > 0 {
            self.ahead = self.ahead.max((offset + n) as u32);
        }
        n
    }

    /// Makes `n` bytes written by `write_at(0, ..)` readable.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.free());
        let n = n.min(self.free());
        self.filled += n as u32;
        self.ahead = self.ahead.saturating_sub(n as u32);
    }

    /// The contiguous free bytes right after the readable part (for writing in place);
    /// `commit` makes what was written readable. Grows the memory when it is full.
    pub fn free_slice_mut(&mut self) -> &mut [u8] {
        if self.free() == 0 {
            return &mut [];
        }
        if self.len() == self.buf.len() {
            self.reserve(self.len() + 1);
        }
        let at = self.index(self.len());
        let n = (self.buf.len() - self.len()).min(self.buf.len() - at);
        &mut self.buf[at..at + n]
    }

    /// Drops `n` readable bytes from the front.
    #[inline]
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        self.filled -= n as u32;
        // Emptied, with no byte waiting past the readable part (out-of-order data is
        // positioned relative to `start`): the next bytes go to the front of the memory
        // again. A connection exchanging small messages then touches the same cache lines
        // (and page) at every exchange instead of walking its whole ring, which with
        // thousands of connections was a cache and TLB miss per message on each side.
        self.start = if self.len() == 0 && self.ahead == 0 {
            0
        } else {
            self.index(n) as u32
        };
    }

    /// Copies readable bytes into `out` and removes them; returns the count.
    #[cfg(test)]
    pub fn dequeue_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(0, out);
        self.discard(n);
        n
    }

    /// Copies readable bytes from `offset` into `out` without removing them.
    pub fn peek_into(&self, offset: usize, out: &mut [u8]) -> usize {
        if offset >= self.len() {
            return 0;
        }
        let n = out.len().min(self.len() - offset);
        let mut done = 0;
        while done < n {
            let s = self.slice(offset + done, n - done);
            out[done..done + s.len()].copy_from_slice(s);
            done += s.len();
        }
        n
    }

    /// The contiguous readable bytes starting `offset` bytes in, at most `max` of them.
    #[inline]
    pub fn slice(&self, offset: usize, max: usize) -> &[u8] {
        if offset >= self.len() {
            return &[];
        }
        let at = self.index(offset);
        let n = max.min(self.len() - offset).min(self.buf.len() - at);
        &self.buf[at..at + n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_bounds_growth_and_takes_memory_back() {
        let total = MemBudget::new(64 * 1024, None);
        let budget = MemBudget::new(48 * 1024, Some(total.clone()));
        let mut a = RingBuffer::new(1 << 20);
        let mut b = RingBuffer::new(1 << 20);
        a.set_budget(budget.clone());
        b.set_budget(budget.clone());
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 249) as u8).collect();
        assert_eq!(a.enqueue(&data), 40_000, "within the budget");
        assert_eq!(
            a.allocated(),
            40_000,
            "short of a doubling, exactly what is needed"
        );
        assert_eq!(budget.used(), 40_000);
        assert_eq!(total.used(), 40_000, "charged to the parent too");
        // b may grow by the 8 KiB left, no further: the rest of a write is refused.
        assert_eq!(b.enqueue(&data), 8192, "what the budget has left");
        assert_eq!(b.enqueue(&data[8192..]), 0, "then nothing: WouldBlock");
        assert_eq!(budget.used(), 40_000 + 8192);
        assert!(budget.refusals() >= 1);
        let mut out = vec![0; 8192];
        assert_eq!(b.dequeue_into(&mut out), 8192);
        assert_eq!(&out[..], &data[..8192], "the bytes that fit are intact");
        // Under pressure an emptied ring gives its memory back; a ring with data keeps it.
        assert!(budget.under_pressure());
        b.shrink_if_pressed();
        a.shrink_if_pressed();
        assert_eq!((b.allocated(), a.allocated()), (0, 40_000));
        assert_eq!(budget.used(), 40_000);
        drop(a);
        drop(b);
        assert_eq!(
            (budget.used(), total.used()),
            (0, 0),
            "dropping returns the charge"
        );
    }

    #[test]
    fn below_pressure_an_emptied_ring_keeps_its_memory() {
        let budget = MemBudget::new(1 << 20, None);
        let mut r = RingBuffer::new(1 << 16);
        r.set_budget(budget.clone());
        assert_eq!(r.enqueue(&[7; 5000]), 5000);
        r.discard(5000);
        r.shrink_if_pressed();
        assert_eq!(r.allocated(), 8192, "kept for the next write");
        assert_eq!(budget.used(), 8192);
    }

    #[test]
    fn an_emptied_ring_starts_over_unless_bytes_wait_past_the_readable_part() {
        let mut r = RingBuffer::new(1 << 16);
        assert_eq!(r.enqueue(&[1; 100]), 100);
        r.discard(60);
        assert_eq!(r.start, 60, "still bytes to read");
        r.discard(40);
        assert_eq!(r.start, 0, "emptied: back to the front");
        // Out-of-order bytes 10 past the (empty) readable part keep the start where it is
        // until they are made readable and read.
        assert_eq!(r.enqueue(&[2; 30]), 30);
        assert_eq!(r.write_at(10, b"later"), 5);
        r.discard(30);
        assert_eq!(r.start, 30, "bytes wait past the readable part");
        assert_eq!(r.write_at(0, &[3; 10]), 10);
        r.commit(15);
        let mut out = [0u8; 15];
        assert_eq!(r.peek_into(0, &mut out), 15);
        assert_eq!(&out[10..], b"later", "the waiting bytes kept their place");
        r.discard(15);
        assert_eq!(r.start, 0, "all read: back to the front");
    }

    #[test]
    fn memory_grows_on_demand_and_keeps_every_byte() {
        let mut r = RingBuffer::new(1 << 20);
        assert_eq!(r.allocated(), 0, "nothing until the first write");
        assert_eq!(r.enqueue(b"hello"), 5);
        assert_eq!(r.allocated(), INITIAL);
        // Move the start near the end of the memory, so that the ring wraps.
        r.enqueue(&vec![7u8; INITIAL - 100]);
        r.discard(INITIAL - 200); // 105 readable bytes of 7s, starting at INITIAL - 195
        let (ooo, far) = (INITIAL / 2, INITIAL + 904);
        assert_eq!(r.write_at(ooo, b"ooo"), 3); // out of order, wrapped
        assert_eq!(r.allocated(), INITIAL);
        assert_eq!(r.write_at(far, b"far"), 3); // beyond the memory: it grows
        assert_eq!(r.allocated(), 2 * INITIAL);
        r.commit(far + 3);
        let mut out = vec![0u8; r.len()];
        assert_eq!(r.peek_into(0, &mut out), 105 + far + 3);
        assert!(out[..105].iter().all(|&b| b == 7));
        assert_eq!(&out[105 + ooo..105 + ooo + 3], b"ooo");
        assert_eq!(&out[105 + far..105 + far + 3], b"far");
        // Never beyond the logical capacity.
        let mut small = RingBuffer::new(6000);
        small.enqueue(&vec![1u8; 6000]);
        assert_eq!(small.allocated(), 6000);
        assert_eq!(small.free(), 0);
    }

    #[test]
    fn free_slice_writes_in_place_and_wraps() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.enqueue(b"abcdef"), 6);
        r.discard(4);
        let s = r.free_slice_mut();
        assert_eq!(s.len(), 2, "up to the end of the ring");
        s.copy_from_slice(b"gh");
        r.commit(2);
        let s = r.free_slice_mut();
        assert_eq!(s.len(), 4, "then from the start");
        s[..2].copy_from_slice(b"ij");
        r.commit(2);
        let mut out = [0u8; 6];
        assert_eq!(r.dequeue_into(&mut out), 6);
        assert_eq!(&out, b"efghij");
    }

    #[test]
    fn wraps_and_peeks() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.enqueue(b"abcdef"), 6);
        let mut out = [0; 4];
        assert_eq!(r.dequeue_into(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.enqueue(b"ghijklmn"), 6);
        assert_eq!(r.len(), 8);
        assert_eq!(r.slice(0, 100), b"efgh");
        assert_eq!(r.slice(4, 100), b"ijkl");
        let mut all = [0; 8];
        assert_eq!(r.peek_into(0, &mut all), 8);
        assert_eq!(&all, b"efghijkl");
    }

    #[test]
    fn write_at_then_commit() {
        let mut r = RingBuffer::new(8);
        r.enqueue(b"xxxxxx");
        r.discard(6);
        assert_eq!(r.write_at(3, b"DEF"), 3);
        assert_eq!(r.write_at(0, b"ABC"), 3);
        r.commit(6);
        let mut out = [0; 6];
        r.dequeue_into(&mut out);
        assert_eq!(&out, b"ABCDEF");
        assert_eq!(r.write_at(8, b"z"), 0);
    }
}
