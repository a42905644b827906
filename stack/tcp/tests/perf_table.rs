//! Throughput of the simulated pair under random loss, for NewReno and CUBIC, with and
//! without SACK; prints the table of `docs/tcp-performance.md`.
//!
//! Regenerate: `cargo test -p sluice-tcp --release --test perf_table -- --nocapture`

mod netsim;

use std::time::Duration;

use netsim::{bulk_config, LinkCfg, Sim, SimCfg};
use sluice_tcp::{CongestionKind, TcpConfig};

const RATE: u64 = 50_000_000;
const ONE_WAY: Duration = Duration::from_millis(20);
const SEEDS: u64 = 8;
const BYTES: usize = 8 << 20;

struct Row {
    mbps: f64,
    retransmits: u64,
    rtos: u64,
    virtual_secs: f64,
}

fn measure(cc: CongestionKind, sack: bool, loss: f64) -> Row {
    let mut row = Row {
        mbps: 0.0,
        retransmits: 0,
        rtos: 0,
        virtual_secs: 0.0,
    };
    for seed in 0..SEEDS {
        let link = LinkCfg {
            rate_bps: RATE,
            delay: ONE_WAY,
            loss: 0.0,
            queue_bytes: 250_000,
        };
        let cfg = TcpConfig {
            congestion: cc,
            sack,
            ..bulk_config(4 << 20)
        };
        let mut c = SimCfg::new(1000 + seed, BYTES, cfg, link);
        // Random loss of data segments (the ACK path is clean).
        c.fwd.loss = loss;
        let mut sim = Sim::new(c);
        sim.run()
            .unwrap_or_else(|e| panic!("{cc:?} sack={sack} loss={loss}: {e}"));
        sim.check_integrity().unwrap();
        let done = sim.time_to(BYTES).unwrap();
        let start = sim.progress[0].0;
        row.mbps += BYTES as f64 * 8.0 / (done - start).as_secs_f64() / 1e6;
        row.retransmits += sim.client.counters().retransmits;
        row.rtos += sim.client.counters().rto_expirations;
        row.virtual_secs += (done - start).as_secs_f64();
    }
    let n = SEEDS as f64;
    Row {
        mbps: row.mbps / n,
        retransmits: row.retransmits / SEEDS,
        rtos: row.rtos / SEEDS,
        virtual_secs: row.virtual_secs / n,
    }
}

#[test]
fn perf_table() {
    let mut out = String::new();
    out.push_str(&format!(
        "Link {} Mbit/s, RTT {} ms, drop-tail queue 250 kB (1 BDP), 4 MB buffers, {} MiB one way, \
         mean of {SEEDS} seeds; random loss on the data path.\n\n",
        RATE / 1_000_000,
        2 * ONE_WAY.as_millis(),
        BYTES >> 20
    ));
    out.push_str("| loss | controller | SACK | goodput (Mbit/s) | retransmits | RTOs | time (s) |\n");
    out.push_str("|---:|---|---|---:|---:|---:|---:|\n");
    for loss in [0.01, 0.05] {
        for cc in [CongestionKind::NewReno, CongestionKind::Cubic] {
            for sack in [false, true] {
                let r = measure(cc, sack, loss);
                out.push_str(&format!(
                    "| {:.0} % | {:?} | {} | {:.2} | {} | {} | {:.1} |\n",
                    loss * 100.0,
                    cc,
                    if sack { "yes" } else { "no" },
                    r.mbps,
                    r.retransmits,
                    r.rtos,
                    r.virtual_secs
                ));
            }
        }
    }
    println!("{out}");
}
