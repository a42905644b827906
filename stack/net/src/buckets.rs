//! Packed IPv4 flows (`u64`, never 0) to values, in buckets of one cache line each.
//!
//! A flow lies in the bucket its hash names, or, when that bucket was full, in one of the
//! buckets after it (linear probing by bucket). Each bucket counts the flows that passed it
//! while it was full, so a lookup stops at the first bucket without such flows: with the
//! table at most 5/8 full almost every lookup reads one line, and which line is known from
//! the hash alone, so a burst's lookups can all be started (`prefetch`) before the first
//! is made. hashbrown's table picks the slot within a group of 16 from its control bytes,
//! so the line a lookup will wait for is only known once it waits.

/// Slots per bucket: four 8-byte keys and four values of up to 8 bytes fill a line.
const SLOTS: usize = 4;

/// The empty slot's key (`FlowTable` keeps flows that would pack to it elsewhere).
pub(crate) const EMPTY: u64 = 0;

#[derive(Clone)]
#[repr(C, align(64))]
struct Bucket<V> {
    keys: [u64; SLOTS],
    vals: [V; SLOTS],
}

#[derive(Clone)]
pub(crate) struct Buckets<V> {
    buckets: Vec<Bucket<V>>,
    /// Per bucket: how many flows lie past it because it was full when they came (sticky at
    /// `u16::MAX`, until the table grows).
    passed: Vec<u16>,
    /// `64 - log2(buckets.len())`: a hash's top bits name its bucket.
    shift: u32,
    len: usize,
}

impl<V: Copy + Default> Bucket<V> {
    fn empty() -> Self {
        Bucket {
            keys: [EMPTY; SLOTS],
            vals: [V::default(); SLOTS],
        }
    }
}

impl<V> Buckets<V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl<V: Copy + PartialEq + Default> Buckets<V> {
    pub(crate) fn new() -> Self {
        Buckets {
            buckets: Vec::new(),
            passed: Vec::new(),
            shift: 64,
            len: 0,
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // `checked_shr`: an empty table has shift 64 (and no buckets).
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// Starts fetching the line a lookup of `hash` reads first.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            sluice_buf::prefetch((b as *const Bucket<V>).cast(), 64);
        }
    }

    /// The bucket and slot of `key`.
    #[inline]
    fn position(&self, hash: u64, key: u64) -> Option<(usize, usize)> {
        let n = self.buckets.len();
        if n == 0 {
            return None;
        }
        let mut i = self.home(hash);
        // At most every bucket once (a full table's worst case; it is never full).
        for _ in 0..n {
            let b = &self.buckets[i];
            if let Some(s) = b.keys.iter().position(|&k| k == key) {
                return Some((i, s));
            }
            if self.passed[i] == 0 {
                return None;
            }
            i = (i + 1) & (n - 1);
        }
        None
    }

    #[inline]
    pub(crate) fn get(&self, hash: u64, key: u64) -> Option<V> {
        self.position(hash, key).map(|(i, s)| self.buckets[i].vals[s])
    }

    /// Maps `key` (not `EMPTY`) to `v`, replacing any previous value; `rehash` gives the
    /// hash of a key already in the table (when it grows).
    pub(crate) fn insert(&mut self, hash: u64, key: u64, v: V, rehash: impl Fn(u64) -> u64) {
        debug_assert_ne!(key, EMPTY);
        if let Some((i, s)) = self.position(hash, key) {
            self.buckets[i].vals[s] = v;
            return;
        }
        // At most 5/8 full.
        if (self.len + 1) * 8 > self.buckets.len() * SLOTS * 5 {
            self.grow(&rehash);
        }
        self.place(hash, key, v);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, key: u64, v: V) {
        let n = self.buckets.len();
        let mut i = self.home(hash);
        loop {
            let b = &mut self.buckets[i];
            if let Some(s) = b.keys.iter().position(|&k| k == EMPTY) {
                b.keys[s] = key;
                b.vals[s] = v;
                return;
            }
            self.passed[i] = self.passed[i].saturating_add(1);
            i = (i + 1) & (n - 1);
        }
    }

    fn grow(&mut self, rehash: &impl Fn(u64) -> u64) {
        let n = (self.buckets.len() * 2).max(4);
        let old = core::mem::replace(&mut self.buckets, vec![Bucket::empty(); n]);
        self.passed = vec![0; n];
        self.shift = 64 - n.trailing_zeros();
        for b in &old {
            for (&k, &v) in b.keys.iter().zip(&b.vals) {
                if k != EMPTY {
                    self.place(rehash(k), k, v);
                }
            }
        }
    }

