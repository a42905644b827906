//! ESTABLISHED: data in both directions, sequence validation, RST/SYN handling,
//! reassembly, flow control, user calls.

use super::*;
use crate::error::{ConnError, DropReason, IcmpError, RecvError, SendError};

#[test]
fn recv_data_acks_and_delivers() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            payload: b"abcdef",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, None);
    assert!(out.transmit);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 6,
            ..our_ack(1, 7)
        }]
    );
    let mut buf = [0; 4];
    assert_eq!(s.recv(&mut buf), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(s.peek(&mut buf), Ok(2));
    assert_eq!(s.recv_slice().unwrap(), b"ef");
    s.consume(2);
    assert_eq!(s.recv(&mut buf), Ok(0));
    assert_eq!(s.counters().bytes_in, 6);
}

#[test]
fn send_data_and_ack() {
    let mut s = tcb_established();
    assert_eq!(s.send(b"hello"), Ok(5));
    recv!(
        s,
        [TcpRepr {
            payload: b"hello",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    assert_eq!(s.send_queue(), 5);
    send!(s, time 50, peer_ack(1, 6));
    assert_eq!(s.send_queue(), 0);
    // The handshake gave a 0 ms sample; 7/8 * 0 + 1/8 * 50 ms.
    assert_eq!(s.srtt(), Some(Duration::from_micros(6250)));
    assert_eq!(s.poll_at(), None);
}

#[test]
fn send_segments_by_mss() {
    let mut s = tcb_established();
    let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
    s.send(&data).unwrap();
    // Initial window: min(4*MSS, max(2*MSS, 4380)) = 400 bytes; all 250 fit.
    recv!(
        s,
        [
            TcpRepr {
                payload: &data[..100],
                ..our_ack(1, 1)
            },
            TcpRepr {
                payload: &data[100..200],
                ..our_ack(101, 1)
            },
            TcpRepr {
                payload: &data[200..],
                flags: PSH,
                ..our_ack(201, 1)
            },
        ]
    );
}

#[test]
fn send_buffer_full_returns_zero() {
    let mut s = tcb_established();
    assert_eq!(s.send(&[0; 1500]), Ok(1000));
    assert_eq!(s.send(b"x"), Ok(0));
    assert!(!s.can_send());
    assert!(s.may_send());
}

#[test]
fn out_of_window_segment_gets_ack() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            payload: b"xyz",
            ..peer_ack(1 + RX_BUF, 1)
        }
    );
    assert_eq!(out.drop, Some(DropReason::OutOfWindow));
    recv!(s, [our_ack(1, 1)]);
    assert_eq!(s.counters().out_of_window, 1);
    // Old, entirely duplicate data: also ACKed, not delivered.
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    let out = send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, Some(DropReason::OutOfWindow));
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 3,
            ..our_ack(1, 4)
        }]
    );
    assert_eq!(s.recv_queue(), 3);
}

#[test]
fn overlapping_segment_is_trimmed() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    send!(
        s,
        TcpRepr {
            payload: b"bcdef",
            ..peer_ack(2, 1)
        }
    );
    let mut buf = [0; 10];
    assert_eq!(s.recv(&mut buf), Ok(6));
    assert_eq!(&buf[..6], b"abcdef");
}

#[test]
fn segment_beyond_window_is_trimmed() {
    let mut s = tcb_established();
    let big = vec![7u8; RX_BUF + 50];
    send!(
        s,
        TcpRepr {
            payload: &big,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.recv_queue(), RX_BUF);
    recv!(
        s,
        [TcpRepr {
            window: 0,
            ..our_ack(1, 1 + RX_BUF)
        }]
    );
}

#[test]
fn zero_window_still_processes_acks() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: &[1; RX_BUF],
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    // Window is zero; a segment at RCV.NXT with data is not acceptable, but its ACK is.
    let out = send!(
        s,
        TcpRepr {
            payload: b"zz",
            ..peer_ack(1 + RX_BUF, 4)
        }
    );
    assert_eq!(out.drop, None);
    assert_eq!(s.send_queue(), 0);
    recv!(
        s,
        [TcpRepr {
            window: 0,
            ..our_ack(4, 1 + RX_BUF)
        }]
    );
}

