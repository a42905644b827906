//! SACK bookkeeping (RFC 2018, RFC 2883, RFC 6675): the sender's scoreboard of ranges
//! the peer reported, with the queries RFC 6675 needs (IsLost, pipe, NextSeg), and the
//! receiver's list of blocks to report, most recent first.
//!
//! Both are fixed-size arrays: the receiver's inside the TCB, the scoreboard's ranges out
//! of line, taken once per connection, on its first SACKed range, from a per-thread cache
//! (`crate::recycle`). Nothing is allocated per segment.

use sluice_wire::tcp::{SackBlocks, SeqNumber};

use std::thread::LocalKey;

use crate::recycle::{Cache, OutOfLine, Recycled};

/// Most disjoint SACKed ranges the sender remembers. When a new range does not fit, the
/// highest one is forgotten (its data then counts as not SACKed: at worst it is
/// retransmitted needlessly).
pub(crate) const SCOREBOARD_MAX: usize = 32;

/// DupThresh of RFC 6675 / RFC 5681.
pub(crate) const DUP_THRESH: usize = 3;

/// The sender's SACK scoreboard: sorted, disjoint, non-adjacent `[left, right)` ranges,
/// all above SND.UNA.
///
/// The ranges live out of line, allocated when the first one is recorded: the counts (24
/// bytes) sit in the TCB's hot front, which an ACK reads while nothing is SACKed, and the
/// 256 bytes of ranges, which only a connection that saw loss or reordering needs, are
/// not part of every TCB.
#[derive(Debug, Clone)]
pub(crate) struct Scoreboard {
    /// (`u32`s: the scoreboard's counts share the TCB's hot front; at most
    /// `SCOREBOARD_MAX` ranges, and SACKed bytes within a window, below 2^30.)
    count: u32,
    sacked: u32,
    ranges: OutOfLine<Ranges>,
}

type Ranges = [(SeqNumber, SeqNumber); SCOREBOARD_MAX];

thread_local! {
    /// Ranges of connections that ended (`crate::recycle`).
    pub(crate) static RANGES: Cache<Box<Ranges>> = const { Cache::new(Vec::new()) };
}

impl Recycled for Ranges {
    const EMPTY: &'static Ranges = &[(SeqNumber(0), SeqNumber(0)); SCOREBOARD_MAX];
    fn cache() -> &'static LocalKey<Cache<Box<Ranges>>> {
        &RANGES
    }
}

impl Scoreboard {
    pub fn new() -> Self {
        Scoreboard {
            ranges: OutOfLine::new(),
            count: 0,
            sacked: 0,
        }
    }

    /// Stores the counts (each fits: `count` ≤ `SCOREBOARD_MAX`, `sacked` within a window).
    #[inline]
    fn store(&mut self, count: usize, sacked: usize) {
        self.count = count as u32;
        self.sacked = sacked as u32;
    }

    pub fn clear(&mut self) {
        self.count = 0;
        self.sacked = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes SACKed above SND.UNA.
    pub fn sacked(&self) -> usize {
        self.sacked as usize
    }

    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges.get()[..self.count as usize]
    }

    /// One past the highest SACKed byte.
    pub fn highest(&self) -> Option<SeqNumber> {
        self.ranges().last().map(|r| r.1)
    }

    /// Records `[left, right)` (validated by the caller: non-empty, above SND.UNA, not
    /// beyond SND.MAX). Returns the number of bytes newly SACKed.
    pub fn add(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
        if left >= right {
            return 0;
        }
        let (mut lo, mut hi) = (left, right);
        let mut merged = 0;
        let count = self.count as usize;
        let mut first = count;
        let mut last = 0;
        for (i, &(s, e)) in self.ranges().iter().enumerate() {
            if s <= right && e >= left {
                if first == count {
                    first = i;
                }
                last = i + 1;
                lo = lo.min(s);
                hi = hi.max(e);
                merged += e - s;
            }
        }
        let mut sacked = self.sacked as usize;
        let mut count = count;
        if first == count {
            // A new disjoint range.
            let pos = self
                .ranges()
                .iter()
                .position(|&(s, _)| s > right)
                .unwrap_or(count);
            if count == SCOREBOARD_MAX {
                if pos == count {
                    return 0; // above everything held: forget it
                }
                // Forget the highest range to make room.
                let (s, e) = self.ranges.get()[count - 1];
                sacked -= e - s;
                count -= 1;
            }
            let r = self.ranges.get_mut();
            r.copy_within(pos..count, pos + 1);
            r[pos] = (lo, hi);
            count += 1;
        } else {
            let r = self.ranges.get_mut();
            r[first] = (lo, hi);
            r.copy_within(last..count, first + 1);
            count -= last - first - 1;
            sacked -= merged;
        }
        sacked += hi - lo;
        self.store(count, sacked);
        (hi - lo) - merged
    }

