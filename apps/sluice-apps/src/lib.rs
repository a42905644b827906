//! Applications on Sluice: an echo server, an HTTP/1.1 server, a bulk transfer tool and a
//! load generator.
//!
//! The logic of each is written once, sans-I/O, as a `Session` (bytes in, bytes out):
//! `echo`, `http`, `bulk`, `loadgen`. Two drivers run the same sessions: `drive::sluice`
//! (an engine `App` per core, reading and writing in place in the stack's buffers) and
//! `drive::kernel` (the Linux kernel's sockets, a thread per core with `poll(2)`), so
//! that a run can compare the stacks with the same application. `Conn` in `session` holds
//! the connection lifecycle (backpressure, half-close, linger) shared by both.

pub mod bulk;
pub mod drive;
pub mod echo;
pub mod http;
pub mod loadgen;
pub mod out;
pub mod run;
pub mod session;

pub use out::OutQueue;
pub use session::{Conn, Session, Tally};
