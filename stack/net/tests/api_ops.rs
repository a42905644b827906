//! Fuzzing the API: random sequences of socket operations (zero-copy ones included) on two
//! interfaces over a lossy link. Nothing panics, and after everything is closed and time has passed, every
//! connection is gone and every buffer is back in the pool.

use std::time::Duration;

use proptest::prelude::*;
use sluice_dev::{Device, Impairments, MemDevice, MemLink};
use sluice_net::{Endpoint, Interface, InterfaceConfig, IsnKey, ListenerHandle, TcpHandle, UdpHandle};
use sluice_wire::{EthernetAddress, Instant, Ipv4Address, Ipv4Cidr};

const IPS: [Ipv4Address; 2] = [Ipv4Address::new(198, 18, 0, 1), Ipv4Address::new(198, 18, 0, 2)];
const PORTS: [u16; 2] = [80, 81];

#[derive(Clone, Debug)]
enum Op {
    Listen(usize, usize),
    Unlisten(usize, usize),
    Connect(usize, usize),
    Accept(usize, usize),
    Send(usize, usize, u16),
    Recv(usize, usize),
    /// Zero-copy: queue a frame of this many bytes (from `alloc_tx_frame`).
    SendFrame(usize, usize, u16),
    /// Zero-copy: take a frame of at most this many bytes, and keep it for a while.
    RecvFrame(usize, usize, u16),
    Shutdown(usize, usize),
    Close(usize, usize),
    Abort(usize, usize),
    Udp(usize, u16),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0usize..2;
    let idx = 0usize..4;
    prop_oneof![
        (side.clone(), 0usize..2).prop_map(|(s, p)| Op::Listen(s, p)),
        (side.clone(), 0usize..2).prop_map(|(s, p)| Op::Unlisten(s, p)),
        (side.clone(), 0usize..2).prop_map(|(s, p)| Op::Connect(s, p)),
        (side.clone(), 0usize..2).prop_map(|(s, p)| Op::Accept(s, p)),
        (side.clone(), idx.clone(), any::<u16>()).prop_map(|(s, i, n)| Op::Send(s, i, n)),
        (side.clone(), idx.clone()).prop_map(|(s, i)| Op::Recv(s, i)),
        (side.clone(), idx.clone(), 0u16..3000).prop_map(|(s, i, n)| Op::SendFrame(s, i, n)),
        (side.clone(), idx.clone(), 0u16..3000).prop_map(|(s, i, n)| Op::RecvFrame(s, i, n)),
        (side.clone(), idx.clone()).prop_map(|(s, i)| Op::Shutdown(s, i)),
        (side.clone(), idx.clone()).prop_map(|(s, i)| Op::Close(s, i)),
        (side.clone(), idx).prop_map(|(s, i)| Op::Abort(s, i)),
        (side, 0u16..1600).prop_map(|(s, n)| Op::Udp(s, n)),
        (0u16..3000).prop_map(Op::Advance),
    ]
}

struct Side {
    iface: Interface,
    dev: MemDevice,
    listeners: [Option<ListenerHandle>; 2],
    conns: Vec<TcpHandle>,
    udp: UdpHandle,
}

fn poll_all(sides: &mut [Side; 2], now: Instant) {
    for _ in 0..1000 {
        let mut did = false;
        for s in sides.iter_mut() {
            did |= s.iface.poll(now, &mut s.dev);
        }
        if !did {
            return;
        }
    }
}

