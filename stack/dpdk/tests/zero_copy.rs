//! The DPDK side of zero-copy, on real mbufs (EAL with `--no-huge`, no device): frames made
//! from mbufs, payloads chained by reference to a header mbuf (as every transmission and
//! retransmission of a frame is), clones of chains, gathering a chain, and every mbuf back
//! in its pool at the end.

use sluice_dev::{Frame, PacketBuf};
use sluice_dpdk::{frame_mbuf, EalBuilder, Mempool, LARGE_DATA_ROOM};

#[test]
fn mbuf_frames_are_shared_chained_and_freed() {
    let eal = EalBuilder::new("sluice-zc-test")
        .args(["--no-huge", "--no-pci", "-m", "128", "-l", "0"])
        .arg(format!("--file-prefix=sluice-zc-test-{}", std::process::id()))
        .init()
        .expect("EAL (run scripts/setup.sh for libdpdk)");
    let pool = Mempool::new(&eal, "zc-test", 1023, 0, 2176).expect("mempool");
    let base = pool.in_use();

    // Send side: the application fills an mbuf's data room and freezes it.
    let payload: Vec<u8> = (0..1448u32).map(|i| (i % 251) as u8).collect();
    let mut m = pool.alloc_frame().expect("an mbuf");
    assert!(m.remaining() >= 1448);
    assert_eq!(m.put(&payload), 1448);
    let frame = m.freeze();
    assert!(frame_mbuf(&frame).is_some(), "an mbuf frame");
    assert_eq!(&frame[..], &payload[..]);

    // Two transmissions of part of it: each a header mbuf with the bytes chained by
    // reference; a duplicate (clone) of the second, as the impairments make.
    for round in 0..2 {
        let mut h = pool.alloc().expect("a header mbuf");
        h.append(54).expect("room").fill(0xee);
        assert!(h.attach_frame(&frame, 100..1100), "chained by reference");
        assert_eq!(h.len(), 54 + 1000, "pkt_len covers the chain");
        assert_eq!(h.data().len(), 54, "data() is the first segment");
        let g = h.gather();
        assert_eq!(&g[..54], &[0xee; 54][..]);
        assert_eq!(&g[54..], &payload[100..1100]);
        if round == 1 {
            let dup = h.clone();
            assert_eq!(dup.gather(), g);
            drop(h);
            assert_eq!(dup.gather(), g, "the clone keeps the whole chain");
        }
    }
    // A heap frame is not an mbuf: the caller copies it instead.
    let mut h = pool.alloc().expect("an mbuf");
    assert!(!h.attach_frame(&Frame::from_vec(vec![1; 10]), 0..10));
    drop(h);
    drop(frame);
    assert_eq!(pool.in_use(), base, "every mbuf back in the pool after sending");

    // Receive side: a received mbuf as a frame, narrowed and shared; the mbuf goes back
    // when the last reference does.
    let mut r = pool.alloc().expect("an mbuf");
    r.append(100).expect("room").fill(7);
    let f = r.into_frame().expect("an mbuf frame");
    let part = f.slice(10..20);
    drop(f);
    assert_eq!(pool.in_use(), base + 1);
    assert_eq!(&part[..], &[7; 10][..]);
    drop(part);
    assert_eq!(pool.in_use(), base, "every mbuf back in the pool after receiving");

    // A copied payload larger than one buffer (a TSO segment) goes into the pool's large
    // companion while it has enough, else into the pool's own buffers; one that fits one
    // buffer never takes a large one.
    let large = Mempool::new(&eal, "zc-test-large", 15, 0, LARGE_DATA_ROOM + 128).expect("large pool");
    assert!(pool.set_large(large));
    let seg: Vec<u8> = (0..65_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let chain = |data: &[u8]| {
        let mut h = pool.alloc().expect("a header mbuf");
        h.append(54).expect("room").fill(0xee);
        assert!(h.append_chained(data), "copied into a chain");
        assert_eq!(h.len(), 54 + data.len());
        assert_eq!(&h.gather()[54..], data, "the bytes intact");
        h
    };
    let first = chain(&seg);
    assert_eq!(first.segments(), 1 + 8, "a header and eight 8 KiB buffers");
    assert_eq!(large.in_use(), 8);
    let second = chain(&seg);
    assert_eq!(
        second.segments(),
        1 + 32,
        "7 large left: the pool's own 2 KiB buffers"
    );
    assert_eq!(large.in_use(), 8);
    let small = chain(&seg[..1400]);
    assert_eq!(small.segments(), 2, "one small buffer");
    assert_eq!(large.in_use(), 8);
    drop((first, second, small));
    assert_eq!(large.in_use(), 0, "large buffers back in their pool");
    assert_eq!(pool.in_use(), base, "and the small ones in theirs");
}
