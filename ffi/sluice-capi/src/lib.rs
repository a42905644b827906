//! Sluice's C ABI: POSIX-like socket calls (`sluice_socket`, `sluice_connect`, ...,
//! `sluice_epoll_wait`) over a Sluice stack, and packetdrill's `--so_filename` interface
//! (`packetdrill_interface_init`), so that packetdrill scripts run against Sluice
//! deterministically, in virtual time, without DPDK.
//!
//! ```text
//! C program ── sluice_* ──┐                     ┌── netdev_send / netdev_receive
//! packetdrill ── ifc.* ───┴─ capi.rs ─ Shared ──┤   (IPv4 packets, device.rs)
//!                 (pointers checked here)  │    └── usleep / gettimeofday (virtual time)
//!                               socket.rs, poll.rs, sockopt.rs (safe Rust, errno)
//!                                          │
//!                               sluice-net Interface on PipeDevice
//! ```
//!
//! File descriptors are Sluice's own small integers (3, 4, ...), not kernel descriptors.
//! The instance behind the `sluice_*` calls is process-wide and mutex-guarded, created by
//! `sluice_init_memory` (in-memory device, virtual time) or `sluice_init_unix` (IP
//! packets over Unix datagram sockets, real time); packetdrill gets an instance of its
//! own through `userdata`. `sluice_init_dpdk` puts the instance on one DPDK port (one
//! queue, the TSC clock; `dpdk.rs`). Rust callers use `Instance` and `Shared` directly.
//!
//! The unsafe boundary is `capi.rs` and `packetdrill.rs` (C pointers), `errno.rs` (one
//! write to errno), `stack.rs` (`Send` for the interface) and `dpdk.rs` (`geteuid`); the
//! rest is safe Rust.

mod capi;
mod config;
mod device;
mod dpdk;
mod errno;
mod packetdrill;
mod poll;
mod socket;
mod sockopt;
mod stack;
mod stats;

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

pub use capi::global_shared;
pub use config::{FlagError, StackConfig};
pub use device::{InjectError, Outbound, PipeDevice, PEER_MAC, STACK_MAC};
pub use dpdk::{DpdkFlags, DpdkInitError};
pub use errno::{Errno, Res};
pub use packetdrill::{packetdrill_interface_init, sluice_packetdrill_init, PacketdrillInterface};
pub use poll::{readiness, ready_socket, PollFd};
pub use sluice_net::Endpoint;
pub use stack::{Clock, Found, Shared, Stack, FIRST_FD};

/// The `sluice_*` C functions, for Rust callers that link this crate (the preload
/// library of `sluice-run`).
pub mod abi {
    pub use crate::capi::*;
    pub use crate::stats::{sluice_conn_info, SluiceConnInfo};
}

/// Why an instance could not be created.
#[derive(Debug)]
pub enum InitError {
    Flags(FlagError),
    Io(std::io::Error),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Flags(e) => e.fmt(f),
            InitError::Io(e) => write!(f, "unix link: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

/// A stack instance.
#[derive(Clone)]
pub struct Instance(Arc<Shared>);

impl Instance {
    /// On the in-memory device, with virtual time starting at zero.
    pub fn memory(flags: &str) -> Result<Instance, InitError> {
        let cfg = StackConfig::parse(flags).map_err(InitError::Flags)?;
        let st = Stack::new(cfg, Clock::Virtual(sluice_wire::Instant::ZERO), None);
        Ok(Instance(Arc::new(Shared::new(st))))
    }

    /// With the real clock, exchanging IPv4 packets over Unix datagram sockets: binds
    /// `local_path` (removing a stale socket file) and sends to `peer_path`.
    pub fn unix(local_path: &str, peer_path: &str, flags: &str) -> Result<Instance, InitError> {
        let cfg = StackConfig::parse(flags).map_err(InitError::Flags)?;
        let _ = std::fs::remove_file(local_path);
        let sock = UnixDatagram::bind(local_path).map_err(InitError::Io)?;
        sock.connect(peer_path).map_err(InitError::Io)?;
        sock.set_nonblocking(true).map_err(InitError::Io)?;
        let st = Stack::new(cfg, Clock::Real(std::time::Instant::now()), Some(sock));
        let sh = Arc::new(Shared::new(st));
        sh.start_service().map_err(InitError::Io)?;
        Ok(Instance(sh))
    }

    /// On one DPDK port (queue 0) with the TSC clock: initialises EAL, once per process.
    /// Flags in `dpdk.rs` (`--port=tap:sl0 --ip=198.18.0.2/24 --eal=ARG ...`).
    pub fn dpdk(flags: &str) -> Result<Instance, DpdkInitError> {
        let before = stack::signal_handlers();
        let st = dpdk::stack(flags)?;
        let mut sh = Shared::new(st);
        // Signals DPDK took for itself while starting (net_tap's rx trigger, one per
        // packet): they must not interrupt a caller's wait.
        sh.set_stack_signals(stack::changed_signals(&before, &stack::signal_handlers()));
        let sh = Arc::new(sh);
        sh.start_service().map_err(|e| DpdkInitError {
            errno: Errno(libc::EAGAIN),
            msg: format!("cannot start the service thread: {e}"),
        })?;
        Ok(Instance(sh))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}
