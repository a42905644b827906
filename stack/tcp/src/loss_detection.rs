//! RACK-TLP on the TCB (RFC 8985): loss marking on ACKs, the reordering timer, the tail
//! loss probe. The state it keeps (`Rack`, the send-time log) and the algorithm's notes are
//! in `crate::rack`.

use crate::rack::WC_DEL_ACK;
use crate::tcb::{OptSeq, Tcb};
use core::time::Duration;
use sluice_wire::Instant;

/// The shortest probe timeout (RFC 8985 section 7.2: PTO is at least 10 ms).
const PTO_MIN: Duration = Duration::from_millis(10);

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
                let clean = !self.recovering && self.rack.tlp_high.is_none() && self.snd_nxt == self.snd_max;
                self.rack.on_rtt(now - t, clean);
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
        let wait = self.rack.rtt() + self.rack.reo_wnd(self.rtt.srtt());
        let mut lost_to = self.rack.lost_to.unwrap_or(self.snd_una).max(self.snd_una);
        let mut start = self.snd_una;
        for (end, t) in self.rack.entries() {
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
        if self.recovering {
            // Let one segment out for the newly lost data (no ACK will come to clock it).
            self.rec.quota = self.rec.quota.max(crate::recovery::bytes(self.mss));
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
            || self.recovering
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
        // In nanoseconds: `Duration` arithmetic renormalises at every step, and this runs
        // on every ACK of new data.
        let Some(srtt) = self.rtt.srtt_nanos() else { return };
        let mut pto = srtt.saturating_mul(2);
        if self.snd_max - self.snd_una <= self.mss {
            pto = pto.saturating_add(WC_DEL_ACK.as_nanos() as u64);
        }
        let at = now.plus_nanos(pto.max(PTO_MIN.as_nanos() as u64));
        if matches!(self.timers.rtx, Some(rto) if rto <= at) {
            return;
        }
        self.timers.tlp = Some(at);
    }

    /// The TLP timer fired: queue a probe (RFC 8985 section 7.3).
    pub(crate) fn on_tlp_timer(&mut self, now: Instant) {
        self.timers.tlp = None;
        if !self.rack_enabled() || self.recovering || self.snd_una == self.snd_max {
            return;
        }
        let unsent = self.tx.len() - (self.snd_nxt - self.tx_seq0).min(self.tx.len());
        let room = (self.snd_una + self.snd_wnd as usize).diff(self.snd_nxt) > 0;
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
        self.tlp_probe = OptSeq::some(seq);
        self.rack.tlp_high = Some(self.snd_max);
        self.timers.rtx = Some(self.rtt.rto_deadline(now));
    }
}
