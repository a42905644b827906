//! TCP header view and Repr, with options (RFC 9293, RFC 7323, RFC 2018).
//!
//! The types in this first part are the contract between the wire layer and the TCP core
//! (`sluice-tcp`): keep their shape stable.

use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Sub};

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
    pub fn clear(&mut self) {
        self.len = 0;
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

// ---- The header view, parse and emit follow. ----
