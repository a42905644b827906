//! `sluice-run [FLAGS] -- PROGRAM ARGS...`: runs an unmodified, dynamically linked
//! program with Sluice as its TCP/UDP stack. The program's AF_INET sockets are Sluice's
//! (`libsluice_preload.so` in `LD_PRELOAD`, over the C API on one DPDK port); every other
//! descriptor is the kernel's. See docs/guide.md, "Unmodified programs: sluice-run".

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Run an unmodified Linux program with Sluice as its TCP/UDP stack",
    after_help = "Example: sluice-run --port tap:sl0 --ip 198.18.0.2/24 -- python3 -m http.server 8080"
)]
struct Cli {
    /// The DPDK port: tap:NAME (net_tap; the kernel sees interface NAME),
    /// virtio:PATH (virtio_user on a vhost-user socket), vhost:PATH (net_vhost serving
    /// a vhost-user socket at PATH, for a peer on virtio:PATH), or a port EAL knows (a PCI
    /// address, or a vdev given with --eal=--vdev=...).
    #[arg(long, default_value = "tap:sl0")]
    port: String,
    /// The stack's address and prefix.
    #[arg(long, default_value = "198.18.0.2/24")]
    ip: String,
    /// The router for off-link destinations.
    #[arg(long)]
    gateway: Option<String>,
    /// A static ARP entry, IP=MAC (repeatable).
    #[arg(long)]
    arp: Vec<String>,
    /// An IPv6 address and prefix besides the link-local one (repeatable), e.g.
    /// 2001:2::2/64: AF_INET6 sockets reach IPv6 peers through it.
    #[arg(long)]
    ip6: Vec<String>,
    /// The IPv6 router for off-link destinations (else the one router advertisements
    /// name).
    #[arg(long)]
    gateway6: Option<String>,
    /// One EAL argument (repeatable), added to the defaults, replacing only those of
    /// its kind: --eal=-l --eal=1 runs the stack (and the program's main thread) on CPU 1.
    #[arg(long, allow_hyphen_values = true)]
    eal: Vec<String>,
    /// Mbufs in the port's pool.
    #[arg(long)]
    mbufs: Option<u32>,
    /// How long a waiting call (epoll_wait, poll, select, a blocking read...) polls the
    /// stack before it sleeps in the kernel, in microseconds (0: sleep at once).
    #[arg(long, default_value_t = 1000)]
    spin_us: u64,
    /// Another flag of the C API's instance (repeatable), e.g. --stack=--nodelay,
    /// --stack=--rcvbuf=1048576, --stack=--congestion=newreno.
    #[arg(long, allow_hyphen_values = true)]
    stack: Vec<String>,
    /// AF_INET6 sockets go to the kernel (by default they are Sluice's dual-stack sockets:
    /// IPv6 peers, and IPv4 ones through IPv4-mapped addresses).
    #[arg(long)]
    kernel_inet6: bool,
    /// The preload library (default: libsluice_preload.so next to this program).
    #[arg(long)]
    preload: Option<PathBuf>,
    /// No line on standard error when the program starts.
    #[arg(long)]
    quiet: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The flags of `sluice_init_dpdk`.
fn flags(cli: &Cli) -> String {
    let mut f = vec![format!("--port={}", cli.port), format!("--ip={}", cli.ip)];
    f.extend(cli.gateway.iter().map(|g| format!("--gateway={g}")));
    f.extend(cli.arp.iter().map(|a| format!("--arp={a}")));
    f.extend(cli.ip6.iter().map(|a| format!("--ip6={a}")));
    f.extend(cli.gateway6.iter().map(|g| format!("--gateway6={g}")));
    f.extend(cli.eal.iter().map(|e| format!("--eal={e}")));
    if !cli.eal.iter().any(|e| e.starts_with("--log-level")) {
        // EAL's notices and above, without the chatter that does not matter here
        // (net_tap's multiq qdisc and rte_flow, telemetry's legacy socket).
        for l in [
            "--log-level=5",
            "--log-level=pmd.net.tap:3",
            "--log-level=lib.telemetry:4",
        ] {
            f.push(format!("--eal={l}"));
        }
    }
    f.extend(cli.mbufs.iter().map(|m| format!("--mbufs={m}")));
    f.push(format!("--spin_us={}", cli.spin_us));
    // Buffers as Linux's autotuning reaches for a fast path (its defaults grow to 4-6 MiB);
    // SO_RCVBUF / SO_SNDBUF and --stack=--rcvbuf=N / --sndbuf=N set others.
    for (flag, default) in [("--rcvbuf=", "1048576"), ("--sndbuf=", "1048576")] {
        if !cli.stack.iter().any(|s| s.starts_with(flag)) {
            f.push(format!("{flag}{default}"));
        }
    }
    f.extend(cli.stack.iter().cloned());
    f.join(" ")
}

/// `name` as `execvp` would find it.
fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// Whether the ELF file at `path` asks for a dynamic loader (PT_INTERP): LD_PRELOAD
/// only reaches programs that have one. `None` if it is not a 64-bit ELF file (a script:
/// its interpreter is what runs, and is checked by the kernel).
fn dynamically_linked(path: &Path) -> Option<bool> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let phoff = u64::from_le_bytes(b.get(0x20..0x28)?.try_into().ok()?) as usize;
    let (entsize, num) = (u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    Some((0..num).any(|i| {
        let o = phoff + i * entsize;
        b.get(o..o + 4).is_some_and(|t| t == 3u32.to_le_bytes())
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = flags(&cli);
    if let Err(e) = sluice_capi::DpdkFlags::parse(&flags) {
        eprintln!("sluice-run: {e}");
        return ExitCode::from(2);
    }
    let preload = cli.preload.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("libsluice_preload.so")))
            .unwrap_or_else(|| PathBuf::from("libsluice_preload.so"))
    });
    if !preload.is_file() {
        eprintln!(
            "sluice-run: {} not found; build it with `cargo build --release -p sluice-preload`, or give --preload PATH",
            preload.display()
        );
        return ExitCode::from(2);
    }
    let preload = preload.canonicalize().unwrap_or(preload);
    let program = &cli.command[0];
    let Some(path) = which(program) else {
        eprintln!("sluice-run: {program}: command not found");
        return ExitCode::from(127);
    };
    if dynamically_linked(&path) == Some(false) {
        eprintln!(
            "sluice-run: {} is statically linked; LD_PRELOAD cannot reach it (build it dynamically linked)",
            path.display()
        );
        return ExitCode::from(2);
    }
    let mut ld = preload.display().to_string();
    if let Some(old) = std::env::var_os("LD_PRELOAD") {
        ld = format!("{ld}:{}", old.to_string_lossy());
    }
    let mut cmd = Command::new(program);
    cmd.args(&cli.command[1..])
        .env("LD_PRELOAD", ld)
        .env("SLUICE_RUN_PID", std::process::id().to_string())
        .env("SLUICE_RUN_FLAGS", &flags);
    if cli.quiet {
        cmd.env("SLUICE_RUN_QUIET", "1");
    }
    if cli.kernel_inet6 {
        cmd.env("SLUICE_RUN_KERNEL_INET6", "1");
    }
    // exec keeps this process's ID, which the library checks.
    let e = cmd.exec();
    eprintln!("sluice-run: cannot run {program}: {e}");
    ExitCode::from(126)
}
