//! Small, copyable error and outcome types, one per operation.

use core::fmt;

/// Why a connection ended abnormally (`Tcb::error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnError {
    /// The peer reset the connection (RST in a synchronized state).
    Reset,
    /// The peer refused the connection (RST answering our SYN).
    Refused,
    /// Retransmissions, keepalive probes or the user timeout ran out.
    TimedOut,
    /// A hard ICMP error arrived while the SYN was unanswered.
    Unreachable,
    /// We aborted the connection (`abort`, or data arrived after `close`).
    Aborted,
}

impl ConnError {
    /// Every value, for tables and tests.
    pub const ALL: [ConnError; 5] = [
        ConnError::Reset,
        ConnError::Refused,
        ConnError::TimedOut,
        ConnError::Unreachable,
        ConnError::Aborted,
    ];

    /// The one table of what a failed connection means to applications: the `errno` Linux
    /// reports for it (what the C API sets) and the `std::io::ErrorKind` of that errno
    /// (what the Rust API's errors convert to). A test checks the two columns against
    /// each other through std's own errno mapping.
    pub const fn meaning(self) -> (i32, std::io::ErrorKind) {
        use std::io::ErrorKind as K;
        match self {
            ConnError::Reset => (104, K::ConnectionReset),     // ECONNRESET
            ConnError::Refused => (111, K::ConnectionRefused), // ECONNREFUSED
            ConnError::TimedOut => (110, K::TimedOut),         // ETIMEDOUT
            ConnError::Unreachable => (113, K::HostUnreachable), // EHOSTUNREACH
            ConnError::Aborted => (103, K::ConnectionAborted), // ECONNABORTED
        }
    }

    /// The Linux `errno` of this failure.
    pub const fn errno(self) -> i32 {
        self.meaning().0
    }

    /// The `std::io::ErrorKind` of this failure.
    pub const fn io_kind(self) -> std::io::ErrorKind {
        self.meaning().1
    }
}

/// Errors of `Tcb::send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not open for sending (LISTEN, or already CLOSED normally).
    InvalidState,
    /// The write side was shut down (`shutdown`/`close` was called).
    Closing,
    /// The connection failed; no more data can be sent.
    Connection(ConnError),
}

/// Errors of `Tcb::recv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// No data can arrive in this state (LISTEN, SYN-SENT, or CLOSED normally).
    InvalidState,
    /// The peer sent FIN and every byte before it was read: end of stream.
    Finished,
    /// The connection failed; unread data was discarded.
    Connection(ConnError),
}

/// Errors of `Listener::on_segment` for a SYN that cannot be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenError {
    /// Too many half-open connections; the SYN is dropped (the peer retransmits).
    BacklogFull,
    /// The accept queue is full; the SYN is dropped.
    AcceptQueueFull,
    /// SYN and FIN together: no legitimate opening has both (dropped, as Linux does).
    SynFin,
}

/// Why an incoming segment was not (entirely) used. Every drop is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Ports do not match this connection.
    WrongPort,
    /// The TCB is CLOSED; the caller should answer with `rst_for`.
    Closed,
    /// Not acceptable in this state (RFC 9293 3.10.7: e.g. no SYN in SYN-SENT, no ACK).
    Unexpected,
    /// Sequence number outside the receive window (an ACK was queued unless RST).
    OutOfWindow,
    /// ACK for data never sent, or too old (RFC 5961 5.2); an ACK was queued.
    BadAck,
    /// RST that failed sequence validation (dropped, or a challenge ACK queued).
    BadRst,
    /// SYN in a synchronized state (RFC 5961 4); a challenge ACK was queued.
    ChallengeAck,
    /// Out-of-order data beyond the reassembly bound.
    ReassemblyFull,
    /// PAWS (RFC 7323 section 5): the timestamp is older than TS.Recent; an ACK was
    /// queued (rate-limited).
    Paws,
    /// Timestamps were negotiated but the segment carries none (RFC 7323 3.2: dropped).
    NoTimestamp,
    /// Data the memory budget had no room for (`crate::budget`): dropped unacknowledged.
    MemoryBudget,
}

