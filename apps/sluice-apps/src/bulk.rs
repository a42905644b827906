//! Bulk transfer, sans-I/O: the sender streams `bytes` of a seeded ChaCha8 pattern and
//! hashes what it sends; the receiver hashes what it gets, regenerates the same pattern
//! to know what it should have got, and reports both SHA-256 digests, the first differing
//! offset if any, and the throughput.

use std::sync::{Arc, Mutex};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::out::OutQueue;
use crate::session::{Session, Tally};

/// How much the sender generates at a time, and keeps queued at most.
const CHUNK: usize = 64 * 1024;
const QUEUED: u64 = 4 * CHUNK as u64;

/// The pattern: a ChaCha8 byte stream from `seed`, the same whatever sizes it is read in.
#[derive(Clone, Debug)]
pub struct Pattern {
    rng: ChaCha8Rng,
    block: [u8; 64],
    /// Bytes of `block` already given out.
    pos: usize,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            rng: ChaCha8Rng::seed_from_u64(seed),
            block: [0; 64],
            pos: 64,
        }
    }
    /// The next `buf.len()` bytes. (The generator itself consumes whole 32-bit words per
    /// call, so bytes are handed out in whole 64-byte blocks.)
    pub fn fill(&mut self, mut buf: &mut [u8]) {
        while !buf.is_empty() {
            if self.pos == 64 && buf.len() >= 64 {
                let k = buf.len() / 64 * 64;
                let (now, rest) = buf.split_at_mut(k);
                self.rng.fill_bytes(now);
                buf = rest;
                continue;
            }
            if self.pos == 64 {
                self.rng.fill_bytes(&mut self.block);
                self.pos = 0;
            }
            let k = (64 - self.pos).min(buf.len());
            let (now, rest) = buf.split_at_mut(k);
            now.copy_from_slice(&self.block[self.pos..self.pos + k]);
            self.pos += k;
            buf = rest;
        }
    }
}

/// The SHA-256 of the first `n` bytes of the pattern of `seed`.
pub fn pattern_digest(seed: u64, n: u64) -> [u8; 32] {
    let (mut p, mut h, mut buf) = (Pattern::new(seed), Sha256::new(), vec![0u8; CHUNK]);
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK as u64) as usize;
        p.fill(&mut buf[..k]);
        h.update(&buf[..k]);
        left -= k as u64;
    }
    h.finalize().into()
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Gigabits per second.
pub fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / seconds / 1e9
    }
}

/// How a transfer is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// The sender hashes the pattern it generates; the receiver hashes what it gets and
    /// compares every byte with the regenerated pattern (the default: correctness).
    #[default]
    Sha256,
    /// The sender repeats one pre-generated chunk of the pattern by reference and the
    /// receiver only counts bytes, so the rate measures the stack, not the checks.
    None,
}

/// What one side of a transfer saw.
#[derive(Clone, Debug, PartialEq)]
pub struct BulkReport {
    pub sender: bool,
    /// Bytes sent or received.
    pub bytes: u64,
    /// Bytes the transfer should have.
    pub expected_bytes: u64,
    /// SHA-256 of the bytes sent or received (`None` with `Verify::None`).
    pub digest: Option<[u8; 32]>,
    /// SHA-256 of the pattern's `expected_bytes` (receiver).
    pub expected_digest: Option<[u8; 32]>,
    /// The first offset where the received bytes differ from the pattern.
    pub first_mismatch: Option<u64>,
    /// From the first byte to the end.
    pub seconds: f64,
    /// The stream ended cleanly (FIN, not a reset).
    pub complete: bool,
}

impl BulkReport {
    /// The transfer is intact: complete, of the right length, and (receiver) matching.
    pub fn ok(&self) -> bool {
        self.complete
            && self.bytes == self.expected_bytes
            && self.first_mismatch.is_none()
            && self.expected_digest.is_none_or(|d| Some(d) == self.digest)
    }
    pub fn gbps(&self) -> f64 {
        gbps(self.bytes, self.seconds)
    }
}

/// Where finished transfers report.
pub type Reports = Arc<Mutex<Vec<BulkReport>>>;

fn report(slot: &Reports, r: BulkReport) {
    slot.lock().unwrap_or_else(|e| e.into_inner()).push(r);
}

/// Streams the pattern, then shuts down.
#[derive(Debug)]
pub struct BulkSender {
    verify: Verify,
    /// `Verify::None`: the one chunk sent again and again.
    chunk: Arc<[u8]>,
    pattern: Pattern,
    total: u64,
    left: u64,
    hash: Sha256,
    start: Option<u64>,
    reports: Reports,
    reported: bool,
}

impl BulkSender {
    pub fn new(seed: u64, bytes: u64, reports: Reports) -> BulkSender {
        BulkSender::with_verify(seed, bytes, reports, Verify::Sha256)
    }
    pub fn with_verify(seed: u64, bytes: u64, reports: Reports, verify: Verify) -> BulkSender {
        let chunk: Arc<[u8]> = match verify {
            Verify::Sha256 => Arc::from(Vec::new()),
            Verify::None => {
                let mut v = vec![0u8; CHUNK];
                Pattern::new(seed).fill(&mut v);
                Arc::from(v)
            }
        };
        BulkSender {
            verify,
            chunk,
            pattern: Pattern::new(seed),
            total: bytes,
            left: bytes,
            hash: Sha256::new(),
            start: None,
            reports,
            reported: false,
        }
    }
}

