//! Segment generation: `poll_transmit` decides what to send next (RST, SYN, data with
//! Nagle and sender-side SWS avoidance, FIN, probes, ACKs) and updates the send state.

use sluice_wire::tcp::{SackBlocks, SeqNumber, TcpFlags, TcpRepr};
use sluice_wire::Instant;

use crate::congestion::CongestionControl;
use crate::error::State;
use crate::tcb::{OptSeq, Tcb};
use crate::timestamps::ts_clock;

impl Tcb {
    /// The next segment to send, or `None`. Call until `None` after every event. The
    /// payload borrows the send buffer (at most its contiguous part).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<TcpRepr<'_>> {
        self.poll_transmit_parts(now).map(|(r, _)| r)
    }

    /// `poll_transmit`, with the rest of a segment that straddles the send ring's wrap
    /// (`set_gather`): the payload is `r.payload` then that rest (empty otherwise).
    pub fn poll_transmit_parts(&mut self, now: Instant) -> Option<(TcpRepr<'_>, &[u8])> {
        if let Some(r) = self.take_rst() {
            self.counters.rst_out += 1;
            self.counters.segments_out += 1;
            return Some((
                TcpRepr {
                    src_port: self.local_port,
                    dst_port: r.dst_port,
                    seq: r.seq,
                    ack: r.ack,
                    flags: TcpFlags(TcpFlags::RST),
                    window: 0,
                    urgent: 0,
                    options: Default::default(),
                    payload: &[],
                },
                &[],
            ));
        }
        let whole = |r: TcpRepr<'static>| (r, &[][..]);
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent => (self.snd_nxt == self.iss).then(|| whole(self.emit_syn(now))),
            State::SynReceived => {
                if self.snd_nxt == self.iss {
                    Some(whole(self.emit_syn(now)))
                } else if self.ack_now {
                    Some(whole(self.emit_ack(now, self.snd_max)))
                } else {
                    None
                }
            }
            State::FinWait2 | State::TimeWait => {
                (self.ack_now || self.window_update_due()).then(|| whole(self.emit_ack(now, self.snd_max)))
            }
            State::Established | State::FinWait1 | State::CloseWait | State::Closing | State::LastAck => {
                self.emit_established(now)
            }
        }
    }

    fn emit_established(&mut self, now: Instant) -> Option<(TcpRepr<'_>, &[u8])> {
        // Tail loss probe (RFC 8985 7.3): new data if possible, else the last segment.
        if let Some(seq) = self.tlp_probe.take() {
            let end = self.tx_seq0 + self.tx.len();
            if seq >= self.snd_una && seq >= self.tx_seq0 && seq < end {
                let len = if seq < self.snd_max {
                    (end.min(self.snd_max) - seq).min(self.mss)
                } else {
                    let room = (self.snd_wnd as usize).saturating_sub(self.in_flight());
                    (end - seq).min(self.mss).min(room)
                };
                if len > 0 {
                    return Some(self.emit_segment(now, seq, len, false));
                }
            }
        }
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
        // SACK recovery (RFC 6675 NextSeg rule 1): the first lost hole, as PRR allows.
        if self.recovering && self.rec.quota > 0 {
            if let Some((seq, len)) = self.next_lost_hole() {
                let len = self.tx.slice(seq - self.tx_seq0, len).len();
                if len > 0 {
                    return Some(self.emit_segment(now, seq, len, false));
                }
            }
        }
        // New data (NextSeg rule 2 in recovery), go-back-N retransmission after an RTO,
        // FIN.
        if let Some((len, fin)) = self.sendable(now) {
            return Some(self.emit_segment(now, self.snd_nxt, len, fin));
        }
        // Zero-window probe: one byte of new data past the window (RFC 9293 3.8.6.1).
        if self.send_persist_probe {
            self.send_persist_probe = false;
            let off = self.snd_nxt - self.tx_seq0;
            if off < self.tx.len() {
                self.counters.persist_probes += 1;
                self.probe_end = OptSeq::some(self.snd_nxt + 1);
                let mut r = self.repr(self.snd_nxt, TcpFlags::NONE);
                r.window = self.advertise();
                self.fill_options(now, &mut r);
                self.after_ack_sent();
                self.counters.segments_out += 1;
                r.payload = self.tx.slice(off, 1);
                self.emitted_len = r.payload.len() as u32;
                return Some((r, &[]));
            }
        }
        // Keepalive: <SEQ=SND.NXT-1>, no data (RFC 9293 3.8.4).
        if self.send_keepalive {
            self.send_keepalive = false;
            self.counters.keepalive_probes += 1;
            return Some((self.emit_ack(now, self.snd_max - 1), &[]));
        }
        if self.ack_now || self.window_update_due() {
            return Some((self.emit_ack(now, self.snd_max), &[]));
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
        // Everything sent and no FIN to send: the common case of a receiver's poll.
        if self.all_data_sent() && fin_seq != Some(self.snd_nxt) {
            return None;
        }
        let mut hole = usize::MAX;
        if self.snd_nxt < self.snd_max && self.sack_mode() {
            // Going back after an RTO: skip what the peer has SACKed since.
            if let Some((_, e)) = self.sb.range_containing(self.snd_nxt) {
                self.snd_nxt = e.min(self.snd_max);
            }
            if let Some((s, n)) = self.sb.next_hole(self.snd_nxt, self.snd_max) {
                if s == self.snd_nxt {
                    hole = n;
                }
            }
        }
        let off = self.snd_nxt - self.tx_seq0;
        let unsent = self.tx.len() - off;
        let in_flight = self.in_flight();
        let seg_max = self.seg_payload_max();
        // Large segments for new data in the open (not in recovery, not going back after
        // an RTO): whole multiples of the segment size; the tail goes alone, under Nagle.
        let segs = if self.recovering || self.snd_nxt < self.snd_max {
            1
        } else {
            usize::from(self.cfg.gso_segments.max(1))
        };
        let rwnd_room = (self.snd_wnd as usize).saturating_sub(in_flight);
        let usable = if self.recovering {
            // PRR (RFC 6937) decides, in whole segments.
            if self.rec.quota > 0 {
                rwnd_room
            } else {
                0
            }
        } else {
            rwnd_room.min(self.cc.cwnd().saturating_sub(self.cc_flight()))
        };
        let len = unsent.min(usable).min(seg_max * segs).min(hole);
        let len = if len > seg_max { len - len % seg_max } else { len };
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
        let send = if len >= seg_max || retransmission {
            true
        } else if len == unsent {
            // A short final segment: Nagle allows it when nothing is unacknowledged.
            self.cfg.nodelay || in_flight == 0 || self.fin_queued || self.wrap_cut
        } else {
            // Limited by the window: SWS avoidance waits for at least half the largest
            // window seen, unless nothing is in flight (no ACK would wake us up).
            in_flight == 0 || len >= self.max_snd_wnd as usize / 2
        };
        if !send {
            return None;
        }
        Some((len, fin_seq == Some(self.snd_nxt + len)))
    }

    /// Emits `len` bytes from `seq` (plus FIN), updating SND.NXT/SND.MAX, timers, RTT; the
    /// payload's first contiguous part and, when gathering, the rest after the ring's wrap.
    /// Data leaves: the first since data arrived, within the delayed-ACK timeout of it, is
    /// an answer, and the connection a request/response one (`pingpong`).
    fn note_data_sent(&mut self, now: Instant) {
        if !self.sent_since_data && self.within_ack_delay_of_data(now) == Some(true) {
            self.pingpong = true;
        }
        self.sent_since_data = true;
    }

    fn emit_segment(&mut self, now: Instant, seq: SeqNumber, len: usize, fin: bool) -> (TcpRepr<'_>, &[u8]) {
        let off = seq - self.tx_seq0;
        // A segment spans frames only when it is a large one (for TSO by reference); one
        // of at most a full size stays within one frame, so it can go by reference alone.
        let contiguous = self.tx.slice(off, len).len();
        let asked = len;
        // Gathering: the ring's end and what follows it (its start, or a queued frame).
        let parts = match self.gather && contiguous < len {
            true => contiguous + self.tx.slice(off + contiguous, len - contiguous).len(),
            false => contiguous,
        };
        let len = match self.span_frames {
            true => Some(self.tx.span(off, len)).filter(|&n| n > self.seg_payload_max()),
            false => None,
        }
        .unwrap_or(parts)
        .min(self.gso_max());
        self.wrap_cut = len < asked && len == parts && len < self.gso_max();
        if len > 0 {
            self.note_data_sent(now);
        }
        self.emitted_len = len as u32;
        let fin = fin && off + len == self.tx.len();
        let end = seq + len + fin as usize;
        let new_data = end > self.snd_max;
        self.recovery_sent(seq, len);
        if end > self.snd_max && self.sack_mode() {
            self.rack.on_send(end, now);
        }
        if seq < self.snd_max {
            self.count_retransmit();
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
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
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
        self.fill_options(now, &mut r);
        self.after_ack_sent();
        self.counters.segments_out += 1;
        self.counters.bytes_out += len as u64;
        if new_data || self.timers.tlp.is_some() {
            self.arm_tlp(now);
        }
        r.payload = self.tx.slice(off, len);
        let rest = match self.gather && r.payload.len() < len {
            true => self.tx.slice(off + r.payload.len(), len - r.payload.len()),
            false => &[],
        };
        (r, rest)
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
        // RFC 7323 / RFC 2018: offered on a SYN, echoed on a SYN-ACK only if the peer
        // offered them.
        let (ts, sack) = if syn_ack {
            (self.ts_enabled, self.sack_ok)
        } else {
            (self.cfg.timestamps, self.cfg.sack)
        };
        if ts {
            let ecr = if syn_ack { self.ts_recent } else { 0 };
            r.options.timestamp = Some((ts_clock(now), ecr));
        }
        r.options.sack_permitted = sack;
        if syn_ack {
            self.rcv_adv = self.rcv_nxt + wnd;
        }
        if self.snd_max > self.iss {
            self.count_retransmit();
            self.rtt_timed = None;
            self.syn_retransmitted = true;
        } else {
            self.rtt_timed = Some((self.iss + 1, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
        }
        self.after_ack_sent();
        self.counters.segments_out += 1;
        r
    }

    /// A segment without data: <SEQ=seq><ACK=RCV.NXT><CTL=ACK>. Pure ACKs use SND.MAX
    /// so that they stay in the peer's window after a go-back-N rewind.
    fn emit_ack(&mut self, now: Instant, seq: SeqNumber) -> TcpRepr<'static> {
        let mut r = self.repr(seq, TcpFlags::NONE);
        r.window = self.advertise();
        self.fill_options(now, &mut r);
        self.after_ack_sent();
        self.counters.segments_out += 1;
        r
    }

    fn after_ack_sent(&mut self) {
        self.ack_now = false;
        self.ack_for_app = false;
        self.read_since_ack = false;
        self.unacked_rx = 0;
        self.timers.delack = None;
        self.last_ack_sent = self.rcv_nxt;
    }

    /// SACK blocks the next segment carries: a D-SACK block, then the most recent
    /// blocks, as many as fit next to the timestamps option (3 with it, 4 without).
    fn sack_blocks_to_send(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts_enabled { 3 } else { SackBlocks::MAX };
        #[cfg(test)]
        {
            // Every change to the report counted again (`note_sack_report`).
            let r = &self.sack_report;
            let held = r.dsack.is_some() as usize + r.recent.len();
            assert_eq!(self.sack_pending as usize, held, "sack_pending out of date");
        }
        (self.sack_pending as usize).min(max)
    }

    /// Payload room of the next data segment: the MSS (already less the timestamps
    /// option) less the SACK option it will carry.
    /// The most payload one emitted segment carries: `gso_segments` full-sized segments.
    fn gso_max(&self) -> usize {
        self.seg_payload_max() * usize::from(self.cfg.gso_segments.max(1))
    }

    /// The payload of one full-sized segment on the wire (the MSS less the SACK blocks to
    /// send): the size a large segment from `poll_transmit` is cut to.
    pub fn seg_payload_max(&self) -> usize {
        match self.sack_blocks_to_send() {
            0 => self.mss,
            n => self.mss.saturating_sub(4 + 8 * n).max(1),
        }
    }

    /// Timestamps and SACK options of a non-SYN, non-RST segment.
    fn fill_options(&mut self, now: Instant, r: &mut TcpRepr) {
        r.options.timestamp = self.ts_option(now);
        let n = self.sack_blocks_to_send();
        if n == 0 {
            return;
        }
        if let Some((l, rr)) = self.sack_report.dsack.take() {
            r.options.sack.push(l, rr);
            self.counters.dsacks_sent += 1;
            self.note_sack_report();
        }
        for &(l, rr) in self.sack_report.recent.as_slice() {
            if r.options.sack.len() >= n {
                break;
            }
            r.options.sack.push(l, rr);
        }
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

    /// Whether the ACK due now may wait for the application's answer to carry it; asked
    /// once (the mark clears). Marked when our SYN was acknowledged (the application is
    /// told it can write: its request carries the ACK) and when the peer's FIN arrived in
    /// ESTABLISHED (it is told of the end: its FIN carries the ACK). The driver then
    /// drains the connection after the application's turn instead of before it, and the
    /// ACK goes alone only if nothing answered: one segment fewer each way on a short
    /// connection (as Linux holds the handshake's ACK when the application has data to
    /// write). Never when anything else is due: data or a FIN to send, a RST.
    pub fn take_ack_for_app(&mut self) -> bool {
        core::mem::take(&mut self.ack_for_app)
            && self.ack_now
            && !self.rst_queued
            && !self.fin_queued
            && self.all_data_sent()
    }

    /// The reader made room: tell the peer when the window opened enough to matter.
    pub(crate) fn window_update_due(&self) -> bool {
        if !matches!(self.state, State::Established | State::FinWait1 | State::FinWait2) || self.fin_received
        {
            return false;
        }
        // Only a read makes room (as Linux asks only after the reader took bytes). The
        // window of a SYN is at most 65,535 bytes, unscaled, and the next segment carries
        // the larger one: measured against it, the handshake's end and the first data
        // each called for an update of their own.
        if !self.read_since_ack {
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
