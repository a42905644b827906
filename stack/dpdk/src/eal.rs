use std::ffi::{c_char, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_wire::Instant;

use crate::error::{rte_errno, strerror};
use crate::{DpdkError, Result};

static EAL_ATTEMPTED: AtomicBool = AtomicBool::new(false);

/// Builds the EAL's argument list. `init` may succeed once per process.
#[derive(Clone, Debug)]
pub struct EalBuilder {
    args: Vec<String>,
}

impl EalBuilder {
    pub fn new(program: &str) -> Self {
        EalBuilder {
            args: vec![program.to_owned()],
        }
    }
    /// One raw EAL argument, e.g. `-l 0-1` as two calls or `--log-level=7`.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, it: I) -> Self {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }
    /// A virtual device, e.g. `net_tap0,iface=sl0`.
    pub fn vdev(self, spec: &str) -> Self {
        self.arg(format!("--vdev={spec}"))
    }
    /// The cores to run on, e.g. `0` or `0-1`.
    pub fn lcores(self, list: &str) -> Self {
        self.arg("-l").arg(list)
    }
    pub fn main_lcore(self, id: u32) -> Self {
        self.arg(format!("--main-lcore={id}"))
    }
    /// A name for this process's shared files, unique per process on the machine.
    pub fn file_prefix(self, prefix: &str) -> Self {
        self.arg(format!("--file-prefix={prefix}"))
    }
    /// No hugepages (single-process tests only; no vhost-user).
    pub fn no_huge(self) -> Self {
        self.arg("--no-huge")
    }
    /// Hugepage memory without files left behind (with `--single-file-segments` for virtio_user).
    pub fn in_memory(self) -> Self {
        self.arg("--in-memory")
    }
    pub fn no_pci(self) -> Self {
        self.arg("--no-pci")
    }
    pub fn args_list(&self) -> &[String] {
        &self.args
    }

    /// Initialises the EAL. Checks first that hugepages exist unless `--no-huge` is given,
    /// so that the error says how to fix it instead of EAL's "no mounted hugetlbfs".
    pub fn init(self) -> Result<Eal> {
        if EAL_ATTEMPTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        if !self.args.iter().any(|a| a == "--no-huge") {
            check_hugepages()?;
        }
        let cstrs = self
            .args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| DpdkError::BadArgument(a.clone())))
            .collect::<Result<Vec<_>>>()?;
        // EAL may permute argv; it keeps pointers into it, so the strings live as long as the process.
        let cstrs: &'static [CString] = Box::leak(cstrs.into_boxed_slice());
        let mut argv: Vec<*mut c_char> = cstrs.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut c_char] = Box::leak(argv.into_boxed_slice());
        // SAFETY: argv is a NULL-terminated array of NUL-terminated strings that outlive the process.
        let ret = unsafe { dpdk_sys::rte_eal_init(cstrs.len() as i32, argv.as_mut_ptr()) };
        if ret < 0 {
            let errno = rte_errno();
            return Err(DpdkError::EalInit {
                errno,
                msg: strerror(errno),
                args: self.args,
            });
        }
        Ok(Eal {
            _not_send: PhantomData,
        })
    }
}

fn check_hugepages() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
    {
        return Err(DpdkError::NoHugepages {
            detail: "no hugetlbfs is mounted".into(),
        });
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let free = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if free == 0 {
        return Err(DpdkError::NoHugepages {
            detail: "HugePages_Free is 0 in /proc/meminfo".into(),
        });
    }
    Ok(())
}

