//! Workloads of Sluice's microbenchmarks, shared by the criterion benches (`benches/`) and
//! the callgrind driver (`src/bin/callgrind-driver.rs`), plus the report generator
//! (`src/bin/bench-report.rs`) that turns criterion's output into `docs/benchmarks.md`.
//!
//! - [`tcb`]: sans-I/O TCP on `sluice_tcp::Tcb` pairs: input of an in-order MSS segment
//!   on an established connection (with the ACK decision), output of an MSS segment.
//! - [`rr`]: request/response over many connections, both ends Sluice over a memory link
//!   (callgrind's instructions per exchange).
//! - [`frames`]: Ethernet/IPv4/TCP frames of a peer, built with `sluice-wire`, as both
//!   stacks receive them.
//! - [`sluice_iface`] and [`smol`]: the same in-order data segment through a whole
//!   interface (`Interface::poll`) of Sluice and of smoltcp, for the comparison.

pub mod frames;
pub mod rr;
pub mod sluice_iface;
pub mod smol;
pub mod tcb;

/// The address of the stack under test.
pub const LOCAL_IP: sluice_wire::Ipv4Address = sluice_wire::Ipv4Address::new(10, 0, 0, 1);
/// The address of the (simulated) peer.
pub const PEER_IP: sluice_wire::Ipv4Address = sluice_wire::Ipv4Address::new(10, 0, 0, 2);
pub const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
pub const LOCAL_PORT: u16 = 80;
pub const PEER_PORT: u16 = 49500;
/// The MSS of every workload: a 1500-byte MTU less 40 bytes of IPv4 and TCP headers.
pub const MSS: usize = 1460;
