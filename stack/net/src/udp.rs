//! UDP sockets: bind, connect, send_to / recv_from with bounded queues.
//!
//! Datagrams are copied in and out of per-socket queues whose byte buffers are reused, so
//! a socket in steady state does not allocate. A full receive queue drops (and counts)
//! the new datagram; a full send queue refuses `send_to`.

use std::collections::VecDeque;

use hashbrown::HashMap;
use sluice_dev::{Device, PacketBuf};
use sluice_wire::{
    udp as wudp, Error, Icmpv4DstUnreachable, Instant, IpAddress, IpProtocol, Ipv4Repr, UdpPacket, UdpRepr,
};

pub use crate::endpoint::Endpoint;
use crate::icmp::IcmpError;
use crate::iface::{Interface, Io};
use crate::ready::ReadySocket;
use crate::slab::{Key, Slab};
use crate::stats::DropReason;

/// A UDP socket of an `Interface`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle(pub(crate) Key);

/// Why `udp_bind` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// Another socket is bound to the port.
    InUse,
    /// Port 0 was asked for and every ephemeral port is taken.
    NoEphemeralPort,
}

/// Why `udp_connect` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpConnectError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// The remote address is not a unicast address, or the port is 0.
    Unaddressable,
    /// The remote address is off-link and there is no gateway.
    NoRoute,
}

/// Why `udp_send_to` or `udp_send` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpSendError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// `udp_send` on a socket that is not connected.
    NotConnected,
    /// The destination is unspecified or multicast, or the port is 0.
    Unaddressable,
    /// The destination is off-link and there is no gateway.
    NoRoute,
    /// The datagram does not fit the MTU (Sluice does not fragment).
    TooLarge,
    /// The send queue is full: poll the interface and try again.
    QueueFull,
}

/// Why `udp_recv_from` or `udp_recv` returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpRecvError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// No datagram is queued.
    WouldBlock,
}

struct Datagram {
    peer: Endpoint,
    data: Vec<u8>,
}

pub(crate) struct UdpSocket {
    local_port: u16,
    remote: Option<Endpoint>,
    rx: VecDeque<Datagram>,
    tx: VecDeque<Datagram>,
    spare: Vec<Vec<u8>>,
    rx_cap: usize,
    tx_cap: usize,
    dropped: u64,
    error: Option<IcmpError>,
    /// Its last entry in the ready list.
    logged: Option<u64>,
}

impl UdpSocket {
    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(bytes);
        v
    }
    fn recycle(&mut self, v: Vec<u8>) {
        if self.spare.len() < self.rx_cap + self.tx_cap {
            self.spare.push(v);
        }
    }
}

/// The UDP sockets of an interface and the port table.
#[derive(Default)]
pub(crate) struct UdpSockets {
    slab: Slab<UdpSocket>,
    ports: HashMap<u16, Key>,
    /// Datagrams queued for sending over all sockets.
    tx_queued: usize,
}

impl UdpSockets {
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        (self.tx_queued > 0).then_some(Instant::ZERO)
    }
}

/// Picks a free port in `[lo, hi]`, starting from `*next` and moving it on.
pub(crate) fn pick_port(next: &mut u16, (lo, hi): (u16, u16), in_use: impl Fn(u16) -> bool) -> Option<u16> {
    let (lo, hi) = (lo.max(1), hi.max(lo.max(1)));
    let span = u32::from(hi - lo) + 1;
    for _ in 0..span {
        let port = if (lo..=hi).contains(next) { *next } else { lo };
        *next = if port == hi { lo } else { port + 1 };
        if !in_use(port) {
            return Some(port);
        }
    }
    None
}

impl Interface {
    /// Opens a UDP socket on `port` (0: an ephemeral port).
    pub fn udp_bind(&mut self, port: u16) -> Result<UdpHandle, BindError> {
        let port = if port == 0 {
            let ports = &self.udp.ports;
            pick_port(&mut self.next_ephemeral, self.cfg.ephemeral_ports, |p| {
                ports.contains_key(&p)
            })
            .ok_or(BindError::NoEphemeralPort)?
        } else if self.udp.ports.contains_key(&port) {
            return Err(BindError::InUse);
        } else {
            port
        };
        let key = self.udp.slab.insert(UdpSocket {
            local_port: port,
            remote: None,
            rx: VecDeque::with_capacity(self.cfg.udp_rx_queue),
            tx: VecDeque::with_capacity(self.cfg.udp_tx_queue),
            spare: Vec::new(),
            rx_cap: self.cfg.udp_rx_queue.max(1),
            tx_cap: self.cfg.udp_tx_queue.max(1),
            dropped: 0,
            error: None,
            logged: None,
        });
        self.udp.ports.insert(port, key);
        Ok(UdpHandle(key))
    }

