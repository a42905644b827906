use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use sluice_dev::{Device, DeviceCaps, Instant};

use crate::error::strerror;
use crate::mempool::LARGE_DATA_ROOM;
use crate::{DpdkError, Eal, Mbuf, Mempool, Result};

/// The symmetric Toeplitz key (0x6d5a repeated): both directions of a flow hash alike,
/// so one core owns both (Woo and Park, "Scalable TCP session monitoring with symmetric
/// receive-side scaling"). Sized for the largest key a port asks for (ice/i40e: 52 bytes).
pub const SYMMETRIC_RSS_KEY: [u8; 52] = {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    /// Queue pairs: one per core.
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// MTU to set (`None`: leave the port's).
    pub mtu: Option<u16>,
    /// RSS with `SYMMETRIC_RSS_KEY` over IPv4/TCP/UDP, where the port supports it.
    pub rss: bool,
    pub promiscuous: bool,
    /// Mbufs in each queue's pool.
    pub mbufs_per_queue: u32,
    /// Let the NIC verify and fill IPv4/TCP/UDP checksums where it can.
    pub checksum_offload: bool,
    pub mbuf_cache: u32,
    /// Let the NIC cut large TCP segments (TSO) where it can (with TCP checksum offload
    /// and chained mbufs).
    pub tso: bool,
    /// Large buffers (`LARGE_DATA_ROOM` bytes of data each) per queue, for the payload of
    /// large transmitted segments; 0: none. When they run out, segments use the queue's
    /// own buffers.
    pub large_mbufs_per_queue: u32,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            rss: true,
            promiscuous: false,
            mbufs_per_queue: 8191,
            mbuf_cache: 256,
            checksum_offload: true,
            tso: true,
            large_mbufs_per_queue: 2047,
        }
    }
}

/// What a port is, as read from `rte_eth_dev_info_get`.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub reta_size: u16,
    pub hash_key_size: u8,
    pub flow_type_rss_offloads: u64,
    pub max_mtu: u16,
    pub rx_offload_capa: u64,
    pub tx_offload_capa: u64,
}

/// Port counters (`rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A configured and started Ethernet port. Dropping it stops and closes the port.
pub struct Port {
    id: u16,
    info: PortInfo,
    mac: [u8; 6],
    pools: Vec<Mempool>,
    rss_key: Option<Vec<u8>>,
    reta: Option<Vec<u16>>,
    mtu: u16,
    rx_checksum: bool,
    tx_checksum: bool,
    tx_ip_checksum: bool,
    tx_chain: bool,
    tso: bool,
}

/// The size of the header a virtio device puts before each frame (`virtio_net_hdr_mrg_rxbuf`,
/// what virtio 1.0 and mergeable buffers use).
const VIRTIO_NET_HDR: u16 = 12;

/// Where a frame we build starts in its buffer, for a port of driver `driver`. DPDK's is
/// `RTE_PKTMBUF_HEADROOM` (128 bytes into a buffer that starts a cache line), and a virtio
/// driver writes its 12-byte header just before the frame, 52 bytes into a line: header and
/// frame of a 64-byte request with timestamps (142 bytes) then spanned 4 lines, which the
/// other side's core copies out of our memory. Starting the frame 12 bytes later puts the
/// header at the start of a line. Measured at 256 connections over vhost/virtio: 1.11x (8
/// interleaved pairs, 8 faster) when the two cores share little cache, no change when they
/// share it. (Buffers moved 16 bytes past a line by a DPDK private area, which also holds
/// header and frame in 3 lines, gained nothing: the header's start is what pays.)
pub fn tx_data_off(driver: &str) -> u16 {
    let headroom = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;
    if driver.starts_with("net_virtio") {
        headroom + VIRTIO_NET_HDR
    } else {
        headroom
    }
}

fn check(port: u16, what: &'static str, ret: i32) -> Result<()> {
    if ret < 0 {
        Err(DpdkError::Port {
            port,
            what,
            errno: -ret,
            msg: strerror(-ret),
        })
    } else {
        Ok(())
    }
}

