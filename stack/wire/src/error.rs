//! The one error type of the wire layer: why a packet was dropped.
//!
//! Every variant is a counted drop, never a panic and never an allocation. `as_str` gives a
//! stable name for counters and logs; `ALL` and `index` let a driver keep a fixed array of
//! counters indexed by error.

use core::fmt;

/// Why a header could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the fixed header, or than a length field says it is.
    Truncated,
    /// A field holds a value no valid packet can carry: a wrong IP version, a header length
    /// below the minimum, a length field smaller than its header, a broken TCP option.
    Malformed,
    /// The checksum did not verify.
    Checksum,
    /// Well formed, but not something Sluice handles: non-Ethernet/IPv4 ARP, an ICMP
    /// message type other than echo and destination unreachable.
    Unsupported,
    /// An IPv4 fragment (MF set or a nonzero offset): the interface reassembles it before
    /// its payload is read.
    Fragmented,
}

impl Error {
    /// Every variant, in `index` order.
    pub const ALL: [Error; 5] = [
        Error::Truncated,
        Error::Malformed,
        Error::Checksum,
        Error::Unsupported,
        Error::Fragmented,
    ];

    /// A short, stable, lowercase name, for counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "checksum",
            Error::Unsupported => "unsupported",
            Error::Fragmented => "fragmented",
        }
    }

    /// The position of this variant in `ALL`, to index an array of counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// The result of parsing a header.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_all() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.as_str().is_empty());
        }
    }
}
