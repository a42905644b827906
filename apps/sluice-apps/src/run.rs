//! Running an application on either stack: the command-line flags every binary shares, the
//! stop conditions (SIGINT/SIGTERM, a time limit, the application's own), progress once a
//! second, and the summary table at the end.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_engine::{Config, ConfigArgs, CoreStats, Engine};

use crate::drive::{kernel, sluice::SluiceDriver, Factory, Plan};
use crate::loadgen::share;
use crate::session::{Live, Session, Snapshot, Tally};

/// Which TCP/IP stack carries the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stack {
    /// Sluice on a DPDK port (the engine flags below apply).
    Sluice,
    /// The Linux kernel's sockets (one thread per --cores).
    Kernel,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::Sluice => "sluice",
            Stack::Kernel => "kernel",
        }
    }
}

/// Flags every binary has.
#[derive(Clone, Debug, clap::Args)]
pub struct StackArgs {
    /// The TCP/IP stack to run on.
    #[arg(long, value_enum, default_value = "sluice")]
    pub stack: Stack,
    /// Print counters once a second while running.
    #[arg(long)]
    pub progress: bool,
    /// Kernel stack: the local address to listen on (`::` takes IPv6 and IPv4 clients).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Sluice: send by filling mbufs of the port's pool and queueing them by reference
    /// (`write_frame`; sent and retransmitted as chained mbufs) instead of writing into the
    /// connection's send buffer.
    #[arg(long)]
    pub zero_copy_send: bool,
    #[command(flatten)]
    pub engine: ConfigArgs,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Sets a SIGINT/SIGTERM handler (once per process) that asks the run to stop.
fn handle_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)) {
            eprintln!("warning: no signal handler: {e}");
        }
    });
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub program: &'static str,
    pub plan: Plan,
    /// Client connections in all (spread over the cores).
    pub connections: usize,
    /// Stop after this long.
    pub seconds: Option<f64>,
}

/// What a run gives back.
#[derive(Debug)]
pub struct RunResult {
    pub stack: Stack,
    pub seconds: f64,
    /// One per core (or kernel thread).
    pub cores: Vec<Tally>,
    /// The engine's counters (Sluice).
    pub engine: Vec<CoreStats>,
    pub interrupted: bool,
}

impl RunResult {
    pub fn total(&self) -> Tally {
        let mut t = Tally::new();
        self.cores.iter().for_each(|c| t.merge(c));
        t
    }
}

/// Watches the stop conditions and prints progress until `stop` is set.
fn supervise(
    stop: &AtomicBool,
    spec: &RunSpec,
    progress: bool,
    lives: &[Arc<Live>],
    engine: Option<&sluice_engine::EngineHandle>,
) {
    let t0 = Instant::now();
    let mut next = Duration::from_secs(1);
    let mut prev = Snapshot::default();
    let mut prev_pkts = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let el = t0.elapsed();
        if INTERRUPTED.load(Ordering::SeqCst) || spec.seconds.is_some_and(|s| el.as_secs_f64() >= s) {
            stop.store(true, Ordering::SeqCst);
        }
        if progress && el >= next {
            next += Duration::from_secs(1);
            let now = Snapshot::sum(lives.iter().map(|l| l.snapshot()));
            let mut line = format!(
                "[{:6.1}s] open {:>6} | {:>9} req/s | in {:>7.3} Gbit/s | out {:>7.3} Gbit/s | errors {} (+{}) conn_errors {}",
                el.as_secs_f64(),
                now.conns_opened.saturating_sub(now.conns_closed),
                now.requests - prev.requests,
                (now.bytes_in - prev.bytes_in) as f64 * 8e-9,
                (now.bytes_out - prev.bytes_out) as f64 * 8e-9,
                now.errors,
                now.errors - prev.errors,
                now.conn_errors,
            );
            if let Some(h) = engine {
                let st = h.stats();
                let rx: u64 = st.iter().map(|c| c.net.rx_packets).sum();
                let tx: u64 = st.iter().map(|c| c.net.tx_packets).sum();
                let drops: u64 = st.iter().map(|c| c.net.drops.total()).sum();
                let rtx: u64 = st.iter().map(|c| c.net.tcp.retransmits).sum();
                line += &format!(
                    " | rx {} pps tx {} pps drops {} | retransmits {} (+{})",
                    rx.saturating_sub(prev_pkts.0),
                    tx.saturating_sub(prev_pkts.1),
                    drops,
                    rtx,
                    rtx.saturating_sub(prev_pkts.2),
                );
                prev_pkts = (rx, tx, rtx);
            }
            println!("{line}");
            prev = now;
        }
    }
}

