//! Software steering for devices without RSS (net_tap, virtio_user without RSS): the core
//! that receives a frame of another core's flow hands it to that core through a lock-free
//! bounded queue (crossbeam `ArrayQueue`), off the fast path of RSS-capable NICs.
//!
//! The owner of a TCP/UDP flow is decided by the same `RssSteering` that picks the local
//! ports of active opens, so a connection opened on core `c` is owned by `c`. ARP frames
//! are given to every core (each keeps its own ARP cache); other frames stay where they
//! arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use sluice_dev::{Device, DeviceCaps, Instant, PacketBuf};
use sluice_wire::{Ipv4Address, Ipv6Address};

use crate::RssSteering;

/// One bounded inbox per core.
pub struct Mailboxes<B> {
    boxes: Vec<ArrayQueue<B>>,
    /// Frames dropped because an inbox was full.
    pub dropped: AtomicU64,
}

impl<B> Mailboxes<B> {
    /// An inbox of `capacity` frames (at least 1) for each of `cores` cores, to share
    /// between their `SteeredDevice`s.
    pub fn new(cores: u16, capacity: usize) -> Arc<Self> {
        Arc::new(Mailboxes {
            boxes: (0..cores).map(|_| ArrayQueue::new(capacity.max(1))).collect(),
            dropped: AtomicU64::new(0),
        })
    }
    fn post(&self, core: u16, b: B) -> bool {
        match self.boxes[core as usize].push(b) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Where a received frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The core that received it: not IPv4 TCP/UDP, a fragment, or too short to tell.
    Here,
    /// The core that owns its flow (possibly the one that received it).
    Core(u16),
    /// Every core (ARP: each core keeps its own cache).
    Everyone,
}

/// Decides the owner core of a frame (IPv4 and IPv6 TCP/UDP by its 4-tuple; ARP and
/// neighbour discovery to everyone).
pub fn classify(frame: &[u8], steering: &RssSteering) -> Destination {
    if frame.len() < 14 {
        return Destination::Here;
    }
    match [frame[12], frame[13]] {
        [0x08, 0x06] => Destination::Everyone,
        [0x08, 0x00] => {
            let ip = &frame[14..];
            if ip.len() < 20 || ip[0] >> 4 != 4 {
                return Destination::Here;
            }
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let proto = ip[9];
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
            if (proto != 6 && proto != 17) || frag != 0 || ip.len() < ihl + 4 || ihl < 20 {
                return Destination::Here;
            }
            let src = Ipv4Address([ip[12], ip[13], ip[14], ip[15]]);
            let dst = Ipv4Address([ip[16], ip[17], ip[18], ip[19]]);
            let sport = u16::from_be_bytes([ip[ihl], ip[ihl + 1]]);
            let dport = u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]);
            Destination::Core(steering.queue_of(src, dst, sport, dport))
        }
        [0x86, 0xdd] => {
            let ip = &frame[14..];
            if ip.len() < 44 || ip[0] >> 4 != 6 {
                return Destination::Here;
            }
            match ip[6] {
                // TCP and UDP right after the fixed header (with extension headers, or
                // fragmented, they stay where they arrived).
                6 | 17 => {
                    let a = |at: usize| Ipv6Address(ip[at..at + 16].try_into().expect("16 bytes"));
                    let sport = u16::from_be_bytes([ip[40], ip[41]]);
                    let dport = u16::from_be_bytes([ip[42], ip[43]]);
                    Destination::Core(steering.queue_of(a(8), a(24), sport, dport))
                }
                // ICMPv6: neighbour discovery (router solicitation to redirect, types
                // 133-137) to every core, each keeping its own neighbour cache.
                58 if (133..=137).contains(&ip[40]) => Destination::Everyone,
                _ => Destination::Here,
            }
        }
        _ => Destination::Here,
    }
}

/// Counters of one core's steering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerStats {
    /// Frames handed to another core.
    pub steered_out: u64,
    /// Frames received from other cores.
    pub steered_in: u64,
    /// ARP frames copied to the other cores.
    pub broadcast: u64,
}

