//! Configuration of an `Interface`.

use core::time::Duration;

use sluice_dev::DeviceCaps;
use std::sync::Arc;

use sluice_tcp::{MemBudget, TcpConfig};
use sluice_wire::ipv6::{Ipv6Address, Ipv6Cidr};
use sluice_wire::{Checksum, ChecksumCaps, EthernetAddress, Ipv4Address, Ipv4Cidr};

/// ARP cache and resolution parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpConfig {
    /// Most neighbours kept; the oldest dynamic entry makes room for a new one.
    pub cache_size: usize,
    /// How long a learned entry is used before it must be confirmed again.
    pub entry_ttl: Duration,
    /// Before expiry, a used entry is re-confirmed with a unicast request this early, so
    /// traffic never stalls on a live neighbour.
    pub refresh_before: Duration,
    /// Time between requests for an unresolved neighbour.
    pub request_interval: Duration,
    /// Requests sent before giving up (and dropping what waits).
    pub max_requests: u8,
    /// Packets held per unresolved neighbour; more are dropped and counted.
    pub pending_per_neighbor: usize,
    /// Packets held for all unresolved neighbours together.
    pub pending_total: usize,
    /// Drop ARP packets whose sender hardware address differs from the Ethernet source.
    /// ARP has no checksum: this catches a corrupted address before it poisons the cache.
    /// Turn it off behind proxies that rewrite Ethernet sources.
    pub check_eth_source: bool,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            cache_size: 1024,
            entry_ttl: Duration::from_secs(60),
            refresh_before: Duration::from_secs(5),
            request_interval: Duration::from_secs(1),
            max_requests: 3,
            pending_per_neighbor: 16,
            pending_total: 256,
            check_eth_source: true,
        }
    }
}

/// ICMP behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpConfig {
    /// Answer echo requests.
    pub echo: bool,
    /// Errors (port unreachable) sent per second at most, on average (a token bucket).
    pub error_rate: u32,
    /// Errors that may be sent back to back.
    pub error_burst: u32,
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            echo: true,
            error_rate: 100,
            error_burst: 10,
        }
    }
}

/// Why the key for initial sequence numbers could not be read from the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsnKeyError {
    /// `/dev/urandom` could not be opened or read (the `io::ErrorKind`'s raw OS error, if
    /// any): mount `/dev` in the container, or pass a key with `IsnKey::fixed`.
    Unavailable(Option<i32>),
}

impl core::fmt::Display for IsnKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IsnKeyError::Unavailable(Some(e)) => {
                write!(f, "cannot read /dev/urandom (os error {e}); is /dev mounted?")
            }
            IsnKeyError::Unavailable(None) => write!(f, "cannot read /dev/urandom"),
        }
    }
}

impl std::error::Error for IsnKeyError {}

/// The secret key of the initial sequence number generator (RFC 6528) and of ephemeral
/// port selection. Tests use a fixed key; production reads one from the OS.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IsnKey(pub [u8; 16]);

impl IsnKey {
    /// A key given by the caller (tests, replayable simulations).
    pub const fn fixed(key: [u8; 16]) -> IsnKey {
        IsnKey(key)
    }

    /// A fresh random key from the OS (`/dev/urandom`).
    pub fn from_os() -> Result<IsnKey, IsnKeyError> {
        use std::io::Read;
        let mut key = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| IsnKeyError::Unavailable(e.raw_os_error()))?;
        Ok(IsnKey(key))
    }
}

impl core::fmt::Debug for IsnKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnKey(..)")
    }
}

