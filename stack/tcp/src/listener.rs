//! Passive open for many connections on one port: a backlog of half-open connections
//! and an accept queue. The listener holds handles only; the owner (the IP layer)
//! keeps the TCBs in its own table, keyed however it likes.
//!
//! With SYN cookies enabled (`enable_syn_cookies`) and segments given through
//! `on_segment_from` (which also takes a value identifying the IP addresses), a SYN
//! that finds the backlog full is answered statelessly (`cookie.rs`), and a final ACK
//! carrying a valid cookie creates the connection directly in ESTABLISHED.

use std::collections::VecDeque;

use sluice_wire::tcp::{SeqNumber, TcpRepr};
use sluice_wire::Instant;

use crate::config::{ConfigCache, SharedConfig, TcpConfig};
use crate::cookie;
use crate::error::{ListenError, State};
use crate::rst::rst_for;
use crate::tcb::Tcb;

/// What the owner must do with a segment given to `Listener::on_segment`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ListenOutcome {
    /// Nothing (RST, or no SYN): drop it.
    Ignored,
    /// Send this RST (the segment carried an ACK, RFC 9293 3.10.7.2).
    Reset(TcpRepr<'static>),
    /// A new connection in SYN-RECEIVED: store it under the handle that was passed,
    /// then drive it (`poll_transmit` sends the SYN-ACK).
    Accepted(Tcb),
    /// The SYN was dropped (backlog or accept queue full).
    Dropped(ListenError),
}

/// What the owner must do with a segment given to `Listener::on_segment_from`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ListenReply {
    /// As for `Listener::on_segment`. `Accepted` may also be a connection already in
    /// ESTABLISHED (a valid SYN cookie): it is then in the accept queue already.
    Outcome(ListenOutcome),
    /// Send this SYN-ACK carrying a SYN cookie; no state was kept.
    SynCookie(TcpRepr<'static>),
}

/// Listener counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerCounters {
    /// SYNs dropped because the backlog or accept queue was full (and no cookie sent).
    pub dropped_syns: u64,
    /// SYN-ACKs sent with a cookie because the backlog was full.
    pub syn_cookies_sent: u64,
    /// Connections created from a valid cookie.
    pub syn_cookies_accepted: u64,
    /// ACKs whose cookie did not validate (answered with a RST).
    pub syn_cookies_rejected: u64,
}

/// A listening port. `H` is the owner's handle for a connection (a table index, the
/// 4-tuple...).
#[derive(Debug)]
pub struct Listener<H> {
    cfg: TcpConfig,
    /// The copies of `cfg` its connections share (one per MSS it was capped to).
    shared: ConfigCache,
    port: u16,
    backlog: usize,
    half_open: Vec<H>,
    accept_queue: VecDeque<H>,
    dropped_syns: u64,
    cookie_secret: Option<[u8; 16]>,
    /// When a cookie was last sent: cookies are only checked for a while after.
    last_cookie: Option<Instant>,
    counters: ListenerCounters,
}

impl<H: Copy + PartialEq> Listener<H> {
    /// Listens on `port`, with at most `backlog` half-open connections and at most
    /// `backlog` established ones waiting in the accept queue.
    pub fn new(cfg: TcpConfig, port: u16, backlog: usize) -> Self {
        let backlog = backlog.max(1);
        Listener {
            cfg,
            shared: ConfigCache::default(),
            port,
            backlog,
            half_open: Vec::with_capacity(backlog),
            accept_queue: VecDeque::with_capacity(backlog),
            dropped_syns: 0,
            cookie_secret: None,
            last_cookie: None,
            counters: ListenerCounters::default(),
        }
    }

    /// Answers SYNs with SYN cookies once the backlog is full. `secret` keys the cookie
    /// hash; it comes from the owner (the OS's randomness in production, a fixed value
    /// in tests) and should be rotated together with the ISN key. Only segments given
    /// through `on_segment_from` use cookies.
    pub fn enable_syn_cookies(&mut self, secret: [u8; 16]) {
        self.cookie_secret = Some(secret);
    }

    pub fn counters(&self) -> ListenerCounters {
        ListenerCounters {
            dropped_syns: self.dropped_syns,
            ..self.counters
        }
    }

