//! Behaviour at speed on the simulated bottleneck (`netsim`): SACK recovery against
//! NewReno, CUBIC's window against RFC 9438's formula, window scaling filling a large
//! bandwidth-delay product, and recovery after a 20-second outage.

mod netsim;

use std::time::Duration;

use netsim::{bulk_config, secs, LinkCfg, Sim, SimCfg};
use sluice_tcp::{CongestionKind, Instant, TcpConfig};

/// A fast link (1 Gbit/s, so segments are spaced as on a real wire) whose queue never
/// overflows: the only losses are the ones a test asks for.
fn fast(delay_ms: u64) -> LinkCfg {
    LinkCfg {
        rate_bps: 1_000_000_000,
        delay: Duration::from_millis(delay_ms),
        loss: 0.0,
        queue_bytes: usize::MAX / 2,
    }
}

/// Time (in RTTs) to repair a burst of `count` lost segments.
fn burst_recovery_rtts(cfg: TcpConfig, count: usize) -> f64 {
    let rtt = 0.05;
    let mut c = SimCfg::new(7, 4 << 20, cfg, fast(25));
    c.burst_loss = Some((1 << 20, count));
    let mut sim = Sim::new(c);
    sim.run().unwrap();
    sim.check_integrity().unwrap();
    let (a, b) = (sim.burst_at.unwrap(), sim.burst_recovered_at.unwrap());
    let rtts = (b - a).as_secs_f64() / rtt;
    println!(
        "{:?} sack={} burst of {count}: repaired in {:.2} RTTs ({} retransmits, {} RTOs)",
        cfg.congestion,
        cfg.sack,
        rtts,
        sim.client.counters().retransmits,
        sim.client.counters().rto_expirations
    );
    rtts
}

#[test]
fn sack_repairs_a_burst_in_about_one_rtt_newreno_needs_many() {
    let base = TcpConfig {
        congestion: CongestionKind::NewReno,
        ..bulk_config(256 << 10)
    };
    let count = 10;
    let sack = burst_recovery_rtts(TcpConfig { sack: true, ..base }, count);
    let reno = burst_recovery_rtts(TcpConfig { sack: false, ..base }, count);
    // From the first loss to the hole's repair: detection takes about one RTT (the
    // duplicate ACKs return), the retransmissions one more.
    assert!(sack <= 2.5, "SACK took {sack:.2} RTTs");
    assert!(
        reno >= 3.0 * sack,
        "NewReno {reno:.2} RTTs vs SACK {sack:.2} RTTs"
    );
    // CUBIC with SACK is as quick.
    let cubic = burst_recovery_rtts(
        TcpConfig {
            congestion: CongestionKind::Cubic,
            sack: true,
            ..base
        },
        count,
    );
    assert!(cubic <= 2.5, "CUBIC+SACK took {cubic:.2} RTTs");
}

