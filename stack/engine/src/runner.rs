//! The engine over DPDK: EAL, one port with a queue pair per core, one thread per core
//! running `Core` rounds, steering where the port has no RSS, per-core stats readable
//! while running, and commands from other threads through crossbeam channels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use sluice_dev::{Device, DeviceCaps, Impaired};
use sluice_dpdk::{DpdkError, EalBuilder, Mbuf, Port, PortConfig, PortQueue};
use sluice_net::{Interface, IsnKey, IsnKeyError};
use sluice_wire::{EthernetAddress, Instant};

use crate::api::Cx;
use crate::config::{Config, ConfigError, PortSpec};
use crate::core::{App, Core};
pub use crate::handle::{Command, CoreStats, EngineHandle};
use crate::idle::Idle;
use crate::steer::{Mailboxes, SteeredDevice};
use crate::toeplitz::RssSteering;
use crate::toeplitz::SYMMETRIC_KEY;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid (checked before EAL starts), or asks for more cores
    /// than the process has CPUs.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// EAL, the port or its queues could not be set up (no hugepages, no such port, more
    /// queues than the port has, a driver error).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// A network interface of the tap's name exists already in this namespace: another
    /// process (a Sluice instance) has it, and net_tap would share it.
    #[error("a network interface named {name:?} exists already in this network namespace{}; stop that process, or give this one another name: --port tap:OTHER", match holder { Some(p) => format!(" (process {p} holds it: another Sluice on tap:{name}?)"), None => String::new() })]
    TapInUse {
        /// The interface name.
        name: String,
        /// The process that has it open (a tun/tap descriptor attached to it), if found.
        holder: Option<u32>,
    },
    /// The `--pcap` file could not be created.
    #[error("cannot create the capture file {path}: {err}")]
    Pcap {
        /// The file.
        path: String,
        /// Why.
        err: std::io::Error,
    },
    /// The OS gave no random key for initial sequence numbers and SYN cookies.
    #[error("cannot make an ISN key: {0}")]
    IsnKey(#[from] IsnKeyError),
    /// EAL has fewer lcores than `cores` (the EAL arguments named too few).
    #[error("--cores {cores} needs {cores} EAL lcores, but EAL has {have} ({list}); give it more with --eal=-l --eal=LIST, or use --cores {have}")]
    TooFewLcores {
        /// The cores asked for.
        cores: u16,
        /// The lcores EAL has.
        have: usize,
        /// Those lcores and their CPUs.
        list: String,
    },
    /// A core's thread could not be pinned to its lcore's CPU.
    #[error("cannot pin engine core {core} to CPU {cpu}: {err}")]
    Pin {
        /// The engine core.
        core: u16,
        /// The CPU of its lcore.
        cpu: u32,
        /// The OS error.
        err: std::io::Error,
    },
    /// A core's thread could not be started.
    #[error("cannot start the thread of engine core {core}: {err}")]
    Spawn {
        /// The engine core.
        core: u16,
        /// The OS error.
        err: std::io::Error,
    },
    /// The application's `start` failed on a core (the first to fail); the engine stopped.
    #[error("core {core}: {error}")]
    App {
        /// The core it failed on.
        core: u16,
        /// The application's error.
        error: crate::core::AppError,
    },
    /// A core's thread panicked (the message went to stderr); returned once every core
    /// has ended.
    #[error("a core thread panicked")]
    CorePanicked,
}

/// A port queue, with impairments when the configuration asks for them (tests).
pub enum QueueDevice {
    /// The queue as it is.
    Plain(PortQueue),
    /// The queue behind the impairments of `impair_rx` and `impair_tx`.
    Impaired(Impaired<PortQueue>),
}

