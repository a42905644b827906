//! Sans-I/O TCP core (RFC 9293) for Sluice.
//!
//! A [`Tcb`] is a plain struct: the driver feeds it segments (`on_segment`), asks it
//! for segments to send (`poll_transmit`), and runs its timers (`poll_at`,
//! `handle_timeout`). Time is always passed in; nothing here reads a clock, does I/O,
//! or allocates after a connection is created. Segment types come from `sluice-wire`.
//!
//! Files: `input.rs` (segment arrival, RFC 9293 3.10.7), `output.rs` (segment
//! generation), `timers.rs`, `congestion.rs` (NewReno behind a trait), `assembler.rs`
//! (out-of-order reassembly), `rtt.rs` (RFC 6298), `listener.rs` (backlog and accept
//! queue), `rst.rs` (RST for segments without a connection).

mod assembler;
mod buffer;
pub mod config;
pub mod congestion;
mod error;
mod input;
mod listener;
mod output;
mod rst;
mod rtt;
mod tcb;
mod timers;

pub use config::{CongestionKind, Keepalive, TcpConfig, DEFAULT_MSS, MIN_MSS};
pub use congestion::{AckInfo, CcAction, Congestion, CongestionControl, NewReno};
pub use error::{
    ConnError, Counters, DropReason, IcmpError, ListenError, RecvError, SegmentOutcome, SendError, State,
};
pub use listener::{ListenOutcome, Listener};
pub use rst::rst_for;
pub use rtt::RttEstimator;
pub use tcb::Tcb;

pub use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
pub use sluice_wire::Instant;

#[cfg(test)]
mod tests;
