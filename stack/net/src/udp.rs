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

use crate::config::InterfaceConfig;
use crate::egress::{Egress, Io};
use crate::endpoint::pick_port;
pub use crate::endpoint::Endpoint;
use crate::icmp::IcmpError;
use crate::ready::ReadyList;
use crate::ready::ReadySocket;
pub use crate::ready::UdpHandle;
use crate::slab::{Key, Slab};
use crate::stats::DropReason;

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

struct Sock {
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

impl Sock {
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
pub(crate) struct UdpSockets {
    slab: Slab<Sock>,
    ports: HashMap<u16, Key>,
    /// Datagrams queued for sending over all sockets.
    tx_queued: usize,
    /// Next ephemeral port to try.
    next_ephemeral: u16,
}

impl UdpSockets {
    pub(crate) fn new(next_ephemeral: u16) -> UdpSockets {
        UdpSockets {
            slab: Slab::default(),
            ports: HashMap::default(),
            tx_queued: 0,
            next_ephemeral,
        }
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        (self.tx_queued > 0).then_some(Instant::ZERO)
    }
}

impl UdpSockets {
    /// Opens a UDP socket on `port` (0: an ephemeral port).
    pub(crate) fn bind(&mut self, cfg: &InterfaceConfig, port: u16) -> Result<UdpHandle, BindError> {
        let port = if port == 0 {
            let ports = &self.ports;
            pick_port(&mut self.next_ephemeral, cfg.ephemeral_ports, |p| {
                ports.contains_key(&p)
            })
            .ok_or(BindError::NoEphemeralPort)?
        } else if self.ports.contains_key(&port) {
            return Err(BindError::InUse);
        } else {
            port
        };
        let key = self.slab.insert(Sock {
            local_port: port,
            remote: None,
            rx: VecDeque::with_capacity(cfg.udp_rx_queue),
            tx: VecDeque::with_capacity(cfg.udp_tx_queue),
            spare: Vec::new(),
            rx_cap: cfg.udp_rx_queue.max(1),
            tx_cap: cfg.udp_tx_queue.max(1),
            dropped: 0,
            error: None,
            logged: None,
        });
        self.ports.insert(port, key);
        Ok(UdpHandle(key))
    }

    /// The status of socket `h`, `None` if the handle is stale.
    #[inline]
    pub(crate) fn status(&self, h: UdpHandle) -> Option<UdpStatus<'_>> {
        self.slab.get(h.0).map(|sock| UdpStatus { sock })
    }

    /// The view of socket `h`, `None` if the handle is stale.
    #[inline]
    pub(crate) fn socket<'a>(&'a mut self, eg: &'a Egress, h: UdpHandle) -> Option<UdpSocket<'a>> {
        self.slab.get(h.0)?;
        Some(UdpSocket {
            udp: self,
            eg,
            key: h.0,
        })
    }

    pub(crate) fn process<D: Device>(
        &mut self,
        eg: &mut Egress,
        io: &mut Io<'_, D>,
        ready: &mut ReadyList,
        buf: &D::Buf,
        (src, dst): (IpAddress, IpAddress),
        l4: core::ops::Range<usize>,
        (broadcast, v4): (bool, Option<Ipv4Repr>),
    ) {
        let bytes = &buf.data()[l4];
        // RFC 8200 8.1: over IPv6 the checksum is never optional.
        if dst.is_ipv6() && bytes.len() >= wudp::HEADER_LEN && bytes[6..8] == [0, 0] {
            return eg.drop(DropReason::BadUdp);
        }
        let repr = match UdpRepr::parse(&UdpPacket::new_unchecked(bytes), src, dst, &eg.caps) {
            Ok(r) => r,
            Err(Error::Checksum) => return eg.drop(DropReason::Checksum),
            Err(_) => return eg.drop(DropReason::BadUdp),
        };
        eg.stats.udp.datagrams_rx += 1;
        let peer = Endpoint::new(src, repr.src_port);
        let key = self.ports.get(&repr.dst_port).copied();
        let sock = key.and_then(|k| self.slab.get_mut(k));
        match sock {
            Some(s) if s.remote.is_none() || s.remote == Some(peer) => {
                if s.rx.len() >= s.rx_cap {
                    s.dropped += 1;
                    return eg.drop(DropReason::UdpQueueFull);
                }
                let data = s.buffer(repr.payload);
                s.rx.push_back(Datagram { peer, data });
                ready.push(ReadySocket::Udp(UdpHandle(key.expect("found"))), &mut s.logged);
            }
            _ => {
                eg.drop(DropReason::NoSocket);
                // RFC 1122 3.2.2.1 and 4.1.3.1: port unreachable, never for broadcasts.
                match v4 {
                    Some(ip) if !broadcast => {
                        eg.send_unreachable(io, Icmpv4DstUnreachable::PortUnreachable, &ip, bytes)
                    }
                    Some(_) => {}
                    // RFC 4443 3.1: code 4, port unreachable.
                    None => eg.send_unreachable_v6(io, buf, 4),
                }
            }
        }
    }

