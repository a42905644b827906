//! RACK-TLP (RFC 8985), in a simplified form (SACK mode only).
//!
//! RACK: a fixed-size log maps sequence numbers of original transmissions to the time
//! they were sent (entries sent at the same instant are merged; when the log is full,
//! every other entry is dropped, which can only make a recorded time later, so loss is
//! never declared early). Its newest entry lies in the TCB itself, the older ones out of
//! line: a connection with one flight out at a time (request/response) never touches, or
//! even takes, the out-of-line part. When the peer delivers (ACKs or SACKs) data, RACK.xmit_ts
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
use crate::rtt::{micros_ceil, nanos};

/// Entries of the send-time log.
pub(crate) const SEND_LOG_MAX: usize = 64;

/// Worst-case delayed ACK time assumed by TLP (RFC 8985 section 7.2).
pub(crate) const WC_DEL_ACK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(crate) struct Rack {
    /// The entries before the newest (`last_end`, `last_at`), oldest first: `(end, t)`,
    /// every byte below `end` (and above the previous entry's end) was first sent at or
    /// before `t`. Sorted by both. Taken when the connection first has two entries, so
    /// that a connection with one flight out at a time does not carry it (`OutOfLine`).
    pub(crate) log: OutOfLine<Log>,
    /// RACK.xmit_ts and RACK.end_seq (below) of the most recently sent delivered data.
    pub(crate) xmit_ts: Option<Instant>,
    /// RACK.rtt (µs, rounded up: 32 bits, not a `Duration`, keep the TCB's hot front
    /// small; they reach 71 minutes).
    rtt_us: u32,
    /// The minimum RTT of clean deliveries (µs, rounded up; `u32::MAX`: none yet).
    min_rtt_us: u32,
    /// Unsacked bytes below this are lost according to RACK.
    pub lost_to: Option<SeqNumber>,
    /// A TLP probe is outstanding until SND.UNA passes this.
    pub tlp_high: Option<SeqNumber>,
    pub(crate) end_seq: SeqNumber,
    /// Entries in use, the newest included (at most `SEND_LOG_MAX + 1`; `u32` with
    /// `end_seq`, in one word of the TCB's hot front).
    len: u32,
    /// The newest entry, when `len > 0`: bytes below `last_end` (and above the log's last
    /// end) were first sent at `last_at`.
    last_end: SeqNumber,
    last_at: Instant,
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
            last_end: SeqNumber(0),
            last_at: Instant::ZERO,
            xmit_ts: None,
            end_seq: SeqNumber(0),
            rtt_us: 0,
            min_rtt_us: u32::MAX,
            lost_to: None,
            tlp_high: None,
        }
    }

    /// Bytes up to `end` were sent (first transmission) at `now`.
    pub fn on_send(&mut self, end: SeqNumber, now: Instant) {
        if self.len > 0 {
            if self.last_at == now {
                self.last_end = self.last_end.max(end);
                return;
            }
            if end <= self.last_end {
                return;
            }
            // The newest entry joins the older ones, out of line.
            let mut older = self.len as usize - 1;
            let log = self.log.get_mut();
            if older == SEND_LOG_MAX {
                // Keep the odd entries (the last one included): times only move later.
                for i in 0..SEND_LOG_MAX / 2 {
                    log[i] = log[2 * i + 1];
                }
                older = SEND_LOG_MAX / 2;
            }
            log[older] = (self.last_end, self.last_at);
            self.len = older as u32 + 1;
        }
        self.last_end = end;
        self.last_at = now;
        self.len += 1;
    }

    /// Gives the send log back (to this thread's cache) once nothing sent can be
    /// outstanding any more (TIME-WAIT, CLOSED): a client closing first holds thousands of
    /// connections in TIME-WAIT, and a log each kept the cache empty, so that every new
    /// connection took a fresh, zero-filled one from the allocator.
    pub(crate) fn release_log(&mut self) {
        self.len = 0;
        self.log.release();
    }

    /// The entries before the newest, out of line.
    #[inline]
    fn older(&self) -> &[(SeqNumber, Instant)] {
        match self.len {
            0 | 1 => &[], // (the log may not even be taken)
            n => &self.log.get()[..n as usize - 1],
        }
    }

    /// Starts fetching the log's oldest entries (those an ACK looks up first), if there
    /// are any besides the newest.
    #[inline]
    pub(crate) fn prefetch(&self) {
        if self.len > 1 {
            sluice_buf::prefetch(self.log.get().as_ptr().cast(), 64);
        }
    }

    /// The entries in use, oldest first.
    #[inline]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (SeqNumber, Instant)> + '_ {
        let newest = (self.len > 0).then_some((self.last_end, self.last_at));
        self.older().iter().copied().chain(newest)
    }

    /// The recorded send time of byte `seq`.
    pub(crate) fn sent_at(&self, seq: SeqNumber) -> Option<Instant> {
        self.entries().find(|(end, _)| seq < *end).map(|(_, t)| t)
    }

    /// Forgets entries wholly below `una`.
    pub(crate) fn trim(&mut self, una: SeqNumber) {
        if self.len == 0 {
            return;
        }
        if self.last_end <= una {
            self.len = 0; // all of them (the older ones end below the newest)
            return;
        }
        let older = self.len as usize - 1;
        if older == 0 {
            return;
        }
        let log = self.log.get_mut();
        let n = log[..older].iter().take_while(|(end, _)| *end <= una).count();
        log.copy_within(n..older, 0);
        self.len -= n as u32;
    }

    pub fn on_rto(&mut self) {
        self.lost_to = None;
        self.tlp_high = None;
        self.xmit_ts = None;
    }

    /// RACK.rtt.
    pub(crate) fn rtt(&self) -> Duration {
        Duration::from_micros(self.rtt_us.into())
    }

    /// Records a delivery's RTT (`clean`: neither a retransmission nor a probe could have
    /// caused the ACK, so it also counts towards the minimum). Rounded up to whole
    /// microseconds: a loss is then declared later, never earlier.
    pub(crate) fn on_rtt(&mut self, r: Duration, clean: bool) {
        // (`u32::MAX` is the minimum's "none yet".)
        let us = micros_ceil(nanos(r)).min(u32::MAX - 1);
        self.rtt_us = us;
        if clean {
            self.min_rtt_us = self.min_rtt_us.min(us);
        }
    }

    pub(crate) fn reo_wnd(&self, srtt: Option<Duration>) -> Duration {
        let min_rtt = if self.min_rtt_us == u32::MAX {
            0
        } else {
            self.min_rtt_us
        };
        let w = Duration::from_micros(min_rtt.into()) / 4;
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recycle::kept;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// One flight out at a time (request/response): the newest entry is all there is, and
    /// the log is never taken.
    #[test]
    fn one_flight_at_a_time_stays_inline() {
        let before = kept(&LOGS);
        let mut r = Rack::new();
        for i in 0..100u32 {
            let end = SeqNumber(1000 + 64 * (i + 1));
            r.on_send(end, at(u64::from(i) + 1));
            assert_eq!(r.sent_at(end - 1), Some(at(u64::from(i) + 1)));
            r.trim(end);
            assert_eq!(r.entries().count(), 0);
        }
        assert!(!r.log.is_taken());
        assert_eq!(kept(&LOGS), before, "no log taken from the cache either");
    }

    /// Entries across the inline newest one and the log: looked up, trimmed and merged as
    /// one sorted list.
    #[test]
    fn entries_span_the_log_and_the_newest() {
        let mut r = Rack::new();
        r.on_send(SeqNumber(100), at(1));
        r.on_send(SeqNumber(150), at(1)); // same instant: merged into the newest
        r.on_send(SeqNumber(120), at(2)); // nothing new
        assert_eq!(r.entries().collect::<Vec<_>>(), [(SeqNumber(150), at(1))]);
        assert!(!r.log.is_taken());
        r.on_send(SeqNumber(200), at(2));
        r.on_send(SeqNumber(300), at(3));
        assert!(r.log.is_taken());
        let all: Vec<_> = r.entries().collect();
        assert_eq!(
            all,
            [
                (SeqNumber(150), at(1)),
                (SeqNumber(200), at(2)),
                (SeqNumber(300), at(3))
            ]
        );
        assert_eq!(r.sent_at(SeqNumber(149)), Some(at(1)));
        assert_eq!(r.sent_at(SeqNumber(150)), Some(at(2)));
        assert_eq!(r.sent_at(SeqNumber(299)), Some(at(3)));
        assert_eq!(r.sent_at(SeqNumber(300)), None);
        r.trim(SeqNumber(199)); // the first only
        assert_eq!(
            r.entries().collect::<Vec<_>>(),
            [(SeqNumber(200), at(2)), (SeqNumber(300), at(3))]
        );
        r.trim(SeqNumber(200));
        assert_eq!(r.entries().collect::<Vec<_>>(), [(SeqNumber(300), at(3))]);
        r.trim(SeqNumber(300));
        assert_eq!(r.entries().count(), 0);
        assert_eq!(r.sent_at(SeqNumber(299)), None);
    }

    /// A full log keeps every other entry: what was recorded for a byte can only become
    /// later, and the newest entries stay as they were.
    #[test]
    fn a_full_log_halves_and_times_only_move_later() {
        let mut r = Rack::new();
        let n = 3 * SEND_LOG_MAX as u32;
        for i in 1..=n {
            r.on_send(SeqNumber(10 * i), at(u64::from(i)));
            assert!(r.entries().count() <= SEND_LOG_MAX + 1);
        }
        let all: Vec<_> = r.entries().collect();
        assert!(
            all.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "sorted"
        );
        assert_eq!(*all.last().unwrap(), (SeqNumber(10 * n), at(u64::from(n))));
        for i in 1..=n {
            let t = r.sent_at(SeqNumber(10 * i - 1));
            assert!(t.is_some_and(|t| t >= at(u64::from(i))), "byte {i}: {t:?}");
        }
    }

    /// RTTs are kept in whole microseconds, rounded up (a loss is declared later, never
    /// earlier), and the minimum only from clean deliveries.
    #[test]
    fn rtts_round_up_to_microseconds() {
        let mut r = Rack::new();
        assert_eq!(r.reo_wnd(None), Duration::ZERO, "no minimum yet");
        r.on_rtt(Duration::from_nanos(12_001), true);
        assert_eq!(r.rtt(), Duration::from_micros(13));
        r.on_rtt(Duration::from_micros(8), false);
        assert_eq!(r.rtt(), Duration::from_micros(8));
        assert_eq!(
            r.reo_wnd(None),
            Duration::from_micros(13) / 4,
            "not clean: no new minimum"
        );
        r.on_rtt(Duration::from_secs(100_000), true);
        assert!(r.rtt() > Duration::from_secs(4000), "saturates, does not wrap");
    }
}