#[test]
fn rst_exact_resets() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::Reset));
    assert_eq!(s.recv(&mut [0; 4]), Err(RecvError::Connection(ConnError::Reset)));
    assert_eq!(s.send(b"x"), Err(SendError::Connection(ConnError::Reset)));
    recv_nothing!(s);
}

#[test]
fn rst_in_window_gets_challenge_ack() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 10,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadRst));
    assert_eq!(s.state(), State::Established);
    recv!(s, [our_ack(1, 1)]);
    assert_eq!(s.counters().challenge_acks, 1);
}

#[test]
fn rst_out_of_window_ignored() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 5000,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::OutOfWindow));
    assert_eq!(s.state(), State::Established);
    recv_nothing!(s);
}

#[test]
fn syn_in_established_gets_challenge_ack() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            flags: SYN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::ChallengeAck));
    assert_eq!(s.state(), State::Established);
    recv!(s, [our_ack(1, 1)]);
}

#[test]
fn ack_of_unsent_data_gets_ack() {
    let mut s = tcb_established();
    let out = send!(s, peer_ack(1, 100));
    assert_eq!(out.drop, Some(DropReason::BadAck));
    recv!(s, [our_ack(1, 1)]);
}

#[test]
fn too_old_ack_dropped() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(1, 0usize.wrapping_sub(5000))
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadAck));
    assert_eq!(s.recv_queue(), 0);
    recv!(s, [our_ack(1, 1)]);
}

#[test]
fn segment_without_ack_dropped() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            payload: b"abc",
            ..*SEND_TEMPL
        }
    );
    assert_eq!(out.drop, Some(DropReason::Unexpected));
    assert_eq!(s.recv_queue(), 0);
    recv_nothing!(s);
}

#[test]
fn fin_moves_to_close_wait() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: b"ab",
            flags: FIN,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.state(), State::CloseWait);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 3,
            ..our_ack(1, 4)
        }]
    );
    let mut buf = [0; 8];
    assert_eq!(s.recv(&mut buf), Ok(2));
    assert_eq!(s.recv(&mut buf), Err(RecvError::Finished));
    assert!(!s.may_recv());
    assert!(s.may_send());
}

#[test]
fn out_of_order_reassembly() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            payload: b"def",
            ..peer_ack(4, 1)
        }
    );
    assert_eq!(out.drop, None);
    // Immediate duplicate ACK.
    recv!(s, [our_ack(1, 1)]);
    assert_eq!(s.recv_queue(), 0);
    send!(
        s,
        TcpRepr {
            payload: b"ghi",
            flags: FIN,
            ..peer_ack(7, 1)
        }
    );
    recv!(s, [our_ack(1, 1)]);
    assert_eq!(s.state(), State::Established);
    // Filling the hole delivers everything and the pending FIN.
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    // The right edge stays where it was (the FIN took one number of the window).
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 10,
            ..our_ack(1, 11)
        }]
    );
    assert_eq!(s.state(), State::CloseWait);
    let mut buf = [0; 16];
    assert_eq!(s.recv(&mut buf), Ok(9));
    assert_eq!(&buf[..9], b"abcdefghi");
    assert_eq!(s.counters().ooo_segments, 2);
}

