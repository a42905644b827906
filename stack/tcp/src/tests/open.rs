//! LISTEN, SYN-SENT, SYN-RECEIVED, CLOSED; MSS and window-scale negotiation; Listener.

use super::*;
use crate::error::{ConnError, DropReason, IcmpError, ListenError, RecvError, SendError};
use crate::listener::{ListenOutcome, Listener};
use crate::rst::rst_for;

// ---- CLOSED (RFC 9293 3.10.7.1) ----

#[test]
fn closed_drops_and_rst_for_answers() {
    let mut s = tcb_closed();
    let seg = TcpRepr {
        seq: REMOTE_SEQ,
        ack: Some(LOCAL_SEQ),
        payload: b"abc",
        ..*SEND_TEMPL
    };
    assert_eq!(send!(s, seg).drop, Some(DropReason::Closed));
    recv_nothing!(s);
    // With ACK: <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(
        rst_for(&seg),
        Some(TcpRepr {
            seq: LOCAL_SEQ,
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        })
    );
    // Without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    let syn = TcpRepr {
        seq: REMOTE_SEQ,
        flags: SYN.with(TcpFlags::FIN),
        payload: b"abc",
        ..*SEND_TEMPL
    };
    assert_eq!(
        rst_for(&syn),
        Some(TcpRepr {
            seq: SeqNumber(0),
            ack: Some(REMOTE_SEQ + 5),
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        })
    );
    // Never answer a RST.
    assert_eq!(rst_for(&TcpRepr { flags: RST, ..seg }), None);
}

#[test]
fn closed_tcb_user_calls() {
    let mut s = tcb_closed();
    assert_eq!(s.send(b"x"), Err(SendError::InvalidState));
    assert_eq!(s.recv(&mut [0; 4]), Err(RecvError::InvalidState));
    assert!(s.is_closed());
}

// ---- LISTEN (RFC 9293 3.10.7.2) ----

#[test]
fn listen_ignores_rst() {
    let mut s = tcb_listen();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    recv_nothing!(s);
    assert_eq!(s.state(), State::Listen);
}

#[test]
fn listen_answers_ack_with_rst() {
    let mut s = tcb_listen();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(SeqNumber(1234)),
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            seq: SeqNumber(1234),
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        }]
    );
    assert_eq!(s.state(), State::Listen);
}

#[test]
fn listen_drops_other_segments() {
    let mut s = tcb_listen();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            payload: b"abc",
            ..*SEND_TEMPL
        }
    );
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: FIN,
            ..*SEND_TEMPL
        }
    );
    recv_nothing!(s);
    assert_eq!(s.state(), State::Listen);
}

#[test]
fn listen_syn_gives_syn_ack() {
    let s = tcb_syn_received();
    assert_eq!(s.remote_port(), REMOTE_PORT);
    assert_eq!(s.mss(), MSS as usize);
}

#[test]
fn listen_wrong_port_dropped() {
    let mut s = tcb_listen();
    let out = send!(
        s,
        TcpRepr {
            dst_port: 81,
            seq: REMOTE_SEQ,
            flags: SYN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::WrongPort));
    recv_nothing!(s);
}

#[test]
fn mss_is_clamped() {
    // 0..=87 (absurd values included) are raised to MIN_MSS = 88.
    for (peer, want) in [
        (Some(0u16), 88usize),
        (Some(1), 88),
        (Some(64), 88),
        (Some(90), 90),
        (Some(9000), 1460),
        (None, 536),
    ] {
        let cfg = TcpConfig {
            mss: 1460,
            recv_buffer: 4000,
            ..config()
        };
        let mut s = tcb_listen_with(cfg);
        send!(
            s,
            TcpRepr {
                seq: REMOTE_SEQ,
                flags: SYN,
                options: TcpOptions {
                    mss: peer,
                    ..TcpOptions::default()
                },
                ..*SEND_TEMPL
            }
        );
        assert_eq!(s.mss(), want, "peer MSS {peer:?}");
    }
}