impl Device for QueueDevice {
    type Buf = Mbuf;
    fn caps(&self) -> DeviceCaps {
        match self {
            QueueDevice::Plain(d) => d.caps(),
            QueueDevice::Impaired(d) => d.caps(),
        }
    }
    fn mac(&self) -> [u8; 6] {
        match self {
            QueueDevice::Plain(d) => d.mac(),
            QueueDevice::Impaired(d) => d.mac(),
        }
    }
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<Mbuf>, max: usize) -> usize {
        match self {
            QueueDevice::Plain(d) => d.rx_burst(now, out, max),
            QueueDevice::Impaired(d) => d.rx_burst(now, out, max),
        }
    }
    fn alloc(&mut self) -> Option<Mbuf> {
        match self {
            QueueDevice::Plain(d) => d.alloc(),
            QueueDevice::Impaired(d) => d.alloc(),
        }
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<Mbuf>) -> usize {
        match self {
            QueueDevice::Plain(d) => d.tx_burst(now, bufs),
            QueueDevice::Impaired(d) => d.tx_burst(now, bufs),
        }
    }
    fn poll_at(&self) -> Option<Instant> {
        match self {
            QueueDevice::Plain(d) => d.poll_at(),
            QueueDevice::Impaired(d) => d.poll_at(),
        }
    }
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`; see
/// `Config::heap_huge_pages`): from now on its anonymous memory is faulted in 4 KiB at a
/// time. DPDK's hugepages (hugetlbfs) are not transparent ones and stay as they are.
pub fn disable_heap_huge_pages() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only; it changes a flag of this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The engine: `run` blocks until stopped.
pub struct Engine;

impl Engine {
    /// Starts EAL and the port, runs `make_app(core)` on every core until stopped (by
    /// `EngineHandle::stop`, a core's `Cx::request_stop`, or `stop_flag`), and returns the
    /// final counters. `on_start` gets the handle once the cores are launched, on its own
    /// thread (the caller's), and may block (e.g. print progress until stopped).
    pub fn run<A, F>(
        program: &str,
        config: &Config,
        make_app: F,
        on_start: impl FnOnce(EngineHandle),
    ) -> Result<Vec<CoreStats>, EngineError>
    where
        A: App,
        F: Fn(u16) -> A + Sync,
    {
        config.validate()?;
        let cores = config.cores;
        let spec = config.port_spec()?;
        let caller_cpus = sluice_dpdk::allowed_cpus();
        // net_tap would attach to an existing interface of that name and share its
        // traffic with whoever has it: refuse instead.
        if let PortSpec::Tap(name) = &spec {
            if std::path::Path::new("/sys/class/net").join(name).exists() {
                return Err(EngineError::TapInUse {
                    name: name.clone(),
                    holder: tap_holder(name),
                });
            }
        }
        if !config.heap_huge_pages {
            if let Err(err) = disable_heap_huge_pages() {
                tracing::warn!(%err, "cannot turn transparent huge pages off for the heap");
            }
        }
        let eal = EalBuilder::new(program).args(config.eal_args()?).init()?;
        // EAL pinned this thread to the main lcore's CPU, where engine core 0 polls. It is
        // not an engine core (it supervises, prints, takes signals): give it back the
        // CPUs it had, so that it never waits behind a busy-polling core.
        let _ = sluice_dpdk::set_current_thread_cpus(&caller_cpus);
        // Per-packet PMD signals go to EAL's threads, not to this one nor the cores.
        let _ = sluice_dpdk::block_device_signals();
        // One engine core per EAL lcore, each pinned to its lcore's CPU.
        let lcores = eal.lcores();
        if lcores.len() < usize::from(cores) {
            let list: Vec<String> = lcores
                .iter()
                .map(|l| match l.cpu {
                    Some(c) => format!("lcore {} on CPU {c}", l.id),
                    None => format!("lcore {}", l.id),
                })
                .collect();
            return Err(EngineError::TooFewLcores {
                cores,
                have: lcores.len(),
                list: list.join(", "),
            });
        }
        let eal_token = eal.token();
        let id = Port::id_by_name(&eal, spec.device_name())?;
        let pcfg = PortConfig {
            queues: cores,
            mbufs_per_queue: config.mbufs,
            rss: true,
            checksum_offload: config.checksum_offload,
            ..Default::default()
        };
        let port = Port::configure(&eal, id, &pcfg)?;
        tracing::info!(
            program,
            port = %config.port,
            driver = %port.port_info().driver,
            cores,
            ip = %config.ip,
            checksum_offload = ?port.checksum_offload(),
            tso = port.tso(),
            rss = port.rss_key().is_some(),
            "engine port up"
        );
        let mac = EthernetAddress(port.mac());
        let clock = eal.clock();
        let isn_key = IsnKey::from_os()?;
        let mut iface_cfg = config.interface_config(isn_key)?;
        // With hardware RSS the flow table looks segments up by the NIC's hash.
        iface_cfg.rss_key = port.rss_key().map(<[u8]>::to_vec);
        // Each core has its own memory budget (made by its interface), all of them charged
        // to one total.
        let total = match config.mem_budget_total_mb {
            0 => crate::config::physical_memory() / 2,
            mb => usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        };
        iface_cfg.mem_budget_total = Some(sluice_tcp::MemBudget::new(total, None));
        let idle = config.idle_strategy()?;
        let impair = config.impairments()?;
        // dpdk-dumpcap and dpdk-pdump can attach (where secondary processes can: with
        // hugepage files); --pcap writes the frames itself where they cannot.
        if !sluice_dpdk::pdump_init(&eal) {
            tracing::debug!("rte_pdump_init failed: dpdk-dumpcap cannot attach to this process");
        }
        // One capture file per core, created here so that a bad path is an error at once.
        let mut captures: Vec<Option<crate::pcap::PcapWriter>> = Vec::new();
        for c in 0..cores {
            captures.push(match &config.pcap {
                Some(p) => {
                    let path = crate::pcap::core_path(std::path::Path::new(p), c);
                    Some(
                        crate::pcap::PcapWriter::create(&path, config.pcap_max_mb.saturating_mul(1 << 20))
                            .map_err(|err| EngineError::Pcap {
                                path: path.display().to_string(),
                                err,
                            })?,
                    )
                }
                None => None,
            });
        }
        let seed = config.impair_seed;

        // Hardware RSS: the port's own key and table decide; otherwise software steering
        // with the symmetric key over the cores.
        let (steering, software) = match (port.rss_key(), port.reta()) {
            (Some(k), Some(t)) if cores > 1 => (RssSteering::new(k, t.to_vec()), false),
            _ => (RssSteering::round_robin(&SYMMETRIC_KEY, 128, cores), cores > 1),
        };
        let mail = Mailboxes::new(cores, 4096);
        let stop = Arc::new(AtomicBool::new(false));
        let board: Arc<Vec<Mutex<CoreStats>>> =
            Arc::new((0..cores).map(|_| Mutex::new(CoreStats::default())).collect());
        let (txs, rxs): (Vec<Sender<Command>>, Vec<Receiver<Command>>) =
            (0..cores).map(|_| crossbeam_channel::bounded(256)).unzip();
        let handle = EngineHandle {
            stop: stop.clone(),
            stats: board.clone(),
            commands: txs,
            ready: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            mac,
            driver: port.port_info().driver.clone(),
            checksum_offload: port.checksum_offload(),
            ip_checksum_offload: port.ip_checksum_offload(),
        };

        // Sluice's own telemetry commands (counters, connections, configuration).
        if let Err(e) = crate::telemetry::register_commands(&handle, config) {
            eprintln!("{program}: telemetry: {e}");
        }
        let mut startup: Result<(), EngineError> = Ok(());
        // The first application start that failed, with its core.
        let app_failure: Mutex<Option<(u16, crate::core::AppError)>> = Mutex::new(None);
        let app_failure = &app_failure;
        let result = std::thread::scope(|s| {
            let mut threads = Vec::new();
            let mut pins = Vec::new();
            for (c, cmds) in (0..cores).zip(rxs) {
                let (port, make_app, steering, mail) = (&port, &make_app, steering.clone(), mail.clone());
                let (stop, board, iface_cfg, ready) = (
                    stop.clone(),
                    board.clone(),
                    iface_cfg.clone(),
                    handle.ready.clone(),
                );
                let impair = impair.clone();
                let capture = captures[usize::from(c)].take();
                let cpu = lcores[usize::from(c)].cpu;
                let (pin_tx, pin_rx) = std::sync::mpsc::sync_channel(1);
                pins.push(pin_rx);
                let spawned = std::thread::Builder::new()
                    .name(format!("sluice-core-{c}"))
                    .spawn_scoped(s, move || {
                        // The core's own CPU, and an lcore id (the mempools' per-lcore caches).
                        if let Some(cpu) = cpu {
                            if let Err(err) = sluice_dpdk::pin_current_thread(cpu) {
                                let _ = pin_tx.send(Err(EngineError::Pin { core: c, cpu, err }));
                                return;
                            }
                        }
                        let _registration = sluice_dpdk::ThreadRegistration::new(&eal_token);
                        let _ = pin_tx.send(Ok(()));
                        let queue = match &impair {
                            Some((rx, tx)) => QueueDevice::Impaired(Impaired::new(
                                port.queue(c),
                                rx.clone(),
                                tx.clone(),
                                seed + c as u64,
                            )),
                            None => QueueDevice::Plain(port.queue(c)),
                        };
                        let mut dev = SteeredDevice::new(queue, c, cores, steering.clone(), mail);
                        dev.set_enabled(software);
                        let mut iface = Interface::new(iface_cfg, mac);
                        // Zero-copy send: the application fills mbufs of this queue's pool.
                        let pool = port.queue(c).pool();
                        iface.set_frame_alloc(Box::new(move || pool.alloc_frame()));
                        if let Some(w) = capture {
                            iface.set_capture(Some(Box::new(w)));
                        }
                        let mut core =
                            Core::new(iface, dev, make_app(c), c, cores, steering, Idle::new(idle));
                        ready.fetch_add(1, Ordering::SeqCst);
                        run_core(&mut core, &clock, &stop, &cmds, &board[c as usize]);
                        if let Some(error) = core.start_error.take() {
                            if let Ok(mut f) = app_failure.lock() {
                                f.get_or_insert((c, error));
                            }
                        }
                        drop(core);
                        if let Ok(mut s) = board[c as usize].lock() {
                            s.mbufs_in_use = pool.in_use();
                        }
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(err) => {
                        startup = Err(EngineError::Spawn { core: c, err });
                        break;
                    }
                }
            }
            for p in pins {
                if let Ok(Err(e)) = p.recv() {
                    startup = Err(e);
                }
            }
            if startup.is_err() {
                stop.store(true, Ordering::SeqCst);
            } else {
                on_start(handle.clone());
            }
            let mut ok = true;
            for t in threads {
                ok &= t.join().is_ok();
            }
            ok
        });
        let stats = handle.stats();
        // The device's own counters: what it missed for want of room in its ring or of
        // buffers shows only here.
        let ps = port.stats();
        tracing::info!(
            rx = ps.ipackets,
            tx = ps.opackets,
            rx_missed = ps.imissed,
            rx_no_mbuf = ps.rx_nombuf,
            rx_errors = ps.ierrors,
            tx_errors = ps.oerrors,
            "port counters"
        );
        drop(port);
        startup?;
        if let Some((core, error)) = app_failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            drop(eal);
            return Err(EngineError::App { core, error });
        }
        if !result {
            return Err(EngineError::CorePanicked);
        }
        // The EAL is cleaned up when `eal` drops here, after the port.
        drop(eal);
        Ok(stats)
    }
}

fn publish<A: App>(core: &Core<SteeredDevice<QueueDevice>, A>, slot: &Mutex<CoreStats>) {
    let snap = CoreStats {
        net: *core.iface.borrow().stats(),
        steer: core.dev.stats,
        loops: core.stats,
        connections: core.iface.borrow().tcp_connections(),
        states: core.iface.borrow().tcp_state_counts(),
        impair_rx: Default::default(),
        impair_tx: Default::default(),
        mbufs_in_use: 0,
        mem_used: core.iface.borrow().mem_budget().used() as u64,
        mem_peak: core.iface.borrow().mem_budget().peak() as u64,
        mem_refusals: core.iface.borrow().mem_budget().refusals(),
    };
    let mut snap = snap;
    if let QueueDevice::Impaired(d) = core.dev.inner() {
        (snap.impair_rx, snap.impair_tx) = d.stats();
    }
    if let Ok(mut s) = slot.lock() {
        *s = snap;
    }
}

fn run_core<A: App>(
    core: &mut Core<SteeredDevice<QueueDevice>, A>,
    clock: &sluice_dpdk::TscClock,
    stop: &AtomicBool,
    cmds: &Receiver<Command>,
    slot: &Mutex<CoreStats>,
) {
    let mut next_publish = clock.now();
    while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        let mut did = core.round(now, stop);
        while let Ok(cmd) = cmds.try_recv() {
            let Core {
                iface,
                core: c,
                cores,
                steering,
                ..
            } = core;
            cmd(&Cx::new(iface, now, *c, *cores, steering, stop));
            did = true;
        }
        if did {
            core.mark_busy();
            core.idle.reset();
        } else {
            core.idle_wait(now);
        }
        if now >= next_publish {
            publish(core, slot);
            next_publish = now + Duration::from_millis(100);
        }
    }
    // Close down: the application's finish, then a little time for FINs and ACKs.
    let now = clock.now();
    core.finish(now, stop);
    let end = now + Duration::from_millis(200);
    while clock.now() < end {
        let now = clock.now();
        if !core.iface.borrow_mut().poll(now, &mut core.dev) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    publish(core, slot);
}

/// The process with a tun/tap descriptor attached to interface `name` (its
/// `/proc/PID/fdinfo` says `iff: NAME`), if any can be seen.
fn tap_holder(name: &str) -> Option<u32> {
    let want = format!("iff:\t{name}");
    for p in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_to_string(fd.path()).is_ok_and(|t| t.lines().any(|l| l == want)) {
                return Some(pid);
            }
        }
    }
    None
}
