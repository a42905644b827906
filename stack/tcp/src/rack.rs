//! RACK-TLP (RFC 8985), in a simplified form (SACK mode only).
//!
//! RACK: a fixed-size log maps sequence numbers of original transmissions to the time
//! they were sent (entries sent at the same instant are merged; when the log is full,
//! every other entry is dropped, which can only make a recorded time later, so loss is
//! never declared early). When the peer delivers (ACKs or SACKs) data, RACK.xmit_ts
//! becomes the send time of the highest delivered byte and RACK.rtt the time since. An
//! unSACKed byte sent before it is lost once `now >= sent + RACK.rtt + reo_wnd`, with
//! reo_wnd = min RTT / 4. A reordering timer fires when the next hole would become lost.
//!
//! Simplifications: the send time of a retransmission is not tracked, so a lost
//! retransmission is left to the TLP or the RTO; reo_wnd does not adapt to D-SACKs.
//!
//! TLP: when SACK recovery is not running and data is outstanding, a probe timer of
//! 2 * SRTT (plus 200 ms when a single segment is in flight) sends one new segment, or
//! retransmits the last one, so that a tail loss produces SACK feedback instead of
//! waiting for the RTO. One probe per flight.

use core::time::Duration;

use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

use crate::tcb::Tcb;

/// Entries of the send-time log.
pub(crate) const SEND_LOG_MAX: usize = 64;

/// Worst-case delayed ACK time assumed by TLP (RFC 8985 section 7.2).
const WC_DEL_ACK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(crate) struct Rack {
    /// `(end, t)`: every byte below `end` (and above the previous entry's end) was first
    /// sent at or before `t`. Sorted by both. Allocated when the connection first sends
    /// data, so that an idle connection does not carry it.
    log: Option<Box<[(SeqNumber, Instant); SEND_LOG_MAX]>>,
    len: usize,
    /// RACK.xmit_ts and RACK.end_seq of the most recently sent delivered data.
    xmit_ts: Option<Instant>,
    end_seq: SeqNumber,
    rtt: Duration,
    min_rtt: Option<Duration>,
    /// Unsacked bytes below this are lost according to RACK.
    pub lost_to: Option<SeqNumber>,
    /// A TLP probe is outstanding until SND.UNA passes this.
    pub tlp_high: Option<SeqNumber>,
}

impl Rack {
    pub fn new() -> Self {
        Rack {
            log: None,
            len: 0,
            xmit_ts: None,
            end_seq: SeqNumber(0),
            rtt: Duration::ZERO,
            min_rtt: None,
            lost_to: None,
            tlp_high: None,
        }
    }

    /// Bytes up to `end` were sent (first transmission) at `now`.
    pub fn on_send(&mut self, end: SeqNumber, now: Instant) {
        let log = self
            .log
            .get_or_insert_with(|| Box::new([(SeqNumber(0), Instant::ZERO); SEND_LOG_MAX]));
        if self.len > 0 {
            let last = &mut log[self.len - 1];
            if last.1 == now {
                last.0 = last.0.max(end);
                return;
            }
            if end <= last.0 {
                return;
            }
        }
        if self.len == SEND_LOG_MAX {
            // Keep the odd entries (the last one included): times only move later.
            for i in 0..SEND_LOG_MAX / 2 {
                log[i] = log[2 * i + 1];
            }
            self.len = SEND_LOG_MAX / 2;
        }
        log[self.len] = (end, now);
        self.len += 1;
    }

    /// The recorded send time of byte `seq`.
    fn sent_at(&self, seq: SeqNumber) -> Option<Instant> {
        self.log.as_deref()?[..self.len]
            .iter()
            .find(|(end, _)| seq < *end)
            .map(|&(_, t)| t)
    }

    /// Forgets entries wholly below `una`.
    fn trim(&mut self, una: SeqNumber) {
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        let n = log[..self.len].iter().take_while(|(end, _)| *end <= una).count();
        log.copy_within(n..self.len, 0);
        self.len -= n;
    }

    pub fn on_rto(&mut self) {
        self.lost_to = None;
        self.tlp_high = None;
        self.xmit_ts = None;
    }

    fn reo_wnd(&self, srtt: Option<Duration>) -> Duration {
        let w = self.min_rtt.unwrap_or(Duration::ZERO) / 4;
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }
}

impl Tcb {
    fn rack_enabled(&self) -> bool {
        self.cfg.rack_tlp && self.sack_mode()
    }