/// A device queue whose received frames are steered to their owner cores.
pub struct SteeredDevice<D: Device> {
    inner: D,
    core: u16,
    cores: u16,
    steering: RssSteering,
    mail: Arc<Mailboxes<D::Buf>>,
    scratch: Vec<D::Buf>,
    enabled: bool,
    /// This core's steering counters.
    pub stats: SteerStats,
}

impl<D: Device> SteeredDevice<D>
where
    D::Buf: Clone + Send,
{
    /// Steers what `inner` receives on core `core` of `cores` by `steering`, through
    /// `mail`. On when there is more than one core; see `set_enabled`.
    pub fn new(inner: D, core: u16, cores: u16, steering: RssSteering, mail: Arc<Mailboxes<D::Buf>>) -> Self {
        let burst = inner.caps().max_burst;
        SteeredDevice {
            inner,
            core,
            cores,
            steering,
            mail,
            scratch: Vec::with_capacity(burst),
            enabled: cores > 1,
            stats: SteerStats::default(),
        }
    }
    /// Steering on (software) or off (hardware RSS already delivers to the owner).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on && self.cores > 1;
    }
    /// The device queue underneath.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Device> Device for SteeredDevice<D>
where
    D::Buf: Clone + Send,
{
    type Buf = D::Buf;

    fn caps(&self) -> DeviceCaps {
        self.inner.caps()
    }
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<D::Buf>, max: usize) -> usize {
        if !self.enabled {
            return self.inner.rx_burst(now, out, max);
        }
        let mut n = 0;
        // Frames other cores sent us first.
        while n < max {
            match self.mail.boxes[self.core as usize].pop() {
                Some(b) => {
                    out.push(b);
                    n += 1;
                    self.stats.steered_in += 1;
                }
                None => break,
            }
        }
        if n >= max {
            return n;
        }
        self.inner.rx_burst(now, &mut self.scratch, max - n);
        for b in self.scratch.drain(..) {
            match classify(b.data(), &self.steering) {
                Destination::Core(c) if c != self.core && c < self.cores => {
                    self.stats.steered_out += 1;
                    self.mail.post(c, b);
                }
                Destination::Everyone if self.cores > 1 => {
                    for c in (0..self.cores).filter(|&c| c != self.core) {
                        self.stats.broadcast += 1;
                        self.mail.post(c, b.clone());
                    }
                    out.push(b);
                    n += 1;
                }
                _ => {
                    out.push(b);
                    n += 1;
                }
            }
        }
        n
    }
    fn alloc(&mut self) -> Option<D::Buf> {
        self.inner.alloc()
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<D::Buf>) -> usize {
        self.inner.tx_burst(now, bufs)
    }
    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toeplitz::SYMMETRIC_KEY;

    fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn both_directions_of_a_flow_have_one_owner() {
        let s = RssSteering::round_robin(&SYMMETRIC_KEY, 128, 2);
        let mut owners = [0u32; 2];
        for port in 40000..40100u16 {
            let a = classify(&tcp_frame([198, 18, 0, 1], [198, 18, 0, 2], port, 80), &s);
            let b = classify(&tcp_frame([198, 18, 0, 2], [198, 18, 0, 1], 80, port), &s);
            assert_eq!(a, b);
            let Destination::Core(c) = a else { panic!("{a:?}") };
            owners[c as usize] += 1;
        }
        assert!(
            owners[0] > 20 && owners[1] > 20,
            "flows spread over both cores: {owners:?}"
        );
    }

    #[test]
    fn arp_goes_to_everyone_and_junk_stays() {
        let s = RssSteering::round_robin(&SYMMETRIC_KEY, 128, 2);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(&arp, &s), Destination::Everyone);
        assert_eq!(classify(&[0u8; 5], &s), Destination::Here);
        let mut short = tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
        short.truncate(14 + 20 + 2);
        assert_eq!(classify(&short, &s), Destination::Here);
    }
}
