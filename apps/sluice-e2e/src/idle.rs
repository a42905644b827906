//! Idle connections for the memory measurement: a server that listens on several ports
//! and holds what it accepts, and a client that opens N connections round-robin over
//! those ports and holds them, both doing nothing else. On Sluice (an engine `App`) or on
//! the kernel's sockets. Both print `idle: established=N failed=M` a few times a second.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as KListener, TcpStream as KStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::{App, Config, ConfigArgs, Cx, Engine, TcpListener, TcpStream};
use sluice_net::TcpState;
use sluice_wire::Ipv4Address;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Server,
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StackKind {
    Sluice,
    Kernel,
}

/// `sluice-e2e idle`: hold idle connections.
#[derive(Clone, Debug, clap::Args)]
pub struct IdleArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    #[arg(long, value_enum, default_value = "sluice")]
    pub stack: StackKind,
    /// The server's TCP ports, FIRST-LAST.
    #[arg(long, default_value = "7001-7008")]
    pub ports: String,
    /// Client: the server's address.
    #[arg(long)]
    pub connect: Option<Ipv4Addr>,
    /// Kernel server: the address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: Ipv4Addr,
    /// Client: connections to open in all.
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Client (Sluice): handshakes in progress at most (more overflows the device's
    /// queues and the ARP queue at the start: SYNs are lost and retried 1 s later).
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    #[command(flatten)]
    pub engine: ConfigArgs,
}

fn parse_ports(s: &str) -> Result<Vec<u16>, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (
        a.parse().map_err(|_| format!("bad port range {s}"))?,
        b.parse().map_err(|_| format!("bad port range {s}"))?,
    );
    if a == 0 || b < a {
        return Err(format!("bad port range {s}"));
    }
    Ok((a..=b).collect())
}

#[derive(Default)]
struct Counts {
    established: AtomicU64,
    failed: AtomicU64,
}

fn report(c: &Counts, last: bool) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "idle: established={} failed={}{}",
        c.established.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        if last { " done=1" } else { "" }
    );
    let _ = o.flush();
}

/// Reports every 250 ms until `stop` or `seconds`.
fn supervise(c: &Counts, stop: &AtomicBool, seconds: f64) {
    let t0 = Instant::now();
    let mut next = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) && t0.elapsed().as_secs_f64() < seconds {
        if t0.elapsed() >= next {
            report(c, false);
            next += Duration::from_millis(250);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
}

struct SluiceServer {
    ports: Vec<u16>,
    listeners: Vec<TcpListener>,
    conns: Vec<TcpStream>,
    counts: Arc<Counts>,
}

impl App for SluiceServer {
    fn start(&mut self, cx: &Cx) -> Result<(), sluice_engine::AppError> {
        for &p in &self.ports {
            let l = TcpListener::bind(cx, p, 4096).map_err(|e| format!("idle server: listen on {p}: {e}"))?;
            self.listeners.push(l);
        }
        Ok(())
    }
    fn poll(&mut self, cx: &Cx) -> bool {
        let mut did = false;
        for l in &self.listeners {
            for _ in 0..256 {
                let Ok(s) = l.accept(cx) else { break };
                self.conns.push(s);
                did = true;
            }
        }
        if did {
            self.counts
                .established
                .store(self.conns.len() as u64, Ordering::Relaxed);
        }
        did
    }
}

struct SluiceClient {
    target: Ipv4Address,
    ports: Vec<u16>,
    want: u64,
    inflight: usize,
    pending: Vec<TcpStream>,
    held: Vec<TcpStream>,
    next: usize,
    retry_at: u64,
    counts: Arc<Counts>,
}

impl App for SluiceClient {
    fn poll(&mut self, cx: &Cx) -> bool {
        let now = cx.now().total_nanos();
        let mut did = false;
        // One handshake alone until the first completes (ARP resolution), then `inflight`.
        let inflight = if self.held.is_empty() { 1 } else { self.inflight };
        while ((self.held.len() + self.pending.len()) as u64) < self.want
            && self.pending.len() < inflight
            && now >= self.retry_at
        {
            let port = self.ports[self.next % self.ports.len()];
            match TcpStream::connect(cx, self.target, port) {
                Ok(s) => {
                    self.next += 1;
                    self.pending.push(s);
                    did = true;
                }
                Err(e) => {
                    if self.counts.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("idle client: connect to port {port}: {e}");
                    }
                    self.next += 1;
                    self.retry_at = now + 10_000_000;
                    break;
                }
            }
        }
        let (held, counts) = (&mut self.held, &self.counts);
        self.pending.retain(|s| match s.state(cx) {
            TcpState::Established => {
                held.push(*s);
                false
            }
            TcpState::SynSent | TcpState::SynReceived => true,
            _ => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                s.abort(cx);
                false
            }
        });
        self.counts
            .established
            .store(self.held.len() as u64, Ordering::Relaxed);
        did
    }
}

