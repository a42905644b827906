//! Two interfaces over an in-memory link with seeded impairments and virtual time that
//! jumps to the next wake-up. A TCP transfer both ways must arrive intact (SHA-256),
//! close on both ends, leave no buffer behind, and never stall. Every failure prints the
//! seed and the impairments, so the run can be replayed.

use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use sluice_dev::{Device, Impairments, MemDevice, MemLink};
use sluice_net::{
    Endpoint, Interface, InterfaceConfig, IsnKey, ListenerHandle, TcpHandle, TcpRecvError, TcpState,
    UdpRecvError,
};
use sluice_net::{Toeplitz, SYMMETRIC_KEY};
use sluice_wire::ipv6::Ipv6Cidr;
use sluice_wire::{EthernetAddress, Instant, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address};

const IP_A: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const IP_B: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
const PORT: u16 = 5001;
const IP6_A: Ipv6Address = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 1]);
const IP6_B: Ipv6Address = Ipv6Address::new([0x2001, 2, 0, 0, 0, 0, 0, 2]);

/// Everything that makes a run: print it to replay a failure.
#[derive(Clone, Debug)]
struct Scenario {
    seed: u64,
    /// Impairments of a -> b, and of b -> a unless `back` is given.
    imp: Impairments,
    back: Option<Impairments>,
    /// Bytes each side sends.
    bytes: usize,
    /// Upper bound of virtual time.
    time_limit: Duration,
    /// The devices hash received frames as an RSS NIC does, and the interfaces look
    /// segments up by that hash.
    nic_hash: Option<NicHash>,
    /// The connection runs over IPv6 (2001:2::/64), the neighbours found by NDP.
    v6: bool,
}

/// What the emulated NIC hashes.
#[derive(Clone, Copy, Debug)]
enum NicHash {
    /// The IPv4/TCP 4-tuple, as the flow table expects.
    Tuple,
    /// The addresses only (as for a hash type the stack did not ask for): every NIC hash
    /// misses and the flow table falls back to its own.
    AddrsOnly,
}

/// Prints the scenario if the run panics (inside the stack or in an assertion).
struct ReplayGuard<'a>(&'a Scenario);

impl Drop for ReplayGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("sim_pair failed; replay with: {:#?}", self.0);
        }
    }
}

struct Side {
    iface: Interface,
    dev: MemDevice,
    conn: Option<TcpHandle>,
    listener: Option<ListenerHandle>,
    rng: ChaCha8Rng,
    chunk: Vec<u8>,
    chunk_off: usize,
    total: usize,
    sent: usize,
    received: usize,
    sent_hash: Sha256,
    recv_hash: Sha256,
    shut: bool,
    fin_seen: bool,
    closed: bool,
    buf: Vec<u8>,
    /// Reads with `tcp_recv_frame` (zero-copy) instead of `tcp_recv`.
    frame_reader: bool,
    /// Writes with `alloc_tx_frame` + `tcp_send_frame` (zero-copy) instead of `tcp_send`.
    frame_writer: bool,
}

