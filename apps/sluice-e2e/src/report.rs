//! The Markdown report and its plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::harness::Results;
use crate::plots;

fn f(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            if x.abs() >= 1e4 && digits == 0 {
                // Thousands separated by a thin space for readability.
                let s = format!("{x:.0}");
                let mut o = String::new();
                for (i, ch) in s.chars().enumerate() {
                    if i > 0 && (s.len() - i) % 3 == 0 {
                        o.push(' ');
                    }
                    o.push(ch);
                }
                o
            } else {
                format!("{x:.digits$}")
            }
        }
        _ => "n/a".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fr(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "n/a".into())
}

/// One row of the main table.
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub sluice: Option<f64>,
    pub kernel: Option<f64>,
    pub link: Option<f64>,
    pub digits: usize,
}

/// The rows of the main table (also what the test checks).
pub fn rows(r: &Results) -> Vec<Row> {
    let g = |k: &str| r.get(k);
    let row = |name: String, unit, key: &str, digits| Row {
        name,
        unit,
        sluice: g(&format!("sluice.{key}")),
        kernel: g(&format!("kernel.{key}")),
        link: None,
        digits,
    };
    let n = r.many;
    let mut v = vec![
        row("64 B request/response, 1 connection".into(), "req/s", "rr1.rps", 0),
        row("  p50 latency, 1 connection".into(), "µs", "rr1.p50_us", 1),
        row("  p99 latency, 1 connection".into(), "µs", "rr1.p99_us", 1),
        row(format!("64 B request/response, {n} connections"), "req/s", "rrN.rps", 0),
        row(format!("  p50 latency, {n} connections"), "µs", "rrN.p50_us", 1),
        row(format!("  p99 latency, {n} connections"), "µs", "rrN.p99_us", 1),
        row(format!("64 B request/response, {} connections", r.lots), "req/s", "rrL.rps", 0),
        row(format!("  p99 latency, {} connections", r.lots), "µs", "rrL.p99_us", 1),
        Row {
            link: g("link.1514.gbps"),
            ..row(
                "Bulk, one connection (sluice-bulk --verify none, both stacks)".into(),
                "Gbit/s",
                "bulk.gbps",
                2,
            )
        },
        Row {
            kernel: g("kernel.iperf3.gbps"),
            link: g("link.1514.gbps"),
            ..row(
                "Bulk, one connection: Sluice (sluice-bulk) vs the kernel's iperf3".into(),
                "Gbit/s",
                "bulk.gbps",
                2,
            )
        },
        Row {
            kernel: g("kernel.iperf3.rx_cpu_per_gbps"),
            ..row(
                "  receiver CPUs per Gbit/s (Sluice: sluice-bulk; kernel: iperf3)".into(),
                "CPU/(Gbit/s)",
                "bulk.rx_cpu_per_gbps",
                3,
            )
        },
        Row {
            kernel: g("kernel.iperf3.tx_cpu_per_gbps"),
            ..row(
                "  sender CPUs per Gbit/s (Sluice: sluice-bulk; kernel: iperf3)".into(),
                "CPU/(Gbit/s)",
                "bulk.tx_cpu_per_gbps",
                3,
            )
        },
        row(
            "Bulk, one connection, every byte SHA-256 checked (correctness)".into(),
            "Gbit/s",
            "bulk_sha.gbps",
            2,
        ),
        row(
            format!("New connections (connect, 64 B request/response, close; {} at a time)", r.newconn_conns),
            "conn/s",
            "newconn.cps",
            0,
        ),
        row(
            "Memory per idle connection (Sluice: server RSS delta; kernel: slab per socket + server RSS delta)"
                .into(),
            "B",
            "idle.rss_per_conn",
            0,
        ),
    ];
    if let Some(idle) = v.last_mut() {
        idle.kernel = g("kernel.idle.slab_per_socket")
            .zip(g("kernel.idle.rss_per_conn"))
            .map(|(a, b)| a + b);
    }
    // The same unmodified program on both stacks (sluice-run over virtio; the kernel
    // over veth).
    v.extend([
        row(
            "iperf3, one stream (sluice-run vs kernel)".into(),
            "Gbit/s",
            "prog.iperf3.gbps",
            2,
        ),
        row(
            "sockperf ping-pong --tcp, p50 latency (sluice-run vs kernel)".into(),
            "µs",
            "prog.sockperf.p50_us",
            2,
        ),
        row(
            "redis-benchmark SET, 50 clients (sluice-run vs kernel)".into(),
            "req/s",
            "prog.redis.set_rps",
            0,
        ),
        row(
            "redis-benchmark GET, 50 clients (sluice-run vs kernel)".into(),
            "req/s",
            "prog.redis.get_rps",
            0,
        ),
    ]);
    v
}

