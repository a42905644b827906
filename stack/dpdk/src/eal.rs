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
        // SAFETY: EAL was initialised by this value; nothing uses DPDK after it is dropped.
        unsafe { dpdk_sys::rte_eal_cleanup() };
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