impl Side {
    fn new(
        (ip, ip6): (Ipv4Address, Ipv6Address),
        mut dev: MemDevice,
        seed: u64,
        total: usize,
        nic: Option<NicHash>,
    ) -> Side {
        let mut cfg = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([seed as u8; 16]));
        cfg.ipv6 = vec![Ipv6Cidr::new(ip6, 64)];
        if let Some(kind) = nic {
            cfg.rss_key = Some(SYMMETRIC_KEY.to_vec());
            let t = Toeplitz::new(&SYMMETRIC_KEY);
            dev.set_rx_hash(Box::new(move |f: &[u8]| {
                // IPv4 (no options) carrying TCP: hash as the NIC would.
                if f.len() < 14 + 20 + 4 || f[12..14] != [8, 0] || f[23] != 6 {
                    return None;
                }
                let ip = |o: usize| Ipv4Address::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
                let port = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
                let (src, dst) = (ip(26), ip(30));
                Some(match kind {
                    NicHash::Tuple => t.hash_v4(src, dst, port(34), port(36)),
                    NicHash::AddrsOnly => t.hash_v4_addrs(src, dst),
                })
            }));
        }
        cfg.tcp.msl = Duration::from_secs(2);
        // Large segments on, as the engine has them: every impairment meets GSO pieces.
        cfg.tcp.gso_segments = 44;
        let mac = EthernetAddress(dev.mac());
        Side {
            iface: Interface::new(cfg, mac),
            dev,
            conn: None,
            listener: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            chunk: Vec::new(),
            chunk_off: 0,
            total,
            sent: 0,
            received: 0,
            sent_hash: Sha256::new(),
            recv_hash: Sha256::new(),
            shut: false,
            fin_seen: false,
            closed: false,
            buf: vec![0; 16 * 1024],
            frame_reader: false,
            frame_writer: false,
        }
    }

    /// What the application does after each round of polls.
    fn app(&mut self) -> Result<(), String> {
        if self.conn.is_none() {
            if let Some(l) = self.listener {
                self.conn = self.iface.tcp_accept(l);
            }
        }
        let Some(h) = self.conn else {
            return Ok(());
        };
        if self.closed {
            return Ok(());
        }
        while self.sent < self.total {
            if self.chunk_off == self.chunk.len() {
                let n = (self.total - self.sent).min(16 * 1024);
                self.chunk.resize(n, 0);
                self.rng.fill_bytes(&mut self.chunk);
                self.chunk_off = 0;
            }
            let sent = if self.frame_writer {
                match self.iface.alloc_tx_frame() {
                    Some(mut m) => {
                        m.put(&self.chunk[self.chunk_off..]);
                        let len = m.len();
                        self.iface
                            .tcp(h)
                            .ok_or(sluice_net::TcpSendError::InvalidHandle)
                            .and_then(|mut sk| sk.send_frame(m.freeze()))
                            .map(|rest| len - rest.map_or(0, |r| r.len()))
                    }
                    None => Ok(0),
                }
            } else {
                self.iface
                    .tcp(h)
                    .ok_or(sluice_net::TcpSendError::InvalidHandle)
                    .and_then(|mut sk| sk.send(&self.chunk[self.chunk_off..]))
            };
            match sent {
                Ok(0) => break,
                Ok(n) => {
                    self.sent_hash
                        .update(&self.chunk[self.chunk_off..self.chunk_off + n]);
                    self.chunk_off += n;
                    self.sent += n;
                }
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        if self.sent == self.total && !self.shut {
            if let Some(mut sk) = self.iface.tcp(h) {
                sk.shutdown();
            }
            self.shut = true;
        }
        loop {
            let read = if self.frame_reader {
                self.iface
                    .tcp(h)
                    .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                    .and_then(|mut sk| sk.recv_frame(usize::MAX))
                    .map(|f| match f {
                        Some(f) => {
                            self.recv_hash.update(&f[..]);
                            f.len()
                        }
                        None => 0,
                    })
            } else {
                let r = self
                    .iface
                    .tcp(h)
                    .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                    .and_then(|mut sk| sk.recv(&mut self.buf));
                if let Ok(n) = r {
                    self.recv_hash.update(&self.buf[..n]);
                }
                r
            };
            match read {
                Ok(0) => break,
                Ok(n) => {
                    self.received += n;
                }
                Err(TcpRecvError::Finished) => {
                    self.fin_seen = true;
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "recv: {e:?} in {}",
                        self.iface
                            .tcp_status(h)
                            .map_or(sluice_net::TcpState::Closed, |t| t.state())
                    ))
                }
            }
        }
        if self.fin_seen && self.shut {
            if let Some(mut sk) = self.iface.tcp(h) {
                sk.close();
            }
            self.closed = true;
        }
        Ok(())
    }
}

struct Outcome {
    time: Instant,
    iterations: u64,
    /// Frames the link corrupted, and frames the stacks dropped for a bad checksum.
    corrupted: u64,
    checksum_drops: u64,
    /// Frames lost to outage windows.
    outage_drops: u64,
    /// Payload bytes each side received by reference (zero-copy), a then b.
    zero_copy: [u64; 2],
    /// The flow tables' counters, a then b.
    flows: [sluice_net::FlowStats; 2],
    /// Segments both interfaces retransmitted.
    retransmits: u64,
    /// Segments cut from large ones (software GSO), both sides.
    gso_segments: u64,
    /// Received segments coalesced with the one before them (GRO), both sides.
    gro_coalesced: u64,
    /// IPv4 datagrams reassembled from fragments, a then b.
    reassembled: [u64; 2],
    /// What the reassembly tables hold 31 s after the end (datagrams, bytes), a then b.
    reassembly_held: [(usize, usize); 2],
}

