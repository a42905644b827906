use thiserror::Error;

/// What went wrong setting DPDK up, with `rte_errno` where DPDK gave one, and how to fix it.
#[derive(Debug, Error)]
pub enum DpdkError {
    #[error("EAL initialisation was already attempted in this process; DPDK allows it once")]
    AlreadyInitialized,
    #[error("no hugepages are available ({detail}); reserve them with `scripts/setup.sh`, or by hand: `echo 512 > /proc/sys/vm/nr_hugepages; mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages`; or pass --no-huge for a single-process test")]
    NoHugepages { detail: String },
    #[error("rte_eal_init failed: {msg} (rte_errno {errno}); check the EAL arguments {args:?}, that you are root, and that hugepages are reserved (`scripts/setup.sh`)")]
    EalInit {
        errno: i32,
        msg: String,
        args: Vec<String>,
    },
    #[error("an EAL argument contains a NUL byte: {0:?}")]
    BadArgument(String),
    #[error("telemetry refused the command {0:?} (a name is a slash, then letters, digits, '_' and '/'; telemetry must not be disabled by --no-telemetry)")]
    Telemetry(String),
    #[error("no DPDK port named {name:?}; {available} port(s) exist. Give the device to EAL, e.g. --vdev=net_tap0,iface=sl0 or --vdev=virtio_user0,path=/tmp/vhost.sock, or bind a PCI NIC with dpdk-devbind.py --bind=vfio-pci")]
    NoSuchPort { name: String, available: u16 },
    #[error("port {port} does not exist ({available} port(s) available); pass a --vdev or bind a NIC with dpdk-devbind.py")]
    InvalidPort { port: u16, available: u16 },
    #[error("port {port}: {what} failed: {msg} (errno {errno})")]
    Port {
        port: u16,
        what: &'static str,
        errno: i32,
        msg: String,
    },
    #[error("port {port} supports at most {max} {kind} queues, {asked} asked")]
    TooManyQueues {
        port: u16,
        kind: &'static str,
        max: u16,
        asked: u16,
    },
    #[error("creating mempool {name:?} of {n} mbufs failed: {msg} (rte_errno {errno}); reserve more hugepages (scripts/setup.sh) or lower the pool size")]
    Mempool {
        name: String,
        n: u32,
        errno: i32,
        msg: String,
    },
}

/// The text of a DPDK error number.
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's `rte_errno`.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local integer.
    unsafe { dpdk_sys::sluice_errno() }
}
