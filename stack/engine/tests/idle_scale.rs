//! Readiness by events at scale: a server holds 100,000 idle connections and one busy one.
//! Its `Poller` watches all of them, yet each poll looks only at what changed (the busy
//! connection), and the interface's ready list holds only that: the work of a round does
//! not grow with idle connections.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sluice_dev::{Device, Impairments, MemDevice, MemLink};
use sluice_engine::{Cx, Event, Poller, RssSteering, Source, TcpListener, TcpStream, SYMMETRIC_KEY};
use sluice_net::{Interface, InterfaceConfig, IsnKey, TcpConfig, TcpHandle, TcpState};
use sluice_wire::{EthernetAddress, Instant, Ipv4Address, Ipv4Cidr};

const IDLE: usize = 100_000;
/// Connections opened at a time (the link's pool and the backlog bound it).
const WAVE: usize = 1000;

struct Pair {
    server: Rc<RefCell<Interface>>,
    client: Interface,
    ds: MemDevice,
    dc: MemDevice,
    _link: MemLink,
    now: Instant,
}

impl Pair {
    fn new() -> Pair {
        let (ds, dc, link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 8192);
        let (ip_s, ip_c) = (Ipv4Address([198, 18, 0, 1]), Ipv4Address([198, 18, 0, 2]));
        let (mac_s, mac_c) = (EthernetAddress(ds.mac()), EthernetAddress(dc.mac()));
        let cfg = |ip, peer, mac| {
            let mut c = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([9; 16]));
            c.static_arp.push((peer, mac));
            // Idle connections need little room.
            c.tcp = TcpConfig {
                recv_buffer: 2048,
                send_buffer: 2048,
                ..c.tcp
            };
            c
        };
        Pair {
            server: Rc::new(RefCell::new(Interface::new(cfg(ip_s, ip_c, mac_c), mac_s))),
            client: Interface::new(cfg(ip_c, ip_s, mac_s), mac_c),
            ds,
            dc,
            _link: link,
            now: Instant::from_millis(1),
        }
    }

    fn step(&mut self) {
        self.client.poll(self.now, &mut self.dc);
        self.server.borrow_mut().poll(self.now, &mut self.ds);
        self.now += Duration::from_micros(100);
    }
}

#[test]
fn a_poll_over_100k_idle_connections_looks_at_the_busy_one() {
    let mut p = Pair::new();
    let steering = RssSteering::round_robin(&SYMMETRIC_KEY, 128, 1);
    let stop = AtomicBool::new(false);
    let server_ip = Ipv4Address([198, 18, 0, 1]);
    // Two listening ports: 100,000 connections need more 4-tuples than one client
    // address and one server port give.
    let (listeners, mut poller) = {
        let cx = Cx::new(&p.server, p.now, 0, 1, &steering, &stop);
        let ls = [7u16, 8].map(|port| TcpListener::bind(&cx, port, WAVE).expect("bind"));
        (ls, Poller::new())
    };
    let mut accepted: Vec<TcpStream> = Vec::with_capacity(IDLE + 1);
    let mut clients: Vec<TcpHandle> = Vec::with_capacity(IDLE + 1);
    let mut events: Vec<Event> = Vec::new();
    while clients.len() < IDLE + 1 {
        let n = WAVE.min(IDLE + 1 - clients.len());
        for _ in 0..n {
            let i = clients.len();
            let port = if i % 2 == 0 { 7 } else { 8 };
            let local = 1024 + (i / 2) as u16;
            clients.push(
                p.client
                    .tcp_connect_from(server_ip, port, local)
                    .expect("connect"),
            );
        }
        let want = clients.len();
        for _ in 0..10_000 {
            p.step();
            let cx = Cx::new(&p.server, p.now, 0, 1, &steering, &stop);
            for l in &listeners {
                while let Ok(s) = l.accept(&cx) {
                    poller.register(accepted.len() as u64, Source::Stream(s), false);
                    accepted.push(s);
                }
            }
            if accepted.len() == want {
                break;
            }
        }
        assert_eq!(accepted.len(), want, "every connection of the wave was accepted");
        // The poller reads as the application would, round by round.
        events.clear();
        poller.poll(&Cx::new(&p.server, p.now, 0, 1, &steering, &stop), &mut events);
    }
    for _ in 0..20 {
        p.step();
    }
    assert!(clients.iter().all(|&h| p
        .client
        .tcp_status(h)
        .map_or(sluice_net::TcpState::Closed, |t| t.state())
        == TcpState::Established));
    assert_eq!(poller.len(), IDLE + 1);

    // Settle: nothing is ready, and a poll looks at nothing.
    for _ in 0..3 {
        events.clear();
        poller.poll(&Cx::new(&p.server, p.now, 0, 1, &steering, &stop), &mut events);
        p.step();
    }
    events.clear();
    poller.poll(&Cx::new(&p.server, p.now, 0, 1, &steering, &stop), &mut events);
    assert!(
        events.is_empty(),
        "idle connections are not ready: {:?}",
        &events[..events.len().min(4)]
    );
    assert!(
        poller.visited() <= 1,
        "an idle poll looked at {} sockets",
        poller.visited()
    );

    // One busy connection: the client sends, the server reads it back and answers, round
    // after round. Each poll reports it alone and looks at a handful of sockets.
    let busy = *clients.last().expect("clients");
    let busy_token = IDLE as u64;
    let mut max_visited = 0;
    let mut max_listed = 0;
    for round in 0..200u32 {
        let msg = round.to_be_bytes();
        assert_eq!(
            p.client
                .tcp(busy)
                .ok_or(sluice_net::TcpSendError::InvalidHandle)
                .and_then(|mut sk| sk.send(&msg)),
            Ok(4)
        );
        let mut got = Vec::new();
        for _ in 0..50 {
            p.step();
            max_listed = max_listed.max(p.server.borrow().ready_len());
            let cx = Cx::new(&p.server, p.now, 0, 1, &steering, &stop);
            events.clear();
            poller.poll(&cx, &mut events);
            max_visited = max_visited.max(poller.visited());
            for e in &events {
                assert_eq!(e.token, busy_token, "only the busy connection is ready");
                let s = accepted[e.token as usize];
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&cx, &mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            if got.len() == msg.len() {
                break;
            }
        }
        assert_eq!(got, msg, "round {round}: the busy connection's bytes");
        let cx = Cx::new(&p.server, p.now, 0, 1, &steering, &stop);
        assert_eq!(accepted[IDLE].write(&cx, &got), Ok(4));
        let mut back = [0u8; 8];
        let mut n = 0;
        for _ in 0..50 {
            p.step();
            if let Ok(k) = p
                .client
                .tcp(busy)
                .ok_or(sluice_net::TcpRecvError::InvalidHandle)
                .and_then(|mut sk| sk.recv(&mut back[n..]))
            {
                n += k;
            }
            if n == 4 {
                break;
            }
        }
        assert_eq!(&back[..n], &msg, "round {round}: the answer");
    }
    assert!(
        max_visited <= 4,
        "a busy round looked at {max_visited} sockets of {}",
        IDLE + 1
    );
    assert!(max_listed <= 4, "the ready list held {max_listed} entries");
    // And the idle ones are all still there.
    let cx = Cx::new(&p.server, p.now, 0, 1, &steering, &stop);
    assert!(accepted.iter().all(|s| s.state(&cx) == TcpState::Established));
}