fn plot_all(r: &Results, img: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    std::fs::create_dir_all(img).map_err(|e| format!("{}: {e}", img.display()))?;
    let g = |k: &str| r.get(k);
    let mut out = Vec::new();
    let n = r.many;
    let p = img.join("e2e-rates.svg");
    plots::grouped(
        &p,
        "Request/response and new connections per second (log scale)",
        "per second",
        &["Sluice", "kernel"],
        &[
            (
                "64 B rr, 1 conn".into(),
                vec![g("sluice.rr1.rps"), g("kernel.rr1.rps")],
            ),
            (
                format!("64 B rr, {n} conns"),
                vec![g("sluice.rrN.rps"), g("kernel.rrN.rps")],
            ),
            (
                "new conns/s".into(),
                vec![g("sluice.newconn.cps"), g("kernel.newconn.cps")],
            ),
        ],
        true,
        &[],
    )?;
    out.push(("Request/response and connection rates".into(), p));
    let p = img.join("e2e-latency.svg");
    plots::grouped(
        &p,
        "64 B request/response latency (log scale)",
        "µs",
        &["Sluice p50", "kernel p50", "Sluice p99", "kernel p99"],
        &[
            (
                "1 connection".into(),
                vec![
                    g("sluice.rr1.p50_us"),
                    g("kernel.rr1.p50_us"),
                    g("sluice.rr1.p99_us"),
                    g("kernel.rr1.p99_us"),
                ],
            ),
            (
                format!("{n} connections"),
                vec![
                    g("sluice.rrN.p50_us"),
                    g("kernel.rrN.p50_us"),
                    g("sluice.rrN.p99_us"),
                    g("kernel.rrN.p99_us"),
                ],
            ),
        ],
        true,
        &[],
    )?;
    out.push(("Latency".into(), p));
    let p = img.join("e2e-bulk.svg");
    plots::grouped(
        &p,
        "One connection's bulk throughput vs the link (testpmd, 1514 B)",
        "Gbit/s",
        &["Sluice", "kernel", "link limit"],
        &[(
            "bulk, 1 connection".into(),
            vec![
                g("sluice.bulk.gbps"),
                g("kernel.iperf3.gbps"),
                g("link.1514.gbps"),
            ],
        )],
        false,
        &g("link.1514.gbps")
            .map(|l| vec![(0, l / 2.0, "half the link".to_string())])
            .unwrap_or_default(),
    )?;
    out.push(("Bulk throughput".into(), p));
    let p = img.join("e2e-ratios.svg");
    let rt = |k: &str| ratio(g(&format!("sluice.{k}")), g(&format!("kernel.{k}")));
    plots::grouped(
        &p,
        "Sluice / kernel, with the issue's targets",
        "ratio",
        &["Sluice / kernel"],
        &[
            ("rr, 1 conn".into(), vec![rt("rr1.rps")]),
            (format!("rr, {n} conns"), vec![rt("rrN.rps")]),
            (
                "bulk vs iperf3".into(),
                vec![ratio(g("sluice.bulk.gbps"), g("kernel.iperf3.gbps"))],
            ),
            ("new conns/s".into(), vec![rt("newconn.cps")]),
        ],
        false,
        &[
            (1, 5.0, "5x".into()),
            (2, 2.0, "2x".into()),
            (3, 10.0, "10x".into()),
        ],
    )?;
    out.push(("Ratios and targets".into(), p));
    Ok(out)
}

