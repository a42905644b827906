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

use std::thread::LocalKey;

use crate::recycle::{Cache, OutOfLine, Recycled};

/// Entries of the send-time log.
pub(crate) const SEND_LOG_MAX: usize = 64;

/// Worst-case delayed ACK time assumed by TLP (RFC 8985 section 7.2).
pub(crate) const WC_DEL_ACK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(crate) struct Rack {
    /// `(end, t)`: every byte below `end` (and above the previous entry's end) was first
    /// sent at or before `t`. Sorted by both. Taken when the connection first sends
    /// data, so that an idle connection does not carry it (`OutOfLine`).
    pub(crate) log: OutOfLine<Log>,
    /// RACK.xmit_ts and RACK.end_seq (below) of the most recently sent delivered data.
    pub(crate) xmit_ts: Option<Instant>,
    /// RACK.rtt (ns; nanoseconds, not `Duration`s, keep the TCB's hot front small).
    pub(crate) rtt: u64,
    /// The minimum RTT of clean deliveries (ns; `u64::MAX`: none yet).
    pub(crate) min_rtt: u64,
    /// Unsacked bytes below this are lost according to RACK.
    pub lost_to: Option<SeqNumber>,
    /// A TLP probe is outstanding until SND.UNA passes this.
    pub tlp_high: Option<SeqNumber>,
    pub(crate) end_seq: SeqNumber,
    /// Entries of the log in use (at most `SEND_LOG_MAX`; `u32` with `end_seq`, in one
    /// word of the TCB's hot front).
    pub(crate) len: u32,
}

/// A send log's memory.
type Log = [(SeqNumber, Instant); SEND_LOG_MAX];

thread_local! {
    /// Send logs of connections that ended (`crate::recycle`): only the first `len`
    /// entries of a log are ever read.
    pub(crate) static LOGS: Cache<Box<Log>> = const { Cache::new(Vec::new()) };
}

impl Recycled for Log {
    const EMPTY: &'static Log = &[(SeqNumber(0), Instant::ZERO); SEND_LOG_MAX];
    fn cache() -> &'static LocalKey<Cache<Box<Log>>> {
        &LOGS
    }
}

impl Rack {
    pub fn new() -> Self {
        Rack {
            log: OutOfLine::new(),
            len: 0,
            xmit_ts: None,
            end_seq: SeqNumber(0),
            rtt: 0,
            min_rtt: u64::MAX,
            lost_to: None,
            tlp_high: None,
        }
    }

    /// Bytes up to `end` were sent (first transmission) at `now`.
    pub fn on_send(&mut self, end: SeqNumber, now: Instant) {
        let log = self.log.get_mut();
        let mut len = self.len as usize;
        if len > 0 {
            let last = &mut log[len - 1];
            if last.1 == now {
                last.0 = last.0.max(end);
                return;
            }
            if end <= last.0 {
                return;
            }
        }
        if len == SEND_LOG_MAX {
            // Keep the odd entries (the last one included): times only move later.
            for i in 0..SEND_LOG_MAX / 2 {
                log[i] = log[2 * i + 1];
            }
            len = SEND_LOG_MAX / 2;
        }
        log[len] = (end, now);
        self.len = len as u32 + 1;
    }

    /// Gives the send log back (to this thread's cache) once nothing sent can be
    /// outstanding any more (TIME-WAIT, CLOSED): a client closing first holds thousands of
    /// connections in TIME-WAIT, and a log each kept the cache empty, so that every new
    /// connection took a fresh, zero-filled one from the allocator.
    pub(crate) fn release_log(&mut self) {
        self.len = 0;
        self.log.release();
    }

    /// Starts fetching the log's oldest entries (those an ACK looks up first).
    #[inline]
    pub(crate) fn prefetch(&self) {
        if self.len > 0 {
            sluice_buf::prefetch(self.log.get().as_ptr().cast(), 64);
        }
    }

    /// The log's entries in use, oldest first.
    #[inline]
    pub(crate) fn entries(&self) -> &[(SeqNumber, Instant)] {
        &self.log.get()[..self.len as usize]
    }

    /// The recorded send time of byte `seq`.
    pub(crate) fn sent_at(&self, seq: SeqNumber) -> Option<Instant> {
        self.entries().iter().find(|(end, _)| seq < *end).map(|&(_, t)| t)
    }

    /// Forgets entries wholly below `una`.
    pub(crate) fn trim(&mut self, una: SeqNumber) {
        if self.len == 0 {
            return; // (and nothing is taken: `len` is 0 whenever no log is)
        }
        let len = self.len as usize;
        let log = self.log.get_mut();
        let n = log[..len].iter().take_while(|(end, _)| *end <= una).count();
        log.copy_within(n..len, 0);
        self.len -= n as u32;
    }

    pub fn on_rto(&mut self) {
        self.lost_to = None;
        self.tlp_high = None;
        self.xmit_ts = None;
    }

    /// RACK.rtt.
    pub(crate) fn rtt(&self) -> Duration {
        Duration::from_nanos(self.rtt)
    }

    /// Records a delivery's RTT (`clean`: neither a retransmission nor a probe could have
    /// caused the ACK, so it also counts towards the minimum).
    pub(crate) fn on_rtt(&mut self, r: Duration, clean: bool) {
        let r = u64::try_from(r.as_nanos())
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1);
        self.rtt = r;
        if clean {
            self.min_rtt = self.min_rtt.min(r);
        }
    }

    pub(crate) fn reo_wnd(&self, srtt: Option<Duration>) -> Duration {
        let min_rtt = if self.min_rtt == u64::MAX { 0 } else { self.min_rtt };
        let w = Duration::from_nanos(min_rtt) / 4;
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }
}
