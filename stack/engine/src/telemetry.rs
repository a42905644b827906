//! The engine's telemetry commands: `/sluice/stats`, `/sluice/conns,PAGE` and
//! `/sluice/config`, served on DPDK's telemetry thread. Counters come from the snapshots
//! the cores publish every 100 ms; connection rows are collected by each core itself
//! between two rounds (`EngineHandle::run_on`), so the data path takes no lock for them.

use std::time::Duration;

use sluice_dpdk::telemetry::{register, TelValue};
use sluice_net::TcpState;

use crate::config::Config;
use crate::handle::{CoreStats, EngineHandle};

/// Connection rows per page of `/sluice/conns`.
pub const CONNS_PAGE: usize = 32;

/// How long `/sluice/conns` waits for a core to answer.
const CORE_WAIT: Duration = Duration::from_millis(500);

const STATES: [TcpState; 11] = [
    TcpState::Closed,
    TcpState::Listen,
    TcpState::SynSent,
    TcpState::SynReceived,
    TcpState::Established,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::Closing,
    TcpState::LastAck,
    TcpState::TimeWait,
];

fn u(name: &str, v: u64) -> (String, TelValue) {
    (name.to_string(), TelValue::U64(v))
}

fn state_name(s: TcpState) -> String {
    format!("{s:?}").to_lowercase()
}

/// The counters of one core (or of their sum), as telemetry's flat dictionary.
pub fn stats_entries(s: &CoreStats) -> Vec<(String, TelValue)> {
    let n = &s.net;
    let t = &n.tcp;
    let mut e = vec![
        u("rx_packets", n.rx_packets),
        u("rx_bytes", n.rx_bytes),
        u("tx_packets", n.tx_packets),
        u("tx_bytes", n.tx_bytes),
        u("drops", n.drops.total()),
        u("tcp_segments_rx", t.segments_rx),
        u("tcp_segments_tx", t.segments_tx),
        u("tcp_retransmits", t.retransmits),
        u("tcp_rst_tx", t.rst_tx),
        u("tcp_accepted", t.accepted),
        u("tcp_connected", t.connected),
        u("tcp_syn_cookies_tx", t.syn_cookies_tx),
        u("tcp_time_wait_recycled", t.time_wait_recycled),
        u("tcp_gro_coalesced", t.gro_coalesced),
        u("tcp_timer_wakeups", t.timer_wakeups),
        u("tcp_timer_entries_stale", t.timer_entries_stale),
        u("tcp_gso_segments_tx", t.gso_segments_tx),
        u("rx_zero_copy_bytes", t.rx_zero_copy_bytes),
        u("tx_zero_copy_bytes", t.tx_zero_copy_bytes),
        u("tx_copied_bytes", t.tx_copied_bytes),
        u("connections", s.connections as u64),
        u("mbufs_in_use", u64::from(s.mbufs_in_use)),
        u("mem_used", s.mem_used),
        u("mem_peak", s.mem_peak),
        u("mem_refusals", s.mem_refusals),
        u("rounds", s.loops.rounds),
        u("busy_rounds", s.loops.busy_rounds),
        u("idle_sleeps", s.loops.idle_sleeps),
        u("busy_ns", s.loops.busy_ns),
        u("run_ns", s.loops.run_ns),
    ];
    for st in STATES {
        e.push(u(
            &format!("conns_{}", state_name(st)),
            s.states[st.index()] as u64,
        ));
    }
    for (reason, count) in n.drops.iter() {
        e.push(u(&format!("drop_{}", reason.as_str()), count));
    }
    e
}

/// The sum of several cores' counters (every core lists the same names in the same order).
pub fn sum_entries(all: &[CoreStats]) -> Vec<(String, TelValue)> {
    let mut total = stats_entries(&CoreStats::default());
    for s in all {
        for (t, (_, v)) in total.iter_mut().zip(stats_entries(s)) {
            if let (TelValue::U64(a), TelValue::U64(b)) = (&mut t.1, v) {
                *a += b;
            }
        }
    }
    total
}

