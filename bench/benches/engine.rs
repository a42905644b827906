//! `sluice-engine`: the Toeplitz hash of a 12-byte IPv4/TCP tuple, RSS queue choice, and
//! the per-core timer wheel (`TimerWheel`, re-exported by the engine; it lives in
//! `sluice-net::wheel` now).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant as StdInstant};

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_engine::{RssSteering, TimerWheel, Toeplitz, SYMMETRIC_KEY};
use sluice_wire::{Instant, Ipv4Address};

/// Microsoft's RSS verification key (the default of many NICs).
const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0,
    0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42,
    0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

fn bench_toeplitz(c: &mut Criterion) {
    let mut g = c.benchmark_group("toeplitz");
    let t = Toeplitz::new(&MS_KEY);
    let src = Ipv4Address::new(66, 9, 149, 187);
    let dst = Ipv4Address::new(161, 142, 100, 80);
    // The 12-byte input as the NIC builds it: src, dst, sport, dport.
    let mut tuple = [0u8; 12];
    tuple[0..4].copy_from_slice(&src.0);
    tuple[4..8].copy_from_slice(&dst.0);
    tuple[8..10].copy_from_slice(&2794u16.to_be_bytes());
    tuple[10..12].copy_from_slice(&1766u16.to_be_bytes());
    // The RSS specification's verification vector.
    assert_eq!(t.hash(&tuple), 0x51cc_c178);
    g.bench_function("hash_12B", |b| b.iter(|| t.hash(black_box(&tuple))));
    g.bench_function("hash_v4", |b| {
        b.iter(|| t.hash_v4(black_box(src), black_box(dst), black_box(2794), black_box(1766)))
    });
    let rss = RssSteering::round_robin(&SYMMETRIC_KEY, 512, 2);
    g.bench_function("queue_of", |b| {
        b.iter(|| rss.queue_of(black_box(src), black_box(dst), black_box(2794), black_box(1766)))
    });
    g.finish();
}

/// Entries per round of the timer-wheel benchmarks.
const BATCH: u64 = 1024;
/// The stack's wheel: 10 µs ticks, 4096 slots (41 ms per revolution).
const TICK: Duration = Duration::from_micros(10);
const SLOTS: usize = 4096;

/// The deadline of entry `i` of a round starting at tick `base`: spread over the next
/// `BATCH` ticks (RTOs, delayed ACKs of many connections), within one revolution.
fn deadline(base: u64, i: u64) -> Instant {
    let tick = base + 1 + (i.wrapping_mul(2_654_435_761) % BATCH);
    Instant::from_nanos(tick * TICK.as_nanos() as u64 + 3_000)
}

/// `total` measured over whole rounds of `BATCH`, scaled to `iters` operations.
fn per_iters(total: Duration, iters: u64) -> Duration {
    let ops = iters.div_ceil(BATCH) * BATCH;
    Duration::from_nanos((total.as_nanos() * u128::from(iters) / u128::from(ops)) as u64)
}

fn bench_timer_wheel(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_wheel");
    // Insert: `BATCH` inserts timed, then the wheel is drained (untimed), so it never grows.
    g.bench_function("insert", |b| {
        let mut w: TimerWheel<u32> = TimerWheel::new(Instant::ZERO, TICK, SLOTS);
        let mut base = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters.div_ceil(BATCH) {
                let t0 = StdInstant::now();
                for i in 0..BATCH {
                    w.insert(black_box(deadline(base, i)), i as u32);
                }
                total += t0.elapsed();
                base += BATCH + 1;
                w.advance(Instant::from_nanos(base * TICK.as_nanos() as u64), |_, x| {
                    black_box(x);
                });
            }
            per_iters(total, iters)
        })
    });
    // Expiry: `BATCH` entries inserted (untimed), then the wheel advanced one tick at a
    // time over them (timed): per entry, one `advance` of one tick firing about one entry.
    g.bench_function("expire", |b| {
        let mut w: TimerWheel<u32> = TimerWheel::new(Instant::ZERO, TICK, SLOTS);
        let mut base = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut fired = 0u64;
            let rounds = iters.div_ceil(BATCH);
            for _ in 0..rounds {
                for i in 0..BATCH {
                    w.insert(deadline(base, i), i as u32);
                }
                let t0 = StdInstant::now();
                for t in 1..=BATCH + 1 {
                    let now = Instant::from_nanos((base + t) * TICK.as_nanos() as u64 + 5_000);
                    w.advance(black_box(now), |_, x| {
                        fired += 1;
                        black_box(x);
                    });
                }
                total += t0.elapsed();
                base += BATCH + 1;
            }
            assert!(w.is_empty());
            assert_eq!(fired, rounds * BATCH);
            per_iters(total, iters)
        })
    });
    // A busy core's poll with many far entries: 200,000 timers 0.1 to 1 s ahead (the RTOs
    // and keepalives of connections, or entries of connections since removed), and
    // `advance` called every microsecond (several times per 10 µs tick, as a busy-polling
    // core does); what fires is put back 0.5 s later, so the wheel stays as full.
    g.bench_function("poll_200k_far", |b| {
        let mut w: TimerWheel<u32> = TimerWheel::new(Instant::ZERO, TICK, SLOTS);
        for i in 0..200_000u64 {
            let at = 100_000_000 + (i * 7_919_993) % 900_000_000;
            w.insert(Instant::from_nanos(at), i as u32);
        }
        let mut now = 0u64;
        let mut again = Vec::new();
        b.iter(|| {
            now += 1_000;
            w.advance(Instant::from_nanos(now), |_, x| again.push(x));
            for x in again.drain(..) {
                w.insert(Instant::from_nanos(now + 500_000_000), x);
            }
        });
        assert_eq!(w.len(), 200_000);
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_toeplitz, bench_timer_wheel
}
criterion_main!(benches);