#[test]
fn window_scaling_negotiated() {
    let cfg = TcpConfig {
        recv_buffer: 1 << 20,
        window_scaling: true,
        ..config()
    };
    let mut s = tcb_listen_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: TcpOptions {
                mss: Some(MSS),
                window_scale: Some(3),
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ,
            ack: Some(REMOTE_SEQ + 1),
            flags: SYN,
            window: 65535,
            options: TcpOptions {
                mss: Some(MSS),
                window_scale: Some(5),
                ..TcpOptions::default()
            },
            ..*RECV_TEMPL
        }]
    );
    send!(
        s,
        TcpRepr {
            window: 100,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.send_window(), 800);
    s.send(b"x").unwrap();
    // Our window: 1 MiB >> 5 = 32768.
    recv!(
        s,
        [TcpRepr {
            payload: b"x",
            flags: PSH,
            window: 32768,
            ..our_ack(1, 1)
        }]
    );
}

#[test]
fn window_scaling_not_used_without_peer_option() {
    let cfg = TcpConfig {
        recv_buffer: 1 << 20,
        window_scaling: true,
        ..config()
    };
    let mut s = tcb_listen_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: 65535,
            ..syn_ack_from_us()
        }]
    );
    send!(
        s,
        TcpRepr {
            window: 100,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.send_window(), 100);
}

// ---- SYN-SENT (RFC 9293 3.10.7.3) ----

#[test]
fn syn_sent_syn_ack_establishes() {
    let mut s = tcb_syn_sent();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 1),
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.transition, Some((State::SynSent, State::Established)));
    recv!(s, [our_ack(1, 1)]);
    assert!(s.can_send());
}

#[test]
fn syn_sent_syn_ack_with_data_and_fin() {
    let mut s = tcb_syn_sent();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 1),
            flags: SYN.with(TcpFlags::FIN),
            options: mss_opt(MSS),
            payload: b"hello",
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::CloseWait);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 5,
            ..our_ack(1, 7)
        }]
    );
    let mut buf = [0; 16];
    assert_eq!(s.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(s.recv(&mut buf), Err(RecvError::Finished));
}

#[test]
fn syn_sent_bad_ack_gets_rst() {
    let mut s = tcb_syn_sent();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 100),
            flags: SYN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadAck));
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 100,
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        }]
    );
    assert_eq!(s.state(), State::SynSent);
    // ACK = ISS is also unacceptable.
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ),
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ,
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        }]
    );
}

#[test]
fn syn_sent_rst_with_good_ack_refuses() {
    let mut s = tcb_syn_sent();
    send!(
        s,
        TcpRepr {
            seq: SeqNumber(0),
            ack: Some(LOCAL_SEQ + 1),
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::Refused));
    recv_nothing!(s);
}

#[test]
fn syn_sent_rst_without_ack_ignored() {
    let mut s = tcb_syn_sent();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadRst));
    assert_eq!(s.state(), State::SynSent);
    recv_nothing!(s);
}

#[test]
fn syn_sent_plain_ack_or_data_dropped() {
    let mut s = tcb_syn_sent();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 1),
            ..*SEND_TEMPL
        }
    );
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            payload: b"x",
            ..*SEND_TEMPL
        }
    );
    recv_nothing!(s);
    assert_eq!(s.state(), State::SynSent);
}

#[test]
fn syn_sent_queues_data_until_established() {
    let mut s = tcb_syn_sent();
    assert_eq!(s.send(b"early"), Ok(5));
    recv_nothing!(s);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 1),
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            payload: b"early",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
}

/// The SYN-ACK of our active open, `SYN` plus `flags`.
fn syn_ack_to_us(flags: TcpFlags) -> TcpRepr<'static> {
    TcpRepr {
        seq: REMOTE_SEQ,
        ack: Some(LOCAL_SEQ + 1),
        flags: SYN.with(flags.0),
        options: mss_opt(MSS),
        ..*SEND_TEMPL
    }
}

