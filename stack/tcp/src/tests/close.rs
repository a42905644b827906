//! FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT; simultaneous close.

use super::*;
use crate::error::{ConnError, DropReason, RecvError};

fn fin_from_peer(seq: usize, ack: usize) -> TcpRepr<'static> {
    TcpRepr {
        flags: FIN,
        ..peer_ack(seq, ack)
    }
}

/// The peer's FIN in ESTABLISHED: its ACK may wait for the application's close, whose
/// FIN carries it (one segment where there were two); asked once. Unanswered, it goes
/// alone. A FIN that ends our own close (FIN-WAIT) is answered at once.
#[test]
fn the_ack_of_a_fin_may_wait_for_the_applications_fin() {
    let mut s = tcb_established();
    send!(s, fin_from_peer(1, 1));
    assert_eq!(s.state(), State::CloseWait);
    assert!(s.take_ack_for_app());
    assert!(!s.take_ack_for_app(), "asked once");
    s.shutdown();
    assert_eq!(s.state(), State::LastAck);
    recv!(
        s,
        [TcpRepr {
            flags: FIN,
            window: RX_BUF as u16 - 1,
            ..our_ack(1, 2)
        }]
    );
    // Not closed: the ACK goes alone.
    let mut s = tcb_established();
    send!(s, fin_from_peer(1, 1));
    assert!(s.take_ack_for_app());
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 1,
            ..our_ack(1, 2)
        }]
    );
    // Our FIN first: the peer's ends the connection, nothing to wait for.
    let mut s = tcb_fin_wait_1();
    send!(s, fin_from_peer(1, 2));
    assert_eq!(s.state(), State::TimeWait);
    assert!(!s.take_ack_for_app());
    let mut s = tcb_fin_wait_2();
    send!(s, fin_from_peer(1, 2));
    assert!(!s.take_ack_for_app());
}

// ---- FIN-WAIT-1 ----

#[test]
fn fin_wait_1_ack_of_fin_to_fin_wait_2() {
    let s = tcb_fin_wait_2();
    assert_eq!(s.poll_at(), None, "no FIN-WAIT-2 timer without close()");
}

#[test]
fn fin_wait_1_fin_ack_to_time_wait() {
    let mut s = tcb_fin_wait_1();
    send!(s, fin_from_peer(1, 2));
    assert_eq!(s.state(), State::TimeWait);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 1,
            ..our_ack(2, 2)
        }]
    );
}

#[test]
fn fin_wait_1_fin_without_ack_to_closing() {
    let s = tcb_closing();
    assert_eq!(s.state(), State::Closing);
}

#[test]
fn fin_wait_1_receives_data() {
    let mut s = tcb_fin_wait_1();
    send!(
        s,
        TcpRepr {
            payload: b"more",
            ..peer_ack(1, 1)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 4,
            ..our_ack(2, 5)
        }]
    );
    assert_eq!(s.recv(&mut [0; 8]), Ok(4));
    assert_eq!(s.state(), State::FinWait1);
}

#[test]
fn fin_wait_1_rst_resets() {
    let mut s = tcb_fin_wait_1();
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
}

#[test]
fn fin_wait_1_retransmits_fin() {
    let mut s = tcb_fin_wait_1();
    // The handshake measured 0 ms, so the RTO is at its 200 ms floor.
    assert_eq!(s.poll_at(), Some(ms(200)));
    s.handle_timeout(ms(200));
    recv!(s, time 200, [TcpRepr { flags: FIN, ..our_ack(1, 1) }]);
    assert_eq!(s.poll_at(), Some(ms(600)));
}

/// Queues "abc" and closes: one segment carries both, and the TCB is in FIN-WAIT-1.
fn send_abc_and_fin(s: &mut Tcb) {
    s.send(b"abc").unwrap();
    s.shutdown();
    recv!(
        *s,
        [TcpRepr {
            payload: b"abc",
            flags: PSH_FIN,
            ..our_ack(1, 1)
        }]
    );
}

