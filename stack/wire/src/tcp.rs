//! TCP header view and Repr, with options (RFC 9293, RFC 7323, RFC 2018).
//!
//! The types in this first part are the contract between the wire layer and the TCP core
//! (`sluice-tcp`): keep their shape stable.

use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Sub};

use crate::checksum::{self, ChecksumCaps};
use crate::error::{Error, Result};
use crate::ip::{self, IpAddress};
use crate::ipv4::IpProtocol;
#[cfg(test)]
use crate::ipv4::Ipv4Address;

/// A TCP sequence number: arithmetic wraps modulo 2^32 and comparisons are the
/// "serial number" comparisons of RFC 9293 section 3.4 (valid for distances below 2^31).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Wrapping distance `self - other` as a signed number.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self > other {
            self
        } else {
            other
        }
    }
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self < other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n as u32))
    }
}

impl Sub<SeqNumber> for SeqNumber {
    type Output = usize;
    /// The distance `self - other`; panics in debug builds if `other` is after `self`.
    fn sub(self, other: SeqNumber) -> usize {
        let d = self.diff(other);
        debug_assert!(d >= 0, "sequence subtraction underflow: {self:?} - {other:?}");
        d.max(0) as usize
    }
}

/// TCP header flags other than ACK (ACK is `TcpRepr::ack.is_some()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub const NONE: TcpFlags = TcpFlags(0);

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    pub fn urg(self) -> bool {
        self.0 & Self::URG != 0
    }
    pub fn with(self, bits: u8) -> TcpFlags {
        TcpFlags(self.0 | bits)
    }
}

/// Up to four SACK blocks `[left, right)` (RFC 2018), in the order they appeared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    blocks: [(SeqNumber, SeqNumber); 4],
    len: u8,
}

impl SackBlocks {
    pub const MAX: usize = 4;

    /// Adds a block; returns false (and ignores it) when four are already present.
    pub fn push(&mut self, left: SeqNumber, right: SeqNumber) -> bool {
        if (self.len as usize) < Self::MAX {
            self.blocks[self.len as usize] = (left, right);
            self.len += 1;
            true
        } else {
            false
        }
    }
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Removes every block. Slots past `len` are kept zeroed (here and in `Default`), so
    /// the derived `PartialEq` compares exactly the blocks present.
    pub fn clear(&mut self) {
        *self = SackBlocks::default();
    }
}

/// The TCP options Sluice understands. Unknown options are skipped on parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), only meaningful on SYN; not clamped here.
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4), only meaningful on SYN.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5).
    pub sack: SackBlocks,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
}

/// A parsed or to-be-emitted TCP segment. `payload` borrows the packet's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    /// The acknowledgment number; `Some` exactly when the ACK flag is set.
    pub ack: Option<SeqNumber>,
    /// Flags other than ACK.
    pub flags: TcpFlags,
    /// The window field as carried (unscaled).
    pub window: u16,
    /// The urgent pointer as carried; Sluice ignores urgent data semantics (RFC 6093).
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + self.flags.syn() as usize + self.flags.fin() as usize
    }
}