/// ICMP errors the IP layer reports for a connection (RFC 9293 3.9.1, RFC 5461).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Destination unreachable, codes 0/1 (net/host) and similar: soft error. The owner
    /// maps code 5 (source route failed) to `HostUnreachable` (MUST-56: never abort).
    NetUnreachable,
    HostUnreachable,
    /// Codes 2 (protocol) and 3 (port): hard errors.
    ProtocolUnreachable,
    PortUnreachable,
    /// Administratively prohibited (codes 9, 10, 13): treated as hard.
    AdminProhibited,
    /// Code 4, fragmentation needed; carries the next-hop MTU (0 if unknown).
    FragmentationNeeded {
        mtu: u16,
    },
    /// Time exceeded: soft.
    TimeExceeded,
    /// Parameter problem: soft.
    ParameterProblem,
    /// Source quench: ignored (RFC 6633).
    SourceQuench,
}

impl IcmpError {
    /// Hard errors abort a connection that is still opening (SYN-SENT).
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            IcmpError::ProtocolUnreachable | IcmpError::PortUnreachable | IcmpError::AdminProhibited
        )
    }
}

/// The connection states of RFC 9293 section 3.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// Every state, in RFC order; `index` is the position here.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// The position of the state in `ALL` (for per-state counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// States after the SYN exchange, where RFC 9293 3.10.7.4 processing applies.
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        };
        f.write_str(s)
    }
}

/// What `Tcb::on_segment` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// Why (part of) the segment was not used; `None` when fully accepted.
    pub drop: Option<DropReason>,
    /// `(before, after)` when the state changed.
    pub transition: Option<(State, State)>,
    /// Something may be ready to send now: call `poll_transmit` until it returns `None`.
    /// When false, `poll_transmit` has nothing (and a caller may skip asking it).
    pub transmit: bool,
    /// Zero-copy receive (`Tcb::on_segment_frame`): payload bytes queued by reference
    /// (the frame moved into the receive buffer), not copied.
    pub zero_copy: usize,
    /// Taken as the continuation of the burst's previous segment (receive coalescing).
    pub coalesced: bool,
}

/// Per-connection counters. `#[repr(C)]`: the four that every segment counts are first
/// (the TCB's hot front ends with them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Counters {
    pub segments_in: u64,
    pub segments_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of `bytes_in`, those kept in the device's buffers (zero-copy receive).
    pub bytes_in_zero_copy: u64,
    /// Segments sent again (RTO, fast retransmit, partial ACK).
    pub retransmits: u64,
    pub rto_expirations: u64,
    pub fast_retransmits: u64,
    pub dup_acks: u64,
    /// Segments held for reassembly.
    pub ooo_segments: u64,
    /// Out-of-order segments dropped because the reassembly bound was reached.
    pub ooo_dropped: u64,
    /// Segments whose data (or part of it) was dropped because the memory budget refused
    /// the receive buffer's growth (`crate::budget`).
    pub mem_dropped: u64,
    /// Segments outside the receive window.
    pub out_of_window: u64,
    pub challenge_acks: u64,
    pub bad_acks: u64,
    pub rst_in: u64,
    pub rst_out: u64,
    pub persist_probes: u64,
    pub keepalive_probes: u64,
    /// Drops of every other kind (wrong state, no ACK, wrong port).
    pub other_drops: u64,
    /// Segments dropped by PAWS (RFC 7323 section 5).
    pub paws_drops: u64,
    /// Segments dropped for lacking the negotiated timestamps option.
    pub no_timestamp_drops: u64,
    /// Challenge ACKs (and ACKs for unacceptable ACK fields) not sent because of the
    /// per-connection rate limit (RFC 5961 section 7).
    pub challenge_acks_suppressed: u64,
    /// ACKs not sent in answer to out-of-window segments without text, because of the
    /// per-connection interval (`TcpConfig::invalid_ack_interval`).
    pub invalid_acks_suppressed: u64,
    /// ICMP "fragmentation needed" whose MTU was below `TcpConfig::min_pmtu` (raised to it).
    pub pmtu_below_floor: u64,
    /// D-SACK blocks received (RFC 2883): duplicates the peer saw, not losses.
    pub dsacks_received: u64,
    /// D-SACK blocks sent for duplicate segments we received.
    pub dsacks_sent: u64,
    /// SACK blocks ignored: reversed, empty, or outside SND.UNA..SND.MAX.
    pub sack_blocks_ignored: u64,
    /// SACK-based loss recoveries entered (RFC 6675).
    pub sack_recoveries: u64,
    /// Losses detected by the RACK reordering timer.
    pub rack_timeouts: u64,
    /// Tail loss probes sent (RFC 8985).
    pub tlp_probes: u64,
}
