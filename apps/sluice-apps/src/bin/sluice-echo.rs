//! `sluice-echo`: a TCP echo server on Sluice or on the kernel's sockets.

use std::process::ExitCode;

use clap::Parser;
use sluice_apps::drive::Plan;
use sluice_apps::echo::EchoSession;
use sluice_apps::run::{print_summary, run, secs_ns, RunSpec, StackArgs};

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
    /// Close a connection after this many seconds without input (while nothing is
    /// queued to send); 0: never. (Sluice only.)
    #[arg(long, default_value_t = 300.0)]
    idle_timeout: f64,
    /// Reset a connection whose echo waits this many seconds without the peer taking a
    /// byte; 0: never. (Sluice only.)
    #[arg(long, default_value_t = 60.0)]
    send_timeout: f64,
    #[command(flatten)]
    stack: StackArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let spec = RunSpec {
        program: "sluice-echo",
        plan: Plan {
            listen: Some(cli.listen),
            send_timeout: secs_ns(cli.send_timeout),
            ..Plan::default()
        },
        connections: 0,
        seconds: cli.seconds,
    };
    let idle = secs_ns(cli.idle_timeout);
    match run(&cli.stack, &spec, move || EchoSession::with_idle_timeout(idle)) {
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
