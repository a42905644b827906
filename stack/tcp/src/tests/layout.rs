//! What a segment of an established connection touches lies in the TCB's front
//! (`Tcb::HOT`), and connections opened alike share one configuration (`SharedConfig`)
//! while each keeps its options its own.

use core::mem::offset_of;

use super::*;
use crate::config::{ConfigCache, SharedConfig};
use crate::error::Counters;
use crate::listener::{ListenOutcome, ListenReply, Listener};

/// The fields an ACK with data and the answer to it read or write (found with
/// `valgrind --tool=lackey --trace-mem=yes` on `callgrind-driver rr-2`): each must lie in
/// the hot front, or the look ahead at a burst misses it.
#[test]
fn the_fields_a_segment_touches_lie_in_the_hot_front() {
    let hot = |at: usize, len: usize| at + len <= Tcb::HOT;
    macro_rules! in_hot {
        ($($f:ident),*) => {$(
            let (at, len) = (offset_of!(Tcb, $f), size_of_field(|t: &Tcb| &t.$f));
            assert!(hot(at, len), "{} at {at}..{} is outside 0..{}", stringify!($f), at + len, Tcb::HOT);
        )*};
    }
    in_hot!(
        cfg,
        timers,
        rtt_timed,
        stalled_since,
        rack,
        cc,
        rtt,
        tx,
        rx,
        probe_end,
        ooo_fin,
        tlp_probe,
        snd_wnd,
        max_snd_wnd,
        mss,
        unacked_rx,
        last_data_at,
        rcv_mss,
        ts_recent_at,
        snd_una,
        snd_nxt,
        snd_max,
        snd_wl1,
        snd_wl2,
        tx_seq0,
        rcv_nxt,
        rcv_adv,
        retries,
        persist_unanswered,
        keepalive_unanswered,
        rtx_unreported,
        dup_acks,
        ts_recent,
        last_ack_sent,
        emitted_len,
        local_port,
        remote_port,
        state,
        error,
        snd_wscale,
        rcv_wscale,
        quickacks,
        fin_queued,
        fin_received,
        ack_now,
        sent_since_data,
        pingpong,
        rtx_una,
        ts_enabled,
        sack_ok,
        span_frames,
        gather,
        rst_queued,
        recovering,
        sack_pending
    );
    // The scoreboard and the reassembly queue (their counts; the ranges live out of
    // line), and the counters every segment adds to.
    assert!(hot(offset_of!(Tcb, sb), size_of_field(|t: &Tcb| &t.sb)));
    assert!(hot(offset_of!(Tcb, asm), size_of_field(|t: &Tcb| &t.asm)));
    assert!(hot(
        offset_of!(Tcb, counters) + offset_of!(Counters, bytes_out),
        8
    ));
    // And the point of it: the cache lines they span, however the TCB lies in them, are
    // a budget of 11 (the whole TCB spans 15; before this layout a segment touched 24, 17
    // while the scoreboard's and the queue's ranges were inline, in lines apart, and 14
    // while windows and recovery's byte counts were `usize`s and recovery's variables and
    // the SACK blocks to report lay in the front).
    let lines = Tcb::HOT.div_ceil(64) + 1;
    assert!(lines <= 11, "{lines} lines, 0..{}", Tcb::HOT);
    assert!(
        core::mem::size_of::<Tcb>() <= 15 * 64,
        "{}",
        core::mem::size_of::<Tcb>()
    );
}

fn size_of_field<T>(_: impl Fn(&Tcb) -> &T) -> usize {
    core::mem::size_of::<T>()
}

#[test]
fn connections_opened_alike_share_one_config_and_keep_their_options_their_own() {
    let mut cache = ConfigCache::default();
    let cfg = TcpConfig {
        mss: 10, // sanitized on the way in
        ..config()
    };
    let (a, b) = (cache.get(cfg), cache.get(cfg));
    assert!(core::ptr::eq(&*a, &*b), "one copy for the same configuration");
    assert_eq!(a.mss as usize, crate::config::MIN_MSS);
    let other = cache.get(TcpConfig {
        nodelay: !cfg.nodelay,
        ..cfg
    });
    assert!(!core::ptr::eq(&*a, &*other));
    assert_eq!(
        *SharedConfig::new(cfg),
        *a,
        "the same sanitizing as a copy of its own"
    );

    let mut x = Tcb::connect(a.clone(), LOCAL_PORT, REMOTE_PORT, LOCAL_SEQ);
    let y = Tcb::connect(b, LOCAL_PORT + 1, REMOTE_PORT, LOCAL_SEQ);
    assert!(core::ptr::eq(x.config(), y.config()));
    // An option set on one connection is that connection's alone.
    x.set_nodelay(!cfg.nodelay);
    assert_eq!(x.config().nodelay, !cfg.nodelay);
    assert_eq!(y.config().nodelay, cfg.nodelay);
    assert!(!core::ptr::eq(x.config(), y.config()));
    assert_eq!(*a, *y.config(), "the shared copy is unchanged");
}

#[test]
fn a_listeners_connections_share_its_config() {
    let mut l: Listener<u32> = Listener::new(config(), LOCAL_PORT, 8);
    let syn = |port: u16| TcpRepr {
        src_port: port,
        seq: REMOTE_SEQ,
        flags: SYN,
        ..*SEND_TEMPL
    };
    let mut accepted = Vec::new();
    for (i, port) in [1000u16, 1001].into_iter().enumerate() {
        match l.on_segment_from(Instant::ZERO, &syn(port), 7, LOCAL_SEQ, i as u32) {
            ListenReply::Outcome(ListenOutcome::Accepted(t)) => accepted.push(t),
            other => panic!("{other:?}"),
        }
    }
    assert!(core::ptr::eq(accepted[0].config(), accepted[1].config()));
    // A connection capped to a smaller MSS (a path with a smaller MTU) has its own.
    let capped = MSS - 10;
    match l.on_segment_capped(Instant::ZERO, &syn(1002), 7, LOCAL_SEQ, 2, capped) {
        ListenReply::Outcome(ListenOutcome::Accepted(t)) => {
            assert_eq!(t.config().mss, capped);
            assert!(!core::ptr::eq(t.config(), accepted[0].config()));
        }
        other => panic!("{other:?}"),
    }
}
