//! The in-memory device pair: two `MemDevice`s joined by a `MemLink` that carries frames
//! with latency, an optional rate, and seeded impairments (loss, reordering, duplication,
//! corruption, outage windows). Time is the caller's: frames are delivered when `rx_burst`
//! is called with a `now` at or after their arrival time.
//!
//! Buffers come from a `MemPool` that counts what is outstanding, so tests can assert that
//! every buffer came back.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::impair::{Impairments, Lane, LinkStats};
use sluice_buf::{Frame, FrameVtable};

use crate::{Device, DeviceCaps, Instant, PacketBuf};

/// Headroom reserved in front of every buffer, as an mbuf has (RTE_PKTMBUF_HEADROOM).
pub const HEADROOM: usize = 128;
/// Room for one frame after the headroom (a 1500-byte MTU frame fits).
pub const DATA_ROOM: usize = 2048;

struct PoolInner {
    free: RefCell<Vec<Box<[u8]>>>,
    outstanding: Cell<usize>,
    capacity: usize,
}

/// A bounded pool of frame buffers. Cloning shares the pool.
#[derive(Clone)]
pub struct MemPool(Rc<PoolInner>);

impl MemPool {
    /// A pool of `capacity` buffers, allocated up front.
    pub fn new(capacity: usize) -> MemPool {
        let free = (0..capacity)
            .map(|_| vec![0u8; HEADROOM + DATA_ROOM].into_boxed_slice())
            .collect();
        MemPool(Rc::new(PoolInner {
            free: RefCell::new(free),
            outstanding: Cell::new(0),
            capacity,
        }))
    }

    /// An empty buffer with `HEADROOM` in front, or `None` when all are in use.
    pub fn alloc(&self) -> Option<MemBuf> {
        let mem = self.0.free.borrow_mut().pop()?;
        self.0.outstanding.set(self.0.outstanding.get() + 1);
        Some(MemBuf {
            mem: Some(mem),
            start: HEADROOM,
            end: HEADROOM,
            pool: self.clone(),
            rss: None,
        })
    }

    /// Buffers currently handed out.
    pub fn outstanding(&self) -> usize {
        self.0.outstanding.get()
    }

    pub fn capacity(&self) -> usize {
        self.0.capacity
    }
}

/// A frame buffer from a `MemPool`; returns itself to the pool on drop.
pub struct MemBuf {
    mem: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    pool: MemPool,
    /// The hash a NIC would have put in the mbuf (`MemDevice::set_rx_hash`).
    rss: Option<u32>,
}

impl MemBuf {
    fn mem(&self) -> &[u8] {
        self.mem.as_deref().expect("buffer present until drop")
    }
    fn mem_mut(&mut self) -> &mut [u8] {
        self.mem.as_deref_mut().expect("buffer present until drop")
    }
}

impl Drop for MemBuf {
    fn drop(&mut self) {
        if let Some(mem) = self.mem.take() {
            self.pool.0.free.borrow_mut().push(mem);
            self.pool.0.outstanding.set(self.pool.0.outstanding.get() - 1);
        }
    }
}

impl std::fmt::Debug for MemBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemBuf({} bytes)", self.end - self.start)
    }
}

impl PacketBuf for MemBuf {
    fn data(&self) -> &[u8] {
        &self.mem()[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.start, self.end);
        &mut self.mem_mut()[s..e]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        let s = self.start;
        Some(&mut self.mem_mut()[s..s + n])
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.end + n > self.mem().len() {
            return None;
        }
        let e = self.end;
        self.end += n;
        Some(&mut self.mem_mut()[e..e + n])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }

    fn rss_hash(&self) -> Option<u32> {
        self.rss
    }

    const FRAMES: bool = true;

    /// Shares the buffer: it goes back to the pool (and `outstanding` drops) when the
    /// last frame referring to it is dropped. The simulator's frames cost one small
    /// allocation each (the reference count); DPDK's mbufs have theirs built in.
    fn into_frame(self) -> Result<Frame, MemBuf> {
        let data = self.data();
        let (ptr, len) = (data.as_ptr().cast_mut(), data.len());
        let token = Rc::into_raw(Rc::new(self)).cast_mut().cast::<()>();
        // SAFETY: the boxed bytes of the MemBuf do not move while the Rc lives, and are
        // not written through a shared MemBuf; MEM_FRAME manages the Rc's count.
        Ok(unsafe {
            Frame::from_raw_parts(
                NonNull::new(ptr).unwrap_or(NonNull::dangling()),
                len,
                token,
                &MEM_FRAME,
            )
        })
    }
}

unsafe fn mem_frame_clone(token: *mut ()) -> *mut () {
    // SAFETY: `token` is a live `Rc<MemBuf>` from `into_frame`.
    unsafe { Rc::increment_strong_count(token.cast::<MemBuf>()) };
    token
}

unsafe fn mem_frame_drop(token: *mut ()) {
    // SAFETY: `token` is one strong reference of an `Rc<MemBuf>` from `into_frame`.
    drop(unsafe { Rc::from_raw(token.cast::<MemBuf>()) });
}

