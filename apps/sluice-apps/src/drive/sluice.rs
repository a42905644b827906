//! The Sluice driver: an engine `App` that runs sessions on the core's connections, reading
//! in place from the stack's receive buffer (`read_with`) and writing in place into its
//! send buffer (`write_with`).
//!
//! A round steps only the connections that may have work: those the interface recorded as
//! changed (`Interface::ready_since`: data, room to send, a new state), those new or busy
//! in the last round, and those lingering after shutdown. Idle connections cost nothing.
//! Timeouts (a session's idle or head deadline, a peer that stops reading) are kept in a
//! heap with one armed entry per connection at most, so they cost nothing either until
//! they fire.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use nonmax::NonMaxU64;
use sluice_engine::{App, Cx, Error, TcpListener, TcpStream};
use sluice_net::{Ready, ReadyCursor, ReadySocket, TcpHandle, TcpState};

use crate::drive::{Factory, Plan};
use crate::out::OutQueue;
use crate::session::{ns, Conn, ConnFailure, Live, ReadOutcome, Session, Step, Tally, Transport};

/// Accepts at most this many connections per round.
const ACCEPT_BURST: usize = 256;
/// How often a core lets the allocator return freed memory (ns).
const COLLECT_NS: u64 = 1_000_000_000;

/// With this many connections their state no longer stays in the core's cache, and a
/// round fetches what it steps ahead of stepping it.
const PREFETCH_FROM: usize = 512;
/// How many visits ahead a round starts fetching a connection's slot and socket; the
/// memory they point to (buffers, the session's queues) is fetched half as far ahead,
/// once they have arrived. Far enough for a few misses to overlap, near enough that
/// what was fetched is still in the cache when it is used.
const AHEAD: usize = 8;

/// Output queues of ended connections kept for new ones, at most.
const SPARE_QUEUES: usize = 256;

/// An empty entry of `SluiceDriver::index`.
const NONE: u32 = u32::MAX;

/// Waits this long after a failed connect before the next.
const RETRY_NS: u64 = 100_000_000;

fn failure(e: Error) -> ConnFailure {
    match e {
        Error::Reset => ConnFailure::Reset,
        Error::Refused => ConnFailure::Refused,
        Error::TimedOut => ConnFailure::TimedOut,
        _ => ConnFailure::Other,
    }
}

/// A stream on a core, as a `Transport`.
struct SluiceIo<'c, 'a> {
    cx: &'c Cx<'a>,
    s: TcpStream,
    /// Write by frames (`Plan::zero_copy_send`).
    frames: bool,
    /// The pool had no buffer for a frame: no event will say when it has (step again).
    starved: bool,
}

impl SluiceIo<'_, '_> {
    /// Zero-copy send: copies the queued bytes into mbufs of one segment each and queues
    /// them by reference. `Ok(None)` when nothing could be queued.
    fn write_frames(&mut self, out: &OutQueue) -> Result<Option<usize>, ConnFailure> {
        let mss = self.s.mss(self.cx).unwrap_or(1460);
        let mut queued = 0usize;
        while (queued as u64) < out.len() {
            let Some(mut m) = self.cx.alloc_frame() else {
                self.starved = true;
                break; // pool exhausted for now
            };
            let room = m.remaining().min(mss);
            let n = out.copy_range_to(queued, &mut m.spare_mut()[..room]);
            m.commit(n);
            match self.s.write_frame(self.cx, m.freeze()) {
                Ok(None) => queued += n,
                Ok(Some(rest)) => {
                    queued += n - rest.len();
                    break;
                }
                Err(Error::WouldBlock) => break,
                Err(e) => return Err(failure(e)),
            }
        }
        Ok((queued > 0).then_some(queued))
    }
}