    /// RACK on an ACK: update RACK.xmit_ts / RACK.rtt from the highest delivered byte,
    /// then mark losses.
    pub(crate) fn rack_on_ack(&mut self, now: Instant) {
        if !self.rack_enabled() {
            return;
        }
        if matches!(self.rack.tlp_high, Some(h) if self.snd_una >= h) {
            self.rack.tlp_high = None;
        }
        let delivered_end = self.sb.highest().unwrap_or(self.snd_una).max(self.snd_una);
        if delivered_end > self.rack.end_seq || self.rack.xmit_ts.is_none() {
            if let Some(t) = self.rack.sent_at(delivered_end - 1) {
                self.rack.xmit_ts = Some(self.rack.xmit_ts.map_or(t, |x| x.max(t)));
                self.rack.end_seq = delivered_end;
                self.rack.rtt = now - t;
                let clean = !self.rec.active && self.rack.tlp_high.is_none() && self.snd_nxt == self.snd_max;
                if clean {
                    let r = now - t;
                    self.rack.min_rtt = Some(self.rack.min_rtt.map_or(r, |m| m.min(r)));
                }
            }
        }
        self.rack.trim(self.snd_una);
        self.rack_detect(now);
    }

    /// Marks as lost what RACK says is lost, and arms the reordering timer for the next
    /// candidate.
    pub(crate) fn rack_detect(&mut self, now: Instant) {
        self.timers.rack = None;
        if self.rack.xmit_ts.is_none() || self.sb.is_empty() {
            return;
        }
        let wait = self.rack.rtt + self.rack.reo_wnd(self.rtt.srtt());
        let mut lost_to = self.rack.lost_to.unwrap_or(self.snd_una).max(self.snd_una);
        let mut start = self.snd_una;
        let log = self.rack.log.as_deref().map_or(&[][..], |l| &l[..self.rack.len]);
        for &(end, t) in log {
            if start >= self.rack.end_seq {
                break;
            }
            let end = end.min(self.rack.end_seq);
            if t + wait <= now {
                lost_to = lost_to.max(end);
            } else {
                // Not yet: re-check when this range would be lost, if it has a hole.
                if self.sb.unsacked(start.max(self.snd_una), end) > 0 {
                    self.timers.rack = Some(t + wait);
                }
                break;
            }
            start = end;
        }
        if lost_to > self.snd_una {
            self.rack.lost_to = Some(lost_to);
        }
    }

    /// The RACK reordering timer fired.
    pub(crate) fn on_rack_timer(&mut self, now: Instant) {
        self.timers.rack = None;
        if !self.rack_enabled() || !self.is_established() {
            return;
        }
        let before = self.lost_boundary();
        self.rack_detect(now);
        if self.lost_boundary() <= before {
            return;
        }
        self.counters.rack_timeouts += 1;
        if self.rec.active {
            // Let one segment out for the newly lost data (no ACK will come to clock it).
            self.rec.quota = self.rec.quota.max(self.mss);
        } else {
            self.sack_on_ack(
                now,
                self.snd_una,
                self.sb.sacked(),
                0,
                self.snd_max - self.snd_una,
                false,
            );
        }
    }

    /// (Re)arms the TLP timer (RFC 8985 section 7.2), or stops it.
    pub(crate) fn arm_tlp(&mut self, now: Instant) {
        self.timers.tlp = None;
        if !self.rack_enabled()
            || self.rec.active
            || self.rack.tlp_high.is_some()
            || self.snd_una == self.snd_max
            || self.snd_nxt < self.snd_max
            || !matches!(
                self.state,
                crate::error::State::Established | crate::error::State::CloseWait
            )
        {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = srtt * 2;
        if self.snd_max - self.snd_una <= self.mss {
            pto += WC_DEL_ACK;
        }
        let pto = pto.max(Duration::from_millis(10));
        let at = now + pto;
        if matches!(self.timers.rtx, Some(rto) if rto <= at) {
            return;
        }
        self.timers.tlp = Some(at);
    }

    /// The TLP timer fired: queue a probe (RFC 8985 section 7.3).
    pub(crate) fn on_tlp_timer(&mut self, now: Instant) {
        self.timers.tlp = None;
        if !self.rack_enabled() || self.rec.active || self.snd_una == self.snd_max {
            return;
        }
        let unsent = self.tx.len() - (self.snd_nxt - self.tx_seq0).min(self.tx.len());
        let room = (self.snd_una + self.snd_wnd).diff(self.snd_nxt) > 0;
        let seq = if unsent > 0 && room {
            self.snd_nxt
        } else {
            // The last segment sent (data only; a lone FIN is left to the RTO).
            let data_end = (self.tx_seq0 + self.tx.len()).min(self.snd_max);
            if data_end <= self.snd_una {
                return;
            }
            data_end - (data_end - self.snd_una).min(self.mss)
        };
        self.counters.tlp_probes += 1;
        self.tlp_probe = Some(seq);
        self.rack.tlp_high = Some(self.snd_max);
        self.timers.rtx = Some(now + self.rtt.rto());
    }
}
