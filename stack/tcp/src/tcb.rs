//! The transmission control block: state and the user interface of RFC 9293 3.10
//! (OPEN, SEND, RECEIVE, CLOSE, ABORT, STATUS). Segment processing is in `input.rs`,
//! segment generation in `output.rs`, timers in `timers.rs`.

use core::time::Duration;

use sluice_buf::Frame;
use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpRepr};
use sluice_wire::Instant;

use crate::assembler::Assembler;
use crate::config::{CongestionKind, SharedConfig, TcpConfig, DEFAULT_MSS, MIN_MSS};
use crate::congestion::{CongestionControl, NewReno, Unlimited};
use crate::controller::Congestion;
use crate::cubic::Cubic;
use crate::error::{ConnError, Counters, IcmpError, RecvError, SendError, State};
use crate::rack::Rack;
use crate::recovery::Recovery;
use crate::recv::RecvBuffer;
use crate::rtt::RttEstimator;
use crate::sack::{SackReport, Scoreboard};
use crate::send::SendBuffer;

/// Bytes the timestamps option takes in every segment (with its two NOPs).
pub(crate) const TS_OPTION_LEN: usize = 12;

/// A RST to send that belongs to no regular segment flow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRst {
    pub dst_port: u16,
    pub seq: SeqNumber,
    pub ack: Option<SeqNumber>,
}

/// The timer table: one deadline per kind, `None` when stopped.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers {
    /// Retransmission (RFC 6298), also for SYN and FIN.
    pub rtx: Option<Instant>,
    /// Zero-window probing (RFC 9293 3.8.6.1).
    pub persist: Option<Instant>,
    /// Delayed ACK (RFC 9293 3.8.6.3).
    pub delack: Option<Instant>,
    /// Keepalive (RFC 9293 3.8.4).
    pub keepalive: Option<Instant>,
    /// TIME-WAIT (2 MSL).
    pub time_wait: Option<Instant>,
    /// RACK reordering timer (RFC 8985 section 6.2).
    pub rack: Option<Instant>,
    /// Tail loss probe (RFC 8985 section 7).
    pub tlp: Option<Instant>,
}

/// An optional sequence number in 5 bytes, aligned to 1 (`Option<SeqNumber>` takes 8): it
/// lies with the TCB's 1-byte fields, whose hot front is then a cache line shorter.
#[derive(Clone, Copy)]
#[repr(C, packed)]
pub(crate) struct OptSeq {
    seq: u32,
    some: bool,
}

impl OptSeq {
    pub(crate) const NONE: OptSeq = OptSeq { seq: 0, some: false };

    pub(crate) fn some(seq: SeqNumber) -> OptSeq {
        OptSeq {
            seq: seq.0,
            some: true,
        }
    }

    #[inline]
    pub(crate) fn get(self) -> Option<SeqNumber> {
        self.some.then_some(SeqNumber(self.seq))
    }

    #[inline]
    pub(crate) fn take(&mut self) -> Option<SeqNumber> {
        core::mem::replace(self, OptSeq::NONE).get()
    }
}

impl core::fmt::Debug for OptSeq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.get().fmt(f)
    }
}

/// One TCP connection: a plain struct stepped by `on_segment`, `poll_transmit` and
/// `handle_timeout`; it never reads a clock and never allocates after creation.
///
/// Driver contract: after creating it, after every `on_segment`, `handle_timeout` and
/// user call (`send`, `recv`, `shutdown`, ...), call `poll_transmit(now)` until it
/// returns `None`; call `handle_timeout(now)` once `now >= poll_at()`.
///
/// Layout: `#[repr(C)]`, its fields in the order below. With thousands of connections
/// their state is out of the caches, and a segment costs a miss per line of it that it
/// touches; what an established connection's segment reads and writes comes first, so
/// that it takes 10 or 11 lines of the TCB's 15 (`Tcb::HOT`, which the interface fetches
/// ahead of a burst).
#[derive(Debug)]
#[repr(C)]
pub struct Tcb {
    // Touched by every segment of an established connection, together at the front (8-,
    // 4-, 2- and 1-byte fields, so that nothing pads): a few cache lines, not all of them.
    /// Shared with the connections configured alike (one copy, in the cache).
    pub(crate) cfg: SharedConfig,
    pub(crate) timers: Timers,
    /// The segment being timed: (end sequence, send time). Karn: cleared on any
    /// retransmission that overlaps it.
    pub(crate) rtt_timed: Option<(SeqNumber, Instant)>,
    /// When the oldest unacknowledged data was first retransmitted (user timeout).
    pub(crate) stalled_since: Option<Instant>,
    pub(crate) rack: Rack,
    pub(crate) cc: Congestion,
    pub(crate) rtt: RttEstimator,
    pub(crate) tx: SendBuffer,
    pub(crate) rx: RecvBuffer,
    /// Effective send MSS.
    pub(crate) mss: usize,
    /// When data last arrived (`Instant::ZERO`: not yet).
    pub(crate) last_data_at: Instant,
    /// When TS.Recent was last updated (it is invalid after 24 days, RFC 7323 5.5).
    pub(crate) ts_recent_at: Instant,
    /// The sender's scoreboard (its counts: the ranges live out of line).
    pub(crate) sb: Scoreboard,
    /// The reassembly queue (its counts: the ranges live out of line).
    pub(crate) asm: Assembler,

