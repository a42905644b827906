//! The receive buffer: frames held by reference (zero-copy receive), then a byte ring.
//!
//! Readable data is the queue of `Frame`s (in-order segment payloads kept in the NIC's own
//! buffers) followed by the ring's readable bytes (small payloads, reassembled out-of-order
//! data, and everything when zero-copy is off). A frame is queued only when the ring holds
//! nothing readable and nothing out of order, so the order is always frames, then ring.
//! Both count against one logical capacity: the window does not care where bytes sit.

use std::collections::VecDeque;

use sluice_buf::Frame;

use crate::buffer::RingBuffer;

pub(crate) struct RecvBuffer {
    frames: VecDeque<Frame>,
    /// Bytes in `frames`.
    frame_bytes: usize,
    ring: RingBuffer,
}

impl core::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("frames", &self.frames.len())
            .field("frame_bytes", &self.frame_bytes)
            .field("ring", &self.ring)
            .finish()
    }
}

impl RecvBuffer {
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            frames: VecDeque::new(),
            frame_bytes: 0,
            ring: RingBuffer::new(capacity),
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Bytes of memory held: the ring's, and the frames' payload.
    pub fn allocated(&self) -> usize {
        self.ring.allocated() + self.frame_bytes
    }

    /// Readable bytes.
    pub fn len(&self) -> usize {
        self.frame_bytes + self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that can still be received.
    pub fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Frames held.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Whether the ring holds no readable bytes (a frame may be queued after the frames).
    pub fn ring_is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Queues an in-order payload by reference. The caller makes sure it fits, and that
    /// nothing out of order sits in the ring.
    pub fn push_frame(&mut self, frame: Frame) {
        debug_assert!(self.ring.is_empty() && frame.len() <= self.free());
        self.frame_bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// The first held frame, whole.
    pub fn pop_frame(&mut self) -> Option<Frame> {
        let f = self.frames.pop_front()?;
        self.frame_bytes -= f.len();
        Some(f)
    }

    /// Puts back the rest of a frame taken by `pop_frame`.
    pub fn push_front_frame(&mut self, frame: Frame) {
        self.frame_bytes += frame.len();
        self.frames.push_front(frame);
    }

    /// Writes `data` at `offset` bytes past the readable part, without making it readable;
    /// returns how many bytes fit.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        self.ring.write_at(offset, &data[..n])
    }

    /// Makes `n` bytes written by `write_at(0, ..)` readable.
    pub fn commit(&mut self, n: usize) {
        self.ring.commit(n);
    }

    /// Drops `n` readable bytes from the front.
    pub fn discard(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            if n < front.len() {
                front.advance(n);
                self.frame_bytes -= n;
                return;
            }
            n -= front.len();
            self.pop_frame();
        }
        self.ring.discard(n);
    }

    /// Copies readable bytes from `offset` into `out` without removing them.
    pub fn peek_into(&self, mut offset: usize, out: &mut [u8]) -> usize {
        let mut done = 0;
        for f in &self.frames {
            if done == out.len() {
                return done;
            }
            if offset >= f.len() {
                offset -= f.len();
                continue;
            }
            let n = (f.len() - offset).min(out.len() - done);
            out[done..done + n].copy_from_slice(&f[offset..offset + n]);
            done += n;
            offset = 0;
        }
        done + self.ring.peek_into(offset, &mut out[done..])
    }

    /// Copies readable bytes into `out` and removes them; returns the count.
    pub fn dequeue_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(0, out);
        self.discard(n);
        n
    }

    /// The contiguous readable bytes at the front: the first frame, or the ring's first
    /// part.
    pub fn front_slice(&self) -> &[u8] {
        match self.frames.front() {
            Some(f) => f,
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
    fn pop_frame_hands_over_whole_frames() {
        let mut r = RecvBuffer::new(100);
        r.push_frame(Frame::from_vec(b"hello".to_vec()));
        r.discard(1);
        let f = r.pop_frame().unwrap();
        assert_eq!(&f[..], b"ello");
        assert!(r.pop_frame().is_none());
        assert_eq!(r.len(), 0);
    }
}
