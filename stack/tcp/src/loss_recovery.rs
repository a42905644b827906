//! SACK-based loss recovery on the TCB (RFC 6675, RFC 6937 PRR): entering and leaving
//! recovery, what each ACK lets out. The state (`Recovery`) and the notes are in
//! `crate::recovery`.

use crate::congestion::{AckInfo, CongestionControl};
use crate::recovery::{bytes, Recovery};
use crate::tcb::Tcb;
use sluice_wire::tcp::{SackBlocks, SeqNumber};
use sluice_wire::Instant;
impl Tcb {
    /// Loss recovery is SACK-based (this file) rather than the controller's RFC 6582.
    pub(crate) fn sack_mode(&self) -> bool {
        self.sack_ok && self.cc.supports_sack_recovery()
    }

    /// Reads the SACK blocks of an acceptable ACK into the scoreboard. Returns the number
    /// of bytes newly SACKed. A D-SACK block (RFC 2883: the first block, below the
    /// cumulative ACK or inside the second block) is counted and otherwise ignored.
    pub(crate) fn read_sack_blocks(&mut self, ack: SeqNumber, blocks: &SackBlocks) -> usize {
        let blocks = blocks.as_slice();
        let mut newly = 0;
        for (i, &(left, right)) in blocks.iter().enumerate() {
            if left >= right || right - left > self.snd_max - self.snd_una.min(ack) {
                self.counters.sack_blocks_ignored += 1; // reversed, empty or absurd
                continue;
            }
            if i == 0 {
                // Below the cumulative ACK, but not absurdly far (a window's worth).
                let window = (self.max_snd_wnd as usize).max(self.tx.capacity());
                let below_ack = right <= ack && ack - left <= window;
                let inside_second = blocks.get(1).is_some_and(|&(l2, r2)| left >= l2 && right <= r2);
                if below_ack || inside_second {
                    self.counters.dsacks_received += 1;
                    continue;
                }
            }
            if right > self.snd_max || right <= ack || right <= self.snd_una {
                self.counters.sack_blocks_ignored += 1; // outside the window
                continue;
            }
            let left = left.max(ack).max(self.snd_una);
            newly += self.sb.add(left, right);
        }
        newly
    }

    /// One past the highest byte considered lost: the RFC 6675 IsLost boundary or the
    /// RACK one, whichever is higher; SND.UNA when nothing is lost.
    pub(crate) fn lost_boundary(&self) -> SeqNumber {
        let mut l = self.snd_una;
        if let Some(b) = self.sb.lost_boundary(self.mss) {
            l = l.max(b);
        }
        if let Some(b) = self.rack.lost_to {
            l = l.max(b.min(self.snd_max));
        }
        l
    }

    /// RFC 6675 pipe: unSACKed bytes not deemed lost, plus unSACKed bytes retransmitted.
    pub(crate) fn pipe(&self) -> usize {
        let l = self.lost_boundary();
        let high_rxt = if self.recovering {
            self.rec.high_rxt.max(self.snd_una)
        } else {
            self.snd_una
        };
        self.sb.unsacked(l, self.snd_nxt.max(l)) + self.sb.unsacked(self.snd_una, high_rxt)
    }

    /// Bytes the congestion window must account for outside recovery: what was sent
    /// from SND.UNA to SND.NXT, less what the peer SACKed (RFC 3042 limited transmit
    /// follows from this: each SACKed segment lets one new segment out).
    pub(crate) fn cc_flight(&self) -> usize {
        if self.sack_mode() {
            self.sb.unsacked(self.snd_una, self.snd_nxt)
        } else {
            self.in_flight()
        }
    }

