//! Out-of-order reassembly bookkeeping with bounded memory.
//!
//! The bytes themselves live in the receive ring past its readable part; this only
//! records which ranges (as offsets from RCV.NXT) are present. The number of ranges
//! and the number of bytes held are both bounded; a segment that would exceed either
//! bound is refused, and the caller counts the drop.

/// Most disjoint out-of-order ranges held at once.
pub(crate) const MAX_RANGES: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct Assembler {
    /// Sorted, disjoint, non-adjacent `[start, end)` offsets from RCV.NXT.
    ranges: [(usize, usize); MAX_RANGES],
    count: usize,
    bytes: usize,
}

impl Assembler {
    pub fn new() -> Self {
        Assembler {
            ranges: [(0, 0); MAX_RANGES],
            count: 0,
            bytes: 0,
        }
    }

    /// Bytes currently held out of order.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
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
        if start >= end {
            return true;
        }
        let (mut lo, mut hi) = (start, end);
        let mut merged_bytes = 0;
        let mut first = self.count; // index of the first range touching [start, end)
        let mut last = 0; // one past the last touching range
        for (i, &(s, e)) in self.ranges[..self.count].iter().enumerate() {
            if s <= end && e >= start {
                if first == self.count {
                    first = i;
                }
                last = i + 1;
                lo = lo.min(s);
                hi = hi.max(e);
                merged_bytes += e - s;
            }
        }
        let new_bytes = self.bytes - merged_bytes + (hi - lo);
        let touched = if first == self.count { 0 } else { last - first };
        let new_count = self.count - touched + 1;
        if new_bytes > max_bytes || new_count > MAX_RANGES {
            return false;
        }
        if touched == 0 {
            let pos = self.ranges[..self.count]
                .iter()
                .position(|&(s, _)| s > end)
                .unwrap_or(self.count);
            self.ranges.copy_within(pos..self.count, pos + 1);
            self.ranges[pos] = (lo, hi);
        } else {
            self.ranges[first] = (lo, hi);
            self.ranges.copy_within(last..self.count, first + 1);
        }
        self.count = new_count;
        self.bytes = new_bytes;
        true
    }

    /// In-order data `[0, n)` arrived. Returns how many further bytes past `n` are now
    /// contiguous; all offsets are rebased to the new RCV.NXT (`n` plus that count).
    pub fn advance(&mut self, n: usize) -> usize {
        let mut end = n;
        let mut drop = 0;
        while drop < self.count && self.ranges[drop].0 <= end {
            end = end.max(self.ranges[drop].1);
            drop += 1;
        }
        self.ranges.copy_within(drop..self.count, 0);
        self.count -= drop;
        self.bytes = 0;
        for r in &mut self.ranges[..self.count] {
            r.0 -= end;
            r.1 -= end;
            self.bytes += r.1 - r.0;
        }
        end - n
    }

    /// The held range containing offset `at`, if any.
    pub fn range_containing(&self, at: usize) -> Option<(usize, usize)> {
        self.ranges[..self.count]
            .iter()
            .copied()
            .find(|&(s, e)| s <= at && at < e)
    }

    #[cfg(test)]
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges[..self.count]
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