impl Transport for SluiceIo<'_, '_> {
    fn ready(&mut self) -> bool {
        !matches!(self.s.state(self.cx), TcpState::SynSent | TcpState::SynReceived)
    }
    fn read(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> Result<ReadOutcome, ConnFailure> {
        match self.s.read_with(self.cx, |buf| {
            let n = f(buf);
            (n, n)
        }) {
            Ok(Some(0)) => Ok(ReadOutcome::Stalled),
            Ok(Some(_)) => Ok(ReadOutcome::Data),
            Ok(None) => Ok(ReadOutcome::Eof),
            Err(Error::WouldBlock) => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(failure(e)),
        }
    }
    fn write(&mut self, out: &OutQueue) -> Result<Option<usize>, ConnFailure> {
        if self.frames {
            return self.write_frames(out);
        }
        match self.s.write_with(self.cx, |buf| out.copy_to(buf)) {
            Ok(n) => Ok(Some(n)),
            Err(Error::WouldBlock) => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }
    fn shutdown(&mut self) {
        self.s.shutdown(self.cx);
    }
}

/// A connection of the driver: its stream, the round it was last stepped in, its armed
/// entry in the timer heap, if any, and its session. `#[repr(C)]`, the stream and round
/// first: a round's check of whether (and when) to step it reads one line, not the last
/// of three. Aligned to a line, and with the load generator's session 192 bytes: three
/// lines whatever its index (at 288 bytes, unaligned, five or six; each a miss per
/// exchange with thousands of connections).
#[repr(C, align(64))]
struct Slot<S> {
    s: TcpStream,
    stepped: u64,
    armed: Option<NonMaxU64>,
    c: Conn<S>,
}

/// Sessions on one core of the engine: a listener, client connections, or both.
pub struct SluiceDriver<S> {
    plan: Plan,
    /// Client connections this core keeps open.
    want: usize,
    make: Factory<S>,
    listener: Option<TcpListener>,
    conns: Vec<Slot<S>>,
    /// Where each stream is in `conns`, by its slot in the interface (`TcpHandle::slot`;
    /// `NONE`: nowhere): a dense array the size of the connection table, which stays in
    /// the cache where a hash map's lines were a miss per lookup at 10,000 connections.
    index: Vec<u32>,
    /// Timeouts: (deadline ns, connection); an entry that fires early is re-armed.
    timers: BinaryHeap<Reverse<(u64, TcpHandle)>>,
    /// Output queues of ended connections, for new ones (`OutQueue::recycled`).
    spare_queues: Vec<OutQueue>,
    /// Connections to step in the next round without an event (new, busy, lingering).
    active: Vec<TcpStream>,
    /// Scratch: the connections of this round.
    todo: Vec<TcpStream>,
    cursor: ReadyCursor,
    round: u64,
    /// Connections stepped in the last round.
    visited: usize,
    /// When the allocator last returned this core's freed memory (ns).
    collected_at: u64,
    tally: Tally,
    live: Arc<Live>,
    results: Arc<Mutex<Vec<Tally>>>,
    retry_at: u64,
}

impl<S: Session> SluiceDriver<S> {
    pub fn new(
        plan: Plan,
        want: usize,
        make: Factory<S>,
        live: Arc<Live>,
        results: Arc<Mutex<Vec<Tally>>>,
    ) -> SluiceDriver<S> {
        SluiceDriver {
            plan,
            want,
            make,
            listener: None,
            conns: Vec::new(),
            index: Vec::new(),
            timers: BinaryHeap::new(),
            spare_queues: Vec::new(),
            active: Vec::new(),
            todo: Vec::new(),
            cursor: ReadyCursor::default(),
            round: 0,
            visited: 0,
            collected_at: 0,
            tally: Tally::new(),
            live,
            results,
            retry_at: 0,
        }
    }

    /// Connections stepped in the last round.
    pub fn visited(&self) -> usize {
        self.visited
    }

    /// Where stream `s` is in `conns`, if it is one of ours.
    #[inline]
    fn find(&self, s: TcpStream) -> Option<usize> {
        let i = *self.index.get(s.0.slot())? as usize;
        (self.conns.get(i)?.s == s).then_some(i)
    }

    fn add(&mut self, s: TcpStream) {
        let slot = s.0.slot();
        if slot >= self.index.len() {
            self.index.resize(slot + 1, NONE);
        }
        self.index[slot] = self.conns.len() as u32;
        self.conns.push(Slot {
            s,
            c: Conn::with_queue((self.make)(), self.spare_queues.pop().unwrap_or_default()),
            stepped: 0,
            armed: None,
        });
        self.active.push(s);
        self.tally.conns_opened += 1;
    }

    /// Before visiting `todo[j]`: starts fetching the slot and socket of the connection
    /// `AHEAD` visits later, and what those of the one `AHEAD / 2` later point to.
    #[inline]
    fn prefetch(&self, cx: &Cx, todo: &[TcpStream], j: usize) {
        let iface = cx.iface();
        if let Some(&far) = todo.get(j + AHEAD) {
            if let Some(i) = self.index.get(far.0.slot()).map(|&i| i as usize) {
                if let Some(slot) = self.conns.get(i) {
                    sluice_buf::prefetch((slot as *const Slot<S>).cast(), std::mem::size_of::<Slot<S>>());
                }
            }
            iface.tcp_prefetch(far.0);
        }
        if let Some(&near) = todo.get(j + AHEAD / 2) {
            if let Some(i) = self.find(near) {
                self.conns[i].c.prefetch();
            }
            iface.tcp_prefetch_buffers(near.0);
        }
    }

    /// Arms a timer for connection `i` at its deadline, unless one as early is armed.
    fn arm(&mut self, i: usize) {
        let slot = &mut self.conns[i];
        let Some(d) = slot.c.deadline(self.plan.send_timeout) else {
            return;
        };
        if slot.armed.is_some_and(|a| a.get() <= d) {
            return; // fires first, and re-arms then
        }
        let d = ns(d);
        slot.armed = Some(d);
        self.timers.push(Reverse((d.get(), slot.s.0)));
        // Entries of connections that ended (or re-armed earlier) stay until their deadline
        // comes up: with short connections they would pile up by the million (and the heap
        // with them). Once they are most of it, it is rebuilt from the live ones.
        if self.timers.len() >= 2 * self.conns.len() + 1024 {
            self.timers = self
                .conns
                .iter()
                .filter_map(|slot| slot.armed.map(|a| Reverse((a.get(), slot.s.0))))
                .collect();
        }
    }

    /// Ends the connections whose deadline passed; re-arms those that moved on.
    fn expire(&mut self, cx: &Cx, now: u64) -> bool {
        let mut did = false;
        while let Some(&Reverse((at, h))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(i) = self.find(TcpStream(h)) else {
                continue; // ended since
            };
            if self.conns[i].armed.map(|a| a.get()) != Some(at) {
                continue; // superseded by an earlier entry
            }
            self.conns[i].armed = None;
            match self.conns[i].c.deadline(self.plan.send_timeout) {
                Some(d) if d <= now => {
                    // A peer that stopped reading is reset (its buffers freed at once);
                    // an idle one is closed.
                    let reset = self.conns[i].c.send_stalled();
                    self.tally.timeouts += 1;
                    if reset {
                        self.conns[i].s.abort(cx);
                    }
                    self.end(cx, i, now, Some(ConnFailure::TimedOut));
                    did = true;
                }
                _ => self.arm(i),
            }
        }
        did
    }

    fn end(&mut self, cx: &Cx, i: usize, now: u64, failed: Option<ConnFailure>) {
        let Slot { s, mut c, .. } = self.conns.swap_remove(i);
        self.index[s.0.slot()] = NONE;
        if let Some(moved) = self.conns.get(i) {
            self.index[moved.s.0.slot()] = i as u32;
        }
        s.close(cx);
        c.session.closed(&mut self.tally, now, failed.is_some());
        if self.spare_queues.len() < SPARE_QUEUES {
            self.spare_queues.extend(c.out.recycled());
        }
        self.tally.conns_closed += 1;
        if failed.is_some() {
            self.tally.conn_errors += 1;
            self.retry_at = now + RETRY_NS;
        }
    }
}

impl<S: Session> App for SluiceDriver<S> {
    fn start(&mut self, cx: &Cx) -> Result<(), sluice_engine::AppError> {
        if let Some(port) = self.plan.listen {
            let l = TcpListener::bind(cx, port, self.plan.backlog)
                .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
            if let Some(max) = self.plan.max_connections {
                cx.iface().tcp_listener_set_limit(l.0, max);
            }
            self.listener = Some(l);
        }
        Ok(())
    }

    fn poll(&mut self, cx: &Cx) -> bool {
        let now = cx.now().total_nanos();
        let mut did = false;
        if let Some(l) = self.listener {
            for _ in 0..ACCEPT_BURST {
                let Ok(s) = l.accept(cx) else { break };
                self.add(s);
                did = true;
            }
        }
        if let Some(target) = self.plan.connect {
            let addr = sluice_wire::IpAddress::from(target.ip());
            while self.conns.len() < self.want && now >= self.retry_at && !cx.stop_requested() {
                match TcpStream::connect(cx, addr, target.port()) {
                    Ok(s) => {
                        self.add(s);
                        did = true;
                    }
                    Err(e) => {
                        if self.tally.conn_errors == 0 {
                            eprintln!("core {}: connect to {target}: {e}", cx.core());
                        }
                        self.tally.conn_errors += 1;
                        self.retry_at = now + RETRY_NS;
                    }
                }
            }
        }
        // The connections that may have work this round.
        let mut todo = std::mem::take(&mut self.todo);
        todo.clear();
        todo.append(&mut self.active);
        match cx.iface().ready_since(&mut self.cursor) {
            Ready::Missed => todo.extend(self.conns.iter().map(|slot| slot.s)),
            Ready::Changed(changed) => todo.extend(changed.iter().filter_map(|r| match r {
                ReadySocket::Tcp(h) => Some(TcpStream(*h)),
                _ => None,
            })),
        }
        self.round += 1;
        self.visited = 0;
        let ahead = todo.len() > 1 && self.conns.len() >= PREFETCH_FROM;
        for (j, &s) in todo.iter().enumerate() {
            if ahead {
                self.prefetch(cx, &todo, j);
            }
            let Some(i) = self.find(s) else {
                continue; // not ours, or ended since
            };
            if self.conns[i].stepped == self.round {
                continue;
            }
            self.conns[i].stepped = self.round;
            self.visited += 1;
            let c = &mut self.conns[i].c;
            let mut io = SluiceIo {
                cx,
                s,
                frames: self.plan.zero_copy_send,
                starved: false,
            };
            match c.step(&mut io, &mut self.tally, now) {
                Step::Open { did: d, more } => {
                    did |= d;
                    // Input comes by events: a connection that read until its stream ran
                    // dry and wrote all it had waits for the next one.
                    if (d && more) || c.lingering() || io.starved {
                        self.active.push(s);
                    }
                    self.arm(i);
                }
                Step::Done => {
                    self.end(cx, i, now, None);
                    did = true;
                }
                Step::Failed(f) => {
                    self.end(cx, i, now, Some(f));
                    did = true;
                }
            }
        }
        self.todo = todo;
        did |= self.expire(cx, now);
        // Memory that closed connections freed goes back to the OS: mimalloc returns it
        // lazily, on this thread's later allocator calls, which a quiet poll loop does not
        // make. Once a second is enough (and costs microseconds).
        if now.saturating_sub(self.collected_at) >= COLLECT_NS {
            self.collected_at = now;
            // SAFETY: plain call into the allocator, on this core's own thread.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
        if self
            .plan
            .stop_after_closed
            .is_some_and(|n| self.tally.conns_closed >= n)
        {
            cx.request_stop();
        }
        if did {
            self.live.publish(&self.tally);
        }
        did
    }

    fn finish(&mut self, cx: &Cx) {
        let now = cx.now().total_nanos();
        for Slot { s, mut c, .. } in self.conns.drain(..) {
            s.close(cx);
            c.session.closed(&mut self.tally, now, true);
            self.tally.conns_closed += 1;
        }
        if let Some(l) = self.listener.take() {
            l.close(cx);
        }
        self.live.publish(&self.tally);
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.tally.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::ClientSession;

    /// A load generator's connection (its slot: stream, round, timer, session, output
    /// queue) is three whole cache lines, each a miss per exchange with thousands of
    /// connections: at 288 bytes, unaligned, it spanned five or six.
    #[test]
    fn a_load_generators_connection_is_three_cache_lines() {
        assert_eq!(align_of::<Slot<ClientSession>>(), 64);
        assert!(
            size_of::<Slot<ClientSession>>() <= 3 * 64,
            "{} bytes",
            size_of::<Slot<ClientSession>>()
        );
    }
}
