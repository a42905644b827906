//! Out-of-order reassembly bookkeeping with bounded memory.
//!
//! The bytes themselves live in the receive ring past its readable part; this only
//! records which ranges (as offsets from RCV.NXT) are present. The number of ranges
//! and the number of bytes held are both bounded. When a new segment would exceed a bound,
//! the ranges farthest from RCV.NXT are given up to make room for it if it lies below
//! them (as Linux prunes its out-of-order queue from the top): the data that fills the
//! holes next to RCV.NXT is what lets the connection advance, and the sender retransmits
//! what was given up (RFC 2018 allows this reneging; the caller must stop SACKing it).
//! Otherwise the segment is refused and the caller counts the drop.

use std::thread::LocalKey;

use crate::recycle::{Cache, OutOfLine, Recycled};

/// Most disjoint out-of-order ranges held at once.
pub(crate) const MAX_RANGES: usize = 16;

/// The ranges live out of line, allocated when the first one is recorded: the counts sit
/// in the TCB's hot front, which a segment in order reads, and the 256 bytes of ranges,
/// which only a connection that received out of order needs, are not part of every TCB.
#[derive(Debug, Clone)]
pub(crate) struct Assembler {
    /// (Narrow: the counts share the TCB's hot front. At most `MAX_RANGES` ranges; bytes
    /// held within the receive window, below 2^30.)
    bytes: u32,
    count: u16,
    /// Ranges the last `add` gave up.
    evicted: u16,
    /// Sorted, disjoint, non-adjacent `[start, end)` offsets from RCV.NXT.
    ranges: OutOfLine<Ranges>,
}

type Ranges = [(usize, usize); MAX_RANGES];

thread_local! {
    /// Ranges of connections that ended (`crate::recycle`).
    pub(crate) static RANGES: Cache<Box<Ranges>> = const { Cache::new(Vec::new()) };
}

impl Recycled for Ranges {
    const EMPTY: &'static Ranges = &[(0, 0); MAX_RANGES];
    fn cache() -> &'static LocalKey<Cache<Box<Ranges>>> {
        &RANGES
    }
}

impl Assembler {
    pub fn new() -> Self {
        Assembler {
            ranges: OutOfLine::new(),
            bytes: 0,
            count: 0,
            evicted: 0,
        }
    }