/// One page of connection rows over all cores, and how many there are.
fn conns_page(h: &EngineHandle, page: usize) -> Vec<(String, TelValue)> {
    let start = page * CONNS_PAGE;
    let mut rows = Vec::new();
    let mut before = 0usize;
    let mut total = 0usize;
    for core in 0..h.cores() {
        let skip = start.saturating_sub(before);
        let take = CONNS_PAGE - rows.len().min(CONNS_PAGE);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let asked = h.run_on(core, move |cx| {
            let mut out = Vec::new();
            let n = cx.iface().tcp_conn_infos(skip, take, &mut out);
            let _ = tx.send((n, out));
        });
        let Some((n, infos)) = asked.then(|| rx.recv_timeout(CORE_WAIT).ok()).flatten() else {
            continue; // the core is gone or busy: its rows are left out
        };
        before += n;
        total += n;
        for c in infos {
            if rows.len() >= CONNS_PAGE {
                break;
            }
            let row = vec![
                ("core".to_string(), TelValue::U64(u64::from(core))),
                (
                    "local".to_string(),
                    TelValue::Str(format!("{}:{}", c.local.addr, c.local.port)),
                ),
                (
                    "remote".to_string(),
                    TelValue::Str(format!("{}:{}", c.remote.addr, c.remote.port)),
                ),
                ("state".to_string(), TelValue::Str(state_name(c.state))),
                u("srtt_us", c.srtt_us),
                u("rttvar_us", c.rttvar_us),
                u("rto_ms", c.rto_ms),
                u("mss", c.mss as u64),
                u("cwnd", c.cwnd as u64),
                u("ssthresh", c.ssthresh.min(u32::MAX as usize) as u64),
                u("in_flight", c.in_flight as u64),
                u("retransmits", c.retransmits),
                u("send_queue", c.send_queue as u64),
                u("recv_queue", c.recv_queue as u64),
            ];
            rows.push((format!("{}", start + rows.len()), TelValue::Dict(row)));
        }
    }
    let mut e = vec![
        u("total", total as u64),
        u("page", page as u64),
        u("page_size", CONNS_PAGE as u64),
        u("pages", total.div_ceil(CONNS_PAGE) as u64),
    ];
    e.extend(rows);
    e
}

/// Registers the engine's commands for `handle` (the last engine started answers).
pub fn register_commands(handle: &EngineHandle, config: &Config) -> Result<(), sluice_dpdk::DpdkError> {
    let h = handle.clone();
    register(
        "/sluice/stats",
        "Sluice counters, summed and per core (core0, core1...)",
        Box::new(move |_| {
            let all = h.stats();
            let mut e = sum_entries(&all);
            e.push(u("cores", all.len() as u64));
            for (i, s) in all.iter().enumerate() {
                e.push((format!("core{i}"), TelValue::Dict(stats_entries(s))));
            }
            e
        }),
    )?;
    let h = handle.clone();
    register(
        "/sluice/conns",
        "Sluice TCP connections, 32 per page: /sluice/conns,PAGE (from 0)",
        Box::new(move |params| conns_page(&h, params.trim().parse().unwrap_or(0))),
    )?;
    let h = handle.clone();
    let c = config.clone();
    register(
        "/sluice/config",
        "Sluice's configuration and the port's offloads",
        Box::new(move |_| {
            let s = |k: &str, v: String| (k.to_string(), TelValue::Str(v));
            vec![
                s("port", c.port.clone()),
                s("driver", h.driver.clone()),
                s("mac", format!("{}", h.mac)),
                u("cores", u64::from(c.cores)),
                s("ip", c.ip.clone()),
                s("gateway", c.gateway.clone().unwrap_or_default()),
                u("mtu", u64::from(c.mtu)),
                u("recv_buffer", c.recv_buffer as u64),
                u("send_buffer", c.send_buffer as u64),
                s("congestion", c.congestion.clone()),
                u("nodelay", u64::from(c.nodelay)),
                s("idle", c.idle.clone()),
                u("mbufs", u64::from(c.mbufs)),
                u("rx_copybreak", c.rx_copybreak as u64),
                u("gso_segments", u64::from(c.gso_segments)),
                u("msl_ms", c.msl_ms),
                u("max_connections", c.max_connections as u64),
                u("max_time_wait", c.max_time_wait as u64),
                u("mem_budget_mb", c.mem_budget_mb),
                u("mem_budget_total_mb", c.mem_budget_total_mb),
                u("min_pmtu", u64::from(c.min_pmtu)),
                u("rx_checksum_offload", u64::from(h.checksum_offload.0)),
                u("tx_checksum_offload", u64::from(h.checksum_offload.1)),
                u("tx_ip_checksum_offload", u64::from(h.ip_checksum_offload)),
            ]
        }),
    )?;
    Ok(())
}
