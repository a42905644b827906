//! RFC 7323 (window scaling, timestamps, PAWS, RTTM), RFC 5961 rate limiting, and the
//! answer to every option edge case the core can see.

use super::*;
use crate::error::DropReason;
use sluice_wire::tcp::SackBlocks;

/// Timestamps and SACK on (the fixture config has them off).
pub fn config_ts() -> TcpConfig {
    TcpConfig {
        timestamps: true,
        sack: true,
        ..config()
    }
}

/// The peer's TSval on its SYN; later segments use larger values.
pub const PEER_TS: u32 = 1000;

pub fn ts(val: u32, ecr: u32) -> TcpOptions {
    TcpOptions {
        timestamp: Some((val, ecr)),
        ..TcpOptions::default()
    }
}

/// ESTABLISHED with timestamps and SACK negotiated at time 0. The peer's last TSval is
/// PEER_TS + 1; our MSS is 100 - 12 = 88.
pub fn tcb_established_ts() -> Tcb {
    let mut s = tcb_listen_with(config_ts());
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: TcpOptions {
                mss: Some(MSS),
                sack_permitted: true,
                timestamp: Some((PEER_TS, 0)),
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    recv!(
        s,
        [TcpRepr {
            options: TcpOptions {
                mss: Some(MSS),
                sack_permitted: true,
                timestamp: Some((0, PEER_TS)),
                ..TcpOptions::default()
            },
            ..syn_ack_from_us()
        }]
    );
    send!(
        s,
        TcpRepr {
            options: ts(PEER_TS + 1, 0),
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.state(), State::Established);
    recv_nothing!(s);
    s
}

#[test]
fn timestamps_negotiated_echoed_and_mss_reduced() {
    let mut s = tcb_established_ts();
    assert!(s.ts_enabled && s.sack_ok);
    assert_eq!(s.mss(), MSS as usize - 12);
    s.send(b"hello").unwrap();
    recv!(s, time 50, [TcpRepr {
        payload: b"hello",
        flags: PSH,
        options: ts(50, PEER_TS + 1),
        ..our_ack(1, 1)
    }]);
}

#[test]
fn timestamps_and_sack_not_used_unless_peer_offers() {
    let mut s = tcb_listen_with(config_ts());
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
    send!(s, peer_ack(1, 1));
    s.send(b"x").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"x",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    assert_eq!(s.mss(), MSS as usize);
}

#[test]
fn syn_sent_offers_timestamps_and_sack() {
    let mut s = Tcb::connect(config_ts(), LOCAL_PORT, REMOTE_PORT, LOCAL_SEQ);
    let out = drain(&mut s, ms(7));
    assert_eq!(out[0].repr.options.timestamp, Some((7, 0)));
    assert!(out[0].repr.options.sack_permitted);
    // SYN-ACK with timestamps but without SACK-permitted.
    send!(s, time 20, TcpRepr {
        seq: REMOTE_SEQ,
        ack: Some(LOCAL_SEQ + 1),
        flags: SYN,
        options: TcpOptions { mss: Some(MSS), timestamp: Some((500, 7)), ..TcpOptions::default() },
        ..*SEND_TEMPL
    });
    assert_eq!(s.state(), State::Established);
    assert!(s.ts_enabled);
    assert!(!s.sack_ok);
    // RTTM from the echoed TSval: 13 ms.
    assert_eq!(s.srtt(), Some(Duration::from_millis(13)));
    recv!(s, time 20, [TcpRepr { options: ts(20, 500), ..our_ack(1, 1) }]);
}

#[test]
fn paws_drops_old_segment_with_an_ack() {
    let mut s = tcb_established_ts();
    let out = send!(s, time 10, TcpRepr {
        payload: b"old",
        options: ts(PEER_TS - 5, 0),
        ..peer_ack(1, 1)
    });
    assert_eq!(out.drop, Some(DropReason::Paws));
    assert_eq!(s.recv_queue(), 0);
    assert_eq!(s.counters().paws_drops, 1);
    recv!(s, time 10, [TcpRepr { options: ts(10, PEER_TS + 1), ..our_ack(1, 1) }]);
    // Across the 2^32 wrap the comparison is modular: a "smaller" value is newer.
    let mut s = tcb_established_ts();
    s.ts_recent = u32::MAX - 2;
    let out = send!(
        s,
        TcpRepr {
            payload: b"new",
            options: ts(3, 0),
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, None);
    assert_eq!(s.recv_queue(), 3);
}

#[test]
fn paws_ignores_rst_and_stale_ts_recent() {
    // RST is exempt from PAWS (RFC 7323 5.3 R1).
    let mut s = tcb_established_ts();
    send!(
        s,
        TcpRepr {
            flags: RST,
            options: ts(1, 0),
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.state(), State::Closed);
    // TS.Recent older than 24 days is invalid: the segment is accepted and updates it.
    let mut s = tcb_established_ts();
    let later = 25 * 24 * 3600 * 1000;
    let out = send!(s, time later, TcpRepr {
        payload: b"x",
        options: ts(5, 0),
        ..peer_ack(1, 1)
    });
    assert_eq!(out.drop, None);
    assert_eq!(s.ts_recent, 5);
}

#[test]
fn segment_without_timestamp_dropped_once_negotiated() {
    let mut s = tcb_established_ts();
    let out = send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, Some(DropReason::NoTimestamp));
    assert_eq!(s.recv_queue(), 0);
    assert_eq!(s.counters().no_timestamp_drops, 1);
    recv_nothing!(s);
}

#[test]
fn ts_recent_follows_in_order_segments_only() {
    let mut s = tcb_established_ts();
    // Out of order (SEG.SEQ > Last.ACK.sent): not taken.
    send!(
        s,
        TcpRepr {
            payload: b"zz",
            options: ts(3000, 0),
            ..peer_ack(11, 1)
        }
    );
    assert_eq!(s.ts_recent, PEER_TS + 1);
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].repr.options.timestamp, Some((0, PEER_TS + 1)));
    // In order: taken.
    send!(
        s,
        TcpRepr {
            payload: b"a",
            options: ts(2000, 0),
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.ts_recent, 2000);
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].repr.options.timestamp, Some((0, 2000)));
    // A challenge-ACKed SYN does not move TS.Recent.
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ + 2,
            flags: SYN,
            options: ts(9000, 0),
            ..*SEND_TEMPL
        }
    );
    assert_eq!(s.ts_recent, 2000);
}