#[test]
fn reassembly_is_bounded() {
    let cfg = TcpConfig {
        max_ooo_bytes: 10,
        ..config()
    };
    let mut s = tcb_established_with(cfg);
    send!(
        s,
        TcpRepr {
            payload: b"0123456789",
            ..peer_ack(11, 1)
        }
    );
    let out = send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(31, 1)
        }
    );
    assert_eq!(out.drop, Some(DropReason::ReassemblyFull));
    assert_eq!(s.counters().ooo_dropped, 1);
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            payload: b"abcdefghij",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.recv_queue(), 20);
    // The bound counts bytes held, so after the hole is filled there is room again.
    let out = send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(31, 1)
        }
    );
    assert_eq!(out.drop, None);
}

#[test]
fn window_shrinks_and_update_after_read() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: &[1; 900],
            ..peer_ack(1, 1)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: 100,
            ..our_ack(1, 901)
        }]
    );
    // Reading a little does not announce a tiny window (receiver SWS avoidance).
    let mut buf = [0; 1000];
    assert_eq!(s.recv(&mut buf[..50]), Ok(50));
    recv_nothing!(s);
    // Reading enough to open it by 2 MSS sends a window update.
    assert_eq!(s.recv(&mut buf[..250]), Ok(250));
    recv!(
        s,
        [TcpRepr {
            window: 400,
            ..our_ack(1, 901)
        }]
    );
}

#[test]
fn receiver_sws_keeps_right_edge() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: &[1; 960],
            ..peer_ack(1, 1)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: 40,
            ..our_ack(1, 961)
        }]
    );
    let mut buf = [0; 1000];
    // 30 bytes read: less than min(buffer/2, MSS) = 100, so the right edge stays.
    s.recv(&mut buf[..30]).unwrap();
    send!(
        s,
        TcpRepr {
            payload: &[2; 10],
            ..peer_ack(961, 1)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: 30,
            ..our_ack(1, 971)
        }]
    );
}

#[test]
fn abort_sends_rst() {
    let mut s = tcb_established();
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    s.abort();
    assert_eq!(s.state(), State::Closed);
    assert!(!s.is_closed(), "the RST is still to be sent");
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 4,
            flags: RST,
            window: 0,
            ack: None,
            ..*RECV_TEMPL
        }]
    );
    assert!(s.is_closed());
    assert_eq!(s.error(), Some(ConnError::Aborted));
}

#[test]
fn close_with_unread_data_resets() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    s.close();
    assert_eq!(s.state(), State::Closed);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 1,
            flags: RST,
            window: 0,
            ack: None,
            ..*RECV_TEMPL
        }]
    );
}

#[test]
fn data_after_close_resets() {
    let mut s = tcb_established();
    s.close();
    drain(&mut s, ms(0));
    assert_eq!(s.state(), State::FinWait1);
    send!(
        s,
        TcpRepr {
            payload: b"late",
            ..peer_ack(1, 2)
        }
    );
    assert_eq!(s.state(), State::Closed);
    recv!(
        s,
        [TcpRepr {
            seq: LOCAL_SEQ + 2,
            flags: RST,
            window: 0,
            ack: None,
            ..*RECV_TEMPL
        }]
    );
}

#[test]
fn send_after_shutdown_fails() {
    let mut s = tcb_established();
    s.shutdown();
    assert_eq!(s.send(b"x"), Err(SendError::Closing));
    assert!(!s.may_send());
}

