//! The TCP flow table (`sluice_net::FlowTable`: IPv4 tuples packed in one-line buckets, to a
//! slab key) at 1k, 100k and 1M connections, hit and miss, three ways side by side:
//! - `software`: the table hashes the tuple with foldhash (ports without RSS: virtio, tap);
//! - `nic-hash`: RSS mode, each lookup given the NIC's hash from the mbuf (precomputed here,
//!   as the NIC delivers it), which the table folds with the ports (one multiply);
//! - `rss-no-hash`: RSS mode for a frame that carries no hash: Toeplitz in software.
//!
//! Lookups go through a pre-generated, shuffled list of 4096 keys so that successive
//! lookups hit different buckets (at 100k and 1M the table is larger than the caches).
//!
//! `burst32`: bursts of 32 lookups of random flows of a 1M table (whose lines are not in the
//! cache), one after the other (`plain`) and with the burst's lines fetched first
//! (`prefetched`, `FlowTable::prefetch`, as the interface looks ahead at a received burst).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sluice_net::{Endpoint, FlowKey, FlowTable, Toeplitz, SYMMETRIC_KEY};
use sluice_wire::Ipv4Address;

/// A deterministic xorshift, to spread the keys without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const LOCAL: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);

/// The `i`-th connection: clients spread over 10.0.0.0/8 and the ephemeral ports, to a
/// handful of server ports.
fn key(i: u64, salt: u64) -> FlowKey {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
    FlowKey {
        local_port: [80, 443, 8080, 9000][(i % 4) as usize],
        local: 0,
        remote: Endpoint::new(
            Ipv4Address::new(10, (x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8),
            49152 + (i % 16384) as u16,
        ),
    }
}

const PROBES: usize = 4096;

fn bench_flow_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    let t = Toeplitz::new(&SYMMETRIC_KEY);
    let nic = |k: &FlowKey| {
        t.hash_v4(
            k.remote.v4_addr().expect("IPv4 flows"),
            LOCAL,
            k.remote.port,
            k.local_port,
        )
    };
    for n in [1_000u64, 100_000, 1_000_000] {
        let mut soft: FlowTable<u32> = FlowTable::new();
        let mut rss: FlowTable<u32> = FlowTable::with_rss(&SYMMETRIC_KEY, LOCAL, 0x2545_f491_4f6c_dd1d);
        let mut keys = Vec::with_capacity(n as usize);
        let mut i = 0u64;
        while keys.len() < n as usize {
            let k = key(i, 0);
            if !soft.contains(&k) {
                soft.insert(k, i as u32);
                rss.insert(k, i as u32);
                keys.push(k);
            }
            i += 1;
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ n);
        let hits: Vec<(FlowKey, u32)> = (0..PROBES)
            .map(|_| keys[(rng.next() % n) as usize])
            .map(|k| (k, nic(&k)))
            .collect();
        // Misses: same ports and address range, different addresses (checked absent).
        let misses: Vec<(FlowKey, u32)> = (0..)
            .map(|j| key(j, 0xdead_beef_0000))
            .filter(|k| !soft.contains(k))
            .take(PROBES)
            .map(|k| (k, nic(&k)))
            .collect();
        for (name, probes) in [("hit", &hits), ("miss", &misses)] {
            g.bench_with_input(
                BenchmarkId::new(format!("software/{name}"), n),
                probes,
                |b, probes| {
                    let mut j = 0usize;
                    b.iter(|| {
                        let (k, _) = &probes[j & (PROBES - 1)];
                        j = j.wrapping_add(1);
                        soft.get_rx(black_box(k), None)
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("nic-hash/{name}"), n),
                probes,
                |b, probes| {
                    let mut j = 0usize;
                    b.iter(|| {
                        let (k, h) = &probes[j & (PROBES - 1)];
                        j = j.wrapping_add(1);
                        rss.get_rx(black_box(k), Some(black_box(*h)))
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("rss-no-hash/{name}"), n),
                probes,
                |b, probes| {
                    let mut j = 0usize;
                    b.iter(|| {
                        let (k, _) = &probes[j & (PROBES - 1)];
                        j = j.wrapping_add(1);
                        rss.get_rx(black_box(k), None)
                    })
                },
            );
        }
    }
    g.finish();
}

fn bench_burst(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    const BURST: usize = 32;
    let mut g = c.benchmark_group("flow_table/burst32");
    let mut table: FlowTable<u32> = FlowTable::new();
    let keys: Vec<FlowKey> = (0..N).map(|i| key(i, 0)).collect();
    for (i, k) in keys.iter().enumerate() {
        table.insert(*k, i as u32);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // 64 Ki bursts' worth of random flows: far more lines than the caches hold.
    let probes: Vec<FlowKey> = (0..BURST << 16)
        .map(|_| keys[(rng.next() % N) as usize])
        .collect();
    for prefetched in [false, true] {
        let name = if prefetched { "prefetched" } else { "plain" };
        g.bench_function(BenchmarkId::new(name, N), |b| {
            let mut j = 0usize;
            b.iter(|| {
                let burst = &probes[j..j + BURST];
                j = (j + BURST) % probes.len();
                if prefetched {
                    for k in burst {
                        table.prefetch(k, table.rx_hash(k, None));
                    }
                }
                let mut sum = 0u32;
                for k in burst {
                    sum = sum.wrapping_add(table.get_rx(black_box(k), None).unwrap_or(0));
                }
                sum
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_flow_table, bench_burst
}
criterion_main!(benches);