/// The ACK of our SYN-ACK may wait for the application's first write, which carries it
/// (one segment where there were two); the driver asks once. Unanswered, it goes alone.
#[test]
fn the_ack_of_a_syn_ack_may_wait_for_the_first_write() {
    let mut s = tcb_syn_sent();
    send!(s, syn_ack_to_us(TcpFlags::NONE));
    assert_eq!(s.state(), State::Established);
    assert!(s.take_ack_for_app());
    assert!(!s.take_ack_for_app(), "asked once");
    assert_eq!(s.send(b"GET"), Ok(3));
    recv!(
        s,
        [TcpRepr {
            payload: b"GET",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    // Nothing written: the ACK goes alone when the driver drains the connection.
    let mut s = tcb_syn_sent();
    send!(s, syn_ack_to_us(TcpFlags::NONE));
    assert!(s.take_ack_for_app());
    recv!(s, [our_ack(1, 1)]);
    assert!(!s.take_ack_for_app(), "an ACK went: nothing waits");
}

/// Nothing waits when the ACK is not alone: data written before the SYN-ACK leaves with
/// it at once. A FIN on the SYN-ACK waits as any FIN in ESTABLISHED does.
#[test]
fn the_ack_of_a_syn_ack_does_not_wait_when_data_is_queued() {
    let mut s = tcb_syn_sent();
    assert_eq!(s.send(b"early"), Ok(5));
    send!(s, syn_ack_to_us(TcpFlags::NONE));
    assert!(!s.take_ack_for_app());
    recv!(
        s,
        [TcpRepr {
            payload: b"early",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    // A connection the peer opens and closes at once: it waits for the application's
    // FIN (CLOSE-WAIT), as a FIN in ESTABLISHED does.
    let mut s = tcb_syn_sent();
    send!(s, syn_ack_to_us(FIN));
    assert_eq!(s.state(), State::CloseWait);
    assert!(s.take_ack_for_app());
}

#[test]
fn syn_sent_close_deletes() {
    let mut s = tcb_syn_sent();
    s.shutdown();
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), None);
    recv_nothing!(s);
}

#[test]
fn syn_retransmitted_with_backoff_then_times_out() {
    let cfg = TcpConfig {
        max_syn_retransmissions: 3,
        ..config()
    };
    let mut s = tcb_syn_sent_with(cfg);
    let syn = TcpRepr {
        seq: LOCAL_SEQ,
        ack: None,
        flags: SYN,
        options: mss_opt(MSS),
        ..*RECV_TEMPL
    };
    assert_eq!(s.poll_at(), Some(ms(1000)));
    s.handle_timeout(ms(1000));
    recv!(s, time 1000, [syn]);
    assert_eq!(s.poll_at(), Some(ms(3000)));
    s.handle_timeout(ms(3000));
    recv!(s, time 3000, [syn]);
    assert_eq!(s.poll_at(), Some(ms(7000)));
    s.handle_timeout(ms(7000));
    recv!(s, time 7000, [syn]);
    assert_eq!(s.poll_at(), Some(ms(15000)));
    s.handle_timeout(ms(15000));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
    assert_eq!(s.counters().retransmits, 3);
}

#[test]
fn syn_timeout_then_rto_is_3s_without_sample() {
    let mut s = tcb_syn_sent();
    s.handle_timeout(ms(1000));
    drain(&mut s, ms(1000));
    send!(s, time 1100, TcpRepr {
        seq: REMOTE_SEQ,
        ack: Some(LOCAL_SEQ + 1),
        flags: SYN,
        options: mss_opt(MSS),
        ..*SEND_TEMPL
    });
    // Karn: the SYN was retransmitted, so no sample; RFC 6298 5.7: RTO = 3 s.
    assert_eq!(s.srtt(), None);
    assert_eq!(s.rto(), Duration::from_secs(3));
}

#[test]
fn syn_ack_gives_rtt_sample() {
    let mut s = tcb_syn_sent();
    send!(s, time 100, TcpRepr {
        seq: REMOTE_SEQ,
        ack: Some(LOCAL_SEQ + 1),
        flags: SYN,
        options: mss_opt(MSS),
        ..*SEND_TEMPL
    });
    assert_eq!(s.srtt(), Some(Duration::from_millis(100)));
    assert_eq!(s.rto(), Duration::from_millis(300));
}

#[test]
fn icmp_hard_error_aborts_only_syn_sent() {
    let mut s = tcb_syn_sent();
    s.on_icmp_error(ms(0), IcmpError::NetUnreachable, LOCAL_SEQ);
    assert_eq!(s.state(), State::SynSent);
    assert_eq!(s.soft_error(), Some(IcmpError::NetUnreachable));
    // Quoting a sequence number we never sent: ignored.
    s.on_icmp_error(ms(0), IcmpError::PortUnreachable, LOCAL_SEQ + 1000);
    assert_eq!(s.state(), State::SynSent);
    s.on_icmp_error(ms(0), IcmpError::PortUnreachable, LOCAL_SEQ);
    assert_eq!(s.state(), State::Closed);
    // Port unreachable answering the SYN: refused (ECONNREFUSED), as Linux and POSIX say.
    assert_eq!(s.error(), Some(ConnError::Refused));
    // Other hard errors: unreachable (EHOSTUNREACH).
    for hard in [IcmpError::ProtocolUnreachable, IcmpError::AdminProhibited] {
        let mut s = tcb_syn_sent();
        s.on_icmp_error(ms(0), hard, LOCAL_SEQ);
        assert_eq!(
            (s.state(), s.error()),
            (State::Closed, Some(ConnError::Unreachable)),
            "{hard:?}"
        );
    }

    let mut e = tcb_established();
    e.send(b"abc").unwrap();
    drain(&mut e, ms(0));
    e.on_icmp_error(ms(0), IcmpError::PortUnreachable, LOCAL_SEQ + 1);
    assert_eq!(e.state(), State::Established);
    assert_eq!(e.soft_error(), Some(IcmpError::PortUnreachable));
}

/// Time exceeded answering the SYN: EHOSTUNREACH (as Linux); once established, soft.
#[test]
fn icmp_time_exceeded_aborts_syn_sent_and_is_soft_later() {
    let mut s = tcb_syn_sent();
    s.on_icmp_error(ms(0), IcmpError::TimeExceeded, LOCAL_SEQ);
    assert_eq!(
        (s.state(), s.error()),
        (State::Closed, Some(ConnError::Unreachable))
    );
    let mut e = tcb_established();
    e.send(b"abc").unwrap();
    drain(&mut e, ms(0));
    e.on_icmp_error(ms(0), IcmpError::TimeExceeded, LOCAL_SEQ + 1);
    assert_eq!(e.state(), State::Established);
    assert_eq!(e.soft_error(), Some(IcmpError::TimeExceeded));
}

// ---- simultaneous open (RFC 9293 figure 8) ----

#[test]
fn simultaneous_open() {
    let mut s = tcb_syn_sent();
    // The peer's SYN crosses ours.
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.transition, Some((State::SynSent, State::SynReceived)));
    recv!(s, [syn_ack_from_us()]);
    // The peer's SYN-ACK (its answer to our SYN) is old in sequence space: ACK it.
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            ack: Some(LOCAL_SEQ + 1),
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    recv!(s, [our_ack(1, 1)]);
    assert_eq!(s.state(), State::SynReceived);
    // The peer's ACK of our SYN-ACK completes the handshake.
    send!(s, peer_ack(1, 1));
    assert_eq!(s.state(), State::Established);
    recv_nothing!(s);
}

#[test]
fn simultaneous_open_rst_refuses() {
    let mut s = tcb_syn_sent();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(MSS),
            ..*SEND_TEMPL
        }
    );
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::Refused));
}

