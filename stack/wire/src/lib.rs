//! Zero-copy header views and Reprs for Sluice.
//!
//! Every header is a view (`Packet<T: AsRef<[u8]>>`, with `new_checked` for untrusted input
//! and `new_unchecked` for emitting) plus a `Repr` (`parse`, `emit`, `buffer_len`). No
//! unsafe, no allocation, no I/O: the same code runs on `&[u8]` in tests and on an mbuf's
//! data in production. Malformed input is an `Error`, which the caller counts as a drop.
#![no_std]
#![forbid(unsafe_code)]

pub mod tcp;
pub mod time;

pub use time::Instant;
