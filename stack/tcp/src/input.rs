//! Segment arrival (RFC 9293 section 3.10.7): one `match` on the state, then the
//! eight steps of 3.10.7.4 for synchronized states.

use sluice_buf::Frame;
use sluice_wire::tcp::{SeqNumber, TcpRepr};
use sluice_wire::Instant;

use crate::congestion::{AckInfo, CcAction, CongestionControl};
use crate::error::{ConnError, DropReason, SegmentOutcome, State};
use crate::tcb::{OptSeq, Tcb};

/// The acceptability test of RFC 9293 3.10.7.4 (the table of four cases).
pub(crate) fn seq_acceptable(seq: SeqNumber, len: usize, rcv_nxt: SeqNumber, wnd: usize) -> bool {
    let in_window = |s: SeqNumber| rcv_nxt <= s && s < rcv_nxt + wnd;
    match (len, wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => in_window(seq),
        (_, 0) => false,
        _ => in_window(seq) || in_window(seq + (len - 1)),
    }
}

/// Segments acknowledged at once after reordering, loss or a pause (Linux: 16).
const QUICKACKS: u8 = 16;

/// Where `receive_data` puts the payload bytes it takes by reference (`start, end`
/// within the payload), when the caller offered the payload's buffer.
type Zc<'a> = Option<&'a mut Option<(u32, u32)>>;

