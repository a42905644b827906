//! The measurements: each one starts a server and a client (Sluice over virtio_user <->
//! net_vhost, or the kernel over a veth pair between two namespaces), one core each,
//! for a bounded time, and parses their `stats:`/`latency:`/`bulk:` lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_testkit::{field, Netns};

use crate::procs::{self, Output, Proc};

/// Options of `sluice-e2e run`.
#[derive(Clone, Debug, clap::Args)]
pub struct Opts {
    /// Seconds per measurement (plus one second of warm-up that is not counted).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// CI mode: 1 s per measurement, few connections, 1000 idle connections, no profile.
    #[arg(long)]
    pub quick: bool,
    /// Connections of the "many connections" request/response row.
    #[arg(long)]
    pub many: Option<usize>,
    /// Idle connections held for the memory measurement.
    #[arg(long)]
    pub idle_connections: Option<u64>,
    /// Where sluice-echo, sluice-bulk and sluice-loadgen are (default: next to this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The report to write.
    #[arg(long, default_value = "docs/benchmarks-e2e.md")]
    pub out: PathBuf,
    /// Where the plots go (linked from the report by a path relative to it).
    #[arg(long, default_value = "docs/img")]
    pub img_dir: PathBuf,
    /// Logs of every process (default: a new directory under /tmp).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Skip the perf profiles.
    #[arg(long)]
    pub no_profile: bool,
    /// The command that regenerates the report (printed in it).
    #[arg(long, default_value = "scripts/bench-e2e.sh")]
    pub command: String,
}

/// Stack state of one connection: the Tcb, its two buffers, and the interface's
/// bookkeeping around it.
#[derive(Clone, Copy, Debug)]
pub struct StateSize {
    pub tcb: usize,
    /// The interface's per-connection entry beyond the Tcb (the `Conn` wrapper, the slab
    /// slot, the flow-table entry and the timer-wheel entry): an estimate from the field
    /// types, these types being private.
    pub overhead: usize,
    pub buffers: usize,
}

impl StateSize {
    pub fn of(buffer: usize) -> StateSize {
        StateSize {
            tcb: std::mem::size_of::<sluice_tcp::Tcb>(),
            overhead: 120,
            buffers: 2 * buffer,
        }
    }
    pub fn total(&self) -> usize {
        self.tcb + self.overhead + self.buffers
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stack {
    Sluice,
    Kernel,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::Sluice => "sluice",
            Stack::Kernel => "kernel",
        }
    }
    fn server_ip(self) -> &'static str {
        match self {
            Stack::Sluice => "198.18.0.1",
            Stack::Kernel => "198.18.3.1",
        }
    }
}

/// Everything measured, by key (`sluice.rr1.rps`, `link.64.mpps`, ...), plus what was run.
#[derive(Debug, Default)]
pub struct Results {
    pub values: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
    /// Commands, in the order run (one of each kind).
    pub commands: BTreeMap<String, String>,
    pub profiles: Vec<(String, Vec<String>)>,
    pub machine: Vec<(String, String)>,
    pub seconds: f64,
    pub many: usize,
    /// Connections of the "thousands of connections" request/response row.
    pub lots: usize,
    pub newconn_conns: usize,
    pub idle_target: u64,
    pub buffer: usize,
    pub started: String,
    pub elapsed: f64,
    /// perf has hardware counters (else it samples on cpu-clock).
    pub perf_hw: bool,
}

impl Results {
    pub fn get(&self, k: &str) -> Option<f64> {
        self.values.get(k).copied()
    }
    fn set(&mut self, k: impl Into<String>, v: f64) {
        self.values.insert(k.into(), v);
    }
}

/// The two namespaces of the kernel runs, joined by a veth pair.
struct KernelNet {
    srv: Netns,
    cli: Netns,
}

impl KernelNet {
    fn new() -> Result<KernelNet, String> {
        let srv = Netns::new("e2e-srv");
        let cli = Netns::new("e2e-cli");
        let sh = |args: &[&str]| -> Result<(), String> {
            procs::run(Command::new("ip").args(args), Duration::from_secs(10)).map(|_| ())
        };
        sh(&[
            "-n",
            srv.name(),
            "link",
            "add",
            "e2e0",
            "type",
            "veth",
            "peer",
            "name",
            "e2e1",
            "netns",
            cli.name(),
        ])?;
        sh(&["-n", srv.name(), "addr", "add", "198.18.3.1/24", "dev", "e2e0"])?;
        sh(&["-n", srv.name(), "link", "set", "e2e0", "up"])?;
        for i in 2..=9 {
            sh(&[
                "-n",
                cli.name(),
                "addr",
                "add",
                &format!("198.18.3.{i}/24"),
                "dev",
                "e2e1",
            ])?;
        }
        sh(&["-n", cli.name(), "link", "set", "e2e1", "up"])?;
        let sysctl = |ns: &Netns, kv: &str| -> Result<(), String> {
            procs::run(
                Command::new("ip").args(["netns", "exec", ns.name(), "sysctl", "-q", "-w", kv]),
                Duration::from_secs(10),
            )
            .map(|_| ())
        };
        // Connect-per-request needs ports: the client closes first (TIME-WAIT), as the
        // Sluice client does with its short MSL.
        sysctl(&cli, "net.ipv4.ip_local_port_range=1024 65535")?;
        sysctl(&cli, "net.ipv4.tcp_tw_reuse=1")?;
        sysctl(&srv, "net.core.somaxconn=65535")?;
        sysctl(&srv, "net.ipv4.tcp_max_syn_backlog=65535")?;
        Ok(KernelNet { srv, cli })
    }
}

pub struct Harness {
    o: Opts,
    bin: PathBuf,
    me: PathBuf,
    work: PathBuf,
    knet: Option<KernelNet>,
    pub r: Results,
    /// Sluice's runs go over IPv6 (2001:2::/64) instead of IPv4.
    v6: bool,
}

