//! `OutQueue`: the bytes a session has queued to send, as a list of chunks (owned bytes,
//! shared bytes, or a generated pattern), so that a fixed body or a large `/bytes/N`
//! response costs no copy and no allocation until it is written into the stack's buffer.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

/// The period of the filler pattern: byte `i` of a generated body is `b'a' + i % 26`.
const PERIOD: usize = 26;
/// A slab of the pattern, a multiple of the period long.
const PATTERN_LEN: usize = PERIOD * 2520;
static PATTERN: [u8; PATTERN_LEN] = {
    let mut p = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        p[i] = b'a' + (i % PERIOD) as u8;
        i += 1;
    }
    p
};

/// Byte `i` of the filler pattern (what `Chunk::Pattern` produces).
pub fn pattern_byte(i: u64) -> u8 {
    b'a' + (i % PERIOD as u64) as u8
}

/// `n` bytes of the filler pattern starting at offset 0.
pub fn pattern_vec(n: usize) -> Vec<u8> {
    (0..n as u64).map(pattern_byte).collect()
}

/// One piece of output.
#[derive(Debug)]
pub enum Chunk {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// This many bytes of the filler pattern.
    Pattern(u64),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Owned(v) => v.len() as u64,
            Chunk::Shared(s) => s.len() as u64,
            Chunk::Pattern(n) => *n,
        }
    }
    /// The contiguous bytes from offset `at`.
    fn slice(&self, at: u64) -> &[u8] {
        match self {
            Chunk::Owned(v) => &v[at as usize..],
            Chunk::Shared(s) => &s[at as usize..],
            Chunk::Pattern(n) => {
                let start = (at % PERIOD as u64) as usize;
                let len = (n - at).min((PATTERN_LEN - start) as u64) as usize;
                &PATTERN[start..start + len]
            }
        }
    }
}

/// Queued output: chunks, the offset already sent from the first one, and the total.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    head: u64,
    len: u64,
    spare: Vec<u8>,
}

impl OutQueue {
    pub fn new() -> OutQueue {
        OutQueue::default()
    }
    /// Bytes queued and not yet sent.
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Starts fetching what the next push and write touch: the front of the chunk list
    /// and the spare buffer the next copy goes to.
    #[inline]
    pub fn prefetch(&self) {
        sluice_buf::prefetch(self.chunks.as_slices().0.as_ptr().cast(), 1);
        sluice_buf::prefetch(self.spare.as_ptr(), 1);
    }
    /// Appends a copy of `data` (to the last owned chunk when there is one).
    pub fn push_bytes(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len() as u64;
        if let Some(Chunk::Owned(v)) = self.chunks.back_mut() {
            v.extend_from_slice(data);
            return;
        }
        let mut v = std::mem::take(&mut self.spare);
        v.extend_from_slice(data);
        self.chunks.push_back(Chunk::Owned(v));
    }
    pub fn push_vec(&mut self, v: Vec<u8>) {
        if v.is_empty() {
            return;
        }
        self.len += v.len() as u64;
        self.chunks.push_back(Chunk::Owned(v));
    }
    pub fn push_shared(&mut self, s: Arc<[u8]>) {
        if s.is_empty() {
            return;
        }
        self.len += s.len() as u64;
        self.chunks.push_back(Chunk::Shared(s));
    }
    /// Appends `n` bytes of the filler pattern.
    pub fn push_pattern(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.len += n;
        self.chunks.push_back(Chunk::Pattern(n));
    }

