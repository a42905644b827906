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
//!
//! An ARP and ICMP echo responder is an interface polled in a loop:
//!
//! ```
//! use sluice_dev::{Device, Impairments, MemLink};
//! use sluice_net::{Interface, InterfaceConfig, IsnKey};
//! use sluice_wire::{EthernetAddress, Instant, Ipv4Address, Ipv4Cidr};
//!
//! let (mut dev, _peer, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 64);
//! let addr = Ipv4Cidr::new(Ipv4Address::new(198, 18, 0, 1), 24);
//! // Production: IsnKey::from_os().
//! let config = InterfaceConfig::new(addr, IsnKey::fixed([0; 16]));
//! let mut iface = Interface::new(config, EthernetAddress(dev.mac()));
//! let now = Instant::from_millis(1); // the driver's clock (TSC over DPDK)
//! while iface.poll(now, &mut dev) {}
//! // ... sleep or spin until iface.poll_at() / new frames ...
//! assert_eq!(iface.stats().rx_packets, 0);
//! ```
#![forbid(unsafe_code)]

pub use sluice_tcp::{ConnError, Keepalive, State as TcpState, TcpConfig};

mod arp;
mod buckets;
mod config;
mod egress;
mod endpoint;
mod flow;
mod icmp;
mod iface;
mod ipv6;
mod ready;
mod reasm;
mod slab;
mod stats;
mod tcp;
pub mod toeplitz;
mod udp;
pub mod wheel;

pub use toeplitz::{Toeplitz, SYMMETRIC_KEY};
pub use wheel::TimerWheel;

pub use config::{checksum_caps_for, ArpConfig, IcmpConfig, InterfaceConfig, IsnKey, IsnKeyError};
pub use endpoint::Endpoint;
pub use flow::{FlowKey, FlowStats, FlowTable};
pub use icmp::IcmpError;
pub use iface::{CaptureSink, Interface};
pub use ready::{Ready, ReadyCursor, ReadySocket};
pub use stats::{ArpStats, DropReason, Drops, IcmpStats, Stats, TcpStats, UdpStats};
pub use tcp::{
    Families, ListenerHandle, TcpConnInfo, TcpConnectError, TcpHandle, TcpListenError, TcpRecvError,
    TcpSendError, TcpSocket, TcpStatus,
};
pub use udp::{BindError, UdpConnectError, UdpHandle, UdpRecvError, UdpSendError, UdpSocket, UdpStatus};

#[cfg(test)]
mod tests;