/// What limits the targets that are not met: what the profiles and counters of these
/// runs show, and the structural reasons behind them.
fn analysis(md: &mut String, r: &Results) {
    let g = |k: &str| r.get(k);
    let _ = writeln!(
        md,
        "## What limits Sluice here
"
    );
    let _ = writeln!(
        md,
        "- **New connections/s**: the client is the limit: it opens each connection (an ephemeral port, \
         the ISN's keyed hash, a TCB from the shared configuration, the slab and the flow table), closes \
         first and holds it in TIME-WAIT (20 ms here), while the server only answers. A connection's \
         buffers, RACK log and ranges come from per-thread caches that ended connections give back, so \
         nothing is zero-filled per connection; the profiles are flat, the per-segment path (parsing, \
         building, the flow table's lookup) and the look ahead's prefetches on top. \
         (The kernel client's `connect` is blocking, one handshake at a time.)"
    );
    let _ = writeln!(
        md,
        "- **Bulk**: the sender is the limit (the receiver's core polls an empty queue part of the time). \
         TCP hands the interface segments of up to 44 full-sized ones (software GSO: the header is emitted \
         once per large segment), the receiver takes the in-order continuation of a burst's previous segment \
         by its text alone (GRO) and sends one ACK per burst, and virtio/vhost fill and verify the TCP \
         checksums. What is left on the sender is copying: the payload is copied from the application into \
         the connection's send buffer and again into each segment's mbuf (`memmove`, about half the \
         sender's profile), then allocating mbufs and touching their cold headroom. The virtio ports' TSO \
         (vhost `tso=1`) is not used yet: the receiving side would get 64 KiB packets as chains of mbufs, \
         which the receive path does not take apart. The testpmd link figure (Sluice/link {}) is txonly \
         frames whose payload nobody writes or reads, a ceiling that no stack that moves data reaches. \
         The SHA-256-checked row is bound by the application's hashing and pattern check on the stack's \
         core, as the kernel's is.",
        fr(ratio(g("sluice.bulk.gbps"), g("link.1514.gbps")))
    );
    let _ = writeln!(
        md,
        "- **State per idle connection**: `size_of::<Tcb>()` is {} B before any buffer: the front a segment \
         touches (sequence numbers, windows, timers, RTT and congestion state, the counts of the SACK \
         scoreboard and of the reassembly queue) and the per-connection counters. The recovery state lives \
         out of line, taken when first needed from per-thread caches: the RACK send log (64 entries, 1 KiB; \
         the newest lies in the TCB) on a second flight sent with SACK while one is unacknowledged, the scoreboard's ranges (32, 256 B) on the first SACKed range, \
         the reassembly ranges (16, 256 B) on the first out-of-order segment; connections configured alike \
         share one copy of the TCP configuration. The measured RSS per connection \
         ({} B) and the computed total ({} B) differ both ways: the total counts the two buffers, which an \
         idle connection has not taken yet (they are allocated when data first moves), while the RSS also \
         holds allocator size classes and the growth by doubling of the flow table, the slab and the \
         application's handle list.",
        f(g("sluice.state.tcb"), 0),
        f(g("sluice.idle.rss_per_conn"), 0),
        f(g("sluice.state.total"), 0)
    );
    let _ = writeln!(
        md,
        "- **Request/response**: at one connection Sluice's latency is a few microseconds against the \
         kernel's wake-ups through veth and `poll(2)`. At {} connections both cores do per-segment work: \
         readiness comes from a ready list, so a round visits only the connections that changed, and the \
         client (the same core budget) is as loaded as the server. At {} connections a connection's state \
         is out of the caches: a segment touches 11 cache lines of it (`Conn::HOT`), which the look ahead \
         at a burst prefetches with the lines of its buffers, and both sides wait on those misses (the \
         profiles' top samples sit at the prefetch instructions). The kernel figures on this shared 2-core \
         VM swing widely from run to run (its threads sleep and wake; Sluice's poll), and so does this \
         machine's speed for both stacks: the ratios at many connections are the least stable figures of \
         this report.\n",
        r.many, r.lots
    );
}

