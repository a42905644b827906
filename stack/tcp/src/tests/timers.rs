//! Retransmission timeout (RFC 6298), Karn, persist, Nagle, delayed ACK, keepalive,
//! user timeout.

use super::*;
use crate::config::Keepalive;
use crate::error::ConnError;

/// ESTABLISHED with a 1 s RTO floor, so timer values are round numbers.
fn tcb_rto_1s(cfg: TcpConfig) -> Tcb {
    tcb_established_with(TcpConfig {
        rto_min: Duration::from_secs(1),
        ..cfg
    })
}

#[test]
fn rto_backoff_doubles_up_to_max() {
    let mut s = tcb_rto_1s(TcpConfig {
        max_retransmissions: 20,
        ..config()
    });
    s.send(b"abc").unwrap();
    let seg = TcpRepr {
        payload: b"abc",
        flags: PSH,
        ..our_ack(1, 1)
    };
    recv!(s, [seg]);
    let mut t = 0;
    for rto in [1, 2, 4, 8, 16, 32, 60, 60, 60] {
        t += rto * 1000;
        assert_eq!(s.poll_at(), Some(ms(t)), "RTO {rto}s");
        s.handle_timeout(ms(t));
        recv!(s, time t, [seg]);
    }
    assert_eq!(s.counters().rto_expirations, 9);
    assert_eq!(s.counters().retransmits, 9);
    // The owner's count of them (the interface's counter) takes each once.
    assert_eq!(s.take_retransmits(), 9);
    assert_eq!(s.take_retransmits(), 0);
    // An ACK stops the timer.
    send!(s, time t + 10, peer_ack(1, 4));
    assert_eq!(s.poll_at(), None);
}

#[test]
fn gives_up_after_max_retransmissions() {
    let mut s = tcb_rto_1s(TcpConfig {
        max_retransmissions: 3,
        ..config()
    });
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    for t in [1000, 3000, 7000] {
        s.handle_timeout(ms(t));
        assert_eq!(drain(&mut s, ms(t)).len(), 1);
    }
    s.handle_timeout(ms(15000));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
}

/// Runs `s`'s timers, each at its time, draining what they send, until it leaves
/// ESTABLISHED or `until_ms` passes.
fn run_timers_while_established(s: &mut Tcb, until_ms: u64) {
    let mut t = 0;
    while s.state() == State::Established && t < until_ms {
        t = s.poll_at().map_or(t + 1, |at| at.total_millis().max(t + 1));
        s.handle_timeout(ms(t));
        drain(s, ms(t));
    }
}

/// The retry count is a byte: a limit beyond `MAX_RETRIES` is brought down to it, so that
/// a connection still gives up (a saturated count never exceeding the limit would retry
/// forever), after exactly `MAX_RETRIES` retransmissions.
#[test]
fn a_retransmission_limit_beyond_a_byte_still_gives_up() {
    use crate::config::MAX_RETRIES;
    let mut s = tcb_established_with(TcpConfig {
        max_retransmissions: u32::MAX,
        rto_min: Duration::from_millis(1),
        rto_max: Duration::from_millis(1),
        ..config()
    });
    assert_eq!(s.config().max_retransmissions, MAX_RETRIES);
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    run_timers_while_established(&mut s, 10_000);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
    assert_eq!(s.counters().retransmits, u64::from(MAX_RETRIES));
    assert_eq!(s.consecutive_timeouts(), MAX_RETRIES + 1);
}

/// The per-connection setters cap the limits as the configuration does: a keepalive
/// count or SYN retries beyond `MAX_RETRIES` act as it, and unanswered probes still end
/// the connection.
#[test]
fn per_connection_limits_beyond_a_byte_are_capped() {
    use crate::config::MAX_RETRIES;
    let mut s = tcb_established_with(config());
    s.set_syn_retries(u32::MAX);
    assert_eq!(s.config().max_syn_retransmissions, MAX_RETRIES);
    s.set_keepalive(
        ms(0),
        Some(Keepalive {
            idle: Duration::from_millis(10),
            interval: Duration::from_millis(10),
            count: u32::MAX,
        }),
    );
    assert_eq!(s.config().keepalive.map(|k| k.count), Some(MAX_RETRIES));
    run_timers_while_established(&mut s, 100_000);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
    assert_eq!(s.counters().keepalive_probes, u64::from(MAX_RETRIES));
}