static MEM_FRAME: FrameVtable = FrameVtable {
    clone: mem_frame_clone,
    drop: mem_frame_drop,
};

struct LinkInner {
    dirs: [Lane<MemBuf>; 2],
    rng: ChaCha8Rng,
    pool: MemPool,
}

/// A point-to-point link between two `MemDevice`s. Side 0 sends on direction 0 (0 -> 1).
#[derive(Clone)]
pub struct MemLink(Rc<RefCell<LinkInner>>);

impl MemLink {
    /// Two devices joined by a link whose directions have the given impairments; all
    /// randomness comes from `seed`. Both share one pool of `pool_size` buffers.
    pub fn pair(
        a_to_b: Impairments,
        b_to_a: Impairments,
        seed: u64,
        pool_size: usize,
    ) -> (MemDevice, MemDevice, MemLink) {
        let pool = MemPool::new(pool_size);
        let dir = Lane::new;
        let link = MemLink(Rc::new(RefCell::new(LinkInner {
            dirs: [dir(a_to_b), dir(b_to_a)],
            rng: ChaCha8Rng::seed_from_u64(seed),
            pool: pool.clone(),
        })));
        let caps = DeviceCaps::default();
        let a = MemDevice {
            link: link.clone(),
            side: 0,
            mac: [0x02, 0, 0, 0, 0, 1],
            caps,
            pool: pool.clone(),
            rx_hash: None,
        };
        let b = MemDevice {
            link: link.clone(),
            side: 1,
            mac: [0x02, 0, 0, 0, 0, 2],
            caps,
            pool,
            rx_hash: None,
        };
        (a, b, link)
    }

    /// Counters of direction `dir` (0: from side 0 to side 1).
    pub fn stats(&self, dir: usize) -> LinkStats {
        self.0.borrow().dirs[dir].stats()
    }

    /// Replaces the impairments of direction `dir` from now on.
    pub fn set_impairments(&self, dir: usize, imp: Impairments) {
        self.0.borrow_mut().dirs[dir].set_impairments(imp);
    }

    /// Frames in flight in both directions.
    pub fn in_flight(&self) -> usize {
        let l = self.0.borrow();
        l.dirs[0].in_flight() + l.dirs[1].in_flight()
    }

    /// The pool both devices allocate from.
    pub fn pool(&self) -> MemPool {
        self.0.borrow().pool.clone()
    }
}

/// One end of a `MemLink`.
pub struct MemDevice {
    link: MemLink,
    side: usize,
    mac: [u8; 6],
    caps: DeviceCaps,
    pool: MemPool,
    /// Hashes received frames as a NIC's RSS would (tests of the NIC-hash paths).
    rx_hash: Option<Box<dyn Fn(&[u8]) -> Option<u32>>>,
}

impl MemDevice {
    /// Makes the device hash each received frame as a NIC's RSS does, with `hash` (which
    /// sees the Ethernet frame and returns `None` for frames the NIC would not hash).
    pub fn set_rx_hash(&mut self, hash: Box<dyn Fn(&[u8]) -> Option<u32>>) {
        self.rx_hash = Some(hash);
    }
    pub fn set_mac(&mut self, mac: [u8; 6]) {
        self.mac = mac;
    }
    pub fn set_caps(&mut self, caps: DeviceCaps) {
        self.caps = caps;
    }
    pub fn pool(&self) -> &MemPool {
        &self.pool
    }
}

impl Device for MemDevice {
    type Buf = MemBuf;