impl Session for BulkSender {
    fn input(&mut self, data: &[u8], _out: &mut OutQueue, _t: &mut Tally, _now: u64) -> usize {
        data.len() // nothing is expected back: dropped
    }
    fn produce(&mut self, out: &mut OutQueue, _t: &mut Tally, now: u64) {
        self.start.get_or_insert(now);
        while self.left > 0 && out.len() < QUEUED {
            let k = self.left.min(CHUNK as u64) as usize;
            if self.verify == Verify::None {
                if k == CHUNK {
                    out.push_shared(self.chunk.clone());
                } else {
                    out.push_bytes(&self.chunk[..k]);
                }
                self.left -= k as u64;
                continue;
            }
            let mut v = vec![0u8; k];
            self.pattern.fill(&mut v);
            self.hash.update(&v);
            out.push_vec(v);
            self.left -= k as u64;
        }
    }
    fn eof(&mut self, _out: &mut OutQueue, _t: &mut Tally, _now: u64) {}
    fn closed(&mut self, t: &mut Tally, now: u64, error: bool) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let bytes = self.total - self.left;
        let seconds = now.saturating_sub(self.start.unwrap_or(now)) as f64 / 1e9;
        let complete = !error && self.left == 0;
        if !complete {
            t.errors += 1;
        }
        let digest =
            (self.verify == Verify::Sha256).then(|| std::mem::take(&mut self.hash).finalize().into());
        report(
            &self.reports,
            BulkReport {
                sender: true,
                bytes,
                expected_bytes: self.total,
                digest,
                expected_digest: None,
                first_mismatch: None,
                seconds,
                complete,
            },
        );
    }
    fn finished(&self) -> bool {
        self.left == 0
    }
}

/// Receives, hashes, and checks against the regenerated pattern.
#[derive(Debug)]
pub struct BulkReceiver {
    verify: Verify,
    pattern: Pattern,
    expected: u64,
    received: u64,
    hash: Sha256,
    expected_hash: Sha256,
    scratch: Vec<u8>,
    first_mismatch: Option<u64>,
    start: Option<u64>,
    end: Option<u64>,
    reports: Reports,
    done: bool,
}

impl BulkReceiver {
    pub fn new(seed: u64, expected: u64, reports: Reports) -> BulkReceiver {
        BulkReceiver::with_verify(seed, expected, reports, Verify::Sha256)
    }
    pub fn with_verify(seed: u64, expected: u64, reports: Reports, verify: Verify) -> BulkReceiver {
        BulkReceiver {
            verify,
            pattern: Pattern::new(seed),
            expected,
            received: 0,
            hash: Sha256::new(),
            expected_hash: Sha256::new(),
            scratch: Vec::new(),
            first_mismatch: None,
            start: None,
            end: None,
            reports,
            done: false,
        }
    }

    /// Advances the expected pattern by `n` bytes, comparing with `got` when given.
    fn expect(&mut self, mut n: u64, got: Option<&[u8]>) {
        let mut off = 0usize;
        while n > 0 {
            let k = n.min(CHUNK as u64) as usize;
            self.scratch.resize(k, 0);
            self.pattern.fill(&mut self.scratch);
            self.expected_hash.update(&self.scratch);
            if let (Some(got), None) = (got, self.first_mismatch) {
                let g = &got[off..off + k];
                if let Some(i) = g.iter().zip(&self.scratch).position(|(a, b)| a != b) {
                    self.first_mismatch = Some(self.received + (off + i) as u64);
                }
            }
            off += k;
            n -= k as u64;
        }
    }
}

impl Session for BulkReceiver {
    fn input(&mut self, data: &[u8], _out: &mut OutQueue, _t: &mut Tally, now: u64) -> usize {
        self.start.get_or_insert(now);
        self.end = Some(now);
        if self.verify == Verify::None {
            self.received += data.len() as u64;
            return data.len();
        }
        self.hash.update(data);
        let within = (self.expected.saturating_sub(self.received)).min(data.len() as u64);
        self.expect(within, Some(&data[..within as usize]));
        if within < data.len() as u64 && self.first_mismatch.is_none() {
            self.first_mismatch = Some(self.expected); // longer than expected
        }
        self.received += data.len() as u64;
        data.len()
    }
    fn eof(&mut self, _out: &mut OutQueue, _t: &mut Tally, now: u64) {
        self.end = Some(now);
        self.done = true;
    }
    fn closed(&mut self, t: &mut Tally, _now: u64, error: bool) {
        let sha = self.verify == Verify::Sha256;
        if sha {
            let missing = self.expected.saturating_sub(self.received);
            self.expect(missing, None);
        }
        let r = BulkReport {
            sender: false,
            bytes: self.received,
            expected_bytes: self.expected,
            digest: sha.then(|| std::mem::take(&mut self.hash).finalize().into()),
            expected_digest: sha.then(|| std::mem::take(&mut self.expected_hash).finalize().into()),
            first_mismatch: self.first_mismatch,
            seconds: self.end.unwrap_or(0).saturating_sub(self.start.unwrap_or(0)) as f64 / 1e9,
            complete: self.done && !error,
        };
        if !r.ok() {
            t.errors += 1;
        }
        report(&self.reports, r);
    }
    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_pair(bytes: u64, split: usize, corrupt: Option<u64>) -> (BulkReport, BulkReport) {
        run_pair_with(bytes, split, corrupt, Verify::Sha256)
    }