    /// Connects the socket to one peer: `udp_send` goes there, and only its datagrams
    /// are received.
    pub fn udp_connect(&mut self, h: UdpHandle, remote: Endpoint) -> Result<(), UdpConnectError> {
        if !remote.addr.is_unicast() || remote.port == 0 {
            return Err(UdpConnectError::Unaddressable);
        }
        if !self.routable_any(remote.addr) {
            return Err(UdpConnectError::NoRoute);
        }
        let s = self.udp.slab.get_mut(h.0).ok_or(UdpConnectError::InvalidHandle)?;
        s.remote = Some(remote);
        // Datagrams from others, received before the connect, are not for this peer.
        while let Some(i) = s.rx.iter().position(|d| d.peer != remote) {
            if let Some(d) = s.rx.remove(i) {
                s.recycle(d.data);
            }
        }
        Ok(())
    }

    /// Queues a datagram to `to`; it leaves at the next `poll`.
    pub fn udp_send_to(&mut self, h: UdpHandle, data: &[u8], to: Endpoint) -> Result<(), UdpSendError> {
        let broadcast = to.addr.as_v4().is_some_and(|a| a.is_broadcast());
        if to.port == 0 || !(to.addr.is_unicast() || broadcast) {
            return Err(UdpSendError::Unaddressable);
        }
        if !self.routable_any(to.addr) {
            return Err(UdpSendError::NoRoute);
        }
        let ip_len = if to.addr.is_ipv6() {
            sluice_wire::ipv6::HEADER_LEN
        } else {
            sluice_wire::ipv4::HEADER_LEN
        };
        if data.len() + wudp::HEADER_LEN + ip_len > self.mtu {
            return Err(UdpSendError::TooLarge);
        }
        let s = self.udp.slab.get_mut(h.0).ok_or(UdpSendError::InvalidHandle)?;
        if s.tx.len() >= s.tx_cap {
            return Err(UdpSendError::QueueFull);
        }
        let data = s.buffer(data);
        s.tx.push_back(Datagram { peer: to, data });
        self.udp.tx_queued += 1;
        Ok(())
    }

    /// Queues a datagram to the connected peer.
    pub fn udp_send(&mut self, h: UdpHandle, data: &[u8]) -> Result<(), UdpSendError> {
        let s = self.udp.slab.get(h.0).ok_or(UdpSendError::InvalidHandle)?;
        let to = s.remote.ok_or(UdpSendError::NotConnected)?;
        self.udp_send_to(h, data, to)
    }

    /// Takes the oldest datagram: copies what fits into `buf` (the rest of a longer
    /// datagram is discarded) and returns the length copied and the sender.
    pub fn udp_recv_from(&mut self, h: UdpHandle, buf: &mut [u8]) -> Result<(usize, Endpoint), UdpRecvError> {
        let s = self.udp.slab.get_mut(h.0).ok_or(UdpRecvError::InvalidHandle)?;
        let d = s.rx.pop_front().ok_or(UdpRecvError::WouldBlock)?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        let peer = d.peer;
        s.recycle(d.data);
        Ok((n, peer))
    }

    /// `udp_recv_from` without the sender (for connected sockets).
    pub fn udp_recv(&mut self, h: UdpHandle, buf: &mut [u8]) -> Result<usize, UdpRecvError> {
        self.udp_recv_from(h, buf).map(|(n, _)| n)
    }

    /// The length of the next datagram, if one is queued.
    pub fn udp_peek_len(&self, h: UdpHandle) -> Option<usize> {
        self.udp.slab.get(h.0)?.rx.front().map(|d| d.data.len())
    }

    /// Whether a datagram is queued for `udp_recv_from`.
    pub fn udp_can_recv(&self, h: UdpHandle) -> bool {
        self.udp.slab.get(h.0).is_some_and(|s| !s.rx.is_empty())
    }

    /// Whether `udp_send_to` has room.
    pub fn udp_can_send(&self, h: UdpHandle) -> bool {
        self.udp.slab.get(h.0).is_some_and(|s| s.tx.len() < s.tx_cap)
    }

    /// Datagrams dropped because the receive queue was full.
    pub fn udp_dropped(&self, h: UdpHandle) -> u64 {
        self.udp.slab.get(h.0).map_or(0, |s| s.dropped)
    }

    /// The local port.
    pub fn udp_local_port(&self, h: UdpHandle) -> Option<u16> {
        self.udp.slab.get(h.0).map(|s| s.local_port)
    }

    /// The last ICMP error about a datagram this socket sent (port unreachable...),
    /// cleared by reading it.
    pub fn udp_take_error(&mut self, h: UdpHandle) -> Option<IcmpError> {
        self.udp.slab.get_mut(h.0)?.error.take()
    }

    /// Closes the socket; queued datagrams are discarded. False if the handle was stale.
    pub fn udp_close(&mut self, h: UdpHandle) -> bool {
        match self.udp.slab.remove(h.0) {
            Some(s) => {
                self.udp.ports.remove(&s.local_port);
                self.udp.tx_queued -= s.tx.len();
                true
            }
            None => false,
        }
    }