    // (4-byte)
    pub(crate) snd_una: SeqNumber,
    /// Next sequence number to send; moved back to SND.UNA after an RTO (go-back-N).
    pub(crate) snd_nxt: SeqNumber,
    /// One past the highest sequence number ever sent.
    pub(crate) snd_max: SeqNumber,
    pub(crate) snd_wl1: SeqNumber,
    pub(crate) snd_wl2: SeqNumber,
    /// Sequence number of `tx[0]`.
    pub(crate) tx_seq0: SeqNumber,
    pub(crate) rcv_nxt: SeqNumber,
    /// Right edge of the window last advertised.
    pub(crate) rcv_adv: SeqNumber,
    pub(crate) dup_acks: u32,
    /// TS.Recent: the peer's timestamp to echo.
    pub(crate) ts_recent: u32,
    /// Last.ACK.sent: RCV.NXT in the last ACK we sent.
    pub(crate) last_ack_sent: SeqNumber,
    /// Payload bytes of the last segment `emit_segment` built.
    pub(crate) emitted_len: u32,
    /// Peer's window in bytes (already scaled: below 2^30).
    pub(crate) snd_wnd: u32,
    pub(crate) max_snd_wnd: u32,
    /// In-order bytes received since the last ACK we sent.
    pub(crate) unacked_rx: u32,

    // (2-byte)
    pub(crate) local_port: u16,
    pub(crate) remote_port: u16,
    /// Largest segment seen from the peer (for "ACK every second full segment").
    pub(crate) rcv_mss: u16,
    /// Retransmissions since the owner last took their count (`take_retransmits`): the
    /// interface adds them to its own counter after each drain without reading the
    /// counters, which lie past the hot front.
    pub(crate) rtx_unreported: u16,

    // (1-byte)
    /// End of an outstanding zero-window probe byte (acceptable for ACKs).
    pub(crate) probe_end: OptSeq,
    /// Sequence number of a FIN received out of order.
    pub(crate) ooo_fin: OptSeq,
    /// A TLP probe to send, starting at this sequence number.
    pub(crate) tlp_probe: OptSeq,
    /// Consecutive RTO expirations without progress (a byte: the limits it is compared
    /// with are at most `MAX_RETRIES`).
    pub(crate) retries: u8,
    /// Zero-window probes sent without any ACK coming back.
    pub(crate) persist_unanswered: u8,
    pub(crate) keepalive_unanswered: u8,
    pub(crate) state: State,
    pub(crate) error: Option<ConnError>,
    pub(crate) snd_wscale: u8,
    pub(crate) rcv_wscale: u8,
    /// In-order segments still to acknowledge at once (quick ACKs).
    pub(crate) quickacks: u8,
    /// Doublings of the persist timer (a byte: it stops counting at 16).
    pub(crate) persist_backoff: u8,
    /// The user closed the write side; FIN goes after the last byte of `tx`.
    pub(crate) fin_queued: bool,
    /// The last segment sent stopped where the send ring wraps, short of what it could
    /// carry: the rest of those bytes follows at once, whatever Nagle says (Nagle would
    /// hold it behind the first part, and the peer, waiting for the rest of a request,
    /// delays its ACK: a 40 ms stall every time a write straddles the wrap).
    pub(crate) wrap_cut: bool,
    /// The peer's FIN was received (in order).
    pub(crate) fin_received: bool,
    /// `close` was called: data arriving now aborts the connection (RFC 2525).
    pub(crate) rx_closed: bool,
    pub(crate) ack_now: bool,
    /// The ACK due now may wait for the application's answer (`take_ack_for_app`).
    pub(crate) ack_for_app: bool,
    /// The application took bytes since our last ACK: the window may have opened
    /// (`window_update_due`).
    pub(crate) read_since_ack: bool,
    /// Data went out since data last arrived.
    pub(crate) sent_since_data: bool,
    /// Request/response ("ping-pong", as Linux's): the application answered received data
    /// within the delayed-ACK timeout, so ACKs wait for its answer to carry them instead of
    /// leaving at once on their own (no quick ACKs). Left when a delayed ACK had to go
    /// alone.
    pub(crate) pingpong: bool,
    /// Retransmit the segment at SND.UNA (fast retransmit / partial ACK).
    pub(crate) rtx_una: bool,
    pub(crate) send_persist_probe: bool,
    pub(crate) send_keepalive: bool,
    /// Both sides sent the timestamps option on their SYN.
    pub(crate) ts_enabled: bool,
    /// Take no RTT sample from the next TSecr (SYN cookie).
    pub(crate) skip_ts_sample: bool,
    /// Both sides sent SACK-permitted on their SYN.
    pub(crate) sack_ok: bool,
    /// Segments may span queued frames (`set_span_frames`).
    pub(crate) span_frames: bool,
    /// Segments may straddle the send ring's wrap (`set_gather`).
    pub(crate) gather: bool,
    /// A RST waits in `pending_rst` (`queue_rst`, `take_rst`).
    pub(crate) rst_queued: bool,
    /// In SACK loss recovery (RFC 6675): `rec` holds its variables.
    pub(crate) recovering: bool,
    /// SACK blocks `sack_report` holds to send (its D-SACK block counted), as
    /// `note_sack_report` last counted them: what every segment reads of it.
    pub(crate) sack_pending: u8,