    fn run_pair_with(bytes: u64, split: usize, corrupt: Option<u64>, v: Verify) -> (BulkReport, BulkReport) {
        let reports: Reports = Arc::default();
        let mut tx = BulkSender::with_verify(42, bytes, reports.clone(), v);
        let mut rx = BulkReceiver::with_verify(42, bytes, reports.clone(), v);
        let (mut out, mut sink, mut t) = (OutQueue::new(), OutQueue::new(), Tally::new());
        let mut sent = 0u64;
        let mut now = 1;
        loop {
            tx.produce(&mut out, &mut t, now);
            if out.is_empty() {
                break;
            }
            let mut buf = vec![0u8; split];
            let n = out.copy_to(&mut buf);
            out.consume(n);
            if let Some(c) = corrupt {
                if (sent..sent + n as u64).contains(&c) {
                    buf[(c - sent) as usize] ^= 1;
                }
            }
            sent += n as u64;
            assert_eq!(rx.input(&buf[..n], &mut sink, &mut t, now), n);
            now += 1000;
        }
        assert!(tx.finished());
        tx.closed(&mut t, now, false);
        rx.eof(&mut sink, &mut t, now);
        rx.closed(&mut t, now, false);
        let r = reports.lock().unwrap();
        (r[0].clone(), r[1].clone())
    }

    #[test]
    fn pattern_is_seeded_and_digests_match() {
        let (mut a, mut b, mut c) = (Pattern::new(1), Pattern::new(1), Pattern::new(2));
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        // The stream does not depend on how it is read.
        let mut whole = vec![0u8; 1000];
        Pattern::new(5).fill(&mut whole);
        let mut p = Pattern::new(5);
        let mut pieces = Vec::new();
        for k in [1, 3, 64, 7, 130, 795] {
            let mut b = vec![0u8; k];
            p.fill(&mut b);
            pieces.extend(b);
        }
        assert_eq!(pieces, whole);
        let (s, r) = run_pair(300_001, 7919, None);
        assert!(s.ok() && r.ok(), "{s:?} {r:?}");
        assert_eq!(s.digest, r.digest);
        assert_eq!(s.digest, r.expected_digest);
        assert_eq!(s.digest, Some(pattern_digest(42, 300_001)));
        assert_eq!(r.bytes, 300_001);
    }

    #[test]
    fn verify_none_counts_bytes_only() {
        let (s, r) = run_pair_with(300_001, 7919, None, Verify::None);
        assert!(s.ok() && r.ok(), "{s:?} {r:?}");
        assert_eq!((s.digest, r.digest, r.expected_digest), (None, None, None));
        assert_eq!((s.bytes, r.bytes), (300_001, 300_001));
        // A short transfer still fails; the content is not looked at.
        let reports: Reports = Arc::default();
        let mut rx = BulkReceiver::with_verify(9, 1000, reports.clone(), Verify::None);
        let (mut out, mut t) = (OutQueue::new(), Tally::new());
        rx.input(&[0u8; 500], &mut out, &mut t, 0);
        rx.eof(&mut out, &mut t, 1);
        rx.closed(&mut t, 1, false);
        assert!(!reports.lock().unwrap()[0].ok());
    }

    #[test]
    fn corruption_and_truncation_are_detected() {
        let (_, r) = run_pair(100_000, 4096, Some(77_777));
        assert!(!r.ok());
        assert_eq!(r.first_mismatch, Some(77_777));
        assert_ne!(r.digest, r.expected_digest);

        let reports: Reports = Arc::default();
        let mut rx = BulkReceiver::new(9, 1000, reports.clone());
        let (mut out, mut t) = (OutQueue::new(), Tally::new());
        let mut p = Pattern::new(9);
        let mut half = [0u8; 500];
        p.fill(&mut half);
        rx.input(&half, &mut out, &mut t, 0);
        rx.eof(&mut out, &mut t, 1);
        rx.closed(&mut t, 1, false);
        let r = reports.lock().unwrap()[0].clone();
        assert!(!r.ok());
        assert_eq!(r.first_mismatch, None);
        assert_eq!(r.expected_digest, Some(pattern_digest(9, 1000)));
        assert_eq!(t.errors, 1);
    }

    #[test]
    fn throughput_math() {
        assert_eq!(gbps(1_000_000_000, 8.0), 1.0);
        assert_eq!(gbps(1, 0.0), 0.0);
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
