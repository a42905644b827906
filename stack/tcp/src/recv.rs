//! The receive buffer: frames held by reference (zero-copy receive), then a byte ring.
//!
//! Readable data is `Frame`s (in-order segment payloads kept in the NIC's own buffers) and
//! the ring's readable bytes (small payloads, reassembled out-of-order data, and everything
//! when zero-copy is off), interleaved in order. A frame is queued only when the ring holds
//! nothing out of order; readable data is a queue of frames and of spans of the ring, in
//! stream order.
//! Both count against one logical capacity: the window does not care where bytes sit.

use std::collections::VecDeque;

use sluice_buf::Frame;

use crate::buffer::RingBuffer;

pub(crate) struct RecvBuffer {
    /// The readable data in order: frames, and spans of the ring's readable bytes. Empty
    /// (or not allocated, on a connection that never held a frame) while no frame is held:
    /// then the ring's readable bytes are all there is, and the copying path costs no
    /// bookkeeping. Boxed: an idle connection pays one pointer for it.
    entries: Option<Box<VecDeque<Entry>>>,
    /// Bytes in frames, and how many frames.
    frame_bytes: u32,
    frame_count: u32,
    ring: RingBuffer,
}

/// A piece of the readable data.
enum Entry {
    /// A payload kept by reference.
    Frame(Frame),
    /// This many bytes from the front of the ring (in order with the other spans).
    Ring(usize),
}

impl core::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("frames", &self.frame_count)
            .field("frame_bytes", &self.frame_bytes)
            .field("ring", &self.ring)
            .finish()
    }
}

