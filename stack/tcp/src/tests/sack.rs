//! SACK (RFC 2018, RFC 2883), SACK-based recovery (RFC 6675) with PRR (RFC 6937),
//! limited transmit (RFC 3042) and RACK-TLP (RFC 8985).

use super::options::{tcb_established_ts, ts, PEER_TS};
use super::*;
use sluice_wire::tcp::SackBlocks;

fn sack_config() -> TcpConfig {
    TcpConfig {
        sack: true,
        rack_tlp: true,
        send_buffer: 2000,
        rto_min: Duration::from_secs(1),
        ..config()
    }
}

/// ESTABLISHED with SACK (no timestamps, so the MSS stays 100) and 1000 bytes queued,
/// of which the initial window (400 bytes) was sent at time 0.
fn sending() -> (Tcb, Vec<u8>) {
    sending_with(sack_config())
}

/// As `sending`, without RACK-TLP (pure RFC 6675 loss detection).
fn sending_no_rack() -> (Tcb, Vec<u8>) {
    sending_with(TcpConfig {
        rack_tlp: false,
        ..sack_config()
    })
}

fn sending_with(cfg: TcpConfig) -> (Tcb, Vec<u8>) {
    let mut s = tcb_listen_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: TcpOptions {
                mss: Some(MSS),
                sack_permitted: true,
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    let out = drain(&mut s, ms(0));
    assert!(out[0].repr.options.sack_permitted);
    send!(s, peer_ack(1, 1));
    assert!(s.sack_mode());
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
    s.send(&data).unwrap();
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 4);
    (s, data)
}

fn sacks(blocks: &[(usize, usize)]) -> TcpOptions {
    let mut sack = SackBlocks::default();
    for &(l, r) in blocks {
        sack.push(LOCAL_SEQ + l, LOCAL_SEQ + r);
    }
    TcpOptions {
        sack,
        ..TcpOptions::default()
    }
}

fn sack_ack(ack: usize, blocks: &[(usize, usize)]) -> TcpRepr<'static> {
    TcpRepr {
        options: sacks(blocks),
        ..peer_ack(1, ack)
    }
}

// ---- receiver: blocks ----

