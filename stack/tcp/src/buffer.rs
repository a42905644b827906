//! A fixed-capacity byte ring, allocated once per connection.
//!
//! Used for both directions. The receive side also writes out-of-order data past the
//! readable part (`write_at`) and makes it readable later (`commit`).

/// A byte ring buffer of fixed capacity.
pub(crate) struct RingBuffer {
    buf: Box<[u8]>,
    /// Index of the first readable byte.
    start: usize,
    /// Number of readable bytes.
    len: usize,
}

impl core::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .finish()
    }
}

impl RingBuffer {
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be enqueued.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    fn index(&self, offset: usize) -> usize {
        let cap = self.capacity();
        let i = self.start + offset;
        if i >= cap {
            i - cap
        } else {
            i
        }
    }

    /// Copies as much of `data` as fits; returns the number of bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.commit(n);
        n
    }

    /// Writes `data` at `offset` bytes past the readable part, without making it readable.
    /// Returns how many bytes fit.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        let mut done = 0;
        while done < n {
            let at = self.index(self.len + offset + done);
            let chunk = (n - done).min(self.capacity() - at);
            self.buf[at..at + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
        n
    }

    /// Makes `n` bytes written by `write_at(0, ..)` readable.
    pub fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.free());
        self.len += n.min(self.free());
    }

    /// The contiguous free bytes right after the readable part (for writing in place);
    /// `commit` makes what was written readable.
    pub fn free_slice_mut(&mut self) -> &mut [u8] {
        if self.free() == 0 {
            return &mut [];
        }
        let at = self.index(self.len);
        let n = self.free().min(self.capacity() - at);
        &mut self.buf[at..at + n]
    }

    /// Drops `n` readable bytes from the front.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start = self.index(n);
        self.len -= n;
        // `start` is not reset when empty: bytes written past the readable part
        // (out-of-order data) are positioned relative to it.
    }

    /// Copies readable bytes into `out` and removes them; returns the count.
    pub fn dequeue_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(0, out);
        self.discard(n);
        n
    }

    /// Copies readable bytes from `offset` into `out` without removing them.
    pub fn peek_into(&self, offset: usize, out: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = out.len().min(self.len - offset);
        let mut done = 0;
        while done < n {
            let s = self.slice(offset + done, n - done);
            out[done..done + s.len()].copy_from_slice(s);
            done += s.len();
        }
        n
    }

    /// The contiguous readable bytes starting `offset` bytes in, at most `max` of them.
    pub fn slice(&self, offset: usize, max: usize) -> &[u8] {
        if offset >= self.len {
            return &[];
        }
        let at = self.index(offset);
        let n = max.min(self.len - offset).min(self.capacity() - at);
        &self.buf[at..at + n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
