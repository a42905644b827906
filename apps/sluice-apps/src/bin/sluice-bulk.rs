//! `sluice-bulk`: streams a seeded pseudo-random pattern one way and checks it by SHA-256
//! at the receiver. Either side can listen or connect.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice_apps::bulk::{hex, BulkReceiver, BulkSender, Reports, Verify};
use sluice_apps::drive::Plan;
use sluice_apps::run::{print_summary, run, RunResult, RunSpec, StackArgs, Table};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Send,
    Recv,
}

#[derive(Parser)]
#[command(
    version,
    about = "Bulk TCP transfer checked by SHA-256, on Sluice (DPDK) or on the kernel's sockets"
)]
struct Cli {
    /// Send the pattern, or receive and check it.
    #[arg(value_enum)]
    mode: Mode,
    /// Be the server: wait for one connection on this TCP port.
    #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
    listen: Option<u16>,
    /// Be the client: connect to this IP:PORT.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// Bytes to transfer (the receiver expects as many).
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// The pattern's seed (both sides must agree).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// sha256: hash and check every byte (correctness); none: send one pre-generated chunk
    /// again and again and only count bytes (the rate of the stack, not of the checks).
    #[arg(long, value_enum, default_value_t = Verify::Sha256)]
    verify: Verify,
    /// Give up after this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    #[command(flatten)]
    stack: StackArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let reports: Reports = Arc::default();
    let spec = RunSpec {
        program: "sluice-bulk",
        plan: Plan {
            listen: cli.listen,
            connect: cli.connect,
            stop_after_closed: Some(1),
            ..Plan::default()
        },
        connections: usize::from(cli.connect.is_some()),
        seconds: cli.seconds,
    };
    let (seed, bytes, r, v) = (cli.seed, cli.bytes, reports.clone(), cli.verify);
    let result: Result<RunResult, String> = match cli.mode {
        Mode::Send => run(&cli.stack, &spec, move || {
            BulkSender::with_verify(seed, bytes, r.clone(), v)
        }),
        Mode::Recv => run(&cli.stack, &spec, move || {
            BulkReceiver::with_verify(seed, bytes, r.clone(), v)
        }),
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-bulk: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reports = reports.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut table = Table::new("transfer");
    let mut ok = !reports.is_empty();
    for b in &reports {
        table
            .row("role", if b.sender { "sender" } else { "receiver" })
            .row("bytes", format!("{} of {}", b.bytes, b.expected_bytes))
            .row("seconds", format!("{:.3}", b.seconds))
            .row("Gbit/s", format!("{:.3}", b.gbps()))
            .row(
                "sha256",
                b.digest
                    .map_or_else(|| "not checked (--verify none)".into(), |d| hex(&d)),
            );
        if let Some(d) = b.expected_digest {
            table.row("sha256 expected", hex(&d));
        }
        if let Some(m) = b.first_mismatch {
            table.row("first mismatch at", m);
        }
        table.row("result", if b.ok() { "OK" } else { "FAILED" });
        ok &= b.ok();
    }
    if reports.is_empty() {
        table.row("result", "FAILED (no transfer)");
    }
    print_summary("sluice-bulk", &result, &[table]);
    for b in &reports {
        println!(
            "bulk: role={} bytes={} sha256={} expected={} gbps={:.3} ok={}",
            if b.sender { "send" } else { "recv" },
            b.bytes,
            b.digest.map_or_else(|| "-".into(), |d| hex(&d)),
            b.expected_digest.map(|d| hex(&d)).unwrap_or_else(|| "-".into()),
            b.gbps(),
            b.ok()
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
