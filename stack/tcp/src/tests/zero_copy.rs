//! Zero-copy receive: in-order payloads stay in the caller's buffer (`Frame`), the rest
//! is copied into the ring, and readers see one byte stream in order.

use sluice_buf::Frame;

use super::*;
use crate::error::{RecvError, SendError};
use std::time::Duration;

fn zc_config() -> TcpConfig {
    TcpConfig {
        rx_copybreak: 10,
        rx_frames_max: 3,
        ..config()
    }
}

/// Feeds `payload` at `seq` offering its buffer; queues what the TCB keeps. Returns
/// whether it was kept by reference.
fn deliver(s: &mut Tcb, seq: usize, payload: &Frame) -> bool {
    let out = s.on_segment_frame(ms(0), &peer_ack(seq, 1), payload.clone(), 0..payload.len(), false);
    assert_eq!(out.drop, None);
    out.zero_copy > 0
}

fn read_all(s: &mut Tcb) -> Vec<u8> {
    let mut all = Vec::new();
    while let Ok(Some(f)) = s.recv_frame(usize::MAX) {
        all.extend_from_slice(&f);
    }
    all
}

#[test]
fn in_order_payload_is_handed_over_without_a_copy() {
    let mut s = tcb_established_with(zc_config());
    let buf = Frame::from_vec((0u8..50).collect());
    assert!(deliver(&mut s, 1, &buf));
    assert_eq!(s.recv_queue(), 50);
    assert_eq!(s.rx_frames(), 1);
    assert_eq!(s.counters().bytes_in_zero_copy, 50);
    // The window counts held bytes like copied ones.
    recv!(
        s,
        [TcpRepr {
            window: RX_BUF as u16 - 50,
            ..our_ack(1, 51)
        }]
    );
    let f = s.recv_frame(usize::MAX).unwrap().unwrap();
    assert_eq!(f.as_ptr(), buf.as_ptr(), "the same memory, not a copy");
    assert_eq!(&f[..], &buf[..]);
    assert_eq!(s.recv_queue(), 0);
    assert_eq!(s.rx_frames(), 0);
}

#[test]
fn small_payloads_are_copied() {
    let mut s = tcb_established_with(zc_config());
    let buf = Frame::from_vec(vec![7; 9]);
    assert!(!deliver(&mut s, 1, &buf));
    assert_eq!(s.rx_frames(), 0);
    assert_eq!(s.recv_queue(), 9);
    assert_eq!(s.counters().bytes_in_zero_copy, 0);
    let f = s.recv_frame(usize::MAX).unwrap().unwrap();
    assert_ne!(f.as_ptr(), buf.as_ptr());
    assert_eq!(&f[..], &[7; 9]);
}

#[test]
fn partly_old_retransmission_keeps_only_the_new_bytes() {
    let mut s = tcb_established_with(zc_config());
    let first = Frame::from_vec(vec![1; 20]);
    assert!(deliver(&mut s, 1, &first));
    // Bytes 11..41: the first 10 are old.
    let again = Frame::from_vec([vec![1; 10], vec![2; 20]].concat());
    assert!(deliver(&mut s, 11, &again));
    let all = read_all(&mut s);
    assert_eq!(all, [vec![1; 20], vec![2; 20]].concat());
}

#[test]
fn out_of_order_data_goes_to_the_ring_and_order_holds() {
    let mut s = tcb_established_with(zc_config());
    let stream: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let seg = |a: usize, b: usize| Frame::from_vec(stream[a..b].to_vec());
    assert!(deliver(&mut s, 1, &seg(0, 40)));
    // A hole at 40..60: 60..100 is out of order, copied into the ring.
    assert!(!deliver(&mut s, 61, &seg(60, 100)));
    // The hole fills: with data waiting out of order it is copied too.
    assert!(!deliver(&mut s, 41, &seg(40, 60)));
    // Nothing is out of order any more: in-order data is kept by reference again, after
    // the copied bytes.
    assert!(deliver(&mut s, 101, &seg(100, 150)));
    assert_eq!(s.recv_queue(), 150);
    // Read a little: the frame first, then the ring.
    let mut head = [0u8; 45];
    assert_eq!(s.recv(&mut head), Ok(45));
    assert_eq!(&head[..], &stream[..45]);
    let rest = read_all(&mut s);
    assert_eq!(&rest[..], &stream[45..150]);
    assert!(deliver(&mut s, 151, &seg(150, 200)));
    assert_eq!(read_all(&mut s), &stream[150..200]);
}

#[test]
fn frames_held_are_bounded_and_the_window_too() {
    let mut s = tcb_established_with(zc_config());
    for i in 0..3 {
        assert!(deliver(&mut s, 1 + i * 100, &Frame::from_vec(vec![i as u8; 100])));
    }
    // The fourth is copied: at most `rx_frames_max` held.
    assert!(!deliver(&mut s, 301, &Frame::from_vec(vec![3; 100])));
    assert_eq!(s.rx_frames(), 3);
    // Fill the rest of the 1000-byte window; more is out of window.
    for i in 4..10 {
        deliver(&mut s, 1 + i * 100, &Frame::from_vec(vec![i as u8; 100]));
    }
    assert_eq!(s.recv_queue(), RX_BUF);
    let f = Frame::from_vec(vec![9; 100]);
    let out = s.on_segment_frame(ms(0), &peer_ack(1001, 1), f, 0..100, false);
    assert_eq!(out.zero_copy, 0);
    assert_eq!(s.recv_queue(), RX_BUF);
    let all = read_all(&mut s);
    let want: Vec<u8> = (0..10u8).flat_map(|i| vec![i; 100]).collect();
    assert_eq!(all, want);
}

