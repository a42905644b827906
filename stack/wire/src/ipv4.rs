//! IPv4 (RFC 791): addresses, CIDR prefixes, and the header.
//!
//! Options are accepted and skipped (IHL > 5 is fine, the options are not interpreted).
//! `Ipv4Repr::parse` returns `Err(Fragmented)` for a fragment, so that the caller
//! reassembles it (`sluice-net`'s reassembly table) before anything reads its payload. Trailing bytes after `total_len` (Ethernet padding) are ignored.

use core::fmt;

use crate::checksum::{self, ChecksumCaps};
use crate::error::{Error, Result};

/// An IPv4 address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    pub const UNSPECIFIED: Ipv4Address = Ipv4Address([0; 4]);
    pub const BROADCAST: Ipv4Address = Ipv4Address([255; 4]);

    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Ipv4Address {
        Ipv4Address([a, b, c, d])
    }
    /// Reads an address from the first four bytes of `data`; panics if shorter.
    pub fn from_bytes(data: &[u8]) -> Ipv4Address {
        Ipv4Address([data[0], data[1], data[2], data[3]])
    }
    pub const fn from_u32(v: u32) -> Ipv4Address {
        Ipv4Address(v.to_be_bytes())
    }
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
    /// The limited broadcast address 255.255.255.255.
    pub const fn is_broadcast(&self) -> bool {
        self.to_u32() == u32::MAX
    }
    /// 224.0.0.0/4.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 0xe0
    }
    /// 0.0.0.0.
    pub const fn is_unspecified(&self) -> bool {
        self.to_u32() == 0
    }
    /// 127.0.0.0/8.
    pub const fn is_loopback(&self) -> bool {
        self.0[0] == 127
    }
    /// 169.254.0.0/16.
    pub const fn is_link_local(&self) -> bool {
        self.0[0] == 169 && self.0[1] == 254
    }
    /// Neither broadcast, multicast nor unspecified.
    pub const fn is_unicast(&self) -> bool {
        !(self.is_broadcast() || self.is_multicast() || self.is_unspecified())
    }
}

impl From<[u8; 4]> for Ipv4Address {
    fn from(b: [u8; 4]) -> Self {
        Ipv4Address(b)
    }
}

impl fmt::Display for Ipv4Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{}.{}.{}.{}", b[0], b[1], b[2], b[3])
    }
}

/// An IPv4 address with a prefix length, e.g. an interface's `10.0.0.2/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Address,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// # Panics
    /// If `prefix_len > 32` (a configuration error, not packet input).
    pub const fn new(address: Ipv4Address, prefix_len: u8) -> Ipv4Cidr {
        assert!(prefix_len <= 32, "IPv4 prefix length above 32");
        Ipv4Cidr { address, prefix_len }
    }
    pub const fn address(&self) -> Ipv4Address {
        self.address
    }
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// E.g. 255.255.255.0 for /24.
    pub const fn netmask(&self) -> Ipv4Address {
        Ipv4Address::from_u32(self.mask())
    }
    const fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - n),
        }
    }
    /// The network address (host bits zero).
    pub const fn network(&self) -> Ipv4Address {
        Ipv4Address::from_u32(self.address.to_u32() & self.mask())
    }
    /// The directed broadcast address, or `None` for /31 and /32 (RFC 3021), which have
    /// none.
    pub const fn broadcast(&self) -> Option<Ipv4Address> {
        if self.prefix_len >= 31 {
            None
        } else {
            Some(Ipv4Address::from_u32(self.address.to_u32() | !self.mask()))
        }
    }
    /// Whether `addr` is inside this prefix.
    pub const fn contains(&self, addr: Ipv4Address) -> bool {
        (addr.to_u32() ^ self.address.to_u32()) & self.mask() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// The IPv4 protocol field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after `check_len`.
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Validates the length fields against the buffer:
    /// - shorter than 20 bytes, or than IHL or total length say: `Truncated`;
    /// - IHL below 5, or total length below the header length: `Malformed`.
    ///
    /// A buffer longer than the total length (Ethernet padding) is fine.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        let total_len = usize::from(self.total_len());
        if header_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if header_len > len {
            Err(Error::Truncated)
        } else if total_len < header_len {
            Err(Error::Malformed)
        } else if total_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn get_u16(&self, r: core::ops::Range<usize>) -> u16 {
        let d = &self.buffer.as_ref()[r];
        u16::from_be_bytes([d[0], d[1]])
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// IHL in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    pub fn total_len(&self) -> u16 {
        self.get_u16(field::LENGTH)
    }
    pub fn ident(&self) -> u16 {
        self.get_u16(field::IDENT)
    }
    pub fn dont_frag(&self) -> bool {
        self.get_u16(field::FLG_OFF) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.get_u16(field::FLG_OFF) & FLAG_MF != 0
    }
    /// The fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.get_u16(field::FLG_OFF) & OFFSET_MASK) << 3
    }
    /// MF set or a nonzero offset.
    pub fn is_fragment(&self) -> bool {
        self.get_u16(field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::SRC_ADDR])
    }
    pub fn dst_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::DST_ADDR])
    }
    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Whether the header (options included) sums to zero. Call after `check_len`.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }
    /// The bytes between the header and `total_len`; trailing padding is not included.
    pub fn payload(&self) -> &[u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload, borrowed for the buffer's lifetime rather than the view's.
    pub fn payload_ref(&self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }
    /// Sets IHL from a length in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & !0x03) | (v & 0x03);
    }
    pub fn set_total_len(&mut self, v: u16) {
        self.set_u16(field::LENGTH, v)
    }
    pub fn set_ident(&mut self, v: u16) {
        self.set_u16(field::IDENT, v)
    }
    /// Writes the flags and the offset (in bytes, a multiple of 8) together.
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.set_u16(field::FLG_OFF, v)
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.into();
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v)
    }
    pub fn set_src_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.0);
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.0);
    }
    /// Computes and writes the header checksum (over IHL * 4 bytes).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(!sum);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// Default TTL for emitted packets (RFC 1700 recommends 64).
