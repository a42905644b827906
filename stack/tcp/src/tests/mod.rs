//! Per-state unit tests in the style of smoltcp's `socket/tcp.rs` tests: one fixture
//! per state, packet templates, and `send!` / `recv!` / `recv_nothing!` macros.

use std::sync::LazyLock;
use std::time::Duration;

use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
use sluice_wire::Instant;

use crate::config::TcpConfig;
use crate::error::State;
use crate::tcb::Tcb;

mod close;
mod congestion;
mod established;
mod layout;
mod listener;
mod open;
mod options;
mod sack;
mod timers;
mod zero_copy;

pub const LOCAL_PORT: u16 = 80;
pub const REMOTE_PORT: u16 = 49500;
pub const LOCAL_SEQ: SeqNumber = SeqNumber(10_000);
/// Close to the wrap-around, to exercise modular arithmetic.
pub const REMOTE_SEQ: SeqNumber = SeqNumber(u32::MAX - 10_000);
/// Our receive buffer in the fixtures (and so our window).
pub const RX_BUF: usize = 1000;
/// The MSS both sides use in the fixtures.
pub const MSS: u16 = 100;

/// A segment from the peer to the TCB under test.
pub static SEND_TEMPL: LazyLock<TcpRepr<'static>> = LazyLock::new(|| TcpRepr {
    src_port: REMOTE_PORT,
    dst_port: LOCAL_PORT,
    seq: SeqNumber(0),
    ack: None,
    flags: TcpFlags::NONE,
    window: 1000,
    urgent: 0,
    options: TcpOptions::default(),
    payload: &[],
});

/// A segment from the TCB under test to the peer.
pub static RECV_TEMPL: LazyLock<TcpRepr<'static>> = LazyLock::new(|| TcpRepr {
    src_port: LOCAL_PORT,
    dst_port: REMOTE_PORT,
    seq: SeqNumber(0),
    ack: None,
    flags: TcpFlags::NONE,
    window: RX_BUF as u16,
    urgent: 0,
    options: TcpOptions::default(),
    payload: &[],
});

pub const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
pub const FIN: TcpFlags = TcpFlags(TcpFlags::FIN);
pub const RST: TcpFlags = TcpFlags(TcpFlags::RST);
pub const PSH: TcpFlags = TcpFlags(TcpFlags::PSH);
pub const PSH_FIN: TcpFlags = TcpFlags(TcpFlags::PSH | TcpFlags::FIN);

pub fn mss_opt(mss: u16) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        ..TcpOptions::default()
    }
}

/// A segment with its payload copied, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub repr: TcpRepr<'static>,
    pub payload: Vec<u8>,
}

impl Owned {
    pub fn new(r: &TcpRepr) -> Owned {
        Owned {
            repr: TcpRepr { payload: &[], ..*r },
            payload: r.payload.to_vec(),
        }
    }
}

pub fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

/// Everything the TCB wants to send at `now`.
pub fn drain(tcb: &mut Tcb, now: Instant) -> Vec<Owned> {
    let mut out = Vec::new();
    while let Some(r) = tcb.poll_transmit(now) {
        out.push(Owned::new(&r));
        assert!(out.len() < 1000, "poll_transmit does not stop");
    }
    out
}

/// Feed a segment to the TCB; evaluates to the `SegmentOutcome`.
macro_rules! send {
    ($tcb:expr, time $t:expr, $repr:expr) => {{
        let r: TcpRepr = $repr;
        $tcb.on_segment($crate::tests::ms($t), &r)
    }};
    ($tcb:expr, $repr:expr) => {
        send!($tcb, time 0, $repr)
    };
}

/// Assert the TCB sends exactly these segments (at time `t` ms, default 0).
macro_rules! recv {
    ($tcb:expr, time $t:expr, [$($repr:expr),* $(,)?]) => {{
        let got = $crate::tests::drain(&mut $tcb, $crate::tests::ms($t));
        let want: Vec<$crate::tests::Owned> = vec![$($crate::tests::Owned::new(&$repr)),*];
        assert_eq!(got, want, "segments sent by the TCB");
    }};
    ($tcb:expr, [$($repr:expr),* $(,)?]) => {
        recv!($tcb, time 0, [$($repr),*])
    };
}

/// Assert the TCB sends nothing.
macro_rules! recv_nothing {
    ($tcb:expr, time $t:expr) => {{
        let got = $crate::tests::drain(&mut $tcb, $crate::tests::ms($t));
        assert_eq!(got, vec![], "expected silence");
    }};
    ($tcb:expr) => {
        recv_nothing!($tcb, time 0)
    };
}

pub(crate) use {recv, recv_nothing, send};

pub fn config() -> TcpConfig {
    TcpConfig {
        mss: MSS,
        recv_buffer: RX_BUF,
        send_buffer: 1000,
        nodelay: true,
        window_scaling: false,
        timestamps: false,
        sack: false,
        congestion: crate::config::CongestionKind::NewReno,
        challenge_ack_limit: 1000,
        delayed_ack: None,
        msl: Duration::from_secs(1),
        ..TcpConfig::default()
    }
}

// ---- fixtures, one per state ----

pub fn tcb_closed() -> Tcb {
    let mut s = tcb_listen();
    s.shutdown();
    assert_eq!(s.state(), State::Closed);
    s
}

pub fn tcb_listen_with(cfg: TcpConfig) -> Tcb {
    Tcb::listen(cfg, LOCAL_PORT, LOCAL_SEQ)
}

pub fn tcb_listen() -> Tcb {
    tcb_listen_with(config())
}