#[test]
fn recv_frame_splits_a_frame_at_max() {
    let mut s = tcb_established_with(zc_config());
    let buf = Frame::from_vec((0u8..30).collect());
    assert!(deliver(&mut s, 1, &buf));
    let a = s.recv_frame(12).unwrap().unwrap();
    assert_eq!(&a[..], &buf[..12]);
    let b = s.recv_frame(100).unwrap().unwrap();
    assert_eq!(&b[..], &buf[12..]);
    assert_eq!(s.recv_frame(100), Ok(None));
}

#[test]
fn frames_end_with_the_stream_and_are_released() {
    let mut s = tcb_established_with(zc_config());
    let buf = Frame::from_vec(vec![5; 30]);
    assert!(deliver(&mut s, 1, &buf));
    send!(
        s,
        TcpRepr {
            flags: FIN,
            ..peer_ack(31, 1)
        }
    );
    assert_eq!(s.recv_frame(usize::MAX).unwrap().unwrap().len(), 30);
    assert_eq!(s.recv_frame(usize::MAX), Err(RecvError::Finished));
}

// ---- zero-copy send ----

/// Polls one segment at `t` ms; returns its sequence offset, payload address and bytes.
fn poll_one(s: &mut Tcb, t: Instant) -> Option<(usize, *const u8, Vec<u8>)> {
    let r = s.poll_transmit(t)?;
    let off = r.seq - (LOCAL_SEQ + 1);
    let (seq, len) = (r.seq, r.payload.len());
    let out = (off, r.payload.as_ptr(), r.payload.to_vec());
    // The frame lookup agrees with the payload the segment carries.
    if len > 0 {
        let (f, range) = s.tx_frame(seq, len).expect("payload is a frame's");
        assert_eq!(f[range].as_ptr(), out.1);
    }
    Some(out)
}

#[test]
fn frames_are_sent_and_retransmitted_by_reference_and_released_on_ack() {
    let mut s = tcb_established_with(TcpConfig {
        rto_min: Duration::from_secs(1),
        rto_initial: Duration::from_secs(1),
        ..config()
    });
    let bytes: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
    let frame = Frame::from_vec(bytes.clone());
    let base = frame.as_ptr();
    // A handle on the frame's memory, to see when the stack lets go of it.
    let watch = frame.slice(0..1);
    assert_eq!(s.send_frame(frame), Ok(None));
    assert_eq!(s.send_queue(), 250);
    // MSS 100: three segments, each pointing into the frame.
    let mut sent = Vec::new();
    while let Some((off, p, data)) = poll_one(&mut s, ms(0)) {
        assert_eq!(p, base.wrapping_add(off), "segment at {off} refers to the frame");
        assert_eq!(&data[..], &bytes[off..off + data.len()]);
        sent.push((off, data.len()));
    }
    assert_eq!(sent, vec![(0, 100), (100, 100), (200, 50)]);
    // The first 100 bytes are acknowledged; the rest is lost and retransmitted on RTO,
    // again from the frame.
    send!(s, time 10, peer_ack(1, 101));
    let rto_at = s.poll_at().expect("RTO armed");
    s.handle_timeout(rto_at);
    let (off, p, _) = poll_one(&mut s, rto_at).expect("RTO retransmission");
    assert_eq!((off, p), (100, base.wrapping_add(100)));
    assert_eq!(s.counters().retransmits, 1);
    assert_eq!(s.tx_frames(), 1);
    send!(s, time 1020, peer_ack(1, 251));
    assert_eq!(s.tx_frames(), 0);
    assert_eq!(s.send_queue(), 0);
    drop(watch);
}

#[test]
fn frames_and_copies_interleave_in_order() {
    let mut s = tcb_established();
    assert_eq!(s.send(b"copied "), Ok(7));
    assert_eq!(s.send_frame(Frame::copy_from_slice(b"by-reference ")), Ok(None));
    assert_eq!(s.send(b"copied-again"), Ok(12));
    let mut stream = Vec::new();
    while let Some((off, _, data)) = poll_one_any(&mut s) {
        assert_eq!(off, stream.len());
        stream.extend_from_slice(&data);
    }
    assert_eq!(stream, b"copied by-reference copied-again");
}

fn poll_one_any(s: &mut Tcb) -> Option<(usize, (), Vec<u8>)> {
    let r = s.poll_transmit(ms(0))?;
    Some((r.seq - (LOCAL_SEQ + 1), (), r.payload.to_vec()))
}

#[test]
fn a_frame_larger_than_the_room_comes_back_in_part() {
    let mut s = tcb_established(); // 1000-byte send buffer
    assert_eq!(s.send(&[1; 900]), Ok(900));
    let rest = s.send_frame(Frame::from_vec(vec![2; 300])).unwrap().unwrap();
    assert_eq!(rest.len(), 200);
    assert_eq!(s.send_queue(), 1000);
    s.shutdown();
    assert_eq!(s.send_frame(rest).map(|_| ()), Err(SendError::Closing));
}