    /// As `on_segment`, for a segment between the addresses identified by `flow` (any
    /// value derived from the local and remote IP addresses only, e.g. for IPv4
    /// `(u64::from(local) << 32) | u64::from(remote)`, or a hash of IPv6 addresses); the
    /// ports are taken from the segment. With SYN cookies enabled, a SYN that finds the
    /// backlog full gets a stateless SYN-ACK, and an ACK with a valid cookie becomes an
    /// ESTABLISHED connection.
    pub fn on_segment_from(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        flow: u64,
        isn: SeqNumber,
        handle: H,
    ) -> ListenReply {
        if seg.flags.syn() && seg.flags.fin() {
            return ListenReply::Outcome(ListenOutcome::Dropped(ListenError::SynFin));
        }
        let Some(secret) = self.cookie_secret else {
            return ListenReply::Outcome(self.on_segment(now, seg, isn, handle));
        };
        if seg.dst_port != self.port || seg.flags.rst() {
            return ListenReply::Outcome(ListenOutcome::Ignored);
        }
        let ports = (seg.dst_port, seg.src_port);
        if let Some(ack) = seg.ack {
            let recent = matches!(self.last_cookie,
                Some(t) if now - t < core::time::Duration::from_secs(2 * cookie::COUNTER_SECS));
            if !seg.flags.syn() && !seg.flags.fin() && recent {
                let client_isn = seg.seq - 1;
                if let Some(mss) = cookie::check(&secret, now, flow, ports, client_isn, ack - 1) {
                    if self.accept_queue.len() >= self.backlog {
                        self.dropped_syns += 1;
                        return ListenReply::Outcome(ListenOutcome::Dropped(ListenError::AcceptQueueFull));
                    }
                    let cfg = self.shared.get(self.cfg);
                    let tcb = self.rebuild_from_cookie(cfg, now, seg, ack - 1, mss);
                    if tcb.is_established() {
                        self.counters.syn_cookies_accepted += 1;
                        self.accept_queue.push_back(handle);
                        return ListenReply::Outcome(ListenOutcome::Accepted(tcb));
                    }
                }
                self.counters.syn_cookies_rejected += 1;
            }
            return ListenReply::Outcome(match rst_for(seg) {
                Some(r) => ListenOutcome::Reset(r),
                None => ListenOutcome::Ignored,
            });
        }
        if seg.flags.syn() && self.half_open.len() >= self.backlog {
            if self.accept_queue.len() >= self.backlog {
                self.dropped_syns += 1;
                return ListenReply::Outcome(ListenOutcome::Dropped(ListenError::AcceptQueueFull));
            }
            self.counters.syn_cookies_sent += 1;
            self.last_cookie = Some(now);
            return ListenReply::SynCookie(self.cookie_syn_ack(now, seg, &secret, flow));
        }
        ListenReply::Outcome(self.on_segment(now, seg, isn, handle))
    }

    /// As `on_segment_from`, with the MSS the connection offers capped to `mss` (a listener
    /// that takes both IPv4 and IPv6 offers less over IPv6, whose header is 20 bytes longer).
    pub fn on_segment_capped(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        flow: u64,
        isn: SeqNumber,
        handle: H,
        mss: u16,
    ) -> ListenReply {
        let saved = self.cfg.mss;
        self.cfg.mss = saved.min(mss);
        let reply = self.on_segment_from(now, seg, flow, isn, handle);
        self.cfg.mss = saved;
        reply
    }

