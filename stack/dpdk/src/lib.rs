//! A safe layer over DPDK for Sluice: EAL initialisation (once per process, owned),
//! per-queue mbuf pools, an owned `Mbuf`, port setup with RSS, rx/tx bursts on a queue
//! (`PortQueue` implements `sluice_dev::Device`), port statistics and a TSC clock.
//!
//! Every `unsafe` block carries a `// SAFETY:` line; nothing unsafe leaks out of this crate.

mod eal;
mod error;
mod mbuf;
mod mempool;
mod port;
pub mod telemetry;

pub use eal::{
    allowed_cpus, block_device_signals, merge_eal, names_lcores, pdump_init, pin_current_thread,
    set_current_thread_cpus, Eal, EalBuilder, EalRef, Lcore, ThreadRegistration, TscClock,
};
pub use error::DpdkError;
pub use mbuf::{frame_mbuf, Mbuf};
pub use mempool::{Mempool, LARGE_DATA_ROOM};
pub use port::{Port, PortConfig, PortInfo, PortQueue, PortStats, SYMMETRIC_RSS_KEY};

pub type Result<T> = std::result::Result<T, DpdkError>;
