//! `sluice-responder`: Sluice's IPv4 layer on a DPDK port, answering ARP and ICMP echo.
//!
//! By default it creates a `net_tap` port named `sl0`, so that the kernel (run it inside a
//! network namespace) can ping it. It prints its counters once a second and on exit.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use sluice_dpdk::{EalBuilder, Port, PortConfig};
use sluice_engine::{Idle, IdleStrategy};
use sluice_net::{Interface, InterfaceConfig, IsnKey};
use sluice_wire::{EthernetAddress, Ipv4Cidr};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Answer ARP and ICMP echo with Sluice on a DPDK port")]
struct Cli {
    /// The tap interface to create (ignored with --port).
    #[arg(long, default_value = "sl0")]
    iface: String,
    /// Use this existing DPDK port (by name, e.g. a PCI address) instead of creating a tap.
    #[arg(long)]
    port: Option<String>,
    /// Our address and prefix.
    #[arg(long, default_value = "198.18.0.2/24")]
    ip: String,
    /// Stop after this many seconds (0: run until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// busy, backoff, or backoff:MAX_SLEEP_US.
    #[arg(long, default_value = "backoff")]
    idle: IdleStrategy,
    /// Print counters every second.
    #[arg(long)]
    progress: bool,
    /// Extra EAL arguments (repeatable), e.g. --eal=-l --eal=1.
    #[arg(long = "eal", allow_hyphen_values = true)]
    eal: Vec<String>,
}

fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX, e.g. 198.18.0.2/24"))?;
    let addr: std::net::Ipv4Addr = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{p:?}: prefix 0..=32"))?;
    Ok(Ipv4Cidr::new(addr.octets().into(), prefix))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let cidr = parse_cidr(&cli.ip)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))?;

    let mut eal = EalBuilder::new("sluice-responder");
    if cli.eal.is_empty() {
        let prefix = format!("sluice-responder-{}", std::process::id());
        eal = eal.no_huge().no_pci().file_prefix(&prefix).lcores("0");
    } else {
        eal = eal.args(cli.eal.iter().cloned());
    }
    let port_name = match &cli.port {
        Some(p) => p.clone(),
        None => {
            eal = eal.vdev(&format!("net_tap0,iface={}", cli.iface));
            "net_tap0".to_owned()
        }
    };
    let eal = eal.init()?;
    let id = Port::id_by_name(&eal, &port_name)?;
    let port = Port::configure(
        &eal,
        id,
        &PortConfig {
            mbufs_per_queue: 4095,
            ..Default::default()
        },
    )?;
    let mut dev = port.queue(0);
    let mac = EthernetAddress(port.mac());
    let mut iface = Interface::new(InterfaceConfig::new(cidr, IsnKey::from_os()?), mac);
    println!(
        "responder: {} on {port_name} ({}) mac {mac}, ready",
        cidr,
        port.port_info().driver
    );

    let clock = eal.clock();
    let t0 = StdInstant::now();
    let mut last = StdInstant::now();
    let mut idle = Idle::new(cli.idle);
    while !stop.load(Ordering::Relaxed) {
        if cli.seconds > 0 && t0.elapsed() >= Duration::from_secs(cli.seconds) {
            break;
        }
        let now = clock.now();
        if iface.poll(now, &mut dev) {
            idle.reset();
        } else {
            let until = iface.poll_at().map(|t| t - now);
            idle.wait(until);
        }
        if cli.progress && last.elapsed() >= Duration::from_secs(1) {
            last = StdInstant::now();
            print_stats(&iface);
        }
    }
    print_stats(&iface);
    Ok(())
}

fn print_stats(iface: &Interface) {
    let s = iface.stats();
    println!(
        "stats: rx_packets={} tx_packets={} arp_requests_rx={} arp_replies_tx={} icmp_echo_rx={} icmp_echo_replies_tx={} drops={}",
        s.rx_packets,
        s.tx_packets,
        s.arp.requests_rx,
        s.arp.replies_tx,
        s.icmp.echo_requests_rx,
        s.icmp.echo_replies_tx,
        s.drops.total()
    );
    let reasons: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    if !reasons.is_empty() {
        println!("drops: {}", reasons.join(" "));
    }
}