// ---- The header view ----

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in the high nibble; the low nibble is reserved (and AE, RFC 3168).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The largest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// The most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// A view of a TCP segment. The buffer is the whole segment (the IPv4 payload): the
/// checksum covers all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after `check_len`.
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Shorter than 20 bytes or than the data offset says: `Truncated`; data offset
    /// below 5: `Malformed`.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if header_len > len {
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
    fn get_u32(&self, r: core::ops::Range<usize>) -> u32 {
        let d = &self.buffer.as_ref()[r];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    pub fn src_port(&self) -> u16 {
        self.get_u16(field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        self.get_u16(field::DST_PORT)
    }
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.get_u32(field::SEQ_NUM))
    }
    /// The acknowledgment number field, meaningful only when `ack()` is set.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.get_u32(field::ACK_NUM))
    }
    /// Data offset in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }
    /// The whole flags byte, ACK included.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }
    pub fn fin(&self) -> bool {
        self.flags().fin()
    }
    pub fn syn(&self) -> bool {
        self.flags().syn()
    }
    pub fn rst(&self) -> bool {
        self.flags().rst()
    }
    pub fn psh(&self) -> bool {
        self.flags().psh()
    }
    pub fn ack(&self) -> bool {
        self.flags().0 & TcpFlags::ACK != 0
    }
    pub fn urg(&self) -> bool {
        self.flags().urg()
    }
    pub fn ece(&self) -> bool {
        self.flags().0 & TcpFlags::ECE != 0
    }
    pub fn cwr(&self) -> bool {
        self.flags().0 & TcpFlags::CWR != 0
    }
    pub fn window_len(&self) -> u16 {
        self.get_u16(field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    pub fn urgent_at(&self) -> u16 {
        self.get_u16(field::URGENT)
    }
    /// The option bytes. Call after `check_len`.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }
    /// Whether the segment and the pseudo-header sum to zero.
    pub fn verify_checksum(&self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        checksum::combine(&[
            ip::pseudo_header(src.into(), dst.into(), IpProtocol::Tcp, u32::from(len)),
            checksum::sum(data),
        ]) == 0xffff
    }
    /// The bytes after the header. Call after `check_len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload, borrowed for the buffer's lifetime rather than the view's.
    pub fn payload_ref(&self) -> &'a [u8] {
        let buffer: &'a T = self.buffer;
        &buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    fn set_u32(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_src_port(&mut self, v: u16) {
        self.set_u16(field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_u16(field::DST_PORT, v)
    }
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        self.set_u32(field::SEQ_NUM, v.0)
    }
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        self.set_u32(field::ACK_NUM, v.0)
    }
    /// Sets the data offset from a length in bytes (a multiple of 4, 20..=60) and clears
    /// the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }
    /// Writes the whole flags byte, ACK included.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }
    pub fn set_window_len(&mut self, v: u16) {
        self.set_u16(field::WINDOW, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v)
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set_u16(field::URGENT, v)
    }
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
    /// Computes and writes the checksum over the whole buffer and the pseudo-header.
    ///
    /// # Panics
    /// If the buffer is longer than 65535 bytes.
    pub fn fill_checksum(&mut self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let len = u16::try_from(data.len()).expect("TCP segment over 65535 bytes");
        let sum = checksum::combine(&[
            ip::pseudo_header(src.into(), dst.into(), IpProtocol::Tcp, u32::from(len)),
            checksum::sum(data),
        ]);
        self.set_checksum(!sum);
    }
    /// Writes the pseudo-header sum alone, as a NIC doing L4 checksum offload expects.
    pub fn fill_pseudo_header_checksum(&mut self, src: impl Into<IpAddress>, dst: impl Into<IpAddress>) {
        let len = u16::try_from(self.buffer.as_ref().len()).expect("TCP segment over 65535 bytes");
        self.set_checksum(ip::pseudo_header(
            src.into(),
            dst.into(),
            IpProtocol::Tcp,
            u32::from(len),
        ));
    }
}

// ---- Options ----

/// How `TcpOptions::emit` lays the options out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Each option (or SACK-permitted with timestamps) NOP-padded to a 4-byte boundary,
    /// as Linux does: `MSS | SACKOK TS | NOP WS | NOP NOP SACK`. Keeps TSval aligned,
    /// which peers' fast paths look for.
    Aligned,
    /// Options back to back, NOPs at the end: used only when `Aligned` would not fit.
    Compact,
}

/// The options of a segment that carries timestamps and nothing else: NOP NOP TS.
const TIMESTAMP_ONLY_LEN: usize = 12;

impl TcpOptions {
    fn aligned_len(&self, sack_blocks: usize) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.timestamp.is_some() {
            len += 12; // SACKOK TS, or NOP NOP TS
        } else if self.sack_permitted {
            len += 4; // NOP NOP SACKOK
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        if sack_blocks > 0 {
            len += 4 + 8 * sack_blocks;
        }
        len
    }