#[test]
fn fin_follows_queued_data() {
    let mut s = tcb_established();
    send_abc_and_fin(&mut s);
    // Acking only the data keeps FIN-WAIT-1.
    send!(s, peer_ack(1, 4));
    assert_eq!(s.state(), State::FinWait1);
    send!(s, peer_ack(1, 5));
    assert_eq!(s.state(), State::FinWait2);
}

/// A connection in TIME-WAIT holds neither buffer memory nor a send log: they go to the
/// thread's caches for the next connection (a client closing first holds thousands).
#[test]
fn time_wait_gives_its_send_log_and_buffers_back() {
    use crate::rack::LOGS;
    use crate::recycle::kept;
    let mut s = tcb_established();
    s.sack_ok = true; // (the log is kept for SACK recovery)
    s.set_nodelay(true);
    // Two flights at two times: the older entry goes out of line, into the log.
    s.send(b"ab").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"ab",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    s.send(b"c").unwrap();
    s.shutdown();
    recv!(s, time 1, [TcpRepr { payload: b"c", flags: PSH_FIN, ..our_ack(3, 1) }]);
    assert!(
        s.rack.log.is_taken() && s.rack.sent_at(LOCAL_SEQ + 2).is_some(),
        "logged"
    );
    send!(s, peer_ack(1, 5));
    assert_eq!(kept(&LOGS), 0, "FIN-WAIT-2 keeps it");
    send!(s, fin_from_peer(1, 5));
    assert_eq!(s.state(), State::TimeWait);
    assert_eq!(kept(&LOGS), 1, "given back in TIME-WAIT");
    assert!(!s.rack.log.is_taken() && s.rack.sent_at(LOCAL_SEQ + 2).is_none());
    assert_eq!(s.tx.allocated(), 0);
    assert_eq!(s.rx.allocated(), 0);
    drop(s);
    assert_eq!(kept(&LOGS), 1, "once");
}

// ---- FIN-WAIT-2 ----

#[test]
fn fin_wait_2_fin_to_time_wait() {
    let s = tcb_time_wait();
    assert_eq!(s.poll_at(), Some(ms(2000)));
}

#[test]
fn fin_wait_2_receives_data() {
    let mut s = tcb_fin_wait_2();
    send!(
        s,
        TcpRepr {
            payload: b"data",
            ..peer_ack(1, 2)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 4,
            ..our_ack(2, 5)
        }]
    );
    send!(s, fin_from_peer(5, 2));
    assert_eq!(s.state(), State::TimeWait);
    let mut buf = [0; 8];
    assert_eq!(s.recv(&mut buf), Ok(4));
    assert_eq!(s.recv(&mut buf), Err(RecvError::Finished));
}

#[test]
fn fin_wait_2_rst_resets() {
    let mut s = tcb_fin_wait_2();
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
}

// ---- CLOSE-WAIT ----

#[test]
fn close_wait_can_still_send() {
    let mut s = tcb_close_wait();
    s.send(b"reply").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"reply",
            flags: PSH,
            window: RX_BUF as u16 - 1,
            ..our_ack(1, 2)
        }]
    );
}

#[test]
fn close_wait_close_to_last_ack() {
    let s = tcb_last_ack();
    assert_eq!(s.state(), State::LastAck);
}

#[test]
fn close_wait_rst_resets() {
    let mut s = tcb_close_wait();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::Reset));
}

#[test]
fn close_wait_ignores_data() {
    let mut s = tcb_close_wait();
    let _ = send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(2, 1)
        }
    );
    assert_eq!(s.recv_queue(), 0);
}

// ---- CLOSING ----

#[test]
fn closing_ack_to_time_wait() {
    let mut s = tcb_closing();
    send!(s, peer_ack(2, 2));
    assert_eq!(s.state(), State::TimeWait);
    recv_nothing!(s);
}

#[test]
fn closing_rst_closes_with_reset_error() {
    let mut s = tcb_closing();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    // Our FIN was never acknowledged: a reset, not a clean close (ECONNRESET).
    assert_eq!(s.error(), Some(ConnError::Reset));
}