    /// Hands an ICMP error about a datagram sent from `local_port` to `remote` to the
    /// socket that sent it (its next call reports it); false if none.
    pub(crate) fn icmp_error(
        &mut self,
        ready: &mut ReadyList,
        local_port: u16,
        remote: Endpoint,
        err: IcmpError,
    ) -> bool {
        let Some(&key) = self.ports.get(&local_port) else {
            return false;
        };
        let Some(s) = self.slab.get_mut(key) else {
            return false;
        };
        if s.remote.is_some_and(|r| r != remote) {
            return false;
        }
        s.error = Some(err);
        ready.push(ReadySocket::Udp(UdpHandle(key)), &mut s.logged);
        true
    }

    /// Sends every queued datagram.
    pub(crate) fn dispatch<D: Device>(&mut self, eg: &mut Egress, io: &mut Io<'_, D>, ready: &mut ReadyList) {
        if self.tx_queued == 0 {
            return;
        }
        for i in 0..self.slab.capacity_index() {
            let Some(key) = self.slab.key_at(i) else {
                continue;
            };
            while let Some(s) = self.slab.get_mut(key) {
                let Some(d) = s.tx.pop_front() else {
                    break;
                };
                self.tx_queued -= 1;
                send_udp(eg, io, s.local_port, d.peer, &d.data);
                s.recycle(d.data);
                if s.tx.is_empty() {
                    ready.push(ReadySocket::Udp(UdpHandle(key)), &mut s.logged);
                }
            }
        }
    }
}

fn send_udp<D: Device>(eg: &mut Egress, io: &mut Io<'_, D>, src_port: u16, to: Endpoint, payload: &[u8]) {
    let Some(mut buf) = eg.new_frame(io, payload.len(), |room| room.copy_from_slice(payload)) else {
        return;
    };
    if buf.prepend(wudp::HEADER_LEN).is_none() {
        return eg.drop(DropReason::NoBuffer);
    }
    let src = match to.addr {
        IpAddress::V4(_) => IpAddress::V4(eg.address()),
        IpAddress::V6(a) => match eg.source_v6(a) {
            Some(s) => IpAddress::V6(s),
            None => return eg.drop(DropReason::NoRoute),
        },
    };
    let mut packet = UdpPacket::new_unchecked(buf.data_mut());
    packet.set_src_port(src_port);
    packet.set_dst_port(to.port);
    packet.set_len((wudp::HEADER_LEN + payload.len()) as u16);
    // The NIC completes the sum when it offloads it (either family: `send_eth`).
    if eg.caps.udp.tx() {
        packet.fill_checksum(src, to.addr);
    } else {
        packet.fill_pseudo_header_checksum(src, to.addr);
    }
    eg.stats.udp.datagrams_tx += 1;
    eg.send_ip_any(io, buf, (src, to.addr), IpProtocol::Udp, (0, None));
}

/// One UDP socket of an `Interface`, borrowed from it (`Interface::udp`): what the
/// application does with the socket.
pub struct UdpSocket<'a> {
    udp: &'a mut UdpSockets,
    eg: &'a Egress,
    key: Key,
}

