//! Sans-I/O TCP core (RFC 9293) for Sluice.
//!
//! A [`Tcb`] is a plain struct: the driver feeds it segments (`on_segment`), asks it
//! for segments to send (`poll_transmit`), and runs its timers (`poll_at`,
//! `handle_timeout`). Time is always passed in; nothing here reads a clock, does I/O,
//! or allocates after a connection is created. Segment types come from `sluice-wire`.
//!
//! Files: `input.rs` (segment arrival, RFC 9293 3.10.7), `output.rs` (segment
//! generation), `timers.rs`, `congestion.rs` (the controller trait, NewReno),
//! `cubic.rs` (RFC 9438), `assembler.rs` (out-of-order reassembly), `rtt.rs` (RFC 6298),
//! `timestamps.rs` (RFC 7323 TS.Recent, PAWS, RTTM; RFC 5961 challenge ACK limit),
//! `sack.rs` (scoreboard and receiver blocks), `recovery.rs` (RFC 6675 with PRR),
//! `rack.rs` (RACK-TLP, simplified), `listener.rs` (backlog, accept queue, SYN cookies),
//! `cookie.rs` (the cookie itself), `rst.rs` (RST for segments without a connection).

mod assembler;
pub mod budget;
mod buffer;
pub mod config;
pub mod congestion;
mod controller;
mod cookie;
mod cubic;
mod error;
mod input;
pub mod keyed;
mod listener;
mod loss_detection;
mod loss_recovery;
mod output;
mod rack;
mod recovery;
mod recv;
mod recycle;
mod rst;
mod rtt;
mod sack;
mod send;
mod tcb;
mod timers;
mod timestamps;

pub use budget::MemBudget;
pub use config::{ConfigCache, CongestionKind, Keepalive, SharedConfig, TcpConfig, DEFAULT_MSS, MIN_MSS};
pub use congestion::{AckInfo, CcAction, CongestionControl, NewReno};
pub use controller::Congestion;
pub use cookie::MSS_TABLE as SYN_COOKIE_MSS_TABLE;
pub use cubic::{Cubic, CUBIC_ALPHA, CUBIC_BETA, CUBIC_C};
pub use error::{
    ConnError, Counters, DropReason, IcmpError, ListenError, RecvError, SegmentOutcome, SendError, State,
};
pub use listener::{ListenOutcome, ListenReply, Listener, ListenerCounters};
pub use rst::rst_for;
pub use rtt::RttEstimator;
pub use tcb::Tcb;

pub use sluice_buf::{Frame, FrameMut};
pub use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
pub use sluice_wire::Instant;

#[cfg(test)]
mod tests;