// ---- SYN-RECEIVED (RFC 9293 3.10.7.4) ----

#[test]
fn syn_received_ack_establishes() {
    let mut s = tcb_syn_received();
    let out = send!(s, peer_ack(1, 1));
    assert_eq!(out.transition, Some((State::SynReceived, State::Established)));
}

#[test]
fn syn_received_bad_ack_gets_rst() {
    let mut s = tcb_syn_received();
    let out = send!(s, peer_ack(1, 50));
    assert_eq!(out.drop, Some(DropReason::BadAck));
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 50,
            ack: None,
            flags: RST,
            window: 0,
            ..*RECV_TEMPL
        }]
    );
    assert_eq!(s.state(), State::SynReceived);
}

#[test]
fn syn_received_rst_returns_to_listen() {
    let mut s = tcb_syn_received();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Listen);
    recv_nothing!(s);
}

#[test]
fn syn_received_inexact_rst_gets_challenge_ack() {
    let mut s = tcb_syn_received();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 5,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadRst));
    assert_eq!(s.state(), State::SynReceived);
    recv!(s, [our_ack(1, 1)]);
}

#[test]
fn syn_received_duplicate_syn_resends_syn_ack() {
    let mut s = tcb_syn_received();
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
}

#[test]
fn syn_received_new_syn_in_window_returns_to_listen() {
    let mut s = tcb_syn_received();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 10,
            flags: SYN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Listen);
}