    /// The cumulative ACK moved to `una`: forget what it covers.
    pub fn advance(&mut self, una: SeqNumber) {
        let count = self.count as usize;
        if count == 0 {
            return;
        }
        let mut sacked = self.sacked as usize;
        let r = self.ranges.get_mut();
        let mut drop = 0;
        while drop < count {
            let (s, e) = r[drop];
            if e <= una {
                sacked -= e - s;
                drop += 1;
            } else {
                if s < una {
                    sacked -= una - s;
                    r[drop].0 = una;
                }
                break;
            }
        }
        r.copy_within(drop..count, 0);
        self.store(count - drop, sacked);
    }

    /// Bytes in `[a, b)` that are not SACKed.
    pub fn unsacked(&self, a: SeqNumber, b: SeqNumber) -> usize {
        if b <= a {
            return 0;
        }
        let mut n = b - a;
        for &(s, e) in self.ranges() {
            let lo = s.max(a);
            let hi = e.min(b);
            if lo < hi {
                n -= hi - lo;
            }
        }
        n
    }

    /// RFC 6675 IsLost as a boundary: every unSACKed byte below the returned sequence
    /// number has DupThresh SACKed ranges, or more than (DupThresh - 1) * MSS SACKed
    /// bytes, above it. `None` when nothing is lost by that rule.
    pub fn lost_boundary(&self, mss: usize) -> Option<SeqNumber> {
        let mut bytes = 0;
        for (n, &(s, e)) in self.ranges().iter().rev().enumerate() {
            bytes += e - s;
            if n + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                return Some(s);
            }
        }
        None
    }

    /// The first unSACKed byte at or after `from` and below `limit`, and how many
    /// unSACKed bytes follow it contiguously (up to `limit`).
    pub fn next_hole(&self, from: SeqNumber, limit: SeqNumber) -> Option<(SeqNumber, usize)> {
        let mut at = from;
        for &(s, e) in self.ranges() {
            if e <= at {
                continue;
            }
            if s <= at {
                at = e; // inside a SACKed range: skip it
                continue;
            }
            // [at, s) is a hole.
            let end = s.min(limit);
            return (at < end).then(|| (at, end - at));
        }
        (at < limit).then(|| (at, limit - at))
    }

    /// The SACKed range containing `seq`, if any.
    pub fn range_containing(&self, seq: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        self.ranges().iter().copied().find(|&(s, e)| s <= seq && seq < e)
    }
}

/// The receiver's SACK blocks (RFC 2018 section 4): the block holding the most recently
/// received segment first, then the blocks reported before, as long as they still exist.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SackReport {
    /// Blocks last reported, most recent first.
    pub recent: SackBlocks,
    /// A D-SACK block (RFC 2883) to put first in the next ACK.
    pub dsack: Option<(SeqNumber, SeqNumber)>,
}

impl SackReport {
    /// A segment arrived out of order and is now part of `[left, right)` (the merged
    /// out-of-order range): it goes first; older blocks follow unless covered by it.
    pub fn on_ooo(&mut self, left: SeqNumber, right: SeqNumber) {
        let old = self.recent;
        self.recent.clear();
        self.recent.push(left, right);
        for &(l, r) in old.as_slice() {
            if l >= left && r <= right {
                continue;
            }
            if !self.recent.push(l, r) {
                break;
            }
        }
    }