#[test]
fn user_timeout_aborts() {
    let mut s = tcb_rto_1s(TcpConfig {
        user_timeout: Some(Duration::from_secs(5)),
        ..config()
    });
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    s.handle_timeout(ms(1000));
    s.handle_timeout(ms(3000));
    assert_eq!(s.state(), State::Established);
    s.handle_timeout(ms(7000));
    assert_eq!(s.error(), Some(ConnError::TimedOut));
}

#[test]
fn retransmission_coalesces_segments() {
    let mut s = tcb_rto_1s(config());
    s.send(b"ab").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"ab",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    s.send(b"cd").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"cd",
            flags: PSH,
            ..our_ack(3, 1)
        }]
    );
    s.handle_timeout(ms(1000));
    recv!(s, time 1000, [TcpRepr { payload: b"abcd", flags: PSH, ..our_ack(1, 1) }]);
}

#[test]
fn karn_no_sample_from_retransmitted_segment() {
    let mut s = tcb_rto_1s(config());
    let srtt0 = s.srtt();
    s.send(b"abc").unwrap();
    drain(&mut s, ms(0));
    s.handle_timeout(ms(1000));
    drain(&mut s, ms(1000));
    // The ACK is ambiguous: no sample, and the backed-off RTO is kept.
    send!(s, time 1100, peer_ack(1, 4));
    assert_eq!(s.srtt(), srtt0);
    assert_eq!(s.rto(), Duration::from_secs(2));
    // New data gives a sample and clears the backoff.
    s.send(b"def").unwrap();
    drain(&mut s, ms(1100));
    send!(s, time 1180, peer_ack(1, 7));
    assert_ne!(s.srtt(), srtt0);
    assert_eq!(s.rto(), Duration::from_secs(1));
}

#[test]
fn rtt_estimate_follows_samples() {
    let mut s = tcb_established();
    for i in 0..20usize {
        s.send(b"x").unwrap();
        drain(&mut s, ms(1000 * i as u64));
        send!(s, time 1000 * i as u64 + 100, peer_ack(1, 2 + i));
    }
    let srtt = s.srtt().unwrap();
    assert!(
        srtt > Duration::from_millis(90) && srtt <= Duration::from_millis(100),
        "{srtt:?}"
    );
}

#[test]
fn zero_window_probe_and_backoff() {
    let mut s = tcb_rto_1s(config());
    // The peer closes its window.
    send!(
        s,
        TcpRepr {
            window: 0,
            ..peer_ack(1, 1)
        }
    );
    s.send(b"xyz").unwrap();
    recv_nothing!(s);
    assert_eq!(s.poll_at(), Some(ms(1000)));
    s.handle_timeout(ms(1000));
    // One byte of new data, past the window.
    recv!(s, time 1000, [TcpRepr { payload: b"x", ..our_ack(1, 1) }]);
    assert_eq!(s.poll_at(), Some(ms(3000)));
    // The peer answers, window still zero: keep probing, never give up.
    send!(s, time 1010, TcpRepr { window: 0, ..peer_ack(1, 1) });
    recv_nothing!(s, time 1010);
    for (t, next) in [(3000, 7000), (7000, 15000), (15000, 31000)] {
        s.handle_timeout(ms(t));
        recv!(s, time t, [TcpRepr { payload: b"x", ..our_ack(1, 1) }]);
        send!(s, time t + 10, TcpRepr { window: 0, ..peer_ack(1, 1) });
        assert_eq!(s.poll_at(), Some(ms(next)));
    }
    assert_eq!(s.counters().persist_probes, 4);
    // The next probe is taken: its ACK covers the byte and opens the window.
    s.handle_timeout(ms(31000));
    recv!(s, time 31000, [TcpRepr { payload: b"x", ..our_ack(1, 1) }]);
    send!(s, time 31010, TcpRepr { window: 1000, ..peer_ack(1, 2) });
    recv!(s, time 31010, [TcpRepr { payload: b"yz", flags: PSH, ..our_ack(2, 1) }]);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.counters().bad_acks, 0);
}

