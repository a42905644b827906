//! `sluice-e2e`: the end-to-end benchmark harness. `sluice-e2e run` measures Sluice and
//! the Linux kernel side by side on this machine (one core per side) with the
//! applications of `sluice-apps`, the raw link limit with `dpdk-testpmd`, and writes
//! `docs/benchmarks-e2e.md` with SVG plots. `sluice-e2e idle` holds idle connections
//! (the memory measurement); `sluice-e2e sizes` prints the stack's per-connection sizes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod harness;
mod idle;
mod plots;
mod procs;
mod report;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "End-to-end benchmarks: Sluice vs the kernel, and the link limit"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every measurement and write the report.
    Run(harness::Opts),
    /// Hold idle connections (server or client), for the memory measurement.
    Idle(Box<idle::IdleArgs>),
    /// Print the stack's per-connection state sizes.
    Sizes {
        /// Receive and send buffer, bytes each.
        #[arg(long, default_value_t = 1024)]
        buffer: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(o) => harness::main(o),
        Cmd::Idle(a) => idle::main(&a),
        Cmd::Sizes { buffer } => {
            let s = harness::StateSize::of(buffer);
            println!(
                "sizes: tcb={} conn_overhead={} buffers={} total={}",
                s.tcb,
                s.overhead,
                s.buffers,
                s.total()
            );
            Ok(())
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}