    fn compact_len(&self, sack_blocks: usize) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 3;
        }
        if self.sack_permitted {
            len += 2;
        }
        if self.timestamp.is_some() {
            len += 10;
        }
        if sack_blocks > 0 {
            len += 2 + 8 * sack_blocks;
        }
        (len + 3) & !3
    }

    /// The layout, the number of SACK blocks that fit, and the emitted length.
    ///
    /// Prefers the aligned layout, falls back to the compact one, and drops trailing SACK
    /// blocks only when neither fits in 40 bytes (with everything else present at most
    /// two blocks fit). Anything `parse` returned fits compactly, so parse-emit-parse is
    /// lossless.
    fn layout(&self) -> (Layout, usize, usize) {
        if self.sack.is_empty() {
            // Without SACK blocks the aligned layout is at most 20 bytes.
            return (Layout::Aligned, 0, self.aligned_len(0));
        }
        let mut n = self.sack.len();
        loop {
            let aligned = self.aligned_len(n);
            if aligned <= MAX_OPTIONS_LEN {
                return (Layout::Aligned, n, aligned);
            }
            let compact = self.compact_len(n);
            if compact <= MAX_OPTIONS_LEN {
                return (Layout::Compact, n, compact);
            }
            // n > 0 here: without SACK blocks the aligned layout is at most 20 bytes.
            n -= 1;
        }
    }

    /// How many bytes `emit` writes: a multiple of 4, at most 40.
    pub fn buffer_len(&self) -> usize {
        self.layout().2
    }

    /// How many of the SACK blocks `emit` writes: all of them unless 40 bytes cannot hold
    /// them next to the other options, in which case the first ones are kept.
    pub fn emitted_sack_blocks(&self) -> usize {
        self.layout().1
    }

    /// Parses the option bytes of a header.
    ///
    /// EOL ends the list (what follows is padding); NOP is skipped; unknown kinds are
    /// skipped by their length byte. Duplicate options: the last one wins. More than four
    /// SACK blocks (impossible within 40 bytes, but `data` may be any slice): the first
    /// four are kept.
    ///
    /// Robustness choice: a length byte of 0 or 1, an option running past the end of the
    /// header (including a kind byte with no length byte after it), or a known kind with
    /// the wrong length (MSS != 4, window scale != 3, SACK-permitted != 2, timestamps
    /// != 10, SACK not 2 + 8n with n >= 1) makes the whole segment `Malformed`, to be
    /// dropped and counted. Linux instead stops parsing options at such a point and keeps
    /// the segment; we prefer a visible drop over acting on a header we cannot read, and
    /// a sender that gets these wrong is broken or hostile (RFC 9293 section 3.1 requires
    /// receivers to tolerate unknown options, which we do, not corrupt ones).
    pub fn parse(data: &[u8]) -> Result<TcpOptions> {
        // Every segment of a connection with timestamps carries exactly these 12 bytes
        // (RFC 7323 appendix A's layout, Linux's and ours): read them without the loop
        // (Linux has the same shortcut, `tcp_parse_aligned_timestamp`).
        if let [kind::NOP, kind::NOP, kind::TIMESTAMP, 10, a, b, c, d, e, f, g, h] = *data {
            return Ok(TcpOptions {
                timestamp: Some((u32::from_be_bytes([a, b, c, d]), u32::from_be_bytes([e, f, g, h]))),
                ..TcpOptions::default()
            });
        }
        let mut options = TcpOptions::default();
        let mut i = 0;
        while i < data.len() {
            match data[i] {
                kind::EOL => break,
                kind::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let option_kind = data[i];
            let len = usize::from(*data.get(i + 1).ok_or(Error::Malformed)?);
            if len < 2 || i + len > data.len() {
                return Err(Error::Malformed);
            }
            let value = &data[i + 2..i + len];
            match option_kind {
                kind::MSS => {
                    let [a, b] = value else {
                        return Err(Error::Malformed);
                    };
                    options.mss = Some(u16::from_be_bytes([*a, *b]));
                }
                kind::WINDOW_SCALE => {
                    let [shift] = value else {
                        return Err(Error::Malformed);
                    };
                    options.window_scale = Some(*shift);
                }
                kind::SACK_PERMITTED => {
                    if !value.is_empty() {
                        return Err(Error::Malformed);
                    }
                    options.sack_permitted = true;
                }
                kind::SACK => {
                    if value.is_empty() || value.len() % 8 != 0 {
                        return Err(Error::Malformed);
                    }
                    options.sack.clear();
                    for block in value.chunks_exact(8) {
                        let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                        let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                        // Blocks past the fourth are ignored.
                        options.sack.push(SeqNumber(left), SeqNumber(right));
                    }
                }
                kind::TIMESTAMP => {
                    if value.len() != 8 {
                        return Err(Error::Malformed);
                    }
                    let tsval = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
                    let tsecr = u32::from_be_bytes([value[4], value[5], value[6], value[7]]);
                    options.timestamp = Some((tsval, tsecr));
                }
                _ => {} // Unknown: skipped by length.
            }
            i += len;
        }
        Ok(options)
    }

    /// Writes the options into `buf` and returns how many bytes were written (see
    /// `buffer_len`); the result is NOP-padded to a multiple of 4.
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        // Timestamps alone (every segment of such a connection past the handshake): the
        // 12 bytes the aligned layout gives, written at once.
        if let (None, None, false, true, Some((tsval, tsecr))) = (
            self.mss,
            self.window_scale,
            self.sack_permitted,
            self.sack.is_empty(),
            self.timestamp,
        ) {
            let [a, b, c, d] = tsval.to_be_bytes();
            let [e, f, g, h] = tsecr.to_be_bytes();
            buf[..TIMESTAMP_ONLY_LEN].copy_from_slice(&[
                kind::NOP,
                kind::NOP,
                kind::TIMESTAMP,
                10,
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                h,
            ]);
            return TIMESTAMP_ONLY_LEN;
        }
        let (layout, sack_blocks, total) = self.layout();
        let buf = &mut buf[..total];
        let mut w = Writer { buf, at: 0 };
        match layout {
            Layout::Aligned => {
                if let Some(mss) = self.mss {
                    w.mss(mss);
                }
                match (self.sack_permitted, self.timestamp) {
                    (true, Some(ts)) => {
                        w.sack_permitted();
                        w.timestamp(ts);
                    }
                    (false, Some(ts)) => {
                        w.nops(2);
                        w.timestamp(ts);
                    }
                    (true, None) => {
                        w.nops(2);
                        w.sack_permitted();
                    }
                    (false, None) => {}
                }
                if let Some(shift) = self.window_scale {
                    w.nops(1);
                    w.window_scale(shift);
                }
                if sack_blocks > 0 {
                    w.nops(2);
                    w.sack(&self.sack.as_slice()[..sack_blocks]);
                }
            }
            Layout::Compact => {
                if let Some(mss) = self.mss {
                    w.mss(mss);
                }
                if let Some(shift) = self.window_scale {
                    w.window_scale(shift);
                }
                if self.sack_permitted {
                    w.sack_permitted();
                }
                if let Some(ts) = self.timestamp {
                    w.timestamp(ts);
                }
                if sack_blocks > 0 {
                    w.sack(&self.sack.as_slice()[..sack_blocks]);
                }
            }
        }
        let pad = total - w.at;
        w.nops(pad);
        total
    }
}

