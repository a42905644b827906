//! Per-connection configuration.

use core::time::Duration;
use std::sync::Arc;

/// Which congestion controller a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CongestionKind {
    /// RFC 5681 slow start / congestion avoidance with RFC 6582 fast recovery (or
    /// RFC 6675 SACK-based recovery when SACK is negotiated).
    NewReno,
    /// CUBIC (RFC 9438), the default for new connections.
    #[default]
    Cubic,
    /// No congestion control: the window is only limited by the peer's receive window.
    /// For tests and controlled networks only.
    Unlimited,
}

/// Keepalive parameters (RFC 9293 section 3.8.4, RFC 1122 4.2.3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe; RFC 1122 says no less than two hours by default.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is aborted with `ConnError::TimedOut`; at
    /// most `MAX_RETRIES` (a larger value acts as it).
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Configuration of one TCP connection. `Default` gives RFC-conformant values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Our maximum segment size: advertised in the SYN and the upper bound for what we send.
    /// Derive it from the path MTU (1500 - 40 = 1460 on Ethernet).
    pub mss: u16,
    /// Receive buffer size in bytes (the largest window we advertise). Allocated once.
    pub recv_buffer: usize,
    /// Send buffer size in bytes. Allocated once.
    pub send_buffer: usize,
    /// Disable Nagle's algorithm (RFC 9293 3.7.4) when true. Nagle is on by default.
    pub nodelay: bool,
    /// Offer window scaling (RFC 7323) when the receive buffer exceeds 64 KiB.
    pub window_scaling: bool,
    /// Delayed ACK timeout, capped below 0.5 s (RFC 9293 MUST-40); `None` acks every segment.
    /// An ACK is always sent for at least every second full-sized segment.
    pub delayed_ack: Option<Duration>,
    /// Keepalive probing; off by default (RFC 9293 MUST-25).
    pub keepalive: Option<Keepalive>,
    /// Initial retransmission timeout (RFC 6298: 1 s).
    pub rto_initial: Duration,
    /// Lower bound of the RTO (RFC 6298 says 1 s; 200 ms is common practice).
    pub rto_min: Duration,
    /// Upper bound of the RTO after backoff (RFC 6298: at least 60 s). RTOs are kept in
    /// whole microseconds, so a bound beyond 71 minutes (`u32::MAX` µs) acts as 71 minutes.
    pub rto_max: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts `2 * msl`.
    pub msl: Duration,
    /// Retransmissions of the same data before the connection is aborted (R2); at most
    /// `MAX_RETRIES` (a larger value acts as it).
    pub max_retransmissions: u32,
    /// Retransmissions of a SYN (or SYN-ACK) before the open fails (R2 for SYN). The
    /// default, 7, gives up after 183 s with the default RTOs (MUST-23: at least 3 min).
    /// At most `MAX_RETRIES`.
    pub max_syn_retransmissions: u32,
    /// Abort when data stays unacknowledged this long, whatever the retransmission count
    /// (RFC 9293 3.8.3 USER TIMEOUT).
    pub user_timeout: Option<Duration>,
    /// Upper bound on out-of-order bytes held for reassembly; segments beyond it are
    /// dropped and counted (`Counters::ooo_dropped`).
    pub max_ooo_bytes: usize,
    /// The congestion controller.
    pub congestion: CongestionKind,
    /// Offer and accept TCP timestamps (RFC 7323 sections 3-5: RTTM and PAWS).
    pub timestamps: bool,
    /// Offer and accept SACK (RFC 2018); with it, loss recovery follows RFC 6675 with
    /// proportional rate reduction (RFC 6937), limited transmit (RFC 3042) and a
    /// simplified RACK-TLP (RFC 8985).
    pub sack: bool,
    /// RACK time-based loss detection and tail loss probes (RFC 8985); only with SACK.
    pub rack_tlp: bool,
    /// Challenge ACKs (RFC 5961 section 7) allowed per second and per connection (a token
    /// bucket holding at most this many); the rest are suppressed and counted.
    pub challenge_ack_limit: u32,
    /// Zero-copy receive: in-order payloads of at least this many bytes stay in the
    /// device's buffer (a `Frame`) instead of being copied into the receive ring, when the
    /// caller offers the frame (`Tcb::on_segment_frame`). Smaller ones are copied, so that a
    /// few bytes do not hold a whole device buffer.
    pub rx_copybreak: usize,
    /// Zero-copy receive: the most frames a connection holds; beyond it payloads are
    /// copied (a reader that falls behind must not pin the device's buffer pool). 0 turns
    /// zero-copy receive off.
    pub rx_frames_max: usize,
    /// Large segments (TSO/GSO): new data goes out in segments of up to this many
    /// full-sized segments, which the layer below cuts to size (the NIC's TSO, or software
    /// segmentation that emits the header once). 1: every segment is one MSS. Lost data
    /// is always retransmitted one MSS at a time.
    pub gso_segments: u16,
    /// The smallest path MTU an ICMP "fragmentation needed" can set (Linux's `min_pmtu`,
    /// 552): a smaller one is raised to it, so that a forged ICMP cannot shrink segments
    /// to a few bytes (RFC 5927 section 5.2).
    pub min_pmtu: u16,
    /// The least time between two ACKs sent in answer to out-of-window segments without
    /// text (pure ACKs, bare SYNs) on one connection, as Linux's `tcp_invalid_ratelimit`
    /// (500 ms); segments with text or a FIN are always answered (their duplicate ACK
    /// drives the peer's recovery). Zero answers every one.
    pub invalid_ack_interval: Duration,
    /// The DS field (DSCP and ECN bits, `IP_TOS`) of the IPv4 packets the connection
    /// sends; 0 by default.
    pub ip_tos: u8,
    /// The TTL of the IPv4 packets the connection sends (`IP_TTL`); `None`: the
    /// interface's.
    pub ip_ttl: Option<u8>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 64 * 1024,
            send_buffer: 64 * 1024,
            nodelay: false,
            window_scaling: true,
            delayed_ack: Some(Duration::from_millis(40)),
            keepalive: None,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            msl: Duration::from_secs(30),
            max_retransmissions: 12,
            max_syn_retransmissions: 7,
            user_timeout: None,
            max_ooo_bytes: 64 * 1024,
            congestion: CongestionKind::Cubic,
            timestamps: true,
            sack: true,
            rack_tlp: true,
            challenge_ack_limit: 10,
            rx_copybreak: 512,
            rx_frames_max: 64,
            gso_segments: 1,
            min_pmtu: 552,
            invalid_ack_interval: Duration::from_millis(500),
            ip_tos: 0,
            ip_ttl: None,
        }
    }
}