fn target(
    md: &mut String,
    name: &str,
    measured: Option<f64>,
    goal: f64,
    unit: &str,
    higher: bool,
    limit: &str,
) {
    let (met, far) = match measured {
        None => ("not measured".to_string(), "-".to_string()),
        Some(m) => {
            let ok = if higher { m >= goal } else { m <= goal };
            let far = if higher {
                format!("{:.0}% of the target", m / goal * 100.0)
            } else {
                format!("{:.0}% of the budget", m / goal * 100.0)
            };
            (if ok { "**met**" } else { "**not met**" }.to_string(), far)
        }
    };
    let m = measured
        .map(|m| format!("{m:.2}{unit}"))
        .unwrap_or_else(|| "n/a".into());
    let _ = writeln!(md, "| {name} | {m} | {met} | {far} | {limit} |");
}

/// Writes the report and the plots; returns the report's path.
pub fn write(r: &Results, out: &Path, img: &Path, command: &str, quick: bool) -> Result<PathBuf, String> {
    let g = |k: &str| r.get(k);
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: end to end\n");
    let _ = writeln!(
        md,
        "Sluice against the Linux kernel's TCP, on this machine, with the same applications \
         (`sluice-apps`: `sluice-echo`, `sluice-loadgen`, `sluice-bulk`), one core per side, and the raw \
         link limit measured with `dpdk-testpmd`. Generated by `{command}` (the `sluice-e2e` crate) on {}; \
         every figure below comes from that one run ({:.0} s in all, {} s per measurement after a 1 s warm-up). \
         The machine is shared and virtual: absolute figures drift from run to run, the ratios less so.\n",
        r.started, r.elapsed, r.seconds
    );
    if quick {
        let _ = writeln!(
            md,
            "> **Quick mode** (CI): 1 s per measurement, few connections — not a benchmark.\n"
        );
    }
    let _ = writeln!(
        md,
        "The in-memory comparison of Sluice with smoltcp (no device, no copies to a NIC) is done by the \
         microbenchmarks: see [Microbenchmarks](benchmarks.md#microbenchmarks) in `docs/benchmarks.md`; it is \
         not repeated here.\n"
    );
    let _ = writeln!(
        md,
        "## Several cores per side (a machine with 4+ CPUs)\n\n\
         This machine has 2 CPUs, so every row above is one engine core per side. On a machine with at least \
         2N CPUs, run the request/response rows with N = 1, 2 and 4 server cores against a client with as \
         many; each engine core is pinned to its own lcore's CPU, so the two processes need disjoint lcore \
         lists, and `queues=N` is set on both vdevs by `--cores N`:\n\n\
         ```sh\n\
         N=4   # server cores; the client gets as many\n\
         target/release/sluice-echo --port vhost:/tmp/mc.sock --ip 198.18.0.1/24 --listen 7 --nodelay \\\n\
           --cores $N --idle busy --eal=--in-memory --eal=--single-file-segments --eal=--no-pci \\\n\
           --eal=-l --eal=0-$((N-1)) &\n\
         target/release/sluice-loadgen --port virtio:/tmp/mc.sock --ip 198.18.0.2/24 --connect 198.18.0.1:7 \\\n\
           --nodelay --connections 256 --request-size 64 --duration 10 --progress \\\n\
           --cores $N --idle busy --eal=--in-memory --eal=--single-file-segments --eal=--no-pci \\\n\
           --eal=-l --eal=$N-$((2*N-1))\n\
         ```\n\n\
         Check the pinning with `grep Cpus_allowed_list /proc/$(pgrep sluice-echo)/task/*/status` (one CPU per \
         `sluice-core-*` thread) and the per-core `rx_packets` in the summaries (every core carries \
         connections). The kernel's side at N cores: `sluice-echo --stack kernel --cores N` (N threads) \
         pinned with `taskset -c 0-$((N-1))` against `sluice-loadgen --stack kernel --cores N` on the \
         other N CPUs, or sockperf/wrk with as many threads. For bulk, one connection stays on one core \
         whatever N is; run N `sluice-bulk` pairs side by side to measure the aggregate.\n"
    );
    let _ = writeln!(md, "## Machine\n\n| | |\n|---|---|");
    for (k, v) in &r.machine {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(
        md,
        "\n## Setup\n\n\
         - **Sluice**: two processes over `virtio_user` <-> `net_vhost` (a vhost-user socket in /tmp): the \
         server on the `net_vhost` side, 198.18.0.1, EAL `-l 0` (and `taskset -c 0`); the client on the \
         `virtio_user` side, 198.18.0.2, EAL `-l 1` (`taskset -c 1`); both `--in-memory --single-file-segments \
         --no-pci`, one engine core, busy polling (`--idle busy`).\n\
         - **Kernel**: the same binaries with `--stack kernel` (one thread, `poll(2)`), in two network namespaces \
         created for the run and joined by a veth pair: server 198.18.3.1/24 pinned with `taskset -c 0`, client \
         198.18.3.2/24 (and .3-.9) pinned with `taskset -c 1`. Client namespace: `ip_local_port_range=1024 65535`, \
         `tcp_tw_reuse=1`; server namespace: `somaxconn=65535`.\n\
         - **Link limit**: `dpdk-testpmd` txonly (virtio_user, main lcore 1, forwarding on lcore 0) -> rxonly \
         (net_vhost, main lcore 0, forwarding on lcore 1) over the same kind of vhost-user pair; the receiver's \
         `Rx-pps` averaged after the first two seconds; Gbit/s = pps x frame bytes x 8 (no preamble or CRC).\n\
         - Request/response: `sluice-loadgen` (closed loop, one 64 B request outstanding per connection, \
         `--nodelay`) against `sluice-echo`; rates are the mean of the loadgen's per-second figures after the \
         first second; latency percentiles over the whole run (loadgen's histogram, request sent to response \
         received).\n\
         - Bulk: `sluice-bulk send` (client) -> `sluice-bulk recv` (server), one connection; the receiver's \
         rate from first to last byte. Sluice's connection has 512 KiB send and receive buffers \
         (`--send-buffer`/`--recv-buffer`; the kernel autotunes its own up to 6 MiB); the client's \
         virtio_user port cuts large segments itself (TSO, negotiated with net_vhost's `tso=1`), the \
         server's net_vhost port receives them whole (`linear-buffer=1,ext-buffer=1`). The rate rows use `--verify none` (the sender repeats one pre-generated \
         chunk by reference, the receiver counts bytes), so they measure the stack; the correctness row uses \
         `--verify sha256` (ChaCha8 pattern and SHA-256 on both sides, every byte compared), whose checks \
         run on the stack's core. The kernel's own tool is iperf3 (`iperf3 -s -1` / `iperf3 -c -t SECONDS`, \
         one stream) over the same veth pair and CPUs. CPUs per Gbit/s: each process's CPU time (user + \
         system, all threads, from /proc/PID/stat) over the transfer, divided by its wall time and by the \
         rate; Sluice busy-polls, so it uses one whole CPU per side whatever the rate.\n\
         - New connections: `sluice-loadgen --new-connections` (each connection: connect, one 64 B \
         request/response, close; {} connections at a time), against `sluice-echo`. The Sluice client runs \
         with `--msl-ms 10` (TIME-WAIT 20 ms: it closes first and has 16384 ephemeral ports, so ports are not what limits the rate), the kernel \
         client with `tcp_tw_reuse=1`. The kernel driver's `connect` is blocking (one handshake at a time per \
         thread) while Sluice's is not.\n\
         - The same program on both stacks: iperf3 (one stream, `-t SECONDS`), sockperf (`ping-pong --tcp`, \
         p50 of its own report) and redis-benchmark (`-c 50 -t set,get`, against `redis-server` with \
         persistence off), unmodified. On Sluice each runs under `sluice-run` (its defaults: 1 ms spin, 1 MiB \
         buffers), the server on `net_vhost` (CPU 0), the client on `virtio_user` (CPU 1); on the kernel, \
         over the veth pair on the same CPUs.\n",
        r.newconn_conns
    );
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "| Measurement | Unit | Sluice | Kernel | Sluice/kernel | Sluice/link |\n|---|---|---:|---:|---:|---:|"
    );
    for row in rows(r) {
        let link = match (row.sluice, row.link) {
            (Some(s), Some(l)) if l > 0.0 => format!("{:.2}x of {:.1}", s / l, l),
            _ => "".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            row.name,
            row.unit,
            f(row.sluice, row.digits),
            f(row.kernel, row.digits),
            fr(ratio(row.sluice, row.kernel)),
            link
        );
    }
    let _ = writeln!(
        md,
        "\nFor latency and memory, a ratio below 1 is better for Sluice; for the rates, above 1.\n"
    );
    let _ = writeln!(
        md,
        "### Link limit (testpmd, virtio_user -> net_vhost, one core each)\n"
    );
    let _ = writeln!(md, "| Frame | Mpps | Gbit/s |\n|---|---:|---:|");
    for size in [64, 1514] {
        let _ = writeln!(
            md,
            "| {size} B | {} | {} |",
            f(g(&format!("link.{size}.mpps")), 2),
            f(g(&format!("link.{size}.gbps")), 1)
        );
    }
    let _ = writeln!(
        md,
        "\n### Sluice over IPv6 and over IPv4\n\nThe same runs, Sluice on both sides, over \
         2001:2::/64 (`--ip6`) and over 198.18.0.0/24, in this run. Both ask the port for the \
         same offloads (TCP checksum, TSO); the IPv6 header is 20 bytes longer.\n"
    );
    let _ = writeln!(
        md,
        "| | Unit | IPv6 | IPv4 | IPv6/IPv4 |\n|---|---|---:|---:|---:|"
    );
    for (name, unit, v6, v4, digits) in [
        (
            "64 B request/response, 1 connection".to_string(),
            "req/s",
            "rr1v6.rps",
            "rr1.rps",
            0,
        ),
        (
            format!("64 B request/response, {} connections", r.many),
            "req/s",
            "rrNv6.rps",
            "rrN.rps",
            0,
        ),
        (
            "Bulk, one connection".to_string(),
            "Gbit/s",
            "bulkv6.gbps",
            "bulk.gbps",
            2,
        ),
    ] {
        let (a, b) = (g(&format!("sluice.{v6}")), g(&format!("sluice.{v4}")));
        let _ = writeln!(
            md,
            "| {name} | {unit} | {} | {} | {} |",
            f(a, digits),
            f(b, digits),
            fr(ratio(a, b))
        );
    }
    let _ = writeln!(md, "\n### Memory per idle connection\n");
    let n = r.idle_target;
    let _ = writeln!(
        md,
        "Asked: {n} idle connections, spread over 8 server ports (7001-7008) so that one client address has \
         enough ephemeral ports; held by `sluice-e2e idle` (a server that accepts and holds, a client that \
         connects and holds, nothing sent), on each stack. Sluice: {} established; server process VmRSS \
         (`/proc/PID/status`) before the first connection and after the last, divided by the count; buffers \
         `--recv-buffer {b} --send-buffer {b}`. Kernel: {} established; `Slab:` of `/proc/meminfo` before and \
         after, divided by 2 x the count (both ends are sockets of this kernel; the kernel allocates socket \
         buffers only when data is queued, so idle sockets hold none), and the server process's RSS delta.\n",
        f(g("sluice.idle.n"), 0),
        f(g("kernel.idle.n"), 0),
        b = r.buffer
    );
    let _ = writeln!(md, "| | Bytes per connection |\n|---|---:|");
    let _ = writeln!(
        md,
        "| Sluice: server RSS delta | {} |",
        f(g("sluice.idle.rss_per_conn"), 0)
    );
    let _ = writeln!(
        md,
        "| Sluice: stack state, computed: `size_of::<Tcb>()` | {} |",
        f(g("sluice.state.tcb"), 0)
    );
    let _ = writeln!(
        md,
        "| Sluice: + interface bookkeeping (Conn wrapper, slab slot, flow table, timer wheel; estimated) | {} |",
        f(g("sluice.state.overhead"), 0)
    );
    let _ = writeln!(
        md,
        "| Sluice: + receive and send buffers ({} B each) | {} |",
        r.buffer,
        f(g("sluice.state.buffers"), 0)
    );
    let _ = writeln!(
        md,
        "| Sluice: stack state, total | {} |",
        f(g("sluice.state.total"), 0)
    );
    let _ = writeln!(
        md,
        "| Kernel: slab delta per socket | {} |",
        f(g("kernel.idle.slab_per_socket"), 0)
    );
    let _ = writeln!(
        md,
        "| Kernel: server RSS delta (user space: the fd and the std `TcpStream`) | {} |",
        f(g("kernel.idle.rss_per_conn"), 0)
    );
    let _ = writeln!(md, "\n## Targets (from the issue)\n");
    let _ = writeln!(
        md,
        "| Target | Measured | Result | How far | Notes |\n|---|---:|---|---|---|"
    );
    let rt = |k: &str| ratio(g(&format!("sluice.{k}")), g(&format!("kernel.{k}")));
    target(
        &mut md,
        &format!("64 B request/response at {} connections >= 5x the kernel", r.many),
        rt("rrN.rps"),
        5.0,
        "x",
        true,
        "",
    );
    target(
        &mut md,
        "New connections/s >= 10x the kernel",
        rt("newconn.cps"),
        10.0,
        "x",
        true,
        "",
    );
    target(
        &mut md,
        "One connection's bulk >= 2x the kernel's iperf3",
        ratio(g("sluice.bulk.gbps"), g("kernel.iperf3.gbps")),
        2.0,
        "x",
        true,
        "",
    );
    target(
        &mut md,
        "One connection's bulk >= half the testpmd link limit (1514 B)",
        ratio(g("sluice.bulk.gbps"), g("link.1514.gbps")),
        0.5,
        "x of the link",
        true,
        "",
    );
    target(
        &mut md,
        "<= 2 KiB of stack state per idle connection (Tcb + bookkeeping, without data buffers)",
        g("sluice.state.tcb")
            .zip(g("sluice.state.overhead"))
            .map(|(a, b)| a + b),
        2048.0,
        " B",
        false,
        "computed",
    );
    target(
        &mut md,
        "<= 2 KiB per idle connection, measured (server RSS delta, with 1 KiB + 1 KiB buffers)",
        g("sluice.idle.rss_per_conn"),
        2048.0,
        " B",
        false,
        "measured",
    );
    let _ = writeln!(md, "\n## Plots\n");
    let rel = |p: &Path| -> String {
        let base = out.parent().unwrap_or(Path::new("."));
        p.strip_prefix(base)
            .map(|x| x.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    match plot_all(r, img) {
        Ok(ps) => {
            for (t, p) in ps {
                let _ = writeln!(md, "![{t}]({})\n", rel(&p));
            }
        }
        Err(e) => {
            let _ = writeln!(md, "(plots failed: {e})\n");
        }
    }
    if !r.profiles.is_empty() {
        let _ = writeln!(
            md,
            "## Where the time goes (perf)\n\n`perf record {}-F 999 -p PID` on the Sluice server and client \
             during a {:.0} s run of each scenario (separate from the measured runs), `perf report --no-children \
             --sort symbol`, symbols above 2%:\n",
            if r.perf_hw { "" } else { "-e cpu-clock " },
            r.seconds.min(3.0)
        );
        for (t, lines) in &r.profiles {
            let _ = writeln!(md, "**{t}**\n\n```");
            for l in lines {
                let _ = writeln!(md, "{l}");
            }
            let _ = writeln!(md, "```\n");
        }
    }
    analysis(&mut md, r);
    if !r.notes.is_empty() || !r.errors.is_empty() {
        let _ = writeln!(md, "## Notes from the run\n");
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
        for e in &r.errors {
            let _ = writeln!(md, "- **failed**: {e}");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "## Commands\n\nEverything above: `{command}` (setup, release build, `sluice-e2e run`; it removes \
         its namespaces, processes and vhost sockets even when it fails). `sluice-e2e run --quick` is the CI \
         version (`cargo test -p sluice-e2e`). The processes it ran, one of each (`/tmp/sluice-e2e-PID-*` is a \
         per-run vhost-user socket; SRV and CLI are the two namespaces):\n\n```"
    );
    for (k, c) in &r.commands {
        let _ = writeln!(md, "# {k}\n{c}");
    }
    let _ = writeln!(md, "```");
    if let Some(d) = out.parent() {
        if !d.as_os_str().is_empty() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
    }
    std::fs::write(out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out.to_path_buf())
}