impl Tcb {
    /// Processes one incoming segment addressed to this connection. Replies (ACKs,
    /// RSTs, data) are produced by `poll_transmit`.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr) -> SegmentOutcome {
        self.segment(now, seg, None)
    }

    /// `on_segment` for a segment of a receive burst: `continues` says the caller saw it
    /// continue the burst's previous segment of this connection (`TcpRepr::continues`
    /// rules: next sequence number, same ACK, window and options, a TSval no older), so
    /// that only its text is taken (receive coalescing, as GRO gives the kernel), unless
    /// the TCB finds it is not the plain in-order continuation after all.
    pub fn on_segment_in_burst(&mut self, now: Instant, seg: &TcpRepr, continues: bool) -> SegmentOutcome {
        self.in_burst(now, seg, continues, None)
    }

    /// Zero-copy receive: `on_segment_in_burst` for a segment whose payload is
    /// `frame[payload]` (the device's buffer, shared; `header`'s own payload is ignored).
    /// An in-order payload of at least `rx_copybreak` bytes moves into the receive buffer
    /// as the frame, narrowed to the bytes taken, in this call (`SegmentOutcome::zero_copy`
    /// says how many); otherwise the bytes are copied and the frame dropped.
    pub fn on_segment_frame(
        &mut self,
        now: Instant,
        header: &TcpRepr,
        frame: Frame,
        payload: core::ops::Range<usize>,
        continues: bool,
    ) -> SegmentOutcome {
        // (`payload` is where the caller found the payload in its own frame.)
        let seg = TcpRepr {
            payload: &frame[payload.clone()],
            ..*header
        };
        let mut keep = None;
        let mut out = self.in_burst(now, &seg, continues, Some(&mut keep));
        if let Some((a, b)) = keep {
            let mut frame = frame;
            frame.narrow(payload.start + a as usize..payload.start + b as usize);
            self.rx.push_frame(frame);
            out.zero_copy = (b - a) as usize;
        }
        out
    }

    /// The text alone when the segment continues the burst (`continued`), else the whole
    /// segment.
    fn in_burst(&mut self, now: Instant, seg: &TcpRepr, continues: bool, mut zc: Zc<'_>) -> SegmentOutcome {
        if continues {
            if let Some(out) = self.continued(now, seg, zc.as_deref_mut()) {
                return out;
            }
        }
        self.segment(now, seg, zc)
    }

    /// A whole segment. `zc`: the caller can hand over the payload's buffer, and learns
    /// here which bytes of the payload to queue by reference (`receive_data` decides).
    fn segment(&mut self, now: Instant, seg: &TcpRepr, zc: Zc<'_>) -> SegmentOutcome {
        let before = self.state;
        self.counters.segments_in += 1;
        if seg.flags.rst() {
            self.counters.rst_in += 1;
        }
        let drop = self.process(now, seg, zc);
        match drop {
            Some(DropReason::OutOfWindow) => self.counters.out_of_window += 1,
            Some(DropReason::BadAck) => self.counters.bad_acks += 1,
            Some(DropReason::ChallengeAck) | Some(DropReason::BadRst) => {}
            Some(DropReason::ReassemblyFull) => {}
            Some(_) => self.counters.other_drops += 1,
            None => {}
        }
        SegmentOutcome {
            drop,
            transition: (before != self.state).then_some((before, self.state)),
            transmit: self.wants_transmit(),
            zero_copy: 0,
            coalesced: false,
        }
    }

    /// Receive coalescing: the next in-order data segment of a burst whose header is the
    /// previous segment's, after that one went through `segment`. Only the text is taken:
    /// the ACK, window and timestamp were processed with the first segment, and TS.Recent
    /// is not updated past the last ACK sent (RFC 7323 4.3). `None`, with nothing
    /// changed, when the segment is not the plain in-order continuation it should be:
    /// the caller then processes it in full.
    fn continued(&mut self, now: Instant, seg: &TcpRepr, zc: Zc<'_>) -> Option<SegmentOutcome> {
        if self.state != State::Established
            || self.rx_closed
            || seg.seq != self.rcv_nxt
            || seg.payload.is_empty()
            || seg.payload.len() > self.rcv_wnd()
            || !self.asm.is_empty()
            || seg.flags.syn()
            || seg.flags.fin()
            || seg.flags.rst()
        {
            return None;
        }
        if self.ts_enabled {
            match seg.options.timestamp {
                Some((tsval, _)) if !self.paws_rejects(now, tsval) => {}
                _ => return None,
            }
        }
        self.counters.segments_in += 1;
        self.keepalive_reset(now);
        let drop = self.receive_data(now, seg.seq, seg.payload, zc);
        Some(SegmentOutcome {
            drop,
            transition: None,
            transmit: self.wants_transmit(),
            zero_copy: 0,
            coalesced: true,
        })
    }

    fn process(&mut self, now: Instant, seg: &TcpRepr, zc: Zc<'_>) -> Option<DropReason> {
        if seg.dst_port != self.local_port
            || (!matches!(self.state, State::Listen | State::Closed) && seg.src_port != self.remote_port)
        {
            return Some(DropReason::WrongPort);
        }
        match self.state {
            // 3.10.7.1: CLOSED. The owner answers with `rst_for` (no TCB is needed).
            State::Closed => Some(DropReason::Closed),
            // 3.10.7.2: LISTEN.
            State::Listen => self.input_listen(now, seg),
            // 3.10.7.3: SYN-SENT.
            State::SynSent => self.input_syn_sent(now, seg),
            // 3.10.7.4: SYN-RECEIVED and every later state.
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck
            | State::TimeWait => self.input_synchronized(now, seg, zc),
        }
    }

    /// RFC 9293 3.10.7.2.
    fn input_listen(&mut self, now: Instant, seg: &TcpRepr) -> Option<DropReason> {
        // First, an incoming RST is ignored.
        if seg.flags.rst() {
            return Some(DropReason::Unexpected);
        }
        // Second, any ACK is bad: <SEQ=SEG.ACK><CTL=RST>.
        if let Some(ack) = seg.ack {
            self.queue_rst(seg.src_port, ack, None);
            return Some(DropReason::Unexpected);
        }
        // Fourth, other text or control: drop.
        if !seg.flags.syn() {
            return Some(DropReason::Unexpected);
        }
        // Third, SYN: note IRS, reply <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>. Data carried
        // on the SYN is not queued; the peer retransmits it after the handshake.
        self.remote_port = seg.src_port;
        self.accept_syn(now, seg);
        self.snd_nxt = self.iss;
        self.set_state(State::SynReceived);
        None
    }

    /// RFC 9293 3.10.7.3.
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr) -> Option<DropReason> {
        // First, check the ACK: it must acknowledge our SYN.
        if let Some(ack) = seg.ack {
            if ack <= self.iss || ack > self.snd_max {
                if !seg.flags.rst() {
                    self.queue_rst(seg.src_port, ack, None);
                }
                return Some(DropReason::BadAck);
            }
        }
        // Second, RST: only with an acceptable ACK, meaning "connection refused".
        if seg.flags.rst() {
            if seg.ack.is_some() {
                self.enter_closed(Some(ConnError::Refused));
                return None;
            }
            return Some(DropReason::BadRst);
        }
        // Fourth, SYN.
        if !seg.flags.syn() {
            return Some(DropReason::Unexpected);
        }
        self.accept_syn(now, seg);
        match seg.ack {
            Some(ack) => {
                // Our SYN is acknowledged: ESTABLISHED, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
                self.on_new_ack(now, ack, seg);
                self.enter_established(now);
                self.ack_now = true;
                self.ack_for_app = true;
                // Continue at the sixth step: data and FIN on the SYN-ACK (copied).
                self.process_text_and_fin(now, seg, None)
            }
            None => {
                // Simultaneous open: SYN-RECEIVED, <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
                self.set_state(State::SynReceived);
                self.snd_nxt = self.iss;
                None
            }
        }
    }

    /// RFC 9293 3.10.7.4, steps one to eight.
    fn input_synchronized(&mut self, now: Instant, seg: &TcpRepr, zc: Zc<'_>) -> Option<DropReason> {
        // RFC 7323 section 5.3 R1 (before the sequence number check): PAWS. Once
        // timestamps are in use, a non-RST segment without them is dropped (3.2).
        if self.ts_enabled && !seg.flags.rst() {
            match seg.options.timestamp {
                None => {
                    self.counters.no_timestamp_drops += 1;
                    return Some(DropReason::NoTimestamp);
                }
                Some((tsval, _)) if self.paws_rejects(now, tsval) => {
                    self.counters.paws_drops += 1;
                    self.challenge_ack(now);
                    return Some(DropReason::Paws);
                }
                Some(_) => {}
            }
        }

        // First, check the sequence number.
        let wnd = self.rcv_wnd();
        let mut text_allowed = true;
        if !seq_acceptable(seg.seq, seg.segment_len(), self.rcv_nxt, wnd) {
            if self.state == State::SynReceived && seg.flags.syn() && seg.ack.is_none() && seg.seq == self.irs
            {
                // The peer retransmitted its SYN: our SYN-ACK was lost; send it again.
                self.snd_nxt = self.iss;
                return Some(DropReason::OutOfWindow);
            }
            if wnd == 0 && seg.seq == self.rcv_nxt && !seg.flags.syn() {
                // Zero window: still take ACKs and RSTs, but no text (and ACK it).
                text_allowed = false;
                self.ack_now = true;
            } else {
                if !seg.flags.rst() && self.invalid_ack(now, seg) {
                    self.dsack_for_duplicate(seg);
                }
                if self.state == State::TimeWait && seg.flags.fin() {
                    // A retransmitted FIN: ACK it and restart the 2 MSL timeout.
                    self.enter_time_wait(now);
                }
                return Some(DropReason::OutOfWindow);
            }
        }
        self.keepalive_reset(now);

        // Second, check the RST bit (RFC 5961 section 3 validation).
        if seg.flags.rst() {
            if seg.seq != self.rcv_nxt {
                // In the window but not exact: challenge ACK (rate-limited, section 7).
                if self.challenge_ack(now) {
                    self.counters.challenge_acks += 1;
                }
                return Some(DropReason::BadRst);
            }
            match self.state {
                // Passive open: back to LISTEN; active (simultaneous) open: refused.
                State::SynReceived if self.passive => self.back_to_listen(),
                State::SynReceived => self.enter_closed(Some(ConnError::Refused)),
                // Any outstanding RECEIVEs and SENDs get "reset"; enter CLOSED.
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.enter_closed(Some(ConnError::Reset))
                }
                // CLOSING, LAST-ACK: enter CLOSED. Our FIN is not acknowledged yet: report
                // the reset (ECONNRESET, as Linux and FreeBSD do), or an application that
                // shut down writing could not tell it from a clean close.
                State::Closing | State::LastAck => self.enter_closed(Some(ConnError::Reset)),
                // TIME-WAIT: the connection is over already; CLOSED quietly.
                _ => self.enter_closed(None),
            }
            return None;
        }

        // Third, security: not implemented (no IP security options).

        // Fourth, check the SYN bit.
        if seg.flags.syn() {
            if self.state == State::SynReceived && self.passive {
                // A new SYN for a passive open that never completed: back to LISTEN.
                self.back_to_listen();
                return None;
            }
            // RFC 5961 section 4: challenge ACK (rate-limited), drop.
            if self.challenge_ack(now) {
                self.counters.challenge_acks += 1;
            }
            return Some(DropReason::ChallengeAck);
        }

        // Fifth, check the ACK field.
        let Some(ack) = seg.ack else {
            return Some(DropReason::Unexpected);
        };
        if self.state == State::SynReceived {
            if ack > self.snd_una && ack <= self.snd_max {
                self.update_ts_recent(now, seg);
                self.on_new_ack(now, ack, seg);
                self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = ack;
                self.enter_established(now);
            } else {
                // <SEQ=SEG.ACK><CTL=RST>
                self.queue_rst(seg.src_port, ack, None);
                return Some(DropReason::BadAck);
            }
        } else {
            let highest = match self.probe_end.get() {
                Some(p) => p.max(self.snd_max),
                None => self.snd_max,
            };
            if ack > highest {
                // Acknowledges something not yet sent (RFC 5961 5.2): ACK (rate-limited),
                // drop, data included.
                self.challenge_ack(now);
                return Some(DropReason::BadAck);
            }
            // RFC 5961 5.2: too old an ACK is dropped (with an ACK, rate-limited).
            let oldest = self.snd_una - (self.max_snd_wnd as usize).max(self.mss);
            if ack < oldest {
                self.challenge_ack(now);
                return Some(DropReason::BadAck);
            }
            self.update_ts_recent(now, seg);
            let seg_wnd = (seg.window as usize) << self.snd_wscale;
            // A pure receiver's usual ACK: nothing outstanding, nothing new, no SACK
            // blocks. There is nothing for the SACK scoreboard, recovery or RACK to do.
            let idle_ack = ack == self.snd_una
                && self.snd_max == self.snd_una
                && seg.options.sack.is_empty()
                && !self.recovering;
            if self.sack_mode() && !idle_ack {
                // RFC 6675: SACK blocks first, then the cumulative ACK.
                let old_una = self.snd_una;
                let sacked_before = self.sb.sacked();
                let newly = if ack >= old_una {
                    self.read_sack_blocks(ack, &seg.options.sack)
                } else {
                    0
                };
                let (data_acked, flight_size) = if ack > old_una {
                    self.advance_una(now, ack, seg)
                } else {
                    (0, self.snd_max - self.snd_una)
                };
                if ack >= old_una {
                    let dup = ack == old_una && newly > 0;
                    self.sack_on_ack(now, old_una, sacked_before, data_acked, flight_size, dup);
                    if ack > old_una {
                        self.arm_tlp(now);
                    }
                }
            } else if ack > self.snd_una {
                self.on_new_ack(now, ack, seg);
            } else if ack == self.snd_una
                && seg.payload.is_empty()
                && !seg.flags.fin()
                && seg_wnd == self.snd_wnd as usize
                && self.snd_max > self.snd_una
            {
                // RFC 5681 section 2 duplicate ACK.
                self.on_dup_ack(now);
            }
            // Window update, unless the segment is older than the last one used.
            if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
                self.snd_wnd = seg_wnd as u32; // < 2^30: a 16-bit window shifted by at most 14
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = ack;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                if seg_wnd > 0 {
                    self.timers.persist = None;
                    self.persist_backoff = 0;
                }
            }
            self.probe_end = OptSeq::NONE;
            self.persist_unanswered = 0;
        }
        match self.state {
            // FIN-WAIT-1: if our FIN is now acknowledged, enter FIN-WAIT-2.
            State::FinWait1 if self.fin_acked() => self.set_state(State::FinWait2),
            // CLOSING: if our FIN is acknowledged, TIME-WAIT; otherwise ignore.
            State::Closing => {
                if self.fin_acked() {
                    self.enter_time_wait(now);
                }
                return None;
            }
            // LAST-ACK: the only thing that can arrive is the ACK of our FIN.
            State::LastAck => {
                if self.fin_acked() {
                    self.enter_closed(None);
                }
                return None;
            }
            _ => {}
        }

        // Sixth, the URG bit: ignored (RFC 6093; urgent data is delivered inline).
        if !text_allowed {
            return None;
        }
        // Seventh and eighth: text and FIN.
        self.process_text_and_fin(now, seg, zc)
    }

    /// Steps seven (segment text) and eight (FIN) of RFC 9293 3.10.7.4.
    fn process_text_and_fin(&mut self, now: Instant, seg: &TcpRepr, zc: Zc<'_>) -> Option<DropReason> {
        let data_seq = seg.seq + seg.flags.syn() as usize;
        let mut drop = None;
        if !seg.payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.rx_closed {
                        // The user promised not to read (close): RFC 2525 2.17, reset.
                        self.abort();
                        return Some(DropReason::Unexpected);
                    }
                    drop = self.receive_data(now, data_seq, seg.payload, zc);
                }
                // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer already sent FIN;
                // ignore the text.
                _ => {}
            }
        }
        if seg.flags.fin() {
            if matches!(self.state, State::Closed | State::Listen | State::SynSent) {
                return drop;
            }
            let fin_seq = data_seq + seg.payload.len();
            if self.fin_received {
                // A retransmission: ACK it (and restart TIME-WAIT).
                self.ack_now = true;
                if self.state == State::TimeWait {
                    self.enter_time_wait(now);
                }
            } else if fin_seq == self.rcv_nxt {
                self.receive_fin(now);
            } else if fin_seq > self.rcv_nxt {
                // FIN after a hole: remember it until the data before it arrives.
                self.ooo_fin = OptSeq::some(fin_seq);
                self.ack_now = true;
            }
        }
        drop
    }

    /// Step seven: place `payload` (starting at `seq`) in the receive buffer. With `zc`,
    /// an in-order payload long enough is not copied: its range within `payload` goes to
    /// `zc` for the caller to queue as a frame before it returns.
    fn receive_data(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        payload: &[u8],
        zc: Zc<'_>,
    ) -> Option<DropReason> {
        let (offset, skip) = if seq < self.rcv_nxt {
            let skip = self.rcv_nxt - seq;
            if skip >= payload.len() {
                self.ack_now = true;
                self.dsack_for(seq, seq + payload.len());
                return None;
            }
            // Straddling RCV.NXT: the old part is a duplicate (RFC 2883 section 4).
            self.dsack_for(seq, self.rcv_nxt);
            (0, skip)
        } else {
            (seq - self.rcv_nxt, 0)
        };
        let data = &payload[skip..];
        let room = self.rcv_wnd().saturating_sub(offset);
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            self.ack_now = true;
            return None;
        }
        self.rcv_mss = self
            .rcv_mss
            .max(data.len().min(u16::MAX as usize) as u16)
            .min(self.cfg.mss);
        if offset > 0 {
            // Out of order: keep it if the reassembly bound allows, and send a
            // duplicate ACK at once (RFC 5681 4.2); quick ACKs follow the repair.
            self.ack_now = true;
            self.quickacks = QUICKACKS;
            self.last_data_at = now;
            // A repeat (in whole or part) of data held out of order: D-SACK the repeated
            // bytes; the block that holds them follows (RFC 2883 section 4).
            if !self.rx.reserve_at(offset, data.len()) {
                self.counters.mem_dropped += 1;
                return Some(DropReason::MemoryBudget);
            }
            let repeat = self.asm.overlap(offset, offset + data.len());
            if !self.asm.add(offset, offset + data.len(), self.cfg.max_ooo_bytes) {
                self.counters.ooo_dropped += 1;
                return Some(DropReason::ReassemblyFull);
            }
            self.counters.ooo_segments += 1;
            self.rx.write_at(offset, data);
            if self.asm.evicted() > 0 {
                // Farther ranges were given up for this one: stop SACKing them.
                self.counters.ooo_dropped += self.asm.evicted();
                self.refresh_sack_report();
            }
            // Only bytes still held after the add (nothing was given up under them).
            if let Some((s, e)) = repeat {
                if self
                    .asm
                    .range_containing(s)
                    .is_some_and(|(a, b)| a <= s && e <= b)
                {
                    let nxt = self.rcv_nxt;
                    self.dsack_for(nxt + s, nxt + e);
                }
            }
            if self.sack_ok {
                // RFC 2018 section 4: the block with this segment goes first.
                if let Some((s, e)) = self.asm.range_containing(offset) {
                    self.sack_report.on_ooo(self.rcv_nxt + s, self.rcv_nxt + e);
                    self.note_sack_report();
                }
            }
            return None;
        }
        let had_hole = !self.asm.is_empty();
        let by_ref = !had_hole
            && data.len() >= self.cfg.rx_copybreak.max(1)
            && self.rx.frames() < self.cfg.rx_frames_max;
        let taken = zc.filter(|_| by_ref).map(|slot| {
            // Zero-copy: the caller queues these bytes of its buffer (`on_segment_frame`).
            // Offsets within one segment's payload: below 64 KiB.
            *slot = Some((skip as u32, (skip + data.len()) as u32));
        });
        let n = if taken.is_some() {
            self.counters.bytes_in_zero_copy += data.len() as u64;
            data.len()
        } else {
            let n = self.rx.write_at(0, data);
            if n < data.len() {
                // The budget refused the memory for the rest: the peer sends it again.
                self.counters.mem_dropped += 1;
                self.ack_now = true;
            }
            n
        };
        let extra = self.asm.advance(n);
        if taken.is_none() {
            self.rx.commit(n + extra);
        }
        self.rcv_nxt += n + extra;
        self.counters.bytes_in += (n + extra) as u64;
        self.unacked_rx = self.unacked_rx.saturating_add((n + extra) as u32);
        // (The count, not the report: the report lies out of the hot front.)
        if self.sack_pending > 0 {
            self.refresh_sack_report();
        }
        // Quick ACKs (as Linux's quickack mode): after reordering or loss, and when data
        // arrives after a pause as long as the delayed-ACK timeout (the sender was probably
        // waiting for our ACK: in recovery, or with a window of one segment), the next
        // segments are acknowledged at once, so that the sender's window grows again at the
        // pace of the RTT instead of one segment per delayed-ACK timeout. Not on a
        // request/response connection (`pingpong`): there a pause is the peer's think time
        // or the path's queue, and the answer carries the ACK; a quick ACK ahead of it
        // doubled the segments each way once exchanges took longer than the timeout.
        let paused = self.within_ack_delay_of_data(now) == Some(false);
        self.last_data_at = now;
        self.sent_since_data = false;
        if had_hole || (paused && !self.pingpong) {
            self.quickacks = QUICKACKS;
        }
        if had_hole {
            // Filling (part of) a hole: ACK at once (RFC 5681 4.2).
            self.ack_now = true;
        } else if self.quickacks > 0 && !self.pingpong {
            self.quickacks -= 1;
            self.ack_now = true;
        } else {
            match self.cfg.delayed_ack {
                // RFC 9293 3.8.6.3 (SHLD-19): ACK at least every second full segment.
                Some(delay) if self.unacked_rx < 2 * u32::from(self.rcv_mss) => {
                    if self.timers.delack.is_none() {
                        self.timers.delack = Some(now + delay);
                    }
                }
                _ => self.ack_now = true,
            }
        }
        if self.ooo_fin.get() == Some(self.rcv_nxt) {
            self.receive_fin(now);
        }
        None
    }

    /// Whether `now` is within the delayed-ACK timeout of the last data received; `None`
    /// without delayed ACKs or before any data. Past it, data arriving is after a pause
    /// (quick ACKs); within it, data sent is an answer (ping-pong).
    pub(crate) fn within_ack_delay_of_data(&self, now: Instant) -> Option<bool> {
        let d = self.cfg.delayed_ack?;
        let last = self.last_data_at;
        (last != Instant::ZERO)
            .then(|| now.total_nanos().saturating_sub(last.total_nanos()) < d.as_nanos() as u64)
    }

    /// Step eight: the peer's FIN, in order.
    fn receive_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ooo_fin = OptSeq::NONE;
        self.clear_out_of_order();
        self.ack_now = true;
        match self.state {
            State::SynReceived => self.set_state(State::CloseWait),
            State::Established => {
                self.set_state(State::CloseWait);
                self.ack_for_app = true;
            }
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    self.set_state(State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// Records the peer's SYN: IRS, options, initial window.
    pub(crate) fn accept_syn(&mut self, now: Instant, seg: &TcpRepr) {
        self.accept_syn_options(now, seg);
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        // Window scaling applies only when both sides offered it (RFC 7323 2.2).
        match (seg.options.window_scale, self.offer_wscale) {
            (Some(peer), Some(ours)) => {
                self.snd_wscale = peer.min(14);
                self.rcv_wscale = ours;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.offer_wscale = None;
            }
        }
        self.set_peer_mss(seg.options.mss);
        // The window of a SYN is never scaled.
        self.snd_wnd = u32::from(seg.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack.unwrap_or(self.iss);
    }

    fn enter_established(&mut self, now: Instant) {
        if self.syn_retransmitted {
            self.rtt.reset_after_syn_timeout();
        }
        // A close requested in SYN-RECEIVED was queued until now (RFC 9293 3.10.4).
        let next = if self.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        self.set_state(next);
        self.keepalive_reset(now);
    }

    /// An ACK that acknowledges new data (SND.UNA < SEG.ACK), with the controller's own
    /// recovery (no SACK).
    pub(crate) fn on_new_ack(&mut self, now: Instant, ack: SeqNumber, seg: &TcpRepr) {
        let acked = ack - self.snd_una;
        let (data_acked, flight_size) = self.advance_una(now, ack, seg);
        if data_acked > 0 || self.cc.in_recovery() {
            let info = AckInfo {
                now,
                ack,
                acked: data_acked.max(acked.min(1)),
                flight_size,
                snd_max: self.snd_max,
                mss: self.mss,
            };
            if self.cc.on_ack(&info) == CcAction::RetransmitFirst && self.snd_una < self.snd_max {
                self.rtx_una = true;
                self.rtt_timed = None;
            }
        }
    }

    /// The cumulative part of a new ACK: frees acknowledged data, moves SND.UNA, takes an
    /// RTT sample, restarts the retransmission timer. Returns (data bytes acknowledged,
    /// FlightSize before the ACK).
    pub(crate) fn advance_una(&mut self, now: Instant, ack: SeqNumber, seg: &TcpRepr) -> (usize, usize) {
        let flight_size = self.snd_max - self.snd_una;
        let mut data_acked = 0;
        if ack > self.tx_seq0 {
            let end = self.tx_seq0 + self.tx.len();
            data_acked = ack.min(end) - self.tx_seq0;
            self.tx.discard(data_acked);
            self.tx_seq0 += data_acked;
        }
        self.snd_una = ack;
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        if self.snd_max < ack {
            self.snd_max = ack;
        }
        match (self.ts_enabled, seg.options.timestamp) {
            // RFC 7323 RTTM: every ACK of new data gives a sample from its TSecr.
            (true, Some((_, tsecr))) => {
                self.rtt_timed = None;
                if !core::mem::take(&mut self.skip_ts_sample) {
                    self.ts_rtt_sample(now, tsecr, flight_size);
                }
            }
            // RFC 6298 / Karn: sample only segments that were never retransmitted.
            _ => {
                if let Some((end, sent)) = self.rtt_timed {
                    if ack >= end {
                        self.rtt.sample(now - sent);
                        self.rtt_timed = None;
                        if let Some(srtt) = self.rtt.srtt() {
                            self.cc.on_rtt(srtt);
                        }
                    }
                }
            }
        }
        self.retries = 0;
        if !self.sack_mode() {
            self.dup_acks = 0;
        }
        if self.sack_mode() {
            self.sb.advance(ack);
        }
        // RFC 6298 5.2 / 5.3: stop the timer when all is acked, else restart it.
        if self.snd_una == self.snd_max {
            self.timers.rtx = None;
            self.stalled_since = None;
        } else {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
            self.stalled_since = Some(now);
        }
        (data_acked, flight_size)
    }

    /// A duplicate segment arrived (entirely below RCV.NXT): report it in a D-SACK block
    /// (RFC 2883) if SACK is in use.
    fn dsack_for_duplicate(&mut self, seg: &TcpRepr) {
        let len = seg.payload.len();
        if len > 0 && seg.seq + len <= self.rcv_nxt && self.rcv_nxt - seg.seq <= self.rx.capacity() {
            self.dsack_for(seg.seq, seg.seq + len);
        }
    }

    /// Drops the SACK blocks to report that no longer describe data held out of order
    /// (a hole was filled, or ranges were given up), and counts them again.
    fn refresh_sack_report(&mut self) {
        let (nxt, asm) = (self.rcv_nxt, &self.asm);
        self.sack_report.refresh(nxt, |l| {
            asm.range_containing(l - nxt).map(|(s, e)| (nxt + s, nxt + e))
        });
        self.note_sack_report();
    }

    /// Forgets the data held out of order and the SACK blocks that reported it.
    pub(crate) fn clear_out_of_order(&mut self) {
        self.asm.clear();
        self.sack_report.clear();
        self.note_sack_report();
    }

    fn dsack_for(&mut self, left: SeqNumber, right: SeqNumber) {
        if self.sack_ok {
            self.sack_report.dsack = Some((left, right));
            self.note_sack_report();
        }
    }

    fn on_dup_ack(&mut self, now: Instant) {
        self.counters.dup_acks += 1;
        self.dup_acks += 1;
        let info = AckInfo {
            now,
            ack: self.snd_una,
            acked: 0,
            flight_size: self.snd_max - self.snd_una,
            snd_max: self.snd_max,
            mss: self.mss,
        };
        if self.cc.on_dup_ack(&info) == CcAction::RetransmitFirst {
            self.counters.fast_retransmits += 1;
            self.rtx_una = true;
            self.rtt_timed = None;
        }
    }

    pub(crate) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.timers.time_wait = Some(now + self.cfg.msl * 2);
        // Everything sent is acknowledged and nothing more arrives: a connection in
        // TIME-WAIT holds no buffer memory (what is unread stays readable), nor a send log.
        self.tx.shrink();
        self.rack.release_log();
        if self.rx.is_empty() && self.asm.is_empty() {
            self.rx.shrink();
        }
    }

    pub(crate) fn keepalive_reset(&mut self, now: Instant) {
        self.keepalive_unanswered = 0;
        self.timers.keepalive = match (self.cfg.keepalive, self.state) {
            (Some(k), State::Established | State::CloseWait) => Some(now + k.idle),
            _ => None,
        };
    }

    /// Whether `poll_transmit` may have something to send: when false, it returns `None`
    /// (and changes nothing), so that a caller need not ask it. Covers every case of
    /// `poll_transmit_parts`: a change there is a change here.
    pub(crate) fn wants_transmit(&self) -> bool {
        self.rst_queued
            || self.ack_now
            || self.rtx_una
            || (self.state == State::SynSent && self.snd_nxt == self.iss)
            || (self.state == State::SynReceived && self.snd_nxt == self.iss)
            || (self.is_established() && (self.snd_nxt < self.tx_seq0 + self.tx.len() || self.fin_queued))
            || self.recovering
            || self.tlp_probe.get().is_some()
            || self.send_persist_probe
            || self.send_keepalive
            || self.window_update_due()
    }
}
