//! Per-thread caches of the blocks a connection allocates when it first moves data: its
//! rings' first memory (`buffer::INITIAL` bytes each way) and its RACK send log; and of
//! those it takes on its first loss or reordering: its SACK scoreboard's and reassembly
//! queue's ranges.
//!
//! With short connections these were allocated and freed once per connection each. The
//! allocator (mimalloc) hands out blocks freed a while ago, out of the cache, and the
//! rings' memory was zero-filled again each time: together about 4% of a client opening
//! 200,000 connections a second. A block given back here is handed to the next connection
//! of the same thread (a core: the stack is per core) last in, first out, so it is still
//! in the cache, and is not filled again: a ring only ever reads what it wrote (a new
//! connection's reads and sends are bounded by what it was given), and the RACK log by
//! its length. At most `KEEP` blocks of each kind are kept per thread; a ring given back
//! under memory pressure is freed instead (`RingBuffer::shrink_if_pressed`).

use std::cell::RefCell;
use std::thread::LocalKey;

/// Blocks of one kind kept per thread, at most.
pub(crate) const KEEP: usize = 256;

/// A thread's cache of one kind of block.
pub(crate) type Cache<B> = RefCell<Vec<B>>;

/// The most recently given back block of `cache`, if any.
#[inline]
pub(crate) fn take<B: 'static>(cache: &'static LocalKey<Cache<B>>) -> Option<B> {
    cache.try_with(|c| c.borrow_mut().pop()).ok().flatten()
}

/// Keeps `block` for the next `take` of this thread, unless `KEEP` are kept already (or
/// the thread is exiting): then it is freed.
#[inline]
pub(crate) fn give<B: 'static>(cache: &'static LocalKey<Cache<B>>, block: B) {
    let _ = cache.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < KEEP {
            c.push(block);
        }
    });
}

/// A fixed-size block a connection keeps out of line and takes only when it first writes
/// to it, from its thread's cache (`cache`), else newly allocated from `EMPTY`.
pub(crate) trait Recycled: Clone + 'static {
    /// What a block not taken yet reads as (and a new one starts as).
    const EMPTY: &'static Self;
    /// This kind's per-thread cache.
    fn cache() -> &'static LocalKey<Cache<Box<Self>>>;
}

/// A block kept out of line (`Recycled`): read as `B::EMPTY` until first written, given
/// back to the thread's cache when released or dropped. The RACK send log and the SACK
/// scoreboard's and reassembly queue's ranges are kept so.
#[derive(Debug, Clone)]
pub(crate) struct OutOfLine<B: Recycled>(Option<Box<B>>);

impl<B: Recycled> OutOfLine<B> {
    pub(crate) const fn new() -> Self {
        OutOfLine(None)
    }

    #[inline]
    pub(crate) fn get(&self) -> &B {
        self.0.as_deref().unwrap_or(B::EMPTY)
    }

    /// The block to write, taken on the first write (only what the owner wrote is ever
    /// read back: a recycled block's old contents are not cleared).
    pub(crate) fn get_mut(&mut self) -> &mut B {
        self.0
            .get_or_insert_with(|| take(B::cache()).unwrap_or_else(|| Box::new(B::EMPTY.clone())))
    }

    /// Whether a block is taken (tests).
    #[cfg(test)]
    pub(crate) fn is_taken(&self) -> bool {
        self.0.is_some()
    }

    /// Gives the block back to the thread's cache now (its owner reads nothing of it any
    /// more: it reads as `EMPTY` again, and the next write takes one anew).
    pub(crate) fn release(&mut self) {
        if let Some(b) = self.0.take() {
            give(B::cache(), b);
        }
    }
}

