//! What other threads hold of a running engine: its handle (stop, counters, work for a
//! core) and the counters each core publishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use sluice_net::Stats;
use sluice_wire::EthernetAddress;

use crate::api::Cx;
use crate::core::LoopStats;
use crate::steer::SteerStats;

/// Work another thread hands to a core: run on the core, between two rounds.
pub type Command = Box<dyn FnOnce(&Cx) + Send>;

/// A snapshot of one core's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreStats {
    /// The interface's counters: packets, bytes, drops, ARP, ICMP, UDP, TCP.
    pub net: Stats,
    /// Software steering (zero with hardware RSS or one core).
    pub steer: SteerStats,
    /// The loop's rounds and sleeps.
    pub loops: LoopStats,
    /// Live TCP connections, including those not yet accepted and those closing.
    pub connections: usize,
    /// Connections by TCP state, indexed by `TcpState::index`.
    pub states: [usize; 11],
    /// What injected impairments did to received frames (tests only; zero without them).
    pub impair_rx: sluice_dev::LinkStats,
    /// The same for sent frames.
    pub impair_tx: sluice_dev::LinkStats,
    /// Mbufs of the core's pool not in the pool: while running, those in the NIC's rings,
    /// in flight, and held by connections; after the engine stopped (and the core's
    /// connections were dropped), only those the NIC's rings still hold. More than the
    /// rings' size then is a leak.
    pub mbufs_in_use: u32,
    /// Bytes of connection buffers charged to the core's memory budget now.
    pub mem_used: u64,
    /// The most bytes charged to it at once.
    pub mem_peak: u64,
    /// Buffer growths the budget refused (`--mem-budget-mb`).
    pub mem_refusals: u64,
}

/// What a running engine offers other threads: stop, stats, commands.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<Vec<Mutex<CoreStats>>>,
    pub(crate) commands: Vec<Sender<Command>>,
    pub(crate) ready: Arc<std::sync::atomic::AtomicUsize>,
    /// The port's MAC address.
    pub mac: EthernetAddress,
    /// The port's DPDK driver, e.g. `net_tap`.
    pub driver: String,
    /// The NIC verifies (rx) and fills (tx) IPv4/TCP/UDP checksums.
    pub checksum_offload: (bool, bool),
    /// The NIC fills IPv4 header checksums.
    pub ip_checksum_offload: bool,
}

impl EngineHandle {
    /// Asks every core to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was requested (`stop`, the stop flag, or a core).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    /// The flag a signal handler can set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }
    /// The latest counters of every core (published every 100 ms and at the end).
    pub fn stats(&self) -> Vec<CoreStats> {
        self.stats
            .iter()
            .map(|m| *m.lock().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
    /// Runs `f` on core `core` between two of its rounds; false if the core is gone.
    pub fn run_on(&self, core: u16, f: impl FnOnce(&Cx) + Send + 'static) -> bool {
        self.commands
            .get(core as usize)
            .is_some_and(|s| s.send(Box::new(f)).is_ok())
    }
    /// How many cores the engine runs; `run_on` takes `0..cores()`.
    pub fn cores(&self) -> u16 {
        self.commands.len() as u16
    }
    /// Cores that have started their loop.
    pub fn cores_ready(&self) -> usize {
        self.ready.load(Ordering::SeqCst)
    }
}