    // A structure whose first fields are all a segment reads of it (`#[repr(C)]` too).
    pub(crate) counters: Counters,

    // Read at the handshake, by options and by the rare events.
    /// Opened from LISTEN (matters for RST/SYN in SYN-RECEIVED, RFC 9293 3.10.7.4).
    pub(crate) passive: bool,
    /// Go back to LISTEN (instead of CLOSED) when a passive open fails. True for
    /// `Tcb::listen`, false for connections spawned by a `Listener`.
    pub(crate) return_to_listen: bool,
    pub(crate) soft_error: Option<IcmpError>,
    pub(crate) iss: SeqNumber,
    pub(crate) irs: SeqNumber,
    /// The shift we offer on our SYN (None: no option).
    pub(crate) offer_wscale: Option<u8>,
    pub(crate) syn_retransmitted: bool,
    pub(crate) challenge_tokens: u32,
    pub(crate) challenge_refill_at: Instant,
    /// When an ACK last answered an out-of-window segment without text.
    pub(crate) invalid_ack_at: Option<Instant>,
    /// A RST to send (`rst_queued` says whether there is one).
    pub(crate) pending_rst: Option<PendingRst>,
    /// Loss recovery's variables (while `recovering`).
    pub(crate) rec: Recovery,
    /// Blocks we report as a receiver (`sack_pending` counts them).
    pub(crate) sack_report: SackReport,
}

/// A fresh controller of the given kind.
fn controller(kind: CongestionKind, mss: usize) -> Congestion {
    match kind {
        CongestionKind::NewReno => Congestion::NewReno(NewReno::new(mss)),
        CongestionKind::Cubic => Congestion::Cubic(Cubic::new(mss)),
        CongestionKind::Unlimited => Congestion::Unlimited(Unlimited),
    }
}

impl Tcb {
    /// The bytes at the front of a TCB that a segment of an established connection
    /// touches (its layout, above): to the counters' first four.
    pub const HOT: usize = core::mem::offset_of!(Tcb, counters) + 4 * 8;

    fn new(cfg: SharedConfig, local_port: u16, isn: SeqNumber, state: State) -> Tcb {
        let mss = (cfg.mss as usize).min(DEFAULT_MSS.max(MIN_MSS));
        let cc = controller(cfg.congestion, mss);
        let offer_wscale = if cfg.window_scaling {
            Some(cfg.rcv_wscale())
        } else {
            None
        };
        Tcb {
            state,
            local_port,
            remote_port: 0,
            passive: false,
            return_to_listen: false,
            error: None,
            soft_error: None,
            iss: isn,
            snd_una: isn,
            snd_nxt: isn,
            snd_max: isn,
            probe_end: OptSeq::NONE,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: isn,
            max_snd_wnd: 0,
            snd_wscale: 0,
            mss,
            tx: SendBuffer::new(cfg.send_buffer),
            tx_seq0: isn + 1,
            fin_queued: false,
            wrap_cut: false,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            rcv_wscale: 0,
            offer_wscale,
            rx: RecvBuffer::new(cfg.recv_buffer),
            asm: Assembler::new(),
            ooo_fin: OptSeq::NONE,
            fin_received: false,
            rx_closed: false,
            ack_now: false,
            ack_for_app: false,
            read_since_ack: false,
            unacked_rx: 0,
            quickacks: 0,
            last_data_at: Instant::ZERO,
            sent_since_data: false,
            pingpong: false,
            pending_rst: None,
            rtx_una: false,
            send_persist_probe: false,
            send_keepalive: false,
            timers: Timers::default(),
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_timed: None,
            retries: 0,
            stalled_since: None,
            syn_retransmitted: false,
            persist_backoff: 0,
            persist_unanswered: 0,
            rtx_unreported: 0,
            keepalive_unanswered: 0,
            rcv_mss: cfg.mss.min(DEFAULT_MSS as u16),
            cc,
            dup_acks: 0,
            counters: Counters::default(),
            ts_enabled: false,
            ts_recent: 0,
            ts_recent_at: Instant::ZERO,
            last_ack_sent: SeqNumber(0),
            skip_ts_sample: false,
            sack_ok: false,
            sack_report: SackReport::default(),
            sb: Scoreboard::new(),
            rec: Recovery::default(),
            rack: Rack::new(),
            tlp_probe: OptSeq::NONE,
            challenge_tokens: cfg.challenge_ack_limit,
            challenge_refill_at: Instant::ZERO,
            invalid_ack_at: None,
            span_frames: false,
            gather: false,
            rst_queued: false,
            recovering: false,
            sack_pending: 0,
            emitted_len: 0,
            cfg,
        }
    }