/// A cursor for writing options.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn nops(&mut self, n: usize) {
        for _ in 0..n {
            self.put(&[kind::NOP]);
        }
    }
    fn mss(&mut self, mss: u16) {
        let [a, b] = mss.to_be_bytes();
        self.put(&[kind::MSS, 4, a, b]);
    }
    fn window_scale(&mut self, shift: u8) {
        self.put(&[kind::WINDOW_SCALE, 3, shift]);
    }
    fn sack_permitted(&mut self) {
        self.put(&[kind::SACK_PERMITTED, 2]);
    }
    fn timestamp(&mut self, (tsval, tsecr): (u32, u32)) {
        self.put(&[kind::TIMESTAMP, 10]);
        self.put(&tsval.to_be_bytes());
        self.put(&tsecr.to_be_bytes());
    }
    fn sack(&mut self, blocks: &[(SeqNumber, SeqNumber)]) {
        self.put(&[kind::SACK, (2 + 8 * blocks.len()) as u8]);
        for (left, right) in blocks {
            self.put(&left.0.to_be_bytes());
            self.put(&right.0.to_be_bytes());
        }
    }
}

// ---- Repr ----

impl<'a> TcpRepr<'a> {
    /// Parses a segment. Checks the lengths (`Truncated`/`Malformed`), the checksum with
    /// the addresses' pseudo-header if `caps.tcp.rx()` (`Checksum`), then the options
    /// (`Malformed`, see `TcpOptions::parse`).
    ///
    /// `ack` is `Some` exactly when the ACK bit is set; `flags` holds every other bit of
    /// the flags byte. The reserved bits of byte 12 are ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: impl Into<IpAddress>,
        dst: impl Into<IpAddress>,
        caps: &ChecksumCaps,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if caps.tcp.rx() && !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let options = TcpOptions::parse(packet.options())?;
        let raw = packet.flags().0;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack().then(|| packet.ack_number()),
            flags: TcpFlags(raw & !TcpFlags::ACK),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options,
            payload: packet.payload_ref(),
        })
    }

    /// Header length including the (padded) options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment; fills the checksum if `caps.tcp.tx()`, else leaves zero.
    ///
    /// The ACK bit is set exactly when `ack` is `Some` (an ACK bit in `flags` is ignored);
    /// the acknowledgment field is zero otherwise. SACK blocks that do not fit in 40
    /// option bytes are dropped from the end (see `TcpOptions::emitted_sack_blocks`).
    ///
    /// # Panics
    /// If the buffer is not exactly `buffer_len()` bytes long (the checksum covers the
    /// whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: impl Into<IpAddress>,
        dst: impl Into<IpAddress>,
        caps: &ChecksumCaps,
    ) {
        let header_len = self.header_len();
        assert_eq!(
            packet.buffer.as_ref().len(),
            header_len + self.payload.len(),
            "TCP emit buffer must be exactly buffer_len() bytes"
        );
        self.write_header(packet, header_len);
        packet.payload_mut().copy_from_slice(self.payload);
        if caps.tcp.tx() {
            packet.fill_checksum(src, dst);
        } else {
            packet.set_checksum(0);
        }
    }

    /// Writes the header alone into `buf`, which must be exactly `header_len()` bytes (the
    /// payload, in place after it or elsewhere, is the caller's), with a zero checksum.
    /// Returns the header's length. For a segment built in a buffer whose payload was
    /// written first: `emit` would need a copy of `self` without its payload.
    ///
    /// # Panics
    /// If `buf` is not exactly `header_len()` bytes long.
    pub fn emit_header(&self, buf: &mut [u8]) -> usize {
        let header_len = self.header_len();
        assert_eq!(
            buf.len(),
            header_len,
            "TCP header buffer must be exactly header_len() bytes"
        );
        let mut packet = TcpPacket::new_unchecked(buf);
        self.write_header(&mut packet, header_len);
        packet.set_checksum(0);
        header_len
    }

    /// Every header field but the checksum, the options included; the data offset says
    /// `header_len` (which the caller computed once).
    fn write_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, header_len: usize) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack.unwrap_or_default());
        packet.set_header_len(header_len);
        let ack_bit = if self.ack.is_some() { TcpFlags::ACK } else { 0 };
        packet.set_flags(TcpFlags((self.flags.0 & !TcpFlags::ACK) | ack_bit));
        packet.set_window_len(self.window);
        packet.set_urgent_at(self.urgent);
        self.options.emit(packet.options_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::tests::naive_sum;
    use proptest::prelude::*;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    // A Linux SYN 10.0.0.1:45678 -> 10.0.0.2:80, seq 0x12345678, window 64240, options
    // MSS 1460, SACK-permitted, TS (123456, 0), NOP, WS 7: data offset 10.
    const SYN: [u8; 40] = [
        0xb2, 0x6e, 0x00, 0x50, // ports
        0x12, 0x34, 0x56, 0x78, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // offset 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum (filled below), urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, // SACKOK TS
        0x01, 0x03, 0x03, 0x07, // NOP WS 7
    ];
    const SYN_CHECKSUM: u16 = 0x3b60;

    fn syn_bytes() -> [u8; 40] {
        let mut b = SYN;
        b[16..18].copy_from_slice(&SYN_CHECKSUM.to_be_bytes());
        b
    }

    fn syn_repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 45678,
            dst_port: 80,
            seq: SeqNumber(0x12345678),
            ack: None,
            flags: TcpFlags(TcpFlags::SYN),
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                sack: SackBlocks::default(),
                timestamp: Some((123456, 0)),
            },
            payload: &[],
        }
    }

    fn caps() -> ChecksumCaps {
        ChecksumCaps::default()
    }

    /// The reference: pseudo-header and segment summed naively in one buffer.
    fn naive_tcp_sum(segment: &[u8]) -> u16 {
        let mut all = [0u8; 12 + 128];
        all[..4].copy_from_slice(&SRC.0);
        all[4..8].copy_from_slice(&DST.0);
        all[9] = 6;
        all[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
        all[12..12 + segment.len()].copy_from_slice(segment);
        naive_sum(&all[..12 + segment.len()])
    }

    fn parse(b: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(&TcpPacket::new_unchecked(b), SRC, DST, &caps())
    }

    /// Puts `options` into a header (data offset set to fit, padded with EOL), with a
    /// correct checksum, and parses it.
    fn parse_with_options(options: &[u8]) -> Result<TcpOptions> {
        let mut buf = [0u8; 60];
        let header_len = HEADER_LEN + options.len().div_ceil(4) * 4;
        buf[..20].copy_from_slice(&SYN[..20]);
        buf[20..20 + options.len()].copy_from_slice(options);
        buf[12] = ((header_len / 4) as u8) << 4;
        let c = !naive_tcp_sum(&buf[..header_len]);
        buf[16..18].copy_from_slice(&c.to_be_bytes());
        parse(&buf[..header_len]).map(|r| r.options)
    }

    #[test]
    fn syn_known_bytes() {
        assert_eq!(naive_tcp_sum(&syn_bytes()), 0xffff);
        assert_eq!(parse(&syn_bytes()), Ok(syn_repr()));
        let mut buf = [0u8; 40];
        let repr = syn_repr();
        assert_eq!(repr.header_len(), 40);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST, &caps());
        assert_eq!(buf, syn_bytes());
    }

    #[test]
    fn ack_with_payload() {
        let repr = TcpRepr {
            ack: Some(SeqNumber(0xdeadbeef)),
            flags: TcpFlags(TcpFlags::PSH),
            options: TcpOptions {
                timestamp: Some((1, 2)),
                ..TcpOptions::default()
            },
            payload: b"GET / HTTP/1.0\r\n\r\n",
            ..syn_repr()
        };
        let mut buf = [0u8; 80];
        let len = repr.buffer_len();
        assert_eq!(len, 32 + 18);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..len]), SRC, DST, &caps());
        assert_eq!(naive_tcp_sum(&buf[..len]), 0xffff);
        // NOP NOP TS: the layout peers' fast paths expect.
        assert_eq!(&buf[20..24], &[1, 1, 8, 10]);
        let packet = TcpPacket::new_checked(&buf[..len]).unwrap();
        assert!(packet.ack() && packet.psh() && !packet.syn());
        assert_eq!(TcpRepr::parse(&packet, SRC, DST, &caps()), Ok(repr));
    }

    #[test]
    fn ack_bit_in_flags_is_ignored_on_emit() {
        let repr = TcpRepr {
            flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            ..syn_repr()
        };
        let mut buf = [0u8; 40];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST, &caps());
        assert_eq!(buf[13], TcpFlags::SYN);
    }

    #[test]
    fn emit_without_checksum() {
        let mut buf = [0xffu8; 40];
        syn_repr().emit(
            &mut TcpPacket::new_unchecked(&mut buf[..]),
            SRC,
            DST,
            &ChecksumCaps::ignored(),
        );
        assert_eq!(&buf[16..18], &[0, 0]);
        assert_eq!(parse(&buf), Err(Error::Checksum));
        let lax = TcpRepr::parse(
            &TcpPacket::new_unchecked(&buf[..]),
            SRC,
            DST,
            &ChecksumCaps::ignored(),
        );
        assert_eq!(lax, Ok(syn_repr()));
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.fill_pseudo_header_checksum(SRC, DST);
        assert_eq!(p.checksum(), ip::pseudo_header_v4(SRC, DST, IpProtocol::Tcp, 40));
    }

    #[test]
    fn checksum_over_ipv6_covers_the_ipv6_pseudo_header() {
        use crate::ipv6::Ipv6Address;
        let (s6, d6) = (
            Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]),
            Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]),
        );
        let caps = ChecksumCaps::default();
        let mut buf = [0u8; 40];
        syn_repr().emit(&mut TcpPacket::new_unchecked(&mut buf[..]), s6, d6, &caps);
        // The RFC 8200 8.1 layout summed by hand: addresses, 32-bit length, next header.
        let mut ph = [0u8; 40];
        ph[..16].copy_from_slice(&s6.0);
        ph[16..32].copy_from_slice(&d6.0);
        ph[34..36].copy_from_slice(&40u16.to_be_bytes());
        ph[39] = 6;
        assert_eq!(
            checksum::combine(&[checksum::sum(&ph), checksum::sum(&buf)]),
            0xffff
        );
        let p = TcpPacket::new_unchecked(&buf[..]);
        assert_eq!(TcpRepr::parse(&p, s6, d6, &caps), Ok(syn_repr()));
        // The same bytes do not pass as IPv4, nor between other IPv6 addresses.
        assert_eq!(TcpRepr::parse(&p, SRC, DST, &caps), Err(Error::Checksum));
        assert_eq!(
            TcpRepr::parse(&p, d6, s6, &caps).is_ok(),
            true,
            "the sum is symmetric"
        );
        assert_eq!(
            TcpRepr::parse(&p, s6, Ipv6Address::LOOPBACK, &caps),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn malformed_header() {
        assert_eq!(parse(&syn_bytes()[..19]), Err(Error::Truncated));
        assert_eq!(
            TcpPacket::new_checked(&syn_bytes()[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut b = syn_bytes();
        b[12] = 0x40; // data offset 4
        assert_eq!(parse(&b), Err(Error::Malformed));
        b[12] = 0xb0; // data offset 11 > 40-byte buffer
        assert_eq!(parse(&b), Err(Error::Truncated));
        let mut b = syn_bytes();
        b[30] ^= 0x01;
        assert_eq!(parse(&b), Err(Error::Checksum));
        assert_eq!(
            TcpRepr::parse(&TcpPacket::new_unchecked(&syn_bytes()[..]), DST, SRC, &caps()).map(|r| r.seq),
            Ok(SeqNumber(0x12345678)) // swapped addresses sum the same
        );
        assert_eq!(
            TcpRepr::parse(&TcpPacket::new_unchecked(&syn_bytes()[..]), SRC, SRC, &caps()),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn malformed_options() {
        let m = Err(Error::Malformed);
        assert_eq!(parse_with_options(&[2, 0, 0, 0]), m); // length 0
        assert_eq!(parse_with_options(&[30, 1, 1, 1]), m); // length 1, unknown kind
        assert_eq!(parse_with_options(&[1, 1, 1, 2]), m); // kind with no length byte
        assert_eq!(parse_with_options(&[1, 1, 30, 3]), m); // unknown runs past header
        assert_eq!(parse_with_options(&[8, 10, 0, 0, 0, 0, 0, 0]), m); // TS past header
        assert_eq!(parse_with_options(&[2, 3, 5, 1]), m); // MSS length 3
        assert_eq!(parse_with_options(&[2, 5, 5, 180, 0, 0, 0, 0]), m); // MSS length 5
        assert_eq!(parse_with_options(&[3, 4, 7, 0]), m); // WS length 4
        assert_eq!(parse_with_options(&[3, 2, 1, 1]), m); // WS length 2
        assert_eq!(parse_with_options(&[4, 3, 0, 1]), m); // SACKOK length 3
        assert_eq!(parse_with_options(&[5, 2, 1, 1]), m); // SACK with no block
        assert_eq!(parse_with_options(&[5, 9, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]), m); // SACK 9
        assert_eq!(
            parse_with_options(&[8, 9, 0, 0, 0, 1, 0, 0, 0, 1, 1]), // TS length 9
            m
        );
        // The same options with the right lengths parse.
        assert_eq!(
            parse_with_options(&[3, 3, 7, 0]).map(|o| o.window_scale),
            Ok(Some(7))
        );
    }

    #[test]
    fn option_parsing_rules() {
        // Unknown kinds are skipped by length; EOL stops parsing (garbage after it).
        let o = parse_with_options(&[
            30, 4, 0xaa, 0xbb, // MPTCP-ish, skipped
            34, 2, // TFO cookie request, skipped
            2, 4, 0x05, 0xb4, // MSS
            0, 0xde, 0xad, 0xbe, // EOL then garbage
        ])
        .unwrap();
        assert_eq!(
            o,
            TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            }
        );
        // SACK blocks in order.
        let o =
            parse_with_options(&[1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40]).unwrap();
        assert_eq!(
            o.sack.as_slice(),
            &[(SeqNumber(10), SeqNumber(20)), (SeqNumber(30), SeqNumber(40))]
        );
        // Empty options and all-NOP options.
        assert_eq!(parse_with_options(&[]), Ok(TcpOptions::default()));
        assert_eq!(parse_with_options(&[1, 1, 1, 1]), Ok(TcpOptions::default()));
    }

    #[test]
    fn more_than_four_sack_blocks_keeps_first_four() {
        // Not possible inside a 60-byte header, but TcpOptions::parse takes any slice.
        let mut data = [0u8; 2 + 5 * 8];
        data[0] = 5;
        data[1] = 42;
        for i in 0..5u32 {
            let at = 2 + 8 * i as usize;
            data[at..at + 4].copy_from_slice(&(100 * i).to_be_bytes());
            data[at + 4..at + 8].copy_from_slice(&(100 * i + 50).to_be_bytes());
        }
        let o = TcpOptions::parse(&data).unwrap();
        assert_eq!(o.sack.len(), 4);
        assert_eq!(o.sack.as_slice()[3], (SeqNumber(300), SeqNumber(350)));
    }

    #[test]
    fn emit_layouts_are_padded() {
        let mut sack = SackBlocks::default();
        for i in 0..4 {
            sack.push(SeqNumber(i * 10), SeqNumber(i * 10 + 5));
        }
        let full = TcpOptions {
            mss: Some(1460),
            window_scale: Some(14),
            sack_permitted: true,
            sack,
            timestamp: Some((7, 8)),
        };
        for mask in 0u8..32 {
            let o = TcpOptions {
                mss: full.mss.filter(|_| mask & 1 != 0),
                window_scale: full.window_scale.filter(|_| mask & 2 != 0),
                sack_permitted: mask & 4 != 0,
                sack: if mask & 8 != 0 {
                    full.sack
                } else {
                    SackBlocks::default()
                },
                timestamp: full.timestamp.filter(|_| mask & 16 != 0),
            };
            let len = o.buffer_len();
            assert_eq!(len % 4, 0, "{o:?}");
            assert!(len <= MAX_OPTIONS_LEN);
            let mut buf = [0u8; 40];
            assert_eq!(o.emit(&mut buf), len);
            let back = TcpOptions::parse(&buf[..len]).unwrap();
            let n = o.emitted_sack_blocks();
            assert_eq!(back.sack.as_slice(), &o.sack.as_slice()[..n]);
            let mut expected = o;
            expected.sack.clear();
            for &(l, r) in &o.sack.as_slice()[..n] {
                expected.sack.push(l, r);
            }
            assert_eq!(back, expected);
        }
        // With timestamps alone, three blocks fit (as in Linux); with everything, two.
        let ts_sack = TcpOptions {
            sack,
            timestamp: Some((1, 1)),
            ..TcpOptions::default()
        };
        assert_eq!(ts_sack.emitted_sack_blocks(), 3);
        assert_eq!(full.emitted_sack_blocks(), 2);
        // MSS + SACK-permitted + 4 blocks does not fit aligned but fits compactly.
        let compact = TcpOptions {
            mss: Some(536),
            sack_permitted: true,
            sack,
            ..TcpOptions::default()
        };
        assert_eq!(compact.emitted_sack_blocks(), 4);
        assert_eq!(compact.buffer_len(), 40);
    }

    #[test]
    fn options_are_parsed_at_any_alignment() {
        // RFC 9293 MUST-64: the same options shifted by 0..3 leading NOPs, so that every
        // multi-byte option starts at every offset modulo 4.
        let opts = [
            2, 4, 0x05, 0xb4, // MSS 1460
            3, 3, 9, // WS 9
            4, 2, // SACK-permitted
            8, 10, 0, 0, 0, 5, 0, 0, 0, 6, // TS (5, 6)
            5, 10, 0, 0, 0, 10, 0, 0, 0, 20, // SACK (10, 20)
        ];
        let expected = TcpOptions {
            mss: Some(1460),
            window_scale: Some(9),
            sack_permitted: true,
            sack: {
                let mut s = SackBlocks::default();
                s.push(SeqNumber(10), SeqNumber(20));
                s
            },
            timestamp: Some((5, 6)),
        };
        for shift in 0..4 {
            let mut o = vec![1u8; shift];
            o.extend_from_slice(&opts);
            assert_eq!(parse_with_options(&o), Ok(expected), "shifted by {shift}");
        }
    }

    #[test]
    fn emitted_options_have_lengths_and_zero_padding() {
        // RFC 9293 MUST-68: every option but EOL and NOP carries a length byte;
        // MUST-69: the option area is padded to a 32-bit boundary (with NOPs for alignment
        // and zeros after the last option).
        let mut sack = SackBlocks::default();
        sack.push(SeqNumber(1), SeqNumber(2));
        for mask in 0u8..32 {
            let o = TcpOptions {
                mss: Some(1460).filter(|_| mask & 1 != 0),
                window_scale: Some(7).filter(|_| mask & 2 != 0),
                sack_permitted: mask & 4 != 0,
                sack: if mask & 8 != 0 {
                    sack
                } else {
                    SackBlocks::default()
                },
                timestamp: Some((1, 2)).filter(|_| mask & 16 != 0),
            };
            let mut buf = [0xeeu8; 40];
            let len = o.emit(&mut buf);
            assert_eq!(len, o.buffer_len());
            assert_eq!(len % 4, 0);
            let mut i = 0;
            while i < len {
                match buf[i] {
                    0 => {
                        assert!(buf[i..len].iter().all(|&b| b == 0), "{o:?}: {:?}", &buf[..len]);
                        break;
                    }
                    1 => i += 1,
                    kind => {
                        let l = usize::from(buf[i + 1]);
                        let want = match kind {
                            2 => 4,
                            3 => 3,
                            4 => 2,
                            5 => 2 + 8 * o.emitted_sack_blocks(),
                            8 => 10,
                            k => panic!("unexpected kind {k}"),
                        };
                        assert_eq!(l, want, "{o:?}: {:?}", &buf[..len]);
                        i += l;
                    }
                }
            }
            assert!(i <= len);
        }
    }

    #[test]
    fn packet_accessors() {
        let b = syn_bytes();
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 45678);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.header_len(), 40);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.options().len(), 20);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(SRC, DST));
    }

    /// The shortcuts for timestamps alone read and write what the general code does.
    #[test]
    fn timestamps_alone_take_the_shortcut_with_the_same_result() {
        let ts = (0x0102_0304, 0xa0b0_c0d0);
        let only = TcpOptions {
            timestamp: Some(ts),
            ..TcpOptions::default()
        };
        let mut b = [0xee; 40];
        assert_eq!(only.emit(&mut b), 12);
        assert_eq!(only.buffer_len(), 12);
        assert_eq!(b[..12], [1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
        assert_eq!(b[12], 0xee, "nothing written past the options");
        assert_eq!(TcpOptions::parse(&b[..12]), Ok(only));
        // The same option in other places goes through the loop, to the same result.
        let moved = [8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 1, 1];
        assert_eq!(TcpOptions::parse(&moved), Ok(only));
        let padded = [1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 0, 0, 0, 0];
        assert_eq!(TcpOptions::parse(&padded), Ok(only));
        // A timestamp with anything else is not the shortcut's.
        let with_sack = TcpOptions {
            sack_permitted: true,
            ..only
        };
        let n = with_sack.emit(&mut b);
        assert_eq!(TcpOptions::parse(&b[..n]), Ok(with_sack));
        // A cut one is still malformed.
        assert_eq!(
            TcpOptions::parse(&b"\x01\x01\x08\x0a\x01\x02\x03\x04\xa0\xb0\xc0"[..]),
            Err(Error::Malformed)
        );
    }

    fn arb_options() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
            proptest::option::of((any::<u32>(), any::<u32>())),
        )
            .prop_map(|(mss, window_scale, sack_permitted, blocks, timestamp)| {
                let mut sack = SackBlocks::default();
                for (l, r) in blocks {
                    sack.push(SeqNumber(l), SeqNumber(r));
                }
                TcpOptions {
                    mss,
                    window_scale,
                    sack_permitted,
                    sack,
                    timestamp,
                }
            })
    }

    /// A byte string that is mostly made of options, some of them broken.
    fn arb_option_bytes() -> impl Strategy<Value = Vec<u8>> {
        let one = prop_oneof![
            Just(vec![kind::NOP]),
            Just(vec![kind::EOL]),
            any::<u16>().prop_map(|m| vec![2, 4, (m >> 8) as u8, m as u8]),
            any::<u8>().prop_map(|s| vec![3, 3, s]),
            Just(vec![4, 2]),
            (1usize..5, any::<u8>()).prop_map(|(n, b)| {
                let mut v = vec![5, (2 + 8 * n) as u8];
                v.resize(2 + 8 * n, b);
                v
            }),
            any::<[u8; 8]>().prop_map(|t| {
                let mut v = vec![8, 10];
                v.extend_from_slice(&t);
                v
            }),
            (any::<u8>(), any::<u8>()).prop_map(|(k, l)| vec![k, l]),
            proptest::collection::vec(any::<u8>(), 0..6),
        ];
        proptest::collection::vec(one, 0..8).prop_map(|parts| {
            let mut v: Vec<u8> = parts.concat();
            v.truncate(MAX_OPTIONS_LEN);
            while v.len() % 4 != 0 {
                v.push(kind::NOP);
            }
            v
        })
    }

    use std::vec;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn round_trip(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            seq in any::<u32>(),
            ack in proptest::option::of(any::<u32>()),
            flags in any::<u8>(),
            window in any::<u16>(),
            urgent in any::<u16>(),
            options in arb_options(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = TcpRepr {
                src_port,
                dst_port,
                seq: SeqNumber(seq),
                ack: ack.map(SeqNumber),
                flags: TcpFlags(flags & !TcpFlags::ACK),
                window,
                urgent,
                options,
                payload: &payload,
            };
            let mut buf = [0u8; 128];
            let len = repr.buffer_len();
            repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..len]), SRC, DST, &caps());
            prop_assert_eq!(naive_tcp_sum(&buf[..len]), 0xffff);
            let back = parse(&buf[..len]).unwrap();
            let n = options.emitted_sack_blocks();
            prop_assert_eq!(back.options.sack.as_slice(), &options.sack.as_slice()[..n]);
            prop_assert_eq!(TcpRepr { options: TcpOptions { sack: options.sack, ..back.options }, ..back }, repr);
            // The header alone, the payload written by someone else: the same bytes.
            let mut alone = [0u8; 128];
            let h = repr.header_len();
            prop_assert_eq!(repr.emit_header(&mut alone[..h]), h);
            alone[h..len].copy_from_slice(&payload);
            TcpPacket::new_unchecked(&mut alone[..len]).fill_checksum(SRC, DST);
            prop_assert_eq!(&alone[..len], &buf[..len]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            header in any::<[u8; 20]>(),
            options in arb_option_bytes(),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
            raw_offset in any::<bool>(),
        ) {
            let mut buf = Vec::new();
            buf.extend_from_slice(&header);
            buf.extend_from_slice(&options);
            buf.extend_from_slice(&payload);
            if !raw_offset {
                buf[12] = (((20 + options.len()) / 4) as u8) << 4;
            }
            let packet = TcpPacket::new_unchecked(&buf[..]);
            if let Ok(repr) = TcpRepr::parse(&packet, SRC, DST, &ChecksumCaps::ignored()) {
                // Anything parsed re-emits in full (it fit once, so it fits compactly).
                prop_assert_eq!(repr.options.emitted_sack_blocks(), repr.options.sack.len());
                let mut out = vec![0u8; repr.buffer_len()];
                repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), SRC, DST, &caps());
                prop_assert_eq!(parse(&out), Ok(repr));
            }
            let _ = parse(&buf);
            let _ = TcpOptions::parse(&options);
        }
    }
}
