//! Sluice and smoltcp side by side: one in-order MSS data segment on an established
//! connection through a whole interface, then the application drains it.
//!
//! Per iteration, on both stacks: the sequence number of a prebuilt Ethernet/IPv4/TCP
//! frame (1514 bytes, timestamps option) is advanced (checksum updated incrementally),
//! `Interface::poll` receives it from a device that copies it into a receive buffer,
//! parses Ethernet/IPv4/TCP, finds the connection, runs TCP input, decides on the ACK and
//! builds it (an ACK every second segment on both: delayed ACK with the every-second-
//! full-segment rule), hands it to the device (which drops it); then the application
//! consumes the data in place (`tcp_recv_with` / `recv`). Both negotiated MSS 1460,
//! window scaling, SACK and timestamps, with 64 KiB receive buffers.
//!
//! `offload`: the device verifies and fills IPv4/TCP checksums (DPDK with offload), so
//! neither stack touches them; `sw_csum`: both verify the 1480-byte TCP checksum and the
//! IPv4 header checksum in software and fill those of the ACKs.
//!
//! smoltcp's TCP processing is `pub(crate)`, so no `Tcb`-level comparison is possible.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_bench::sluice_iface::SluiceInput;
use sluice_bench::smol::SmolInput;

fn bench_compare(c: &mut Criterion) {
    let mut g = c.benchmark_group("iface_input_inorder_mss");
    for (name, offload) in [("offload", true), ("sw_csum", false)] {
        let mut s = SluiceInput::new(offload);
        g.bench_function(format!("sluice/{name}"), |b| b.iter(|| s.step()));
        let mut m = SmolInput::new(offload);
        g.bench_function(format!("smoltcp/{name}"), |b| b.iter(|| m.step()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_compare
}
criterion_main!(benches);