    /// The stateless SYN-ACK.
    fn cookie_syn_ack(&self, now: Instant, seg: &TcpRepr, secret: &[u8; 16], flow: u64) -> TcpRepr<'static> {
        let ports = (seg.dst_port, seg.src_port);
        let iss = cookie::make(secret, now, flow, ports, seg.seq, seg.options.mss);
        let mut options = sluice_wire::tcp::TcpOptions {
            mss: Some(self.cfg.mss),
            ..Default::default()
        };
        // Window scaling and SACK only survive through the timestamp (as in Linux).
        if let (Some((tsval, _)), true) = (seg.options.timestamp, self.cfg.timestamps) {
            let ws = seg.options.window_scale.filter(|_| self.cfg.window_scaling);
            let sack = seg.options.sack_permitted && self.cfg.sack;
            let ours = crate::timestamps::ts_clock(now);
            options.timestamp = Some((cookie::ts_encode(ours, ws, sack), tsval));
            options.window_scale = ws.map(|_| self.cfg.sanitized().rcv_wscale());
            options.sack_permitted = sack;
        }
        TcpRepr {
            src_port: self.port,
            dst_port: seg.src_port,
            seq: iss,
            ack: Some(seg.seq + 1),
            flags: sluice_wire::tcp::TcpFlags(sluice_wire::tcp::TcpFlags::SYN),
            window: self.cfg.sanitized().recv_buffer.min(65535) as u16,
            urgent: 0,
            options,
            payload: &[],
        }
    }

    /// Rebuilds the connection a valid cookie stands for, then feeds it the final ACK.
    fn rebuild_from_cookie(
        &self,
        cfg: SharedConfig,
        now: Instant,
        seg: &TcpRepr,
        iss: SeqNumber,
        mss: u16,
    ) -> Tcb {
        let mut tcb = Tcb::listen(cfg, self.port, iss);
        tcb.return_to_listen = false;
        let (window_scale, sack_permitted, timestamp) = match seg.options.timestamp {
            Some((tsval, tsecr)) if self.cfg.timestamps => {
                let (ws, sack) = cookie::ts_decode(tsecr);
                (
                    ws.filter(|_| self.cfg.window_scaling),
                    sack && self.cfg.sack,
                    Some((tsval, 0)),
                )
            }
            _ => (None, false, None),
        };
        let syn = TcpRepr {
            src_port: seg.src_port,
            dst_port: self.port,
            seq: seg.seq - 1,
            ack: None,
            flags: sluice_wire::tcp::TcpFlags(sluice_wire::tcp::TcpFlags::SYN),
            window: seg.window,
            urgent: 0,
            options: sluice_wire::tcp::TcpOptions {
                mss: Some(mss),
                window_scale,
                sack_permitted,
                timestamp,
                ..Default::default()
            },
            payload: &[],
        };
        let _ = tcb.on_segment(now, &syn);
        tcb.syn_ack_sent_statelessly(now);
        let _ = tcb.on_segment(now, seg);
        tcb
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A segment for this port that matched no connection (RFC 9293 3.10.7.2). A SYN
    /// creates a TCB with `isn` that the owner stores under `handle`.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr, isn: SeqNumber, handle: H) -> ListenOutcome {
        if seg.dst_port != self.port || seg.flags.rst() {
            return ListenOutcome::Ignored;
        }
        if seg.ack.is_some() {
            return match rst_for(seg) {
                Some(r) => ListenOutcome::Reset(r),
                None => ListenOutcome::Ignored,
            };
        }
        if !seg.flags.syn() {
            return ListenOutcome::Ignored;
        }
        if seg.flags.fin() {
            return ListenOutcome::Dropped(ListenError::SynFin);
        }
        if self.half_open.len() >= self.backlog {
            self.dropped_syns += 1;
            return ListenOutcome::Dropped(ListenError::BacklogFull);
        }
        if self.accept_queue.len() >= self.backlog {
            self.dropped_syns += 1;
            return ListenOutcome::Dropped(ListenError::AcceptQueueFull);
        }
        let mut tcb = Tcb::listen(self.shared.get(self.cfg), self.port, isn);
        tcb.return_to_listen = false;
        let _ = tcb.on_segment(now, seg);
        debug_assert_eq!(tcb.state(), State::SynReceived);
        self.half_open.push(handle);
        ListenOutcome::Accepted(tcb)
    }

    /// Tells the listener about a state change of one of its connections (call it
    /// whenever `SegmentOutcome::transition` is `Some`, or after timeouts). Established
    /// connections move to the accept queue; closed half-open ones are forgotten.
    pub fn update(&mut self, handle: H, state: State) {
        let Some(i) = self.half_open.iter().position(|h| *h == handle) else {
            if state == State::Closed {
                self.accept_queue.retain(|h| *h != handle);
            }
            return;
        };
        match state {
            State::SynReceived => {}
            State::Closed | State::Listen => {
                self.half_open.swap_remove(i);
            }
            _ => {
                self.half_open.swap_remove(i);
                self.accept_queue.push_back(handle);
            }
        }
    }

    /// The next established connection, oldest first.
    pub fn accept(&mut self) -> Option<H> {
        self.accept_queue.pop_front()
    }

    pub fn half_open(&self) -> usize {
        self.half_open.len()
    }

    pub fn pending_accept(&self) -> usize {
        self.accept_queue.len()
    }

    /// SYNs dropped because the backlog or accept queue was full (with cookies: only
    /// when the accept queue was full).
    pub fn dropped_syns(&self) -> u64 {
        self.dropped_syns
    }
}