/// Runs sessions made by `make` on the chosen stack until a stop condition; returns the
/// counts. Errors are setup errors (the port, the address, EAL).
pub fn run<S, M>(args: &StackArgs, spec: &RunSpec, make: M) -> Result<RunResult, String>
where
    S: Session + 'static,
    M: Fn() -> S + Send + Sync + 'static,
{
    handle_signals();
    init_logging();
    let make: Factory<S> = Arc::new(make);
    let config = Config::from_args(&args.engine).map_err(|e| e.to_string())?;
    let cores = config.cores as usize;
    let lives: Vec<Arc<Live>> = (0..cores).map(|_| Arc::default()).collect();
    let t0 = Instant::now();
    match args.stack {
        Stack::Sluice => {
            let results: Arc<Mutex<Vec<Tally>>> = Arc::default();
            let (mut plan, conns) = (spec.plan, spec.connections);
            plan.zero_copy_send = args.zero_copy_send;
            let engine = Engine::run(
                spec.program,
                &config,
                |core| {
                    let want = share(conns, core as usize, cores);
                    SluiceDriver::new(
                        plan,
                        want,
                        make.clone(),
                        lives[core as usize].clone(),
                        results.clone(),
                    )
                },
                |h| {
                    eprintln!(
                        "{}: sluice on {} ({}) mac {}, {} core(s), ip {}",
                        spec.program, config.port, h.driver, h.mac, cores, config.ip
                    );
                    announce_ready(&h, spec, &config);
                    let stop = h.stop_flag();
                    supervise(&stop, spec, args.progress, &lives, Some(&h));
                },
            )
            .map_err(|e| e.to_string())?;
            let cores = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
            Ok(RunResult {
                stack: Stack::Sluice,
                seconds: t0.elapsed().as_secs_f64(),
                cores,
                engine,
                interrupted: INTERRUPTED.load(Ordering::SeqCst),
            })
        }
        Stack::Kernel => {
            let listener = match spec.plan.listen {
                Some(port) => {
                    let l = TcpListener::bind(SocketAddr::new(args.bind, port))
                        .map_err(|e| format!("listen on {}:{port}: {e}", args.bind))?;
                    l.set_nonblocking(true).map_err(|e| e.to_string())?;
                    // The plan's backlog (std listens with 128), capped by somaxconn:
                    // thousands of clients connecting at once are not dropped at the door.
                    let backlog = i32::try_from(spec.plan.backlog).unwrap_or(i32::MAX);
                    // SAFETY: listen(2) on a socket we own; calling it again on a listening
                    // socket only changes its backlog.
                    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), backlog) } != 0 {
                        return Err(format!("listen: {}", std::io::Error::last_os_error()));
                    }
                    Some(l)
                }
                None => None,
            };
            eprintln!("{}: kernel sockets, {} thread(s)", spec.program, cores);
            let stop = AtomicBool::new(false);
            let epoch = Instant::now();
            let tallies = std::thread::scope(|s| {
                let threads: Vec<_> = (0..cores)
                    .map(|c| {
                        let (make, live, stop, listener) =
                            (make.clone(), &lives[c], &stop, listener.as_ref());
                        let want = share(spec.connections, c, cores);
                        let nodelay = config.nodelay;
                        s.spawn(move || {
                            kernel::run(spec.plan, listener, want, nodelay, make, stop, live, epoch)
                        })
                    })
                    .collect();
                supervise(&stop, spec, args.progress, &lives, None);
                threads
                    .into_iter()
                    .map(|t| t.join())
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|_| "a thread panicked".to_string())?;
            Ok(RunResult {
                stack: Stack::Kernel,
                seconds: t0.elapsed().as_secs_f64(),
                cores: tallies,
                engine: Vec::new(),
                interrupted: INTERRUPTED.load(Ordering::SeqCst),
            })
        }
    }
}

