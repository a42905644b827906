//! `sluice-http`: an HTTP/1.1 server on Sluice or on the kernel's sockets: keep-alive,
//! pipelining, a fixed body at `/`, generated bodies at `/bytes/N`, files under `--root`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice_apps::drive::Plan;
use sluice_apps::http::{HttpSession, Site};
use sluice_apps::run::{print_summary, run, secs_ns, RunSpec, StackArgs};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "HTTP/1.1 server on Sluice (DPDK) or on the kernel's sockets"
)]
struct Cli {
    /// The TCP port to serve (--port is the engine's DPDK port).
    #[arg(long, default_value_t = 80)]
    listen: u16,
    /// Size of the fixed response body of `GET /`.
    #[arg(long, default_value_t = 128)]
    body_size: usize,
    /// Serve the files under this directory (`GET /path`).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds a request head may take from its first byte (and the first request from
    /// the connection's opening); 0: no limit. nginx's client_header_timeout.
    #[arg(long, default_value_t = 60.0)]
    header_timeout: f64,
    /// Seconds a connection may stay idle between requests; 0: no limit. nginx's
    /// keepalive_timeout.
    #[arg(long, default_value_t = 75.0)]
    keepalive_timeout: f64,
    /// Seconds a response may wait without the client taking a byte before the
    /// connection is reset; 0: no limit. nginx's send_timeout. (Sluice only.)
    #[arg(long, default_value_t = 60.0)]
    send_timeout: f64,
    /// Most connections per core; SYNs beyond are dropped (the client retries). (Sluice only.)
    #[arg(long, default_value_t = 16384)]
    max_clients: usize,
    #[command(flatten)]
    stack: StackArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let site = match Site::new(cli.body_size, cli.root.as_deref()) {
        Ok(mut s) => {
            s.limits.header_timeout_ns = secs_ns(cli.header_timeout);
            s.limits.keepalive_timeout_ns = secs_ns(cli.keepalive_timeout);
            Arc::new(s)
        }
        Err(e) => {
            eprintln!("sluice-http: --root {:?}: {e}", cli.root.unwrap_or_default());
            return ExitCode::FAILURE;
        }
    };
    let spec = RunSpec {
        program: "sluice-http",
        plan: Plan {
            listen: Some(cli.listen),
            send_timeout: secs_ns(cli.send_timeout),
            max_connections: Some(cli.max_clients),
            ..Plan::default()
        },
        connections: 0,
        seconds: cli.seconds,
    };
    match run(&cli.stack, &spec, move || HttpSession::new(site.clone())) {
        Ok(r) => {
            print_summary("sluice-http", &r, &[]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice-http: {e}");
            ExitCode::FAILURE
        }
    }
}