#[test]
fn rttm_samples_retransmissions_too() {
    let mut s = tcb_established_ts();
    s.send(b"abc").unwrap();
    drain(&mut s, ms(1000));
    // RTO: the retransmission carries a new TSval.
    s.handle_timeout(ms(2000));
    let out = drain(&mut s, ms(2000));
    assert_eq!(out[0].repr.options.timestamp, Some((2000, PEER_TS + 1)));
    assert_eq!(s.rtt.backoff(), 1);
    // The ACK echoes the retransmission's TSval: an unambiguous 30 ms sample (Karn
    // would have discarded it) that also clears the backoff.
    send!(s, time 2030, TcpRepr { options: ts(PEER_TS + 2, 2000), ..peer_ack(1, 4) });
    let srtt = s.srtt().unwrap();
    assert!(
        srtt > Duration::ZERO && srtt < Duration::from_millis(31),
        "srtt {srtt:?}"
    );
    assert_eq!(s.rtt.backoff(), 0);
}

#[test]
fn window_scale_clamped_to_14() {
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
            window: 7,
            options: TcpOptions {
                mss: Some(MSS),
                window_scale: Some(15),
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    // The SYN's window is never scaled.
    assert_eq!(s.send_window(), 7);
    drain(&mut s, ms(0));
    send!(
        s,
        TcpRepr {
            window: 2,
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(s.send_window(), 2 << 14);
}

/// A TCB listening with `cfg` after a SYN that offers window scaling (shift 0): the TCB
/// and its SYN-ACK.
fn syn_ack_to_a_scaled_syn(cfg: TcpConfig) -> (Tcb, Vec<Owned>) {
    let mut s = tcb_listen_with(cfg);
    send!(
        s,
        TcpRepr {
            seq: REMOTE_SEQ,
            flags: SYN,
            options: TcpOptions {
                mss: Some(MSS),
                window_scale: Some(0),
                ..TcpOptions::default()
            },
            ..*SEND_TEMPL
        }
    );
    let out = drain(&mut s, ms(0));
    (s, out)
}

#[test]
fn receive_window_advertised_scaled() {
    let cfg = TcpConfig {
        recv_buffer: 4 << 20,
        window_scaling: true,
        ..config()
    };
    let (mut s, out) = syn_ack_to_a_scaled_syn(cfg);
    // 4 MiB needs shift 7 (4 MiB >> 6 = 65536 does not fit in 16 bits).
    assert_eq!(out[0].repr.options.window_scale, Some(7));
    send!(s, peer_ack(1, 1));
    send!(
        s,
        TcpRepr {
            payload: &[1; 100],
            ..peer_ack(1, 1)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out[0].repr.window as usize, ((4 << 20) - 100) >> 7);
}

// ---- option edge cases ----

#[test]
fn absurd_mss_values_are_clamped() {
    for (peer, want, want_ts) in [
        (0u16, 88usize, 76usize),
        (1, 88, 76),
        (48, 88, 76),
        (65535, 1460, 1448),
    ] {
        for with_ts in [false, true] {
            let cfg = TcpConfig {
                mss: 1460,
                recv_buffer: 4000,
                ..config_ts()
            };
            let mut s = tcb_listen_with(cfg);
            send!(
                s,
                TcpRepr {
                    seq: REMOTE_SEQ,
                    flags: SYN,
                    options: TcpOptions {
                        mss: Some(peer),
                        timestamp: with_ts.then_some((1, 0)),
                        ..TcpOptions::default()
                    },
                    ..*SEND_TEMPL
                }
            );
            let want = if with_ts { want_ts } else { want };
            assert_eq!(s.mss(), want, "peer MSS {peer}, timestamps {with_ts}");
        }
    }
}

#[test]
fn urgent_pointer_is_ignored() {
    let mut s = tcb_established();
    let out = send!(
        s,
        TcpRepr {
            flags: TcpFlags(TcpFlags::URG),
            urgent: 2,
            payload: b"abcd",
            ..peer_ack(1, 1)
        }
    );
    assert_eq!(out.drop, None);
    // All four bytes are delivered inline, in order; the ACK is an ordinary one.
    let mut buf = [0; 8];
    assert_eq!(s.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"abcd");
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 4,
            ..our_ack(1, 5)
        }]
    );
    // An urgent pointer far beyond the data changes nothing either.
    let out = send!(
        s,
        TcpRepr {
            flags: TcpFlags(TcpFlags::URG),
            urgent: 65535,
            payload: b"e",
            ..peer_ack(5, 1)
        }
    );
    assert_eq!(out.drop, None);
    assert_eq!(s.recv_queue(), 1);
}

#[test]
fn more_than_four_sack_blocks_cannot_be_represented() {
    let mut b = SackBlocks::default();
    for i in 0..4u32 {
        assert!(b.push(SeqNumber(i * 10), SeqNumber(i * 10 + 5)));
    }
    assert!(
        !b.push(SeqNumber(100), SeqNumber(105)),
        "a fifth block is refused"
    );
    assert_eq!(b.len(), 4);
}

// ---- RFC 5961 ----

#[test]
fn challenge_acks_are_rate_limited() {
    let mut s = tcb_established_with(TcpConfig {
        challenge_ack_limit: 2,
        ..config()
    });
    let bad_rst = TcpRepr {
        seq: REMOTE_SEQ + 10,
        flags: RST,
        ..*SEND_TEMPL
    };
    for _ in 0..2 {
        assert_eq!(send!(s, time 100, bad_rst).drop, Some(DropReason::BadRst));
        recv!(s, time 100, [our_ack(1, 1)]);
    }
    // The bucket is empty: dropped silently, counted.
    assert_eq!(send!(s, time 200, bad_rst).drop, Some(DropReason::BadRst));
    let syn = TcpRepr {
        seq: REMOTE_SEQ + 1,
        flags: SYN,
        ..*SEND_TEMPL
    };
    assert_eq!(send!(s, time 300, syn).drop, Some(DropReason::ChallengeAck));
    recv_nothing!(s, time 300);
    assert_eq!(s.counters().challenge_acks, 2);
    assert_eq!(s.counters().challenge_acks_suppressed, 2);
    // One second later the bucket is full again.
    assert_eq!(send!(s, time 1100, syn).drop, Some(DropReason::ChallengeAck));
    recv!(s, time 1100, [our_ack(1, 1)]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn data_with_ack_ahead_of_snd_nxt_is_dropped_with_an_ack() {
    let mut s = tcb_established();
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    let out = send!(
        s,
        TcpRepr {
            payload: b"evil",
            ..peer_ack(1, 5)
        }
    );
    assert_eq!(out.drop, Some(DropReason::BadAck));
    assert_eq!(s.recv_queue(), 0, "the data is not delivered");
    assert_eq!(s.send_queue(), 3);
    recv!(s, [our_ack(4, 1)]);
}

#[test]
fn in_window_syn_and_inexact_rst_never_reset() {
    let mut s = tcb_established_ts();
    for off in [1usize, 2, 50, 999] {
        let out = send!(
            s,
            TcpRepr {
                seq: REMOTE_SEQ + off,
                flags: RST,
                ..*SEND_TEMPL
            }
        );
        assert!(off == 1 || out.drop == Some(DropReason::BadRst));
        if off == 1 {
            // Exactly RCV.NXT: this one is a real reset.
            assert_eq!(s.state(), State::Closed);
            s = tcb_established_ts();
        }
        let out = send!(
            s,
            TcpRepr {
                seq: REMOTE_SEQ + off,
                flags: SYN,
                options: ts(PEER_TS + 5, 0),
                ..*SEND_TEMPL
            }
        );
        assert_eq!(out.drop, Some(DropReason::ChallengeAck));
        assert_eq!(s.state(), State::Established);
    }
}

/// The SYN's window is at most 65,535 bytes, unscaled: against it, a larger buffer looks
/// like a window that opened. Only a read opens it: neither the end of the handshake nor
/// the first data calls for an update of its own; the read after them does.
#[test]
fn only_a_read_sends_a_window_update_not_the_handshake_nor_the_first_data() {
    let cfg = TcpConfig {
        recv_buffer: 1 << 20,
        window_scaling: true,
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    };
    let (mut s, out) = syn_ack_to_a_scaled_syn(cfg);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr.window, u16::MAX, "the SYN-ACK's window is unscaled");
    send!(s, peer_ack(1, 1));
    assert_eq!(s.state(), State::Established);
    recv_nothing!(s);
    send!(
        s,
        TcpRepr {
            payload: b"GET",
            ..peer_ack(1, 1)
        }
    );
    recv_nothing!(s); // delayed: an answer may carry it
    let mut buf = [0; 8];
    assert_eq!(s.recv(&mut buf), Ok(3));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1, "the read opened the window: {out:?}");
    assert_eq!(out[0].repr.ack, Some(REMOTE_SEQ + 4));
    assert!(out[0].payload.is_empty());
    assert!(
        usize::from(out[0].repr.window) << 5 > 1 << 19,
        "the scaled window"
    );
    recv_nothing!(s);
}
