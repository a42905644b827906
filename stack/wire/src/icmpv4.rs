//! ICMPv4 (RFC 792): echo request/reply, destination unreachable and time exceeded.
//!
//! Other message types parse as `Err(Unsupported)`. The view's buffer is the whole ICMP
//! message (the IPv4 payload, already trimmed to `total_len`): the checksum covers all of
//! it.

use crate::checksum::{self, ChecksumCaps};
use crate::error::{Error, Result};
use crate::ipv4::{self, Ipv4Repr};

/// The ICMPv4 type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    EchoReply,
    DstUnreachable,
    Redirect,
    EchoRequest,
    TimeExceeded,
    ParamProblem,
    Unknown(u8),
}

impl From<u8> for Icmpv4Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Icmpv4Message::EchoReply,
            3 => Icmpv4Message::DstUnreachable,
            5 => Icmpv4Message::Redirect,
            8 => Icmpv4Message::EchoRequest,
            11 => Icmpv4Message::TimeExceeded,
            12 => Icmpv4Message::ParamProblem,
            other => Icmpv4Message::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(v: Icmpv4Message) -> u8 {
        match v {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Unknown(other) => other,
        }
    }
}

/// The code of a destination unreachable message (RFC 792, RFC 1122, RFC 1812).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Icmpv4DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set; `next_hop_mtu` carries the MTU (RFC 1191).
    FragRequired,
    SrcRouteFailed,
    DstNetUnknown,
    DstHostUnknown,
    SrcHostIsolated,
    NetProhibited,
    HostProhibited,
    NetUnreachToS,
    HostUnreachToS,
    CommProhibited,
    HostPrecedenceViolation,
    PrecedenceCutoff,
    Unknown(u8),
}

impl From<u8> for Icmpv4DstUnreachable {
    fn from(v: u8) -> Self {
        use Icmpv4DstUnreachable::*;
        match v {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragRequired,
            5 => SrcRouteFailed,
            6 => DstNetUnknown,
            7 => DstHostUnknown,
            8 => SrcHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachToS,
            12 => HostUnreachToS,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            other => Unknown(other),
        }
    }
}

