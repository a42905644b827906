//! Congestion control in the TCB: slow start, fast retransmit after three duplicate
//! ACKs, NewReno partial ACKs, RTO collapse.

use super::*;

/// ESTABLISHED with a big peer window and 1000 bytes queued; the initial window
/// (4 * MSS = 400 bytes) is sent.
fn sending() -> (Tcb, Vec<u8>) {
    let mut s = tcb_established_with(TcpConfig {
        rto_min: Duration::from_secs(1),
        ..config()
    });
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(s.send(&data), Ok(1000));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 4);
    assert_eq!(s.cwnd(), 400);
    (s, data)
}

fn dup_ack(s: &mut Tcb, ack: usize) {
    let _ = s.on_segment(ms(10), &peer_ack(1, ack));
}

#[test]
fn slow_start_grows_window() {
    let (mut s, _) = sending();
    send!(s, time 10, peer_ack(1, 101));
    assert_eq!(s.cwnd(), 500);
    // 300 in flight, 200 more may go.
    let out = drain(&mut s, ms(10));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 401);
}

#[test]
fn fast_retransmit_after_three_dup_acks_and_newreno_partial_ack() {
    let (mut s, data) = sending();
    // First segment acked; the second (101..201) is lost.
    send!(s, time 10, peer_ack(1, 101));
    drain(&mut s, ms(10)); // two more segments: 401..601 (snd_max = 601)
    dup_ack(&mut s, 101);
    dup_ack(&mut s, 101);
    recv_nothing!(s, time 10);
    dup_ack(&mut s, 101);
    assert_eq!(s.counters().dup_acks, 3);
    assert_eq!(s.counters().fast_retransmits, 1);
    // Fast retransmit of the first unacknowledged segment.
    recv!(s, time 10, [TcpRepr { payload: &data[100..200], ..our_ack(101, 1) }]);
    // ssthresh = max(FlightSize / 2, 2 * MSS) = 250; cwnd = ssthresh + 3 * MSS.
    assert_eq!(s.ssthresh(), 250);
    assert_eq!(s.cwnd(), 550);
    // Partial ACK (301 < recover = 601): retransmit the next hole at once.
    send!(s, time 20, peer_ack(1, 301));
    let out = drain(&mut s, ms(20));
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 301);
    assert_eq!(out[0].payload, &data[300..400]);
    // Full ACK: recovery ends, cwnd deflates to ssthresh at most.
    send!(s, time 30, peer_ack(1, 601));
    assert!(s.cwnd() <= 250, "cwnd {}", s.cwnd());
    assert_eq!(s.counters().rto_expirations, 0);
}

#[test]
fn dup_acks_with_data_or_window_change_do_not_count() {
    let (mut s, _) = sending();
    for _ in 0..3 {
        let _ = s.on_segment(
            ms(5),
            &TcpRepr {
                window: 999,
                ..peer_ack(1, 1)
            },
        );
    }
    // The first changed the window; the other two are duplicates.
    assert_eq!(s.counters().dup_acks, 2);
    for seq in 1..4 {
        let _ = s.on_segment(
            ms(5),
            &TcpRepr {
                window: 999,
                payload: b"d",
                ..peer_ack(seq, 1)
            },
        );
    }
    assert_eq!(s.counters().dup_acks, 2);
    assert_eq!(s.counters().fast_retransmits, 0);
}

#[test]
fn rto_collapses_cwnd_and_goes_back_n() {
    let (mut s, data) = sending();
    s.handle_timeout(ms(1000));
    assert_eq!(s.cwnd(), 100);
    assert_eq!(s.ssthresh(), 200);
    // One segment (the loss window) from SND.UNA.
    recv!(s, time 1000, [TcpRepr { payload: &data[..100], ..our_ack(1, 1) }]);
    send!(s, time 1100, peer_ack(1, 101));
    // Slow start again: two segments, both retransmissions of what was sent.
    let out = drain(&mut s, ms(1100));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 101);
    assert_eq!(s.counters().retransmits, 3);
}

#[test]
fn late_ack_after_rto_accepted() {
    let (mut s, _) = sending();
    s.handle_timeout(ms(1000));
    drain(&mut s, ms(1000));
    // An ACK for everything sent before the RTO (SND.NXT was rewound) is fine.
    let out = send!(s, time 1010, peer_ack(1, 401));
    assert_eq!(out.drop, None);
    assert_eq!(s.snd_una(), LOCAL_SEQ + 401);
}
