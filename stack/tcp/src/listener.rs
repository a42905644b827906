//! Passive open for many connections on one port: a backlog of half-open connections
//! and an accept queue. The listener holds handles only; the owner (the IP layer)
//! keeps the TCBs in its own table, keyed however it likes.

use std::collections::VecDeque;

use sluice_wire::tcp::{SeqNumber, TcpRepr};
use sluice_wire::Instant;

use crate::config::TcpConfig;
use crate::error::{ListenError, State};
use crate::rst::rst_for;
use crate::tcb::Tcb;

/// What the owner must do with a segment given to `Listener::on_segment`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ListenOutcome {
    /// Nothing (RST, or no SYN): drop it.
    Ignored,
    /// Send this RST (the segment carried an ACK, RFC 9293 3.10.7.2).
    Reset(TcpRepr<'static>),
    /// A new connection in SYN-RECEIVED: store it under the handle that was passed,
    /// then drive it (`poll_transmit` sends the SYN-ACK).
    Accepted(Tcb),
    /// The SYN was dropped (backlog or accept queue full).
    Dropped(ListenError),
}

/// A listening port. `H` is the owner's handle for a connection (a table index, the
/// 4-tuple...).
#[derive(Debug)]
pub struct Listener<H> {
    cfg: TcpConfig,
    port: u16,
    backlog: usize,
    half_open: Vec<H>,
    accept_queue: VecDeque<H>,
    dropped_syns: u64,
}

impl<H: Copy + PartialEq> Listener<H> {
    /// Listens on `port`, with at most `backlog` half-open connections and at most
    /// `backlog` established ones waiting in the accept queue.
    pub fn new(cfg: TcpConfig, port: u16, backlog: usize) -> Self {
        let backlog = backlog.max(1);
        Listener {
            cfg,
            port,
            backlog,
            half_open: Vec::with_capacity(backlog),
            accept_queue: VecDeque::with_capacity(backlog),
            dropped_syns: 0,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A segment for this port that matched no connection (RFC 9293 3.10.7.2). A SYN
    /// creates a TCB with `isn` that the owner stores under `handle`.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr, isn: SeqNumber, handle: H) -> ListenOutcome {
        if seg.dst_port != self.port || seg.flags.rst() {
            return ListenOutcome::Ignored;
        }
        if seg.ack.is_some() {
            return match rst_for(seg) {
                Some(r) => ListenOutcome::Reset(r),
                None => ListenOutcome::Ignored,
            };
        }
        if !seg.flags.syn() {
            return ListenOutcome::Ignored;
        }
        if self.half_open.len() >= self.backlog {
            self.dropped_syns += 1;
            return ListenOutcome::Dropped(ListenError::BacklogFull);
        }
        if self.accept_queue.len() >= self.backlog {
            self.dropped_syns += 1;
            return ListenOutcome::Dropped(ListenError::AcceptQueueFull);
        }
        let mut tcb = Tcb::listen(self.cfg, self.port, isn);
        tcb.return_to_listen = false;
        let _ = tcb.on_segment(now, seg);
        debug_assert_eq!(tcb.state(), State::SynReceived);
        self.half_open.push(handle);
        ListenOutcome::Accepted(tcb)
    }

    /// Tells the listener about a state change of one of its connections (call it
    /// whenever `SegmentOutcome::transition` is `Some`, or after timeouts). Established
    /// connections move to the accept queue; closed half-open ones are forgotten.
    pub fn update(&mut self, handle: H, state: State) {
        let Some(i) = self.half_open.iter().position(|h| *h == handle) else {
            if state == State::Closed {
                self.accept_queue.retain(|h| *h != handle);
            }
            return;
        };
        match state {
            State::SynReceived => {}
            State::Closed | State::Listen => {
                self.half_open.swap_remove(i);
            }
            _ => {
                self.half_open.swap_remove(i);
                self.accept_queue.push_back(handle);
            }
        }
    }

    /// The next established connection, oldest first.
    pub fn accept(&mut self) -> Option<H> {
        self.accept_queue.pop_front()
    }

    pub fn half_open(&self) -> usize {
        self.half_open.len()
    }

    pub fn pending_accept(&self) -> usize {
        self.accept_queue.len()
    }

    /// SYNs dropped because the backlog or accept queue was full.
    pub fn dropped_syns(&self) -> u64 {
        self.dropped_syns
    }
}
