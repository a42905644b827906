//! Timers: retransmission (RFC 6298), persist, delayed ACK, keepalive, TIME-WAIT.
//! The TCB keeps one deadline per kind; the driver asks `poll_at` and calls
//! `handle_timeout`.

use core::time::Duration;

use sluice_wire::Instant;

use crate::congestion::CongestionControl;
use crate::error::{ConnError, State};

use crate::tcb::{OptSeq, Tcb};

impl Tcb {
    /// The earliest timer deadline, if any timer runs. Output that is ready now (see
    /// `SegmentOutcome::transmit`) is not reflected here: poll it after each event.
    pub fn poll_at(&self) -> Option<Instant> {
        // A running minimum of plain integers (an unset timer is `u64::MAX`): collecting
        // the `Option`s into an array first made the compiler store and reload each one
        // through the stack, a store-forwarding stall apiece, on every event.
        let t = &self.timers;
        let ns = |o: Option<Instant>| o.map_or(u64::MAX, Instant::total_nanos);
        let min = ns(t.rtx)
            .min(ns(t.persist))
            .min(ns(t.delack))
            .min(ns(t.keepalive))
            .min(ns(t.time_wait))
            .min(ns(t.rack))
            .min(ns(t.tlp));
        (min != u64::MAX).then_some(Instant::from_nanos(min))
    }

    /// Runs every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| matches!(t, Some(d) if d <= now);
        if due(self.timers.time_wait) {
            // 2 MSL elapsed: delete the TCB.
            self.enter_closed(None);
            return;
        }
        if due(self.timers.delack) {
            self.timers.delack = None;
            self.ack_now = true;
            // No answer came to carry the ACK: not request/response after all.
            self.pingpong = false;
        }
        if due(self.timers.rtx) {
            self.on_rto(now);
        }
        if due(self.timers.rack) {
            self.on_rack_timer(now);
        }
        if due(self.timers.tlp) {
            self.on_tlp_timer(now);
        }
        if due(self.timers.persist) {
            self.on_persist(now);
        }
        if due(self.timers.keepalive) {
            self.on_keepalive(now);
        }
    }

    /// RFC 6298 section 5.4-5.6: retransmit from SND.UNA, back off, restart.
    fn on_rto(&mut self, now: Instant) {
        self.timers.rtx = None;
        if self.snd_una == self.snd_max {
            return;
        }
        self.counters.rto_expirations += 1;
        self.retries = self.retries.saturating_add(1);
        let opening = matches!(self.state, State::SynSent | State::SynReceived);
        let limit = if opening {
            self.cfg.max_syn_retransmissions
        } else {
            self.cfg.max_retransmissions
        };
        let user_timeout = match (self.cfg.user_timeout, self.stalled_since) {
            (Some(ut), Some(since)) => now - since >= ut,
            _ => false,
        };
        if u32::from(self.retries) > limit || user_timeout {
            // R2 reached (RFC 9293 3.8.3): give up.
            if self.state == State::SynReceived && self.passive {
                self.back_to_listen();
                if self.state == State::Closed {
                    self.error = Some(ConnError::TimedOut);
                }
            } else {
                self.enter_closed(Some(ConnError::TimedOut));
            }
            return;
        }
        let flight_size = self.snd_max - self.snd_una;
        if self.retries == 1 {
            // RFC 5681 section 3.1: ssthresh is held constant when the same segment
            // times out again (cwnd is already one segment).
            self.cc.on_rto(flight_size, self.snd_max, self.mss);
        }
        self.sack_on_rto();
        self.timers.tlp = None;
        self.timers.rack = None;
        self.tlp_probe = OptSeq::NONE;
        self.rtt.on_timeout();
        self.snd_nxt = self.snd_una;
        self.rtt_timed = None;
        self.rtx_una = false;
        self.dup_acks = 0;
        if opening {
            self.syn_retransmitted = true;
        }
        self.timers.rtx = Some(self.rtt.rto_deadline(now));
    }

    pub(crate) fn persist_interval(&self) -> Duration {
        let base = self.rtt.rto();
        base.saturating_mul(1 << self.persist_backoff.min(16))
            .min(self.cfg.rto_max)
    }

    /// Zero-window probe timer (RFC 9293 3.8.6.1): probe, back off exponentially. The
    /// connection is kept as long as the peer answers (MUST-37).
    fn on_persist(&mut self, now: Instant) {
        self.timers.persist = None;
        let unsent = self.tx.len() - (self.snd_nxt - self.tx_seq0).min(self.tx.len());
        if self.snd_wnd > 0 || unsent == 0 || !self.is_established() {
            return;
        }
        self.persist_unanswered = self.persist_unanswered.saturating_add(1);
        if u32::from(self.persist_unanswered) > self.cfg.max_retransmissions {
            self.enter_closed(Some(ConnError::TimedOut));
            return;
        }
        self.send_persist_probe = true;
        self.persist_backoff = self.persist_backoff.saturating_add(1).min(16);
        self.timers.persist = Some(now + self.persist_interval());
    }

    /// Keepalive (RFC 9293 3.8.4): after `idle` without traffic, probe every
    /// `interval`; abort after `count` unanswered probes.
    fn on_keepalive(&mut self, now: Instant) {
        self.timers.keepalive = None;
        let Some(k) = self.cfg.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_una != self.snd_max {
            // Data outstanding: the retransmission timer watches the peer.
            self.timers.keepalive = Some(now + k.idle);
            return;
        }
        if u32::from(self.keepalive_unanswered) >= k.count {
            self.queue_rst(self.remote_port, self.snd_max, None);
            self.enter_closed(Some(ConnError::TimedOut));
            return;
        }
        self.keepalive_unanswered = self.keepalive_unanswered.saturating_add(1);
        self.send_keepalive = true;
        self.timers.keepalive = Some(now + k.interval);
    }
}