    pub(crate) fn process_udp<D: Device>(
        &mut self,
        io: &mut Io<'_, D>,
        buf: &D::Buf,
        (src, dst): (IpAddress, IpAddress),
        l4: core::ops::Range<usize>,
        (broadcast, v4): (bool, Option<Ipv4Repr>),
    ) {
        let bytes = &buf.data()[l4];
        // RFC 8200 8.1: over IPv6 the checksum is never optional.
        if dst.is_ipv6() && bytes.len() >= wudp::HEADER_LEN && bytes[6..8] == [0, 0] {
            return self.drop(DropReason::BadUdp);
        }
        let repr = match UdpRepr::parse(&UdpPacket::new_unchecked(bytes), src, dst, &self.caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return self.drop(DropReason::Checksum),
            Err(_) => return self.drop(DropReason::BadUdp),
        };
        self.stats.udp.datagrams_rx += 1;
        let peer = Endpoint::new(src, repr.src_port);
        let key = self.udp.ports.get(&repr.dst_port).copied();
        let sock = key.and_then(|k| self.udp.slab.get_mut(k));
        match sock {
            Some(s) if s.remote.is_none() || s.remote == Some(peer) => {
                if s.rx.len() >= s.rx_cap {
                    s.dropped += 1;
                    return self.drop(DropReason::UdpQueueFull);
                }
                let data = s.buffer(repr.payload);
                s.rx.push_back(Datagram { peer, data });
                self.ready
                    .push(ReadySocket::Udp(UdpHandle(key.expect("found"))), &mut s.logged);
            }
            _ => {
                self.drop(DropReason::NoSocket);
                // RFC 1122 3.2.2.1 and 4.1.3.1: port unreachable, never for broadcasts.
                match v4 {
                    Some(ip) if !broadcast => {
                        self.send_unreachable(io, Icmpv4DstUnreachable::PortUnreachable, &ip, bytes)
                    }
                    Some(_) => {}
                    // RFC 4443 3.1: code 4, port unreachable.
                    None => self.send_unreachable_v6(io, buf, 4),
                }
            }
        }
    }

    pub(crate) fn udp_icmp_error(
        &mut self,
        local_port: u16,
        remote: IpAddress,
        remote_port: u16,
        err: IcmpError,
    ) -> bool {
        let Some(&key) = self.udp.ports.get(&local_port) else {
            return false;
        };
        let Some(s) = self.udp.slab.get_mut(key) else {
            return false;
        };
        if s.remote.is_some_and(|r| r != Endpoint::new(remote, remote_port)) {
            return false;
        }
        s.error = Some(err);
        self.ready.push(ReadySocket::Udp(UdpHandle(key)), &mut s.logged);
        true
    }

    /// Sends every queued datagram.
    pub(crate) fn dispatch_udp<D: Device>(&mut self, io: &mut Io<'_, D>) {
        if self.udp.tx_queued == 0 {
            return;
        }
        for i in 0..self.udp.slab.capacity_index() {
            let Some(key) = self.udp.slab.key_at(i) else {
                continue;
            };
            while let Some((port, d)) = self
                .udp
                .slab
                .get_mut(key)
                .and_then(|s| Some((s.local_port, s.tx.pop_front()?)))
            {
                self.udp.tx_queued -= 1;
                self.send_udp(io, port, d.peer, &d.data);
                if let Some(s) = self.udp.slab.get_mut(key) {
                    s.recycle(d.data);
                    if s.tx.is_empty() {
                        self.ready.push(ReadySocket::Udp(UdpHandle(key)), &mut s.logged);
                    }
                }
            }
        }
    }

    fn send_udp<D: Device>(&mut self, io: &mut Io<'_, D>, src_port: u16, to: Endpoint, payload: &[u8]) {
        let Some(mut buf) = io.dev.alloc() else {
            return self.drop(DropReason::NoBuffer);
        };
        match buf.append(payload.len()) {
            Some(room) => room.copy_from_slice(payload),
            None => return self.drop(DropReason::NoBuffer),
        }
        if buf.prepend(wudp::HEADER_LEN).is_none() {
            return self.drop(DropReason::NoBuffer);
        }
        let src = match to.addr {
            IpAddress::V4(_) => IpAddress::V4(self.address()),
            IpAddress::V6(a) => match self.source_v6(a) {
                Some(s) => IpAddress::V6(s),
                None => return self.drop(DropReason::NoRoute),
            },
        };
        let mut packet = UdpPacket::new_unchecked(buf.data_mut());
        packet.set_src_port(src_port);
        packet.set_dst_port(to.port);
        packet.set_len((wudp::HEADER_LEN + payload.len()) as u16);
        // The NIC completes the sum when it offloads it (either family: `send_eth`).
        if self.caps.udp.tx() {
            packet.fill_checksum(src, to.addr);
        } else {
            packet.fill_pseudo_header_checksum(src, to.addr);
        }
        self.stats.udp.datagrams_tx += 1;
        self.send_ip_any(io, buf, (src, to.addr), IpProtocol::Udp, (0, None));
    }
}