    /// Active OPEN (RFC 9293 3.10.1): a TCB in SYN-SENT; the SYN comes out of the next
    /// `poll_transmit`. `isn` is the initial send sequence number, chosen by the caller
    /// (RFC 9293 3.4.1 / RFC 6528: a keyed hash of the 4-tuple plus a clock).
    /// `cfg`: a `TcpConfig`, or a `SharedConfig` that connections opened alike share.
    pub fn connect(cfg: impl Into<SharedConfig>, local_port: u16, remote_port: u16, isn: SeqNumber) -> Tcb {
        let mut t = Tcb::new(cfg.into(), local_port, isn, State::SynSent);
        t.remote_port = remote_port;
        t
    }

    /// Passive OPEN (RFC 9293 3.10.1): a single TCB in LISTEN that becomes the
    /// connection on the first SYN (and returns to LISTEN if that open fails). `isn` is
    /// used for that SYN. For many connections per port use `Listener`.
    pub fn listen(cfg: impl Into<SharedConfig>, local_port: u16, isn: SeqNumber) -> Tcb {
        let mut t = Tcb::new(cfg.into(), local_port, isn, State::Listen);
        t.passive = true;
        t.return_to_listen = true;
        t
    }

    /// Switches the congestion controller (TCP_CONGESTION). A connection that already
    /// sends starts the new controller from the initial window, as a new connection would.
    pub fn set_congestion(&mut self, kind: CongestionKind) {
        if self.cfg.congestion != kind {
            self.cfg.modify(|c| c.congestion = kind);
            self.cc = controller(kind, self.mss());
        }
    }