impl RecvBuffer {
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            entries: None,
            frame_bytes: 0,
            frame_count: 0,
            ring: RingBuffer::new(capacity),
        }
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Gives the ring's memory back if it holds nothing (nothing out of order either: the
    /// caller knows).
    pub fn shrink(&mut self) {
        self.ring.shrink();
    }

    /// Charges the ring's memory to `budget` (`crate::budget`).
    pub fn set_budget(&mut self, budget: std::sync::Arc<crate::MemBudget>) {
        self.ring.set_budget(budget);
    }

    /// Makes room in memory for `n` bytes at `offset` past the readable part; false when
    /// the budget refuses it.
    pub fn reserve_at(&mut self, offset: usize, n: usize) -> bool {
        self.ring.reserve(self.ring.len() + offset + n)
    }

    /// With the budget under pressure and nothing in the ring, its memory goes back. The
    /// caller makes sure nothing out of order waits in it.
    pub fn shrink_if_pressed(&mut self) {
        self.ring.shrink_if_pressed();
    }

    /// Bytes of memory held: the ring's, and the frames' payload.
    /// Starts fetching the memory the next segment and read touch.
    #[inline]
    pub fn prefetch(&self) {
        self.ring.prefetch();
    }

    pub fn allocated(&self) -> usize {
        self.ring.allocated() + self.frame_bytes as usize
    }

    /// Readable bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.frame_bytes as usize + self.ring.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that can still be received.
    #[inline]
    pub fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Frames held.
    #[inline]
    pub fn frames(&self) -> usize {
        self.frame_count as usize
    }

    /// The pieces in order, when any are tracked.
    #[inline]
    fn tracked(&self) -> Option<&VecDeque<Entry>> {
        self.entries.as_deref().filter(|e| !e.is_empty())
    }

    fn entries_mut(&mut self) -> &mut VecDeque<Entry> {
        self.entries.get_or_insert_with(Default::default)
    }

    /// Queues an in-order payload by reference. The caller makes sure it fits, and that
    /// nothing out of order waits in the ring (it is positioned after the readable end).
    #[inline]
    pub fn push_frame(&mut self, frame: Frame) {
        debug_assert!(frame.len() <= self.free());
        let ring_len = self.ring.len();
        self.frame_bytes += frame.len() as u32;
        self.frame_count += 1;
        let entries = self.entries_mut();
        if entries.is_empty() && ring_len > 0 {
            // The ring's bytes so far come first: track them from now on.
            entries.push_back(Entry::Ring(ring_len));
        }
        entries.push_back(Entry::Frame(frame));
    }

    /// The first piece, if it is a frame, whole.
    #[inline]
    pub fn pop_frame(&mut self) -> Option<Frame> {
        let entries = self.entries.as_mut()?;
        if !matches!(entries.front(), Some(Entry::Frame(_))) {
            return None;
        }
        let Some(Entry::Frame(f)) = entries.pop_front() else {
            return None;
        };
        self.frame_bytes -= f.len() as u32;
        self.frame_count -= 1;
        Some(f)
    }

    /// Puts back the rest of a frame taken by `pop_frame`.
    pub fn push_front_frame(&mut self, frame: Frame) {
        self.frame_bytes += frame.len() as u32;
        self.frame_count += 1;
        self.entries_mut().push_front(Entry::Frame(frame));
    }

    /// The length of the first piece (a frame, or a span of copied bytes).
    #[inline]
    pub fn front_len(&self) -> usize {
        match self.tracked().and_then(|e| e.front()) {
            Some(Entry::Frame(f)) => f.len(),
            Some(Entry::Ring(n)) => *n,
            None => self.ring.len(),
        }
    }

    /// Writes `data` at `offset` bytes past the readable part, without making it readable;
    /// returns how many bytes fit.
    #[inline]
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        self.ring.write_at(offset, &data[..n])
    }

    /// Makes `n` bytes written by `write_at(0, ..)` readable.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        let before = self.ring.len();
        self.ring.commit(n);
        let n = self.ring.len() - before;
        if n == 0 || self.tracked().is_none() {
            return;
        }
        let entries = self.entries_mut();
        match entries.back_mut() {
            Some(Entry::Ring(k)) => *k += n,
            _ => entries.push_back(Entry::Ring(n)),
        }
    }

    /// Drops `n` readable bytes from the front.
    #[inline]
    pub fn discard(&mut self, mut n: usize) {
        let RecvBuffer {
            entries,
            frame_bytes,
            frame_count,
            ring,
        } = self;
        let Some(entries) = entries.as_deref_mut().filter(|e| !e.is_empty()) else {
            ring.discard(n);
            return;
        };
        while n > 0 {
            let Some(front) = entries.front_mut() else {
                break;
            };
            match front {
                Entry::Frame(f) if n < f.len() => {
                    f.advance(n);
                    *frame_bytes -= n as u32;
                    return;
                }
                Entry::Frame(f) => {
                    n -= f.len();
                    *frame_bytes -= f.len() as u32;
                    *frame_count -= 1;
                }
                Entry::Ring(k) if n < *k => {
                    *k -= n;
                    ring.discard(n);
                    return;
                }
                Entry::Ring(k) => {
                    n -= *k;
                    ring.discard(*k);
                }
            }
            entries.pop_front();
        }
        if *frame_count == 0 && !entries.is_empty() {
            // Only ring spans left: they need no tracking.
            entries.clear();
        }
    }

    /// Copies readable bytes from `offset` into `out` without removing them.
    pub fn peek_into(&self, mut offset: usize, out: &mut [u8]) -> usize {
        let Some(entries) = self.tracked() else {
            return self.ring.peek_into(offset, out);
        };
        let mut done = 0;
        // Where the current ring span starts in the ring.
        let mut ring_at = 0;
        for e in entries {
            if done == out.len() {
                break;
            }
            let len = match e {
                Entry::Frame(f) => f.len(),
                Entry::Ring(k) => *k,
            };
            if offset >= len {
                offset -= len;
                if let Entry::Ring(k) = e {
                    ring_at += k;
                }
                continue;
            }
            let n = (len - offset).min(out.len() - done);
            match e {
                Entry::Frame(f) => out[done..done + n].copy_from_slice(&f[offset..offset + n]),
                Entry::Ring(k) => {
                    self.ring.peek_into(ring_at + offset, &mut out[done..done + n]);
                    ring_at += k;
                }
            }
            done += n;
            offset = 0;
        }
        done
    }

    /// Copies readable bytes into `out` and removes them; returns the count.
    pub fn dequeue_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(0, out);
        self.discard(n);
        n
    }

    /// The contiguous readable bytes at the front: the first frame, or the ring's first
    /// part (up to the end of its span).
    #[inline]
    pub fn front_slice(&self) -> &[u8] {
        match self.tracked().and_then(|e| e.front()) {
            Some(Entry::Frame(f)) => f,
            Some(Entry::Ring(k)) => self.ring.slice(0, *k),
            None => self.ring.slice(0, usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_before_the_ring_and_share_its_capacity() {
        let mut r = RecvBuffer::new(16);
        r.push_frame(Frame::from_vec(b"abc".to_vec()));
        r.push_frame(Frame::from_vec(b"defg".to_vec()));
        assert_eq!((r.len(), r.free(), r.frames()), (7, 9, 2));
        // Only 9 bytes fit after the frames.
        assert_eq!(r.write_at(0, b"hijklmnopqrs"), 9);
        r.commit(9);
        assert_eq!(r.free(), 0);
        assert_eq!(r.front_slice(), b"abc");
        let mut out = [0u8; 5];
        assert_eq!(r.peek_into(2, &mut out), 5);
        assert_eq!(&out, b"cdefg");
        r.discard(4);
        assert_eq!(r.front_slice(), b"efg");
        let mut all = [0u8; 32];
        let n = r.dequeue_into(&mut all);
        assert_eq!(&all[..n], b"efghijklmnop");
        assert!(r.is_empty());
        assert_eq!(r.frames(), 0);
    }

    #[test]
    fn frames_and_ring_spans_interleave() {
        let mut r = RecvBuffer::new(100);
        assert_eq!(r.write_at(0, b"ab"), 2);
        r.commit(2);
        r.push_frame(Frame::from_vec(b"cde".to_vec()));
        assert_eq!(r.write_at(0, b"fg"), 2);
        r.commit(2);
        // Out of order, past the readable end: not readable yet.
        assert_eq!(r.write_at(1, b"i"), 1);
        r.push_frame(Frame::from_vec(b"h".to_vec()));
        assert_eq!(r.len(), 8);
        let mut out = [0u8; 8];
        assert_eq!(r.peek_into(0, &mut out), 8);
        assert_eq!(&out, b"abcdefgh");
        assert_eq!(r.front_slice(), b"ab");
        assert!(r.pop_frame().is_none(), "the front is copied bytes");
        r.discard(3);
        assert_eq!(r.front_slice(), b"de");
        r.discard(2);
        assert_eq!(r.front_slice(), b"fg");
        assert_eq!(r.front_len(), 2);
        let mut two = [0u8; 2];
        assert_eq!(r.dequeue_into(&mut two), 2);
        assert_eq!(&r.pop_frame().unwrap()[..], b"h");
        assert_eq!((r.len(), r.frames()), (0, 0));
    }

    #[test]
    fn pop_frame_hands_over_whole_frames() {
        let mut r = RecvBuffer::new(100);
        r.push_frame(Frame::from_vec(b"hello".to_vec()));
        r.discard(1);
        let f = r.pop_frame().unwrap();
        assert_eq!(&f[..], b"ello");
        assert!(r.pop_frame().is_none());
        assert_eq!(r.len(), 0);
    }

    use proptest::prelude::*;

    /// What a test does to the buffer.
    #[derive(Clone, Debug)]
    enum Op {
        /// In-order bytes kept by reference.
        Frame(usize),
        /// In-order bytes copied into the ring.
        Copy(usize),
        /// Read and remove this many bytes.
        Read(usize),
        /// Take the next frame (or the next copied run) whole.
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..200).prop_map(Op::Frame),
            (1usize..200).prop_map(Op::Copy),
            (0usize..300).prop_map(Op::Read),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// Any mix of frames, copies and reads gives the byte stream in order, with the
        /// capacity respected and the counts right.
        #[test]
        fn matches_a_byte_queue(ops in proptest::collection::vec(op(), 1..80)) {
            let mut r = RecvBuffer::new(1000);
            let mut model: std::collections::VecDeque<u8> = Default::default();
            let mut next = 0u8;
            for op in ops {
                match op {
                    Op::Frame(n) | Op::Copy(n) if n > r.free() => {}
                    Op::Frame(n) => {
                        let bytes: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        next = next.wrapping_add(n as u8);
                        model.extend(&bytes);
                        r.push_frame(Frame::from_vec(bytes));
                    }
                    Op::Copy(n) => {
                        let bytes: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        next = next.wrapping_add(n as u8);
                        model.extend(&bytes);
                        prop_assert_eq!(r.write_at(0, &bytes), n);
                        r.commit(n);
                    }
                    Op::Read(n) => {
                        let mut out = vec![0u8; n];
                        let got = r.dequeue_into(&mut out);
                        let want: Vec<u8> = model.drain(..n.min(model.len())).collect();
                        prop_assert_eq!(&out[..got], &want[..]);
                    }
                    Op::Pop => {
                        let front = r.front_slice().to_vec();
                        let n = r.front_len();
                        prop_assert_eq!(front.len() <= n, true);
                        if let Some(f) = r.pop_frame() {
                            let want: Vec<u8> = model.drain(..f.len()).collect();
                            prop_assert_eq!(&f[..], &want[..]);
                        } else {
                            let mut out = vec![0u8; n];
                            let got = r.dequeue_into(&mut out);
                            let want: Vec<u8> = model.drain(..got).collect();
                            prop_assert_eq!(&out[..got], &want[..]);
                        }
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.free(), 1000 - model.len());
                let mut all = vec![0u8; model.len()];
                prop_assert_eq!(r.peek_into(0, &mut all), model.len());
                prop_assert_eq!(&all[..], &model.iter().copied().collect::<Vec<_>>()[..]);
            }
        }
    }
}