/// The smallest MSS we accept from a peer. Smaller advertised values (0..=87, including
/// the absurd 0..=64 range) are raised to this, so that a peer cannot make us emit a
/// segment per byte (CVE-2019-11479 style). 88 = 128-byte IP packet minus 40 bytes of
/// headers, still below any real link's MTU.
pub const MIN_MSS: usize = 88;

/// The MSS assumed when the peer sends no MSS option (RFC 9293 MUST-15: 536).
pub const DEFAULT_MSS: usize = 536;

/// The most retransmissions (and keepalive probes) a limit can ask for before the
/// connection gives up: a TCB counts them in a byte. (Linux caps keepalive probes at 127;
/// 254 RTOs at the default 120 s cap are eight hours.)
pub const MAX_RETRIES: u32 = 254;

/// The largest receive buffer window scaling can describe (RFC 7323: shift at most 14).
pub const MAX_WINDOW: usize = 65535 << 14;

impl TcpConfig {
    /// The configuration with out-of-range values brought into range.
    pub(crate) fn sanitized(mut self) -> Self {
        self.mss = self.mss.max(MIN_MSS as u16);
        let mss = self.mss as usize;
        self.recv_buffer = self.recv_buffer.clamp(2 * mss, MAX_WINDOW);
        if !self.window_scaling {
            self.recv_buffer = self.recv_buffer.min(65535);
        }
        self.send_buffer = self.send_buffer.max(mss);
        self.rto_min = self.rto_min.max(Duration::from_millis(1));
        self.rto_max = self.rto_max.max(self.rto_min);
        self.rto_initial = self.rto_initial.clamp(self.rto_min, self.rto_max);
        self.delayed_ack = self
            .delayed_ack
            .map(|d| d.min(core::time::Duration::from_millis(499)));
        self.max_retransmissions = self.max_retransmissions.min(MAX_RETRIES);
        self.max_syn_retransmissions = self.max_syn_retransmissions.min(MAX_RETRIES);
        if let Some(k) = &mut self.keepalive {
            k.count = k.count.min(MAX_RETRIES);
        }
        self
    }

    /// The window scale shift we offer for our receive buffer.
    pub(crate) fn rcv_wscale(&self) -> u8 {
        let mut shift = 0u8;
        while (self.recv_buffer >> shift) > 65535 && shift < 14 {
            shift += 1;
        }
        shift
    }
}

/// A sanitized configuration that connections share: a TCB holds one of these, so that
/// thousands of connections opened alike read one copy, which stays in the cache, instead
/// of each its own (the lines of it a segment reads would be misses of their own).
/// Changing one connection's option copies it for that connection alone (`modify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedConfig(Arc<TcpConfig>);

impl SharedConfig {
    /// `cfg`, sanitized, in a copy of its own.
    pub fn new(cfg: TcpConfig) -> Self {
        SharedConfig(Arc::new(cfg.sanitized()))
    }

    /// Changes this connection's own copy (copied first if others share it) with `f`,
    /// then sanitizes it again: an option set on one connection is brought into range as
    /// the configuration it was opened with was.
    pub(crate) fn modify(&mut self, f: impl FnOnce(&mut TcpConfig)) {
        let cfg = Arc::make_mut(&mut self.0);
        f(cfg);
        *cfg = cfg.sanitized();
    }
}

impl From<TcpConfig> for SharedConfig {
    fn from(cfg: TcpConfig) -> Self {
        SharedConfig::new(cfg)
    }
}

impl core::ops::Deref for SharedConfig {
    type Target = TcpConfig;

    fn deref(&self) -> &TcpConfig {
        &self.0
    }
}

/// Hands out one `SharedConfig` per distinct configuration among the last few asked for
/// (a listener's, a core's connects): connections opened alike share it.
#[derive(Debug, Default)]
pub struct ConfigCache {
    recent: Vec<SharedConfig>,
}

impl ConfigCache {
    /// Distinct configurations kept (a listener's for IPv4 and IPv6, a few for connects).
    const KEEP: usize = 4;

    /// The shared copy of `cfg` (sanitized): a kept one if equal, else a new one, kept.
    pub fn get(&mut self, cfg: TcpConfig) -> SharedConfig {
        let cfg = cfg.sanitized();
        if let Some(c) = self.recent.iter().find(|c| *c.0 == cfg) {
            return c.clone();
        }
        if self.recent.len() == Self::KEEP {
            self.recent.remove(0);
        }
        let c = SharedConfig(Arc::new(cfg));
        self.recent.push(c.clone());
        c
    }
}
