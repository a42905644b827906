//! Sluice's IPv4 layer: an `Interface` with ARP, ICMP, and UDP and TCP sockets, polled over
//! any `sluice_dev::Device`.
//!
//! ```text
//! rx_burst -> Ethernet -> ARP  -> cache, reply, waiting packets sent
//!                      -> IPv4 -> ICMP echo reply / errors to sockets
//!                              -> UDP demux by port -> socket queue (or port unreachable)
//!                              -> TCP demux by 4-tuple -> TCB (or listener, or RST)
//! sockets, ARP timers -> headers prepended in headroom -> tx_burst
//! ```
//!
//! Time is passed in (`poll(now, dev)`), never read; `poll_at` says when to call again.
//! Every dropped frame is counted in `Stats` under one `DropReason`; no input panics.
#![forbid(unsafe_code)]

mod arp;
mod config;
mod icmp;
mod iface;
mod slab;
mod stats;
mod tcp;
mod udp;

pub use config::{checksum_caps_for, ArpConfig, IcmpConfig, InterfaceConfig, IsnKey, IsnKeyError};
pub use icmp::IcmpError;
pub use iface::Interface;
pub use stats::{ArpStats, DropReason, Drops, IcmpStats, Stats, TcpStats, UdpStats};
pub use udp::{BindError, Endpoint, UdpConnectError, UdpHandle, UdpRecvError, UdpSendError};

#[cfg(test)]
mod tests;