fn next_wake(sides: &[Side; 2]) -> Option<Instant> {
    sides
        .iter()
        .flat_map(|s| [s.iface.poll_at(), s.dev.poll_at()])
        .flatten()
        .min()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn random_api_use(seed in any::<u64>(), loss in 0.0f64..0.3, ops in proptest::collection::vec(op(), 1..60)) {
        let imp = Impairments { latency: Duration::from_millis(1), loss, reorder: 0.1,
            reorder_delay: Duration::from_millis(2), duplicate: 0.05, corrupt: 0.02, ..Default::default() };
        let (da, db, link) = MemLink::pair(imp.clone(), imp, seed, 1024);
        let mut sides = [da, db].map(|dev| {
            let ip = IPS[usize::from(dev.mac()[5] - 1)];
            let mut cfg = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([3; 16]));
            cfg.tcp.msl = Duration::from_secs(1);
            cfg.tcp.max_retransmissions = 4;
            let mut iface = Interface::new(cfg, EthernetAddress(dev.mac()));
            let udp = iface.udp_bind(9).unwrap();
            Side { iface, dev, listeners: [None; 2], conns: Vec::new(), udp }
        });
        let mut now = Instant::from_millis(1);
        let data = [0x5au8; 65535];
        let mut buf = [0u8; 4096];
        let mut held: Vec<sluice_dev::Frame> = Vec::new();
        for op in ops {
            match op {
                Op::Listen(s, p) => {
                    if let Ok(l) = sides[s].iface.tcp_listen(PORTS[p], 2) {
                        sides[s].listeners[p] = Some(l);
                    }
                }
                Op::Unlisten(s, p) => {
                    if let Some(l) = sides[s].listeners[p].take() {
                        sides[s].iface.tcp_unlisten(l);
                    }
                }
                Op::Connect(s, p) => {
                    let h = sides[s].iface.tcp_connect(IPS[1 - s], PORTS[p]).unwrap();
                    sides[s].conns.push(h);
                }
                Op::Accept(s, p) => {
                    if let Some(l) = sides[s].listeners[p] {
                        if let Some(h) = sides[s].iface.tcp_accept(l) {
                            sides[s].conns.push(h);
                        }
                    }
                }
                Op::Send(s, i, n) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        let _ = sides[s].iface.tcp(h).ok_or(sluice_net::TcpSendError::InvalidHandle).and_then(|mut sk| sk.send(&data[..usize::from(n)]));
                    }
                }
                Op::Recv(s, i) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        let _ = sides[s].iface.tcp(h).ok_or(sluice_net::TcpRecvError::InvalidHandle).and_then(|mut sk| sk.recv(&mut buf));
                    }
                }
                Op::SendFrame(s, i, n) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        if let Some(mut m) = sides[s].iface.alloc_tx_frame() {
                            m.put(&data[..usize::from(n)]);
                            let _ = sides[s].iface.tcp(h).ok_or(sluice_net::TcpSendError::InvalidHandle).and_then(|mut sk| sk.send_frame(m.freeze()));
                        }
                    }
                }
                Op::RecvFrame(s, i, n) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        // Frames the application holds keep their device buffers.
                        if let Ok(Some(f)) = sides[s].iface.tcp(h).ok_or(sluice_net::TcpRecvError::InvalidHandle).and_then(|mut sk| sk.recv_frame(usize::from(n))) {
                            held.push(f);
                            if held.len() > 8 {
                                held.remove(0);
                            }
                        }
                    }
                }
                Op::Shutdown(s, i) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        if let Some(mut sk) = sides[s].iface.tcp(h) {
                            sk.shutdown();
                        }
                    }
                }
                Op::Close(s, i) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        if let Some(mut sk) = sides[s].iface.tcp(h) {
                            sk.close();
                        }
                    }
                }
                Op::Abort(s, i) => {
                    if let Some(&h) = sides[s].conns.get(i) {
                        if let Some(mut sk) = sides[s].iface.tcp(h) {
                            sk.abort();
                        }
                    }
                }
                Op::Udp(s, n) => {
                    let u = sides[s].udp;
                    let _ = sides[s].iface.udp(u).ok_or(sluice_net::UdpSendError::InvalidHandle).and_then(|mut sk| sk.send_to(&data[..usize::from(n)], Endpoint::new(IPS[1 - s], 9)));
                    while sides[s].iface.udp(u).ok_or(sluice_net::UdpRecvError::InvalidHandle).and_then(|mut sk| sk.recv(&mut buf)).is_ok() {}
                }
                Op::Advance(ms) => {
                    let until = now + Duration::from_millis(u64::from(ms));
                    loop {
                        poll_all(&mut sides, now);
                        match next_wake(&sides) {
                            Some(t) if t <= until => now = now.max(t) + Duration::from_micros(1),
                            _ => break,
                        }
                    }
                    now = until;
                }
            }
            poll_all(&mut sides, now);
        }
        // Give everything up, then let the timers run out.
        held.clear();
        for s in sides.iter_mut() {
            for h in s.conns.clone() {
                if let Some(mut sk) = s.iface.tcp(h) {
                    sk.abort();
                }
            }
            for l in s.listeners.iter_mut().filter_map(Option::take) {
                s.iface.tcp_unlisten(l);
            }
        }
        let deadline = now + Duration::from_secs(600);
        while let Some(t) = next_wake(&sides) {
            if t > deadline {
                break;
            }
            now = now.max(t);
            poll_all(&mut sides, now);
        }
        for s in sides.iter_mut() {
            if s.iface.tcp_connections() != 0 {
                for &h in &s.conns {
                    eprintln!("{h:?} {:?} {:?}", s.iface.tcp_status(h).map_or(sluice_net::TcpState::Closed, |t| t.state()), s.iface.tcp_status(h).map(|t| t.tcb()).map(|t| (t.poll_at(), *t.counters())));
                }
                eprintln!("now {now:?} wake {:?}", s.iface.poll_at());
            }
            prop_assert_eq!(s.iface.tcp_connections(), 0);
            prop_assert_eq!(s.iface.rx_frames_held(), 0);
            let mut rx = Vec::new();
            s.dev.rx_burst(Instant::from_nanos(u64::MAX), &mut rx, usize::MAX);
        }
        prop_assert_eq!(link.pool().outstanding(), 0);
    }
}