#[test]
fn closing_retransmits_fin() {
    let mut s = tcb_closing();
    s.handle_timeout(ms(1000));
    recv!(s, time 1000, [TcpRepr { flags: FIN, window: RX_BUF as u16 - 1, ..our_ack(1, 2) }]);
}

// ---- LAST-ACK ----

#[test]
fn last_ack_ack_closes() {
    let mut s = tcb_last_ack();
    let out = send!(s, peer_ack(2, 2));
    assert_eq!(out.transition, Some((State::LastAck, State::Closed)));
    assert!(s.is_closed());
    assert_eq!(s.error(), None);
    recv_nothing!(s);
}

#[test]
fn last_ack_retransmits_fin() {
    let mut s = tcb_last_ack();
    s.handle_timeout(ms(1000));
    recv!(s, time 1000, [TcpRepr { flags: FIN, window: RX_BUF as u16 - 1, ..our_ack(1, 2) }]);
}

#[test]
fn last_ack_rst_closes_with_reset_error() {
    let mut s = tcb_last_ack();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::Reset));
}

#[test]
fn last_ack_times_out() {
    let cfg = TcpConfig {
        max_retransmissions: 2,
        ..config()
    };
    let mut s = tcb_established_with(cfg);
    send!(s, fin_from_peer(1, 1));
    s.shutdown();
    drain(&mut s, ms(0));
    s.handle_timeout(ms(1000));
    s.handle_timeout(ms(3000));
    assert_eq!(s.state(), State::LastAck);
    s.handle_timeout(ms(7000));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
}

// ---- TIME-WAIT ----

#[test]
fn time_wait_expires_after_2msl() {
    let mut s = tcb_time_wait();
    s.handle_timeout(ms(1999));
    assert_eq!(s.state(), State::TimeWait);
    s.handle_timeout(ms(2000));
    assert_eq!(s.state(), State::Closed);
    assert!(s.is_closed());
    assert_eq!(s.error(), None);
}

#[test]
fn time_wait_acks_retransmitted_fin_and_restarts() {
    let mut s = tcb_time_wait();
    let out = send!(s, time 1500, fin_from_peer(1, 2));
    assert_eq!(out.drop, Some(DropReason::OutOfWindow));
    recv!(s, time 1500, [TcpRepr { window: RX_BUF as u16 - 1, ..our_ack(2, 2) }]);
    assert_eq!(s.poll_at(), Some(ms(3500)));
    assert_eq!(s.state(), State::TimeWait);
}

#[test]
fn time_wait_rst_closes() {
    let mut s = tcb_time_wait();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), None);
}

#[test]
fn time_wait_syn_gets_challenge_ack() {
    let mut s = tcb_time_wait();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: SYN,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::TimeWait);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 1,
            ..our_ack(2, 2)
        }]
    );
}

// ---- simultaneous close (RFC 9293 figure 13) ----

#[test]
fn simultaneous_close() {
    let mut s = tcb_established();
    s.shutdown();
    recv!(
        s,
        [TcpRepr {
            flags: FIN,
            ..our_ack(1, 1)
        }]
    );
    // The peer's FIN crosses ours (it does not acknowledge our FIN).
    send!(s, fin_from_peer(1, 1));
    assert_eq!(s.state(), State::Closing);
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 1,
            ..our_ack(2, 2)
        }]
    );
    // Then its ACK of our FIN.
    send!(s, peer_ack(2, 2));
    assert_eq!(s.state(), State::TimeWait);
    s.handle_timeout(ms(2000));
    assert!(s.is_closed());
}

/// A reset after the peer's FIN (here in LAST-ACK, the application having shut down
/// writing without reading): everything the peer sent is still read, then the reset is
/// reported, as Linux does.
#[test]
fn reset_after_the_peers_fin_keeps_unread_data_readable() {
    let mut s = tcb_established();
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 1,
            ack: Some(LOCAL_SEQ + 1),
            flags: FIN,
            payload: b"abc",
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::CloseWait);
    s.shutdown();
    assert_eq!(s.state(), State::LastAck);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 5,
            flags: RST,
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.state(), State::Closed);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(s.recv(&mut buf), Err(RecvError::Connection(ConnError::Reset)));
}