pub const DEFAULT_TTL: u8 = 64;

/// The IPv4 header fields Sluice uses.
///
/// Emit writes IHL 5 (no options), DSCP/ECN 0, identification 0 with DF set (RFC 6864:
/// atomic datagrams need no unique ID). Parse drops options, DSCP/ECN and the ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Address,
    pub dst_addr: Ipv4Address,
    pub protocol: IpProtocol,
    /// Bytes after the header: `total_len - header_len`.
    pub payload_len: usize,
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Parses a header. Checks, in order: lengths (`Truncated`/`Malformed`), version 4
    /// (`Malformed`), the checksum if `caps.ipv4.rx()` (`Checksum`), and that the packet
    /// is not a fragment (`Fragmented`).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, caps: &ChecksumCaps) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if caps.ipv4.rx() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        if packet.is_fragment() {
            return Err(Error::Fragmented);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header (not the payload); fills the checksum if `caps.ipv4.tx()`, else
    /// leaves it zero for the NIC.
    ///
    /// # Panics
    /// If the buffer is shorter than `HEADER_LEN`. `payload_len` must fit the 16-bit total
    /// length; it is truncated otherwise.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>, caps: &ChecksumCaps) {
        self.emit_with_tos(packet, caps, 0)
    }

    /// As `emit`, with the DS field (DSCP and ECN, the old TOS byte) set to `tos`.
    pub fn emit_with_tos<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        caps: &ChecksumCaps,
        tos: u8,
    ) {
        // Built in one piece, and the checksum summed from the fields rather than read
        // back from the bytes just written (a load over several smaller stores stalls).
        let total = self.buffer_len() as u16;
        let (s, d) = (self.src_addr.0, self.dst_addr.0);
        let (ttl, proto) = (self.ttl, u8::from(self.protocol));
        let check = if caps.ipv4.tx() {
            let word = |a: u8, b: u8| u64::from(u16::from_be_bytes([a, b]));
            let acc = 0x4500
                + u64::from(tos)
                + u64::from(total)
                + 0x4000 // DF, ident 0
                + word(ttl, proto)
                + word(s[0], s[1])
                + word(s[2], s[3])
                + word(d[0], d[1])
                + word(d[2], d[3]);
            !checksum::fold_sum(acc)
        } else {
            0
        };
        let [t0, t1] = total.to_be_bytes();
        let [c0, c1] = check.to_be_bytes();
        let header: [u8; HEADER_LEN] = [
            0x45, tos, t0, t1, 0, 0, 0x40, 0, ttl, proto, c0, c1, s[0], s[1], s[2], s[3], d[0], d[1], d[2],
            d[3],
        ];
        packet.buffer.as_mut()[..HEADER_LEN].copy_from_slice(&header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::tests::naive_sum;
    use proptest::prelude::*;

    // An ICMP echo request from 192.168.1.100 to 192.168.1.1: IPv4 header (checksum
    // 0xa4f7), 8 bytes of ICMP, then 4 bytes of Ethernet padding beyond total_len.
    const PACKET: [u8; 32] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0xa4, 0xf7, 0xc0, 0xa8, 0x01, 0x64, 0xc0,
        0xa8, 0x01, 0x01, // header
        0x08, 0x00, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x00, // ICMP echo request
        0xde, 0xad, 0xbe, 0xef, // padding
    ];

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Address::new(192, 168, 1, 100),
            dst_addr: Ipv4Address::new(192, 168, 1, 1),
            protocol: IpProtocol::Icmp,
            payload_len: 8,
            ttl: 64,
        }
    }

    fn caps() -> ChecksumCaps {
        ChecksumCaps::default()
    }

    #[test]
    fn known_bytes_checksum_is_right() {
        assert_eq!(naive_sum(&PACKET[..20]), 0xffff);
        let mut h = PACKET;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(!naive_sum(&h[..20]), 0xa4f7);
    }

    #[test]
    fn parse_known_bytes_ignores_padding() {
        let packet = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, &caps()), Ok(repr()));
        assert_eq!(packet.payload(), &PACKET[20..28]);
        assert_eq!(packet.ident(), 0x1234);
        assert!(packet.dont_frag());
    }

    #[test]
    fn emit_known_bytes() {
        let mut buf = [0u8; 28];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut packet, &caps());
        packet.payload_mut().copy_from_slice(&PACKET[20..28]);
        assert_eq!(naive_sum(&buf[..20]), 0xffff);
        // Same as the capture except the identification, which Sluice leaves zero.
        let mut expected = PACKET;
        expected[4] = 0;
        expected[5] = 0;
        expected[10] = 0xb7;
        expected[11] = 0x2b;
        assert_eq!(naive_sum(&expected[..20]), 0xffff);
        assert_eq!(&buf[..], &expected[..28]);
    }

    #[test]
    fn emit_without_checksum_leaves_zero() {
        let mut buf = [0xffu8; 28];
        repr().emit(
            &mut Ipv4Packet::new_unchecked(&mut buf[..]),
            &ChecksumCaps::ignored(),
        );
        assert_eq!(&buf[10..12], &[0, 0]);
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, &caps()), Err(Error::Checksum));
        assert_eq!(Ipv4Repr::parse(&packet, &ChecksumCaps::ignored()), Ok(repr()));
    }

    /// Sets a header field and refreshes the checksum, so the case under test is the only
    /// thing wrong with the packet.
    fn with(f: impl FnOnce(&mut [u8])) -> [u8; 32] {
        let mut b = PACKET;
        f(&mut b);
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if (20..=32).contains(&ihl) {
            b[10] = 0;
            b[11] = 0;
            let c = !naive_sum(&b[..ihl]);
            b[10..12].copy_from_slice(&c.to_be_bytes());
        }
        b
    }

    fn parse(b: &[u8]) -> Result<Ipv4Repr> {
        Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b), &caps())
    }

    #[test]
    fn malformed_cases() {
        assert_eq!(parse(&PACKET[..19]), Err(Error::Truncated));
        assert_eq!(parse(&PACKET[..27]), Err(Error::Truncated)); // total_len 28
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(parse(&with(|b| b[0] = 0x65)), Err(Error::Malformed)); // version 6
        assert_eq!(parse(&with(|b| b[0] = 0x44)), Err(Error::Malformed)); // IHL 4
        assert_eq!(parse(&with(|b| b[0] = 0x49)), Err(Error::Truncated)); // IHL 9 > 32 bytes
        assert_eq!(parse(&with(|b| b[3] = 19)), Err(Error::Malformed)); // total < header
        assert_eq!(parse(&with(|b| b[3] = 33)), Err(Error::Truncated)); // total > buffer
        assert_eq!(parse(&with(|b| b[6] = 0x20)), Err(Error::Fragmented)); // MF
        assert_eq!(parse(&with(|b| b[7] = 0x01)), Err(Error::Fragmented)); // offset 8
        assert_eq!(parse(&with(|b| b[6] = 0x00)), Ok(repr())); // DF clear is fine
        let mut bad = PACKET;
        bad[8] = 63;
        assert_eq!(parse(&bad), Err(Error::Checksum));
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6: one 4-byte option (NOP NOP NOP EOL), total length 32.
        let mut b = [0u8; 32];
        b[..20].copy_from_slice(&PACKET[..20]);
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        b[24..32].copy_from_slice(&PACKET[20..28]);
        b[0] = 0x46;
        b[3] = 32;
        b[10] = 0;
        b[11] = 0;
        let c = !naive_sum(&b[..24]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        let packet = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(packet.options(), &[1, 1, 1, 0]);
        assert_eq!(packet.payload(), &PACKET[20..28]);
        assert_eq!(Ipv4Repr::parse(&packet, &caps()), Ok(repr()));
    }

    #[test]
    fn address_helpers() {
        assert!(Ipv4Address::BROADCAST.is_broadcast());
        assert!(Ipv4Address::new(224, 0, 0, 1).is_multicast());
        assert!(Ipv4Address::new(239, 255, 255, 250).is_multicast());
        assert!(!Ipv4Address::new(240, 0, 0, 1).is_multicast());
        assert!(Ipv4Address::UNSPECIFIED.is_unspecified());
        assert!(Ipv4Address::new(10, 1, 2, 3).is_unicast());
        assert!(Ipv4Address::new(127, 0, 0, 1).is_loopback());
        assert_eq!(Ipv4Address::from_u32(0x0a000001), Ipv4Address::new(10, 0, 0, 1));
    }

    #[test]
    fn display() {
        struct Buf([u8; 32], usize);
        impl fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
                self.1 += s.len();
                Ok(())
            }
        }
        let mut b = Buf([0; 32], 0);
        let cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 10, 254), 24);
        fmt::write(&mut b, format_args!("{cidr}")).unwrap();
        assert_eq!(&b.0[..b.1], b"192.168.10.254/24");
    }

    #[test]
    fn cidr() {
        let c = Ipv4Cidr::new(Ipv4Address::new(10, 0, 3, 7), 22);
        assert_eq!(c.netmask(), Ipv4Address::new(255, 255, 252, 0));
        assert_eq!(c.network(), Ipv4Address::new(10, 0, 0, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Address::new(10, 0, 3, 255)));
        assert!(c.contains(Ipv4Address::new(10, 0, 0, 1)));
        assert!(c.contains(Ipv4Address::new(10, 0, 3, 255)));
        assert!(!c.contains(Ipv4Address::new(10, 0, 4, 0)));
        let all = Ipv4Cidr::new(Ipv4Address::UNSPECIFIED, 0);
        assert_eq!(all.netmask(), Ipv4Address::UNSPECIFIED);
        assert!(all.contains(Ipv4Address::new(8, 8, 8, 8)));
        let host = Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 1), 32);
        assert_eq!(host.netmask(), Ipv4Address::BROADCAST);
        assert_eq!(host.broadcast(), None);
        assert!(host.contains(Ipv4Address::new(10, 0, 0, 1)));
        assert!(!host.contains(Ipv4Address::new(10, 0, 0, 2)));
        assert_eq!(Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 0), 31).broadcast(), None);
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..100,
            any::<u8>(),
        )
            .prop_map(|(s, d, p, len, ttl)| Ipv4Repr {
                src_addr: Ipv4Address(s),
                dst_addr: Ipv4Address(d),
                protocol: IpProtocol::from(p),
                payload_len: len,
                ttl,
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), pad in 0usize..20) {
            let mut buf = [0u8; 160];
            let len = repr.buffer_len();
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..len]), &caps());
            let packet = Ipv4Packet::new_checked(&buf[..len + pad]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&packet, &caps()), Ok(repr));
            prop_assert_eq!(packet.payload().len(), repr.payload_len);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut data in proptest::collection::vec(any::<u8>(), 0..80),
            plausible in any::<bool>(),
        ) {
            if plausible && data.len() >= 20 {
                // Make version/IHL/length/flags plausible so parsing gets further.
                data[0] = 0x45 + (data[0] % 3);
                data[2] = 0;
                data[3] %= data.len() as u8 + 1;
                data[6] &= 0x40;
                data[7] = 0;
            }
            let lax = ChecksumCaps::ignored();
            let packet = Ipv4Packet::new_unchecked(&data[..]);
            if let Ok(repr) = Ipv4Repr::parse(&packet, &lax) {
                let mut out = [0u8; 160];
                let len = repr.buffer_len();
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..len]), &caps());
                prop_assert_eq!(
                    Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&out[..len]), &caps()),
                    Ok(repr)
                );
            }
            let _ = Ipv4Repr::parse(&packet, &caps());
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.payload(), p.options(), p.verify_checksum());
            }
        }
    }
}