fn run(sc: &Scenario) -> Result<Outcome, String> {
    let (da, db, link) = MemLink::pair(
        sc.imp.clone(),
        sc.back.clone().unwrap_or_else(|| sc.imp.clone()),
        sc.seed,
        4096,
    );
    let mut a = Side::new(
        (IP_A, IP6_A),
        da,
        sc.seed.wrapping_mul(2) + 1,
        sc.bytes,
        sc.nic_hash,
    );
    let mut b = Side::new(
        (IP_B, IP6_B),
        db,
        sc.seed.wrapping_mul(2) + 2,
        sc.bytes,
        sc.nic_hash,
    );
    // One side reads frames (zero-copy), the other copies out; the other side writes
    // frames.
    a.frame_reader = true;
    b.frame_writer = true;
    let mut now = Instant::from_millis(1);
    b.listener = Some(b.iface.tcp_listen(PORT, 8).map_err(|e| format!("{e:?}"))?);
    a.iface.poll(now, &mut a.dev);
    let remote: IpAddress = if sc.v6 { IP6_B.into() } else { IP_B.into() };
    let h = a.iface.tcp_connect(remote, PORT).map_err(|e| format!("{e:?}"))?;
    a.conn = Some(h);
    let mut seen_remote = [None, None];

    let limit = Instant::ZERO + sc.time_limit;
    let mut iterations = 0u64;
    let (mut dbg_a, mut dbg_b) = (None, None);
    let trace = std::env::var("SIM_DEBUG").is_ok();
    loop {
        iterations += 1;
        if iterations > 2_000_000 {
            return Err(format!("stall: too many iterations at {now:?}"));
        }
        let mut rounds = 0;
        loop {
            let wa = a.iface.poll(now, &mut a.dev);
            let wb = b.iface.poll(now, &mut b.dev);
            if !(wa || wb) {
                break;
            }
            rounds += 1;
            if rounds > 10_000 {
                return Err(format!("livelock at {now:?}"));
            }
        }
        // SIM_DEBUG=1 traces the state changes of both connections.
        if trace {
            for (n, s, prev) in [("a", &a, &mut dbg_a), ("b", &b, &mut dbg_b)] {
                let st = s
                    .conn
                    .and_then(|h| s.iface.tcp_status(h).map(|t| t.tcb()))
                    .map(|t| (t.state(), t.counters().rst_in, t.poll_at()));
                if st.map(|x| x.0) != prev.map(|x: (TcpState, u64, Option<Instant>)| x.0) {
                    eprintln!("{now:?} {n}: {st:?}");
                    *prev = st;
                }
            }
        }
        for (i, s) in [&a, &b].into_iter().enumerate() {
            if let Some(info) = s.conn.and_then(|h| s.iface.tcp_status(h).map(|t| t.info())) {
                seen_remote[i].get_or_insert((info.local, info.remote));
            }
        }
        if let Err(e) = a.app().and_then(|_| b.app()) {
            return Err(format!(
                "{e} at {now:?}\na: {:?}\nb: {:?}\nlink a->b {:?}\nlink b->a {:?}",
                a.iface.stats(),
                b.iface.stats(),
                link.stats(0),
                link.stats(1)
            ));
        }
        if a.closed && b.closed && a.iface.tcp_connections() == 0 && b.iface.tcp_connections() == 0 {
            break;
        }
        let next = [
            a.iface.poll_at(),
            b.iface.poll_at(),
            a.dev.poll_at(),
            b.dev.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => now = now.max(t),
            None => {
                return Err(format!(
                    "stall: nothing scheduled at {now:?}; a sent {} recv {}, b sent {} recv {}",
                    a.sent, a.received, b.sent, b.received
                ))
            }
        }
        if now > limit {
            return Err(format!(
                "stall: virtual time limit; a sent {} recv {} {:?}, b sent {} recv {} {:?}",
                a.sent,
                a.received,
                a.conn.map(|h| a
                    .iface
                    .tcp_status(h)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state())),
                b.sent,
                b.received,
                b.conn.map(|h| b
                    .iface
                    .tcp_status(h)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state())),
            ));
        }
    }
    for (name, s) in [("a", &a), ("b", &b)] {
        let h = s.conn.ok_or("no connection")?;
        if s.iface
            .tcp_status(h)
            .map_or(sluice_net::TcpState::Closed, |t| t.state())
            != TcpState::Closed
        {
            return Err(format!(
                "{name} not closed: {}",
                s.iface
                    .tcp_status(h)
                    .map_or(sluice_net::TcpState::Closed, |t| t.state())
            ));
        }
    }
    // The connection ran over the family asked for, between the addresses configured.
    let want = if sc.v6 {
        [(IP6_A.into(), IP6_B.into()), (IP6_B.into(), IP6_A.into())]
    } else {
        [(IP_A.into(), IP_B.into()), (IP_B.into(), IP_A.into())]
    };
    for (seen, (local, remote)) in seen_remote.iter().zip(want) {
        let got: Option<(IpAddress, IpAddress)> = seen.map(|(l, r)| (l.addr, r.addr));
        if got != Some((local, remote)) {
            return Err(format!(
                "connection between {seen:?}, expected {local} - {remote}"
            ));
        }
    }
    if sc.v6 && (a.iface.stats().nd.learned == 0 || b.iface.stats().nd.learned == 0) {
        return Err("IPv6 neighbours were not learned by neighbour discovery".into());
    }
    if a.received != b.total || b.received != a.total {
        return Err(format!(
            "lengths: a got {} of {}, b got {} of {}",
            a.received, b.total, b.received, a.total
        ));
    }
    if a.recv_hash.clone().finalize() != b.sent_hash.clone().finalize() {
        return Err("b -> a stream corrupted (SHA-256 differs)".into());
    }
    if b.recv_hash.clone().finalize() != a.sent_hash.clone().finalize() {
        return Err("a -> b stream corrupted (SHA-256 differs)".into());
    }
    // Drain the link and check that every buffer came back.
    let mut rx = Vec::new();
    let end = Instant::from_nanos(u64::MAX);
    a.dev.rx_burst(end, &mut rx, usize::MAX);
    b.dev.rx_burst(end, &mut rx, usize::MAX);
    drop(rx);
    for s in [&a, &b] {
        if s.iface.rx_frames_held() != 0 {
            return Err(format!(
                "{} receive frames still counted as held",
                s.iface.rx_frames_held()
            ));
        }
    }
    if link.pool().outstanding() != 0 {
        return Err(format!("{} buffers outstanding", link.pool().outstanding()));
    }
    for s in [&a, &b] {
        let st = s.iface.stats();
        if st.drops[sluice_net::DropReason::NoBuffer] != 0 {
            return Err(format!("pool ran dry: {st:?}"));
        }
    }
    let checksum_drops = [&a, &b]
        .iter()
        .map(|s| s.iface.stats().drops[sluice_net::DropReason::Checksum])
        .sum();
    // Fragments of datagrams that never completed are forgotten after 30 s.
    let later = now + Duration::from_secs(31);
    a.iface.poll(later, &mut a.dev);
    b.iface.poll(later, &mut b.dev);
    Ok(Outcome {
        time: now,
        iterations,
        corrupted: link.stats(0).corrupted + link.stats(1).corrupted,
        checksum_drops,
        outage_drops: link.stats(0).outage_drops + link.stats(1).outage_drops,
        zero_copy: [
            a.iface.stats().tcp.rx_zero_copy_bytes,
            b.iface.stats().tcp.rx_zero_copy_bytes,
        ],
        flows: [a.iface.flow_stats(), b.iface.flow_stats()],
        reassembled: [a.iface.stats().reassembled, b.iface.stats().reassembled],
        reassembly_held: [a.iface.reassembly_held(), b.iface.reassembly_held()],
        retransmits: a.iface.stats().tcp.retransmits + b.iface.stats().tcp.retransmits,
        gso_segments: a.iface.stats().tcp.gso_segments_tx + b.iface.stats().tcp.gso_segments_tx,
        gro_coalesced: a.iface.stats().tcp.gro_coalesced + b.iface.stats().tcp.gro_coalesced,
    })
}

