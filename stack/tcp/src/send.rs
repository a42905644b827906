//! The send buffer: a byte ring, then frames queued by reference (zero-copy send).
//!
//! The bytes to send (and to retransmit until acknowledged) are the ring's, followed by the
//! application's `Frame`s. Segments refer to a frame's bytes for every transmission, so a
//! frame is never copied by the stack when the device can send it by reference. Once a
//! frame is queued, copied writes go into heap frames of their own (in order after it, sized
//! to what was written) until the frames are acknowledged, after which the ring takes them
//! again. Segments do not span frames (mixing small copied writes with frames sends a
//! segment per write), unless the interface asks for it (`Tcb::set_span_frames`: a device
//! that cuts large segments itself and chains frames by reference).

use std::collections::VecDeque;
use std::ops::Range;

use sluice_buf::Frame;

use crate::buffer::RingBuffer;

pub(crate) struct SendBuffer {
    ring: RingBuffer,
    /// Frames with the stream position of their first byte. Boxed and allocated with the
    /// first frame: an idle connection pays one pointer for it.
    frames: Option<Box<VecDeque<(u64, Frame)>>>,
    frame_bytes: u32,
    /// Stream position of the first byte held (bytes discarded so far).
    head: u64,
}

impl core::fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendBuffer")
            .field("ring", &self.ring)
            .field("frames", &self.frames())
            .field("frame_bytes", &self.frame_bytes)
            .finish()
    }
}

/// Largest heap frame a copied write makes while frames are queued.
const COPY_FRAME_MAX: usize = 16 * 1024;

