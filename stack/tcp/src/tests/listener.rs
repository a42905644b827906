//! `Listener` with SYN cookies: a full backlog answers statelessly, a valid cookie in
//! the final ACK creates the connection, anything else is reset.

use super::options::{config_ts, ts};
use super::*;
use crate::listener::{ListenOutcome, ListenReply, Listener};

const SECRET: [u8; 16] = *b"sluice cookie k!";
const FLOW: u64 = 0x0a00_0001_0a00_0002;

fn syn_from(port: u16, options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        src_port: port,
        seq: REMOTE_SEQ,
        flags: SYN,
        options,
        ..*SEND_TEMPL
    }
}

/// A listener with a backlog of one, already full.
fn full_listener(cfg: TcpConfig) -> Listener<u32> {
    let mut l = Listener::new(cfg, LOCAL_PORT, 1);
    l.enable_syn_cookies(SECRET);
    match l.on_segment_from(ms(0), &syn_from(1000, mss_opt(MSS)), FLOW, LOCAL_SEQ, 1) {
        ListenReply::Outcome(ListenOutcome::Accepted(t)) => assert_eq!(t.state(), State::SynReceived),
        other => panic!("{other:?}"),
    }
    assert_eq!(l.half_open(), 1);
    l
}

fn cookie_syn_ack(l: &mut Listener<u32>, t: u64, syn: &TcpRepr) -> TcpRepr<'static> {
    match l.on_segment_from(ms(t), syn, FLOW, LOCAL_SEQ, 99) {
        ListenReply::SynCookie(r) => r,
        other => panic!("expected a cookie SYN-ACK, got {other:?}"),
    }
}

#[test]
fn full_backlog_answers_with_a_cookie_and_the_ack_establishes() {
    let cfg = TcpConfig {
        mss: 1460,
        recv_buffer: 1 << 20,
        window_scaling: true,
        ..config_ts()
    };
    let mut l = full_listener(cfg);
    let syn = syn_from(
        2000,
        TcpOptions {
            mss: Some(1400),
            window_scale: Some(9),
            sack_permitted: true,
            timestamp: Some((777, 0)),
            ..TcpOptions::default()
        },
    );
    let sa = cookie_syn_ack(&mut l, 5000, &syn);
    assert_eq!(l.half_open(), 1, "no state kept");
    assert_eq!(sa.dst_port, 2000);
    assert_eq!(sa.ack, Some(REMOTE_SEQ + 1));
    assert!(sa.flags.syn());
    assert_eq!(sa.options.window_scale, Some(5));
    assert!(sa.options.sack_permitted);
    let (tsval, tsecr) = sa.options.timestamp.unwrap();
    assert_eq!(tsecr, 777);
    assert!(tsval <= 5000 && 5000 - tsval < 64);
    // The final ACK, with data, 100 ms later.
    let ack = TcpRepr {
        src_port: 2000,
        seq: REMOTE_SEQ + 1,
        ack: Some(sa.seq + 1),
        window: 100,
        options: ts(800, tsval),
        payload: b"GET /",
        ..*SEND_TEMPL
    };
    let mut tcb = match l.on_segment_from(ms(5100), &ack, FLOW, LOCAL_SEQ, 7) {
        ListenReply::Outcome(ListenOutcome::Accepted(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.iss(), sa.seq);
    assert_eq!(tcb.remote_port(), 2000);
    // MSS 1400 rounds down to 1300 in the table; less 12 for timestamps.
    assert_eq!(tcb.mss(), 1300 - 12);
    assert_eq!(tcb.send_window(), 100 << 9);
    assert!(tcb.sack_ok && tcb.ts_enabled);
    assert_eq!(tcb.recv_queue(), 5);
    assert_eq!(l.accept(), Some(7));
    assert_eq!(l.counters().syn_cookies_sent, 1);
    assert_eq!(l.counters().syn_cookies_accepted, 1);
    let out = drain(&mut tcb, ms(5100));
    assert_eq!(out[0].repr.ack, Some(REMOTE_SEQ + 6));
    assert_eq!(out[0].repr.options.timestamp, Some((5100, 800)));
}

#[test]
fn cookie_without_timestamps_drops_window_scale_and_sack() {
    let cfg = TcpConfig {
        mss: 1460,
        recv_buffer: 1 << 20,
        window_scaling: true,
        ..config_ts()
    };
    let mut l = full_listener(cfg);
    let syn = syn_from(
        2001,
        TcpOptions {
            mss: Some(9000),
            window_scale: Some(9),
            sack_permitted: true,
            ..TcpOptions::default()
        },
    );
    let sa = cookie_syn_ack(&mut l, 0, &syn);
    assert_eq!(sa.options.window_scale, None);
    assert!(!sa.options.sack_permitted);
    assert_eq!(sa.options.timestamp, None);
    let ack = TcpRepr {
        src_port: 2001,
        ..peer_ack(1, 1)
    };
    let ack = TcpRepr {
        ack: Some(sa.seq + 1),
        window: 100,
        ..ack
    };
    let tcb = match l.on_segment_from(ms(10), &ack, FLOW, LOCAL_SEQ, 8) {
        ListenReply::Outcome(ListenOutcome::Accepted(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(tcb.mss(), 1460);
    assert_eq!(tcb.send_window(), 100, "no window scaling");
    assert!(!tcb.sack_ok && !tcb.ts_enabled);
}

#[test]
fn bad_or_expired_cookies_are_reset() {
    let mut l = full_listener(config());
    let sa = cookie_syn_ack(&mut l, 0, &syn_from(2002, mss_opt(MSS)));
    let ack = |cookie: SeqNumber, port: u16| TcpRepr {
        src_port: port,
        seq: REMOTE_SEQ + 1,
        ack: Some(cookie + 1),
        ..*SEND_TEMPL
    };
    for (t, a, flow) in [
        (10, ack(sa.seq + 1, 2002), FLOW),  // wrong cookie
        (10, ack(sa.seq, 2003), FLOW),      // another port
        (10, ack(sa.seq, 2002), FLOW + 1),  // other addresses
        (200_000, ack(sa.seq, 2002), FLOW), // 200 s later: expired
    ] {
        match l.on_segment_from(ms(t), &a, flow, LOCAL_SEQ, 9) {
            ListenReply::Outcome(ListenOutcome::Reset(r)) => assert!(r.flags.rst()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(l.pending_accept(), 0);
    assert_eq!(
        l.counters().syn_cookies_rejected,
        3,
        "the last one came after cookies stopped"
    );
}

#[test]
fn without_cookies_a_full_backlog_drops() {
    let mut l: Listener<u32> = Listener::new(config(), LOCAL_PORT, 1);
    l.on_segment_from(ms(0), &syn_from(1000, mss_opt(MSS)), FLOW, LOCAL_SEQ, 1);
    match l.on_segment_from(ms(0), &syn_from(1001, mss_opt(MSS)), FLOW, LOCAL_SEQ, 2) {
        ListenReply::Outcome(ListenOutcome::Dropped(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(l.counters().dropped_syns, 1);
}