/// `[   2.0s] open 1 | 12345 req/s | ...`: the per-second rates after the first second
/// (and, given `open`, only the seconds that ended with that many connections open).
pub fn progress_rate(out: &str, open: Option<usize>) -> Option<f64> {
    let full = |l: &str| {
        open.is_none_or(|n| {
            l.split('|')
                .next()
                .and_then(|f| f.split("open").nth(1))
                .and_then(|x| x.trim().parse::<usize>().ok())
                == Some(n)
        })
    };
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    let v: Vec<f64> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| *i == 0 || full(l))
        .map(|(_, l)| *l)
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|f| f.trim().strip_suffix("req/s"))
        .filter_map(|n| n.trim().parse::<f64>().ok())
        .collect();
    match v.len() {
        0 => None,
        1 => Some(v[0]),
        n => Some(v[1..].iter().sum::<f64>() / (n - 1) as f64),
    }
}

/// testpmd's `Rx-pps:` values of the receiving side after the first two.
pub fn testpmd_rate(out: &str) -> Option<f64> {
    let v: Vec<f64> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Rx-pps:"))
        .filter_map(|r| r.split_whitespace().next())
        .filter_map(|n| n.parse::<f64>().ok())
        .collect();
    let tail: Vec<f64> = v.iter().skip(2).copied().filter(|x| *x > 0.0).collect();
    if tail.is_empty() {
        v.iter().copied().filter(|x| *x > 0.0).reduce(f64::max)
    } else {
        Some(tail.iter().sum::<f64>() / tail.len() as f64)
    }
}