#[test]
fn syn_received_no_ack_dropped() {
    let mut s = tcb_syn_received();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            payload: b"x",
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::Unexpected));
    assert_eq!(s.state(), State::SynReceived);
}

#[test]
fn syn_ack_retransmitted_then_back_to_listen() {
    let cfg = TcpConfig {
        max_syn_retransmissions: 1,
        ..config()
    };
    let mut s = tcb_syn_received_with(cfg);
    s.handle_timeout(ms(1000));
    recv!(s, time 1000, [syn_ack_from_us()]);
    s.handle_timeout(ms(3000));
    assert_eq!(s.state(), State::Listen);
}

#[test]
fn syn_received_close_sends_fin_after_handshake() {
    let mut s = tcb_syn_received();
    s.send(b"ab").unwrap();
    s.shutdown();
    recv_nothing!(s);
    send!(s, peer_ack(1, 1));
    assert_eq!(s.state(), State::FinWait1);
    recv!(
        s,
        [TcpRepr {
            payload: b"ab",
            flags: PSH_FIN,
            ..our_ack(1, 1)
        }]
    );
}

#[test]
fn syn_received_ack_with_data() {
    let mut s = tcb_syn_received();
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.state(), State::Established);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 3,
            ..our_ack(1, 4)
        }]
    );
}

// ---- Listener ----

#[test]
fn listener_backlog_and_accept_queue() {
    let mut l: Listener<u32> = Listener::new(config(), LOCAL_PORT, 2);
    let syn = |port: u16| TcpRepr {
        src_port: port,
        seq: REMOTE_SEQ,
        flags: SYN,
        ..*SEND_TEMPL
    };
    let mut tcbs = Vec::new();
    for h in 0..2u32 {
        match l.on_segment(ms(0), &syn(1000 + h as u16), LOCAL_SEQ, h) {
            ListenOutcome::Accepted(t) => tcbs.push(t),
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(l.half_open(), 2);
    assert!(matches!(
        l.on_segment(ms(0), &syn(2000), LOCAL_SEQ, 9),
        ListenOutcome::Dropped(ListenError::BacklogFull)
    ));
    assert_eq!(l.dropped_syns(), 1);
    // Complete the first handshake.
    let t = &mut tcbs[0];
    let syn_ack = Owned::new(&t.poll_transmit(ms(0)).unwrap());
    assert_eq!(syn_ack.repr.flags, SYN);
    let out = t.on_segment(
        ms(1),
        &TcpRepr {
            src_port: 1000,
            ..peer_ack(1, 1)
        },
    );
    let (_, after) = out.transition.unwrap();
    l.update(0, after);
    assert_eq!(l.half_open(), 1);
    assert_eq!(l.accept(), Some(0));
    assert_eq!(l.accept(), None);
    // A half-open connection that dies is forgotten; passive TCBs from a Listener
    // close instead of going back to LISTEN.
    let t = &mut tcbs[1];
    let _ = t.on_segment(
        ms(1),
        &TcpRepr {
            src_port: 1001,
            seq: REMOTE_SEQ + 1,
            flags: RST,
            ..*SEND_TEMPL
        },
    );
    assert_eq!(t.state(), State::Closed);
    l.update(1, t.state());
    assert_eq!(l.half_open(), 0);
    // ACK without a connection: RST; RST: ignored.
    assert!(matches!(
        l.on_segment(ms(0), &peer_ack(1, 1), LOCAL_SEQ, 5),
        ListenOutcome::Reset(_)
    ));
    assert!(matches!(
        l.on_segment(
            ms(0),
            &TcpRepr {
                flags: RST,
                ..*SEND_TEMPL
            },
            LOCAL_SEQ,
            5
        ),
        ListenOutcome::Ignored
    ));
}
