//! `sluice-loadgen`: a closed-loop load generator against the echo server or an HTTP
//! server, on Sluice or on the kernel's sockets: requests/s and latency percentiles.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice_apps::drive::Plan;
use sluice_apps::loadgen::{ClientSession, LatencySummary, LoadSpec};
use sluice_apps::run::{print_summary, run, RunSpec, StackArgs, Table};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Closed-loop TCP load generator (echo or HTTP) on Sluice (DPDK) or on the kernel's sockets"
)]
struct Cli {
    /// The server, IP:PORT.
    #[arg(long)]
    connect: SocketAddr,
    /// Connections in all (spread over the cores).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Echo mode: bytes per request.
    #[arg(long, default_value_t = 64)]
    request_size: usize,
    /// Echo mode: bytes per response (must equal --request-size); HTTP mode without a
    /// path: GET /bytes/N.
    #[arg(long)]
    response_size: Option<u64>,
    /// HTTP mode: GET this path (default "/", or /bytes/N with --response-size).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    http: Option<String>,
    /// HTTP mode: the Host header (default: the server's address).
    #[arg(long)]
    host: Option<String>,
    /// Requests outstanding per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Connect per request: every connection does one request/response and is closed,
    /// and a new one is opened in its place (--connections of them at a time). Measures
    /// new connections per second (each completed request is one connection).
    #[arg(long)]
    new_connections: bool,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[command(flatten)]
    stack: StackArgs,
}

fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let load = match &cli.http {
        Some(path) => {
            let path = match (path.as_str(), cli.response_size) {
                ("", Some(n)) => format!("/bytes/{n}"),
                ("", None) => "/".to_string(),
                (p, _) => p.to_string(),
            };
            if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                eprintln!("sluice-loadgen: --http {path:?}: expected a path starting with /");
                return ExitCode::FAILURE;
            }
            let host = cli.host.clone().unwrap_or_else(|| cli.connect.to_string());
            LoadSpec::http(&path, &host, cli.pipeline)
        }
        None => {
            if cli.response_size.is_some_and(|r| r != cli.request_size as u64) {
                eprintln!("sluice-loadgen: echo mode: --response-size must equal --request-size");
                return ExitCode::FAILURE;
            }
            if cli.request_size == 0 {
                eprintln!("sluice-loadgen: --request-size must be at least 1");
                return ExitCode::FAILURE;
            }
            LoadSpec::echo(cli.request_size, cli.pipeline)
        }
    };
    let load = Arc::new(if cli.new_connections {
        load.with_per_connection(1)
    } else {
        load
    });
    let spec = RunSpec {
        program: "sluice-loadgen",
        plan: Plan {
            connect: Some(cli.connect),
            ..Plan::default()
        },
        connections: cli.connections,
        seconds: Some(cli.duration),
    };
    let l = load.clone();
    let r = match run(&cli.stack, &spec, move || ClientSession::new(l.clone())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = r.total();
    let s = LatencySummary::of(&total.latency);
    let mut lat = Table::new("latency");
    lat.row("samples", s.count)
        .row("mean", us(s.mean as u64))
        .row("min", us(s.min))
        .row("p50", us(s.p50))
        .row("p90", us(s.p90))
        .row("p99", us(s.p99))
        .row("p99.9", us(s.p999))
        .row("max", us(s.max));
    print_summary("sluice-loadgen", &r, &[lat]);
    println!(
        "latency: p50_ns={} p90_ns={} p99_ns={} p999_ns={} max_ns={} rps={:.0}",
        s.p50,
        s.p90,
        s.p99,
        s.p999,
        s.max,
        sluice_apps::loadgen::rate(total.requests, r.seconds)
    );
    if cli.new_connections {
        println!(
            "connections: closed={} per_s={:.0}",
            total.conns_closed,
            sluice_apps::loadgen::rate(total.conns_closed, r.seconds)
        );
    }
    ExitCode::SUCCESS
}