    /// Bytes currently held out of order.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn clear(&mut self) {
        self.count = 0;
        self.bytes = 0;
    }

    /// Records `[start, end)` (offsets from RCV.NXT, `start > 0`). Returns false, changing
    /// nothing, if holding it would exceed `max_bytes` or `MAX_RANGES`.
    pub fn add(&mut self, start: usize, end: usize, max_bytes: usize) -> bool {
        self.evicted = 0;
        if start >= end {
            return true;
        }
        loop {
            match self.try_add(start, end, max_bytes) {
                Some(ok) => return ok,
                None => {
                    // Full (and not empty): give up the farthest range if the new one lies
                    // below it.
                    let (s, e) = self.ranges.get()[self.count as usize - 1];
                    if s <= end {
                        return false;
                    }
                    self.count -= 1;
                    self.bytes -= (e - s) as u32;
                    self.evicted += 1;
                }
            }
        }
    }

    /// Adds `[start, end)` if both bounds allow: `Some(true)`; `None` when a bound is in
    /// the way (and the table is unchanged).
    fn try_add(&mut self, start: usize, end: usize, max_bytes: usize) -> Option<bool> {
        let (mut lo, mut hi) = (start, end);
        let mut merged_bytes = 0;
        let count = self.count as usize;
        let mut first = count; // index of the first range touching [start, end)
        let mut last = 0; // one past the last touching range
        for (i, &(s, e)) in self.ranges.get()[..count].iter().enumerate() {
            if s <= end && e >= start {
                if first == count {
                    first = i;
                }
                last = i + 1;
                lo = lo.min(s);
                hi = hi.max(e);
                merged_bytes += e - s;
            }
        }
        let new_bytes = self.bytes as usize - merged_bytes + (hi - lo);
        let touched = if first == count { 0 } else { last - first };
        let new_count = count - touched + 1;
        // (Bytes held stay within a `u32`, whatever `max_bytes` says.)
        if new_bytes > max_bytes.min(u32::MAX as usize) || new_count > MAX_RANGES {
            if count == 0 || (hi - lo) > max_bytes.min(u32::MAX as usize) {
                return Some(false);
            }
            return None;
        }
        if touched == 0 {
            let pos = self.ranges.get()[..count]
                .iter()
                .position(|&(s, _)| s > end)
                .unwrap_or(count);
            let r = self.ranges.get_mut();
            r.copy_within(pos..count, pos + 1);
            r[pos] = (lo, hi);
        } else {
            let r = self.ranges.get_mut();
            r[first] = (lo, hi);
            r.copy_within(last..count, first + 1);
        }
        self.count = new_count as u16;
        self.bytes = new_bytes as u32;
        Some(true)
    }

    /// Ranges the last `add` gave up to make room for a lower one.
    pub fn evicted(&self) -> u64 {
        u64::from(self.evicted)
    }

    pub fn advance(&mut self, n: usize) -> usize {
        let count = self.count as usize;
        if count == 0 {
            self.bytes = 0;
            return 0;
        }
        let r = self.ranges.get_mut();
        let mut end = n;
        let mut drop = 0;
        while drop < count && r[drop].0 <= end {
            end = end.max(r[drop].1);
            drop += 1;
        }
        r.copy_within(drop..count, 0);
        let left = count - drop;
        let mut bytes = 0;
        for x in &mut r[..left] {
            x.0 -= end;
            x.1 -= end;
            bytes += x.1 - x.0;
        }
        self.count = left as u16;
        self.bytes = bytes as u32;
        end - n
    }

    /// The held range containing offset `at`, if any.
    /// The first held bytes within `[start, end)`: what a segment repeats of the data
    /// held out of order (for its D-SACK block).
    pub fn overlap(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        self.ranges.get()[..self.count as usize]
            .iter()
            .map(|&(s, e)| (s.max(start), e.min(end)))
            .filter(|&(s, e)| s < e)
            .min()
    }

    pub fn range_containing(&self, at: usize) -> Option<(usize, usize)> {
        self.ranges.get()[..self.count as usize]
            .iter()
            .copied()
            .find(|&(s, e)| s <= at && at < e)
    }

    #[cfg(test)]
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges.get()[..self.count as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merge_and_advance() {
        let mut a = Assembler::new();
        assert!(a.add(10, 20, 1000));
        assert!(a.add(30, 40, 1000));
        assert!(a.add(20, 30, 1000));
        assert_eq!(a.ranges(), &[(10, 40)]);
        assert!(a.add(50, 60, 1000));
        assert_eq!(a.advance(5), 0);
        assert_eq!(a.ranges(), &[(5, 35), (45, 55)]);
        assert_eq!(a.advance(5), 30);
        assert_eq!(a.ranges(), &[(10, 20)]);
        assert_eq!(a.bytes(), 10);
    }

    #[test]
    fn bounds() {
        let mut a = Assembler::new();
        assert!(a.add(10, 20, 15));
        assert!(!a.add(30, 40, 15));
        assert!(a.add(15, 25, 15));
        let mut b = Assembler::new();
        for i in 0..MAX_RANGES {
            assert!(b.add(10 * i + 1, 10 * i + 2, 10_000));
        }
        assert!(!b.add(1000, 1001, 10_000));
        assert!(b.add(1, 3, 10_000));
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(segs in proptest::collection::vec((1usize..200, 1usize..30), 1..40)) {
            let mut a = Assembler::new();
            let mut map = [false; 256];
            for (s, l) in segs {
                let e = (s + l).min(256);
                if a.add(s, e, usize::MAX) {
                    for b in &mut map[s..e] { *b = true; }
                }
                let count = map.iter().filter(|b| **b).count();
                prop_assert_eq!(a.bytes(), count);
            }
            let extra = a.advance(1);
            let expect = map[1..].iter().take_while(|b| **b).count();
            prop_assert_eq!(extra, expect);
        }
    }
}

#[cfg(test)]
mod eviction_tests {
    use super::*;

    #[test]
    fn a_full_table_gives_up_its_farthest_ranges_for_a_lower_one() {
        let mut a = Assembler::new();
        for i in 0..MAX_RANGES {
            assert!(a.add(1000 + i * 100, 1000 + i * 100 + 10, usize::MAX));
        }
        // Above every range: refused.
        assert!(!a.add(100_000, 100_010, usize::MAX));
        assert_eq!(a.evicted(), 0);
        // Next to RCV.NXT: the farthest range makes room.
        assert!(a.add(10, 20, usize::MAX));
        assert_eq!(a.evicted(), 1);
        assert_eq!(a.range_containing(10), Some((10, 20)));
        assert_eq!(
            a.range_containing(1000 + (MAX_RANGES - 1) * 100),
            None,
            "the farthest is gone"
        );
        // The byte bound works the same way.
        let mut b = Assembler::new();
        assert!(b.add(1000, 1500, 1000));
        assert!(b.add(2000, 2500, 1000));
        assert!(b.add(100, 400, 1000), "the range at 2000 is given up");
        assert_eq!(b.range_containing(2000), None);
        assert!(!b.add(5000, 5600, 1000), "above the rest and too big: refused");
        assert!(!b.add(0, 2000, 1000), "larger than the bound: refused");
    }
}