/// A two-column table, printed with aligned values.
#[derive(Debug, Default)]
pub struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, name: impl Into<String>, value: impl std::fmt::Display) -> &mut Table {
        self.rows.push((name.into(), value.to_string()));
        self
    }
    pub fn render(&self) -> String {
        let w = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut s = format!("== {} ==\n", self.title);
        for (k, v) in &self.rows {
            s += &format!("  {k:<w$}  {v}\n");
        }
        s
    }
}

/// The rows every run has: duration, connections, requests, bytes, errors.
pub fn summary_table(program: &str, r: &RunResult) -> Table {
    let t = r.total();
    let mut tb = Table::new(format!("{program} summary (stack {})", r.stack.name()));
    let secs = r.seconds;
    tb.row("duration", format!("{secs:.2} s"))
        .row("connections opened", t.conns_opened)
        .row("connections closed", t.conns_closed)
        .row("connection errors", t.conn_errors)
        .row("  of which timeouts", t.timeouts)
        .row("requests", t.requests)
        .row(
            "requests/s",
            format!("{:.0}", crate::loadgen::rate(t.requests, secs)),
        )
        .row("errors", t.errors)
        .row("bytes in", t.bytes_in)
        .row("bytes out", t.bytes_out)
        .row("Gbit/s in", format!("{:.3}", crate::bulk::gbps(t.bytes_in, secs)))
        .row(
            "Gbit/s out",
            format!("{:.3}", crate::bulk::gbps(t.bytes_out, secs)),
        );
    tb
}

/// The engine's per-core counters: packets, bytes, TCP, drops by reason.
pub fn engine_table(r: &RunResult) -> Option<Table> {
    if r.engine.is_empty() {
        return None;
    }
    let mut tb = Table::new("sluice engine, per core");
    for (i, c) in r.engine.iter().enumerate() {
        let n = &c.net;
        tb.row(
            format!("core {i} rx"),
            format!("{} packets, {} bytes", n.rx_packets, n.rx_bytes),
        );
        tb.row(
            format!("core {i} tx"),
            format!("{} packets, {} bytes", n.tx_packets, n.tx_bytes),
        );
        tb.row(
            format!("core {i} tcp"),
            format!(
                "{} segs in, {} segs out ({} retransmitted), {} accepted, {} connected, {} rst sent, {} TIME-WAIT recycled",
                n.tcp.segments_rx,
                n.tcp.segments_tx,
                n.tcp.retransmits,
                n.tcp.accepted,
                n.tcp.connected,
                n.tcp.rst_tx,
                n.tcp.time_wait_recycled
            ),
        );
        tb.row(
            format!("core {i} neighbours"),
            format!(
                "ARP {} learned, {} requests sent; NDP {} learned, {} solicitations sent",
                n.arp.learned, n.arp.requests_tx, n.nd.learned, n.nd.requests_tx
            ),
        );
        tb.row(
            format!("core {i} offload"),
            format!(
                "{} segs cut from large ones (GSO), {} large frames cut by the NIC (TSO), {} segs coalesced on receive (GRO)",
                n.tcp.gso_segments_tx, n.tcp.tso_frames_tx, n.tcp.gro_coalesced
            ),
        );
        tb.row(
            format!("core {i} memory"),
            format!(
                "{} KiB of connection buffers, at most {} KiB, {} growths refused by the budget",
                c.mem_used >> 10,
                c.mem_peak >> 10,
                c.mem_refusals
            ),
        );
        tb.row(
            format!("core {i} payload"),
            format!(
                "{} B received in their mbufs, {} B sent by reference, {} B copied to send",
                n.tcp.rx_zero_copy_bytes, n.tcp.tx_zero_copy_bytes, n.tcp.tx_copied_bytes
            ),
        );
        tb.row(
            format!("core {i} loop"),
            format!(
                "{} rounds, {} busy ({:.1}% of the time), {} sleeps",
                c.loops.rounds,
                c.loops.busy_rounds,
                100.0 * c.loops.busy_ns as f64 / c.loops.run_ns.max(1) as f64,
                c.loops.idle_sleeps
            ),
        );
        let reasons: Vec<String> = n
            .drops
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(r, v)| format!("{}={v}", r.as_str()))
            .collect();
        let reasons = if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(" "))
        };
        tb.row(format!("core {i} drops"), format!("{}{reasons}", n.drops.total()));
    }
    Some(tb)
}

