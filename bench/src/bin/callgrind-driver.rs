//! A small driver for `valgrind --tool=callgrind`: sets up one workload, then runs its
//! step N times inside `run_steps` (never inlined), so that instruction counts can be
//! restricted to the measured loop:
//!
//! ```text
//! cargo build --release -p sluice-bench --bin callgrind-driver
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*run_steps*' \
//!     --callgrind-out-file=/tmp/cg.out target/release/callgrind-driver tcb-input 100000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -60
//! ```
//!
//! Workloads: `tcb-input` (default `TcpConfig`), `tcb-input-zero-copy` (the same, the
//! payload handed over as a frame), `tcb-input-ack-every`, `tcb-input-no-ts-sack`,
//! `tcb-output`, `iface-sluice`, `iface-smoltcp` (offload), `rr-N` (a 64-byte
//! request/response on one of N connections in turn, both ends: `sluice_bench::rr`),
//! `rr-batch-N` (32 of those per step, a burst per poll, as a loaded run's are),
//! `conn` (a short connection, from connect to close, with one request/response, both
//! ends: `sluice_bench::rr::ConnCycle`).
//!
//! With many connections the cost is memory more than instructions: callgrind's cache
//! model counts the misses per exchange, deterministically (a 2 MiB last level, as this
//! machine's L2, and its 48 KiB L1):
//!
//! ```text
//! valgrind --tool=callgrind --cache-sim=yes --D1=49152,12,64 --LL=2097152,16,64 \
//!     --collect-atstart=no --toggle-collect='*run_steps*' \
//!     --callgrind-out-file=/tmp/cg.out target/release/callgrind-driver rr-10000 30000
//! ```

use std::hint::black_box;

use sluice_bench::sluice_iface::SluiceInput;
use sluice_bench::smol::SmolInput;
use sluice_bench::tcb::{TcbInput, TcbOutput, OUT_BATCH};
use sluice_tcp::TcpConfig;
use sluice_wire::ChecksumCaps;

#[inline(never)]
fn run_steps(n: u64, mut step: impl FnMut()) {
    for _ in 0..n {
        step();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "tcb-input".into());
    let n: u64 = args.next().map(|s| s.parse().expect("N")).unwrap_or(100_000);
    match which.as_str() {
        "tcb-input" | "tcb-input-ack-every" | "tcb-input-no-ts-sack" => {
            let cfg = match which.as_str() {
                "tcb-input-ack-every" => TcpConfig {
                    delayed_ack: None,
                    ..TcpConfig::default()
                },
                "tcb-input-no-ts-sack" => TcpConfig {
                    timestamps: false,
                    sack: false,
                    ..TcpConfig::default()
                },
                _ => TcpConfig::default(),
            };
            let mut w = TcbInput::new(cfg);
            run_steps(n, || w.step());
            black_box(w.acks);
        }
        "tcb-input-zero-copy" => {
            let mut w = TcbInput::new(TcpConfig::default());
            run_steps(n, || w.step_zero_copy());
            black_box(w.acks);
        }
        "tcb-output" => {
            // Whole rounds (`settle` included: subtract it with callgrind_annotate's
            // inclusive cost of `TcbOutput::settle`).
            let mut w = TcbOutput::new(ChecksumCaps::ignored());
            run_steps(n / OUT_BATCH as u64, || {
                for j in 0..OUT_BATCH {
                    black_box(w.emit_one(j));
                }
                w.settle(OUT_BATCH);
            });
        }
        rr if rr.strip_prefix("rr-").is_some_and(|c| c.parse::<usize>().is_ok()) => {
            let conns = rr["rr-".len()..].parse().expect("checked");
            let mut w = sluice_bench::rr::RrPair::new(conns);
            run_steps(n, || w.step());
        }
        rr if rr
            .strip_prefix("rr-batch-")
            .is_some_and(|c| c.parse::<usize>().is_ok()) =>
        {
            // N steps of `BATCH` exchanges each.
            let conns = rr["rr-batch-".len()..].parse().expect("checked");
            let mut w = sluice_bench::rr::RrPair::new(conns);
            run_steps(n, || w.step_batch());
        }
        "conn" => {
            let mut w = sluice_bench::rr::ConnCycle::new();
            run_steps(n, || w.step());
            assert_eq!(w.done, 1_000 + n);
        }
        "iface-sluice" => {
            let mut w = SluiceInput::new(true);
            run_steps(n, || w.step());
        }
        "iface-smoltcp" => {
            let mut w = SmolInput::new(true);
            run_steps(n, || {
                black_box(w.step());
            });
        }
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    }
}