/// The configuration of an `Interface`.
#[derive(Clone, Debug)]
pub struct InterfaceConfig {
    /// Our address and the on-link prefix.
    pub address: Ipv4Cidr,
    /// Where off-link destinations are sent; `None`: only the prefix is reachable.
    pub gateway: Option<Ipv4Address>,
    /// Neighbours that are never resolved, learned over, or expired.
    pub static_arp: Vec<(Ipv4Address, EthernetAddress)>,
    pub arp: ArpConfig,
    pub icmp: IcmpConfig,
    /// Checksum offload; `None` derives it from the device's caps at each poll
    /// (`checksum_caps_for`).
    pub checksum: Option<ChecksumCaps>,
    /// Largest IP packet we send; the device's MTU caps it further.
    pub mtu: usize,
    /// TTL of the packets we send.
    pub ttl: u8,
    /// Datagrams queued per UDP socket for the application; more are dropped and counted.
    pub udp_rx_queue: usize,
    /// Datagrams queued per UDP socket for sending.
    pub udp_tx_queue: usize,
    /// Key of the ISN generator and ephemeral port choice.
    pub isn_key: IsnKey,
    /// First and last ephemeral port (inclusive) for `tcp_connect` and `udp_bind(0)`.
    pub ephemeral_ports: (u16, u16),
    /// The configuration of new TCP connections (its MSS is capped by the MTU).
    pub tcp: TcpConfig,
    /// How long a connection the application closed may wait in FIN-WAIT-2 for the
    /// peer's FIN before it is reset (Linux's `tcp_fin_timeout`). Without it, a peer that
    /// vanished would hold the connection forever.
    pub fin_wait2_timeout: Duration,
    /// Zero-copy receive: the most device buffers all connections of the interface hold
    /// together (each connection also has `tcp.rx_frames_max`). Past it payloads are copied, so
    /// that slow readers cannot empty the device's receive pool. Keep it well below the
    /// pool's size; 0 turns zero-copy receive off. Frames the application took
    /// (`tcp_recv_frame`) no longer count: it must not hoard them.
    pub rx_frames_limit: usize,
    /// The most frames held, in order, for the device while its transmit ring is full.
    /// TCP holds its connections' output back once as many frames wait as the interface
    /// has connections (at least a burst, at most this): with thousands of connections
    /// each one's next segment waits here, built while its state was in the cache, not
    /// the connection itself, cold by the time the ring has room; one bulk connection
    /// keeps the short queue (and its short RTT). Held frames are device buffers: keep it
    /// well below the pool's size.
    pub tx_queue_limit: usize,
    /// The Toeplitz key the port's RSS hashes received frames with, when it does: the
    /// flow table then looks segments up by the NIC's hash (`PacketBuf::rss_hash`) instead
    /// of hashing their tuple again. `None`: a software hash.
    pub rss_key: Option<Vec<u8>>,
    /// The most TCP connections the interface (one core) holds, in any state; a SYN
    /// beyond it is dropped and counted (`DropReason::ConnLimit`). Each listener can have
    /// its own cap too (`Interface::tcp_listener_set_limit`).
    pub max_connections: usize,
    /// The most connections in TIME-WAIT (Linux's `tcp_max_tw_buckets`); past it the
    /// oldest one the application released is removed early (counted in
    /// `TcpStats::time_wait_recycled`), so churn cannot fill memory with TIME-WAIT state.
    pub max_time_wait: usize,
    /// The most bytes this interface's (one core's) connection buffers hold together
    /// (`sluice_tcp::budget`, as Linux's `tcp_mem`): at 3/4 of it emptied buffers give
    /// their memory back, past it buffers stop growing and new connections are refused
    /// (`DropReason::MemBudget`). `usize::MAX`: no limit of its own.
    pub mem_budget: usize,
    /// A budget shared with other interfaces (the process's total), charged too.
    pub mem_budget_total: Option<Arc<MemBudget>>,
    /// IPv6 addresses besides the link-local one made from the MAC (which is always
    /// there). They answer neighbour solicitations and echo requests (`crate::ipv6`).
    pub ipv6: Vec<Ipv6Cidr>,
    /// The IPv6 router for destinations outside `ipv6`'s prefixes and link-local.
    pub gateway6: Option<Ipv6Address>,
    /// Neighbours whose Ethernet address is configured (never solicited, never change).
    pub static_nd: Vec<(Ipv6Address, EthernetAddress)>,
    /// Duplicate address detection at the first poll when `ipv6` is not empty (RFC 4862,
    /// optimistic: the addresses are used meanwhile). Off for links without other nodes.
    pub dad: bool,
}

impl InterfaceConfig {
    /// Defaults for everything but the address and the ISN key.
    pub fn new(address: Ipv4Cidr, isn_key: IsnKey) -> InterfaceConfig {
        InterfaceConfig {
            address,
            gateway: None,
            static_arp: Vec::new(),
            arp: ArpConfig::default(),
            icmp: IcmpConfig::default(),
            checksum: None,
            mtu: 1500,
            ttl: sluice_wire::ipv4::DEFAULT_TTL,
            udp_rx_queue: 64,
            udp_tx_queue: 64,
            isn_key,
            ephemeral_ports: (49152, 65535),
            tcp: TcpConfig::default(),
            fin_wait2_timeout: Duration::from_secs(60),
            rx_frames_limit: 4096,
            tx_queue_limit: 4096,
            rss_key: None,
            max_connections: 1 << 20,
            max_time_wait: 1 << 18,
            mem_budget: usize::MAX,
            mem_budget_total: None,
            ipv6: Vec::new(),
            gateway6: None,
            static_nd: Vec::new(),
            dad: true,
        }
    }
}

/// The checksum work left to software for a device: what the NIC verifies on receive is
/// not verified again, what it fills on transmit is left to it. ICMP is always software.
pub fn checksum_caps_for(caps: &DeviceCaps) -> ChecksumCaps {
    let work = |rx_offload: bool, tx_offload: bool| match (rx_offload, tx_offload) {
        (false, false) => Checksum::Both,
        (true, false) => Checksum::Tx,
        (false, true) => Checksum::Rx,
        (true, true) => Checksum::None,
    };
    let l4 = work(caps.rx_checksum, caps.tx_checksum);
    ChecksumCaps {
        ipv4: work(caps.rx_checksum, caps.tx_ip_checksum),
        udp: l4,
        tcp: l4,
        icmp: Checksum::Both,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_from_device() {
        let mut d = DeviceCaps::default();
        assert_eq!(checksum_caps_for(&d).tcp, Checksum::Both);
        d.rx_checksum = true;
        assert_eq!(checksum_caps_for(&d).udp, Checksum::Tx);
        d.tx_checksum = true;
        // Virtio: TCP/UDP filled by the device, the IPv4 header in software.
        assert_eq!(checksum_caps_for(&d).tcp, Checksum::None);
        assert_eq!(checksum_caps_for(&d).ipv4, Checksum::Tx);
        d.tx_ip_checksum = true;
        assert_eq!(checksum_caps_for(&d).ipv4, Checksum::None);
        assert_eq!(checksum_caps_for(&d).icmp, Checksum::Both);
    }

    #[test]
    fn os_key_is_not_constant() {
        let a = IsnKey::from_os().unwrap();
        let b = IsnKey::from_os().unwrap();
        assert_ne!(a, b);
    }
}