impl Port {
    /// Ports EAL found.
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: plain query after EAL init.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// The port id of a device by its name (e.g. `net_tap0`, `virtio_user0`, `0000:03:00.0`).
    pub fn id_by_name(eal: &Eal, name: &str) -> Result<u16> {
        let c = CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?;
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(DpdkError::NoSuchPort {
                name: name.into(),
                available: Port::count(eal),
            });
        }
        Ok(id)
    }

    /// Reads what port `id` can do.
    pub fn info(eal: &Eal, id: u16) -> Result<PortInfo> {
        // SAFETY: plain query.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidPort {
                port: id,
                available: Port::count(eal),
            });
        }
        let mut di = MaybeUninit::<dpdk_sys::rte_eth_dev_info>::zeroed();
        // SAFETY: valid port; di is written by the call.
        check(id, "rte_eth_dev_info_get", unsafe {
            dpdk_sys::rte_eth_dev_info_get(id, di.as_mut_ptr())
        })?;
        // SAFETY: initialised by the successful call above.
        let di = unsafe { di.assume_init() };
        let driver = if di.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a static NUL-terminated driver name.
            unsafe { CStr::from_ptr(di.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: di.max_rx_queues,
            max_tx_queues: di.max_tx_queues,
            reta_size: di.reta_size,
            hash_key_size: di.hash_key_size,
            flow_type_rss_offloads: di.flow_type_rss_offloads,
            max_mtu: di.max_mtu,
            rx_offload_capa: di.rx_offload_capa,
            tx_offload_capa: di.tx_offload_capa,
        })
    }

    /// Configures port `id` with `cfg.queues` rx/tx queue pairs, a mempool per queue, RSS
    /// with the symmetric key where supported, and starts it.
    pub fn configure(eal: &Eal, id: u16, cfg: &PortConfig) -> Result<Port> {
        let info = Port::info(eal, id)?;
        let q = cfg.queues.max(1);
        if q > info.max_rx_queues {
            return Err(DpdkError::TooManyQueues {
                port: id,
                kind: "rx",
                max: info.max_rx_queues,
                asked: q,
            });
        }
        if q > info.max_tx_queues {
            return Err(DpdkError::TooManyQueues {
                port: id,
                kind: "tx",
                max: info.max_tx_queues,
                asked: q,
            });
        }
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let rss_types =
            unsafe { dpdk_sys::SLUICE_RSS_IP | dpdk_sys::SLUICE_RSS_TCP | dpdk_sys::SLUICE_RSS_UDP };
        let rss_hf = rss_types & info.flow_type_rss_offloads;
        let use_rss = cfg.rss && rss_hf != 0;
        let mut key = SYMMETRIC_RSS_KEY;
        let key_len = if info.hash_key_size == 0 {
            40
        } else {
            info.hash_key_size.min(52)
        };

        let mut conf = dpdk_sys::rte_eth_conf::default();
        if use_rss {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key_len;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // Checksum offloads, each where the port has it. Receive: whatever the port
        // verifies (virtio: TCP/UDP, not the IPv4 header); its verdict is read per frame
        // and what it did not check is checked in software. Transmit: TCP and UDP
        // together, the IPv4 header alone (virtio fills TCP/UDP but not IPv4).
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let (rx_cs, tx_l4, tx_ip) = unsafe {
            (
                dpdk_sys::SLUICE_ETH_RX_OFFLOAD_IPV4_CKSUM
                    | dpdk_sys::SLUICE_ETH_RX_OFFLOAD_TCP_CKSUM
                    | dpdk_sys::SLUICE_ETH_RX_OFFLOAD_UDP_CKSUM,
                dpdk_sys::SLUICE_ETH_TX_OFFLOAD_TCP_CKSUM | dpdk_sys::SLUICE_ETH_TX_OFFLOAD_UDP_CKSUM,
                dpdk_sys::SLUICE_ETH_TX_OFFLOAD_IPV4_CKSUM,
            )
        };
        let rx_have = if cfg.checksum_offload {
            info.rx_offload_capa & rx_cs
        } else {
            0
        };
        let rx_checksum = rx_have != 0;
        let tx_checksum = cfg.checksum_offload && info.tx_offload_capa & tx_l4 == tx_l4;
        let tx_ip_checksum = cfg.checksum_offload && info.tx_offload_capa & tx_ip == tx_ip;
        conf.rxmode.offloads |= rx_have;
        if tx_checksum {
            conf.txmode.offloads |= tx_l4;
        }
        if tx_ip_checksum {
            conf.txmode.offloads |= tx_ip;
        }
        // Chained mbufs on transmit, for zero-copy send.
        // SAFETY: an extern static defined in the shim.
        let multi_seg = unsafe { dpdk_sys::SLUICE_ETH_TX_OFFLOAD_MULTI_SEGS };
        let tx_chain = info.tx_offload_capa & multi_seg != 0;
        if tx_chain {
            conf.txmode.offloads |= multi_seg;
        }
        // TSO where the port has it, with the TCP checksum offload it builds on. Not on
        // net_vhost: what it sends goes to a virtio guest that may not take large frames
        // (its receive side would have to have negotiated them), and net_tap cuts in
        // software with limits of its own.
        // SAFETY: an extern static defined in the shim.
        let tso_flag = unsafe { dpdk_sys::SLUICE_ETH_TX_OFFLOAD_TCP_TSO };
        let tso = cfg.tso
            && tx_checksum
            && tx_chain
            && info.tx_offload_capa & tso_flag != 0
            && !matches!(info.driver.as_str(), "net_vhost" | "net_tap");
        if tso {
            conf.txmode.offloads |= tso_flag;
        }
        // SAFETY: valid port; conf (and the key it points to) outlive the call.
        check(id, "rte_eth_dev_configure", unsafe {
            dpdk_sys::rte_eth_dev_configure(id, q, q, &conf)
        })?;
        let (mut rxd, mut txd) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port and out pointers.
        check(id, "rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd)
        })?;
        // SAFETY: plain query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        let mut pools = Vec::with_capacity(q as usize);
        for qi in 0..q {
            // Pool names are global to the process: include the port and queue.
            let pool = Mempool::new(
                eal,
                &format!("sl_p{id}_q{qi}"),
                cfg.mbufs_per_queue,
                cfg.mbuf_cache,
                dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            )?;
            if cfg.large_mbufs_per_queue > 0 {
                let large = Mempool::new(
                    eal,
                    &format!("sl_p{id}_q{qi}_l"),
                    cfg.large_mbufs_per_queue,
                    cfg.mbuf_cache.min(cfg.large_mbufs_per_queue / 8),
                    LARGE_DATA_ROOM + dpdk_sys::RTE_PKTMBUF_HEADROOM as u16,
                )?;
                pool.set_large(large);
            }
            // SAFETY: valid port/queue; NULL conf takes the driver's defaults; the pool lives on.
            check(id, "rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, qi, rxd, socket, std::ptr::null(), pool.as_ptr())
            })?;
            // SAFETY: as above.
            check(id, "rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, qi, txd, socket, std::ptr::null())
            })?;
            pools.push(pool);
        }
        if let Some(mtu) = cfg.mtu {
            // SAFETY: valid port.
            check(id, "rte_eth_dev_set_mtu", unsafe {
                dpdk_sys::rte_eth_dev_set_mtu(id, mtu)
            })?;
        }
        if cfg.promiscuous {
            // SAFETY: valid port.
            check(id, "rte_eth_promiscuous_enable", unsafe {
                dpdk_sys::rte_eth_promiscuous_enable(id)
            })?;
        }
        // SAFETY: configured port.
        check(id, "rte_eth_dev_start", unsafe {
            dpdk_sys::rte_eth_dev_start(id)
        })?;

        let mut mac = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        check(id, "rte_eth_macaddr_get", unsafe {
            dpdk_sys::rte_eth_macaddr_get(id, &mut mac)
        })?;
        let mut mtu = 1500u16;
        // SAFETY: valid port and out pointer.
        unsafe { dpdk_sys::rte_eth_dev_get_mtu(id, &mut mtu) };

        let mut port = Port {
            id,
            info,
            mac: mac.addr_bytes,
            pools,
            rss_key: None,
            reta: None,
            mtu,
            rx_checksum,
            tx_checksum,
            tx_ip_checksum,
            tx_chain,
            tso,
        };
        if use_rss {
            port.rss_key = port.read_rss_key();
            port.reta = port.read_reta();
        }
        Ok(port)
    }

    /// The RSS key the port actually uses, read back (not assumed).
    fn read_rss_key(&self) -> Option<Vec<u8>> {
        let mut key = vec![0u8; self.info.hash_key_size.max(40) as usize];
        let mut conf = dpdk_sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: key.len() as u8,
            rss_hf: 0,
        };
        // SAFETY: valid port; the key buffer is as long as rss_key_len says.
        let ret = unsafe { dpdk_sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf) };
        (ret == 0).then(|| {
            key.truncate(conf.rss_key_len as usize);
            key
        })
    }

    /// The redirection table (hash -> queue), read back from the port.
    fn read_reta(&self) -> Option<Vec<u16>> {
        let size = self.info.reta_size as usize;
        if size == 0 {
            return None;
        }
        let groups = size.div_ceil(64);
        let mut conf = vec![dpdk_sys::rte_eth_rss_reta_entry64::default(); groups];
        for g in conf.iter_mut() {
            g.mask = u64::MAX;
        }
        // SAFETY: valid port; conf has reta_size / 64 groups.
        let ret = unsafe { dpdk_sys::rte_eth_dev_rss_reta_query(self.id, conf.as_mut_ptr(), size as u16) };
        (ret == 0).then(|| (0..size).map(|i| conf[i / 64].reta[i % 64]).collect())
    }

    pub fn id(&self) -> u16 {
        self.id
    }
    pub fn port_info(&self) -> &PortInfo {
        &self.info
    }
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    pub fn mtu(&self) -> u16 {
        self.mtu
    }
    /// The NIC verifies checksums on receive (some of IPv4, TCP, UDP: its per-frame flags
    /// say which), and fills TCP/UDP checksums on transmit.
    pub fn checksum_offload(&self) -> (bool, bool) {
        (self.rx_checksum, self.tx_checksum)
    }
    /// The NIC fills the IPv4 header checksum on transmit.
    pub fn ip_checksum_offload(&self) -> bool {
        self.tx_ip_checksum
    }
    /// The port sends chained mbufs (`RTE_ETH_TX_OFFLOAD_MULTI_SEGS`): zero-copy send.
    pub fn tx_chain(&self) -> bool {
        self.tx_chain
    }
    /// The NIC cuts large TCP segments (TSO).
    pub fn tso(&self) -> bool {
        self.tso
    }
    pub fn queues(&self) -> u16 {
        self.pools.len() as u16
    }
    /// The RSS key in use, when RSS is on.
    pub fn rss_key(&self) -> Option<&[u8]> {
        self.rss_key.as_deref()
    }
    /// The redirection table in use, when RSS is on and the port exposes it.
    pub fn reta(&self) -> Option<&[u16]> {
        self.reta.as_deref()
    }
    pub fn pool(&self, queue: u16) -> Mempool {
        self.pools[queue as usize]
    }

    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out pointer.
        unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// The link is up.
    pub fn link_up(&self) -> bool {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer.
        unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut l) };
        l.link_status() != 0
    }

    /// Queue pair `queue` as a `Device`, for the core that owns it.
    pub fn queue(&self, queue: u16) -> PortQueue {
        assert!(queue < self.queues(), "queue {queue} of {}", self.queues());
        PortQueue {
            port: self.id,
            queue,
            pool: self.pools[queue as usize],
            mac: self.mac,
            tx_data_off: tx_data_off(&self.info.driver),
            caps: DeviceCaps {
                mtu: self.mtu as usize,
                rx_checksum: self.rx_checksum,
                tx_checksum: self.tx_checksum,
                tx_ip_checksum: self.tx_ip_checksum,
                rss: self.rss_key.is_some(),
                max_burst: 32,
                tx_chain: self.tx_chain,
                tso: self.tso,
            },
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: the port was started by `configure`; queues must no longer be polled.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// One rx/tx queue pair of a port, owned by one core.
pub struct PortQueue {
    port: u16,
    queue: u16,
    pool: Mempool,
    mac: [u8; 6],
    caps: DeviceCaps,
    /// Where `alloc`'s frames start (`tx_data_off`).
    tx_data_off: u16,
}

const BURST: usize = 64;

impl PortQueue {
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn queue(&self) -> u16 {
        self.queue
    }
    pub fn pool(&self) -> Mempool {
        self.pool
    }
}

impl Device for PortQueue {
    type Buf = Mbuf;

    fn caps(&self) -> DeviceCaps {
        self.caps
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn rx_burst(&mut self, _now: Instant, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let mut raw = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); BURST];
        let n = max.min(BURST) as u16;
        // SAFETY: this core owns the queue; raw has room for n pointers.
        let got = unsafe { dpdk_sys::sluice_rx_burst(self.port, self.queue, raw.as_mut_ptr(), n) } as usize;
        for &p in &raw[..got] {
            // SAFETY: rx_burst hands us ownership of `got` valid mbufs.
            out.push(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) });
        }
        got
    }
    fn alloc(&mut self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the process's life.
        let p = NonNull::new(unsafe { dpdk_sys::sluice_pktmbuf_alloc(self.pool.as_ptr()) })?;
        // SAFETY: a freshly allocated, empty mbuf that we own; the offset leaves more than
        // a frame of room in the pool's buffers (`tx_data_off_leaves_room_for_a_frame`).
        unsafe { (*p.as_ptr()).data_off = self.tx_data_off };
        // SAFETY: as above.
        Some(unsafe { Mbuf::from_raw(p) })
    }
    fn tx_burst(&mut self, _now: Instant, bufs: &mut Vec<Mbuf>) -> usize {
        let mut total = 0;
        while !bufs.is_empty() {
            let n = bufs.len().min(BURST);
            let mut raw = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); BURST];
            for (r, m) in raw.iter_mut().zip(bufs.iter()) {
                *r = m.as_ptr();
            }
            // SAFETY: this core owns the queue; the driver takes ownership of the first `sent`.
            let sent = unsafe { dpdk_sys::sluice_tx_burst(self.port, self.queue, raw.as_mut_ptr(), n as u16) }
                as usize;
            for m in bufs.drain(..sent) {
                let _ = m.into_raw(); // now the driver's
            }
            total += sent;
            if sent < n {
                break; // queue full: the rest stays with the caller
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtio_frames_header_starts_a_cache_line() {
        let headroom = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;
        for virtio in ["net_virtio_user", "net_virtio"] {
            let off = tx_data_off(virtio);
            assert_eq!(
                (off - VIRTIO_NET_HDR) % 64,
                0,
                "{virtio}: header at {}",
                off - VIRTIO_NET_HDR
            );
            assert!(
                off - VIRTIO_NET_HDR >= headroom,
                "{virtio}: the header stays out of DPDK's headroom"
            );
        }
        for other in [
            "net_vhost",
            "net_tap",
            "net_ixgbe",
            "net_i40e",
            "net_ice",
            "net_null",
            "",
        ] {
            assert_eq!(tx_data_off(other), headroom, "{other}");
        }
    }

    #[test]
    fn tx_data_off_leaves_room_for_a_frame() {
        // The pools' buffers (`RTE_MBUF_DEFAULT_BUF_SIZE`), a 1500-byte MTU's frame.
        let room = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16 - tx_data_off("net_virtio_user");
        assert!(room >= 1514, "{room} bytes after the offset");
    }
}