fn num(out: &str, key: &str) -> Option<f64> {
    field(out, key).and_then(|v| v.parse::<f64>().ok())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn fail(what: &str, o: &Output) -> String {
    let tail = |t: &str| {
        let l: Vec<&str> = t.lines().collect();
        l[l.len().saturating_sub(8)..].join("\n")
    };
    format!(
        "{what}: status {:?}{}\n{}\n{}",
        o.status,
        if o.timed_out { " (timed out)" } else { "" },
        tail(&o.stdout),
        tail(&o.stderr)
    )
}

impl Harness {
    fn new(o: Opts) -> Result<Harness, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let bin = match &o.bin_dir {
            Some(b) => b.clone(),
            None => me.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        for b in ["sluice-echo", "sluice-bulk", "sluice-loadgen"] {
            if !bin.join(b).exists() {
                return Err(format!(
                    "{} not found (build with cargo build --release -p sluice-apps, or pass --bin-dir)",
                    bin.join(b).display()
                ));
            }
        }
        let work = o
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("sluice-e2e-{}", std::process::id())));
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        Ok(Harness {
            o,
            bin,
            me,
            work,
            knet: None,
            r: Results::default(),
            v6: false,
        })
    }

    fn seconds(&self) -> f64 {
        if self.o.quick {
            1.0
        } else {
            self.o.seconds
        }
    }

    fn engine_args(&self, server: bool, sock: &str, extra: &[&str]) -> Vec<String> {
        let (port, ip, core) = if server {
            (format!("vhost:{sock}"), "198.18.0.1/24", "0")
        } else {
            (format!("virtio:{sock}"), "198.18.0.2/24", "1")
        };
        let mut a = s(&["--stack", "sluice", "--port", &port, "--ip", ip, "--cores", "1"]);
        if self.v6 {
            let ip6 = if server { "2001:2::1/64" } else { "2001:2::2/64" };
            a.extend(s(&["--ip6", ip6]));
        }
        for e in ["-l", core, "--in-memory", "--single-file-segments", "--no-pci"] {
            a.push(format!("--eal={e}"));
        }
        a.extend(s(&["--idle", "busy"]));
        a.extend(s(extra));
        a
    }

    /// The server's address as a client names it (IPv6 in brackets).
    fn server_ip(&self, stack: Stack) -> &'static str {
        match (stack, self.v6) {
            (Stack::Sluice, true) => "[2001:2::1]",
            _ => stack.server_ip(),
        }
    }

    fn kernel_args(&self, server: bool, extra: &[&str]) -> Vec<String> {
        let mut a = s(&["--stack", "kernel", "--cores", "1"]);
        if server {
            a.extend(s(&["--bind", "198.18.3.1"]));
        }
        a.extend(s(extra));
        a
    }

    fn knet(&mut self) -> Result<&KernelNet, String> {
        if self.knet.is_none() {
            self.knet = Some(KernelNet::new()?);
        }
        Ok(self.knet.as_ref().expect("just set"))
    }

    fn command(&mut self, key: &str, stack: Stack, server: bool, prog: &Path, args: &[String]) -> Command {
        let (ns, cpu) = if server { ("SRV", "0") } else { ("CLI", "1") };
        let mut c;
        let mut shown: Vec<String>;
        match stack {
            Stack::Sluice => {
                c = Command::new("taskset");
                c.args(["-c", cpu]);
                shown = s(&["taskset", "-c", cpu]);
            }
            Stack::Kernel => {
                let k = self.knet.as_ref().expect("kernel namespaces are set up first");
                let name = if server { k.srv.name() } else { k.cli.name() };
                c = Command::new("ip");
                c.args(["netns", "exec", name, "taskset", "-c", cpu]);
                shown = s(&["ip", "netns", "exec", ns, "taskset", "-c", cpu]);
            }
        }
        c.arg(prog).args(args);
        let pname = prog
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        shown.push(pname);
        shown.extend(
            args.iter()
                .map(|a| if a.is_empty() { "''".to_string() } else { a.clone() }),
        );
        let text = shown.join(" ").replace(&self.sock_base(), "/tmp/sluice-e2e-PID");
        self.r
            .commands
            .entry(format!(
                "{key} {} {}",
                stack.name(),
                if server { "server" } else { "client" }
            ))
            .or_insert(text);
        c
    }

    fn sock_base(&self) -> String {
        format!("/tmp/sluice-e2e-{}", std::process::id())
    }

    /// Runs a server and a client on `stack`; `during` runs once the client started.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &mut self,
        key: &str,
        stack: Stack,
        server: (&Path, Vec<String>),
        client: (&Path, Vec<String>),
        client_limit: Duration,
        sock: &str,
        during: &mut dyn FnMut(&mut Harness, &mut Proc, &mut Proc) -> Result<(), String>,
    ) -> Result<(Output, Output), String> {
        if stack == Stack::Kernel {
            self.knet()?;
        }
        let _ = std::fs::remove_file(sock);
        let n = procs::unique();
        let sc = self.command(key, stack, true, server.0, &server.1);
        let mut sp = Proc::spawn(&format!("{n:02}-{key}-{}-server", stack.name()), sc, &self.work)?;
        let ready = sp.wait_until(Duration::from_secs(30), |p| {
            let e = p.stderr();
            e.contains("sluice on ") || e.contains("kernel sockets")
        });
        if !ready {
            let o = sp.stop();
            let _ = std::fs::remove_file(sock);
            return Err(fail(&format!("{key} {} server did not start", stack.name()), &o));
        }
        std::thread::sleep(Duration::from_millis(200));
        let cc = self.command(key, stack, false, client.0, &client.1);
        let mut cp = match Proc::spawn(&format!("{n:02}-{key}-{}-client", stack.name()), cc, &self.work) {
            Ok(p) => p,
            Err(e) => {
                sp.stop();
                return Err(e);
            }
        };
        let d = during(self, &mut sp, &mut cp);
        let co = cp.finish(client_limit);
        let so = sp.stop();
        let _ = std::fs::remove_file(sock);
        d?;
        Ok((so, co))
    }

    fn sock(&self, key: &str) -> String {
        format!("{}-{key}-{}.sock", self.sock_base(), procs::unique())
    }

    fn sides(&self, stack: Stack, server: bool, sock: &str, extra: &[&str]) -> Vec<String> {
        match stack {
            Stack::Sluice => self.engine_args(server, sock, extra),
            Stack::Kernel => self.kernel_args(server, extra),
        }
    }

    /// 64-byte echo request/response over `conns` connections: rate and latency.
    fn rr(&mut self, stack: Stack, conns: usize, key: &str, new_conns: bool) -> Result<(), String> {
        let secs = self.seconds();
        let sock = self.sock(key);
        let guard = format!("{}", secs * 3.0 + 30.0);
        // Thousands of connections: 16 KiB buffers on Sluice's side (allocated with each
        // connection; the kernel sizes its own on demand), and mbufs to match.
        let huge: &[&str] = if conns >= 4096 && stack == Stack::Sluice {
            &[
                "--recv-buffer",
                "16384",
                "--send-buffer",
                "16384",
                "--mbufs",
                "65535",
            ]
        } else {
            &[]
        };
        let mut sx = vec!["--nodelay", "--listen", "7", "--seconds", &guard];
        sx.extend(huge);
        let server = self.sides(stack, true, &sock, &sx);
        let target = format!("{}:7", self.server_ip(stack));
        let cs = conns.to_string();
        let dur = format!("{}", secs + 1.0);
        let mut extra = vec![
            "--nodelay",
            "--connect",
            &target,
            "--connections",
            &cs,
            "--request-size",
            "64",
            "--duration",
            &dur,
            "--progress",
        ];
        extra.extend(huge);
        if new_conns {
            extra.push("--new-connections");
            if stack == Stack::Sluice {
                // TIME-WAIT of 20 ms at the client, which closes first: its 16384
                // ephemeral ports then last for 800k connections/s, so the row measures
                // the stacks and not how soon ports come back (at 100 ms it was capped
                // near 16384 / TIME-WAIT). The kernel client reuses TIME-WAIT ports with
                // tcp_tw_reuse=1 instead.
                extra.extend(["--msl-ms", "10"]);
            }
        }
        let client = self.sides(stack, false, &sock, &extra);
        let (echo, lg) = (self.bin.join("sluice-echo"), self.bin.join("sluice-loadgen"));
        let limit = Duration::from_secs_f64(secs + 30.0);
        let (so, co) = self.pair(
            key,
            stack,
            (&echo, server),
            (&lg, client),
            limit,
            &sock,
            &mut |_, _, _| Ok(()),
        )?;
        let what = format!("{key} on {}", stack.name());
        // Every connection must have been served, not only opened at the client: the server
        // counts those its application accepted.
        let served = num(&so.stdout, "conns_opened").unwrap_or(0.0);
        if !new_conns && served < conns as f64 {
            return Err(format!(
                "{what}: the server served {served} of {conns} connections\n{}",
                fail(&what, &so)
            ));
        }
        let requests = num(&co.stdout, "requests").unwrap_or(0.0);
        if requests <= 0.0 || co.timed_out {
            return Err(fail(&what, &co));
        }
        let errors = num(&co.stdout, "errors").unwrap_or(0.0);
        if errors > 0.0 {
            self.r.notes.push(format!("{what}: {errors} application errors"));
        }
        let rate = progress_rate(&co.stdout, (!new_conns).then_some(conns))
            .ok_or_else(|| fail(&format!("{what}: no progress"), &co))?;
        let p = stack.name();
        if new_conns {
            self.r.set(format!("{p}.{key}.cps"), rate);
        } else {
            self.r.set(format!("{p}.{key}.rps"), rate);
        }
        let lat = |k: &str| num(&co.stdout, k).map(|ns| ns / 1000.0);
        if let (Some(a), Some(b)) = (lat("p50_ns"), lat("p99_ns")) {
            self.r.set(format!("{p}.{key}.p50_us"), a);
            self.r.set(format!("{p}.{key}.p99_us"), b);
        }
        let ce = num(&co.stdout, "conn_errors").unwrap_or(0.0);
        if ce > 0.0 {
            self.r
                .notes
                .push(format!("{what}: {ce} connection errors at the client"));
        }
        Ok(())
    }

    /// One connection's bulk transfer, client sends, server receives. `verify` "none"
    /// measures the rate (key `bulk`, with the CPUs both sides used), "sha256" the rate with
    /// every byte hashed and checked (key `bulk_sha`).
    fn bulk(&mut self, stack: Stack, verify: &str) -> Result<(), String> {
        let key = if verify == "none" { "bulk" } else { "bulk_sha" };
        self.bulk_keyed(stack, verify, key)
    }

    /// `bulk`, its results under `key`.
    fn bulk_keyed(&mut self, stack: Stack, verify: &str, key: &str) -> Result<(), String> {
        let secs = self.seconds();
        let sock = self.sock(key);
        // A fixed size (the receiver expects it): about `secs` seconds at 24 Gbit/s
        // unchecked, 8 checked (less in quick mode); the time limits bound slower runs.
        let per_s = match (self.o.quick, verify == "none") {
            (true, true) => 1.0e9,
            (true, false) => 0.4e9,
            (false, true) => 6.0e9,
            (false, false) => 1.0e9,
        };
        let bytes = ((secs * per_s) as u64).max(1 << 20).to_string();
        let guard = format!("{}", secs * 6.0 + 20.0);
        // Sluice's buffers are fixed per connection (256 KiB by default); a bulk transfer
        // gets 512 KiB each way (the kernel autotunes its own up to 6 MiB).
        let bufs: &[&str] = match stack {
            Stack::Sluice => &["--recv-buffer", "524288", "--send-buffer", "524288"],
            Stack::Kernel => &[],
        };
        let server = {
            let mut a = s(&[
                "recv",
                "--listen",
                "9000",
                "--bytes",
                &bytes,
                "--seconds",
                &guard,
                "--verify",
                verify,
            ]);
            a.extend(self.sides(stack, true, &sock, bufs));
            a
        };
        let target = format!("{}:9000", self.server_ip(stack));
        let client = {
            let mut a = s(&[
                "send",
                "--connect",
                &target,
                "--bytes",
                &bytes,
                "--seconds",
                &guard,
                "--verify",
                verify,
            ]);
            a.extend(self.sides(stack, false, &sock, bufs));
            a
        };
        let b = self.bin.join("sluice-bulk");
        let limit = Duration::from_secs_f64(secs * 6.0 + 30.0);
        let mut cpus = None;
        let (so, _co) = self.pair(
            key,
            stack,
            (&b, server),
            (&b, client),
            limit,
            &sock,
            &mut |_, sp, cp| {
                cpus = procs::cpu_use_until_exit(sp, cp, limit);
                Ok(())
            },
        )?;
        let line = so
            .stdout
            .lines()
            .find(|l| l.starts_with("bulk: role=recv"))
            .ok_or_else(|| fail(&format!("bulk on {}: no receiver report", stack.name()), &so))?;
        let g = num(line, "gbps").ok_or_else(|| fail("bulk: no gbps", &so))?;
        if field(line, "ok") != Some("true") {
            self.r.notes.push(format!(
                "{key} on {}: the transfer did not complete in time (rate of the part received)",
                stack.name()
            ));
        }
        let p = stack.name();
        self.r.set(format!("{p}.{key}.gbps"), g);
        if let (Some((rx, tx)), true) = (cpus, g > 0.0) {
            self.r.set(format!("{p}.{key}.rx_cpu_per_gbps"), rx / g);
            self.r.set(format!("{p}.{key}.tx_cpu_per_gbps"), tx / g);
        }
        Ok(())
    }

    /// The kernel's own bulk tool: iperf3, one stream, over the same veth pair and CPUs as
    /// the kernel runs of our applications (server `taskset -c 0`, client `-c 1`).
    fn iperf3(&mut self) -> Result<(), String> {
        let secs = self.seconds().max(1.0);
        self.knet()?;
        let n = procs::unique();
        let prog = PathBuf::from("iperf3");
        let sa = s(&["-s", "-1", "-B", "198.18.3.1", "-p", "5201", "--forceflush"]);
        let sc = self.command("iperf3", Stack::Kernel, true, &prog, &sa);
        let mut sp = Proc::spawn(&format!("{n:02}-iperf3-server"), sc, &self.work)?;
        let ready = sp.wait_until(Duration::from_secs(10), |p| p.stdout().contains("listening"));
        if !ready {
            return Err(fail(
                "iperf3 server did not start (is iperf3 installed? scripts/setup.sh)",
                &sp.stop(),
            ));
        }
        let t = format!("{secs}");
        let ca = s(&["-c", "198.18.3.1", "-p", "5201", "-t", &t, "-J"]);
        let cc = self.command("iperf3", Stack::Kernel, false, &prog, &ca);
        let mut cp = Proc::spawn(&format!("{n:02}-iperf3-client"), cc, &self.work)?;
        let limit = Duration::from_secs_f64(secs + 30.0);
        let cpus = procs::cpu_use_until_exit(&mut sp, &mut cp, limit);
        let co = cp.finish(limit);
        let _ = sp.finish(Duration::from_secs(5));
        // iperf3 -J: end.sum_received.bits_per_second.
        let end = co
            .stdout
            .rfind("\"sum_received\"")
            .ok_or_else(|| fail("iperf3: no result", &co))?;
        let bps =
            json_number(&co.stdout[end..], "bits_per_second").ok_or_else(|| fail("iperf3: no rate", &co))?;
        let g = bps / 1e9;
        self.r.set("kernel.iperf3.gbps", g);
        if let (Some((rx, tx)), true) = (cpus, g > 0.0) {
            self.r.set("kernel.iperf3.rx_cpu_per_gbps", rx / g);
            self.r.set("kernel.iperf3.tx_cpu_per_gbps", tx / g);
        }
        Ok(())
    }

    /// The same unmodified program on both stacks: under `sluice-run` (server on
    /// `net_vhost`, client on `virtio_user`, CPUs 0 and 1) and on the kernel (the veth
    /// pair, same CPUs). `which`: iperf3 (one stream), sockperf (TCP ping-pong), redis
    /// (redis-benchmark SET and GET, 50 clients).
    fn program(&mut self, stack: Stack, which: &str) -> Result<(), String> {
        let secs = self.seconds().max(1.0);
        let (srv_ip, cli_ip) = match stack {
            Stack::Sluice => ("198.18.0.1", "198.18.0.2"),
            Stack::Kernel => {
                self.knet()?;
                ("198.18.3.1", "198.18.3.2")
            }
        };
        let t = format!("{secs}");
        let reqs = format!("{}", (secs * 150_000.0) as u64);
        let (sprog, sargs, ready, cprog, cargs): (&str, Vec<String>, &str, &str, Vec<String>) = match which {
            "iperf3" => (
                "iperf3",
                s(&["-s", "-1", "-4", "-B", srv_ip, "-p", "5201", "--forceflush"]),
                "listening",
                "iperf3",
                s(&["-4", "-c", srv_ip, "-p", "5201", "-t", &t, "-J"]),
            ),
            "sockperf" => (
                "sockperf",
                s(&["server", "--tcp", "-i", srv_ip, "-p", "11111"]),
                "using",
                "sockperf",
                s(&["ping-pong", "--tcp", "-i", srv_ip, "-p", "11111", "-t", &t]),
            ),
            _ => (
                "redis-server",
                s(&[
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--bind",
                    srv_ip,
                ]),
                "Ready to accept",
                "redis-benchmark",
                s(&[
                    "-h", srv_ip, "-p", "6379", "-c", "50", "-n", &reqs, "-t", "set,get", "-q",
                ]),
            ),
        };
        let sock = self.sock(which);
        let _ = std::fs::remove_file(&sock);
        let wrap = |h: &Harness, server: bool, prog: &str, args: Vec<String>| -> (PathBuf, Vec<String>) {
            match stack {
                Stack::Kernel => (PathBuf::from(prog), args),
                Stack::Sluice => {
                    let (port, ip, cpu) = if server {
                        (format!("vhost:{sock}"), format!("{srv_ip}/24"), "0")
                    } else {
                        (format!("virtio:{sock}"), format!("{cli_ip}/24"), "1")
                    };
                    let mut a = s(&[
                        "--quiet",
                        "--port",
                        &port,
                        "--ip",
                        &ip,
                        "--eal=-l",
                        &format!("--eal={cpu}"),
                        "--",
                    ]);
                    a.push(prog.to_string());
                    a.extend(args);
                    (h.bin.join("sluice-run"), a)
                }
            }
        };
        let key = format!("prog-{which}");
        let n = procs::unique();
        let (sp_path, sp_args) = wrap(self, true, sprog, sargs);
        let sc = self.command(&key, stack, true, &sp_path, &sp_args);
        let mut sp = Proc::spawn(&format!("{n:02}-{key}-{}-server", stack.name()), sc, &self.work)?;
        if !sp.wait_until(Duration::from_secs(20), |p| {
            p.stdout().contains(ready) || p.stderr().contains(ready)
        }) {
            return Err(fail(
                &format!("{sprog} did not start (installed? scripts/setup.sh)"),
                &sp.stop(),
            ));
        }
        let (cp_path, cp_args) = wrap(self, false, cprog, cargs);
        let cc = self.command(&key, stack, false, &cp_path, &cp_args);
        let cp = Proc::spawn(&format!("{n:02}-{key}-{}-client", stack.name()), cc, &self.work)?;
        let co = cp.finish(Duration::from_secs_f64(secs * 4.0 + 60.0));
        let _ = std::fs::remove_file(&sock);
        let _ = sp.stop();
        let p = stack.name();
        let all = format!("{}\n{}", co.stdout, co.stderr).replace('\r', "\n");
        match which {
            "iperf3" => {
                let end = co
                    .stdout
                    .rfind("\"sum_received\"")
                    .ok_or_else(|| fail("iperf3: no result", &co))?;
                let bps = json_number(&co.stdout[end..], "bits_per_second")
                    .ok_or_else(|| fail("iperf3: no rate", &co))?;
                self.r.set(format!("{p}.prog.iperf3.gbps"), bps / 1e9);
            }
            "sockperf" => {
                let p50 = all
                    .lines()
                    .find_map(|l| l.split("percentile 50.000 =").nth(1))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .ok_or_else(|| fail("sockperf: no p50", &co))?;
                self.r.set(format!("{p}.prog.sockperf.p50_us"), p50);
            }
            _ => {
                for (t, k) in [("SET:", "set_rps"), ("GET:", "get_rps")] {
                    let v = all
                        .lines()
                        .filter(|l| l.starts_with(t) && l.contains("requests per second"))
                        .find_map(|l| l[t.len()..].split_whitespace().next()?.parse::<f64>().ok())
                        .ok_or_else(|| fail(&format!("redis-benchmark: no {t} result"), &co))?;
                    self.r.set(format!("{p}.prog.redis.{k}"), v);
                }
            }
        }
        Ok(())
    }

    /// Idle connections: the server's RSS delta (and the kernel's slab delta).
    fn idle(&mut self, stack: Stack) -> Result<(), String> {
        let mut n = self.r.idle_target;
        if stack == Stack::Kernel {
            // One file descriptor per socket at each end: the open-files limit bounds N
            // (raising the hard limit may not be allowed, e.g. in a container).
            let cap = procs::nofile_hard().saturating_sub(500).max(100);
            if cap < n {
                self.r.notes.push(format!(
                    "idle on kernel: {cap} connections instead of {n} (RLIMIT_NOFILE hard limit {} here, one \
                     descriptor per socket); the per-connection figures do not depend on the count",
                    procs::nofile_hard()
                ));
                n = cap;
            }
        }
        let sock = self.sock("idle");
        let secs = 240.0f64;
        let g = format!("{secs}");
        let buf = self.r.buffer.to_string();
        let bufs = ["--recv-buffer", buf.as_str(), "--send-buffer", buf.as_str()];
        let mut server = s(&[
            "idle",
            "--role",
            "server",
            "--ports",
            "7001-7008",
            "--seconds",
            &g,
        ]);
        let mut extra: Vec<&str> = Vec::new();
        if stack == Stack::Sluice {
            extra.extend(bufs);
            extra.extend(["--mbufs", "32767"]);
        }
        server.extend(self.sides(stack, true, &sock, &extra));
        let ns = n.to_string();
        let mut client = s(&[
            "idle",
            "--role",
            "client",
            "--ports",
            "7001-7008",
            "--connect",
            stack.server_ip(),
            "--connections",
            &ns,
            "--seconds",
            &g,
        ]);
        client.extend(self.sides(stack, false, &sock, &extra));
        let me = self.me.clone();
        // (connections held, server RSS before, after, Slab before, after)
        type Measured = (u64, u64, u64, Option<u64>, Option<u64>);
        let mut got: Option<Measured> = None;
        let mut during = |_h: &mut Harness, sp: &mut Proc, cp: &mut Proc| -> Result<(), String> {
            // The baseline: the server listening, no connection yet.
            let (rss0, slab0) = (procs::rss(sp.pid()), procs::slab());
            let count = |p: &Proc| {
                p.stdout()
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("idle:"))
                    .and_then(|l| num(l, "established"))
                    .unwrap_or(0.0) as u64
            };
            let t0 = Instant::now();
            let mut last = (0, Instant::now());
            loop {
                let c = count(cp).min(count(sp));
                if c >= n {
                    break;
                }
                if c != last.0 {
                    last = (c, Instant::now());
                }
                if last.1.elapsed() > Duration::from_secs(10)
                    || t0.elapsed() > Duration::from_secs(200)
                    || cp.exited()
                {
                    break; // stalled: measure what is there
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(1500));
            let held = count(sp).min(count(cp));
            let (rss1, slab1) = (procs::rss(sp.pid()), procs::slab());
            let (Some(a), Some(b)) = (rss0, rss1) else {
                return Err("no VmRSS for the server".into());
            };
            got = Some((held, a, b, slab0, slab1));
            Ok(())
        };
        // Measured by then: the client holds its connections until stopped.
        let limit = Duration::from_millis(100);
        let (so, co) = self.pair(
            "idle",
            stack,
            (&me, server),
            (&me, client),
            limit,
            &sock,
            &mut during,
        )?;
        let (held, rss0, rss1, slab0, slab1) = got.ok_or("idle: nothing measured")?;
        if held == 0 {
            return Err(format!(
                "{}\n{}",
                fail("idle server", &so),
                fail("idle client", &co)
            ));
        }
        let p = stack.name();
        self.r.set(format!("{p}.idle.n"), held as f64);
        self.r.set(
            format!("{p}.idle.rss_per_conn"),
            rss1.saturating_sub(rss0) as f64 / held as f64,
        );
        if stack == Stack::Kernel {
            if let (Some(a), Some(b)) = (slab0, slab1) {
                // Both ends are sockets of this kernel: two per connection.
                self.r.set(
                    "kernel.idle.slab_per_socket",
                    b.saturating_sub(a) as f64 / (2 * held) as f64,
                );
            }
        }
        if held < n {
            self.r
                .notes
                .push(format!("idle on {p}: {held} of {n} connections were established"));
        }
        Ok(())
    }

    /// dpdk-testpmd txonly (virtio_user) -> rxonly (net_vhost), frames of `size` bytes.
    fn link(&mut self, size: usize) -> Result<(), String> {
        let secs = self.seconds() + 2.0;
        let sock = self.sock("testpmd");
        let _ = std::fs::remove_file(&sock);
        let eal = |main: &str, vdev: String| {
            s(&[
                "-l",
                "0-1",
                "--main-lcore",
                main,
                "--in-memory",
                "--single-file-segments",
                "--no-pci",
                &vdev,
                "--",
                "--nb-cores=1",
                "--stats-period=1",
            ])
        };
        let mut rx = eal("0", format!("--vdev=net_vhost0,iface={sock},queues=1"));
        rx.push("--forward-mode=rxonly".into());
        let mut tx = eal("1", format!("--vdev=virtio_user0,path={sock},queues=1"));
        tx.extend(s(&["--forward-mode=txonly", &format!("--txpkts={size}")]));
        let base = self.sock_base();
        let show =
            |a: &[String]| format!("dpdk-testpmd {}", a.join(" ")).replace(&base, "/tmp/sluice-e2e-PID");
        self.r
            .commands
            .entry(format!("link rxonly {size}"))
            .or_insert(show(&rx));
        self.r
            .commands
            .entry(format!("link txonly {size}"))
            .or_insert(show(&tx));
        let n = procs::unique();
        let mut c = Command::new("dpdk-testpmd");
        c.args(&rx);
        let mut rp = Proc::spawn(&format!("{n:02}-testpmd-{size}-rx"), c, &self.work)?;
        let t0 = Instant::now();
        while !Path::new(&sock).exists() && t0.elapsed() < Duration::from_secs(20) && !rp.exited() {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut c = Command::new("dpdk-testpmd");
        c.args(&tx);
        let tp = Proc::spawn(&format!("{n:02}-testpmd-{size}-tx"), c, &self.work)?;
        // testpmd's own start-up takes a second or two: count from the first stats.
        rp.wait_until(Duration::from_secs(20), |p| {
            p.stdout().matches("Rx-pps:").count() >= 1
        });
        std::thread::sleep(Duration::from_secs_f64(secs));
        let to = tp.stop();
        let ro = rp.stop();
        let _ = std::fs::remove_file(&sock);
        let pps = testpmd_rate(&ro.stdout)
            .filter(|x| *x > 0.0)
            .ok_or_else(|| format!("{}\n{}", fail("testpmd rx", &ro), fail("testpmd tx", &to)))?;
        // The better of the runs: the limit is a capacity, other load only lowers it.
        if self
            .r
            .get(&format!("link.{size}.mpps"))
            .is_none_or(|old| pps / 1e6 > old)
        {
            self.r.set(format!("link.{size}.mpps"), pps / 1e6);
            self.r
                .set(format!("link.{size}.gbps"), pps * size as f64 * 8.0 / 1e9);
        }
        Ok(())
    }

    /// perf profiles of Sluice's server and client on a scenario.
    fn profile(&mut self, what: &str) -> Result<(), String> {
        let secs = self.seconds().min(3.0);
        let sock = self.sock("profile");
        let target = |p: u16| format!("198.18.0.1:{p}");
        let guard = "60".to_string();
        let (sprog, sargs, cprog, cargs) = match what {
            "rr" => {
                let many = self.r.many.to_string();
                let dur = format!("{}", secs + 2.0);
                let t = target(7);
                (
                    self.bin.join("sluice-echo"),
                    self.engine_args(true, &sock, &["--nodelay", "--listen", "7", "--seconds", &guard]),
                    self.bin.join("sluice-loadgen"),
                    self.engine_args(
                        false,
                        &sock,
                        &[
                            "--nodelay",
                            "--connect",
                            &t,
                            "--connections",
                            &many,
                            "--duration",
                            &dur,
                        ],
                    ),
                )
            }
            "newconn" => {
                let c = self.r.newconn_conns.to_string();
                let dur = format!("{}", secs + 2.0);
                let t = target(7);
                (
                    self.bin.join("sluice-echo"),
                    self.engine_args(true, &sock, &["--nodelay", "--listen", "7", "--seconds", &guard]),
                    self.bin.join("sluice-loadgen"),
                    self.engine_args(
                        false,
                        &sock,
                        &[
                            "--nodelay",
                            "--connect",
                            &t,
                            "--connections",
                            &c,
                            "--duration",
                            &dur,
                            "--new-connections",
                            "--msl-ms",
                            "50",
                        ],
                    ),
                )
            }
            _ => {
                let bytes = ((secs + 2.0) * 0.5e9) as u64;
                let b = bytes.to_string();
                let mut sa = s(&["recv", "--listen", "9000", "--bytes", &b, "--seconds", &guard]);
                sa.extend(self.engine_args(true, &sock, &[]));
                let mut ca = s(&[
                    "send",
                    "--connect",
                    &target(9000),
                    "--bytes",
                    &b,
                    "--seconds",
                    &guard,
                ]);
                ca.extend(self.engine_args(false, &sock, &[]));
                (self.bin.join("sluice-bulk"), sa, self.bin.join("sluice-bulk"), ca)
            }
        };
        let work = self.work.clone();
        let mut files = Vec::new();
        let mut during = |h: &mut Harness, sp: &mut Proc, cp: &mut Proc| -> Result<(), String> {
            std::thread::sleep(Duration::from_millis(1500));
            let mut perfs = Vec::new();
            for (side, pid) in [("server", sp.pid()), ("client", cp.pid())] {
                let f = work.join(format!("perf-{what}-{side}.data"));
                let mut c = Command::new("perf");
                c.arg("record");
                if !h.r.perf_hw {
                    c.args(["-e", "cpu-clock"]);
                }
                c.args(["-F", "999", "-o"]).arg(&f).args([
                    "-p",
                    &pid.to_string(),
                    "--",
                    "sleep",
                    &format!("{secs}"),
                ]);
                perfs.push(Proc::spawn(&format!("perf-{what}-{side}"), c, &work)?);
                files.push((side, f));
            }
            for p in perfs {
                p.finish(Duration::from_secs_f64(secs + 20.0));
            }
            Ok(())
        };
        let key = format!("profile-{what}");
        self.pair(
            &key,
            Stack::Sluice,
            (&sprog, sargs),
            (&cprog, cargs),
            Duration::from_secs(90),
            &sock,
            &mut during,
        )?;
        for (side, f) in files {
            let (out, _) = procs::run(
                Command::new("perf")
                    .args([
                        "report",
                        "--stdio",
                        "--no-children",
                        "-q",
                        "--sort",
                        "symbol",
                        "--percent-limit",
                        "2",
                        "-i",
                    ])
                    .arg(&f),
                Duration::from_secs(120),
            )?;
            let top: Vec<String> = out
                .lines()
                .map(str::trim)
                .filter(|l| l.contains('%'))
                .take(10)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            self.r.profiles.push((format!("{what}, {side}"), top));
            let _ = std::fs::remove_file(&f);
        }
        Ok(())
    }

    fn attempt(&mut self, what: &str, f: impl FnOnce(&mut Harness) -> Result<(), String>) {
        let t0 = Instant::now();
        eprintln!("sluice-e2e: {what} ...");
        if let Err(e) = f(self) {
            eprintln!("sluice-e2e: {what} FAILED: {e}");
            self.r
                .errors
                .push(format!("{what}: {}", e.lines().next().unwrap_or("")));
        } else {
            eprintln!("sluice-e2e: {what} done in {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
}

fn machine() -> Vec<(String, String)> {
    let sh = |c: &str, a: &[&str]| {
        procs::run(Command::new(c).args(a), Duration::from_secs(10))
            .map(|(o, _)| o.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| procs::kib_field(&m, "MemTotal:"))
        .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
        .unwrap_or_else(|| "?".into());
    vec![
        ("CPUs (nproc)".into(), sh("nproc", &[])),
        ("CPU model".into(), cpu),
        ("Memory".into(), mem),
        ("Kernel".into(), sh("uname", &["-sr"])),
        ("DPDK".into(), sh("pkg-config", &["--modversion", "libdpdk"])),
        ("rustc".into(), sh("rustc", &["--version"])),
    ]
}

/// Runs everything and writes the report.
pub fn main(o: Opts) -> Result<(), String> {
    let t0 = Instant::now();
    let quick = o.quick;
    let mut h = Harness::new(o)?;
    h.r.seconds = h.seconds();
    h.r.many = h.o.many.unwrap_or(if quick { 16 } else { 256 });
    h.r.lots = if quick { 1000 } else { 10_000 };
    h.r.newconn_conns = if quick { 8 } else { 64 };
    h.r.idle_target = h.o.idle_connections.unwrap_or(if quick { 1000 } else { 100_000 });
    h.r.buffer = 1024;
    h.r.machine = machine();
    h.r.started = procs::run(
        Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]),
        Duration::from_secs(5),
    )
    .map(|(o, _)| o.trim().to_string())
    .unwrap_or_default();
    eprintln!("sluice-e2e: logs in {}", h.work.display());
    let many = h.r.many;
    let nc = h.r.newconn_conns;
    for stack in [Stack::Sluice, Stack::Kernel] {
        let n = stack.name();
        h.attempt(&format!("{n}: 64 B request/response, 1 connection"), |h| {
            h.rr(stack, 1, "rr1", false)
        });
        h.attempt(&format!("{n}: 64 B request/response, {many} connections"), |h| {
            h.rr(stack, many, "rrN", false)
        });
        let lots = h.r.lots;
        h.attempt(&format!("{n}: 64 B request/response, {lots} connections"), |h| {
            h.rr(stack, lots, "rrL", false)
        });
        h.attempt(&format!("{n}: bulk, 1 connection"), |h| h.bulk(stack, "none"));
        h.attempt(&format!("{n}: bulk, 1 connection, SHA-256 checked"), |h| {
            h.bulk(stack, "sha256")
        });
        if stack == Stack::Kernel {
            h.attempt("kernel: iperf3, 1 stream", |h| h.iperf3());
        }
        h.attempt(&format!("{n}: new connections/s"), |h| {
            h.rr(stack, nc, "newconn", true)
        });
        for prog in ["iperf3", "sockperf", "redis"] {
            let how = if stack == Stack::Sluice {
                "under sluice-run"
            } else {
                "on the kernel"
            };
            h.attempt(&format!("{n}: {prog} {how}"), |h| h.program(stack, prog));
        }
    }
    // Sluice over IPv6, beside its IPv4 rows above.
    h.v6 = true;
    h.attempt("sluice: 64 B request/response, 1 connection, IPv6", |h| {
        h.rr(Stack::Sluice, 1, "rr1v6", false)
    });
    h.attempt(
        &format!("sluice: 64 B request/response, {many} connections, IPv6"),
        |h| h.rr(Stack::Sluice, many, "rrNv6", false),
    );
    h.attempt("sluice: bulk, 1 connection, IPv6", |h| {
        h.bulk_keyed(Stack::Sluice, "none", "bulkv6")
    });
    h.v6 = false;
    // The link limit is the better of the runs (a capacity: other load only lowers it),
    // so a run that read no rate (testpmd's start-up can outlast a short window) fails the
    // row only when no run read one. Quick mode stops at the first rate.
    for size in [64, 1514] {
        let mut last_error = None;
        for run in 1..=2 {
            let what = format!("link limit, testpmd {size} B, run {run}");
            eprintln!("sluice-e2e: {what} ...");
            match h.link(size) {
                Ok(()) => {
                    eprintln!("sluice-e2e: {what} done");
                    if quick {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("sluice-e2e: {what} gave no rate: {e}");
                    last_error = Some(format!("{what}: {}", e.lines().next().unwrap_or("")));
                }
            }
        }
        if h.r.get(&format!("link.{size}.mpps")).is_none() {
            h.r.errors.extend(last_error);
        }
    }
    for stack in [Stack::Sluice, Stack::Kernel] {
        h.attempt(&format!("{}: idle connections", stack.name()), |h| h.idle(stack));
    }
    let st = StateSize::of(h.r.buffer);
    h.r.set("sluice.state.tcb", st.tcb as f64);
    h.r.set("sluice.state.overhead", st.overhead as f64);
    h.r.set("sluice.state.buffers", st.buffers as f64);
    h.r.set("sluice.state.total", st.total() as f64);
    if !quick && !h.o.no_profile {
        let stat = |ev: &str| {
            procs::run(
                Command::new("perf").args(["stat", "-e", ev, "-x", ",", "true"]),
                Duration::from_secs(10),
            )
            .is_ok_and(|(_, e)| e.contains(ev) && !e.contains("not supported"))
        };
        h.r.perf_hw = stat("instructions");
        if !h.r.perf_hw {
            h.r.notes.push(
                "`perf stat -e instructions true`: not supported (no hardware counters in this VM); the \
                 profiles sample on the cpu-clock software event instead"
                    .into(),
            );
        }
        if h.r.perf_hw || stat("cpu-clock") {
            for what in ["rr", "bulk", "newconn"] {
                h.attempt(&format!("profile {what}"), |h| h.profile(what));
            }
        } else {
            h.r.notes.push("perf does not work here: no profile".into());
        }
    }
    // The namespaces go before the report is written.
    h.knet = None;
    h.r.elapsed = t0.elapsed().as_secs_f64();
    let out = h.o.out.clone();
    let img = h.o.img_dir.clone();
    let cmd = h.o.command.clone();
    let md = crate::report::write(&h.r, &out, &img, &cmd, quick)?;
    eprintln!(
        "sluice-e2e: wrote {} ({} errors) in {:.0} s",
        md.display(),
        h.r.errors.len(),
        h.r.elapsed
    );
    if h.r.errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} measurement(s) failed:\n{}",
            h.r.errors.len(),
            h.r.errors.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_progress_and_testpmd() {
        let p = "[   1.0s] open      1 |      100 req/s | in\n[   2.0s] open 1 |      300 req/s | x\n[   3.0s] open 1 | 500 req/s |\n";
        assert_eq!(progress_rate(p, None), Some(400.0));
        assert_eq!(progress_rate(p, Some(1)), Some(400.0));
        let q = "[ 1.0s] open 3 | 1 req/s |\n[ 2.0s] open 2 | 50 req/s |\n[ 3.0s] open 3 | 70 req/s |\n";
        assert_eq!(progress_rate(q, Some(3)), Some(70.0));
        assert_eq!(progress_rate("nothing", None), None);
        let t = "  Rx-pps:   1   Rx-bps: 2\n  Rx-pps: 0\n  Rx-pps:   10  Rx-bps: 3\n  Rx-pps:   30\n";
        assert_eq!(testpmd_rate(t), Some(20.0));
        let s = StateSize::of(1024);
        assert!(s.tcb > 100 && s.total() == s.tcb + s.overhead + 2048);
    }
}

/// The number after `"key":` in a JSON text (the first one).
fn json_number(text: &str, key: &str) -> Option<f64> {
    let at = text.find(&format!("\"{key}\""))?;
    let rest = text[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