    /// The first contiguous run of unsent bytes.
    pub fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| c.slice(self.head))
    }

    /// Copies unsent bytes into `buf` without consuming them; returns how many.
    pub fn copy_to(&self, buf: &mut [u8]) -> usize {
        self.copy_range_to(0, buf)
    }

    /// Copies unsent bytes from `skip` bytes in into `buf`, without consuming them;
    /// returns how many.
    pub fn copy_range_to(&self, skip: usize, buf: &mut [u8]) -> usize {
        let mut n = 0;
        let mut skip = skip as u64;
        let mut at = self.head;
        for c in &self.chunks {
            let left = c.len() - at;
            if skip >= left {
                skip -= left;
                at = 0;
                continue;
            }
            at += skip;
            skip = 0;
            while at < c.len() && n < buf.len() {
                let s = c.slice(at);
                let k = s.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&s[..k]);
                n += k;
                at += k as u64;
            }
            if n == buf.len() {
                break;
            }
            at = 0;
        }
        n
    }

    /// Fills `out` with slices of the unsent bytes (for `writev`); returns how many.
    pub fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut at = self.head;
        'chunks: for c in &self.chunks {
            while at < c.len() {
                if n == out.len() {
                    break 'chunks;
                }
                let s = c.slice(at);
                out[n] = IoSlice::new(s);
                n += 1;
                at += s.len() as u64;
            }
            at = 0;
        }
        n
    }

    /// Marks `n` bytes as sent.
    pub fn consume(&mut self, n: usize) {
        let mut n = (n as u64).min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(c) = self.chunks.front() else { break };
            let left = c.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            if let Some(Chunk::Owned(mut v)) = self.chunks.pop_front() {
                if self.spare.capacity() == 0 && v.capacity() <= 1 << 20 {
                    v.clear();
                    self.spare = v;
                }
            }
        }
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        let n = self.len as usize;
        self.consume(n);
        self.chunks.clear();
        self.len = 0;
        self.head = 0;
    }

    /// Emptied, for another connection's use, if it holds little memory (at most
    /// `KEEP_BYTES` of spare buffer, a short chunk list): its allocations are then in the
    /// cache still, where a new queue's would be blocks the allocator freed long ago.
    pub fn recycled(mut self) -> Option<OutQueue> {
        const KEEP_BYTES: usize = 4096;
        self.clear();
        (self.spare.capacity() <= KEEP_BYTES && self.chunks.capacity() <= 16).then_some(self)
    }

    /// Everything queued, as one vector (tests, small outputs).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len as usize];
        let n = self.copy_to(&mut v);
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_queue_is_recycled_empty_and_a_large_one_is_not() {
        let mut q = OutQueue::new();
        q.push_bytes(b"request one");
        q.push_pattern(10);
        q.consume(11); // the owned chunk's buffer becomes the spare
        let spare = q.spare.as_ptr();
        let mut q = q.recycled().expect("small: kept");
        assert!(
            q.is_empty() && q.to_vec().is_empty(),
            "nothing of the old connection"
        );
        q.push_bytes(b"next");
        assert_eq!(q.to_vec(), b"next");
        assert_eq!(
            q.chunks.front().map(|c| c.slice(0).as_ptr()),
            Some(spare),
            "its buffer reused"
        );
        let mut big = OutQueue::new();
        big.push_bytes(&vec![1u8; 64 * 1024]);
        big.consume(64 * 1024);
        assert!(big.recycled().is_none(), "a 64 KiB spare buffer is freed");
    }

    #[test]
    fn copy_range_skips_across_chunks() {
        let mut q = OutQueue::new();
        q.push_vec(b"abc".to_vec());
        q.push_shared(Arc::from(&b"defg"[..]));
        q.push_bytes(b"hi");
        q.consume(1);
        let all = q.to_vec();
        for skip in 0..=all.len() {
            for len in 0..4 {
                let mut buf = vec![0u8; len];
                let n = q.copy_range_to(skip, &mut buf);
                let want = &all[skip.min(all.len())..(skip + len).min(all.len())];
                assert_eq!(&buf[..n], want, "skip {skip} len {len}");
            }
        }
    }

    #[test]
    fn chunks_copy_and_consume_in_order() {
        let mut q = OutQueue::new();
        q.push_bytes(b"head ");
        q.push_shared(Arc::from(&b"shared "[..]));
        q.push_pattern(60);
        q.push_bytes(b" tail");
        let all = q.to_vec();
        assert_eq!(all.len() as u64, q.len());
        assert!(all.starts_with(b"head shared abcdefghijklmnopqrstuvwxyzabcd"));
        assert!(all.ends_with(b"efgh tail"));
        let mut got = Vec::new();
        while !q.is_empty() {
            let mut buf = [0u8; 7];
            let n = q.copy_to(&mut buf);
            got.extend_from_slice(&buf[..n]);
            q.consume(n);
        }
        assert_eq!(got, all);
    }

    #[test]
    fn io_slices_cover_everything_and_large_patterns_wrap() {
        let mut q = OutQueue::new();
        q.push_bytes(b"x");
        q.push_pattern(PATTERN_LEN as u64 * 2 + 5);
        q.consume(1 + PATTERN_LEN as u64 as usize - 3);
        let mut sl = [IoSlice::new(&[]); 8];
        let n = q.io_slices(&mut sl);
        let total: usize = sl[..n].iter().map(|s| s.len()).sum();
        assert_eq!(total as u64, q.len());
        let v = q.to_vec();
        let offset = PATTERN_LEN as u64 - 3;
        for (i, b) in v.iter().enumerate() {
            assert_eq!(*b, pattern_byte(offset + i as u64));
        }
    }
}
