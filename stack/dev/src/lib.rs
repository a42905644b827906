//! The `Device` trait of Sluice and its in-memory backend.
//!
//! Everything above this trait (ARP, IPv4, TCP, the engine) is the same code whether the
//! frames come from a DPDK port queue (`sluice-dpdk`) or from the in-memory pair of this
//! crate, which tests use with virtual time and seeded impairments.

mod impair;
mod mem;

pub use impair::{parse_duration, Impaired, Impairments, LinkStats};
pub use mem::{MemBuf, MemDevice, MemLink, MemPool};
pub use sluice_buf::{Frame, FrameMut};
pub use sluice_wire::Instant;

/// A frame buffer: contiguous bytes with headroom in front, so that lower layers prepend
/// their headers without copying the payload (an mbuf's shape).
pub trait PacketBuf {
    /// The frame's bytes.
    fn data(&self) -> &[u8];
    /// The frame's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front; `None` when the headroom is too small.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the frame by `n` bytes at the end; `None` when the tailroom is too small.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false (and nothing removed) if shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end; false (and nothing removed) if shorter.
    fn trim(&mut self, n: usize) -> bool;
    /// Starts bringing what the device reads of this buffer when sending it (its
    /// descriptor) into the cache, without waiting: for a frame that waited long (held for
    /// a full ring) and is handed to the device next. A hint; nothing by default.
    fn prefetch(&self) {}
    /// The NIC's RSS hash of the frame, when the device computed one.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    /// What the NIC found of this received frame's IPv4 and TCP/UDP checksums (only
    /// meaningful when the device has `rx_checksum`; `Unknown` means "check in software").
    fn rx_checksum(&self) -> RxChecksum {
        RxChecksum::default()
    }
    /// Forgets the NIC's receive verdicts (the frame was changed after the NIC checked it:
    /// injected corruption stands for damage on the wire, before the NIC).
    fn forget_rx_checksum(&mut self) {}
    /// Asks the NIC to fill this frame's IPv4 and/or TCP/UDP checksums on transmit (only
    /// meaningful when the device has `tx_ip_checksum`/`tx_checksum`); the frame carries
    /// the pseudo-header sum in its TCP/UDP checksum field and 0 in its IPv4 one when
    /// those are left to the NIC.
    fn request_tx_checksum(&mut self, _offload: TxChecksum) {}
    /// TSO: appends a copy of `data` in buffers chained after this one (the payload of a
    /// large segment). False when the device cannot, or is out of buffers (then nothing
    /// is appended... or part: the caller drops the frame).
    fn append_chained(&mut self, _data: &[u8]) -> bool {
        false
    }
    /// TSO: asks the device to cut this frame's TCP payload into segments of `mss` bytes,
    /// `l4_len` being the TCP header's length (the IPv4 header is `TxChecksum::l3_len`).
    /// The TCP checksum field must hold the pseudo-header sum without the length.
    fn request_tso(&mut self, _mss: u16, _l4_len: u8) {}
    /// Whether `request_tso` was called (the frame may exceed the MTU).
    fn is_tso(&self) -> bool {
        false
    }
    /// All the frame's bytes, copied into one vector, chained segments included (the ARP
    /// queue keeps packets this way).
    fn gather(&self) -> Vec<u8> {
        self.data().to_vec()
    }
    /// Zero-copy send: appends `frame[range]` to this frame by reference (a chained
    /// segment), without copying. False when this buffer type or this frame cannot; the
    /// caller then copies. Only called when the device has `DeviceCaps::tx_chain`.
    fn attach_frame(&mut self, _frame: &Frame, _range: core::ops::Range<usize>) -> bool {
        false
    }
    /// Whether `into_frame` shares the buffer instead of failing (zero-copy receive).
    const FRAMES: bool = false;
    /// The frame's bytes as a shared `Frame` kept alive by this buffer (no copy), or the
    /// buffer back when the type cannot be shared.
    fn into_frame(self) -> Result<Frame, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

/// The NIC's verdict on a checksum of a received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// Not checked (or not applicable): verify in software.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// The NIC's verdicts on the IPv4 header checksum and the TCP/UDP checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxChecksum {
    pub ip: Verdict,
    pub l4: Verdict,
}

/// What the NIC should checksum in a frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxChecksum {
    /// The packet is IPv6 (else IPv4).
    pub ipv6: bool,
    /// Fill the IPv4 header checksum.
    pub ip: bool,
    /// Length of the link-layer header (14 for Ethernet).
    pub l2_len: u8,
    /// Length of the IP header (IPv6: the fixed header and any extension headers).
    pub l3_len: u16,
    /// The layer-4 protocol whose checksum to fill (`Other`: none).
    pub l4: L4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
    /// No layer-4 checksum.
    Other,
}

/// What a device can do, as the layers above need to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCaps {
    /// Largest IP packet (Ethernet payload) the device carries.
    pub mtu: usize,
    /// The device verifies IPv4/TCP/UDP checksums on receive (bad ones are flagged or dropped).
    pub rx_checksum: bool,
    /// The device fills TCP/UDP checksums on transmit.
    pub tx_checksum: bool,
    /// The device fills the IPv4 header checksum on transmit (virtio does not: the header
    /// checksum is then summed in software, 20 bytes).
    pub tx_ip_checksum: bool,
    /// The device hashes flows to queues with RSS (Toeplitz).
    pub rss: bool,
    /// Most frames one burst moves.
    pub max_burst: usize,
    /// The device sends chained buffers (multi-segment mbufs), so payloads can be sent
    /// by reference (`PacketBuf::attach_frame`).
    pub tx_chain: bool,
    /// The device cuts large TCP segments itself (TSO): one frame of up to 64 KiB goes
    /// down with `PacketBuf::request_tso`, full-sized segments come out.
    pub tso: bool,
}

impl Default for DeviceCaps {
    fn default() -> Self {
        DeviceCaps {
            mtu: 1500,
            rx_checksum: false,
            tx_checksum: false,
            tx_ip_checksum: false,
            rss: false,
            max_burst: 32,
            tx_chain: false,
            tso: false,
        }
    }
}

/// One queue pair of a network device, owned by one core.
///
/// Bursts move frames through caller-owned `Vec`s whose capacity the caller reserves once,
/// so a steady-state burst allocates nothing.
pub trait Device {
    type Buf: PacketBuf;

    fn caps(&self) -> DeviceCaps;
    /// The port's Ethernet address.
    fn mac(&self) -> [u8; 6];
    /// Appends up to `max` received frames to `out`; returns how many.
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<Self::Buf>, max: usize) -> usize;
    /// A new empty frame buffer with headroom for all headers, or `None` when the pool is
    /// exhausted (the caller counts a drop).
    fn alloc(&mut self) -> Option<Self::Buf>;
    /// Sends frames from the front of `bufs`, removing those sent; returns how many. Frames
    /// the queue had no room for stay in `bufs`, in order.
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<Self::Buf>) -> usize;
    /// When the device next has something to deliver without new input (virtual links
    /// with latency); real devices return `None`.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}
