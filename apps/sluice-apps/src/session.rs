//! What the drivers need from an application: a `Session` per connection (bytes in, bytes
//! out, no sockets), the per-core `Tally` it counts into, and `Conn`, the connection
//! lifecycle (read, write, half-close, linger, close) written once over a `Transport`
//! that each stack implements.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use nonmax::NonMaxU64;

use crate::out::OutQueue;

/// Stop reading while this much output is queued (backpressure on pipelining peers).
pub const HIGH_WATER: u64 = 512 * 1024;
/// How long a connection that we shut down waits for the peer's FIN before closing.
pub const LINGER_NS: u64 = 2_000_000_000;
/// Reads per step at most, so that one fast connection does not starve the others.
const MAX_READS: usize = 32;

/// A time (ns, the drivers' clock) as a `NonMaxU64`, so that an `Option` of it takes 8
/// bytes, not 16 (the load generator's connection then fits four cache lines). The clock
/// never reaches `u64::MAX`; a deadline that far (never) is kept one below.
pub(crate) fn ns(t: u64) -> NonMaxU64 {
    NonMaxU64::new(t.min(u64::MAX - 1)).unwrap_or(NonMaxU64::ZERO)
}

/// One connection's application logic.
pub trait Session {
    /// Bytes received: consumes a prefix of `data` (returning its length) and queues output.
    fn input(&mut self, data: &[u8], out: &mut OutQueue, t: &mut Tally, now: u64) -> usize;
    /// Called every round, before and after input: queue output of its own accord.
    fn produce(&mut self, _out: &mut OutQueue, _t: &mut Tally, _now: u64) {}
    /// The peer finished sending (all its bytes were consumed).
    fn eof(&mut self, out: &mut OutQueue, t: &mut Tally, now: u64);
    /// The connection is gone; `error` says whether it failed.
    fn closed(&mut self, _t: &mut Tally, _now: u64, _error: bool) {}
    /// Whether to read more now.
    fn wants_input(&self, out: &OutQueue) -> bool {
        out.len() < HIGH_WATER
    }
    /// No more output will be queued: the connection is shut down once `out` is sent.
    fn finished(&self) -> bool;
    /// When the connection times out unless something happens first (ns, the drivers'
    /// clock), given when bytes last arrived (or it opened): an idle or a request-head
    /// timeout. `None`: never.
    fn deadline(&self, _last_input: u64) -> Option<u64> {
        None
    }
    /// Starts fetching, without waiting, the memory of its own (behind pointers) that its
    /// next step touches: a driver stepping thousands of connections calls it a few
    /// connections ahead, so that their cache misses overlap.
    fn prefetch(&self) {}
}

/// What a core (or kernel thread) counted. Plain numbers, merged at the end.
#[derive(Clone, Debug)]
pub struct Tally {
    pub conns_opened: u64,
    pub conns_closed: u64,
    /// Connections that failed: reset, refused, timed out, or a connect error.
    pub conn_errors: u64,
    /// Connections ended by a timeout (idle, request head, a peer that stopped reading);
    /// counted in `conn_errors` too.
    pub timeouts: u64,
    /// Requests served (servers) or completed (clients).
    pub requests: u64,
    /// Application-level errors: error responses, malformed or wrong data.
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Latency of completed requests, nanoseconds (clients).
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            conns_opened: 0,
            conns_closed: 0,
            conn_errors: 0,
            timeouts: 0,
            requests: 0,
            errors: 0,
            bytes_in: 0,
            bytes_out: 0,
            // 1 ns to 100 s at 3 significant digits: the bounds are valid constants.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds"),
        }
    }
    /// Records one latency, clamped into the histogram's range.
    pub fn record_latency(&mut self, ns: u64) {
        self.latency.saturating_record(ns.max(1));
    }
    pub fn merge(&mut self, o: &Tally) {
        self.conns_opened += o.conns_opened;
        self.conns_closed += o.conns_closed;
        self.conn_errors += o.conn_errors;
        self.timeouts += o.timeouts;
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        // Same bounds on both sides; a value out of range cannot occur.
        let _ = self.latency.add(&o.latency);
    }
    /// Connections still open.
    pub fn open(&self) -> u64 {
        self.conns_opened.saturating_sub(self.conns_closed)
    }
}