impl UdpSocket<'_> {
    fn sock(&self) -> &Sock {
        self.udp
            .slab
            .get(self.key)
            .expect("checked live by Interface::udp")
    }

    fn sock_mut(&mut self) -> &mut Sock {
        self.udp
            .slab
            .get_mut(self.key)
            .expect("checked live by Interface::udp")
    }

    /// Connects the socket to one peer: `send` goes there, and only its datagrams are
    /// received.
    pub fn connect(&mut self, remote: impl Into<Endpoint>) -> Result<(), UdpConnectError> {
        let remote = remote.into();
        if !remote.addr.is_unicast() || remote.port == 0 {
            return Err(UdpConnectError::Unaddressable);
        }
        if !self.eg.routable_any(remote.addr) {
            return Err(UdpConnectError::NoRoute);
        }
        let s = self.sock_mut();
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
    pub fn send_to(&mut self, data: &[u8], to: impl Into<Endpoint>) -> Result<(), UdpSendError> {
        let to = to.into();
        let broadcast = to.addr.as_v4().is_some_and(|a| a.is_broadcast());
        if to.port == 0 || !(to.addr.is_unicast() || broadcast) {
            return Err(UdpSendError::Unaddressable);
        }
        if !self.eg.routable_any(to.addr) {
            return Err(UdpSendError::NoRoute);
        }
        let ip_len = if to.addr.is_ipv6() {
            sluice_wire::ipv6::HEADER_LEN
        } else {
            sluice_wire::ipv4::HEADER_LEN
        };
        if data.len() + wudp::HEADER_LEN + ip_len > self.eg.mtu {
            return Err(UdpSendError::TooLarge);
        }
        let s = self.sock_mut();
        if s.tx.len() >= s.tx_cap {
            return Err(UdpSendError::QueueFull);
        }
        let data = s.buffer(data);
        s.tx.push_back(Datagram { peer: to, data });
        self.udp.tx_queued += 1;
        Ok(())
    }

    /// Queues a datagram to the connected peer.
    pub fn send(&mut self, data: &[u8]) -> Result<(), UdpSendError> {
        let to = self.sock().remote.ok_or(UdpSendError::NotConnected)?;
        self.send_to(data, to)
    }

    /// Takes the oldest datagram: copies what fits into `buf` (the rest of a longer
    /// datagram is discarded) and returns the length copied and the sender.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, Endpoint), UdpRecvError> {
        let s = self.sock_mut();
        let d = s.rx.pop_front().ok_or(UdpRecvError::WouldBlock)?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        let peer = d.peer;
        s.recycle(d.data);
        Ok((n, peer))
    }

    /// `recv_from` without the sender (for connected sockets).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, UdpRecvError> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// The socket's queues and addresses.
    pub fn status(&self) -> UdpStatus<'_> {
        UdpStatus { sock: self.sock() }
    }

    /// The last ICMP error about a datagram this socket sent (port unreachable...),
    /// cleared by reading it.
    pub fn take_error(&mut self) -> Option<IcmpError> {
        self.sock_mut().error.take()
    }

    /// Closes the socket; queued datagrams are discarded, and the handle is stale from
    /// now on.
    pub fn close(self) {
        if let Some(s) = self.udp.slab.remove(self.key) {
            self.udp.ports.remove(&s.local_port);
            self.udp.tx_queued -= s.tx.len();
        }
    }
}

/// A UDP socket's status, through a shared borrow of the interface
/// (`Interface::udp_status`, `UdpSocket::status`).
#[derive(Clone, Copy)]
pub struct UdpStatus<'a> {
    sock: &'a Sock,
}

impl UdpStatus<'_> {
    /// The length of the next datagram, if one is queued.
    pub fn peek_len(&self) -> Option<usize> {
        self.sock.rx.front().map(|d| d.data.len())
    }

    /// Whether a datagram is queued for `recv_from`.
    pub fn can_recv(&self) -> bool {
        !self.sock.rx.is_empty()
    }

    /// Whether `send_to` has room.
    pub fn can_send(&self) -> bool {
        let s = self.sock;
        s.tx.len() < s.tx_cap
    }

    /// Datagrams dropped because the receive queue was full.
    pub fn dropped(&self) -> u64 {
        self.sock.dropped
    }

    /// The local port.
    pub fn local_port(&self) -> u16 {
        self.sock.local_port
    }

    /// The peer of a connected socket.
    pub fn remote(&self) -> Option<Endpoint> {
        self.sock.remote
    }
}
