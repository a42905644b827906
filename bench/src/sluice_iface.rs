//! One in-order data segment through a whole Sluice `Interface`: `poll` over a device that
//! hands it one prebuilt frame (copied into a `MemPool` buffer, the buffers `MemLink`
//! uses), then the application drains the connection (`tcp_recv_with`, no copy).

use std::time::Duration;

use sluice_dev::{Device, DeviceCaps, MemBuf, MemPool, PacketBuf};
use sluice_net::{Interface, InterfaceConfig, IsnKey, TcpHandle};
use sluice_wire::{EthernetAddress, Instant, Ipv4Cidr, SeqNumber};

use crate::frames::{self, PEER_ISN};
use crate::{LOCAL_IP, LOCAL_MAC, LOCAL_PORT, PEER_IP, PEER_MAC};

/// A device that receives what the workload queues and counts (and optionally keeps)
/// what the stack sends.
pub struct FeedDevice {
    pool: MemPool,
    caps: DeviceCaps,
    /// Frames `rx_burst` delivers next (setup).
    queue: Vec<Vec<u8>>,
    /// The steady-state frame, delivered (copied) once when `pending`.
    frame: Vec<u8>,
    pending: bool,
    /// When set, transmitted frames are copied here.
    pub capture: Option<Vec<Vec<u8>>>,
    pub tx_frames: u64,
}

impl FeedDevice {
    /// `offload`: the device verifies and fills IPv4/TCP checksums (as a DPDK port
    /// with checksum offload), so the stack does neither.
    pub fn new(offload: bool) -> FeedDevice {
        FeedDevice {
            pool: MemPool::new(256),
            caps: DeviceCaps {
                rx_checksum: offload,
                tx_checksum: offload,
                tx_ip_checksum: offload,
                ..DeviceCaps::default()
            },
            queue: Vec::with_capacity(4),
            frame: Vec::new(),
            pending: false,
            capture: None,
            tx_frames: 0,
        }
    }
}

impl Device for FeedDevice {
    type Buf = MemBuf;

    fn caps(&self) -> DeviceCaps {
        self.caps
    }
    fn mac(&self) -> [u8; 6] {
        LOCAL_MAC
    }
    fn rx_burst(&mut self, _now: Instant, out: &mut Vec<MemBuf>, max: usize) -> usize {
        let n = self.queue.len().min(max);
        for f in self.queue.drain(..n) {
            let mut b = self.pool.alloc().expect("pool");
            b.append(f.len()).expect("room").copy_from_slice(&f);
            out.push(b);
        }
        if self.pending && n < max {
            self.pending = false;
            let mut b = self.pool.alloc().expect("pool");
            b.append(self.frame.len())
                .expect("room")
                .copy_from_slice(&self.frame);
            out.push(b);
            return n + 1;
        }
        n
    }
    fn alloc(&mut self) -> Option<MemBuf> {
        self.pool.alloc()
    }
    fn tx_burst(&mut self, _now: Instant, bufs: &mut Vec<MemBuf>) -> usize {
        let n = bufs.len();
        self.tx_frames += n as u64;
        for b in bufs.drain(..) {
            if let Some(c) = self.capture.as_mut() {
                c.push(b.data().to_vec());
            }
        }
        n
    }
}

/// A Sluice interface with one established connection (default `TcpConfig`: delayed
/// ACKs, window scaling, SACK, timestamps) receiving in-order MSS segments.
pub struct SluiceInput {
    pub iface: Interface,
    pub dev: FeedDevice,
    conn: TcpHandle,
    seq: SeqNumber,
    /// Payload bytes per segment.
    seg_len: usize,
    now_ns: u64,
}

impl SluiceInput {
    pub fn new(offload: bool) -> SluiceInput {
        let mut dev = FeedDevice::new(offload);
        let mut cfg = InterfaceConfig::new(Ipv4Cidr::new(LOCAL_IP, 24), IsnKey::fixed([7; 16]));
        cfg.static_arp.push((PEER_IP, EthernetAddress(PEER_MAC)));
        // The copying receive path, as smoltcp's: sharing a `MemPool` buffer costs an
        // allocation (an mbuf's does not), which would measure the simulator, not the stack.
        // Zero-copy receive is measured at the TCP level (`tcp/input_inorder_mss`).
        cfg.rx_frames_limit = 0;
        let mut iface = Interface::new(cfg, EthernetAddress(dev.mac()));
        let listener = iface.tcp_listen(LOCAL_PORT, 16).unwrap();
        let mut now = Instant::from_millis(1);

        dev.capture = Some(Vec::new());
        dev.queue.push(frames::syn());
        while iface.poll(now, &mut dev) {}
        let sa = frames::find_syn_ack(dev.capture.as_ref().unwrap());
        now += Duration::from_micros(50);
        dev.queue.push(frames::handshake_ack(sa));
        while iface.poll(now, &mut dev) {}
        let conn = iface.tcp_accept(listener).expect("accepted");
        dev.capture = None;

        dev.frame = frames::data_segment(sa);
        let mut w = SluiceInput {
            iface,
            dev,
            conn,
            seq: PEER_ISN + 1,
            seg_len: frames::full_payload(sa),
            now_ns: now.total_nanos(),
        };
        let (tx0, bytes0) = (
            w.dev.tx_frames,
            w.iface
                .tcp_status(conn)
                .map(|t| t.tcb())
                .unwrap()
                .counters()
                .bytes_in,
        );
        for _ in 0..100 {
            w.step();
        }
        let tcb = w.iface.tcp_status(conn).map(|t| t.tcb()).unwrap();
        assert_eq!(
            tcb.counters().bytes_in - bytes0,
            100 * w.seg_len as u64,
            "segments not accepted"
        );
        assert!(w.dev.tx_frames - tx0 >= 50, "ACKs: {}", w.dev.tx_frames - tx0);
        w
    }

    /// One frame in through `poll` (ACK out when due), then the data drained.
    #[inline]
    pub fn step(&mut self) {
        frames::set_seq(&mut self.dev.frame, self.seq);
        self.dev.pending = true;
        let now = Instant::from_nanos(self.now_ns);
        self.iface.poll(now, &mut self.dev);
        let _ = self
            .iface
            .tcp(self.conn)
            .ok_or(sluice_net::TcpRecvError::InvalidHandle)
            .and_then(|mut sk| sk.recv_with(|d| (d.len(), ())));
        self.seq += self.seg_len;
        self.now_ns += 1_000;
    }
}
