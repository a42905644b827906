//! TCP socket glue: the 4-tuple table, listeners, ISNs, and segment I/O for the TCBs.

use core::hash::Hasher;

use siphasher::sip::SipHasher24;
use sluice_dev::Device;
use sluice_wire::{Instant, Ipv4Address, Ipv4Repr};

use crate::config::IsnKey;
use crate::icmp::IcmpError;
use crate::iface::{Interface, Io};
use crate::stats::DropReason;

/// A keyed SipHash-2-4 of `data`, truncated to 32 bits.
pub(crate) fn keyed_hash(key: &IsnKey, data: &[u8]) -> u32 {
    let mut h = SipHasher24::new_with_key(&key.0);
    h.write(data);
    h.finish() as u32
}

#[derive(Default)]
pub(crate) struct TcpSockets {}

impl Interface {
    pub(crate) fn tcp_poll_at(&self) -> Option<Instant> {
        None
    }

    pub(crate) fn process_tcp<D: Device>(
        &mut self,
        _io: &mut Io<'_, D>,
        _buf: &D::Buf,
        _ip: Ipv4Repr,
        _l4: core::ops::Range<usize>,
    ) {
        self.drop(DropReason::NoSocket);
    }

    pub(crate) fn tcp_icmp_error(
        &mut self,
        _now: Instant,
        _local_port: u16,
        _remote: Ipv4Address,
        _remote_port: u16,
        _seq: u32,
        _err: IcmpError,
    ) -> bool {
        false
    }

    pub(crate) fn dispatch_tcp<D: Device>(&mut self, _io: &mut Io<'_, D>) {}
}