impl SendBuffer {
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            ring: RingBuffer::new(capacity),
            frames: None,
            frame_bytes: 0,
            head: 0,
        }
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Gives the ring's memory back if it holds nothing.
    pub fn shrink(&mut self) {
        self.ring.shrink();
    }

    /// Charges the ring's memory to `budget` (`crate::budget`).
    pub fn set_budget(&mut self, budget: std::sync::Arc<crate::MemBudget>) {
        self.ring.set_budget(budget);
    }

    /// Bytes of memory held: the ring's and the frames' bytes.
    /// Starts fetching the memory the next acknowledgement and write touch.
    #[inline]
    pub fn prefetch(&self) {
        self.ring.prefetch();
    }

    pub fn allocated(&self) -> usize {
        self.ring.allocated() + self.frame_bytes as usize
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.ring.len() + self.frame_bytes as usize
    }

    #[inline]
    pub fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Frames queued.
    #[inline]
    pub fn frames(&self) -> usize {
        self.frames.as_ref().map_or(0, |f| f.len())
    }

    /// Whether no frame is queued (copied writes then go to the ring).
    #[inline]
    fn no_frames(&self) -> bool {
        self.frames.as_ref().is_none_or(|f| f.is_empty())
    }

    /// Queues as much of `frame` as fits, by reference; returns the rest.
    #[inline]
    pub fn push_frame(&mut self, mut frame: Frame) -> Option<Frame> {
        let room = self.free();
        if frame.is_empty() {
            return None;
        }
        if room == 0 {
            return Some(frame);
        }
        let rest = if frame.len() > room {
            let head = frame.split_to(room);
            Some(core::mem::replace(&mut frame, head))
        } else {
            None
        };
        let at = self.head + self.len() as u64;
        self.frame_bytes += frame.len() as u32;
        self.frames
            .get_or_insert_with(Default::default)
            .push_back((at, frame));
        rest
    }

    /// Copies as much of `data` as fits; returns the number of bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        if self.no_frames() {
            return self.ring.enqueue(data);
        }
        let n = data.len().min(self.free());
        if n > 0 {
            self.push_frame(Frame::copy_from_slice(&data[..n]));
        }
        n
    }

    /// Writes in place: `f` fills free room and returns how many bytes it wrote.
    pub fn write_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        if self.no_frames() {
            let room = self.ring.free_slice_mut();
            let n = f(room).min(room.len());
            self.ring.commit(n);
            return n;
        }
        let mut v = vec![0u8; self.free().min(COPY_FRAME_MAX)];
        let n = f(&mut v).min(v.len());
        if n > 0 {
            // Only what was written stays allocated until it is acknowledged.
            v.truncate(n);
            v.shrink_to_fit();
            self.push_frame(Frame::from_vec(v));
        }
        n
    }

    /// Drops `n` bytes from the front (acknowledged).
    #[inline]
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len());
        let from_ring = n.min(self.ring.len());
        self.ring.discard(from_ring);
        self.ring.shrink_if_pressed();
        self.head += n as u64;
        let mut left = n - from_ring;
        let Some(frames) = self.frames.as_deref_mut() else {
            return;
        };
        while left > 0 {
            let Some((start, f)) = frames.front_mut() else {
                break;
            };
            if left < f.len() {
                f.advance(left);
                *start += left as u64;
                self.frame_bytes -= left as u32;
                break;
            }
            left -= f.len();
            self.frame_bytes -= f.len() as u32;
            frames.pop_front();
        }
    }

    /// The frame holding the byte `off` bytes in (past the ring), and where in it.
    fn locate(&self, off: usize) -> Option<(&Frame, usize)> {
        debug_assert!(off >= self.ring.len());
        let pos = self.head + off as u64;
        let frames = self.frames.as_deref()?;
        let i = frames.partition_point(|(s, f)| s + f.len() as u64 <= pos);
        let (s, f) = frames.get(i)?;
        Some((f, (pos - s) as usize))
    }

    /// The contiguous bytes starting `off` bytes in, at most `max` of them: within the
    /// ring or within one frame.
    #[inline]
    pub fn slice(&self, off: usize, max: usize) -> &[u8] {
        if off < self.ring.len() {
            return self.ring.slice(off, max);
        }
        match self.locate(off) {
            Some((f, at)) => {
                let n = max.min(f.len() - at);
                &f[at..at + n]
            }
            None => &[],
        }
    }

    /// How many of the `max` bytes from `off` one segment may carry when segments may span
    /// frames (a device that cuts large segments and chains frames by reference): in the
    /// ring, the contiguous ones; past it, any number of frames.
    pub fn span(&self, off: usize, max: usize) -> usize {
        if off < self.ring.len() {
            self.ring.slice(off, max).len()
        } else {
            max.min(self.len().saturating_sub(off))
        }
    }

    /// Copies the bytes from `off` into `dst`, across the ring and frames; returns how many.
    pub fn copy_out(&self, mut off: usize, dst: &mut [u8]) -> usize {
        let mut n = 0;
        while n < dst.len() {
            let s = self.slice(off, dst.len() - n);
            if s.is_empty() {
                break;
            }
            dst[n..n + s.len()].copy_from_slice(s);
            n += s.len();
            off += s.len();
        }
        n
    }

    /// The frame holding the `len` bytes `off` bytes in, with their range in it, when they
    /// are one frame's (so that a device can send them by reference).
    pub fn frame_at(&self, off: usize, len: usize) -> Option<(&Frame, Range<usize>)> {
        if off < self.ring.len() || len == 0 {
            return None;
        }
        let (f, at) = self.locate(off)?;
        (at + len <= f.len()).then(|| (f, at..at + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &SendBuffer) -> Vec<u8> {
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            let s = b.slice(off, usize::MAX);
            if s.is_empty() {
                return out;
            }
            out.extend_from_slice(s);
            off += s.len();
        }
    }

    #[test]
    fn spans_and_copies_across_frames() {
        let mut b = SendBuffer::new(64);
        assert_eq!(b.enqueue(b"ring-"), 5);
        assert!(b.push_frame(Frame::copy_from_slice(b"frame1-")).is_none());
        assert!(b.push_frame(Frame::copy_from_slice(b"frame2")).is_none());
        // In the ring: contiguous only; past it, across frames.
        assert_eq!(b.span(0, 100), 5);
        assert_eq!(b.span(5, 100), 13);
        assert_eq!(b.span(8, 6), 6);
        assert_eq!(b.span(18, 6), 0);
        let mut out = [0u8; 18];
        assert_eq!(b.copy_out(0, &mut out), 18);
        assert_eq!(&out, b"ring-frame1-frame2");
        let mut part = [0u8; 7];
        assert_eq!(b.copy_out(9, &mut part), 7);
        assert_eq!(&part, b"e1-fram");
    }

    #[test]
    fn ring_then_frames_in_order() {
        let mut b = SendBuffer::new(64);
        assert_eq!(b.enqueue(b"ring-"), 5);
        assert!(b.push_frame(Frame::copy_from_slice(b"frame1-")).is_none());
        // Copied writes after a frame become frames too, in order.
        assert_eq!(b.enqueue(b"copy-"), 5);
        assert_eq!(
            b.write_with(|room| {
                room[..3].copy_from_slice(b"inp");
                3
            }),
            3
        );
        assert_eq!(all(&b), b"ring-frame1-copy-inp");
        assert_eq!(b.len(), 20);
        assert_eq!(b.frames(), 3);
        assert_eq!(b.slice(3, 100), b"g-");
        assert_eq!(b.slice(6, 3), b"ram");
        let (f, r) = b.frame_at(5, 7).unwrap();
        assert_eq!(&f[r], b"frame1-");
        assert!(b.frame_at(3, 4).is_none(), "ring bytes are not a frame");
        assert!(b.frame_at(10, 4).is_none(), "spans two frames");
        // Acknowledge across the ring and into the first frame.
        b.discard(8);
        assert_eq!(all(&b), b"me1-copy-inp");
        assert_eq!(
            b.frame_at(0, 4).map(|(f, r)| f[r].to_vec()),
            Some(b"me1-".to_vec())
        );
        b.discard(12);
        assert_eq!(b.len(), 0);
        assert_eq!(b.frames(), 0);
        // Back to the ring.
        assert_eq!(b.enqueue(b"again"), 5);
        assert_eq!(b.frames(), 0);
        assert_eq!(all(&b), b"again");
    }

    #[test]
    fn frames_fill_up_to_the_capacity_and_the_rest_comes_back() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.enqueue(b"abcd"), 4);
        let rest = b.push_frame(Frame::copy_from_slice(b"efghijkl")).unwrap();
        assert_eq!(&rest[..], b"kl");
        assert_eq!(b.free(), 0);
        assert_eq!(b.enqueue(b"x"), 0);
        let back = b.push_frame(rest).unwrap();
        assert_eq!(&back[..], b"kl");
        assert_eq!(all(&b), b"abcdefghij");
    }

    #[test]
    fn slices_keep_the_frames_memory() {
        let mut b = SendBuffer::new(100);
        let f = Frame::copy_from_slice(&[9; 40]);
        let p = f.as_ptr();
        b.push_frame(f);
        assert_eq!(b.slice(10, 100).as_ptr(), p.wrapping_add(10), "no copy");
    }

    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Copy(usize),
        Frame(usize),
        Ack(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..300).prop_map(Op::Copy),
            (1usize..300).prop_map(Op::Frame),
            (0usize..400).prop_map(Op::Ack),
        ]
    }

    proptest! {
        /// Copies and frames in any order, acknowledged in any pieces: the bytes to send
        /// are the stream in order, and every frame lookup agrees with them.
        #[test]
        fn matches_a_byte_queue(ops in proptest::collection::vec(op(), 1..60)) {
            let mut b = SendBuffer::new(1000);
            let mut model: std::collections::VecDeque<u8> = Default::default();
            // The stream's byte at position p is p % 251.
            let mut produced = 0usize;
            let bytes = |from: usize, n: usize| -> Vec<u8> { (from..from + n).map(|p| (p % 251) as u8).collect() };
            for op in ops {
                match op {
                    Op::Copy(n) => {
                        let v = bytes(produced, n);
                        let took = b.enqueue(&v);
                        prop_assert_eq!(took, n.min(1000 - model.len()));
                        model.extend(&v[..took]);
                        produced += took;
                    }
                    Op::Frame(n) => {
                        let v = bytes(produced, n);
                        let rest = b.push_frame(Frame::from_vec(v.clone()));
                        let took = n - rest.map_or(0, |r| r.len());
                        prop_assert_eq!(took, n.min(1000 - model.len()));
                        model.extend(&v[..took]);
                        produced += took;
                    }
                    Op::Ack(n) => {
                        let n = n.min(model.len());
                        b.discard(n);
                        model.drain(..n);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                let want: Vec<u8> = model.iter().copied().collect();
                prop_assert_eq!(all(&b), want.clone());
                for off in (0..want.len()).step_by(37) {
                    if let Some((f, r)) = b.frame_at(off, 10.min(want.len() - off)) {
                        prop_assert_eq!(&f[r], &want[off..off + 10.min(want.len() - off)]);
                    }
                }
            }
        }
    }
}
