//! Counters of an `Interface`: traffic, drops by reason, ARP, ICMP, UDP and TCP.
//!
//! Plain integers in a plain struct, updated on the owning core and read by the
//! application with `Interface::stats`. Every frame that is not delivered or answered is
//! counted under exactly one `DropReason`.

use core::fmt;

/// Why a received frame was dropped, or a frame to send was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    BadEthernet,
    /// An EtherType other than IPv4, IPv6 and ARP (LLDP, VLAN tags...).
    UnknownEthertype,
    /// A truncated or malformed ARP packet.
    BadArp,
    /// ARP for another hardware or protocol type, or an operation other than request/reply.
    ArpUnsupported,
    /// A truncated or malformed IPv4 header (wrong version, bad lengths).
    BadIpv4,
    /// An IPv4, ICMP, UDP or TCP checksum did not verify.
    Checksum,
    /// An IPv4 fragment that cannot be reassembled: malformed (a non-final fragment not a
    /// multiple of 8 bytes, past 65535 bytes, ends that disagree), to a broadcast, or a
    /// datagram larger than one of the device's buffers.
    Fragment,
    /// Addressed to another MAC or another IPv4 address, or from an invalid source.
    NotForUs,
    /// An IPv4 protocol other than ICMP, UDP and TCP.
    UnknownProtocol,
    /// A truncated or malformed ICMP message.
    BadIcmp,
    /// An ICMP type Sluice does not handle (redirect, time exceeded...), or an ICMP error
    /// about a datagram no socket owns.
    IcmpIgnored,
    /// A truncated or malformed UDP datagram.
    BadUdp,
    /// A truncated or malformed TCP segment.
    BadTcp,
    /// No socket for the destination port (a UDP port unreachable or a TCP RST may answer).
    NoSocket,
    /// The UDP socket's receive queue was full.
    UdpQueueFull,
    /// A TCP segment the connection or listener did not accept (its backlog was full, or
    /// the TCB rejected it).
    TcpRejected,
    /// A packet waiting for ARP found the neighbour's pending queue (or the total) full.
    ArpQueueFull,
    /// A packet waited for ARP resolution that never came.
    ArpUnresolved,
    /// No route: the destination is off-link and no gateway is configured.
    NoRoute,
    /// The device's buffer pool was empty.
    NoBuffer,
    /// The device's transmit queue kept refusing the frame.
    TxQueueFull,
    /// A packet to send was larger than the MTU.
    TooBig,
    /// From a source no host can have: 0/8, 127/8, multicast, class E, broadcast, the
    /// subnet's network or broadcast address, or our own address (RFC 1122 3.2.1.3).
    MartianSource,
    /// A SYN with FIN set, to a listener (dropped, as Linux does).
    SynFin,
    /// A SYN refused by a connection cap (the listener's or the interface's).
    ConnLimit,
    /// A SYN refused because the memory budget is exhausted (`InterfaceConfig::mem_budget`).
    MemBudget,
    /// A malformed IPv6 packet or extension header chain.
    BadIpv6,
    /// IPv6 carrying an upper layer Sluice does not speak (not TCP, UDP or ICMPv6).
    Ipv6Unsupported,
    /// A fragment overlapping one held: its whole datagram is discarded (RFC 5722).
    FragmentOverlap,
    /// No room to reassemble (64 datagrams or 1 MiB held per interface).
    ReassemblyFull,
    /// A fragment of a datagram that did not arrive whole within 30 s.
    ReassemblyTimeout,
}

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = 31;

    /// Every reason, in `index` order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::BadEthernet,
        DropReason::UnknownEthertype,
        DropReason::BadArp,
        DropReason::ArpUnsupported,
        DropReason::BadIpv4,
        DropReason::Checksum,
        DropReason::Fragment,
        DropReason::NotForUs,
        DropReason::UnknownProtocol,
        DropReason::BadIcmp,
        DropReason::IcmpIgnored,
        DropReason::BadUdp,
        DropReason::BadTcp,
        DropReason::NoSocket,
        DropReason::UdpQueueFull,
        DropReason::TcpRejected,
        DropReason::ArpQueueFull,
        DropReason::ArpUnresolved,
        DropReason::NoRoute,
        DropReason::NoBuffer,
        DropReason::TxQueueFull,
        DropReason::TooBig,
        DropReason::MartianSource,
        DropReason::SynFin,
        DropReason::ConnLimit,
        DropReason::MemBudget,
        DropReason::BadIpv6,
        DropReason::Ipv6Unsupported,
        DropReason::FragmentOverlap,
        DropReason::ReassemblyFull,
        DropReason::ReassemblyTimeout,
    ];

    /// The position of this reason in `ALL`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short, stable, lowercase name, for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::BadEthernet => "bad_ethernet",
            DropReason::UnknownEthertype => "unknown_ethertype",
            DropReason::BadArp => "bad_arp",
            DropReason::ArpUnsupported => "arp_unsupported",
            DropReason::BadIpv4 => "bad_ipv4",
            DropReason::Checksum => "checksum",
            DropReason::Fragment => "fragment",
            DropReason::NotForUs => "not_for_us",
            DropReason::UnknownProtocol => "unknown_protocol",
            DropReason::BadIcmp => "bad_icmp",
            DropReason::IcmpIgnored => "icmp_ignored",
            DropReason::BadUdp => "bad_udp",
            DropReason::BadTcp => "bad_tcp",
            DropReason::NoSocket => "no_socket",
            DropReason::UdpQueueFull => "udp_queue_full",
            DropReason::TcpRejected => "tcp_rejected",
            DropReason::ArpQueueFull => "arp_queue_full",
            DropReason::ArpUnresolved => "arp_unresolved",
            DropReason::NoRoute => "no_route",
            DropReason::NoBuffer => "no_buffer",
            DropReason::TxQueueFull => "tx_queue_full",
            DropReason::TooBig => "too_big",
            DropReason::MartianSource => "martian_source",
            DropReason::SynFin => "syn_fin",
            DropReason::ConnLimit => "conn_limit",
            DropReason::MemBudget => "mem_budget",
            DropReason::BadIpv6 => "bad_ipv6",
            DropReason::Ipv6Unsupported => "ipv6_unsupported",
            DropReason::FragmentOverlap => "fragment_overlap",
            DropReason::ReassemblyFull => "reassembly_full",
            DropReason::ReassemblyTimeout => "reassembly_timeout",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drops by reason: a fixed array indexed by `DropReason::index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    by: [u64; DropReason::COUNT],
    /// Their sum, kept as they are added (each poll asks for it).
    sum: u64,
}

impl Drops {
    pub fn get(&self, reason: DropReason) -> u64 {
        self.by[reason.index()]
    }
    pub(crate) fn add(&mut self, reason: DropReason) {
        self.by[reason.index()] += 1;
        self.sum += 1;
    }
    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        self.sum
    }
    /// `(reason, count)` for every reason, zero counts included.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.by[r.index()]))
    }
}

impl core::ops::Index<DropReason> for Drops {
    type Output = u64;
    fn index(&self, r: DropReason) -> &u64 {
        &self.by[r.index()]
    }
}

/// ARP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpStats {
    pub requests_rx: u64,
    pub replies_rx: u64,
    pub requests_tx: u64,
    pub replies_tx: u64,
    /// Neighbours learned or refreshed.
    pub learned: u64,
    /// Entries removed because they aged out.
    pub expired: u64,
    /// Resolutions that gave up after the last retry.
    pub failed: u64,
    /// Packets sent after waiting for a reply.
    pub pending_sent: u64,
    /// ARP packets claiming our own address from another MAC.
    pub conflicts: u64,
}

/// ICMP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpStats {
    pub echo_requests_rx: u64,
    pub echo_replies_tx: u64,
    pub echo_replies_rx: u64,
    /// Destination unreachable messages received.
    pub unreachable_rx: u64,
    /// Time exceeded messages received.
    pub time_exceeded_rx: u64,
    /// Parameter problems received (passed to TCP as soft errors when they quote one of
    /// its segments).
    pub param_problem_rx: u64,
    /// ... of which were delivered to the UDP or TCP socket they concern.
    pub errors_delivered: u64,
    /// Destination unreachable (port/protocol) messages sent.
    pub unreachable_tx: u64,
    /// Errors not sent because of the rate limit.
    pub rate_limited: u64,
}

/// UDP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    pub datagrams_rx: u64,
    pub datagrams_tx: u64,
}

/// TCP counters of the demultiplexer (the per-connection ones live in each TCB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Large segments handed to the device whole, for it to cut (TSO).
    pub tso_frames_tx: u64,
    /// Large segments cut in software because a TSO frame could not be built.
    pub tso_fallbacks: u64,
    /// Connections removed from TIME-WAIT early because `max_time_wait` was reached.
    pub time_wait_recycled: u64,
    pub segments_rx: u64,
    pub segments_tx: u64,
    /// RSTs sent for segments that reached no connection (RFC 9293 3.10.7.1).
    pub rst_tx: u64,
    /// Connections accepted by a listener.
    pub accepted: u64,
    /// Connections opened with `tcp_connect`.
    pub connected: u64,
    /// SYN-ACKs sent with a SYN cookie because a listener's backlog was full.
    pub syn_cookies_tx: u64,
    /// Segments sent again (RTO, fast retransmit, SACK recovery, tail loss probes of
    /// sent data), summed over the connections.
    pub retransmits: u64,
    /// Payload bytes received that stayed in the device's buffers (zero-copy receive).
    pub rx_zero_copy_bytes: u64,
    /// Payload bytes sent by reference to the application's frames (zero-copy send).
    pub tx_zero_copy_bytes: u64,
    /// Payload bytes copied into device buffers to be sent.
    pub tx_copied_bytes: u64,
    /// Segments cut from large ones (software GSO), counted in `segments_tx` too.
    pub gso_segments_tx: u64,
    /// Received segments coalesced with the previous one of their burst (GRO): only their
    /// text was processed. Counted in `segments_rx` too.
    pub gro_coalesced: u64,
    /// Connections whose timers ran because their entry in the timer wheel came due.
    pub timer_wakeups: u64,
    /// Timer wheel entries that came due after their connection's deadline had moved later
    /// (a delayed ACK the answer carried) or gone: put back, or dropped, without touching
    /// the connection.
    pub timer_entries_stale: u64,
}

/// Everything an `Interface` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: Drops,
    pub arp: ArpStats,
    /// IPv6 neighbour discovery (its cache counts as ARP's does).
    pub nd: ArpStats,
    pub icmp: IcmpStats,
    pub udp: UdpStats,
    pub tcp: TcpStats,
    /// IPv4 and IPv6 datagrams reassembled from fragments.
    pub reassembled: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.as_str().is_empty());
        }
        let mut d = Drops::default();
        d.add(DropReason::Fragment);
        d.add(DropReason::Fragment);
        assert_eq!(d[DropReason::Fragment], 2);
        assert_eq!(d.total(), 2);
    }
}