impl<B: Recycled> Drop for OutOfLine<B> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Blocks of `cache` kept now (tests).
#[cfg(test)]
pub(crate) fn kept<B: 'static>(cache: &'static LocalKey<Cache<B>>) -> usize {
    cache.with(|c| c.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::MemBudget;
    use crate::buffer::{RingBuffer, FIRST, INITIAL};
    use crate::rack::{Rack, LOGS};
    use sluice_wire::tcp::SeqNumber;
    use sluice_wire::Instant;

    /// (Each test runs on a thread of its own: its caches start empty.)
    #[test]
    fn a_rings_first_memory_goes_to_the_next_ring_and_only_its_own_bytes_are_read() {
        let mut a = RingBuffer::new(1 << 16);
        assert_eq!(a.enqueue(&[0xee; 700]), 700);
        let first = a.slice(0, 1).as_ptr();
        drop(a);
        assert_eq!(kept(&FIRST), 1, "given back on drop");
        let mut b = RingBuffer::new(1 << 16);
        assert_eq!(b.enqueue(b"new"), 3);
        assert_eq!(kept(&FIRST), 0, "taken by the next ring");
        assert_eq!(
            b.slice(0, 1).as_ptr(),
            first,
            "the same memory, still in the cache"
        );
        assert_eq!(b.len(), 3);
        let mut out = [0u8; 16];
        assert_eq!(
            b.peek_into(0, &mut out),
            3,
            "what it wrote, nothing of the old bytes"
        );
        assert_eq!(&out[..3], b"new");
        // A ring that grew past its first memory frees it as before.
        let mut big = RingBuffer::new(1 << 16);
        big.enqueue(&vec![1u8; 3 * INITIAL]);
        assert!(big.allocated() > INITIAL);
        drop(big);
        assert_eq!(kept(&FIRST), 0, "only first memories are kept");
        // Emptied and shrunk (a connection entering TIME-WAIT), it gives it back too.
        b.discard(3);
        b.shrink();
        assert_eq!(b.allocated(), 0);
        assert_eq!(kept(&FIRST), 1);
    }

    #[test]
    fn under_memory_pressure_a_ring_frees_its_memory_instead() {
        let budget = MemBudget::new(INITIAL, None);
        let mut a = RingBuffer::new(1 << 16);
        a.set_budget(budget.clone());
        assert_eq!(a.enqueue(b"abc"), 3);
        a.discard(3);
        assert!(budget.under_pressure());
        a.shrink_if_pressed();
        assert_eq!(a.allocated(), 0);
        assert_eq!(budget.used(), 0);
        assert_eq!(kept(&FIRST), 0, "freed, not kept");
    }

    #[test]
    fn at_most_keep_blocks_are_kept() {
        let rings: Vec<RingBuffer> = (0..KEEP + 10)
            .map(|_| {
                let mut r = RingBuffer::new(1 << 16);
                r.enqueue(b"a");
                r
            })
            .collect();
        drop(rings);
        assert_eq!(kept(&FIRST), KEEP);
    }

    /// A scoreboard or reassembly queue that never recorded a range holds none (a TCB
    /// carries only their counts); the first range takes them, an ended connection gives
    /// them back, and the next one reads only what it recorded.
    #[test]
    fn out_of_line_ranges_are_taken_on_first_use_and_go_to_the_next_connection() {
        use crate::assembler::{Assembler, RANGES as ASM_RANGES};
        use crate::sack::{Scoreboard, RANGES as SB_RANGES};
        let s = |n| SeqNumber(n);
        let mut a = Scoreboard::new();
        a.advance(s(100));
        assert_eq!(a.unsacked(s(0), s(100)), 100);
        assert!(a.ranges().is_empty());
        assert_eq!(kept(&SB_RANGES), 0);
        assert_eq!(a.add(s(200), s(300)), 100);
        assert_eq!(a.add(s(400), s(450)), 50);
        drop(a);
        assert_eq!(kept(&SB_RANGES), 1, "given back");
        let mut b = Scoreboard::new();
        assert!(b.ranges().is_empty() && b.highest().is_none());
        assert_eq!(b.add(s(1000), s(1010)), 10);
        assert_eq!(kept(&SB_RANGES), 0, "taken");
        assert_eq!(b.ranges(), &[(s(1000), s(1010))], "none of the old ranges");
        assert_eq!(b.sacked(), 10);

        let mut q = Assembler::new();
        assert_eq!(q.advance(10), 0);
        assert!(q.is_empty() && q.ranges().is_empty());
        assert!(q.add(5, 9, 1000));
        assert!(q.add(20, 30, 1000));
        drop(q);
        assert_eq!(kept(&ASM_RANGES), 1);
        let mut r = Assembler::new();
        assert!(r.add(3, 4, 1000));
        assert_eq!(kept(&ASM_RANGES), 0);
        assert_eq!(r.ranges(), &[(3, 4)]);
        assert_eq!(r.advance(3), 1);
        assert!(r.is_empty());
    }

    #[test]
    fn a_send_log_goes_to_the_next_connection_without_its_entries() {
        let t = |ms| Instant::from_millis(ms);
        let mut a = Rack::new();
        for i in 1..=10u32 {
            a.on_send(SeqNumber(i * 100), t(u64::from(i)));
        }
        assert_eq!(a.sent_at(SeqNumber(450)), Some(t(5)));
        drop(a);
        assert_eq!(kept(&LOGS), 1);
        let mut b = Rack::new();
        assert_eq!(b.sent_at(SeqNumber(450)), None, "nothing sent yet");
        b.on_send(SeqNumber(100), t(50));
        assert_eq!(kept(&LOGS), 1, "the newest entry is inline: no log yet");
        b.on_send(SeqNumber(200), t(51));
        assert_eq!(kept(&LOGS), 0, "taken for the older entry");
        assert_eq!(b.sent_at(SeqNumber(50)), Some(t(50)));
        assert_eq!(b.sent_at(SeqNumber(150)), Some(t(51)));
        assert_eq!(b.sent_at(SeqNumber(450)), None, "the old entries are not its own");
    }
}
