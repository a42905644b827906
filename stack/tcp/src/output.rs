//! Segment generation: `poll_transmit` decides what to send next (RST, SYN, data with
//! Nagle and sender-side SWS avoidance, FIN, probes, ACKs) and updates the send state.

use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpRepr};
use sluice_wire::Instant;

use crate::congestion::CongestionControl;
use crate::error::State;
use crate::tcb::Tcb;

impl Tcb {
    /// The next segment to send, or `None`. Call until `None` after every event. The
    /// payload borrows the send buffer (at most its contiguous part).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<TcpRepr<'_>> {
        if let Some(r) = self.pending_rst.take() {
            self.counters.rst_out += 1;
            self.counters.segments_out += 1;
            return Some(TcpRepr {
                src_port: self.local_port,
                dst_port: r.dst_port,
                seq: r.seq,
                ack: r.ack,
                flags: TcpFlags(TcpFlags::RST),
                window: 0,
                urgent: 0,
                options: Default::default(),
                payload: &[],
            });
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent => (self.snd_nxt == self.iss).then(|| self.emit_syn(now)),
            State::SynReceived => {
                if self.snd_nxt == self.iss {
                    Some(self.emit_syn(now))
                } else if self.ack_now {
                    Some(self.emit_ack(self.snd_max))
                } else {
                    None
                }
            }
            State::FinWait2 | State::TimeWait => {
                (self.ack_now || self.window_update_due()).then(|| self.emit_ack(self.snd_max))
            }
            State::Established | State::FinWait1 | State::CloseWait | State::Closing | State::LastAck => {
                self.emit_established(now)
            }
        }
    }

    fn emit_established(&mut self, now: Instant) -> Option<TcpRepr<'_>> {
        // Fast retransmit / NewReno partial ACK: the segment at SND.UNA.
        if self.rtx_una {
            self.rtx_una = false;
            if self.snd_una < self.snd_max && self.snd_una >= self.tx_seq0 {
                let seq = self.snd_una;
                let len = self.mss.min(self.tx.len());
                let fin = matches!(self.fin_seq(), Some(f) if seq + len == f && self.snd_max > f);
                return Some(self.emit_segment(now, seq, len, fin));
            }
        }
        // New data, go-back-N retransmission after an RTO, FIN.
        if let Some((len, fin)) = self.sendable(now) {
            return Some(self.emit_segment(now, self.snd_nxt, len, fin));
        }
        // Zero-window probe: one byte of new data past the window (RFC 9293 3.8.6.1).
        if self.send_persist_probe {
            self.send_persist_probe = false;
            let off = self.snd_nxt - self.tx_seq0;
            if off < self.tx.len() {
                self.counters.persist_probes += 1;
                self.probe_end = Some(self.snd_nxt + 1);
                let mut r = self.repr(self.snd_nxt, TcpFlags::NONE);
                r.window = self.advertise();
                self.after_ack_sent();
                self.counters.segments_out += 1;
                r.payload = self.tx.slice(off, 1);
                return Some(r);
            }
        }
        // Keepalive: <SEQ=SND.NXT-1>, no data (RFC 9293 3.8.4).
        if self.send_keepalive {
            self.send_keepalive = false;
            self.counters.keepalive_probes += 1;
            return Some(self.emit_ack(self.snd_max - 1));
        }
        if self.ack_now || self.window_update_due() {
            return Some(self.emit_ack(self.snd_max));
        }
        None
    }

    /// How much new data to send now, and whether FIN goes with it: receive window,
    /// congestion window, Nagle (RFC 9293 3.7.4) and sender SWS avoidance (3.8.6.2.1).
    fn sendable(&mut self, now: Instant) -> Option<(usize, bool)> {
        let fin_seq = self.fin_seq();
        if matches!(fin_seq, Some(f) if self.snd_nxt > f) {
            return None; // FIN sent, nothing after it
        }
        let off = self.snd_nxt - self.tx_seq0;
        let unsent = self.tx.len() - off;
        let in_flight = self.in_flight();
        let wnd = self.snd_wnd.min(self.cc.cwnd());
        let usable = wnd.saturating_sub(in_flight);
        let len = unsent.min(usable).min(self.mss);
        if len == 0 {
            if unsent == 0 && fin_seq == Some(self.snd_nxt) {
                return Some((0, true));
            }
            if unsent > 0 && self.snd_wnd == 0 && in_flight == 0 && self.timers.persist.is_none() {
                // Zero window with data waiting: start the persist timer.
                self.timers.persist = Some(now + self.persist_interval());
            }
            return None;
        }
        let retransmission = self.snd_nxt < self.snd_max;
        let send = if len == self.mss || retransmission {
            true
        } else if len == unsent {
            // A short final segment: Nagle allows it when nothing is unacknowledged.
            self.cfg.nodelay || in_flight == 0 || self.fin_queued
        } else {
            // Limited by the window: SWS avoidance waits for at least half the largest
            // window seen, unless nothing is in flight (no ACK would wake us up).
            in_flight == 0 || len >= self.max_snd_wnd / 2
        };
        if !send {
            return None;
        }
        Some((len, fin_seq == Some(self.snd_nxt + len)))
    }

    /// Emits `len` bytes from `seq` (plus FIN), updating SND.NXT/SND.MAX, timers, RTT.
    fn emit_segment(&mut self, now: Instant, seq: SeqNumber, len: usize, fin: bool) -> TcpRepr<'_> {
        let off = seq - self.tx_seq0;
        let len = self.tx.slice(off, len).len();
        let fin = fin && off + len == self.tx.len();
        let end = seq + len + fin as usize;
        if seq < self.snd_max {
            self.counters.retransmits += 1;
            if matches!(self.rtt_timed, Some((e, _)) if e > seq) {
                self.rtt_timed = None; // Karn
            }
        } else if self.rtt_timed.is_none() {
            self.rtt_timed = Some((end, now));
        }
        if self.snd_una == self.snd_max {
            self.stalled_since = Some(now);
        }
        if end > self.snd_nxt {
            self.snd_nxt = end;
        }
        if end > self.snd_max {
            self.snd_max = end;
        }
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(now + self.rtt.rto());
        }
        self.timers.persist = None;
        let mut flags = TcpFlags::NONE;
        if len > 0 && off + len == self.tx.len() {
            flags = flags.with(TcpFlags::PSH);
        }
        if fin {
            flags = flags.with(TcpFlags::FIN);
        }
        let mut r = self.repr(seq, flags);
        r.window = self.advertise();
        self.after_ack_sent();
        self.counters.segments_out += 1;
        self.counters.bytes_out += len as u64;
        r.payload = self.tx.slice(off, len);
        r
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with MSS and window scale options.
    fn emit_syn(&mut self, now: Instant) -> TcpRepr<'static> {
        let syn_ack = self.state == State::SynReceived;
        let mut r = self.repr(self.iss, TcpFlags(TcpFlags::SYN));
        if !syn_ack {
            r.ack = None;
        }
        let wnd = self.rx.free().min(65535);
        r.window = wnd as u16;
        r.options.mss = Some(self.cfg.mss);
        r.options.window_scale = self.offer_wscale;
        if syn_ack {
            self.rcv_adv = self.rcv_nxt + wnd;
        }
        if self.snd_max > self.iss {
            self.counters.retransmits += 1;
            self.rtt_timed = None;
            self.syn_retransmitted = true;
        } else {
            self.rtt_timed = Some((self.iss + 1, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(now + self.rtt.rto());
        }
        self.after_ack_sent();
        self.counters.segments_out += 1;
        r
    }

    /// A segment without data: <SEQ=seq><ACK=RCV.NXT><CTL=ACK>. Pure ACKs use SND.MAX
    /// so that they stay in the peer's window after a go-back-N rewind.
    fn emit_ack(&mut self, seq: SeqNumber) -> TcpRepr<'static> {
        let mut r = self.repr(seq, TcpFlags::NONE);
        r.window = self.advertise();
        self.after_ack_sent();
        self.counters.segments_out += 1;
        r
    }

    fn after_ack_sent(&mut self) {
        self.ack_now = false;
        self.unacked_rx = 0;
        self.timers.delack = None;
    }

    /// The window field to send, with receiver-side SWS avoidance (RFC 9293 3.8.6.2.2):
    /// the right edge moves only by at least min(buffer/2, MSS). Never shrinks it on
    /// purpose (RFC 9293 3.8.6, SHLD-14), except by the rounding of window scaling.
    pub(crate) fn advertise(&mut self) -> u16 {
        let cur = if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        };
        let free = self.rcv_wnd();
        let threshold = (self.rx.capacity() / 2).min(self.cfg.mss as usize);
        let wnd = if free >= cur + threshold {
            free
        } else {
            cur.min(free)
        };
        let field = (wnd >> self.rcv_wscale).min(65535);
        self.rcv_adv = self.rcv_nxt + (field << self.rcv_wscale);
        field as u16
    }

    /// The reader made room: tell the peer when the window opened enough to matter.
    pub(crate) fn window_update_due(&self) -> bool {
        if !matches!(self.state, State::Established | State::FinWait1 | State::FinWait2) || self.fin_received
        {
            return false;
        }
        let cur = if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        };
        let opened = self.rcv_wnd().saturating_sub(cur);
        let mss = self.cfg.mss as usize;
        let half = self.rx.capacity() / 2;
        opened >= half.min(2 * mss) || (cur < mss && opened >= half.min(mss))
    }
}