    fn caps(&self) -> DeviceCaps {
        self.caps
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<MemBuf>, max: usize) -> usize {
        // Side 0 receives what travels on direction 1.
        let first = out.len();
        let n = self.link.0.borrow_mut().dirs[1 - self.side].pop_due(now, out, max);
        if let Some(hash) = &self.rx_hash {
            for b in &mut out[first..] {
                b.rss = hash(b.data());
            }
        }
        n
    }
    fn alloc(&mut self) -> Option<MemBuf> {
        self.pool.alloc()
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<MemBuf>) -> usize {
        let mut link = self.link.0.borrow_mut();
        let LinkInner { dirs, rng, pool, .. } = &mut *link;
        let n = bufs.len();
        for frame in bufs.drain(..) {
            if frame.len() > self.caps.mtu + 14 {
                dirs[self.side].count_oversize();
                continue;
            }
            dirs[self.side].push_frame(now, frame, rng, || pool.alloc());
        }
        n
    }
    fn poll_at(&self) -> Option<Instant> {
        let link = self.link.0.borrow();
        link.dirs[1 - self.side].next_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(dev: &mut MemDevice, byte: u8, len: usize) -> MemBuf {
        let mut b = dev.alloc().unwrap();
        b.append(len).unwrap().fill(byte);
        b
    }

    #[test]
    fn buffer_headroom_and_bounds() {
        let pool = MemPool::new(2);
        let mut b = pool.alloc().unwrap();
        b.append(10).unwrap().copy_from_slice(b"0123456789");
        b.prepend(4).unwrap().copy_from_slice(b"HDR:");
        assert_eq!(b.data(), b"HDR:0123456789");
        assert!(b.prepend(HEADROOM).is_none());
        assert!(b.adj(4));
        assert!(b.trim(5));
        assert_eq!(b.data(), b"01234");
        assert!(!b.adj(6));
        assert!(b.append(DATA_ROOM + 1).is_none());
        let _c = pool.alloc().unwrap();
        assert!(pool.alloc().is_none(), "pool is bounded");
        assert_eq!(pool.outstanding(), 2);
        drop(b);
        assert_eq!(pool.outstanding(), 1);
    }

    #[test]
    fn latency_and_order() {
        let imp = Impairments {
            latency: Duration::from_millis(10),
            ..Default::default()
        };
        let (mut a, mut b, link) = MemLink::pair(imp.clone(), imp, 1, 64);
        let t0 = Instant::from_millis(100);
        let mut v = vec![frame(&mut a, 1, 60), frame(&mut a, 2, 60)];
        assert_eq!(a.tx_burst(t0, &mut v), 2);
        assert!(v.is_empty());
        let mut rx = Vec::new();
        assert_eq!(b.rx_burst(t0 + Duration::from_millis(9), &mut rx, 32), 0);
        assert_eq!(b.poll_at(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(b.rx_burst(t0 + Duration::from_millis(10), &mut rx, 32), 2);
        assert_eq!((rx[0].data()[0], rx[1].data()[0]), (1, 2));
        assert_eq!(a.rx_burst(t0 + Duration::from_secs(1), &mut rx, 32), 0);
        assert_eq!(link.stats(0).delivered, 2);
        drop(rx);
        assert_eq!(link.pool().outstanding(), 0);
    }

    #[test]
    fn impairments_are_seeded_and_counted() {
        let run = |seed| {
            let imp = Impairments {
                latency: Duration::from_millis(1),
                loss: 0.1,
                duplicate: 0.1,
                reorder: 0.1,
                reorder_delay: Duration::from_millis(5),
                corrupt: 0.1,
                ..Default::default()
            };
            let (mut a, mut b, link) = MemLink::pair(imp, Impairments::default(), seed, 4096);
            let mut rx = Vec::new();
            for i in 0..1000u32 {
                let mut v = vec![frame(&mut a, (i % 251) as u8, 100)];
                a.tx_burst(Instant::from_micros(i as u64 * 10), &mut v);
                b.rx_burst(Instant::from_micros(i as u64 * 10), &mut rx, 32);
                rx.clear();
            }
            b.rx_burst(Instant::from_secs(1), &mut rx, 10_000);
            (link.stats(0), rx.len())
        };
        let (s, n) = run(7);
        assert_eq!(run(7), (s, n), "same seed, same outcome");
        assert_ne!(run(8).0, s, "another seed, another outcome");
        assert_eq!(s.sent, 1000);
        assert!(s.lost > 50 && s.lost < 150, "{s:?}");
        assert!(s.duplicated > 50 && s.duplicated < 150, "{s:?}");
        assert!(s.corrupted > 50 && s.corrupted < 150, "{s:?}");
        assert!(s.reordered > 50, "{s:?}");
        assert_eq!(s.delivered, s.sent - s.lost + s.duplicated);
    }

    #[test]
    fn outage_drops_everything_inside_the_window() {
        let imp = Impairments {
            outages: vec![(Instant::from_secs(1), Instant::from_secs(21))],
            ..Default::default()
        };
        let (mut a, mut b, link) = MemLink::pair(imp, Impairments::default(), 3, 16);
        for t in [0u64, 1, 10, 20, 21, 30] {
            let mut v = vec![frame(&mut a, 0, 60)];
            a.tx_burst(Instant::from_secs(t), &mut v);
        }
        let mut rx = Vec::new();
        assert_eq!(b.rx_burst(Instant::from_secs(60), &mut rx, 32), 3);
        assert_eq!(link.stats(0).outage_drops, 3);
    }

    #[test]
    fn rate_limit_spaces_frames() {
        let imp = Impairments {
            rate_bps: Some(1_000_000),
            ..Default::default()
        };
        let (mut a, mut b, _link) = MemLink::pair(imp, Impairments::default(), 3, 16);
        let mut v = vec![frame(&mut a, 0, 101), frame(&mut a, 0, 101)];
        a.tx_burst(Instant::ZERO, &mut v);
        // (101 + 24) bytes * 8 bits at 1 Mbit/s = 1 ms per frame.
        assert_eq!(b.poll_at(), Some(Instant::from_millis(1)));
        let mut rx = Vec::new();
        assert_eq!(b.rx_burst(Instant::from_micros(1999), &mut rx, 32), 1);
        assert_eq!(b.rx_burst(Instant::from_millis(2), &mut rx, 32), 1);
    }
}