fn check(sc: Scenario) -> Outcome {
    let _guard = ReplayGuard(&sc);
    match run(&sc) {
        Ok(o) => {
            eprintln!(
                "seed {} loss {} bytes {}: {:?} virtual, {} iterations",
                sc.seed, sc.imp.loss, sc.bytes, o.time, o.iterations
            );
            o
        }
        Err(e) => panic!("{e}"),
    }
}

fn link(latency_ms: u64, rate_mbps: u64) -> Impairments {
    Impairments {
        latency: Duration::from_millis(latency_ms),
        rate_bps: Some(rate_mbps * 1_000_000),
        ..Default::default()
    }
}

#[test]
fn clean_link_one_megabyte_each_way() {
    let o = check(Scenario {
        seed: 1,
        imp: link(5, 100),
        back: None,
        bytes: 1 << 20,
        time_limit: Duration::from_secs(60),
        nic_hash: None,
        v6: false,
    });
    assert!(o.time < Instant::from_secs(10), "took {:?} virtual", o.time);
    // New data left TCP in large segments, cut to size below it.
    assert!(o.gso_segments > 100, "GSO pieces: {}", o.gso_segments);
    // On a clean link nearly every payload is in order and MSS-sized: kept by reference.
    for zc in o.zero_copy {
        assert!(zc > (1 << 20) * 9 / 10, "zero-copy bytes {:?}", o.zero_copy);
    }
}