#[test]
fn sack_blocks_most_recent_first_three_with_timestamps() {
    let mut s = tcb_established_ts();
    for off in [11usize, 21, 31, 41] {
        send!(
            s,
            TcpRepr {
                payload: b"zz",
                options: ts(PEER_TS + 2, 0),
                ..peer_ack(off, 1)
            }
        );
    }
    let out = drain(&mut s, ms(0));
    let last = out.last().unwrap();
    let want: Vec<_> = [41usize, 31, 21]
        .iter()
        .map(|&o| (REMOTE_SEQ + o, REMOTE_SEQ + o + 2))
        .collect();
    assert_eq!(last.repr.options.sack.as_slice(), &want[..]);
    assert_eq!(last.repr.options.timestamp, Some((0, PEER_TS + 1)));
    // A segment joining two blocks becomes the first block.
    send!(
        s,
        TcpRepr {
            payload: &[7; 8],
            options: ts(PEER_TS + 2, 0),
            ..peer_ack(23, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(
        out[0].repr.options.sack.as_slice()[0],
        (REMOTE_SEQ + 21, REMOTE_SEQ + 33)
    );
    // Filling everything: no more blocks.
    send!(
        s,
        TcpRepr {
            payload: &[1; 42],
            options: ts(PEER_TS + 2, 0),
            ..peer_ack(1, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].repr.ack, Some(REMOTE_SEQ + 43));
    assert!(out[0].repr.options.sack.is_empty());
}

#[test]
fn four_sack_blocks_without_timestamps() {
    let (mut s, _) = sending();
    for off in [11usize, 21, 31, 41, 51] {
        send!(
            s,
            TcpRepr {
                payload: b"zz",
                ..peer_ack(off, 1)
            }
        );
    }
    let out = drain(&mut s, ms(0));
    let blocks = out.last().unwrap().repr.options.sack;
    assert_eq!(blocks.len(), 4);
    assert_eq!(blocks.as_slice()[0], (REMOTE_SEQ + 51, REMOTE_SEQ + 53));
    assert_eq!(blocks.as_slice()[3], (REMOTE_SEQ + 21, REMOTE_SEQ + 23));
}

#[test]
fn duplicate_segment_gets_a_dsack_block() {
    let mut s = tcb_established_ts();
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            options: ts(PEER_TS + 2, 0),
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            payload: b"abc",
            options: ts(PEER_TS + 3, 0),
            ..peer_ack(1, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].repr.options.sack.as_slice(),
        &[(REMOTE_SEQ + 1, REMOTE_SEQ + 4)]
    );
    assert_eq!(s.counters().dsacks_sent, 1);
    // Reported once.
    send!(
        s,
        TcpRepr {
            payload: b"d",
            options: ts(PEER_TS + 3, 0),
            ..peer_ack(4, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert!(out.iter().all(|o| o.repr.options.sack.is_empty()));
}

/// RFC 2883 section 4: a segment repeating part of a range held out of order gets a D-SACK
/// block for the repeated bytes, then the block that contains them, then the others.
#[test]
fn repeat_of_held_out_of_order_data_gets_dsack_then_its_block() {
    let (mut s, _) = sending();
    for off in [21usize, 41, 61] {
        send!(
            s,
            TcpRepr {
                payload: b"zz",
                ..peer_ack(off, 1)
            }
        );
    }
    drain(&mut s, ms(0));
    // 62:63 repeats the second half of 61:63.
    send!(
        s,
        TcpRepr {
            payload: b"z",
            ..peer_ack(62, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    let r = REMOTE_SEQ;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr.ack, Some(r + 1));
    assert_eq!(
        out[0].repr.options.sack.as_slice(),
        &[
            (r + 62, r + 63),
            (r + 61, r + 63),
            (r + 41, r + 43),
            (r + 21, r + 23)
        ]
    );
    // A segment that repeats a held range and adds bytes after it: the repeated part.
    send!(
        s,
        TcpRepr {
            payload: b"zzzz",
            ..peer_ack(41, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(
        out[0].repr.options.sack.as_slice(),
        &[
            (r + 41, r + 43),
            (r + 41, r + 45),
            (r + 61, r + 63),
            (r + 21, r + 23)
        ]
    );
    // A new out-of-order segment that repeats nothing: no D-SACK block.
    send!(
        s,
        TcpRepr {
            payload: b"z",
            ..peer_ack(81, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].repr.options.sack.as_slice()[0], (r + 81, r + 82));
    assert_eq!(s.counters().dsacks_sent, 2);
}

/// RFC 2883 section 4: a segment straddling RCV.NXT (its start already acknowledged) gets
/// a D-SACK block for the old part, with the ACK of the whole.
#[test]
fn segment_straddling_rcv_nxt_gets_dsack_for_its_old_part() {
    let mut s = tcb_established_ts();
    send!(
        s,
        TcpRepr {
            payload: b"0123456789",
            options: ts(PEER_TS + 2, 0),
            ..peer_ack(1, 1)
        }
    );
    drain(&mut s, ms(0));
    let data = [b'x'; 20];
    send!(
        s,
        TcpRepr {
            payload: &data,
            options: ts(PEER_TS + 3, 0),
            ..peer_ack(1, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr.ack, Some(REMOTE_SEQ + 21));
    assert_eq!(
        out[0].repr.options.sack.as_slice(),
        &[(REMOTE_SEQ + 1, REMOTE_SEQ + 11)]
    );
}

// ---- sender: RFC 6675 + PRR + limited transmit ----

#[test]
fn sack_recovery_retransmits_only_the_hole() {
    let (mut s, data) = sending_no_rack();
    // Segment 1..101 is lost; the next ones arrive and are SACKed.
    send!(s, time 10, sack_ack(1, &[(101, 201)]));
    // Limited transmit (RFC 3042): one new segment per SACKed one.
    recv!(s, time 10, [TcpRepr { payload: &data[400..500], ..our_ack(401, 1) }]);
    send!(s, time 10, sack_ack(1, &[(101, 301)]));
    recv!(s, time 10, [TcpRepr { payload: &data[500..600], ..our_ack(501, 1) }]);
    assert_eq!(s.counters().sack_recoveries, 0);
    // Third duplicate ACK: recovery. ssthresh = FlightSize / 2 = 300; PRR lets exactly
    // the hole out, not the SACKed data after it (no go-back-N).
    send!(s, time 10, sack_ack(1, &[(101, 401)]));
    assert_eq!(s.counters().sack_recoveries, 1);
    assert_eq!(s.ssthresh(), 300);
    recv!(s, time 10, [TcpRepr { payload: &data[..100], ..our_ack(1, 1) }]);
    // Another segment SACKed: PRR allows one more, which is new data (rule 2).
    send!(s, time 20, sack_ack(1, &[(101, 501)]));
    recv!(s, time 20, [TcpRepr { payload: &data[600..700], ..our_ack(601, 1) }]);
    // The retransmission arrives: everything up to the recovery point is acknowledged.
    send!(s, time 30, peer_ack(1, 601));
    assert!(!s.recovering);
    assert_eq!(s.cwnd(), 300);
    assert_eq!(s.counters().retransmits, 1);
    assert_eq!(s.counters().rto_expirations, 0);
}

#[test]
fn dsack_is_counted_not_taken_as_loss() {
    let (mut s, _) = sending_no_rack();
    send!(s, time 10, peer_ack(1, 101));
    drain(&mut s, ms(10));
    for _ in 0..4 {
        // "1..101 arrived twice": a D-SACK below the cumulative ACK.
        send!(s, time 10, sack_ack(101, &[(1, 101)]));
    }
    assert_eq!(s.counters().dsacks_received, 4);
    assert_eq!(s.counters().dup_acks, 0);
    assert_eq!(s.counters().sack_recoveries, 0);
    assert!(s.sb.is_empty());
    // D-SACK inside the second block (RFC 2883 section 4.2 case).
    send!(s, time 10, sack_ack(101, &[(201, 251), (201, 301)]));
    assert_eq!(s.counters().dsacks_received, 5);
    assert_eq!(s.sb.sacked(), 100);
}

#[test]
fn sack_blocks_outside_the_window_or_reversed_are_ignored() {
    let (mut s, _) = sending_no_rack();
    let bad: [&[(usize, usize)]; 4] = [
        &[(201, 101)],         // reversed
        &[(301, 501)],         // beyond SND.MAX
        &[(60_000, 60_100)],   // far outside
        &[(101, 101), (5, 2)], // empty, reversed
    ];
    for blocks in bad {
        let out = send!(s, time 10, sack_ack(1, blocks));
        assert_eq!(out.drop, None);
    }
    assert!(s.sb.is_empty());
    assert_eq!(s.counters().sack_blocks_ignored, 5);
    assert_eq!(s.counters().dup_acks, 0, "nothing new was SACKed");
    recv_nothing!(s, time 10);
}

#[test]
fn rack_marks_loss_before_three_dup_acks() {
    let mut s = sending().0;
    // Everything sent at t=0; a SACK of the last segment at t=50 shows that the
    // earlier ones, sent at the same time, should have arrived: after one RTT plus the
    // reordering window they are lost, with a single duplicate ACK.
    send!(s, time 50, sack_ack(1, &[(301, 401)]));
    assert_eq!(s.counters().dup_acks, 1);
    assert_eq!(s.counters().sack_recoveries, 1, "RACK started recovery");
    let out = drain(&mut s, ms(50));
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 1);
}

#[test]
fn tail_loss_probe_sends_new_data_then_last_segment() {
    let (mut s, data) = sending();
    let pto = s.poll_at().unwrap();
    assert!(pto < ms(1000), "the PTO ({pto:?}) comes before the RTO");
    s.handle_timeout(pto);
    assert_eq!(s.counters().tlp_probes, 1);
    // New data goes out as the probe, beyond cwnd.
    let out = drain(&mut s, pto);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, &data[400..500]);
    // One probe per flight: next is the RTO.
    assert!(s.timers.tlp.is_none());
    let rto = s.poll_at().unwrap();
    s.handle_timeout(rto);
    assert_eq!(s.counters().tlp_probes, 1);
    assert_eq!(s.counters().rto_expirations, 1);
}

#[test]
fn tail_loss_probe_retransmits_last_segment_without_new_data() {
    let mut s = tcb_listen_with(sack_config());
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: TcpOptions {
                mss: Some(MSS),
                sack_permitted: true,
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    drain(&mut s, ms(0));
    send!(s, peer_ack(1, 1));
    s.send(&[9; 250]).unwrap();
    drain(&mut s, ms(0));
    let pto = s.timers.tlp.unwrap();
    s.handle_timeout(pto);
    let out = drain(&mut s, pto);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 151);
    assert_eq!(out[0].payload.len(), 100);
    // Its SACK reveals the holes; RACK declares them lost, recovery resends them.
    send!(s, time 100, sack_ack(1, &[(151, 251)]));
    assert_eq!(s.counters().sack_recoveries, 1);
    let out = drain(&mut s, ms(100));
    assert_eq!(out[0].repr.seq, LOCAL_SEQ + 1);
}
