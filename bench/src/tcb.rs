//! TCP input and output on `sluice_tcp::Tcb` pairs, without any interface.

use std::hint::black_box;
use std::ptr::NonNull;

use sluice_buf::FrameVtable;
use sluice_tcp::{Frame, State, Tcb, TcpConfig};
use sluice_wire::{ChecksumCaps, Instant, SeqNumber, TcpPacket, TcpRepr};

use crate::{LOCAL_IP, LOCAL_PORT, MSS, PEER_IP, PEER_PORT};

/// Moves segments both ways between `a` and `b` until neither has anything to send.
pub fn pump(a: &mut Tcb, b: &mut Tcb, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(s) = a.poll_transmit(now) {
            b.on_segment(now, &s);
            moved = true;
        }
        while let Some(s) = b.poll_transmit(now) {
            a.on_segment(now, &s);
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

/// A client (`PEER_PORT`, active open) and a server (`LOCAL_PORT`, passive open),
/// ESTABLISHED with each other at `now`.
pub fn established_pair(client: TcpConfig, server: TcpConfig, now: Instant) -> (Tcb, Tcb) {
    let mut a = Tcb::connect(client, PEER_PORT, LOCAL_PORT, SeqNumber(0x1000_0000));
    let mut b = Tcb::listen(server, LOCAL_PORT, SeqNumber(0x7000_0000));
    pump(&mut a, &mut b, now);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    (a, b)
}

/// Input of in-order full-sized segments on an established connection: each `step` feeds the
/// next segment to the receiver (`on_segment`), runs `poll_transmit` until `None` (the
/// ACK decision: with delayed ACKs an ACK every second segment), and consumes the data
/// (`consume`, no copy) so that the window never closes.
///
/// The segments are the sender's own first data segment (so they carry whatever the
/// handshake negotiated: timestamps, ...) with the sequence number advanced by one MSS
/// each step; the sender itself plays no part after setup.
pub struct TcbInput {
    pub rx: Tcb,
    hdr: TcpRepr<'static>,
    payload: Vec<u8>,
    seq: SeqNumber,
    now_ns: u64,
    /// ACKs sent so far.
    pub acks: u64,
}

impl TcbInput {
    /// A connection whose two ends use `cfg` (its MSS set to `MSS`).
    pub fn new(cfg: TcpConfig) -> TcbInput {
        let cfg = TcpConfig {
            mss: MSS as u16,
            ..cfg
        };
        let now = Instant::from_millis(1);
        let (mut tx, rx) = established_pair(cfg, cfg, now);
        tx.send(&vec![0x61; 4 * MSS]).unwrap();
        let s = tx.poll_transmit(now).expect("a data segment");
        // A full-sized segment: the MSS less the options every segment carries (12 bytes
        // of timestamps when negotiated), as Linux sends.
        let seg_len = s.payload.len();
        assert!(seg_len == MSS || seg_len == MSS - 12, "segment of {seg_len}");
        let hdr = TcpRepr {
            src_port: s.src_port,
            dst_port: s.dst_port,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.window,
            urgent: s.urgent,
            options: s.options,
            payload: &[],
        };
        let seq = s.seq;
        let mut w = TcbInput {
            rx,
            hdr,
            payload: vec![0x61; seg_len],
            seq,
            now_ns: now.total_nanos(),
            acks: 0,
        };
        // Check the workload does what it says: data accepted, ACKs sent, still open.
        let before = w.rx.counters().bytes_in;
        for _ in 0..100 {
            w.step();
        }
        assert_eq!(
            w.rx.counters().bytes_in - before,
            100 * seg_len as u64,
            "segments not accepted"
        );
        assert!(w.acks >= 50, "ACKs: {}", w.acks);
        assert_eq!(w.rx.state(), State::Established);
        w
    }

    /// `step` with zero-copy receive: the segment's buffer is handed over with it (`on_segment_frame`)
    /// and the payload handed over as a `Frame` instead of copied; consuming it drops the
    /// frame. The frame stands for an mbuf handed over (`Mbuf::into_frame` moves the
    /// pointer, no reference count changes), so its vtable does nothing.
    #[inline]
    pub fn step_zero_copy(&mut self) {
        self.step_with(true)
    }

    /// One in-order segment in, the ACK decision (and the ACK) out, the data consumed.
    #[inline]
    pub fn step(&mut self) {
        self.step_with(false)
    }

    #[inline(always)]
    fn step_with(&mut self, zero_copy: bool) {
        let now = Instant::from_nanos(self.now_ns);
        let out = if zero_copy {
            let header = TcpRepr {
                seq: self.seq,
                payload: &[],
                ..self.hdr
            };
            let len = self.payload.len();
            // SAFETY: `payload` outlives the frame (consumed below); the vtable is a no-op.
            let f = unsafe {
                Frame::from_raw_parts(
                    NonNull::new(self.payload.as_mut_ptr()).unwrap(),
                    len,
                    core::ptr::null_mut(),
                    &HANDED_OVER,
                )
            };
            self.rx
                .on_segment_frame(now, black_box(&header), f, 0..len, false)
        } else {
            let seg = TcpRepr {
                seq: self.seq,
                payload: &self.payload,
                ..self.hdr
            };
            self.rx.on_segment(now, black_box(&seg))
        };
        black_box(out);
        while let Some(ack) = self.rx.poll_transmit(now) {
            black_box(&ack);
            self.acks += 1;
        }
        self.rx.consume(self.payload.len());
        self.seq += self.payload.len();
        self.now_ns += 1_000;
    }
}

unsafe fn handed_over_clone(token: *mut ()) -> *mut () {
    token
}

unsafe fn handed_over_drop(_token: *mut ()) {}

/// Frames whose buffer the workload owns: no reference counting.
static HANDED_OVER: FrameVtable = FrameVtable {
    clone: handed_over_clone,
    drop: handed_over_drop,
};

/// Segments per round of [`TcbOutput`].
pub const OUT_BATCH: usize = 16;

/// Output of MSS segments: a sender with data queued and an open window (congestion
/// window grown beforehand, peer window 256 KiB). [`TcbOutput::emit_one`] is the measured
/// operation: `poll_transmit` producing one MSS segment plus `TcpRepr::emit` of it
/// (header, options, payload copy, checksum per `caps`) into a frame buffer.
/// [`TcbOutput::settle`] (not measured) delivers a round of segments to the peer `Tcb`,
/// returns its ACKs to the sender and refills the send buffer.
pub struct TcbOutput {
    pub tx: Tcb,
    peer: Tcb,
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    caps: ChecksumCaps,
    fill: Vec<u8>,
    now_ns: u64,
    /// The payload of a full-sized segment (MSS less 12 bytes of timestamps).
    pub seg_len: usize,
}

impl TcbOutput {
    pub fn new(caps: ChecksumCaps) -> TcbOutput {
        let cfg = TcpConfig {
            mss: MSS as u16,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            ..TcpConfig::default()
        };
        let now = Instant::from_millis(1);
        let (tx, peer) = established_pair(cfg, cfg, now);
        let mut w = TcbOutput {
            tx,
            peer,
            bufs: vec![vec![0; 1600]; OUT_BATCH],
            lens: vec![0; OUT_BATCH],
            caps,
            fill: vec![0x62; OUT_BATCH * MSS],
            now_ns: now.total_nanos(),
            seg_len: MSS - 12,
        };
        w.settle(0);
        // Grow the congestion window well past a round.
        for _ in 0..64 {
            let mut k = 0;
            while k < OUT_BATCH && w.emit_one(k) {
                k += 1;
            }
            assert!(k > 0, "no segment during warm-up");
            w.settle(k);
        }
        // A round at full size works.
        for j in 0..OUT_BATCH {
            assert!(w.emit_one(j), "round cut short at {j}");
        }
        w.settle(OUT_BATCH);
        assert!(w.tx.cwnd() >= 2 * OUT_BATCH * MSS, "cwnd {}", w.tx.cwnd());
        w
    }

    /// `poll_transmit` and emit into frame buffer `j`; false if nothing was sent.
    #[inline]
    pub fn emit_one(&mut self, j: usize) -> bool {
        let now = Instant::from_nanos(self.now_ns);
        match self.tx.poll_transmit(now) {
            Some(seg) => {
                let len = seg.buffer_len();
                seg.emit(
                    &mut TcpPacket::new_unchecked(&mut self.bufs[j][..len]),
                    LOCAL_IP,
                    PEER_IP,
                    &self.caps,
                );
                self.lens[j] = len;
                true
            }
            None => false,
        }
    }

    /// Delivers the first `n` emitted segments to the peer, its ACKs to the sender, drains
    /// the peer and refills the send buffer.
    pub fn settle(&mut self, n: usize) {
        let now = Instant::from_nanos(self.now_ns);
        let off = ChecksumCaps::ignored();
        for j in 0..n {
            let bytes = &self.bufs[j][..self.lens[j]];
            let seg =
                TcpRepr::parse(&TcpPacket::new_checked(bytes).unwrap(), LOCAL_IP, PEER_IP, &off).unwrap();
            // Full-sized but for one short segment per revolution of the send ring: the
            // payload borrows the ring's contiguous part, so a segment ends at the wrap.
            assert!(!seg.payload.is_empty() && seg.payload.len() <= self.seg_len);
            self.peer.on_segment(now, &seg);
        }
        while let Some(ack) = self.peer.poll_transmit(now) {
            self.tx.on_segment(now, &ack);
        }
        self.peer.consume(self.peer.recv_queue());
        while self.tx.send_queue() < 2 * OUT_BATCH * MSS {
            let n = self.tx.send(&self.fill).unwrap();
            assert!(n > 0);
        }
        self.now_ns += 10_000;
    }
}
