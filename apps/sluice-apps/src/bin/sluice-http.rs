//! `sluice-http`: an HTTP/1.1 server on Sluice or on the kernel's sockets: keep-alive,
//! pipelining, a fixed body at `/`, generated bodies at `/bytes/N`, files under `--root`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice_apps::drive::Plan;
use sluice_apps::http::{HttpSession, Site};
use sluice_apps::run::{print_summary, run, RunSpec, StackArgs};

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
    #[command(flatten)]
    stack: StackArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let site = match Site::new(cli.body_size, cli.root.as_deref()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("sluice-http: --root {:?}: {e}", cli.root.unwrap_or_default());
            return ExitCode::FAILURE;
        }
    };
    let spec = RunSpec {
        program: "sluice-http",
        plan: Plan {
            listen: Some(cli.listen),
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