#[test]
fn zero_window_probe_unanswered_times_out() {
    let mut s = tcb_rto_1s(TcpConfig {
        max_retransmissions: 2,
        ..config()
    });
    send!(
        s,
        TcpRepr {
            window: 0,
            ..peer_ack(1, 1)
        }
    );
    s.send(b"xyz").unwrap();
    recv_nothing!(s);
    for t in [1000, 3000] {
        s.handle_timeout(ms(t));
        assert_eq!(drain(&mut s, ms(t)).len(), 1);
    }
    s.handle_timeout(ms(7000));
    assert_eq!(s.error(), Some(ConnError::TimedOut));
}

#[test]
fn zero_window_opened_by_window_update() {
    let mut s = tcb_rto_1s(config());
    send!(
        s,
        TcpRepr {
            window: 0,
            ..peer_ack(1, 1)
        }
    );
    s.send(b"xyz").unwrap();
    recv_nothing!(s);
    send!(s, time 500, TcpRepr { window: 500, ..peer_ack(1, 1) });
    recv!(s, time 500, [TcpRepr { payload: b"xyz", flags: PSH, ..our_ack(1, 1) }]);
}

#[test]
fn nagle_holds_small_segments() {
    let mut s = tcb_established_with(TcpConfig {
        nodelay: false,
        ..config()
    });
    s.send(b"a").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"a",
            flags: PSH,
            ..our_ack(1, 1)
        }]
    );
    s.send(b"b").unwrap();
    recv_nothing!(s);
    s.send(b"c").unwrap();
    recv_nothing!(s);
    send!(s, time 10, peer_ack(1, 2));
    recv!(s, time 10, [TcpRepr { payload: b"bc", flags: PSH, ..our_ack(2, 1) }]);
}

#[test]
fn nagle_sends_full_segments() {
    let mut s = tcb_established_with(TcpConfig {
        nodelay: false,
        ..config()
    });
    s.send(b"a").unwrap();
    drain(&mut s, ms(0));
    let data = [9u8; 150];
    s.send(&data).unwrap();
    // One full segment goes; the 50-byte tail waits for the ACK.
    recv!(
        s,
        [TcpRepr {
            payload: &data[..100],
            ..our_ack(2, 1)
        }]
    );
}

#[test]
fn nodelay_sends_at_once() {
    let mut s = tcb_established();
    s.send(b"a").unwrap();
    s.poll_transmit(ms(0)).unwrap();
    s.send(b"b").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"b",
            flags: PSH,
            ..our_ack(2, 1)
        }]
    );
}

#[test]
fn sender_sws_waits_for_usable_window() {
    let mut s = tcb_established();
    // Peer window of 150: one full segment, then 50 bytes are usable while 100 are in
    // flight; 50 < half the largest window (500 / 2), so wait.
    send!(
        s,
        TcpRepr {
            window: 500,
            ..peer_ack(1, 1)
        }
    );
    send!(
        s,
        TcpRepr {
            window: 150,
            ..peer_ack(1, 1)
        }
    );
    s.send(&[1; 300]).unwrap();
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload.len(), 100);
    send!(
        s,
        TcpRepr {
            window: 150,
            ..peer_ack(1, 101)
        }
    );
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload.len(), 100);
}

#[test]
fn delayed_ack_timer() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    send!(
        s,
        TcpRepr {
            payload: &[1; 50],
            ..peer_ack(1, 1)
        }
    );
    recv_nothing!(s);
    assert_eq!(s.poll_at(), Some(ms(40)));
    s.handle_timeout(ms(40));
    recv!(s, time 40, [TcpRepr { window: RX_BUF as u16 - 50, ..our_ack(1, 51) }]);
    assert_eq!(s.poll_at(), None);
}

#[test]
fn delayed_ack_every_second_full_segment() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    send!(
        s,
        TcpRepr {
            payload: &[1; 100],
            ..peer_ack(1, 1)
        }
    );
    recv_nothing!(s);
    send!(
        s,
        TcpRepr {
            payload: &[1; 100],
            ..peer_ack(101, 1)
        }
    );
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 200,
            ..our_ack(1, 201)
        }]
    );
    assert_eq!(s.poll_at(), None);
}