    /// The ACK part of input in SACK mode, after the cumulative ACK was applied.
    /// `old_una`/`sacked_before`: before this ACK; `data_acked`, `flight_size`: from the
    /// cumulative part; `dup`: SND.UNA unchanged and new data SACKed.
    pub(crate) fn sack_on_ack(
        &mut self,
        now: Instant,
        old_una: SeqNumber,
        sacked_before: usize,
        data_acked: usize,
        flight_size: usize,
        dup: bool,
    ) {
        let acked = self.snd_una - old_una;
        let delivered = (acked + self.sb.sacked()).saturating_sub(sacked_before);
        if dup {
            self.dup_acks += 1;
            self.counters.dup_acks += 1;
        } else if acked > 0 {
            self.dup_acks = 0;
        }
        self.rack_on_ack(now);
        if self.recovering {
            if self.snd_una >= self.rec.point {
                // RFC 6675: the recovery point is acknowledged; RFC 6937: cwnd = ssthresh.
                self.recovering = false;
                self.rec.quota = 0;
                self.dup_acks = 0;
                self.cc.on_recovery_exit(now, self.mss);
                return;
            }
            self.prr_update(delivered);
            return;
        }
        if data_acked > 0 {
            let info = AckInfo {
                now,
                ack: self.snd_una,
                acked: data_acked,
                flight_size,
                snd_max: self.snd_max,
                mss: self.mss,
            };
            let _ = self.cc.on_ack(&info);
        }
        // (The guard, out of the TCB's hot front, is read only when loss is suspected.)
        if self.snd_una < self.snd_max
            && (self.dup_acks as usize >= crate::sack::DUP_THRESH || self.lost_boundary() > self.snd_una)
            && self.rec.guard.is_none_or(|g| self.snd_una >= g)
        {
            self.enter_recovery(now);
            self.prr_update(delivered);
        }
    }

    /// RFC 6675 section 5 step (4): RecoveryPoint = HighData, ssthresh reduced once.
    fn enter_recovery(&mut self, now: Instant) {
        let flight = self.snd_max - self.snd_una;
        self.recovering = true;
        self.rec = Recovery {
            point: self.snd_max,
            guard: Some(self.snd_max),
            high_rxt: self.snd_una,
            prr_delivered: 0,
            prr_out: 0,
            recover_fs: bytes(flight.max(1)),
            quota: 0,
        };
        self.cc.on_loss(now, flight, self.mss);
        self.counters.fast_retransmits += 1;
        self.counters.sack_recoveries += 1;
        self.rtt_timed = None;
    }

    /// RFC 6937 section 3: sndcnt for this ACK.
    fn prr_update(&mut self, delivered: usize) {
        let r = &mut self.rec;
        r.prr_delivered = r.prr_delivered.saturating_add(bytes(delivered));
        let pipe = self.pipe();
        let ssthresh = self.cc.ssthresh();
        let r = &mut self.rec;
        let mut sndcnt = if pipe > ssthresh {
            // Proportional part: ceil(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let num = r.prr_delivered as u128 * ssthresh as u128;
            let want = num.div_ceil(r.recover_fs as u128).min(usize::MAX as u128) as usize;
            want.saturating_sub(r.prr_out as usize)
        } else {
            // PRR-SSRB: grow back towards ssthresh, at most one MSS beyond what was
            // delivered.
            let limit = (r.prr_delivered.saturating_sub(r.prr_out) as usize).max(delivered) + self.mss;
            (ssthresh - pipe).min(limit)
        };
        if r.prr_out == 0 && sndcnt == 0 {
            // The fast retransmit goes out on entering recovery whatever the numbers.
            sndcnt = self.mss;
        }
        r.quota = bytes(sndcnt);
    }

    /// NextSeg rule (1) of RFC 6675 section 4: the first unSACKed, lost byte above
    /// HighRxt, and how much of its hole to retransmit.
    pub(crate) fn next_lost_hole(&self) -> Option<(SeqNumber, usize)> {
        let from = self.rec.high_rxt.max(self.snd_una);
        let lost = self.lost_boundary();
        let (seq, len) = self.sb.next_hole(from, lost)?;
        (seq >= self.tx_seq0).then_some((seq, len.min(self.mss)))
    }

    /// Accounts for a segment sent during recovery.
    pub(crate) fn recovery_sent(&mut self, seq: SeqNumber, len: usize) {
        if !self.recovering {
            return;
        }
        if seq < self.snd_max {
            self.rec.high_rxt = self.rec.high_rxt.max(seq + len);
        }
        self.rec.quota = self.rec.quota.saturating_sub(bytes(len.max(1)));
        self.rec.prr_out = self.rec.prr_out.saturating_add(bytes(len));
    }

    /// The retransmission timer expired: SACK state is no longer trusted (RFC 2018
    /// section 8: the receiver may renege), recovery ends.
    pub(crate) fn sack_on_rto(&mut self) {
        self.sb.clear();
        self.recovering = false;
        self.rec.quota = 0;
        self.rec.guard = Some(self.snd_max);
        self.rack.on_rto();
    }
}