#[test]
fn cubic_window_follows_w_cubic() {
    // One loss at 256 KiB (in slow start), then an unconstrained link: after recovery the
    // window must trace W_cubic(t) = C (t - K)^3 + W_max (segments, seconds).
    let rtt = 0.1;
    let mut c = SimCfg::new(3, 24 << 20, bulk_config(16 << 20), fast(50));
    c.burst_loss = Some((256 << 10, 1));
    let mut sim = Sim::new(c);
    let mss = 1448.0;
    let mut w_max = None;
    let mut exit: Option<(Instant, f64)> = None;
    let mut trace: Vec<(f64, f64)> = Vec::new();
    let mut prev = 0usize;
    sim.run_with(Some(Instant::from_secs(12)), |s| {
        let cwnd = s.client.cwnd();
        if w_max.is_none() && s.client.counters().sack_recoveries == 1 && prev > 0 {
            w_max = Some(prev as f64 / mss);
        }
        if let (Some(_), None) = (w_max, exit) {
            if !s.client.in_recovery() {
                exit = Some((s.now, cwnd as f64 / mss));
            }
        }
        if let Some((t0, _)) = exit {
            let t = (s.now - t0).as_secs_f64();
            if trace.last().is_none_or(|(lt, _)| t - lt >= rtt) {
                trace.push((t, cwnd as f64 / mss));
            }
        }
        prev = cwnd;
    })
    .unwrap();
    let w_max = w_max.expect("a loss happened");
    let (_, w0) = exit.expect("recovery ended");
    assert!((w0 / w_max - 0.7).abs() < 0.05, "beta: {w0:.1} after {w_max:.1}");
    let k = (w_max * 0.3 / 0.4).cbrt();
    println!("W_max {w_max:.1} segments, K {k:.2} s");
    let mut checked = 0;
    for &(t, w) in &trace {
        if t < 2.0 * rtt || t > 1.5 * k + 1.0 {
            continue;
        }
        // The window lags W_cubic(t + RTT) by about an RTT of ACKs.
        let want = 0.4 * (t - k).powi(3) + w_max;
        println!("t={t:5.2}s cwnd={w:7.1} W_cubic={want:7.1}");
        assert!(
            (w - want).abs() <= 0.05 * want + 2.0,
            "t={t:.2}: cwnd {w:.1} vs W_cubic {want:.1}"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} samples");
}

/// 100 Mbit/s x 100 ms with 4 MB buffers.
fn bdp_run(window_scaling: bool) -> f64 {
    let link = LinkCfg {
        rate_bps: 100_000_000,
        delay: Duration::from_millis(50),
        loss: 0.0,
        queue_bytes: 1_250_000,
    };
    let cfg = TcpConfig {
        window_scaling,
        ..bulk_config(4 << 20)
    };
    let bytes = if window_scaling { 48 << 20 } else { 4 << 20 };
    let mut sim = Sim::new(SimCfg::new(11, bytes, cfg, link));
    sim.run().unwrap();
    sim.check_integrity().unwrap();
    // Steady state: the second half of the transfer.
    let (a, b) = (sim.time_to(bytes / 2).unwrap(), sim.time_to(bytes).unwrap());
    let bps = sim.goodput(a, b);
    println!(
        "window scaling {window_scaling}: {:.1} Mbit/s ({} queue drops, {} retransmits)",
        bps / 1e6,
        sim.queue_drops,
        sim.client.counters().retransmits
    );
    bps
}

#[test]
fn window_scaling_fills_a_large_bdp() {
    let with = bdp_run(true);
    // Goodput counts payload only: 1448 of 1500 bytes on the wire is 96.5 %.
    assert!(with > 85e6, "with window scaling: {:.1} Mbit/s", with / 1e6);
    let without = bdp_run(false);
    // 65535 bytes per 100 ms RTT = 5.2 Mbit/s.
    assert!(
        without < 5.3e6,
        "without window scaling: {:.2} Mbit/s",
        without / 1e6
    );
    assert!(
        without > 4.0e6,
        "without window scaling: {:.2} Mbit/s",
        without / 1e6
    );
}

#[test]
fn full_rate_within_a_few_rtts_after_a_20_second_outage() {
    let rate = 10_000_000u64;
    let link = LinkCfg {
        rate_bps: rate,
        delay: Duration::from_millis(20),
        loss: 0.0,
        queue_bytes: 50_000,
    };
    let rtt = 0.04;
    let mut c = SimCfg::new(5, 48 << 20, bulk_config(1 << 20), link);
    let (a, b) = (Instant::from_secs(3), Instant::from_secs(23));
    c.outage = Some((a, b));
    let mut sim = Sim::new(c);
    sim.run().unwrap();
    sim.check_integrity().unwrap();
    let back = sim.first_after_outage.expect("traffic after the outage");
    // Full rate: 80 % of the link over a sliding 5-RTT window.
    let win = Duration::from_secs_f64(5.0 * rtt);
    let mut t = back;
    let full = loop {
        if sim.goodput(t, t + win) >= 0.8 * rate as f64 {
            break t;
        }
        t += Duration::from_millis(10);
        assert!(t < back + Duration::from_secs(10), "never back to full rate");
    };
    let rtts = (full - back).as_secs_f64() / rtt;
    println!(
        "outage ends {:.2}s, first delivery {:.2}s, full rate from {:.2}s: {rtts:.1} RTTs",
        secs(b),
        secs(back),
        secs(full)
    );
    assert!(rtts <= 12.0, "took {rtts:.1} RTTs to return to full rate");
}