/// The counters of one core readable by the progress thread while it runs.
#[derive(Debug, Default)]
pub struct Live {
    pub conns_opened: AtomicU64,
    pub conns_closed: AtomicU64,
    pub conn_errors: AtomicU64,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// A plain copy of `Live`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub conns_opened: u64,
    pub conns_closed: u64,
    pub conn_errors: u64,
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Live {
    pub fn publish(&self, t: &Tally) {
        let r = Ordering::Relaxed;
        self.conns_opened.store(t.conns_opened, r);
        self.conns_closed.store(t.conns_closed, r);
        self.conn_errors.store(t.conn_errors, r);
        self.requests.store(t.requests, r);
        self.errors.store(t.errors, r);
        self.bytes_in.store(t.bytes_in, r);
        self.bytes_out.store(t.bytes_out, r);
    }
    pub fn snapshot(&self) -> Snapshot {
        let r = Ordering::Relaxed;
        Snapshot {
            conns_opened: self.conns_opened.load(r),
            conns_closed: self.conns_closed.load(r),
            conn_errors: self.conn_errors.load(r),
            requests: self.requests.load(r),
            errors: self.errors.load(r),
            bytes_in: self.bytes_in.load(r),
            bytes_out: self.bytes_out.load(r),
        }
    }
}

impl Snapshot {
    pub fn sum(all: impl IntoIterator<Item = Snapshot>) -> Snapshot {
        all.into_iter().fold(Snapshot::default(), |a, b| Snapshot {
            conns_opened: a.conns_opened + b.conns_opened,
            conns_closed: a.conns_closed + b.conns_closed,
            conn_errors: a.conn_errors + b.conn_errors,
            requests: a.requests + b.requests,
            errors: a.errors + b.errors,
            bytes_in: a.bytes_in + b.bytes_in,
            bytes_out: a.bytes_out + b.bytes_out,
        })
    }
}

/// What reading from a transport gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes moved (into the session, or into the transport's own holding buffer).
    Data,
    /// Bytes are there but the session took none.
    Stalled,
    /// The peer finished sending and every byte was consumed.
    Eof,
    WouldBlock,
}

/// Why a connection ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnFailure {
    Reset,
    Refused,
    TimedOut,
    Other,
}

/// A connected stream as the lifecycle sees it.
pub trait Transport {
    /// Whether the connection is established (clients queue nothing before).
    fn ready(&mut self) -> bool {
        true
    }
    /// Offers received bytes to `f`, which returns how many it consumed.
    fn read(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> Result<ReadOutcome, ConnFailure>;
    /// Writes a prefix of `out`: `Some(n)` bytes taken, `None` no room now.
    fn write(&mut self, out: &OutQueue) -> Result<Option<usize>, ConnFailure>;
    /// Sends FIN after what is queued.
    fn shutdown(&mut self);
}

/// How one step of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Still open; whether anything happened, and whether it may have more to do at once
    /// (it stopped reading before the transport ran dry, or output is left): a driver that
    /// learns of new input by events steps it again without one.
    Open { did: bool, more: bool },
    /// Finished cleanly: close it.
    Done,
    /// Failed: close it.
    Failed(ConnFailure),
}

/// A connection: its session, its queued output, and where it is in its lifecycle.
#[derive(Debug)]
pub struct Conn<S> {
    pub session: S,
    pub out: OutQueue,
    eof: bool,
    shut: bool,
    linger_until: u64,
    /// When bytes last arrived (or the first step).
    last_input: Option<NonMaxU64>,
    /// Since when output has been queued without any of it being taken.
    stalled_since: Option<NonMaxU64>,
}

impl<S: Session> Conn<S> {
    pub fn new(session: S) -> Conn<S> {
        Conn::with_queue(session, OutQueue::new())
    }

    /// A connection whose output goes through `out` (empty: one `OutQueue::recycled`).
    pub fn with_queue(session: S, out: OutQueue) -> Conn<S> {
        debug_assert!(out.is_empty());
        Conn {
            session,
            out,
            eof: false,
            shut: false,
            linger_until: 0,
            last_input: None,
            stalled_since: None,
        }
    }