impl From<Icmpv4DstUnreachable> for u8 {
    fn from(v: Icmpv4DstUnreachable) -> u8 {
        use Icmpv4DstUnreachable::*;
        match v {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragRequired => 4,
            SrcRouteFailed => 5,
            DstNetUnknown => 6,
            DstHostUnknown => 7,
            SrcHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachToS => 11,
            HostUnreachToS => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo: identifier and sequence number.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Destination unreachable: next-hop MTU (code 4), otherwise unused.
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// The length of the ICMPv4 header common to every message Sluice handles.
pub const HEADER_LEN: usize = field::DATA.start;

/// How many bytes of the original datagram's payload a destination unreachable message
/// must quote after the original header (RFC 792).
pub const QUOTED_PAYLOAD_LEN: usize = 8;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` when shorter than the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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

    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    pub fn echo_ident(&self) -> u16 {
        self.get_u16(field::ECHO_IDENT)
    }
    pub fn echo_seq_no(&self) -> u16 {
        self.get_u16(field::ECHO_SEQNO)
    }
    pub fn next_hop_mtu(&self) -> u16 {
        self.get_u16(field::NEXT_HOP_MTU)
    }
    /// Whether the whole message sums to zero.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
    /// Everything after the 8-byte header: echo data, or the quoted datagram.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The payload, borrowed for the buffer's lifetime rather than the view's.
    pub fn payload_ref(&self) -> &'a [u8] {
        let buffer: &'a T = self.buffer;
        &buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_msg_type(&mut self, v: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v)
    }
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_u16(field::ECHO_IDENT, v)
    }
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_u16(field::ECHO_SEQNO, v)
    }
    /// Also clears the unused first half of the rest-of-header word.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.set_u16(4..6, 0);
        self.set_u16(field::NEXT_HOP_MTU, v)
    }
    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(self.buffer.as_ref());
        self.set_checksum(!sum);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// An ICMPv4 message Sluice handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Destination unreachable, quoting the offending datagram.
    DstUnreachable {
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU for `FragRequired` (RFC 1191); the field as carried otherwise
        /// (normally zero).
        next_hop_mtu: u16,
        /// The quoted IPv4 header. Its `payload_len` is the original datagram's, not how
        /// much of it was quoted. Options in the quoted header are skipped.
        header: Ipv4Repr,
        /// The first bytes of the quoted payload: exactly 8 after parse (enough for the
        /// TCP/UDP ports and the TCP sequence number); emit writes whatever is given.
        data: &'a [u8],
    },
    /// Time exceeded (code 0: TTL exceeded in transit; 1: fragment reassembly time
    /// exceeded), quoting the offending datagram as `DstUnreachable` does.
    TimeExceeded {
        code: u8,
        header: Ipv4Repr,
        data: &'a [u8],
    },
    /// Parameter problem (code 0: `pointer` is the offending byte of the quoted header),
    /// quoting the datagram as `DstUnreachable` does.
    ParamProblem {
        code: u8,
        pointer: u8,
        header: Ipv4Repr,
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message. Checks the length, the checksum if `caps.icmp.rx()`, and:
    /// - echo with a nonzero code: `Malformed`;
    /// - destination unreachable quoting less than a whole IPv4 header plus 8 bytes:
    ///   `Truncated`; quoting something that is not an IPv4 header (version, IHL, total
    ///   length below IHL): `Malformed`. The quoted header's checksum is not verified
    ///   and a quoted fragment is fine;
    /// - time exceeded and parameter problem: as destination unreachable;
    /// - any other type: `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        caps: &ChecksumCaps,
    ) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if caps.icmp.rx() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let payload = packet.payload_ref();
        match packet.msg_type() {
            Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply if packet.msg_code() != 0 => {
                Err(Error::Malformed)
            }
            Icmpv4Message::EchoRequest => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: payload,
            }),
            Icmpv4Message::EchoReply => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: payload,
            }),
            Icmpv4Message::DstUnreachable => {
                let (header, data) = parse_quoted(payload)?;
                Ok(Icmpv4Repr::DstUnreachable {
                    reason: Icmpv4DstUnreachable::from(packet.msg_code()),
                    next_hop_mtu: packet.next_hop_mtu(),
                    header,
                    data,
                })
            }
            Icmpv4Message::TimeExceeded => {
                let (header, data) = parse_quoted(payload)?;
                Ok(Icmpv4Repr::TimeExceeded {
                    code: packet.msg_code(),
                    header,
                    data,
                })
            }
            Icmpv4Message::ParamProblem => {
                let (header, data) = parse_quoted(payload)?;
                Ok(Icmpv4Repr::ParamProblem {
                    code: packet.msg_code(),
                    // The first byte of the rest-of-header word.
                    pointer: packet.buffer.as_ref().as_ref()[4],
                    header,
                    data,
                })
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The whole message: header plus data (plus the quoted header).
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. }
            | Icmpv4Repr::ParamProblem { data, .. } => HEADER_LEN + ipv4::HEADER_LEN + data.len(),
        }
    }

    /// Writes the message; fills the checksum if `caps.icmp.tx()`, else leaves zero. A
    /// quoted header always gets a correct checksum of its own.
    ///
    /// # Panics
    /// If the buffer is not exactly `buffer_len()` bytes long (the checksum covers the
    /// whole buffer, so a longer one would be summed wrongly).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>, caps: &ChecksumCaps) {
        assert_eq!(packet.buffer.as_ref().len(), self.buffer_len());
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data }
            | Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                let ty = match self {
                    Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
                    _ => Icmpv4Message::EchoReply,
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.payload_mut().copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_next_hop_mtu(next_hop_mtu);
                emit_quoted(packet, &header, data);
            }
            Icmpv4Repr::TimeExceeded { code, header, data } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(code);
                packet.set_next_hop_mtu(0); // the unused field
                emit_quoted(packet, &header, data);
            }
            Icmpv4Repr::ParamProblem {
                code,
                pointer,
                header,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::ParamProblem);
                packet.set_msg_code(code);
                packet.set_next_hop_mtu(0);
                packet.buffer.as_mut()[4] = pointer;
                emit_quoted(packet, &header, data);
            }
        }
        if caps.icmp.tx() {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

/// Parses the datagram quoted by an ICMP error: an IPv4 header (whose total length is
/// the original's, so it is not checked against what was quoted) and 8 payload bytes.
/// Writes an error message's quote: the offending datagram's IPv4 header (with a correct
/// checksum of its own) and the first bytes of its payload.
fn emit_quoted<T: AsRef<[u8]> + AsMut<[u8]>>(packet: &mut Icmpv4Packet<T>, header: &Ipv4Repr, data: &[u8]) {
    let (quoted_header, quoted_data) = packet.payload_mut().split_at_mut(ipv4::HEADER_LEN);
    header.emit(
        &mut ipv4::Ipv4Packet::new_unchecked(quoted_header),
        &ChecksumCaps::software(),
    );
    quoted_data.copy_from_slice(data);
}

fn parse_quoted(quoted: &[u8]) -> Result<(Ipv4Repr, &[u8])> {
    if quoted.len() < ipv4::HEADER_LEN {
        return Err(Error::Truncated);
    }
    let inner = ipv4::Ipv4Packet::new_unchecked(quoted);
    let header_len = inner.header_len();
    let total_len = usize::from(inner.total_len());
    if inner.version() != 4 || header_len < ipv4::HEADER_LEN || total_len < header_len {
        return Err(Error::Malformed);
    }
    if quoted.len() < header_len + QUOTED_PAYLOAD_LEN {
        return Err(Error::Truncated);
    }
    let header = Ipv4Repr {
        src_addr: inner.src_addr(),
        dst_addr: inner.dst_addr(),
        protocol: inner.protocol(),
        payload_len: total_len - header_len,
        ttl: inner.ttl(),
    };
    Ok((header, &quoted[header_len..header_len + QUOTED_PAYLOAD_LEN]))
}

impl<'a> Icmpv4Repr<'a> {
    /// The echo reply answering this echo request (same ident, sequence number and
    /// data), or `None` for any other message. The IP addresses are the caller's to swap.
    pub fn echo_reply_to(&self) -> Option<Icmpv4Repr<'a>> {
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                Some(Icmpv4Repr::EchoReply { ident, seq_no, data })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::tests::naive_sum;
    use crate::ipv4::{IpProtocol, Ipv4Address};
    use proptest::prelude::*;

    // `ping -p`-style echo request: id 0x1234, seq 1, 8 bytes of data; checksum 0x5435.
    const ECHO_REQUEST: [u8; 16] = [
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, // header
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // "abcdefgh"
    ];

    // Port unreachable for a UDP datagram 10.0.0.2:5353 -> 10.0.0.1:9999 (length 12);
    // the quoted header has checksum 0x26cb, the ICMP message 0xc0f8 (verified below).
    const PORT_UNREACHABLE: [u8; 36] = [
        0x03, 0x03, 0xc0, 0xf8, 0x00, 0x00, 0x00, 0x00, // type 3 code 3, unused
        0x45, 0x00, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0xcb, 0x0a, 0x00, 0x00, 0x02, 0x0a,
        0x00, 0x00, 0x01, // quoted IPv4 header, total length 32
        0x14, 0xe9, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00, // quoted UDP header
    ];

    fn caps() -> ChecksumCaps {
        ChecksumCaps::default()
    }

    fn parse(b: &[u8]) -> Result<Icmpv4Repr<'_>> {
        Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(b), &caps())
    }

    fn port_unreachable_repr() -> Icmpv4Repr<'static> {
        Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            header: Ipv4Repr {
                src_addr: Ipv4Address::new(10, 0, 0, 2),
                dst_addr: Ipv4Address::new(10, 0, 0, 1),
                protocol: IpProtocol::Udp,
                payload_len: 12,
                ttl: 64,
            },
            data: &PORT_UNREACHABLE[28..],
        }
    }

    #[test]
    fn known_checksums_are_right() {
        assert_eq!(naive_sum(&ECHO_REQUEST), 0xffff);
        assert_eq!(naive_sum(&PORT_UNREACHABLE), 0xffff);
        assert_eq!(naive_sum(&PORT_UNREACHABLE[8..28]), 0xffff);
    }

    #[test]
    fn echo_request_known_bytes() {
        let repr = parse(&ECHO_REQUEST).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcdefgh"
            }
        );
        let mut buf = [0u8; 16];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
        assert_eq!(buf, ECHO_REQUEST);

        let reply = repr.echo_reply_to().unwrap();
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
        assert_eq!(buf[0], 0);
        assert_eq!(naive_sum(&buf), 0xffff);
        assert_eq!(parse(&buf), Ok(reply));
    }

    #[test]
    fn dst_unreachable_known_bytes() {
        assert_eq!(parse(&PORT_UNREACHABLE), Ok(port_unreachable_repr()));
        let mut buf = [0u8; 36];
        port_unreachable_repr().emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
        assert_eq!(buf, PORT_UNREACHABLE);
    }

    #[test]
    fn frag_required_carries_mtu() {
        let mut repr = port_unreachable_repr();
        if let Icmpv4Repr::DstUnreachable {
            reason, next_hop_mtu, ..
        } = &mut repr
        {
            *reason = Icmpv4DstUnreachable::FragRequired;
            *next_hop_mtu = 1400;
        }
        let mut buf = [0u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert_eq!(packet.msg_code(), 4);
        assert_eq!(Icmpv4Repr::parse(&packet, &caps()), Ok(repr));
    }

    #[test]
    fn quoted_header_with_options_and_more_data() {
        // IHL 6 and 12 quoted payload bytes: options skipped, 8 bytes kept.
        let mut b = [0u8; 8 + 24 + 12];
        b[0] = 3;
        b[1] = 1;
        b[8..28].copy_from_slice(&PORT_UNREACHABLE[8..28]);
        b[8] = 0x46;
        b[11] = 36;
        b[28..32].copy_from_slice(&[1, 1, 1, 0]);
        b[32..44].copy_from_slice(b"0123456789ab");
        let c = !naive_sum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        match parse(&b).unwrap() {
            Icmpv4Repr::DstUnreachable {
                reason, header, data, ..
            } => {
                assert_eq!(reason, Icmpv4DstUnreachable::HostUnreachable);
                assert_eq!(header.payload_len, 12);
                assert_eq!(data, b"01234567");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Applies `f` and refreshes the ICMP checksum.
    fn with<const N: usize>(bytes: [u8; N], f: impl FnOnce(&mut [u8; N])) -> [u8; N] {
        let mut b = bytes;
        f(&mut b);
        b[2] = 0;
        b[3] = 0;
        let c = !naive_sum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    }

    #[test]
    fn malformed_cases() {
        assert_eq!(parse(&ECHO_REQUEST[..7]), Err(Error::Truncated));
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = ECHO_REQUEST;
        bad[15] ^= 1;
        assert_eq!(parse(&bad), Err(Error::Checksum));
        assert!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&bad[..]), &ChecksumCaps::ignored()).is_ok());
        assert_eq!(parse(&with(ECHO_REQUEST, |b| b[1] = 1)), Err(Error::Malformed));
        assert_eq!(parse(&with(ECHO_REQUEST, |b| b[0] = 13)), Err(Error::Unsupported));
        // A parameter problem must quote a whole IPv4 header and 8 bytes, as the others.
        assert_eq!(parse(&with(ECHO_REQUEST, |b| b[0] = 12)), Err(Error::Truncated));
        let pp = with(PORT_UNREACHABLE, |b| {
            b[0] = 12;
            b[1] = 0;
            b[4] = 9; // the pointer
        });
        let fixed = {
            let mut p = pp;
            let mut m = Icmpv4Packet::new_unchecked(&mut p[..]);
            m.fill_checksum();
            p
        };
        assert!(matches!(
            parse(&fixed),
            Ok(Icmpv4Repr::ParamProblem {
                code: 0,
                pointer: 9,
                ..
            })
        ));
        // Time exceeded quotes like destination unreachable; emit gives the same bytes back.
        let te = with(PORT_UNREACHABLE, |b| {
            b[0] = 11;
            b[1] = 0;
            b[4..8].fill(0);
        });
        let Ok(r @ Icmpv4Repr::TimeExceeded { code: 0, data, .. }) = parse(&te) else {
            panic!("time exceeded: {:?}", parse(&te));
        };
        assert_eq!(data.len(), QUOTED_PAYLOAD_LEN);
        let mut out = [0u8; 36];
        assert_eq!(r.buffer_len(), out.len());
        r.emit(
            &mut Icmpv4Packet::new_unchecked(&mut out[..]),
            &ChecksumCaps::software(),
        );
        assert_eq!(out, te);
        // Quoted header: version, IHL, total length, and too little quoted.
        assert_eq!(
            parse(&with(PORT_UNREACHABLE, |b| b[8] = 0x65)),
            Err(Error::Malformed)
        );
        assert_eq!(
            parse(&with(PORT_UNREACHABLE, |b| b[8] = 0x44)),
            Err(Error::Malformed)
        );
        assert_eq!(
            parse(&with(PORT_UNREACHABLE, |b| b[11] = 19)),
            Err(Error::Malformed)
        );
        assert_eq!(
            parse(&with(PORT_UNREACHABLE, |b| b[8] = 0x46)),
            Err(Error::Truncated)
        );
        let short: [u8; 35] = with(PORT_UNREACHABLE[..35].try_into().unwrap(), |_| ());
        assert_eq!(parse(&short), Err(Error::Truncated));
        let shorter: [u8; 20] = with(PORT_UNREACHABLE[..20].try_into().unwrap(), |_| ());
        assert_eq!(parse(&shorter), Err(Error::Truncated));
    }

    #[test]
    fn emit_without_checksum() {
        let mut buf = [0xffu8; 16];
        parse(&ECHO_REQUEST).unwrap().emit(
            &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
            &ChecksumCaps::ignored(),
        );
        assert_eq!(&buf[2..4], &[0, 0]);
    }

    fn arb_ipv4() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..1500,
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
        fn echo_round_trip(
            request in any::<bool>(),
            ident in any::<u16>(),
            seq_no in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = if request {
                Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
            } else {
                Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
            };
            let mut buf = [0u8; 80];
            let len = repr.buffer_len();
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..len]), &caps());
            prop_assert_eq!(parse(&buf[..len]), Ok(repr));
        }

        #[test]
        fn dst_unreachable_round_trip(
            code in any::<u8>(),
            next_hop_mtu in any::<u16>(),
            header in arb_ipv4(),
            data in any::<[u8; 8]>(),
        ) {
            let repr = Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::from(code),
                next_hop_mtu,
                header,
                data: &data,
            };
            let mut buf = [0u8; 36];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
            prop_assert_eq!(parse(&buf), Ok(repr));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut data in proptest::collection::vec(any::<u8>(), 0..64),
            kind in 0u8..4,
        ) {
            if data.len() >= 2 {
                data[0] = [0, 3, 8, data[0]][usize::from(kind)];
                if kind == 1 && data.len() >= 9 {
                    data[8] = 0x45;
                }
            }
            let packet = Icmpv4Packet::new_unchecked(&data[..]);
            if let Ok(repr) = Icmpv4Repr::parse(&packet, &ChecksumCaps::ignored()) {
                let mut out = [0u8; 64];
                let len = repr.buffer_len();
                repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..len]), &caps());
                prop_assert_eq!(parse(&out[..len]), Ok(repr));
            }
            let _ = Icmpv4Repr::parse(&packet, &caps());
        }
    }
}
