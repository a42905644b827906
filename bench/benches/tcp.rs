//! Sans-I/O TCP (`sluice_tcp::Tcb`): input of an in-order MSS segment on an established
//! connection with the ACK decision, and output of an MSS segment. The workloads are in
//! `sluice_bench::tcb` (shared with the callgrind driver).
//!
//! - `tcp/input_inorder_mss/default`: `TcpConfig::default()` on both ends (delayed ACK,
//!   so an ACK every second segment; window scaling, SACK, timestamps, CUBIC). Per
//!   iteration: `on_segment` + `poll_transmit` until `None` + `consume(MSS)`.
//! - `.../ack_every`: the same with `delayed_ack: None` (an ACK per segment).
//! - `.../no_ts_sack`: default but no timestamps and no SACK (the bare RFC 9293 path).
//! - `.../default_zero_copy`: default, with zero-copy receive (`on_segment_frame`): the
//!   payload is handed over as a frame (an mbuf on DPDK) instead of copied.
//! - `tcp/poll_at/established`: the earliest timer of an established connection.
//! - `tcp/input_floor/memcpy_1448`: the payload copy alone, a floor under the above.
//! - `tcp/output_mss/{offload,sw_csum}`: `poll_transmit` producing one MSS segment plus
//!   `TcpRepr::emit` of it into a frame buffer (payload copied), TCP checksum left to the
//!   NIC or computed in software. Measured in rounds of 16 segments with `iter_custom`;
//!   between rounds (not timed) the segments go to a peer `Tcb` whose ACKs come back.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_bench::tcb::{TcbInput, TcbOutput, OUT_BATCH};
use sluice_tcp::TcpConfig;
use sluice_wire::ChecksumCaps;

fn bench_input(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp/input_inorder_mss");
    let configs = [
        ("default", TcpConfig::default()),
        (
            "ack_every",
            TcpConfig {
                delayed_ack: None,
                ..TcpConfig::default()
            },
        ),
        (
            "no_ts_sack",
            TcpConfig {
                timestamps: false,
                sack: false,
                ..TcpConfig::default()
            },
        ),
    ];
    for (name, cfg) in configs {
        let mut w = TcbInput::new(cfg);
        g.bench_function(name, |b| b.iter(|| w.step()));
        black_box(w.acks);
    }
    // The default configuration with zero-copy receive: the payload handed over as a frame.
    let mut w = TcbInput::new(TcpConfig::default());
    let before = w.rx.counters().bytes_in;
    g.bench_function("default_zero_copy", |b| b.iter(|| w.step_zero_copy()));
    // (Unless a filter left the benchmark out.)
    let c = w.rx.counters();
    assert!(
        c.bytes_in == before || c.bytes_in_zero_copy > 0,
        "zero-copy path not taken"
    );
    black_box(w.acks);
    g.finish();
}

/// `Tcb::poll_at`, the earliest of a connection's timers, asked after every event on it
/// (the interface reschedules the connection from it): on an established connection
/// that just took a segment (delayed ACK, RTO, keepalive armed).
fn bench_poll_at(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp/poll_at");
    let mut w = TcbInput::new(TcpConfig::default());
    w.step();
    g.bench_function("established", |b| b.iter(|| black_box(&w.rx).poll_at()));
    g.finish();
}

/// `RttEstimator::sample_weighted`, taken on every ACK of new data with timestamps: once
/// per exchange at each end in request/response (`one_per_window`, n = 1), and with
/// several per window in bulk transfer (`eight_per_window`).
fn bench_rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp/rtt_sample");
    for (name, n) in [("one_per_window", 1u32), ("eight_per_window", 8)] {
        let mut est = sluice_tcp::RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(120),
        );
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let r = Duration::from_micros(black_box(40 + i % 23));
                est.sample_weighted(r, black_box(n));
                black_box(est.rto())
            })
        });
    }
    g.finish();
}

/// The floor under TCP input of a full-sized segment: copying its 1448 bytes of payload
/// into a 64 KiB receive ring (at a rotating offset, as the ring fills), which `Tcb` does.
fn bench_input_floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp/input_floor");
    let src = vec![0x61u8; 1448];
    let mut ring = vec![0u8; 64 * 1024];
    let mut off = 0usize;
    g.bench_function("memcpy_1448", |b| {
        b.iter(|| {
            if off + 1448 > ring.len() {
                off = 0;
            }
            ring[off..off + 1448].copy_from_slice(black_box(&src));
            off += 1448;
            black_box(&ring);
        })
    });
    g.finish();
}

fn bench_output(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp/output_mss");
    for (name, caps) in [
        ("offload", ChecksumCaps::ignored()),
        ("sw_csum", ChecksumCaps::software()),
    ] {
        let mut w = TcbOutput::new(caps);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let rounds = iters.div_ceil(OUT_BATCH as u64);
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    let t0 = Instant::now();
                    for j in 0..OUT_BATCH {
                        let sent = w.emit_one(black_box(j));
                        debug_assert!(sent);
                    }
                    total += t0.elapsed();
                    w.settle(OUT_BATCH);
                }
                // Scale the whole rounds measured to `iters` segments.
                let ops = rounds * OUT_BATCH as u64;
                Duration::from_nanos((total.as_nanos() * u128::from(iters) / u128::from(ops)) as u64)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_input, bench_input_floor, bench_output, bench_poll_at, bench_rtt
}
criterion_main!(benches);