#[test]
fn icmp_frag_needed_lowers_mss() {
    let cfg = TcpConfig {
        mss: 1460,
        recv_buffer: 4000,
        send_buffer: 4000,
        ..config()
    };
    let mut s = tcb_listen_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: mss_opt(1460),
            window: 8000,
            ..*SEND_TEMPL
        }
    );
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            window: 8000,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.mss(), 1460);
    s.send(&[0; 1460]).unwrap();
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].payload.len(), 1460);
    s.on_icmp_error(ms(1), IcmpError::FragmentationNeeded { mtu: 1000 }, LOCAL_SEQ + 1);
    assert_eq!(s.mss(), 960);
    // Resent at once in the smaller size.
    let out = drain(&mut s, ms(1));
    assert_eq!(out[0].payload.len(), 960);
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 1);
    // A quoted sequence number outside SND.UNA..SND.NXT is not ours: ignored
    // (RFC 5927 4.1).
    s.on_icmp_error(
        ms(1),
        IcmpError::FragmentationNeeded { mtu: 600 },
        LOCAL_SEQ + 100_000,
    );
    assert_eq!(s.mss(), 960);
    // MTUs below the floor (min_pmtu, 552) are raised to it: a forged 68 gives 512-byte
    // segments, not 28- or 88-byte ones.
    s.on_icmp_error(ms(1), IcmpError::FragmentationNeeded { mtu: 68 }, LOCAL_SEQ + 1);
    assert_eq!(s.mss(), 512);
    assert_eq!(s.counters().pmtu_below_floor, 1);
    let out = drain(&mut s, ms(1));
    assert!(out.iter().all(|o| o.payload.len() <= 512));
}

#[test]
fn the_pmtu_floor_is_configurable() {
    let mut s = tcb_established();
    s.cfg.modify(|c| c.min_pmtu = 128);
    s.on_icmp_error(ms(1), IcmpError::FragmentationNeeded { mtu: 100 }, LOCAL_SEQ + 1);
    assert_eq!(s.mss(), 88, "raised to 128 - 40, then to MIN_MSS");
}

#[test]
fn wrong_port_ignored() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            src_port: 1,
            payload: b"x",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, Some(DropReason::WrongPort));
    recv_nothing!(s);
}

#[test]
fn sequence_numbers_wrap() {
    // REMOTE_SEQ is 10001 below 2^32: 20000 bytes cross the wrap.
    let cfg = TcpConfig {
        recv_buffer: 4000,
        ..config()
    };
    let mut s = tcb_established_with(cfg);
    let mut buf = [0; 4000];
    let mut total = 0;
    for i in 0..200usize {
        let data = [i as u8; 100];
        let out = send!(
            s,
            TcpRepr {
                payload: &data,
                ..peer_ack(1 + 100 * i, 1)
            }
        );
        assert_eq!(out.drop, None, "segment {i}");
        drain(&mut s, ms(0));
        total += s.recv(&mut buf).unwrap();
    }
    assert_eq!(total, 20_000);
    assert_eq!(s.rcv_nxt(), REMOTE_SEQ + 20_001);
}

#[test]
fn zero_window_still_processes_rst() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            payload: &[1; RX_BUF],
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1 + RX_BUF,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.error(), Some(ConnError::Reset));
}

#[test]
fn robust_against_shrinking_window() {
    let mut s = tcb_established();
    s.send(&[5; 300]).unwrap();
    assert_eq!(drain(&mut s, ms(0)).len(), 3);
    // The peer shrinks its window below what is in flight.
    send!(
        s,
        TcpRepr {
            window: 50,
            ..peer_ack(1, 101)
        }
    );
    recv_nothing!(s);
    send!(
        s,
        TcpRepr {
            window: 1000,
            ..peer_ack(1, 301)
        }
    );
    assert_eq!(s.send_queue(), 0);
}

#[test]
fn icmp_soft_errors_never_abort() {
    let mut s = tcb_established();
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    for e in [
        IcmpError::NetUnreachable,
        IcmpError::HostUnreachable,
        IcmpError::TimeExceeded,
        IcmpError::ParameterProblem,
        IcmpError::SourceQuench,
    ] {
        s.on_icmp_error(ms(0), e, LOCAL_SEQ + 1);
        assert_eq!(s.state(), State::Established);
    }
    assert_eq!(s.soft_error(), Some(IcmpError::ParameterProblem));
}

#[test]
fn only_syn_segments_carry_mss() {
    let mut s = tcb_established();
    s.send(&[1; 250]).unwrap();
    send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(1, 1)
        }
    );
    for seg in drain(&mut s, ms(0)) {
        assert_eq!(seg.repr.options, TcpOptions::default());
    }
}
