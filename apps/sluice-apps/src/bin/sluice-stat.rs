//! `sluice-stat`: looks inside a running Sluice process through DPDK telemetry, as
//! `netstat -s` (counters), `ss -ti` (`--conns`), and `--watch` (rates per second), the
//! way `ff_netstat`/`ff_top` do for F-Stack. Reads the process's telemetry socket,
//! `/var/run/dpdk/PREFIX/dpdk_telemetry.v2` (PREFIX: `sluice-PID` by default).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
#[command(
    version,
    about = "Counters and connections of a running Sluice process (DPDK telemetry)"
)]
struct Cli {
    /// The Sluice process (its EAL file prefix is sluice-PID).
    #[arg(long)]
    pid: Option<u32>,
    /// The EAL file prefix, when the process was given one (--eal=--file-prefix=...).
    #[arg(long)]
    file_prefix: Option<String>,
    /// List the connections (as `ss -ti`).
    #[arg(long)]
    conns: bool,
    /// Show the configuration.
    #[arg(long)]
    config: bool,
    /// Print rates every second until interrupted (or for this many seconds).
    #[arg(long, num_args = 0..=1, default_missing_value = "0")]
    watch: Option<f64>,
    /// Counters of each core too, not only the sum.
    #[arg(long)]
    per_core: bool,
}

/// A connection to a DPDK telemetry socket (SOCK_SEQPACKET, one JSON reply per command).
struct Telemetry {
    fd: OwnedFd,
}

impl Telemetry {
    fn connect(path: &Path) -> io::Result<Telemetry> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path too long",
            ));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: a valid address of the given length.
        let rc = unsafe { libc::connect(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let t = Telemetry { fd };
        t.recv()?; // the greeting: version, pid, max_output_len
        Ok(t)
    }

    fn recv(&self) -> io::Result<Value> {
        let mut buf = vec![0u8; 1 << 17];
        // SAFETY: reads into our buffer, within its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the process closed telemetry",
            ));
        }
        serde_json::from_slice(&buf[..n as usize]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Sends `cmd` and returns its reply (the value under the command's name).
    fn ask(&self, cmd: &str) -> io::Result<Value> {
        // SAFETY: sends our buffer, within its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), cmd.as_ptr().cast(), cmd.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let v = self.recv()?;
        let name = cmd.split(',').next().unwrap_or(cmd);
        match v.get(name) {
            Some(Value::Null) | None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name}: no such command in that process (not a Sluice engine?)"),
            )),
            Some(r) => Ok(r.clone()),
        }
    }
}

/// The telemetry socket of the process asked for, or of the only Sluice process running.
fn socket_path(cli: &Cli) -> Result<PathBuf, String> {
    let base = Path::new("/var/run/dpdk");
    let sock = |prefix: &str| base.join(prefix).join("dpdk_telemetry.v2");
    if let Some(p) = &cli.file_prefix {
        return Ok(sock(p));
    }
    if let Some(pid) = cli.pid {
        return Ok(sock(&format!("sluice-{pid}")));
    }
    let mut live = Vec::new();
    for e in std::fs::read_dir(base)
        .map_err(|e| format!("{}: {e}; is a Sluice process running?", base.display()))?
    {
        let Ok(e) = e else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("sluice-").and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() && sock(&name).exists() {
            live.push(pid);
        }
    }
    match live.as_slice() {
        [pid] => Ok(sock(&format!("sluice-{pid}"))),
        [] => Err("no running Sluice process found under /var/run/dpdk (give --pid or --file-prefix)".into()),
        many => Err(format!("several Sluice processes run ({many:?}): give --pid")),
    }
}

fn num(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// `netstat -s`-like: every non-zero counter, drops by reason, connections by state.
fn print_counters(name: &str, v: &Value) {
    println!("{name}:");
    let Some(m) = v.as_object() else { return };
    for (k, x) in m {
        if let Some(n) = x.as_u64() {
            if n != 0 || matches!(k.as_str(), "connections" | "drops" | "tcp_retransmits") {
                println!("    {k:<28} {n}");
            }
        }
    }
}

fn print_conns(t: &Telemetry) -> io::Result<()> {
    println!(
        "{:<4} {:<12} {:<22} {:<22} {:>8} {:>8} {:>10} {:>10} {:>9} {:>6} {:>9} {:>9}",
        "core",
        "state",
        "local",
        "remote",
        "rtt_us",
        "rttvar",
        "cwnd",
        "ssthresh",
        "inflight",
        "rtx",
        "send_q",
        "recv_q"
    );
    let mut page = 0;
    loop {
        let v = t.ask(&format!("/sluice/conns,{page}"))?;
        let pages = num(&v, "pages");
        if let Some(m) = v.as_object() {
            for row in m.values().filter(|r| r.is_object()) {
                let s = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                println!(
                    "{:<4} {:<12} {:<22} {:<22} {:>8} {:>8} {:>10} {:>10} {:>9} {:>6} {:>9} {:>9}",
                    num(row, "core"),
                    s("state"),
                    s("local"),
                    s("remote"),
                    num(row, "srtt_us"),
                    num(row, "rttvar_us"),
                    num(row, "cwnd"),
                    num(row, "ssthresh"),
                    num(row, "in_flight"),
                    num(row, "retransmits"),
                    num(row, "send_queue"),
                    num(row, "recv_queue"),
                );
            }
        }
        page += 1;
        if page >= pages {
            println!("{} connection(s)", num(&v, "total"));
            return Ok(());
        }
    }
}

fn watch(t: &Telemetry, seconds: f64) -> io::Result<()> {
    let start = Instant::now();
    let mut last = t.ask("/sluice/stats")?;
    let mut at = Instant::now();
    println!(
        "{:>7} {:>11} {:>11} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7}",
        "time", "rx pkt/s", "tx pkt/s", "rx Gb/s", "tx Gb/s", "rtx/s", "drops/s", "conns", "estab"
    );
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = t.ask("/sluice/stats")?;
        let dt = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        let rate = |k: &str| (num(&now, k).saturating_sub(num(&last, k))) as f64 / dt;
        println!(
            "{:>6.1}s {:>11.0} {:>11.0} {:>9.3} {:>9.3} {:>8.0} {:>8.0} {:>7} {:>7}",
            start.elapsed().as_secs_f64(),
            rate("rx_packets"),
            rate("tx_packets"),
            rate("rx_bytes") * 8e-9,
            rate("tx_bytes") * 8e-9,
            rate("tcp_retransmits"),
            rate("drops"),
            num(&now, "connections"),
            num(&now, "conns_established"),
        );
        last = now;
        if seconds > 0.0 && start.elapsed().as_secs_f64() >= seconds {
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match socket_path(&cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sluice-stat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t = match Telemetry::connect(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "sluice-stat: {}: {e} (is the process running, with telemetry?)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let run = || -> io::Result<()> {
        if let Some(secs) = cli.watch {
            return watch(&t, secs);
        }
        if cli.config {
            let v = t.ask("/sluice/config")?;
            if let Some(m) = v.as_object() {
                for (k, x) in m {
                    println!(
                        "{k:<24} {}",
                        x.as_str().map_or_else(|| x.to_string(), str::to_string)
                    );
                }
            }
            return Ok(());
        }
        if cli.conns {
            return print_conns(&t);
        }
        let v = t.ask("/sluice/stats")?;
        print_counters("all cores", &v);
        if cli.per_core {
            for c in 0..num(&v, "cores") {
                if let Some(core) = v.get(format!("core{c}")) {
                    print_counters(&format!("core {c}"), core);
                }
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-stat: {e}");
            ExitCode::FAILURE
        }
    }
}