    /// Starts fetching the memory the next step touches behind pointers (the output
    /// queue's, the session's), without waiting.
    #[inline]
    pub fn prefetch(&self) {
        self.out.prefetch();
        self.session.prefetch();
    }

    /// Whether the driver should watch for readability / writability (kernel poll sets).
    pub fn wants_read(&self) -> bool {
        !self.eof && (self.shut || self.session.wants_input(&self.out))
    }
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }
    /// When this connection times out unless it makes progress: the session's deadline
    /// (idle, request head), or `send_timeout` (ns) after output stopped being taken (a
    /// peer that does not read).
    pub fn deadline(&self, send_timeout: Option<u64>) -> Option<u64> {
        // Idle and head timeouts run while nothing is queued to send.
        let session = if self.out.is_empty() && !self.shut {
            self.session.deadline(self.last_input.map_or(0, |t| t.get()))
        } else {
            None
        };
        let send = self
            .stalled_since
            .zip(send_timeout)
            .map(|(t, d)| t.get().saturating_add(d));
        match (session, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Output is waiting that the peer does not take (what a timeout then means: the
    /// connection is reset rather than closed, so its buffers are freed at once).
    pub fn send_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// Shut down and waiting for the peer's FIN, until the linger time: a step is due
    /// without an event.
    pub fn lingering(&self) -> bool {
        self.shut && !self.eof
    }

    /// Reads, lets the session work, writes, and shuts down or closes when it is time.
    pub fn step(&mut self, io: &mut impl Transport, t: &mut Tally, now: u64) -> Step {
        let mut did = false;
        if !io.ready() {
            return Step::Open {
                did: false,
                more: false,
            };
        }
        self.last_input.get_or_insert(ns(now));
        let bytes_out_before = t.bytes_out;
        if !self.shut {
            self.session.produce(&mut self.out, t, now);
        }
        let mut reads = 0;
        // The transport ran dry (or reached its end): no input is left unread.
        let mut drained = self.eof;
        while reads < MAX_READS && !self.eof && (self.shut || self.session.wants_input(&self.out)) {
            reads += 1;
            let (session, out, shut) = (&mut self.session, &mut self.out, self.shut);
            let mut took = 0u64;
            let r = io.read(&mut |data: &[u8]| {
                // After our shutdown, input is drained and dropped.
                let n = if shut {
                    data.len()
                } else {
                    session.input(data, out, t, now).min(data.len())
                };
                took += n as u64;
                n
            });
            t.bytes_in += took;
            if took > 0 {
                self.last_input = Some(ns(now));
            }
            match r {
                Ok(ReadOutcome::Data) => did = true,
                Ok(ReadOutcome::Stalled) => break,
                Ok(ReadOutcome::WouldBlock) => {
                    drained = true;
                    break;
                }
                Ok(ReadOutcome::Eof) => {
                    drained = true;
                    self.eof = true;
                    did = true;
                    if !self.shut {
                        self.session.eof(&mut self.out, t, now);
                    }
                }
                Err(e) => return Step::Failed(e),
            }
        }
        if !self.shut {
            self.session.produce(&mut self.out, t, now);
        }
        while !self.out.is_empty() {
            match io.write(&self.out) {
                Ok(Some(n)) if n > 0 => {
                    self.out.consume(n);
                    t.bytes_out += n as u64;
                    did = true;
                }
                Ok(_) => break,
                Err(e) => return Step::Failed(e),
            }
        }
        // What the session would queue next (a sender whose queue just drained): more to do
        // at once, though no event will say so.
        if !self.shut && self.out.is_empty() {
            self.session.produce(&mut self.out, t, now);
        }
        // Output that stays queued without a byte taken since the last step is stalled.
        let took_some = t.bytes_out != bytes_out_before;
        self.stalled_since = match (self.out.is_empty(), self.stalled_since) {
            (true, _) => None,
            (false, Some(since)) if !took_some => Some(since),
            (false, _) => Some(ns(now)),
        };
        if !self.shut && self.out.is_empty() && self.session.finished() {
            io.shutdown();
            self.shut = true;
            self.linger_until = now.saturating_add(LINGER_NS);
            did = true;
        }
        if self.shut && self.out.is_empty() && (self.eof || now >= self.linger_until) {
            return Step::Done;
        }
        Step::Open {
            did,
            more: !drained || !self.out.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::echo::EchoSession;

    /// A transport with chunks of input to offer, one per read, and `room` bytes to write.
    struct Fake {
        input: VecDeque<Vec<u8>>,
        room: usize,
        written: Vec<u8>,
    }

    impl Transport for Fake {
        fn read(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> Result<ReadOutcome, ConnFailure> {
            let Some(chunk) = self.input.front_mut() else {
                return Ok(ReadOutcome::WouldBlock);
            };
            let n = f(chunk);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.input.pop_front();
            }
            Ok(if n == 0 {
                ReadOutcome::Stalled
            } else {
                ReadOutcome::Data
            })
        }
        fn write(&mut self, out: &OutQueue) -> Result<Option<usize>, ConnFailure> {
            let n = (out.len() as usize).min(self.room);
            if n == 0 {
                return Ok(None);
            }
            let mut buf = vec![0; n];
            let n = out.copy_to(&mut buf);
            self.written.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(Some(n))
        }
        fn shutdown(&mut self) {}
    }

    fn fake(chunks: usize, room: usize) -> Fake {
        Fake {
            input: (0..chunks).map(|i| vec![i as u8; 64]).collect(),
            room,
            written: Vec::new(),
        }
    }

    /// A step that read until the transport ran dry and wrote everything has nothing more
    /// to do until new input comes; one that stopped early, or left output, has.
    #[test]
    fn a_step_says_whether_it_left_work() {
        let mut t = Tally::new();
        // Read dry, all written: no more.
        let (mut c, mut io) = (Conn::new(EchoSession::new()), fake(3, usize::MAX));
        assert_eq!(
            c.step(&mut io, &mut t, 1),
            Step::Open {
                did: true,
                more: false
            }
        );
        assert_eq!(io.written.len(), 3 * 64);
        // Stopped at MAX_READS with input left: more.
        let (mut c, mut io) = (Conn::new(EchoSession::new()), fake(MAX_READS + 5, usize::MAX));
        assert_eq!(
            c.step(&mut io, &mut t, 1),
            Step::Open {
                did: true,
                more: true
            }
        );
        assert_eq!(io.input.len(), 5);
        assert_eq!(
            c.step(&mut io, &mut t, 2),
            Step::Open {
                did: true,
                more: false
            }
        );
        // Output left behind by a full transport: more.
        let (mut c, mut io) = (Conn::new(EchoSession::new()), fake(2, 100));
        assert_eq!(
            c.step(&mut io, &mut t, 1),
            Step::Open {
                did: true,
                more: true
            }
        );
        io.room = usize::MAX;
        assert_eq!(
            c.step(&mut io, &mut t, 2),
            Step::Open {
                did: true,
                more: false
            }
        );
        assert_eq!(io.written, [vec![0u8; 64], vec![1u8; 64]].concat());
        // Nothing there: nothing done, nothing more.
        assert_eq!(
            c.step(&mut io, &mut t, 3),
            Step::Open {
                did: false,
                more: false
            }
        );
    }

    /// A sender that queues one 64-byte chunk per call until `left` are queued.
    struct Sender {
        left: usize,
    }

    impl Session for Sender {
        fn input(&mut self, data: &[u8], _out: &mut OutQueue, _t: &mut Tally, _now: u64) -> usize {
            data.len()
        }
        fn produce(&mut self, out: &mut OutQueue, _t: &mut Tally, _now: u64) {
            if self.left > 0 && out.is_empty() {
                self.left -= 1;
                out.push_bytes(&[9; 64]);
            }
        }
        fn eof(&mut self, _out: &mut OutQueue, _t: &mut Tally, _now: u64) {}
        fn finished(&self) -> bool {
            self.left == 0
        }
    }

    /// A sender whose queue drained with more to send says so: no event would.
    #[test]
    fn a_sender_with_more_to_queue_says_so() {
        let mut t = Tally::new();
        let (mut c, mut io) = (Conn::new(Sender { left: 10 }), fake(0, usize::MAX));
        let mut steps = 0;
        while let Step::Open { more: true, .. } = c.step(&mut io, &mut t, steps) {
            steps += 1;
            assert!(steps < 20);
        }
        assert_eq!(
            io.written.len(),
            10 * 64,
            "every chunk went, each step asking for the next"
        );
    }
}