/// The flow table looks segments up by the hash an RSS NIC put in the buffer; with a NIC
/// that hashes other fields, every lookup falls back to the software hash, and still finds
/// its connection.
#[test]
fn flow_lookup_by_the_nics_rss_hash() {
    for (kind, seed) in [(NicHash::Tuple, 7), (NicHash::AddrsOnly, 8)] {
        let imp = Impairments {
            loss: 0.02,
            ..link(2, 50)
        };
        let o = check(Scenario {
            seed,
            imp,
            back: None,
            bytes: 256 << 10,
            time_limit: Duration::from_secs(600),
            nic_hash: Some(kind),
            v6: false,
        });
        for f in o.flows {
            assert!(f.nic_hash_used > 100, "{kind:?}: {:?}", o.flows);
            match kind {
                NicHash::Tuple => assert_eq!(f.nic_hash_mismatch, 0, "{:?}", o.flows),
                // Every segment of a connection misses by the NIC's hash and is found by
                // the table's own (the SYN to the listener finds no flow either way).
                NicHash::AddrsOnly => assert!(
                    f.nic_hash_mismatch + 2 >= f.nic_hash_used && f.nic_hash_mismatch > 100,
                    "{:?}",
                    o.flows
                ),
            }
        }
    }
}

#[test]
fn lossy_links_many_seeds() {
    let mut worst = Duration::ZERO;
    let (mut corrupted, mut caught, mut gso) = (0, 0, 0);
    for (i, loss) in [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2].into_iter().enumerate() {
        for seed in 0..16u64 {
            let seed = seed * 10 + i as u64;
            let imp = Impairments {
                loss,
                reorder: 0.05,
                reorder_delay: Duration::from_millis(3),
                duplicate: 0.02,
                corrupt: 0.01,
                ..link(2, 50)
            };
            let o = check(Scenario {
                seed,
                imp,
                back: None,
                bytes: 1 << 20,
                time_limit: Duration::from_secs(3600),
                nic_hash: None,
                v6: false,
            });
            worst = worst.max(o.time - Instant::ZERO);
            if loss >= 0.05 {
                assert!(o.retransmits > 0, "seed {seed}: losses without retransmissions");
            }
            corrupted += o.corrupted;
            caught += o.checksum_drops;
            gso += o.gso_segments;
        }
    }
    eprintln!("worst virtual time {worst:?}; {corrupted} frames corrupted, {caught} caught by checksums");
    // Corrupted frames are caught by a checksum, or dropped for a broken Ethernet or ARP
    // header; never delivered (the SHA-256 check above would fail).
    assert!(caught > 0 && caught <= corrupted);
    assert!(gso > 1000, "GSO pieces under impairments: {gso}");
}

