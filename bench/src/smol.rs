//! The same workload on smoltcp 0.12: one in-order data segment through
//! `smoltcp::iface::Interface::poll` (Ethernet medium) over a device that hands it one
//! prebuilt frame (copied into the device's receive buffer, as `FeedDevice` copies it into
//! a `MemBuf`), then the application drains the socket (`recv`, no copy).
//!
//! smoltcp's TCP processing (`tcp::Socket::process`/`dispatch`) is `pub(crate)`, so there
//! is no sans-I/O entry point to compare with `Tcb::on_segment`: the comparison is
//! interface to interface.

use sluice_wire::SeqNumber;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::frames::{self, PEER_ISN};
use crate::{LOCAL_MAC, LOCAL_PORT, PEER_IP, PEER_MAC};

/// A device that receives what the workload queues and counts (and optionally keeps)
/// what the stack sends.
pub struct SmolFeedDevice {
    offload: bool,
    queue: Vec<Vec<u8>>,
    frame: Vec<u8>,
    pending: bool,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    pub capture: Option<Vec<Vec<u8>>>,
    pub tx_frames: u64,
}

pub struct SmolRx<'a>(&'a [u8]);

pub struct SmolTx<'a> {
    buf: &'a mut [u8],
    capture: Option<&'a mut Vec<Vec<u8>>>,
    count: &'a mut u64,
}

impl RxToken for SmolRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for SmolTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        *self.count += 1;
        let r = f(&mut self.buf[..len]);
        if let Some(c) = self.capture {
            c.push(self.buf[..len].to_vec());
        }
        r
    }
}

impl SmolFeedDevice {
    pub fn new(offload: bool) -> SmolFeedDevice {
        SmolFeedDevice {
            offload,
            queue: Vec::new(),
            frame: Vec::new(),
            pending: false,
            rx_buf: vec![0; 2048],
            tx_buf: vec![0; 2048],
            capture: None,
            tx_frames: 0,
        }
    }
}

impl Device for SmolFeedDevice {
    type RxToken<'a> = SmolRx<'a>;
    type TxToken<'a> = SmolTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(SmolRx<'_>, SmolTx<'_>)> {
        let len = if !self.queue.is_empty() {
            let f = self.queue.remove(0);
            self.rx_buf[..f.len()].copy_from_slice(&f);
            f.len()
        } else if self.pending {
            self.pending = false;
            let n = self.frame.len();
            self.rx_buf[..n].copy_from_slice(&self.frame);
            n
        } else {
            return None;
        };
        Some((
            SmolRx(&self.rx_buf[..len]),
            SmolTx {
                buf: &mut self.tx_buf,
                capture: self.capture.as_mut(),
                count: &mut self.tx_frames,
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<SmolTx<'_>> {
        Some(SmolTx {
            buf: &mut self.tx_buf,
            capture: self.capture.as_mut(),
            count: &mut self.tx_frames,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(32);
        if self.offload {
            let mut c = ChecksumCapabilities::ignored();
            c.icmpv4 = Checksum::Both;
            caps.checksum = c;
        }
        caps
    }
}

/// smoltcp wants a timestamp source for RFC 7323 timestamps; a constant will do.
fn tsval() -> u32 {
    0x0100_0000
}

/// A smoltcp interface with one established connection (64 KiB buffers, default delayed
/// ACK of 10 ms, window scaling, SACK, timestamps enabled) receiving in-order MSS segments.
pub struct SmolInput {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub dev: SmolFeedDevice,
    handle: SocketHandle,
    seq: SeqNumber,
    /// Payload bytes per segment.
    seg_len: usize,
    now_us: i64,
}

/// An ARP request from the peer for our address: smoltcp learns neighbours from ARP only.
fn arp_request() -> Vec<u8> {
    use sluice_wire::{ArpOp, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr};
    let eth = EthernetRepr {
        src_addr: sluice_wire::EthernetAddress(PEER_MAC),
        dst_addr: sluice_wire::EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    };
    let arp = ArpRepr {
        operation: ArpOp::Request,
        source_hardware_addr: sluice_wire::EthernetAddress(PEER_MAC),
        source_protocol_addr: PEER_IP,
        target_hardware_addr: sluice_wire::EthernetAddress::UNSPECIFIED,
        target_protocol_addr: crate::LOCAL_IP,
    };
    let mut buf = vec![0u8; eth.buffer_len(arp.buffer_len()).max(60)];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    arp.emit(&mut ArpPacket::new_unchecked(
        &mut f.payload_mut()[..arp.buffer_len()],
    ));
    buf
}

impl SmolInput {
    pub fn new(offload: bool) -> SmolInput {
        let mut dev = SmolFeedDevice::new(offload);
        let mut now = Instant::from_millis(1);
        let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(LOCAL_MAC)));
        let mut iface = Interface::new(config, &mut dev, now);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)).unwrap();
        });
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        socket.set_tsval_generator(Some(tsval));
        socket.listen(LOCAL_PORT).unwrap();
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);

        dev.capture = Some(Vec::new());
        dev.queue.push(arp_request());
        dev.queue.push(frames::syn());
        iface.poll(now, &mut dev, &mut sockets);
        let sa = frames::find_syn_ack(dev.capture.as_ref().unwrap());
        assert!(sa.tsval.is_some(), "smoltcp did not agree to timestamps");
        now += smoltcp::time::Duration::from_micros(50);
        dev.queue.push(frames::handshake_ack(sa));
        iface.poll(now, &mut dev, &mut sockets);
        assert_eq!(
            sockets.get::<tcp::Socket>(handle).state(),
            tcp::State::Established
        );
        dev.capture = None;

        dev.frame = frames::data_segment(sa);
        let mut w = SmolInput {
            iface,
            sockets,
            dev,
            handle,
            seq: PEER_ISN + 1,
            seg_len: frames::full_payload(sa),
            now_us: now.total_micros(),
        };
        let tx0 = w.dev.tx_frames;
        let mut got = 0;
        for _ in 0..100 {
            got += w.step();
        }
        assert_eq!(got, 100 * w.seg_len, "segments not accepted");
        assert!(w.dev.tx_frames - tx0 >= 50, "ACKs: {}", w.dev.tx_frames - tx0);
        w
    }

    /// One frame in through `poll` (ACK out when due), then the data drained; returns the
    /// bytes drained.
    #[inline]
    pub fn step(&mut self) -> usize {
        frames::set_seq(&mut self.dev.frame, self.seq);
        self.dev.pending = true;
        let now = Instant::from_micros(self.now_us);
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        let s = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let n = s.recv(|d| (d.len(), d.len())).unwrap_or(0);
        self.seq += self.seg_len;
        self.now_us += 1;
        n
    }
}