    /// Turns Nagle's algorithm off (`true`) or on, from now on (TCP_NODELAY).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.cfg.modify(|c| c.nodelay = nodelay);
    }

    /// The give-up time R2 (RFC 1122 4.2.3.5, TCP_USER_TIMEOUT): with `Some`, the
    /// connection is abandoned (`ConnError::TimedOut`) when data has gone unacknowledged
    /// that long, at the next retransmission timeout; `None`: the retransmission count
    /// decides alone.
    pub fn set_user_timeout(&mut self, timeout: Option<core::time::Duration>) {
        self.cfg.modify(|c| c.user_timeout = timeout);
    }

    /// How many times a SYN is retransmitted before the open is given up (TCP_SYNCNT; at
    /// most `MAX_RETRIES`).
    pub fn set_syn_retries(&mut self, retries: u32) {
        self.cfg.modify(|c| c.max_syn_retransmissions = retries);
    }

    /// Turns keepalive on with these parameters, or off, from `now` on (SO_KEEPALIVE).
    /// Probes beyond `MAX_RETRIES` act as it.
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<crate::Keepalive>) {
        self.cfg.modify(|c| c.keepalive = keepalive);
        self.keepalive_reset(now);
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    pub fn set_isn(&mut self, isn: SeqNumber) {
        if self.state == State::Listen {
            self.iss = isn;
            self.snd_una = isn;
            self.snd_nxt = isn;
            self.snd_max = isn;
            self.snd_wl2 = isn;
            self.tx_seq0 = isn + 1;
        }
    }

    // ---- STATUS ----

    /// The SYN just sent never reached the wire (the driver dropped it at this end: too
    /// many packets already waited for the neighbour's link address): once the neighbour is
    /// known, it goes again at once, as a first SYN (timed, no back-off) if it was one,
    /// instead of after the retransmission timeout (1 s).
    pub fn resend_syn(&mut self) {
        if self.state != State::SynSent || self.snd_nxt != self.iss + 1 {
            return;
        }
        self.snd_nxt = self.iss;
        if self.retries == 0 {
            self.snd_max = self.iss;
            self.timers.rtx = None;
            self.rtt_timed = None;
        }
    }

    /// Starts fetching, without waiting, the buffer memory the next segment and the
    /// application's next read and write touch (a driver's look ahead at a burst): the
    /// rings' next lines, and the oldest entries of RACK's send log, which an ACK reads.
    #[inline]
    pub fn prefetch_buffers(&self) {
        self.rx.prefetch();
        self.tx.prefetch();
        self.rack.prefetch();
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn local_port(&self) -> u16 {
        self.local_port
    }
    pub fn remote_port(&self) -> u16 {
        self.remote_port
    }
    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }
    /// The last soft ICMP error seen (RFC 1122 4.2.3.9: reported, not fatal).
    pub fn soft_error(&self) -> Option<IcmpError> {
        self.soft_error
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    /// One segment sent again: in the counters, and in the count the owner takes.
    pub(crate) fn count_retransmit(&mut self) {
        self.counters.retransmits += 1;
        self.rtx_unreported = self.rtx_unreported.saturating_add(1);
    }
    /// Segments retransmitted since the last call (up to 65,535 between two calls; the
    /// owner asks after each batch of output). `counters().retransmits` has them all.
    pub fn take_retransmits(&mut self) -> u64 {
        u64::from(core::mem::take(&mut self.rtx_unreported))
    }
    /// The effective send MSS.
    pub fn mss(&self) -> usize {
        self.mss
    }
    pub fn cwnd(&self) -> usize {
        self.cc.cwnd()
    }
    pub fn ssthresh(&self) -> usize {
        self.cc.ssthresh()
    }
    /// Loss recovery (SACK-based, or the controller's fast recovery) is in progress.
    pub fn in_recovery(&self) -> bool {
        self.recovering || self.cc.in_recovery()
    }
    /// Timestamps (RFC 7323) were negotiated.
    pub fn timestamps_enabled(&self) -> bool {
        self.ts_enabled
    }
    /// SACK (RFC 2018) was negotiated.
    pub fn sack_enabled(&self) -> bool {
        self.sack_ok
    }
    /// The window scale shifts in use: (ours, the peer's).
    pub fn window_scales(&self) -> (u8, u8) {
        (self.rcv_wscale, self.snd_wscale)
    }
    /// The peer's advertised window in bytes (scaled).
    pub fn send_window(&self) -> usize {
        self.snd_wnd as usize
    }
    /// Consecutive retransmission timeouts without progress: the owner can give the IP
    /// layer "negative advice" (RFC 9293 R1, MUST-20) when this reaches its threshold.
    pub fn consecutive_timeouts(&self) -> u32 {
        u32::from(self.retries)
    }
    /// The current retransmission timeout (backoff included).
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }
    /// Sets the DS field and TTL of the packets this connection sends (`IP_TOS`,
    /// `IP_TTL`; RFC 1122 MUST-48), from its next packet on.
    pub fn set_ip_options(&mut self, tos: u8, ttl: Option<u8>) {
        self.cfg.modify(|c| {
            c.ip_tos = tos;
            c.ip_ttl = ttl;
        });
    }
    /// The RTT variation (RFC 6298 RTTVAR); zero before the first sample.
    pub fn rttvar(&self) -> Duration {
        self.rtt.rttvar()
    }
    /// Bytes sent and not yet acknowledged (SND.MAX - SND.UNA).
    pub fn bytes_in_flight(&self) -> usize {
        self.snd_max - self.snd_una
    }
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }
    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd_nxt
    }
    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }
    pub fn iss(&self) -> SeqNumber {
        self.iss
    }

    /// CLOSED, with nothing (such as a RST) left to transmit: the owner may drop it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.rst_queued
    }
    /// The SYN exchange completed and the connection has not been closed or reset.
    pub fn is_established(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
        )
    }
    /// `recv` would return data.
    pub fn can_recv(&self) -> bool {
        !self.rx.is_empty()
    }
    /// More data may still arrive from the peer.
    pub fn may_recv(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        ) && !self.fin_received
    }
    /// `send` would accept at least one byte.
    pub fn can_send(&self) -> bool {
        self.may_send() && self.tx.free() > 0
    }
    /// The write side is open (it may be full).
    pub fn may_send(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        ) && !self.fin_queued
    }
    /// Bytes of memory the send and receive buffers hold now (they grow on demand).
    pub fn buffer_memory(&self) -> usize {
        self.tx.allocated() + self.rx.allocated()
    }

    /// Bytes in the send buffer (unsent plus unacknowledged).
    pub fn send_queue(&self) -> usize {
        self.tx.len()
    }
    /// Bytes ready to be read.
    pub fn recv_queue(&self) -> usize {
        self.rx.len()
    }

    // ---- SEND ----

    /// Copies as much of `data` as fits into the send buffer (RFC 9293 3.10.2); returns
    /// the number of bytes taken, 0 when the buffer is full. Data may be queued in
    /// SYN-SENT and SYN-RECEIVED; it goes out once established.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        self.check_send()?;
        Ok(self.tx.enqueue(data))
    }

    /// Writes in place: `f` fills the contiguous free part of the send buffer and returns
    /// how many bytes it wrote (no copy from an application buffer). Returns that count.
    pub fn send_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, SendError> {
        self.check_send()?;
        Ok(self.tx.write_with(f))
    }

    /// Zero-copy send: queues `frame` by reference. Every transmission and retransmission
    /// of its bytes refers to the frame (a device that can chain buffers sends them without
    /// a copy); it is released once the peer acknowledges them. Returns the part that did not
    /// fit (`None` when all of it was queued). Segments do not span frames, so frames of a
    /// full MSS make full-sized segments.
    pub fn send_frame(&mut self, frame: Frame) -> Result<Option<Frame>, SendError> {
        self.check_send()?;
        Ok(self.tx.push_frame(frame))
    }

    /// The frame holding the `len` bytes of the send buffer from `seq` (as in a segment that
    /// `poll_transmit` returned), with their range in it; `None` when those bytes were
    /// copied into the send ring.
    pub fn tx_frame(&self, seq: SeqNumber, len: usize) -> Option<(&Frame, core::ops::Range<usize>)> {
        if seq < self.tx_seq0 {
            return None;
        }
        self.tx.frame_at(seq - self.tx_seq0, len)
    }

    /// Lets the segments `poll_transmit` builds span queued frames (a device that cuts
    /// large segments itself and chains frames by reference; `tx_frame` then finds each
    /// frame's part). The returned segment's `payload` is then only its first contiguous
    /// part: `emitted_len` says how long the segment is.
    pub fn set_span_frames(&mut self, on: bool) {
        self.span_frames = on;
    }

    /// Lets a data segment straddle the end of the send ring, its payload in two parts:
    /// the segment's `payload` and the rest `poll_transmit_parts` gives with it (as Linux,
    /// whose segments do not depend on where its buffers end). Off, a segment stops at the
    /// wrap and the rest follows at once.
    pub fn set_gather(&mut self, on: bool) {
        self.gather = on;
    }

    /// The payload length of the last data segment `poll_transmit` returned.
    pub fn emitted_len(&self) -> usize {
        self.emitted_len as usize
    }

    /// Copies the send buffer's bytes from `seq` into `dst`, across the ring and frames;
    /// returns how many (fewer past the end).
    pub fn tx_copy(&self, seq: SeqNumber, dst: &mut [u8]) -> usize {
        if seq < self.tx_seq0 {
            return 0;
        }
        self.tx.copy_out(seq - self.tx_seq0, dst)
    }

    /// Frames queued for sending (zero-copy send).
    pub fn tx_frames(&self) -> usize {
        self.tx.frames()
    }

    fn check_send(&self) -> Result<(), SendError> {
        if let Some(e) = self.error {
            return Err(SendError::Connection(e));
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait => {
                return Err(SendError::Closing)
            }
            State::Closed | State::Listen => return Err(SendError::InvalidState),
        }
        if self.fin_queued {
            return Err(SendError::Closing);
        }
        Ok(())
    }

    // ---- RECEIVE ----

    /// Copies received bytes into `buf` (RFC 9293 3.10.3). `Ok(0)` means nothing yet;
    /// `Err(Finished)` is the end of the stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.check_recv()?;
        let n = self.rx.dequeue_into(buf);
        self.after_read();
        Ok(n)
    }

    /// Charges this connection's buffers to `budget` (`crate::budget`): set by the owner
    /// when it creates the connection.
    pub fn set_budget(&mut self, budget: std::sync::Arc<crate::MemBudget>) {
        self.tx.set_budget(budget.clone());
        self.rx.set_budget(budget);
    }

    /// After the application took bytes: an emptied receive ring gives its memory back
    /// under pressure, unless out-of-order bytes wait in it.
    fn after_read(&mut self) {
        self.read_since_ack = true;
        if self.rx.is_empty() && self.asm.is_empty() {
            self.rx.shrink_if_pressed();
        }
    }

    /// Copies received bytes into `buf` without consuming them.
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.check_recv()?;
        Ok(self.rx.peek_into(0, buf))
    }

    /// The contiguous readable bytes at the front of the receive buffer (zero-copy
    /// read); call `consume` with what was used.
    pub fn recv_slice(&self) -> Result<&[u8], RecvError> {
        self.check_recv()?;
        Ok(self.rx.front_slice())
    }

    /// Drops `n` bytes from the front of the receive buffer.
    pub fn consume(&mut self, n: usize) {
        self.rx.discard(n);
        self.after_read();
    }

    /// Zero-copy read: the next received bytes as a `Frame`, removed from the buffer. A
    /// payload kept by reference comes out as the device's own buffer; bytes that were
    /// copied into the ring (small or reassembled ones) come out as heap frames of up to
    /// `max` bytes, one per run of copied bytes. `Ok(None)` means nothing yet.
    pub fn recv_frame(&mut self, max: usize) -> Result<Option<Frame>, RecvError> {
        self.check_recv()?;
        if max == 0 {
            return Ok(None);
        }
        if let Some(mut f) = self.rx.pop_frame() {
            let taken = if f.len() > max {
                let head = f.split_to(max);
                self.rx.push_front_frame(f);
                head
            } else {
                f
            };
            self.after_read();
            return Ok(Some(taken));
        }
        let n = self.rx.front_len().min(max);
        if n == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; n];
        self.rx.dequeue_into(&mut bytes);
        self.after_read();
        Ok(Some(Frame::from_vec(bytes)))
    }

    /// Received payloads held by reference (zero-copy receive).
    pub fn rx_frames(&self) -> usize {
        self.rx.frames()
    }

    fn check_recv(&self) -> Result<(), RecvError> {
        if !self.rx.is_empty() {
            return Ok(());
        }
        if let Some(e) = self.error {
            return Err(RecvError::Connection(e));
        }
        if self.fin_received {
            return Err(RecvError::Finished);
        }
        match self.state {
            State::Closed | State::Listen => Err(RecvError::InvalidState),
            _ => Ok(()),
        }
    }

    // ---- CLOSE / ABORT ----

    /// Half-close: no more data will be sent; FIN follows the queued data
    /// (RFC 9293 3.10.4). Receiving continues. Idempotent.
    pub fn shutdown(&mut self) {
        match self.state {
            // LISTEN / SYN-SENT: delete the TCB.
            State::Listen | State::SynSent => self.enter_closed(None),
            // SYN-RECEIVED: queued until ESTABLISHED, then FIN-WAIT-1.
            State::SynReceived => self.fin_queued = true,
            // ESTABLISHED -> FIN-WAIT-1.
            State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// Full close: `shutdown` plus the promise not to read any more. Unread data, or
    /// data arriving later, makes the connection abort with a RST (RFC 2525 2.17).
    pub fn close(&mut self) {
        if !self.rx.is_empty() && self.state.is_synchronized() {
            self.abort();
            return;
        }
        self.rx_closed = true;
        self.shutdown();
    }

    /// ABORT (RFC 9293 3.10.5): queue a RST in synchronized states, discard everything,
    /// enter CLOSED. The RST comes out of the next `poll_transmit`.
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait
        ) {
            self.queue_rst(self.remote_port, self.snd_nxt, None);
        }
        self.enter_closed(Some(ConnError::Aborted));
    }

    // ---- ICMP ----

    /// An ICMP error quoting one of our segments with sequence number `seq`
    /// (RFC 9293 3.9.1, RFC 5461, RFC 5927). Errors quoting a sequence number outside
    /// SND.UNA..SND.MAX are ignored. Hard errors abort only in SYN-SENT; soft errors are
    /// remembered (`soft_error`); fragmentation-needed lowers the MSS.
    pub fn on_icmp_error(&mut self, _now: Instant, err: IcmpError, seq: SeqNumber) {
        let in_flight = if self.snd_una == self.snd_max {
            seq == self.snd_una
        } else {
            seq >= self.snd_una && seq < self.snd_max
        };
        if !in_flight {
            return;
        }
        match err {
            IcmpError::SourceQuench => {}
            IcmpError::FragmentationNeeded { mtu } => {
                if mtu >= 68 {
                    if mtu < self.cfg.min_pmtu {
                        self.counters.pmtu_below_floor += 1;
                    }
                    let mtu = mtu.max(self.cfg.min_pmtu);
                    let mss = (mtu as usize).saturating_sub(40).max(MIN_MSS);
                    if mss < self.mss {
                        self.mss = mss;
                        self.cc.on_mss(mss);
                        // Resend what was lost with the smaller size.
                        self.snd_nxt = self.snd_una;
                    }
                }
            }
            // RFC 1122 4.2.3.9 and POSIX connect: a port unreachable answering our SYN is a
            // refusal (ECONNREFUSED); the other hard errors, host unreachable.
            IcmpError::PortUnreachable if self.state == State::SynSent => {
                self.enter_closed(Some(ConnError::Refused));
            }
            // Time exceeded answering our SYN (a routing loop, a TTL too small): the
            // connection cannot be made, EHOSTUNREACH (as Linux); later it is soft.
            IcmpError::TimeExceeded if self.state == State::SynSent => {
                self.enter_closed(Some(ConnError::Unreachable));
            }
            e if e.is_hard() && self.state == State::SynSent => {
                self.enter_closed(Some(ConnError::Unreachable));
            }
            e => self.soft_error = Some(e),
        }
    }

    // ---- internals shared by input/output/timers ----

    pub(crate) fn set_state(&mut self, s: State) {
        if s == self.state {
            return;
        }
        if s == State::TimeWait {
            self.timers = Timers {
                time_wait: None,
                delack: self.timers.delack,
                ..Timers::default()
            };
        }
        self.state = s;
    }

    pub(crate) fn queue_rst(&mut self, dst_port: u16, seq: SeqNumber, ack: Option<SeqNumber>) {
        self.pending_rst = Some(PendingRst { dst_port, seq, ack });
        self.rst_queued = true;
    }

    /// Counts again the blocks `sack_report` holds to send (`sack_pending`): called after
    /// every change to it.
    #[inline]
    pub(crate) fn note_sack_report(&mut self) {
        let r = &self.sack_report;
        self.sack_pending = r.dsack.is_some() as u8 + r.recent.len() as u8;
    }

    /// The RST `queue_rst` queued, if any, now taken to be sent. Its flag is what the
    /// segment path reads: the RST itself lies outside the hot front.
    #[inline]
    pub(crate) fn take_rst(&mut self) -> Option<PendingRst> {
        if !self.rst_queued {
            return None;
        }
        self.rst_queued = false;
        self.pending_rst.take()
    }

    /// Enter CLOSED (or go back to LISTEN for a failed passive open of `Tcb::listen`),
    /// dropping all queues and timers.
    pub(crate) fn enter_closed(&mut self, err: Option<ConnError>) {
        if self.error.is_none() {
            self.error = err;
        }
        self.timers = Timers::default();
        self.ack_now = false;
        self.rtx_una = false;
        self.send_persist_probe = false;
        self.send_keepalive = false;
        if err.is_some() {
            self.tx.discard(self.tx.len());
            self.tx.shrink();
            // Once the peer's FIN has arrived, everything it sent is here: it stays readable
            // and the error is reported after it (as Linux does for a reset in CLOSE-WAIT,
            // CLOSING or LAST-ACK). Before, the stream is broken and unread data goes.
            if !self.fin_received {
                self.rx.discard(self.rx.len());
            }
            self.clear_out_of_order();
            if self.rx.is_empty() {
                self.rx.shrink();
            }
        }
        self.state = State::Closed;
    }

    /// RFC 9293 3.10.7.4 says a failed passive open "returns to LISTEN".
    pub(crate) fn back_to_listen(&mut self) {
        if !self.return_to_listen {
            self.enter_closed(Some(ConnError::Reset));
            return;
        }
        let fresh = Tcb::listen(self.cfg.clone(), self.local_port, self.iss + 65536 * 8);
        let counters = self.counters;
        *self = fresh;
        self.counters = counters;
    }

    /// A connection rebuilt from a SYN cookie, in SYN-RECEIVED: behave as if our SYN-ACK
    /// (seq = ISS, with the options the cookie carried) had been sent.
    pub(crate) fn syn_ack_sent_statelessly(&mut self, _now: Instant) {
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.iss + 1;
        self.rtt_timed = None;
        self.rcv_adv = self.rcv_nxt + self.rx.free().min(65535);
        self.last_ack_sent = self.rcv_nxt;
        // The TSecr of the final ACK echoes the cookie-encoded TSval: no RTT sample.
        self.skip_ts_sample = true;
    }

    /// Sets the send MSS from the peer's option, clamped (see `MIN_MSS`), less the
    /// timestamps option when it is in use.
    pub(crate) fn set_peer_mss(&mut self, opt: Option<u16>) {
        let peer = opt.map(|m| m as usize).unwrap_or(DEFAULT_MSS);
        self.mss = peer.clamp(MIN_MSS, (self.cfg.mss as usize).max(MIN_MSS));
        if self.ts_enabled {
            // Every segment carries the 12-byte timestamps option (RFC 9293 MUST-16).
            self.mss -= TS_OPTION_LEN;
        }
        self.cc.on_mss(self.mss);
    }

    /// Every byte of the send buffer went out and nothing is to be sent again (SND.NXT at
    /// SND.MAX, at the buffer's end); a FIN may still be due.
    #[inline]
    pub(crate) fn all_data_sent(&self) -> bool {
        self.snd_nxt == self.snd_max && self.snd_nxt - self.tx_seq0 == self.tx.len()
    }

    /// Sequence number of our FIN, when queued.
    pub(crate) fn fin_seq(&self) -> Option<SeqNumber> {
        self.fin_queued.then(|| self.tx_seq0 + self.tx.len())
    }

    /// Our FIN was sent and acknowledged.
    pub(crate) fn fin_acked(&self) -> bool {
        matches!(self.fin_seq(), Some(f) if self.snd_una > f)
    }

    /// Bytes in flight (go-back-N view: what was sent from SND.UNA up to SND.NXT).
    pub(crate) fn in_flight(&self) -> usize {
        if self.snd_nxt > self.snd_una {
            self.snd_nxt - self.snd_una
        } else {
            0
        }
    }

    /// The receive window we could offer: free buffer space, within what the window
    /// field and scale can express.
    pub(crate) fn rcv_wnd(&self) -> usize {
        self.rx.free().min(65535usize << self.rcv_wscale)
    }

    /// A template for our segments.
    pub(crate) fn repr(&self, seq: SeqNumber, flags: TcpFlags) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq,
            ack: Some(self.rcv_nxt),
            flags,
            window: 0,
            urgent: 0,
            options: Default::default(),
            payload: &[],
        }
    }
}