/// Without a rate limit, the pieces of a large segment arrive together, in one burst:
/// received segments are coalesced (GRO) while loss, reordering, duplication and
/// corruption break the runs. Every byte still arrives intact (SHA-256 both ways).
#[test]
fn gso_and_gro_under_every_impairment() {
    let (mut gso, mut gro, mut retransmits) = (0, 0, 0);
    for seed in 0..24u64 {
        let imp = Impairments {
            latency: Duration::from_millis(1),
            loss: [0.0, 0.01, 0.03][seed as usize % 3],
            reorder: 0.03,
            reorder_delay: Duration::from_millis(2),
            duplicate: 0.02,
            corrupt: 0.005,
            ..Default::default()
        };
        let o = check(Scenario {
            seed: 500 + seed,
            imp,
            back: None,
            bytes: 1 << 20,
            time_limit: Duration::from_secs(3600),
            nic_hash: None,
            v6: false,
        });
        gso += o.gso_segments;
        gro += o.gro_coalesced;
        retransmits += o.retransmits;
    }
    assert!(gso > 1000, "GSO pieces: {gso}");
    assert!(gro > 1000, "GRO: {gro}");
    assert!(retransmits > 0);
}

#[test]
fn heavy_reordering_and_duplication() {
    for seed in 100..104u64 {
        let imp = Impairments {
            loss: 0.02,
            reorder: 0.3,
            reorder_delay: Duration::from_millis(7),
            duplicate: 0.2,
            ..link(3, 20)
        };
        check(Scenario {
            seed,
            imp,
            back: None,
            bytes: 1 << 20,
            time_limit: Duration::from_secs(600),
            nic_hash: None,
            v6: false,
        });
    }
}

/// A path whose MTU is 576 cuts every full-sized segment into three fragments, which are
/// then lost, reordered, duplicated and corrupted one by one: reassembly puts the
/// segments back together (a lost fragment loses its segment, which TCP retransmits), the
/// bytes arrive intact both ways, and nothing is left in the reassembly tables.
#[test]
fn fragments_reassembled_under_loss_reordering_and_duplication() {
    for seed in 300..303u64 {
        let imp = Impairments {
            fragment: 576,
            loss: 0.01,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(3),
            duplicate: 0.05,
            corrupt: 0.002,
            ..link(2, 50)
        };
        let o = check(Scenario {
            seed,
            imp,
            back: None,
            bytes: 1 << 20,
            time_limit: Duration::from_secs(600),
            nic_hash: None,
            v6: false,
        });
        assert!(
            o.reassembled.iter().all(|&n| n > 100),
            "datagrams reassembled: {:?}",
            o.reassembled
        );
        assert_eq!(o.reassembly_held, [(0, 0), (0, 0)], "nothing held at the end");
    }
}

#[test]
fn twenty_second_outage_mid_transfer() {
    for seed in [3u64, 4] {
        let imp = Impairments {
            loss: 0.01,
            // 10 Mbit/s: a megabyte takes about a second, so the outage starts mid-way.
            outages: vec![(Instant::from_millis(400), Instant::from_millis(20_400))],
            ..link(5, 10)
        };
        let o = check(Scenario {
            seed,
            imp,
            back: None,
            bytes: 1 << 20,
            time_limit: Duration::from_secs(600),
            nic_hash: None,
            // The second seed over IPv6: its neighbours outlive the outage too.
            v6: seed == 4,
        });
        assert!(o.time > Instant::from_secs(20), "the transfer spanned the outage");
        assert!(o.outage_drops > 0, "frames were lost to the outage");
    }
}

#[test]
fn one_way_outage_mid_transfer() {
    // Only a -> b goes dark: a's data and ACKs are lost, b's data still arrives.
    let o = check(Scenario {
        seed: 7,
        imp: Impairments {
            outages: vec![(Instant::from_millis(300), Instant::from_millis(20_300))],
            ..link(5, 10)
        },
        back: Some(link(5, 10)),
        bytes: 1 << 20,
        time_limit: Duration::from_secs(600),
        nic_hash: None,
        v6: false,
    });
    assert!(o.outage_drops > 0);
    assert!(o.time > Instant::from_secs(20));
}

