//! `sluice-echo`: a TCP echo server on Sluice or on the kernel's sockets.

use std::process::ExitCode;

use clap::Parser;
use sluice_apps::drive::Plan;
use sluice_apps::echo::EchoSession;
use sluice_apps::run::{print_summary, run, RunSpec, StackArgs};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "TCP echo server on Sluice (DPDK) or on the kernel's sockets"
)]
struct Cli {
    /// The TCP port to serve (--port is the engine's DPDK port).
    #[arg(long, default_value_t = 7)]
    listen: u16,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    seconds: Option<f64>,
    #[command(flatten)]
    stack: StackArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let spec = RunSpec {
        program: "sluice-echo",
        plan: Plan {
            listen: Some(cli.listen),
            ..Plan::default()
        },
        connections: 0,
        seconds: cli.seconds,
    };
    match run(&cli.stack, &spec, EchoSession::new) {
        Ok(r) => {
            print_summary("sluice-echo", &r, &[]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice-echo: {e}");
            ExitCode::FAILURE
        }
    }
}