/// The initialised EAL. Dropping it runs `rte_eal_cleanup`; ports and pools must be gone first.
pub struct Eal {
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// The TSC frequency in Hz.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: a plain query after EAL init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }
    /// A clock reading the TSC, with its epoch now.
    pub fn clock(&self) -> TscClock {
        TscClock::new(self.tsc_hz())
    }
    /// The EAL's lcores (main first, then the workers, as `-l`/`--lcores` gave them), each
    /// with the CPU it runs on (`rte_lcore_to_cpu_id`).
    pub fn lcores(&self) -> Vec<Lcore> {
        let mut out = Vec::new();
        // SAFETY: plain queries after EAL init.
        let main = unsafe { dpdk_sys::rte_get_main_lcore() };
        let mut id = u32::MAX; // -1: start the walk
        loop {
            // SAFETY: as above; returns RTE_MAX_LCORE at the end.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 0, 0) };
            if id >= dpdk_sys::RTE_MAX_LCORE {
                break;
            }
            // SAFETY: id is an enabled lcore.
            let cpu = unsafe { dpdk_sys::rte_lcore_to_cpu_id(id as i32) };
            let l = Lcore {
                id,
                cpu: u32::try_from(cpu).ok(),
            };
            if id == main {
                out.insert(0, l);
            } else {
                out.push(l);
            }
        }
        out
    }
    /// DPDK's version string.
    pub fn version(&self) -> String {
        // SAFETY: rte_version returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // The runtime directory (/var/run/dpdk/PREFIX: memory maps, the multi-process
        // socket; megabytes with --no-huge) stays after a clean exit. Ours, named after
        // this process (`sluice-PID`, the default prefix), is removed after the cleanup.
        // SAFETY: a plain query after EAL init; the string is EAL's own, NUL-terminated.
        let dir = unsafe {
            let p = dpdk_sys::rte_eal_get_runtime_dir();
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        // SAFETY: EAL was initialised by this value; nothing uses DPDK after it is dropped.
        unsafe { dpdk_sys::rte_eal_cleanup() };
        if let Some(dir) = dir {
            let ours = format!("sluice-{}", std::process::id());
            if std::path::Path::new(&dir)
                .file_name()
                .is_some_and(|n| n == ours.as_str())
            {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

/// One EAL lcore and the CPU it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lcore {
    pub id: u32,
    /// `None` when the lcore is not bound to one CPU (an `--lcores` group).
    pub cpu: Option<u32>,
}

/// The CPUs this process (its calling thread) may run on, in increasing order.
pub fn allowed_cpus() -> Vec<u32> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size is the set's.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .map(|i| i as u32)
        .collect()
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: u32) -> std::io::Result<()> {
    set_current_thread_cpus(&[cpu])
}

/// Lets the calling thread run on `cpus` (e.g. back on every CPU the process had, after
/// EAL pinned the main thread to the main lcore's).
pub fn set_current_thread_cpus(cpus: &[u32]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu as usize >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: cpu is below the set's size.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Blocks, in the calling thread and the threads it starts afterwards, the signals some
/// PMDs raise for every received frame: net_tap asks the kernel for a signal (SIGIO, or a
/// real-time one) per packet on its queues, delivered to any thread that does not block
/// it. A thread that sleeps (the engine's supervising thread) had every sleep cut short,
/// tens of thousands of times a second, and a 20 ms sleep was seen to last a minute. EAL's
/// own threads, started before, keep them unblocked and take them (the PMD only counts
/// them).
pub fn block_device_signals() -> std::io::Result<()> {
    // SAFETY: a zeroed sigset_t is filled by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGIO);
        for s in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            libc::sigaddset(&mut set, s);
        }
    }
    // SAFETY: set is initialised; the old mask is not wanted.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(r))
    }
}

/// Registers the calling (non-EAL) thread with EAL, so that it gets an lcore id of its
/// own and the mempools' per-lcore caches; unregisters on drop.
pub struct ThreadRegistration {
    registered: bool,
}

impl ThreadRegistration {
    pub fn new(_eal: &EalRef) -> Self {
        // SAFETY: EAL is initialised (an EalRef exists); the call affects this thread only.
        let registered = unsafe { dpdk_sys::rte_thread_register() } == 0;
        ThreadRegistration { registered }
    }
    /// Whether EAL gave this thread an lcore id (it may have none left).
    pub fn registered(&self) -> bool {
        self.registered
    }
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: this thread registered itself above.
            unsafe { dpdk_sys::rte_thread_unregister() };
        }
    }
}