#[test]
fn delayed_ack_piggybacks_on_data() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    send!(
        s,
        TcpRepr {
            payload: b"req",
            ..peer_ack(1, 1)
        }
    );
    recv_nothing!(s);
    s.send(b"resp").unwrap();
    recv!(
        s,
        [TcpRepr {
            payload: b"resp",
            flags: PSH,
            window: RX_BUF as u16 - 3,
            ..our_ack(1, 4)
        }]
    );
    assert_eq!(s.poll_at(), Some(ms(200)), "only the RTO is left");
}

#[test]
fn delayed_ack_not_for_out_of_order() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    send!(
        s,
        TcpRepr {
            payload: b"later",
            ..peer_ack(10, 1)
        }
    );
    recv!(s, [our_ack(1, 1)]);
}

#[test]
fn keepalive_probes_then_aborts() {
    let k = Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        count: 3,
    };
    let mut s = tcb_established_with(TcpConfig {
        keepalive: Some(k),
        ..config()
    });
    assert_eq!(s.poll_at(), Some(ms(10_000)));
    let probe = our_ack(0, 1);
    for t in [10_000, 11_000, 12_000] {
        s.handle_timeout(ms(t));
        recv!(s, time t, [probe]);
    }
    s.handle_timeout(ms(13_000));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(ConnError::TimedOut));
    recv!(s, time 13_000, [TcpRepr { seq: LOCAL_SEQ + 1, flags: RST, window: 0, ack: None, ..*RECV_TEMPL }]);
    assert_eq!(s.counters().keepalive_probes, 3);
}

#[test]
fn keepalive_answer_resets_idle() {
    let k = Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        count: 3,
    };
    let mut s = tcb_established_with(TcpConfig {
        keepalive: Some(k),
        ..config()
    });
    s.handle_timeout(ms(10_000));
    recv!(s, time 10_000, [our_ack(0, 1)]);
    // The peer answers the probe (it is below its window, so it ACKs).
    send!(s, time 10_050, peer_ack(1, 1));
    assert_eq!(s.poll_at(), Some(ms(20_050)));
    assert_eq!(s.state(), State::Established);
}

#[test]
fn keepalive_off_by_default() {
    let s = tcb_established();
    assert_eq!(s.poll_at(), None);
}

#[test]
fn default_syn_r2_is_at_least_three_minutes() {
    let mut s = Tcb::connect(TcpConfig::default(), LOCAL_PORT, REMOTE_PORT, LOCAL_SEQ);
    drain(&mut s, ms(0));
    let mut t = ms(0);
    while s.state() == State::SynSent {
        t = s.poll_at().unwrap();
        s.handle_timeout(t);
        drain(&mut s, t);
    }
    assert_eq!(s.error(), Some(ConnError::TimedOut));
    assert!(t >= ms(180_000), "gave up after {t:?}");
}

#[test]
fn keepalive_default_idle_is_two_hours() {
    assert!(Keepalive::default().idle >= Duration::from_secs(7200));
    assert!(TcpConfig::default().keepalive.is_none());
}

#[test]
fn delayed_ack_capped_below_half_a_second() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_secs(5)),
        ..config()
    });
    send!(
        s,
        TcpRepr {
            payload: b"x",
            ..peer_ack(1, 1)
        }
    );
    assert!(s.poll_at().unwrap() < ms(500));
}

/// Quick ACKs: a segment that arrives after a pause as long as the delayed-ACK timeout is
/// acknowledged at once (the sender was waiting for us), and so are the next ones; back-
/// to-back segments are then acknowledged every second one again.
#[test]
fn quick_acks_after_a_pause_and_after_reordering() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    let seg = |n: usize| TcpRepr {
        payload: &[7; 10],
        ..peer_ack(1 + 10 * n, 1)
    };
    // The first segment: delayed.
    send!(s, time 1, seg(0));
    assert!(drain(&mut s, ms(1)).is_empty(), "first segment: delayed ACK");
    s.handle_timeout(ms(41));
    assert_eq!(drain(&mut s, ms(41)).len(), 1, "the delayed ACK");
    // After a pause of 100 ms: ACKed at once, and the next 15 too (16 in all).
    for i in 1..=16 {
        send!(s, time 100 + i as u64, seg(i));
        assert_eq!(drain(&mut s, ms(100 + i as u64)).len(), 1, "quick ACK {i}");
    }
    // Then back to delayed ACKs (two small segments are less than two full ones).
    send!(s, time 120, seg(17));
    assert!(drain(&mut s, ms(120)).is_empty(), "delayed again");
    s.handle_timeout(ms(160));
    assert_eq!(drain(&mut s, ms(160)).len(), 1);
    // Reordering: the out-of-order segment and the one filling the hole are ACKed at
    // once (RFC 5681 4.2), and so is the in-order data after them.
    send!(s, time 161, seg(19));
    assert_eq!(drain(&mut s, ms(161)).len(), 1, "duplicate ACK");
    send!(s, time 162, seg(18));
    assert_eq!(drain(&mut s, ms(162)).len(), 1, "hole filled");
    send!(s, time 163, seg(20));
    assert_eq!(drain(&mut s, ms(163)).len(), 1, "quick ACK after the repair");
}