    /// Removes `key` if it maps to `v`; returns whether it did.
    pub(crate) fn remove_if(&mut self, hash: u64, key: u64, v: V) -> bool {
        let Some((at, s)) = self.position(hash, key) else {
            return false;
        };
        if self.buckets[at].vals[s] != v {
            return false;
        }
        self.buckets[at].keys[s] = EMPTY;
        self.len -= 1;
        // The buckets it passed have one flow fewer past them (unless sticky).
        let n = self.buckets.len();
        let mut i = self.home(hash);
        while i != at {
            if self.passed[i] != u16::MAX {
                self.passed[i] -= 1;
            }
            i = (i + 1) & (n - 1);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash that sends every key to few buckets, to exercise probing.
    fn crowded(k: u64) -> u64 {
        (k % 3) << 62
    }

    #[test]
    fn crowded_keys_probe_past_full_buckets_and_removal_keeps_the_rest_reachable() {
        let mut t: Buckets<u32> = Buckets::new();
        for k in 1..=200u64 {
            t.insert(crowded(k), k, k as u32, crowded);
        }
        assert_eq!(t.len(), 200);
        for k in 1..=200u64 {
            assert_eq!(t.get(crowded(k), k), Some(k as u32), "{k}");
        }
        assert_eq!(t.get(crowded(201), 201), None);
        // Remove every other key: the rest stay reachable, the removed ones are gone.
        for k in (1..=200u64).step_by(2) {
            assert!(!t.remove_if(crowded(k), k, 0), "wrong value");
            assert!(t.remove_if(crowded(k), k, k as u32));
            assert!(!t.remove_if(crowded(k), k, k as u32), "twice");
        }
        assert_eq!(t.len(), 100);
        for k in 1..=200u64 {
            let want = (k % 2 == 0).then_some(k as u32);
            assert_eq!(t.get(crowded(k), k), want, "{k}");
        }
        // Remove the rest: nothing passes any bucket any more, so a miss reads one line.
        for k in (2..=200u64).step_by(2) {
            assert!(t.remove_if(crowded(k), k, k as u32));
        }
        assert_eq!(t.len(), 0);
        assert!(t.passed.iter().all(|&p| p == 0), "{:?}", t.passed);
    }

    proptest::proptest! {
        /// Any sequence of inserts and removals, over a hash that crowds keys into few
        /// buckets, answers as a map does, and a bucket's count of flows past it is exactly
        /// the flows lying past it.
        #[test]
        fn answers_as_a_map_does(ops in proptest::collection::vec((0u8..3, 1u64..64, 0u32..4), 0..400)) {
            let hash = |k: u64| (k % 5).wrapping_mul(0x3333_3333_3333_3333);
            let mut t: Buckets<u32> = Buckets::new();
            let mut model = std::collections::HashMap::new();
            for (op, k, v) in ops {
                match op {
                    0 => {
                        t.insert(hash(k), k, v, hash);
                        model.insert(k, v);
                    }
                    1 => {
                        let want = model.get(&k) == Some(&v);
                        proptest::prop_assert_eq!(t.remove_if(hash(k), k, v), want);
                        if want {
                            model.remove(&k);
                        }
                    }
                    _ => proptest::prop_assert_eq!(t.get(hash(k), k), model.get(&k).copied()),
                }
                proptest::prop_assert_eq!(t.len(), model.len());
            }
            for k in 1..64 {
                proptest::prop_assert_eq!(t.get(hash(k), k), model.get(&k).copied());
            }
            let n = t.buckets.len();
            let mut past = vec![0u16; n];
            for (at, b) in t.buckets.iter().enumerate() {
                for &k in b.keys.iter().filter(|&&k| k != EMPTY) {
                    let mut i = t.home(hash(k));
                    while i != at {
                        past[i] += 1;
                        i = (i + 1) & (n - 1);
                    }
                }
            }
            proptest::prop_assert_eq!(past, t.passed.clone());
        }
    }

    #[test]
    fn replaces_and_grows_keeping_every_key() {
        let mix = |k: u64| k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut t: Buckets<u64> = Buckets::new();
        for k in 1..=10_000u64 {
            t.insert(mix(k), k, k, mix);
        }
        t.insert(mix(7), 7, 70, mix);
        assert_eq!(t.len(), 10_000);
        assert_eq!(t.get(mix(7), 7), Some(70));
        for k in (1..=10_000u64).filter(|&k| k != 7) {
            assert_eq!(t.get(mix(k), k), Some(k));
        }
        // At most 5/8 full, in buckets of one line.
        assert!(t.buckets.len() * SLOTS * 5 >= 10_000 * 8);
        assert_eq!(core::mem::size_of::<Bucket<u64>>(), 64);
        assert_eq!(core::mem::align_of::<Bucket<u64>>(), 64);
    }
}