/// Prints one "ready" line once every core has run its first round (in which the
/// application bound its listener), for scripts to wait for.
fn announce_ready(h: &sluice_engine::EngineHandle, spec: &RunSpec, config: &Config) {
    let t0 = Instant::now();
    while h.cores_ready() < usize::from(h.cores()) && t0.elapsed() < Duration::from_secs(20) && !h.stopping()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A command runs between two rounds of its core: after the first, which started the
    // application.
    for c in 0..h.cores() {
        let (tx, rx) = std::sync::mpsc::channel();
        if h.run_on(c, move |_| {
            let _ = tx.send(());
        }) {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
    }
    if h.stopping() {
        return;
    }
    let ip = config.ip.split('/').next().unwrap_or(&config.ip);
    let what = match (spec.plan.listen, spec.plan.connect) {
        (Some(p), _) => format!("listening on {ip}:{p}"),
        (None, Some(t)) => format!("connecting to {t} from {ip}"),
        (None, None) => format!("up on {ip}"),
    };
    eprintln!("{}: ready: {what}, {} core(s)", spec.program, h.cores());
}

/// Logs to stderr with `RUST_LOG`'s levels (default `info`): setup at info, connections
/// opening and closing at debug, every dropped frame at trace. Once per process.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// A timeout flag in seconds as nanoseconds; 0 (or less) means none.
pub fn secs_ns(secs: f64) -> Option<u64> {
    (secs > 0.0).then_some((secs * 1e9) as u64)
}

/// One line of `key=value` words, for scripts and tests.
pub fn stats_line(r: &RunResult) -> String {
    let t = r.total();
    let mut s = format!(
        "stats: stack={} seconds={:.3} conns_opened={} conns_closed={} conn_errors={} timeouts={} requests={} errors={} bytes_in={} bytes_out={}",
        r.stack.name(),
        r.seconds,
        t.conns_opened,
        t.conns_closed,
        t.conn_errors,
        t.timeouts,
        t.requests,
        t.errors,
        t.bytes_in,
        t.bytes_out
    );
    if !r.engine.is_empty() {
        let sum = |f: fn(&CoreStats) -> u64| r.engine.iter().map(f).sum::<u64>();
        s += &format!(
            " rx_packets={} tx_packets={} drops={}",
            sum(|c| c.net.rx_packets),
            sum(|c| c.net.tx_packets),
            sum(|c| c.net.drops.total())
        );
    }
    s
}

/// Prints the summary, the engine's table, extra tables, and the stats line.
pub fn print_summary(program: &str, r: &RunResult, extra: &[Table]) {
    print!("{}", summary_table(program, r).render());
    for t in extra {
        print!("{}", t.render());
    }
    if let Some(t) = engine_table(r) {
        print!("{}", t.render());
    }
    println!("{}", stats_line(r));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_stats_line_has_fields() {
        let mut t = Table::new("x");
        t.row("a", 1).row("longer", "v");
        assert_eq!(t.render(), "== x ==\n  a       1\n  longer  v\n");
        let mut c = Tally::new();
        c.requests = 10;
        c.bytes_in = 5;
        let r = RunResult {
            stack: Stack::Kernel,
            seconds: 2.0,
            cores: vec![c.clone(), c],
            engine: vec![],
            interrupted: false,
        };
        let line = stats_line(&r);
        assert!(
            line.contains("requests=20") && line.contains("bytes_in=10") && line.contains("stack=kernel")
        );
        assert!(summary_table("p", &r).render().contains("requests/s"));
    }
}