/// Request/response slower than the delayed-ACK timeout (a loaded peer, thousands of
/// connections): each request is answered at once, so the answer carries the ACK and no
/// pure ACK goes ahead of it (Linux's ping-pong mode), however long the exchanges take.
/// Once a request goes unanswered for the timeout, the delayed ACK leaves alone, and the
/// connection is back to quick ACKs after a pause.
#[test]
fn request_response_slower_than_the_ack_delay_sends_no_pure_acks() {
    let mut s = tcb_established_with(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        nodelay: true,
        ..config()
    });
    let req = |n: usize| TcpRepr {
        payload: &[7; 10],
        ..peer_ack(1 + 10 * n, 1 + 20 * n)
    };
    for n in 0..20usize {
        let t = 60 * n as u64; // a request every 60 ms, longer than the 40 ms ACK delay
        send!(s, time t, req(n));
        assert!(
            drain(&mut s, ms(t)).is_empty(),
            "request {n}: no pure ACK before the answer"
        );
        s.send(&[9; 20]).unwrap();
        let out = drain(&mut s, ms(t));
        assert_eq!(out.len(), 1, "request {n}: one segment, the answer");
        assert_eq!(out[0].payload.len(), 20);
        assert_eq!(
            out[0].repr.ack,
            Some(REMOTE_SEQ + (1 + 10 * (n + 1))),
            "acknowledges request {n}"
        );
    }
    // An unanswered request: its ACK leaves alone after the delay...
    let t = 60 * 20;
    send!(s, time t, req(20));
    assert!(drain(&mut s, ms(t)).is_empty());
    s.handle_timeout(ms(t + 40));
    assert_eq!(drain(&mut s, ms(t + 40)).len(), 1, "the delayed ACK");
    // ...and data after a pause is acknowledged at once again (quick ACKs).
    send!(s, time t + 100, TcpRepr { payload: &[7; 10], ..peer_ack(1 + 10 * 21, 1 + 20 * 20) });
    assert_eq!(drain(&mut s, ms(t + 100)).len(), 1, "quick ACK after the pause");
}

/// Request/response with Nagle on: a request whose bytes straddle the send ring's wrap
/// goes out whole at once (two segments), not its first part alone with the rest held
/// behind it until the peer, waiting for the rest, acknowledges (its delayed ACK: a 40 ms
/// stall every time the ring wrapped).
#[test]
fn a_write_across_the_send_rings_wrap_is_not_held_by_nagle() {
    let mut s = tcb_established_with(TcpConfig {
        nodelay: false,
        ..config()
    });
    let req = [7u8; 37];
    // One request always waits for its ACK, so that the ring never empties (an emptied
    // ring starts over at the front of its memory) and its start walks round the wrap.
    s.send(&req).unwrap();
    assert_eq!(drain(&mut s, ms(0)).len(), 1);
    let mut acked = 1usize;
    let mut split = 0;
    for i in 1..200u64 {
        s.send(&req).unwrap();
        assert!(
            drain(&mut s, ms(i)).is_empty(),
            "held by Nagle behind the unacknowledged one"
        );
        acked += 37;
        send!(s, time i, peer_ack(1, acked));
        let out = drain(&mut s, ms(i));
        let sizes: Vec<usize> = out.iter().map(|o| o.payload.len()).collect();
        assert_eq!(
            sizes.iter().sum::<usize>(),
            37,
            "request {i} left whole at once: {sizes:?}"
        );
        split += usize::from(sizes.len() > 1);
    }
    assert!(split >= 2, "the ring wrapped under some requests ({split})");
}