fn run_sluice(a: &IdleArgs, ports: Vec<u16>) -> Result<(), String> {
    let config = Config::from_args(&a.engine).map_err(|e| e.to_string())?;
    if config.cores != 1 {
        return Err("idle: one core only".into());
    }
    let counts = Arc::new(Counts::default());
    let target = a.connect.map(|ip| Ipv4Address(ip.octets()));
    if a.role == Role::Client && target.is_none() {
        return Err("idle client: --connect is required".into());
    }
    let seconds = a.seconds;
    let c2 = counts.clone();
    let (role, want, inflight) = (a.role, a.connections, a.inflight.max(1));
    let on_start = move |h: sluice_engine::EngineHandle| {
        eprintln!("idle {role:?}: sluice on {} ({})", h.mac, h.driver);
        let stop = h.stop_flag();
        supervise(&c2, &stop, seconds);
        h.stop();
    };
    let make = |_core: u16| -> Box<dyn App> {
        match role {
            Role::Server => Box::new(SluiceServer {
                ports: ports.clone(),
                listeners: Vec::new(),
                conns: Vec::new(),
                counts: counts.clone(),
            }),
            Role::Client => Box::new(SluiceClient {
                target: target.unwrap_or(Ipv4Address([0; 4])),
                ports: ports.clone(),
                want,
                inflight,
                pending: Vec::new(),
                held: Vec::new(),
                next: 0,
                retry_at: 0,
                counts: counts.clone(),
            }),
        }
    };
    Engine::run("sluice-e2e", &config, make, on_start).map_err(|e| e.to_string())?;
    report(&counts, true);
    Ok(())
}

fn run_kernel(a: &IdleArgs, ports: Vec<u16>) -> Result<(), String> {
    crate::procs::raise_nofile(1 << 20);
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    match a.role {
        Role::Server => {
            for p in ports {
                let l =
                    KListener::bind(SocketAddrV4::new(a.bind, p)).map_err(|e| format!("listen {p}: {e}"))?;
                let (counts, stop) = (counts.clone(), stop.clone());
                // Detached: blocked in accept when the process exits.
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match l.accept() {
                            Ok((s, _)) => {
                                held.push(s);
                                counts.established.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                counts.failed.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    held
                });
            }
            eprintln!("idle Server: kernel sockets on {}", a.bind);
            supervise(&counts, &stop, a.seconds);
        }
        Role::Client => {
            let ip = a.connect.ok_or("idle client: --connect is required")?;
            let (want, c2, s2) = (a.connections, counts.clone(), stop.clone());
            let t = std::thread::spawn(move || {
                let mut held = Vec::new();
                let mut i = 0usize;
                while (held.len() as u64) < want && !s2.load(Ordering::Relaxed) {
                    let to = SocketAddr::V4(SocketAddrV4::new(ip, ports[i % ports.len()]));
                    i += 1;
                    match KStream::connect_timeout(&to, Duration::from_secs(1)) {
                        Ok(s) => {
                            held.push(s);
                            c2.established.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if c2.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("idle client: connect to {to}: {e}");
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                while !s2.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                held.len()
            });
            eprintln!("idle Client: kernel sockets to {ip}");
            supervise(&counts, &stop, a.seconds);
            let _ = t.join();
        }
    }
    report(&counts, true);
    Ok(())
}

/// Runs `sluice-e2e idle`.
pub fn main(a: &IdleArgs) -> Result<(), String> {
    let ports = parse_ports(&a.ports)?;
    match a.stack {
        StackKind::Sluice => run_sluice(a, ports),
        StackKind::Kernel => run_kernel(a, ports),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_ranges() {
        assert_eq!(super::parse_ports("7001-7003").unwrap(), [7001, 7002, 7003]);
        assert_eq!(super::parse_ports("80").unwrap(), [80]);
        assert!(super::parse_ports("9-3").is_err());
    }
}