/// Proof that EAL is initialised, shareable with the threads of a scope.
#[derive(Clone, Copy, Debug)]
pub struct EalRef(());

impl Eal {
    /// A `Send + Sync` token that EAL is up, for the engine's core threads.
    pub fn token(&self) -> EalRef {
        EalRef(())
    }
}

/// Reads the TSC as an `Instant` (nanoseconds since the clock was made).
#[derive(Clone, Copy, Debug)]
pub struct TscClock {
    start: u64,
    /// Nanoseconds per cycle as a 32.32 fixed-point number.
    ns_per_cycle_q32: u128,
}

impl TscClock {
    pub fn new(hz: u64) -> Self {
        // SAFETY: rdtsc has no preconditions.
        let start = unsafe { dpdk_sys::sluice_rdtsc() };
        TscClock {
            start,
            ns_per_cycle_q32: ((1_000_000_000u128) << 32) / hz.max(1) as u128,
        }
    }
    pub fn now(&self) -> Instant {
        // SAFETY: rdtsc has no preconditions.
        let c = unsafe { dpdk_sys::sluice_rdtsc() }.wrapping_sub(self.start);
        Instant::from_nanos(((c as u128 * self.ns_per_cycle_q32) >> 32) as u64)
    }
}

/// Default EAL arguments with the given ones added: a default is left out
/// only where a given argument decides the same thing (the memory model: `--no-huge`,
/// `--in-memory`, `-m`, `--socket-mem`, `--huge-dir`, `--legacy-mem`,
/// `--single-file-segments`; the PCI scan: `--no-pci`, `-a`/`--allow`, `-b`/`--block`; the
/// `--file-prefix`), so `--eal=-l --eal=0-1` keeps the rest of the defaults.
///
/// `--no-sluice-defaults` among the given arguments drops every default: the given ones
/// are used alone.
pub fn merge_eal(defaults: &[String], given: &[String]) -> Vec<String> {
    if given.iter().any(|g| g == "--no-sluice-defaults") {
        return given
            .iter()
            .filter(|g| *g != "--no-sluice-defaults")
            .cloned()
            .collect();
    }
    let has = |keys: &[&str]| {
        given.iter().any(|g| {
            keys.iter()
                .any(|k| g == k || g.starts_with(&format!("{k}=")) || (k.len() == 2 && g.starts_with(k)))
        })
    };
    let memory = [
        "--no-huge",
        "--in-memory",
        "-m",
        "--socket-mem",
        "--huge-dir",
        "--legacy-mem",
        "--single-file-segments",
    ];
    let pci = ["--no-pci", "-a", "--allow", "-b", "--block"];
    let (drop_memory, drop_pci, drop_prefix) = (has(&memory), has(&pci), has(&["--file-prefix"]));
    let mut out = Vec::new();
    let mut i = 0;
    while i < defaults.len() {
        let d = &defaults[i];
        let takes_value = d == "-m";
        let drop = (drop_memory && memory.iter().any(|k| d == k))
            || (drop_pci && d == "--no-pci")
            || (drop_prefix && d.starts_with("--file-prefix"));
        if !drop {
            out.push(d.clone());
            if takes_value {
                if let Some(v) = defaults.get(i + 1) {
                    out.push(v.clone());
                }
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    out.extend(given.iter().cloned());
    out
}

/// Lets `dpdk-dumpcap`/`dpdk-pdump` (secondary processes) capture this process's ports
/// (`rte_pdump_init`); false when it cannot (no multi-process support, e.g. `--in-memory`).
pub fn pdump_init(_eal: &Eal) -> bool {
    // SAFETY: EAL is initialised (we hold `Eal`); the call only registers a handler.
    unsafe { dpdk_sys::rte_pdump_init() == 0 }
}

/// Whether EAL arguments choose the lcores themselves (`-l`, `-c`, `--lcores`).
pub fn names_lcores(args: &[String]) -> bool {
    args.iter().any(|x| {
        (x.starts_with("-l") || x.starts_with("-c")) && !x.starts_with("--") || x.starts_with("--lcores")
    })
}
