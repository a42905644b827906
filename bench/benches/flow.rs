//! The TCP flow table: a `hashbrown::HashMap` from the 4-tuple to a slab key, at 1k, 100k
//! and 1M connections, hit and miss.
//!
//! `sluice-net`'s `FlowKey` (in `stack/net/src/tcp.rs`) is private, so its shape is
//! replicated here: `{ local_port: u16, remote: Endpoint { addr: Ipv4Address, port: u16 } }`
//! with derived `Hash`/`Eq`, the table a `hashbrown::HashMap<FlowKey, Key>` with hashbrown's
//! default hasher (foldhash in hashbrown 0.15), as `TcpSockets::flows` is. The value is a
//! `u32` standing in for the slab `Key` (also private). The local address is implicit (one
//! address per interface), as in the stack.
//!
//! Lookups go through a pre-generated, shuffled list of 4096 keys so that successive
//! lookups hit different buckets (at 100k and 1M the table is larger than the caches).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hashbrown::HashMap;
use sluice_net::Endpoint;
use sluice_wire::Ipv4Address;

/// The shape of `sluice_net::tcp::FlowKey` (private there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    local_port: u16,
    remote: Endpoint,
}

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

/// The `i`-th connection: clients spread over 10.0.0.0/8 and the ephemeral ports, to a
/// handful of server ports.
fn key(i: u64, salt: u64) -> FlowKey {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
    FlowKey {
        local_port: [80, 443, 8080, 9000][(i % 4) as usize],
        remote: Endpoint::new(
            Ipv4Address::new(10, (x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8),
            49152 + (i % 16384) as u16,
        ),
    }
}

const PROBES: usize = 4096;

fn bench_flow_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    for n in [1_000u64, 100_000, 1_000_000] {
        let mut table: HashMap<FlowKey, u32> = HashMap::default();
        let mut keys = Vec::with_capacity(n as usize);
        let mut i = 0u64;
        while keys.len() < n as usize {
            let k = key(i, 0);
            if table.insert(k, i as u32).is_none() {
                keys.push(k);
            }
            i += 1;
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ n);
        let hits: Vec<FlowKey> = (0..PROBES).map(|_| keys[(rng.next() % n) as usize]).collect();
        // Misses: same ports and address range, different addresses (checked absent).
        let misses: Vec<FlowKey> = (0..)
            .map(|j| key(j, 0xdead_beef_0000))
            .filter(|k| !table.contains_key(k))
            .take(PROBES)
            .collect();
        for (name, probes) in [("hit", &hits), ("miss", &misses)] {
            g.bench_with_input(BenchmarkId::new(name, n), probes, |b, probes| {
                let mut j = 0usize;
                b.iter(|| {
                    let k = &probes[j & (PROBES - 1)];
                    j = j.wrapping_add(1);
                    table.get(black_box(k)).copied()
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_flow_table
}
criterion_main!(benches);