    /// Keeps only blocks still above RCV.NXT, each replaced by the current extent of the
    /// out-of-order range it belongs to (`extent(l)` gives it, or `None` if gone).
    pub fn refresh(
        &mut self,
        rcv_nxt: SeqNumber,
        extent: impl Fn(SeqNumber) -> Option<(SeqNumber, SeqNumber)>,
    ) {
        let old = self.recent;
        self.recent.clear();
        for &(l, _) in old.as_slice() {
            if l <= rcv_nxt {
                continue;
            }
            if let Some((s, e)) = extent(l) {
                if !self.recent.as_slice().iter().any(|&(a, _)| a == s) {
                    self.recent.push(s, e);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.recent.clear();
        self.dsack = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    #[test]
    fn add_merge_and_advance() {
        let mut sb = Scoreboard::new();
        assert_eq!(sb.add(s(300), s(400)), 100);
        assert_eq!(sb.add(s(100), s(200)), 100);
        assert_eq!(sb.add(s(150), s(320)), 100);
        assert_eq!(sb.ranges(), &[(s(100), s(400))]);
        assert_eq!(sb.add(s(500), s(600)), 100);
        assert_eq!(sb.sacked(), 400);
        sb.advance(s(150));
        assert_eq!(sb.ranges(), &[(s(150), s(400)), (s(500), s(600))]);
        assert_eq!(sb.sacked(), 350);
        sb.advance(s(450));
        assert_eq!(sb.ranges(), &[(s(500), s(600))]);
        assert_eq!(sb.unsacked(s(450), s(700)), 150);
        assert_eq!(sb.next_hole(s(450), s(700)), Some((s(450), 50)));
        assert_eq!(sb.next_hole(s(500), s(700)), Some((s(600), 100)));
        assert_eq!(sb.next_hole(s(600), s(600)), None);
    }

    #[test]
    fn is_lost_by_dupthresh() {
        let mut sb = Scoreboard::new();
        // Holes at 0..100; SACKed 100..200 (one MSS of 100): not lost yet.
        sb.add(s(100), s(200));
        assert_eq!(sb.lost_boundary(100), None);
        sb.add(s(200), s(300));
        assert_eq!(sb.lost_boundary(100), None, "exactly 2 * MSS is not more than");
        sb.add(s(300), s(301));
        assert_eq!(sb.lost_boundary(100), Some(s(100)));
        // Three discontiguous ranges also make what lies below them lost.
        let mut sb = Scoreboard::new();
        for i in 0..3 {
            sb.add(s(1000 + 20 * i), s(1010 + 20 * i));
        }
        assert_eq!(sb.lost_boundary(1000), Some(s(1000)));
    }

    #[test]
    fn bounded_and_drops_the_highest() {
        let mut sb = Scoreboard::new();
        for i in 0..SCOREBOARD_MAX as u32 {
            sb.add(s(10 * i + 1), s(10 * i + 2));
        }
        assert_eq!(sb.add(s(100_000), s(100_001)), 0);
        assert_eq!(sb.add(s(0), s(1)), 1, "adjacent: merges");
        assert_eq!(sb.ranges().len(), SCOREBOARD_MAX);
        assert_eq!(sb.add(s(5), s(6)), 1);
        assert_eq!(sb.ranges().len(), SCOREBOARD_MAX);
        assert_eq!(sb.sacked(), SCOREBOARD_MAX + 1);
    }

    #[test]
    fn report_most_recent_first() {
        let mut r = SackReport::default();
        r.on_ooo(s(100), s(200));
        r.on_ooo(s(300), s(400));
        r.on_ooo(s(500), s(600));
        assert_eq!(
            r.recent.as_slice(),
            &[(s(500), s(600)), (s(300), s(400)), (s(100), s(200))]
        );
        // A segment joining two blocks.
        r.on_ooo(s(300), s(600));
        assert_eq!(r.recent.as_slice(), &[(s(300), s(600)), (s(100), s(200))]);
        r.refresh(s(250), |l| (l >= s(300)).then_some((s(300), s(600))));
        assert_eq!(r.recent.as_slice(), &[(s(300), s(600))]);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(segs in proptest::collection::vec((0u32..400, 1u32..40), 1..50), una in 0u32..400) {
            let mut sb = Scoreboard::new();
            let mut map = [false; 512];
            for (a, l) in segs {
                let b = (a + l).min(512);
                let new = sb.add(s(a), s(b));
                let before = map.iter().filter(|x| **x).count();
                for x in &mut map[a as usize..b as usize] { *x = true; }
                let after = map.iter().filter(|x| **x).count();
                prop_assert_eq!(new, after - before);
            }
            sb.advance(s(una));
            for x in &mut map[..una as usize] { *x = false; }
            prop_assert_eq!(sb.sacked(), map.iter().filter(|x| **x).count());
            prop_assert_eq!(sb.unsacked(s(una), s(512)), map[una as usize..].iter().filter(|x| !**x).count());
        }
    }
}