pub fn syn_ack_from_us() -> TcpRepr<'static> {
    TcpRepr {
        seq: LOCAL_SEQ,
        ack: Some(REMOTE_SEQ + 1),
        flags: SYN,
        options: mss_opt(MSS),
        ..*RECV_TEMPL
    }
}

pub fn tcb_syn_received_with(cfg: TcpConfig) -> Tcb {
    let mut s = tcb_listen_with(cfg);
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, None);
    assert_eq!(s.state(), State::SynReceived);
    let got = drain(&mut s, ms(0));
    assert_eq!(got.len(), 1);
    s
}

pub fn tcb_syn_received() -> Tcb {
    let mut s = tcb_listen();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    recv!(s, [syn_ack_from_us()]);
    assert_eq!(s.state(), State::SynReceived);
    s
}

pub fn tcb_syn_sent_with(cfg: TcpConfig) -> Tcb {
    let mut s = Tcb::connect(cfg, LOCAL_PORT, REMOTE_PORT, LOCAL_SEQ);
    let got = drain(&mut s, ms(0));
    assert_eq!(got.len(), 1);
    assert_eq!(s.state(), State::SynSent);
    s
}

pub fn tcb_syn_sent() -> Tcb {
    let mut s = Tcb::connect(config(), LOCAL_PORT, REMOTE_PORT, LOCAL_SEQ);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ,
            ack: None,
            flags: SYN,
            options: mss_opt(MSS),
            ..*RECV_TEMPL
        }]
    );
    assert_eq!(s.state(), State::SynSent);
    s
}

pub fn tcb_established_with(cfg: TcpConfig) -> Tcb {
    let mut s = tcb_syn_received_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 1),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Established);
    recv_nothing!(s);
    s
}

pub fn tcb_established() -> Tcb {
    tcb_established_with(config())
}

pub fn tcb_fin_wait_1() -> Tcb {
    let mut s = tcb_established();
    s.shutdown();
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 1,
            ack: Some(REMOTE_SEQ + 1),
            flags: FIN,
            ..*RECV_TEMPL
        }]
    );
    assert_eq!(s.state(), State::FinWait1);
    s
}

pub fn tcb_fin_wait_2() -> Tcb {
    let mut s = tcb_fin_wait_1();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 2),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::FinWait2);
    recv_nothing!(s);
    s
}

pub fn tcb_closing() -> Tcb {
    let mut s = tcb_fin_wait_1();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 1),
            flags: FIN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closing);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 2,
            ack: Some(REMOTE_SEQ + 2),
            window: RX_BUF as u16 - 1,
            ..*RECV_TEMPL
        }]
    );
    s
}

pub fn tcb_time_wait() -> Tcb {
    let mut s = tcb_fin_wait_2();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 2),
            flags: FIN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::TimeWait);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 2,
            ack: Some(REMOTE_SEQ + 2),
            window: RX_BUF as u16 - 1,
            ..*RECV_TEMPL
        }]
    );
    s
}

pub fn tcb_close_wait() -> Tcb {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 1),
            flags: FIN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::CloseWait);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 1,
            ack: Some(REMOTE_SEQ + 2),
            window: RX_BUF as u16 - 1,
            ..*RECV_TEMPL
        }]
    );
    s
}

pub fn tcb_last_ack() -> Tcb {
    let mut s = tcb_close_wait();
    s.shutdown();
    assert_eq!(s.state(), State::LastAck);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 1,
            ack: Some(REMOTE_SEQ + 2),
            flags: FIN,
            window: RX_BUF as u16 - 1,
            ..*RECV_TEMPL
        }]
    );
    s
}

/// An ACK from the peer acknowledging `ack` (relative to LOCAL_SEQ), at RCV.NXT
/// `seq` (relative to REMOTE_SEQ).
pub fn peer_ack(seq: usize, ack: usize) -> TcpRepr<'static> {
    TcpRepr {
        seq: REMOTE_SEQ + seq,
        ack: Some(LOCAL_SEQ + ack),
        ..*SEND_TEMPL
    }
}

/// Our ACK with SEQ = LOCAL_SEQ + seq and ACK = REMOTE_SEQ + ack.
pub fn our_ack(seq: usize, ack: usize) -> TcpRepr<'static> {
    TcpRepr {
        seq: LOCAL_SEQ + seq,
        ack: Some(REMOTE_SEQ + ack),
        ..*RECV_TEMPL
    }
}

#[test]
fn fixtures_reach_every_state() {
    assert_eq!(tcb_closed().state(), State::Closed);
    assert_eq!(tcb_listen().state(), State::Listen);
    assert_eq!(tcb_syn_sent().state(), State::SynSent);
    assert_eq!(tcb_syn_received().state(), State::SynReceived);
    assert_eq!(tcb_established().state(), State::Established);
    assert_eq!(tcb_fin_wait_1().state(), State::FinWait1);
    assert_eq!(tcb_fin_wait_2().state(), State::FinWait2);
    assert_eq!(tcb_close_wait().state(), State::CloseWait);
    assert_eq!(tcb_closing().state(), State::Closing);
    assert_eq!(tcb_last_ack().state(), State::LastAck);
    assert_eq!(tcb_time_wait().state(), State::TimeWait);
}

/// The state of an idle connection stays within the 2 KiB budget of the benchmarks
/// (`docs/benchmarks-e2e.md`), with room for the interface's ~120 B of bookkeeping.
#[test]
fn an_idle_tcb_fits_the_memory_budget() {
    let size = std::mem::size_of::<Tcb>();
    eprintln!("size_of::<Tcb>() = {size}");
    assert!(size + 120 <= 2048, "Tcb is {size} B");
    let t = tcb_established();
    assert_eq!(t.buffer_memory(), 0, "an idle connection allocates no buffer");
}
