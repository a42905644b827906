//! UDP (RFC 768) over IPv4.
//!
//! The view's buffer is the IPv4 payload. The length field must cover at least the header
//! and no more than the buffer; bytes beyond it are ignored. A checksum field of zero
//! means "no checksum" and is accepted; an emitted checksum that computes to zero is sent
//! as 0xffff.

use crate::checksum::{self, ChecksumCaps};
use crate::error::{Error, Result};
use crate::ip::{self, IpAddress};
use crate::ipv4::IpProtocol;
#[cfg(test)]
use crate::ipv4::Ipv4Address;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// The length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after `check_len`.
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Shorter than 8 bytes or than the length field: `Truncated`; length field below 8:
    /// `Malformed`.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if field_len > len {
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

    pub fn src_port(&self) -> u16 {
        self.get_u16(field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        self.get_u16(field::DST_PORT)
    }
    /// The length field: header plus payload.
    pub fn len(&self) -> u16 {
        self.get_u16(field::LENGTH)
    }
    /// Whether the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    /// Whether the datagram (as far as the length field says) and the pseudo-header sum to
    /// zero. A zero checksum field (none sent) always verifies. Call after `check_len`.
    pub fn verify_checksum(&self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        checksum::combine(&[
            ip::pseudo_header(src.into(), dst.into(), IpProtocol::Udp, u32::from(len)),
            checksum::sum(data),
        ]) == 0xffff
    }
    /// The bytes after the header, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload, borrowed for the buffer's lifetime rather than the view's.
    pub fn payload_ref(&self) -> &'a [u8] {
        let buffer: &'a T = self.buffer;
        &buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_src_port(&mut self, v: u16) {
        self.set_u16(field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_u16(field::DST_PORT, v)
    }
    pub fn set_len(&mut self, v: u16) {
        self.set_u16(field::LENGTH, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v)
    }
    /// Computes and writes the checksum over the length field's bytes (0 becomes 0xffff).
    pub fn fill_checksum(&mut self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) {
        self.set_checksum(0);
        let len = self.len();
        let sum = checksum::combine(&[
            ip::pseudo_header(src.into(), dst.into(), IpProtocol::Udp, u32::from(len)),
            checksum::sum(&self.buffer.as_ref()[..usize::from(len)]),
        ]);
        let c = !sum;
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
    /// Writes the pseudo-header sum alone, as a NIC doing L4 checksum offload expects.
    pub fn fill_pseudo_header_checksum(&mut self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) {
        let len = self.len();
        self.set_checksum(ip::pseudo_header(
            src.into(),
            dst.into(),
            IpProtocol::Udp,
            u32::from(len),
        ));
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a datagram. Checks the lengths and, if `caps.udp.rx()` and the field is
    /// nonzero, the checksum with the given addresses' pseudo-header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpPacket<&'a T>,
        src: impl Into<IpAddress>,
        dst: impl Into<IpAddress>,
        caps: &ChecksumCaps,
    ) -> Result<UdpRepr<'a>> {
        packet.check_len()?;
        if caps.udp.rx() && !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: packet.payload_ref(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header and payload; fills the checksum if `caps.udp.tx()`, else leaves zero.
    ///
    /// # Panics
    /// If the buffer is shorter than `buffer_len()`, or that exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: impl Into<IpAddress>,
        dst: impl Into<IpAddress>,
        caps: &ChecksumCaps,
    ) {
        let len = u16::try_from(self.buffer_len()).expect("UDP datagram over 65535 bytes");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.payload_mut().copy_from_slice(self.payload);
        if caps.udp.tx() {
            packet.fill_checksum(src, dst);
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::tests::naive_sum;
    use proptest::prelude::*;

    const SRC: Ipv4Address = Ipv4Address::new(192, 168, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(192, 168, 0, 2);

    // A DNS-ish datagram 192.168.0.1:53 -> 192.168.0.2:40000 with payload "hello"
    // (odd length), checksum 0x9e38.
    const DATAGRAM: [u8; 13] = [
        0x00, 0x35, 0x9c, 0x40, 0x00, 0x0d, 0x9e, 0x38, b'h', b'e', b'l', b'l', b'o',
    ];

    fn caps() -> ChecksumCaps {
        ChecksumCaps::default()
    }

    fn pseudo_and(data: &[u8]) -> u16 {
        let mut all = [0u8; 12 + 128];
        all[..4].copy_from_slice(&SRC.0);
        all[4..8].copy_from_slice(&DST.0);
        all[9] = 17;
        all[10..12].copy_from_slice(&(data.len() as u16).to_be_bytes());
        all[12..12 + data.len()].copy_from_slice(data);
        naive_sum(&all[..12 + data.len()])
    }

    fn parse(b: &[u8]) -> Result<UdpRepr<'_>> {
        UdpRepr::parse(&UdpPacket::new_unchecked(b), SRC, DST, &caps())
    }

    #[test]
    fn known_bytes() {
        assert_eq!(pseudo_and(&DATAGRAM), 0xffff);
        let repr = parse(&DATAGRAM).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 53,
                dst_port: 40000,
                payload: b"hello"
            }
        );
        let mut buf = [0u8; 13];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST, &caps());
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = DATAGRAM;
        b[6] = 0;
        b[7] = 0;
        assert!(parse(&b).is_ok());
        let mut buf = [0xffu8; 13];
        parse(&DATAGRAM).unwrap().emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            SRC,
            DST,
            &ChecksumCaps::ignored(),
        );
        assert_eq!(&buf[6..8], &[0, 0]);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the payload so that the checksum computes to zero: sum must be 0xffff
        // before complementing. Two payload bytes let us hit it exactly.
        let base = pseudo_and(&[0x00, 0x35, 0x9c, 0x40, 0x00, 0x0a, 0, 0, 0, 0]);
        let fix = !base; // adding this word brings the sum to 0xffff
        let payload = fix.to_be_bytes();
        let repr = UdpRepr {
            src_port: 53,
            dst_port: 40000,
            payload: &payload,
        };
        let mut buf = [0u8; 10];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST, &caps());
        assert_eq!(&buf[6..8], &[0xff, 0xff]);
        assert_eq!(parse(&buf), Ok(repr));
    }

    #[test]
    fn malformed_cases() {
        assert_eq!(parse(&DATAGRAM[..7]), Err(Error::Truncated));
        assert_eq!(parse(&DATAGRAM[..12]), Err(Error::Truncated)); // length 13 > 12
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..12]).unwrap_err(),
            Error::Truncated
        );
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(parse(&b), Err(Error::Malformed));
        let mut b = DATAGRAM;
        b[12] = b'O';
        assert_eq!(parse(&b), Err(Error::Checksum));
        assert!(UdpRepr::parse(
            &UdpPacket::new_unchecked(&b[..]),
            SRC,
            DST,
            &ChecksumCaps::ignored()
        )
        .is_ok());
        // Wrong pseudo-header (another destination) fails too.
        assert_eq!(
            UdpRepr::parse(&UdpPacket::new_unchecked(&DATAGRAM[..]), SRC, SRC, &caps()),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn trailing_bytes_ignored() {
        let mut b = [0u8; 16];
        b[..13].copy_from_slice(&DATAGRAM);
        b[13..].copy_from_slice(&[1, 2, 3]);
        assert_eq!(parse(&b).unwrap().payload, b"hello");
    }

    proptest! {
        #[test]
        fn round_trip(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = UdpRepr { src_port, dst_port, payload: &payload };
            let mut buf = [0u8; 72];
            let len = repr.buffer_len();
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..len]), SRC, DST, &caps());
            prop_assert_eq!(pseudo_and(&buf[..len]), 0xffff);
            prop_assert_eq!(parse(&buf[..len]), Ok(repr));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut data in proptest::collection::vec(any::<u8>(), 0..64),
            plausible in any::<bool>(),
        ) {
            if plausible && data.len() >= 8 {
                data[4] = 0;
                data[5] %= data.len() as u8 + 1;
            }
            let packet = UdpPacket::new_unchecked(&data[..]);
            if let Ok(repr) = UdpRepr::parse(&packet, SRC, DST, &ChecksumCaps::ignored()) {
                let mut out = [0u8; 64];
                let len = repr.buffer_len();
                repr.emit(&mut UdpPacket::new_unchecked(&mut out[..len]), SRC, DST, &caps());
                prop_assert_eq!(parse(&out[..len]), Ok(repr));
            }
            let _ = parse(&data);
        }
    }
}