#[test]
fn udp_exchange() {
    let imp = link(1, 100);
    let (da, db, link) = MemLink::pair(imp.clone(), imp, 9, 256);
    let (mut da, mut db) = (da, db);
    let cfg = |ip| InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([1; 16]));
    let mut a = Interface::new(cfg(IP_A), EthernetAddress(da.mac()));
    let mut b = Interface::new(cfg(IP_B), EthernetAddress(db.mac()));
    let ua = a.udp_bind(0).unwrap();
    let ub = b.udp_bind(7).unwrap();
    a.udp(ua)
        .ok_or(sluice_net::UdpConnectError::InvalidHandle)
        .and_then(|mut sk| sk.connect(Endpoint::new(IP_B, 7)))
        .unwrap();
    let mut now = Instant::ZERO;
    let mut echoed = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let mut next = 0u32;
    for _ in 0..100_000 {
        if next < 100 && a.udp_status(ua).is_some_and(|u| u.can_send()) {
            let msg = format!("datagram {next}");
            a.udp(ua)
                .ok_or(sluice_net::UdpSendError::InvalidHandle)
                .and_then(|mut sk| sk.send(msg.as_bytes()))
                .unwrap();
            next += 1;
        }
        while a.poll(now, &mut da) | b.poll(now, &mut db) {}
        // B echoes everything back to its sender.
        loop {
            match b
                .udp(ub)
                .ok_or(sluice_net::UdpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv_from(&mut buf))
            {
                Ok((n, from)) => {
                    b.udp(ub)
                        .ok_or(sluice_net::UdpSendError::InvalidHandle)
                        .and_then(|mut sk| sk.send_to(&buf[..n], from))
                        .unwrap();
                    echoed += 1;
                }
                Err(UdpRecvError::WouldBlock) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        while let Ok(n) = a
            .udp(ua)
            .ok_or(sluice_net::UdpRecvError::InvalidHandle)
            .and_then(|mut sk| sk.recv(&mut buf))
        {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        if got.len() == 100 {
            break;
        }
        let t = [a.poll_at(), b.poll_at(), da.poll_at(), db.poll_at()]
            .into_iter()
            .flatten()
            .min();
        now = now.max(t.unwrap_or(now + Duration::from_millis(1)));
    }
    assert_eq!(echoed, 100);
    let expected: Vec<String> = (0..100).map(|i| format!("datagram {i}")).collect();
    assert_eq!(got, expected, "lossless link: all, in order");
    // Closing B's socket turns the next datagram into a port unreachable for A.
    b.udp(ub).unwrap().close();
    a.udp(ua)
        .ok_or(sluice_net::UdpSendError::InvalidHandle)
        .and_then(|mut sk| sk.send(b"anyone?"))
        .unwrap();
    for _ in 0..10 {
        while a.poll(now, &mut da) | b.poll(now, &mut db) {}
        now += Duration::from_millis(1);
    }
    assert!(a.udp(ua).and_then(|mut sk| sk.take_error()).is_some());
    assert_eq!(b.stats().icmp.unreachable_tx, 1);
    let mut rx = Vec::new();
    da.rx_burst(Instant::from_secs(100), &mut rx, usize::MAX);
    db.rx_burst(Instant::from_secs(100), &mut rx, usize::MAX);
    drop(rx);
    assert_eq!(link.pool().outstanding(), 0);
}

/// A server whose clients never read: its memory budget bounds what their send buffers
/// hold, refuses new connections while it is exhausted, and gets every byte back when they
/// go; a fresh client is then served intact.
#[test]
fn a_memory_budget_bounds_clients_that_never_read() {
    const BUDGET: usize = 1 << 20;
    let imp = link(1, 1000);
    let (mut da, mut db, link) = MemLink::pair(imp.clone(), imp, 5, 8192);
    let cfg = |ip| {
        let mut c = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([3; 16]));
        c.tcp.send_buffer = 256 * 1024;
        c.tcp.recv_buffer = 256 * 1024;
        c
    };
    let mut a = Interface::new(cfg(IP_A), EthernetAddress(da.mac()));
    let mut server = cfg(IP_B);
    server.mem_budget = BUDGET;
    let mut b = Interface::new(server, EthernetAddress(db.mac()));
    let l = b.tcp_listen(PORT, 64).unwrap();
    let mut now = Instant::from_millis(1);
    let chunk = vec![0x5a; 64 * 1024];
    let mut served: Vec<TcpHandle> = Vec::new();
    let would_block = std::cell::Cell::new(0u32);
    let mut step = |a: &mut Interface, b: &mut Interface, served: &mut Vec<TcpHandle>, now: &mut Instant| {
        while a.poll(*now, &mut da) | b.poll(*now, &mut db) {}
        while let Some(h) = b.tcp_accept(l) {
            served.push(h);
        }
        // The server writes to every client as much as it takes (a file each).
        for &h in served.iter() {
            loop {
                match b
                    .tcp(h)
                    .ok_or(sluice_net::TcpSendError::InvalidHandle)
                    .and_then(|mut sk| sk.send(&chunk))
                {
                    Ok(n) if n > 0 => continue,
                    _ => {
                        would_block.set(would_block.get() + 1);
                        break;
                    }
                }
            }
        }
        while a.poll(*now, &mut da) | b.poll(*now, &mut db) {}
        *now += Duration::from_millis(1);
    };
    // Ten greedy clients (they never read): at most four send buffers' worth fit.
    let greedy: Vec<TcpHandle> = (0..10).map(|_| a.tcp_connect(IP_B, PORT).unwrap()).collect();
    for _ in 0..2000 {
        step(&mut a, &mut b, &mut served, &mut now);
    }
    let budget = b.mem_budget().clone();
    assert_eq!(served.len(), 10, "all ten came in before the budget ran out");
    assert!(
        budget.used() <= BUDGET && budget.peak() <= BUDGET,
        "used {} peak {}",
        budget.used(),
        budget.peak()
    );
    assert!(
        budget.used() > BUDGET / 2,
        "the budget was used: {}",
        budget.used()
    );
    assert!(budget.refusals() > 0, "growth was refused");
    assert!(would_block.get() > 0, "writes found the buffers full");
    for &h in &greedy {
        assert_eq!(
            a.tcp_status(h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state()),
            TcpState::Established
        );
    }
    // Exhausted: a new connection is refused (its SYNs are dropped and counted).
    assert!(budget.exhausted());
    let late = a.tcp_connect(IP_B, PORT).unwrap();
    for _ in 0..300 {
        step(&mut a, &mut b, &mut served, &mut now);
    }
    assert_eq!(
        a.tcp_status(late)
            .map_or(sluice_net::TcpState::Closed, |t| t.state()),
        TcpState::SynSent,
        "not let in"
    );
    assert!(b.stats().drops.get(sluice_net::DropReason::MemBudget) > 0);
    // The greedy clients go (reset): their memory comes back, and the late one gets in.
    for h in greedy {
        if let Some(mut sk) = a.tcp(h) {
            sk.abort();
        }
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..20_000 {
        step(&mut a, &mut b, &mut served, &mut now);
        served.retain(|&h| {
            b.tcp_status(h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state())
                != TcpState::Closed
        });
        loop {
            match a
                .tcp(late)
                .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv(&mut buf))
            {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        if got.len() >= 2 << 20 {
            break;
        }
    }
    assert!(got.len() >= 2 << 20, "the late client got {} bytes", got.len());
    assert!(got.iter().all(|&x| x == 0x5a), "its bytes are intact");
    assert_eq!(served.len(), 1, "only the late client is left");
    assert!(
        budget.used() <= 2 * 256 * 1024,
        "the others' memory came back: {}",
        budget.used()
    );
    if let Some(mut sk) = b.tcp(served[0]) {
        sk.abort();
    }
    if let Some(mut sk) = a.tcp(late) {
        sk.abort();
    }
    for _ in 0..10 {
        while a.poll(now, &mut da) | b.poll(now, &mut db) {}
        now += Duration::from_millis(1);
    }
    assert_eq!(budget.used(), 0, "nothing charged once every connection is gone");
    drop(link);
}

/// TCP over IPv6 with the same core: the neighbours found by NDP (the link loses and
/// corrupts its solicitations too), every impairment on the link, 1 MiB each way intact
/// (SHA-256), segments sized for the longer header.
#[test]
fn ipv6_under_every_impairment() {
    let mut retransmits = 0;
    for seed in 0..12u64 {
        let imp = Impairments {
            loss: [0.0, 0.02, 0.05, 0.1][seed as usize % 4],
            reorder: 0.05,
            reorder_delay: Duration::from_millis(3),
            duplicate: 0.02,
            corrupt: 0.01,
            ..link(2, 50)
        };
        let o = check(Scenario {
            seed: 9_000 + seed,
            imp,
            back: None,
            bytes: 1 << 20,
            time_limit: Duration::from_secs(3600),
            nic_hash: if seed % 2 == 0 { Some(NicHash::Tuple) } else { None },
            v6: true,
        });
        retransmits += o.retransmits;
    }
    assert!(retransmits > 0);
}
